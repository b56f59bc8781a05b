//! Counting predictions under ablation conditions over a stream of image batches, and the
//! single-unit sweep (every unit ablated alone) that importance rankings come from.

use super::ablation::log_probs_under_ablation;
use super::metrics::{ClassCounts, to_rows};
use super::model::Classifier;
use crate::cut::Cut;
use crate::nets::vgg::Vgg;
use crate::sample::world_batch;
use anyhow::{Result, bail};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// How the work is batched.
#[derive(Clone, Copy, Debug)]
pub struct SweepOptions {
    /// Images per prefix forward.
    pub batch: usize,
    /// Ablated copies per suffix forward.
    pub copies: usize,
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self {
            batch: 50,
            copies: 32,
        }
    }
}

/// World scenes `seeds` as `(images, classes)` batches for `clf`, the scenes' classes cycling
/// through every world class (seed mod their count) so that each has the same number of images,
/// and read as `clf`'s outputs ([`Classifier::world_class_outputs`]).
pub fn world_batches(
    clf: &Classifier,
    seeds: Range<u64>,
    batch: usize,
    device: Device,
) -> Result<impl Iterator<Item = (Tensor, Tensor)> + use<>> {
    let outputs = clf.world_class_outputs()?.to_device(device);
    let seeds: Vec<u64> = seeds.collect();
    let batch = batch.max(1);
    Ok((0..seeds.len().div_ceil(batch)).map(move |i| {
        let chunk = &seeds[i * batch..((i + 1) * batch).min(seeds.len())];
        let b = world_batch(chunk, true, device);
        (b.images, outputs.index_select(0, &b.classes))
    }))
}

/// Where the time of [`measure_under_ablation`] went, in seconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct SweepTiming {
    /// Running the network to the cut (once per batch).
    pub prefix: f64,
    /// Stacking ablated copies and running the rest of the network on them.
    pub suffix: f64,
}

/// What a pass under ablation conditions measured.
#[derive(Debug)]
pub struct AblationMeasures {
    /// One-vs-all counts per condition and class.
    pub counts: ClassCounts,
    /// Mean log-probability of the true class over each class's images, per condition and
    /// class (`[G, K]`, f64): a graded measure of damage that still moves when no
    /// prediction flips.
    pub true_log_prob: Tensor,
    /// Where the time went.
    pub timing: SweepTiming,
}

/// Measures each ablation condition (`unit_sets[g]` zeroed at the cut) over every batch: the
/// prefix runs once per batch, the suffix on stacked copies.
pub fn measure_under_ablation(
    clf: &Classifier,
    cut: &Cut<'_, Vgg>,
    batches: impl IntoIterator<Item = (Tensor, Tensor)>,
    unit_sets: &[Vec<i64>],
    opts: SweepOptions,
    bar: Option<&ProgressBar>,
) -> Result<AblationMeasures> {
    let _guard = tch::no_grad_guard();
    let classes = clf.classes.len() as i64;
    let mut total: Option<ClassCounts> = None;
    let mut log_prob_sum: Option<Tensor> = None;
    let mut timing = SweepTiming::default();
    for (images, truths) in batches {
        let t0 = Instant::now();
        let h = clf.features(cut, &images);
        let _ = h.sum(Kind::Float).double_value(&[]);
        let t1 = Instant::now();
        let lp = log_probs_under_ablation(cut, &h, unit_sets, opts.copies)?;
        let pred = lp.argmax(2, false);
        let _ = pred.sum(Kind::Int64).int64_value(&[]);
        timing.prefix += (t1 - t0).as_secs_f64();
        timing.suffix += t1.elapsed().as_secs_f64();
        let counts = ClassCounts::from_predictions(&pred, &truths, classes)?;
        let truths = truths.to_device(lp.device());
        let g = lp.size()[0];
        let idx = truths.view([1, -1, 1]).expand([g, -1, 1], false);
        let true_lp = lp
            .gather(2, &idx, false)
            .squeeze_dim(2)
            .to_kind(Kind::Double);
        let sums = true_lp.matmul(&truths.one_hot(classes).to_kind(Kind::Double));
        log_prob_sum = Some(log_prob_sum.map_or(sums.shallow_clone(), |t| t + &sums));
        match &mut total {
            None => total = Some(counts),
            Some(t) => t.add(&counts)?,
        }
        if let Some(bar) = bar {
            bar.inc(images.size()[0] as u64);
        }
    }
    match (total, log_prob_sum) {
        (Some(counts), Some(sums)) => {
            let per_class = counts.truth.to_kind(Kind::Double).clamp_min(1.0);
            Ok(AblationMeasures {
                true_log_prob: sums / per_class,
                counts,
                timing,
            })
        }
        _ => bail!("no images to measure on: give at least one sample"),
    }
}

/// Every unit of the cut layer ablated alone, measured per class.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SingleUnitSweep {
    /// Balanced accuracy per class with nothing ablated.
    pub baseline: Vec<f64>,
    /// Overall accuracy with nothing ablated.
    pub baseline_accuracy: f64,
    /// Balanced accuracy per unit (row) and class (column) with that unit ablated.
    pub ablated: Vec<Vec<f64>>,
    /// Overall accuracy per unit with that unit ablated.
    pub accuracy: Vec<f64>,
    /// Mean log-probability of the true class over each class's images, nothing ablated.
    pub baseline_log_prob: Vec<f64>,
    /// The same per unit (row) and class (column) with that unit ablated.
    pub ablated_log_prob: Vec<Vec<f64>>,
    /// Images measured on.
    pub images: i64,
    /// Wall time of the sweep in seconds.
    pub seconds: f64,
    /// Of which: prefix and suffix time.
    #[serde(default)]
    pub timing: SweepTiming,
}

