//! The planner: a painted stroke (concept, action, mask) → a [`cut::Edit`](crate::cut::Edit).
//!
//! Units are the top `k` units of the layer ranked by IoU with the concept (or units named
//! explicitly; a session fills them in for removals ranked by effect). Removal sets them to 0;
//! insertion sets each to its activation level at the value quantile (0.99 by default), both
//! with full strength inside the mask.

use super::ranking::UnitRanking;
use crate::cut::{Edit, Pooling};
use crate::dissect::DissectResult;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

/// Units per stroke when none are named (SPEC §13).
pub const DEFAULT_K: usize = 20;

/// Quantile of a unit's activation used as its insertion value by default.
pub const DEFAULT_VALUE_QUANTILE: f64 = 0.99;

/// What a stroke does to its concept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Switch the concept's units off (value 0).
    Remove,
    /// Switch the concept's units on (value = each unit's quantile level).
    Add,
}

impl std::str::FromStr for Action {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "remove" => Ok(Self::Remove),
            "add" => Ok(Self::Add),
            _ => bail!("unknown edit op '{s}': use remove or add"),
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Remove => "remove",
            Self::Add => "add",
        })
    }
}

/// What the planner needs from a dissection of one layer: each concept's units ranked by IoU
/// and each unit's activation level at one quantile.
#[derive(Clone, Debug)]
pub struct UnitCatalog {
    /// The layer's canonical name.
    pub layer: String,
    /// IoU above which a unit counts as detecting a concept.
    pub miniou: f64,
    /// The quantile of `levels`.
    pub quantile: f64,
    /// Per unit: its activation level at `quantile`.
    pub levels: Vec<f32>,
    /// Per concept: every unit with its IoU, best first.
    pub rankings: BTreeMap<String, Vec<(usize, f32)>>,
}

impl UnitCatalog {
    /// Reads the rankings of `layer` and its levels at `quantile` from a dissection.
    pub fn from_dissection(d: &DissectResult, layer: &str, quantile: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&quantile) {
            bail!("the value quantile {quantile} is outside [0, 1]; use e.g. 0.99 or 0.995");
        }
        let l = d.layer(layer)?;
        let mut rankings = BTreeMap::new();
        for c in &l.concepts {
            rankings.insert(c.concept.clone(), d.unit_ranking(layer, &c.concept)?);
        }
        let levels = d.levels(layer, quantile).with_context(|| {
            format!(
                "cannot read the activation levels of {layer} from {}",
                d.dir.display()
            )
        })?;
        Ok(Self {
            layer: layer.to_string(),
            miniou: d.miniou,
            quantile,
            levels,
            rankings,
        })
    }

    /// The number of units of the layer.
    pub fn channels(&self) -> usize {
        self.levels.len()
    }

    /// The ranking of `concept`; an unknown concept lists the known ones.
    pub fn ranking(&self, concept: &str) -> Result<&[(usize, f32)]> {
        self.rankings
            .get(concept)
            .map(Vec::as_slice)
            .with_context(|| {
                format!(
                    "unknown concept '{concept}'; the dissection of {} knows: {}",
                    self.layer,
                    self.rankings
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// The top `k` units for `concept` with their IoUs; refused when no unit's IoU exceeds the
    /// cut-off.
    pub fn top_units(&self, concept: &str, k: usize) -> Result<Vec<(usize, f32)>> {
        if k == 0 {
            bail!("k must be at least 1 unit per stroke");
        }
        let ranking = self.ranking(concept)?;
        if k > ranking.len() {
            bail!(
                "k = {k} but {} has only {} units; use a smaller --k",
                self.layer,
                ranking.len()
            );
        }
        let best = ranking.first().map_or(0.0, |r| r.1);
        if f64::from(best) <= self.miniou {
            bail!(
                "no unit of {} detects '{concept}' (best IoU {best:.3}, cut-off {}); try another \
                 --layer, a dissection over more samples, or name the units with --units",
                self.layer,
                self.miniou
            );
        }
        Ok(ranking[..k].to_vec())
    }
}

/// How strokes become edits.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Units per stroke (the concept's top k).
    pub k: usize,
    /// Units to use instead of the top k.
    pub units: Option<Vec<usize>>,
    /// How a mask is pooled to the layer's grid.
    pub pooling: Pooling,
    /// How a removal chooses its k units when none are named: by IoU, or by their effect on
    /// the concept (measured once and saved beside the cached dissections). Insertions always
    /// take the top k by IoU.
    pub ranking: UnitRanking,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            k: DEFAULT_K,
            units: None,
            pooling: Pooling::Max,
            ranking: UnitRanking::Iou,
        }
    }
}

