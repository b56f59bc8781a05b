//! Comparing two dissections of the same layer, e.g. against a segmenter and against the
//! world's true label maps: how many units get the same label.

use super::DissectResult;
use anyhow::{Result, bail};
use serde::Serialize;

/// Label agreement between two dissections of one layer.
#[derive(Clone, Debug, Serialize)]
pub struct Agreement {
    /// The layer compared.
    pub layer: String,
    /// Units in the layer.
    pub units: usize,
    /// Units with the same best label in both.
    pub same_label: usize,
    /// Units interpretable in the first / the second dissection.
    pub interpretable: (usize, usize),
    /// Units interpretable in both.
    pub interpretable_in_both: usize,
    /// Units interpretable in both with the same label.
    pub interpretable_same_label: usize,
    /// Units whose labels differ: (unit, first label, second label).
    pub differing: Vec<(usize, String, String)>,
}

/// Compares the unit labels of `layer` in two dissections.
pub fn label_agreement(a: &DissectResult, b: &DissectResult, layer: &str) -> Result<Agreement> {
    let (la, lb) = (a.layer(layer)?, b.layer(layer)?);
    if la.units.len() != lb.units.len() {
        bail!(
            "the dissections have {} and {} units in {layer}; compare dissections of one model",
            la.units.len(),
            lb.units.len()
        );
    }
    let mut out = Agreement {
        layer: la.layer.clone(),
        units: la.units.len(),
        same_label: 0,
        interpretable: (la.interpretable, lb.interpretable),
        interpretable_in_both: 0,
        interpretable_same_label: 0,
        differing: Vec::new(),
    };
    for (ua, ub) in la.units.iter().zip(&lb.units) {
        let same = ua.label == ub.label;
        out.same_label += same as usize;
        if ua.interpretable && ub.interpretable {
            out.interpretable_in_both += 1;
            out.interpretable_same_label += same as usize;
        }
        if !same {
            out.differing
                .push((ua.unit, ua.label.clone(), ub.label.clone()));
        }
    }
    Ok(out)
}