impl SingleUnitSweep {
    /// Importance of each unit as the drop in overall accuracy when it alone is ablated.
    pub fn accuracy_drop(&self) -> Vec<f64> {
        self.accuracy
            .iter()
            .map(|a| self.baseline_accuracy - a)
            .collect()
    }

    /// Importance of each unit as the drop of the true class's mean log-probability when it
    /// alone is ablated, averaged over classes: graded where accuracy does not move.
    pub fn log_prob_drop(&self) -> Vec<f64> {
        let k = self.baseline_log_prob.len().max(1) as f64;
        self.ablated_log_prob
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&self.baseline_log_prob)
                    .map(|(a, b)| b - a)
                    .sum::<f64>()
                    / k
            })
            .collect()
    }

    /// Per-unit importance for correlations, and what it measures: the accuracy drop, or the
    /// log-probability drop when every unit's accuracy drop is the same (units too redundant
    /// for one of them to flip a decision).
    pub fn importance(&self) -> (Vec<f64>, ImportanceMeasure) {
        let acc = self.accuracy_drop();
        let constant = acc.windows(2).all(|w| w[0] == w[1]);
        if constant {
            (self.log_prob_drop(), ImportanceMeasure::LogProbDrop)
        } else {
            (acc, ImportanceMeasure::AccuracyDrop)
        }
    }
}

/// What a per-unit importance value measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceMeasure {
    /// Drop of overall accuracy with the unit ablated.
    AccuracyDrop,
    /// Drop of the true class's mean log-probability with the unit ablated, averaged over classes.
    LogProbDrop,
}

impl std::fmt::Display for ImportanceMeasure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AccuracyDrop => "accuracy drop",
            Self::LogProbDrop => "log-probability drop",
        })
    }
}

/// Ablates each unit of the cut layer alone (plus one unablated condition) over `batches`.
pub fn single_unit_sweep(
    clf: &Classifier,
    cut: &Cut<'_, Vgg>,
    batches: impl IntoIterator<Item = (Tensor, Tensor)>,
    opts: SweepOptions,
    bar: Option<&ProgressBar>,
) -> Result<SingleUnitSweep> {
    let start = Instant::now();
    let units = clf.units(cut);
    let mut sets = vec![Vec::new()];
    sets.extend((0..units).map(|u| vec![u]));
    let m = measure_under_ablation(clf, cut, batches, &sets, opts, bar)?;
    let (counts, timing) = (&m.counts, m.timing);
    let mut bal = to_rows(&counts.balanced_accuracy())?;
    let mut lp = to_rows(&m.true_log_prob)?;
    let acc = Vec::<f64>::try_from(counts.accuracy().to_device(Device::Cpu))?;
    let baseline = bal.remove(0);
    Ok(SingleUnitSweep {
        baseline,
        baseline_accuracy: acc[0],
        ablated: bal,
        accuracy: acc[1..].to_vec(),
        baseline_log_prob: lp.remove(0),
        ablated_log_prob: lp,
        images: counts.total,
        seconds: start.elapsed().as_secs_f64(),
        timing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::model::testnet::tiny;
    use crate::cut::Edit;
    use tch::Kind;

    #[test]
    fn sweep_rows_match_separate_ablated_runs() {
        let (_vs, clf) = tiny(5);
        let cut = clf.conv_cut("conv5_3").unwrap();
        let batches: Vec<(Tensor, Tensor)> = world_batches(&clf, 0..12, 5, Device::Cpu)
            .unwrap()
            .collect();
        let sweep = single_unit_sweep(
            &clf,
            &cut,
            batches
                .iter()
                .map(|(a, b)| (a.shallow_clone(), b.shallow_clone())),
            SweepOptions {
                batch: 5,
                copies: 7,
            },
            None,
        )
        .unwrap();
        assert_eq!(sweep.images, 12);
        assert_eq!(sweep.ablated.len(), 64);
        for unit in [0i64, 17, 63] {
            let mut preds = Vec::new();
            let mut truths = Vec::new();
            let mut lp_sum = [0f64; 6];
            let mut lp_n = [0f64; 6];
            for (images, classes) in &batches {
                let h = clf.features(&cut, images);
                let out = cut.suffix(&cut.edit(&h, &[Edit::ablate(&[unit], None)]).unwrap());
                preds.push(out.argmax(1, false));
                truths.push(classes.shallow_clone());
                let lp = out.log_softmax(1, Kind::Float);
                for (i, t) in Vec::<i64>::try_from(classes)
                    .unwrap()
                    .into_iter()
                    .enumerate()
                {
                    lp_sum[t as usize] += lp.double_value(&[i as i64, t]);
                    lp_n[t as usize] += 1.0;
                }
            }
            for c in 0..6 {
                let want = lp_sum[c] / lp_n[c];
                let got = sweep.ablated_log_prob[unit as usize][c];
                assert!(
                    (got - want).abs() < 1e-4,
                    "unit {unit} class {c}: {got} vs {want}"
                );
            }
            let c =
                ClassCounts::from_predictions(&Tensor::cat(&preds, 0), &Tensor::cat(&truths, 0), 6)
                    .unwrap();
            let want = to_rows(&c.balanced_accuracy()).unwrap().remove(0);
            assert_eq!(sweep.ablated[unit as usize], want, "unit {unit}");
            let acc = f64::try_from(c.accuracy().get(0).to_kind(Kind::Double)).unwrap();
            assert_eq!(sweep.accuracy[unit as usize], acc);
        }
    }
}