/// One painted stroke before planning.
#[derive(Debug)]
pub struct Stroke {
    /// Remove or add.
    pub action: Action,
    /// The concept painted.
    pub concept: String,
    /// Where: `[H, W]` in [0, 1] at the image's resolution.
    pub mask: Tensor,
}

/// A stroke with its units and values: everything an [`Edit`] needs, plus provenance.
#[derive(Debug)]
pub struct PlannedStroke {
    /// Remove or add.
    pub action: Action,
    /// The concept painted.
    pub concept: String,
    /// The layer edited.
    pub layer: String,
    /// Units set.
    pub units: Vec<usize>,
    /// Their IoU with the concept (empty when the catalog has no ranking for it).
    pub ious: Vec<f32>,
    /// Target value per unit.
    pub values: Vec<f32>,
    /// Where: `[H, W]` in [0, 1].
    pub mask: Tensor,
    /// How the mask is pooled to the layer's grid.
    pub pooling: Pooling,
    /// Whether the mask is empty (the stroke does nothing).
    pub empty: bool,
    /// Keep this stroke even when the context check rejects it (a scene's `force` does so for
    /// all of its strokes); false when planned.
    pub force: bool,
}

/// The plan of one stroke as recorded in JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StrokeRecord {
    /// `remove` or `add`.
    pub op: Action,
    /// The concept painted.
    pub concept: String,
    /// The layer edited.
    pub layer: String,
    /// Units set.
    pub units: Vec<usize>,
    /// Their IoU with the concept.
    pub ious: Vec<f32>,
    /// Target value per unit.
    pub values: Vec<f32>,
    /// `max` or `mean`.
    pub pooling: String,
    /// Painted area as a fraction of the image (mean of the mask).
    pub mask_area: f64,
}

impl PlannedStroke {
    /// The edit this stroke makes at its layer.
    pub fn edit(&self) -> Edit {
        let units: Vec<i64> = self.units.iter().map(|&u| u as i64).collect();
        Edit::set(&units, &self.values, Some(self.mask.shallow_clone())).with_pooling(self.pooling)
    }

    /// The JSON record of the plan.
    pub fn record(&self) -> StrokeRecord {
        StrokeRecord {
            op: self.action,
            concept: self.concept.clone(),
            layer: self.layer.clone(),
            units: self.units.clone(),
            ious: self.ious.clone(),
            values: self.values.clone(),
            pooling: match self.pooling {
                Pooling::Max => "max".into(),
                Pooling::Mean => "mean".into(),
            },
            mask_area: f64::try_from(self.mask.mean(Kind::Float)).unwrap_or(0.0),
        }
    }
}

/// Plans one stroke: its units (named, or the concept's top k), their values (0 to remove,
/// the catalog's levels to add) and its mask.
pub fn plan_stroke(
    catalog: &UnitCatalog,
    stroke: Stroke,
    opts: &PlanOptions,
) -> Result<PlannedStroke> {
    if stroke.mask.dim() != 2 {
        bail!("a stroke mask must be [H, W], not {:?}", stroke.mask.size());
    }
    let (units, ious): (Vec<usize>, Vec<f32>) = match &opts.units {
        Some(named) => {
            if named.is_empty() {
                bail!("--units lists no unit; give e.g. --units 12,55,301 or leave it out");
            }
            let c = catalog.channels();
            if let Some(&u) = named.iter().find(|&&u| u >= c) {
                bail!(
                    "unit {u} is out of range: {} has {c} units (0..{})",
                    catalog.layer,
                    c.saturating_sub(1)
                );
            }
            let ranking = catalog.ranking(&stroke.concept)?;
            let iou_of = |u: usize| ranking.iter().find(|r| r.0 == u).map_or(0.0, |r| r.1);
            named.iter().map(|&u| (u, iou_of(u))).unzip()
        }
        None => catalog
            .top_units(&stroke.concept, opts.k)?
            .into_iter()
            .unzip(),
    };
    let values = match stroke.action {
        Action::Remove => vec![0.0; units.len()],
        Action::Add => units.iter().map(|&u| catalog.levels[u]).collect(),
    };
    let mask = stroke.mask.to_kind(Kind::Float).clamp(0.0, 1.0);
    let empty = !bool::try_from(mask.gt(0.0).any())?;
    Ok(PlannedStroke {
        action: stroke.action,
        concept: stroke.concept,
        layer: catalog.layer.clone(),
        units,
        ious,
        values,
        mask,
        pooling: opts.pooling,
        empty,
        force: false,
    })
}

