//! Remove-top-k and keep-top-k curves on a held-out split (SPEC §5): for each class and k, the
//! class's balanced accuracy, the mean over the other classes, and the overall accuracy.

use super::metrics::to_rows;
use super::model::Classifier;
use super::ranking::{ClassRanking, keep_top, remove_top};
use super::sweep::{SweepOptions, measure_under_ablation};
use crate::cut::Cut;
use crate::nets::vgg::Vgg;
use anyhow::{Result, bail};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

/// The measurements under one ablation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Units removed (remove curve) or kept (keep curve); 0 for the unablated baseline.
    pub k: usize,
    /// The class's balanced accuracy.
    pub class_accuracy: f64,
    /// Mean balanced accuracy over the other classes.
    pub others_mean: f64,
    /// Overall (multiclass) accuracy.
    pub accuracy: f64,
    /// Mean log-probability of the true class over the class's images.
    pub class_log_prob: f64,
    /// Its mean over the other classes.
    pub others_log_prob: f64,
}

/// One class's curves.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassCurves {
    /// Class name.
    pub class: String,
    /// Nothing ablated.
    pub baseline: CurvePoint,
    /// The class's top-k units removed, for each k.
    pub remove_top: Vec<CurvePoint>,
    /// Only the class's top-k units kept (all others removed), for each k.
    pub keep_top: Vec<CurvePoint>,
}

impl ClassCurves {
    /// The remove-curve point at `k`, if measured.
    pub fn removed(&self, k: usize) -> Option<&CurvePoint> {
        self.remove_top.iter().find(|p| p.k == k)
    }

    /// The keep-curve point at `k`, if measured.
    pub fn kept(&self, k: usize) -> Option<&CurvePoint> {
        self.keep_top.iter().find(|p| p.k == k)
    }
}

fn others_mean(v: &[f64], class: usize) -> f64 {
    let n = v.len().saturating_sub(1).max(1);
    (v.iter().sum::<f64>() - v[class]) / n as f64
}

fn point(k: usize, class: usize, bal: &[f64], lp: &[f64], accuracy: f64) -> CurvePoint {
    CurvePoint {
        k,
        class_accuracy: bal[class],
        others_mean: others_mean(bal, class),
        accuracy,
        class_log_prob: lp[class],
        others_log_prob: others_mean(lp, class),
    }
}

/// Measures every class's remove-top-k and keep-top-k conditions, all stacked over one pass
/// through `batches`.
pub fn ablation_curves(
    clf: &Classifier,
    cut: &Cut<'_, Vgg>,
    batches: impl IntoIterator<Item = (Tensor, Tensor)>,
    rankings: &[ClassRanking],
    ks: &[usize],
    opts: SweepOptions,
    bar: Option<&ProgressBar>,
) -> Result<Vec<ClassCurves>> {
    let units = clf.units(cut) as usize;
    if let Some(k) = ks.iter().find(|&&k| k == 0 || k > units) {
        bail!("k = {k} is outside 1..={units} (the layer's units)");
    }
    if rankings.len() != clf.classes.len() {
        bail!(
            "{} rankings given for {} classes",
            rankings.len(),
            clf.classes.len()
        );
    }
    let mut sets = vec![Vec::new()];
    for r in rankings {
        for &k in ks {
            sets.push(remove_top(r, k));
            sets.push(keep_top(r, k));
        }
    }
    let m = measure_under_ablation(clf, cut, batches, &sets, opts, bar)?;
    let bal = to_rows(&m.counts.balanced_accuracy())?;
    let lp = to_rows(&m.true_log_prob)?;
    let acc = Vec::<f64>::try_from(m.counts.accuracy().to_device(Device::Cpu))?;
    let mut out = Vec::new();
    for (c, r) in rankings.iter().enumerate() {
        let mut curves = ClassCurves {
            class: r.class.clone(),
            baseline: point(0, c, &bal[0], &lp[0], acc[0]),
            remove_top: Vec::new(),
            keep_top: Vec::new(),
        };
        for (j, &k) in ks.iter().enumerate() {
            let g = 1 + 2 * (c * ks.len() + j);
            curves.remove_top.push(point(k, c, &bal[g], &lp[g], acc[g]));
            curves
                .keep_top
                .push(point(k, c, &bal[g + 1], &lp[g + 1], acc[g + 1]));
        }
        out.push(curves);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::model::testnet::tiny;
    use crate::classify::ranking::rank_units;
    use crate::classify::sweep::{single_unit_sweep, world_batches};
    use crate::world::SceneClass;

    #[test]
    fn keeping_every_unit_is_the_baseline_and_removing_all_is_constant() {
        let (_vs, clf) = tiny(9);
        let cut = clf.conv_cut("conv5_3").unwrap();
        let opts = SweepOptions {
            batch: 6,
            copies: 16,
        };
        let sweep = single_unit_sweep(
            &clf,
            &cut,
            world_batches(&clf, 0..12, 6, Device::Cpu).unwrap(),
            opts,
            None,
        )
        .unwrap();
        let rankings = rank_units(&sweep, &clf.classes).unwrap();
        let curves = ablation_curves(
            &clf,
            &cut,
            world_batches(&clf, 100..112, 6, Device::Cpu).unwrap(),
            &rankings,
            &[2, 64],
            opts,
            None,
        )
        .unwrap();
        assert_eq!(curves.len(), SceneClass::PAINTED.len());
        for c in &curves {
            // keeping all 64 units removes nothing
            let kept = c.kept(64).unwrap();
            assert_eq!(kept.class_accuracy, c.baseline.class_accuracy);
            assert_eq!(kept.accuracy, c.baseline.accuracy);
            // removing all 64 units gives the same prediction for every image, whatever the class
            let gone = c.removed(64).unwrap();
            assert_eq!(gone.accuracy, curves[0].removed(64).unwrap().accuracy);
        }
        let err = ablation_curves(
            &clf,
            &cut,
            world_batches(&clf, 0..6, 6, Device::Cpu).unwrap(),
            &rankings,
            &[65],
            opts,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("k = 65"), "{err}");
    }
}