/// The edits of the non-empty strokes, in order (they composite alpha-over at the layer).
pub fn edits_of(strokes: &[PlannedStroke]) -> Vec<Edit> {
    strokes
        .iter()
        .filter(|s| !s.empty)
        .map(PlannedStroke::edit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn catalog() -> UnitCatalog {
        let mut rankings = BTreeMap::new();
        rankings.insert(
            "tree".to_string(),
            vec![(3, 0.30), (1, 0.20), (0, 0.10), (2, 0.01)],
        );
        rankings.insert(
            "sky".to_string(),
            vec![(2, 0.02), (0, 0.01), (1, 0.0), (3, 0.0)],
        );
        UnitCatalog {
            layer: "layer4".into(),
            miniou: 0.04,
            quantile: 0.99,
            levels: vec![1.5, 2.5, 3.5, 4.5],
            rankings,
        }
    }

    fn stroke(action: Action, concept: &str) -> Stroke {
        Stroke {
            action,
            concept: concept.into(),
            mask: Tensor::ones([8, 8], (Kind::Float, Device::Cpu)),
        }
    }

    #[test]
    fn top_k_units_with_levels_to_add_and_zeros_to_remove() {
        let c = catalog();
        let opts = PlanOptions {
            k: 2,
            ..Default::default()
        };
        let add = plan_stroke(&c, stroke(Action::Add, "tree"), &opts).unwrap();
        assert_eq!(add.units, [3, 1]);
        assert_eq!(add.values, [4.5, 2.5]);
        assert_eq!(add.ious, [0.30, 0.20]);
        let rm = plan_stroke(&c, stroke(Action::Remove, "tree"), &opts).unwrap();
        assert_eq!(rm.units, [3, 1]);
        assert_eq!(rm.values, [0.0, 0.0]);
        let e = rm.edit();
        assert_eq!(e.units, [3, 1]);
        assert_eq!(e.alpha, [1.0, 1.0]);
    }

    #[test]
    fn named_units_are_checked_and_bad_requests_explain_the_fix() {
        let c = catalog();
        let named = PlanOptions {
            units: Some(vec![2, 0]),
            ..Default::default()
        };
        let p = plan_stroke(&c, stroke(Action::Add, "sky"), &named).unwrap();
        assert_eq!(
            (p.units.clone(), p.values.clone()),
            (vec![2, 0], vec![3.5, 1.5])
        );
        assert_eq!(p.ious, [0.02, 0.01]);
        let out = PlanOptions {
            units: Some(vec![1, 4]),
            ..Default::default()
        };
        let err = plan_stroke(&c, stroke(Action::Add, "tree"), &out).unwrap_err();
        assert!(
            err.to_string()
                .contains("unit 4 is out of range: layer4 has 4 units"),
            "{err}"
        );
        let k2 = PlanOptions {
            k: 2,
            ..Default::default()
        };
        let err = plan_stroke(&c, stroke(Action::Add, "sky"), &k2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no unit of layer4 detects 'sky'") && err.contains("--units"),
            "{err}"
        );
        let err = plan_stroke(&c, stroke(Action::Add, "dragon"), &k2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown concept 'dragon'") && err.contains("sky, tree"),
            "{err}"
        );
        let err = plan_stroke(&c, stroke(Action::Add, "tree"), &PlanOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("k = 20 but layer4 has only 4 units"), "{err}");
    }

    #[test]
    fn empty_masks_are_flagged_and_left_out_of_the_edits() {
        let c = catalog();
        let opts = PlanOptions {
            k: 1,
            ..Default::default()
        };
        let mut empty = stroke(Action::Remove, "tree");
        empty.mask = Tensor::zeros([8, 8], (Kind::Float, Device::Cpu));
        let strokes = vec![
            plan_stroke(&c, empty, &opts).unwrap(),
            plan_stroke(&c, stroke(Action::Add, "tree"), &opts).unwrap(),
        ];
        assert!(strokes[0].empty && !strokes[1].empty);
        let edits = edits_of(&strokes);
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].values, [4.5]);
    }
}
