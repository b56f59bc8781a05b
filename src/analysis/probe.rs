//! A probe set for the unit analyses: world scenes run once to a classifier's conv layer and kept
//! as features (with the scenes' classes and concept maps), so that many ablation conditions
//! and perturbations cost only the rest of the network.

use crate::classify::Classifier;
use crate::classify::ablation::log_probs_under_ablation;
use crate::classify::metrics::{ClassCounts, to_rows};
use crate::cut::Cut;
use crate::nets::vgg::Vgg;
use crate::sample::{WorldBatch, world_batch};
use crate::train::label_noise::TrainingSet;
use crate::world::CONCEPTS;
use anyhow::{Result, bail};
use std::ops::Range;
use tch::{Device, Kind, Tensor};

/// Largest total size of the cached features (bytes); more is refused with advice.
pub const MAX_FEATURE_BYTES: i64 = 2 << 30;

/// One batch of the probe set at the cut.
pub struct ProbeBatch {
    /// The cut layer's output `[B, C, h, w]` (as the network computes it, before any ReLU
    /// that follows a conv).
    pub features: Tensor,
    /// Each scene's class as the classifier's output index `[B]`.
    pub truths: Tensor,
    /// Concept maps nearest-downsampled to the features' side `[B, h, w]` (world concept ids).
    pub concepts: Tensor,
}

/// World scenes `seeds` (classes cycling through every world class) at `clf`'s layer `cut`;
/// with `progress`, a bar of that name counts the scenes and is cleared at the end.
pub fn probe_set(
    clf: &Classifier,
    cut: &Cut<'_, Vgg>,
    seeds: Range<u64>,
    batch: usize,
    device: Device,
    progress: Option<&str>,
) -> Result<Vec<ProbeBatch>> {
    let first = seeds.start;
    probe_scenes(
        clf,
        cut,
        seeds.end.saturating_sub(seeds.start),
        batch,
        progress,
        |r| {
            Ok(world_batch(
                &(first + r.start..first + r.end).collect::<Vec<_>>(),
                true,
                device,
            ))
        },
    )
}

/// A label-noise run's training set at `clf`'s layer `cut`, each scene's truth the label the
/// network was trained with (see [`TrainingSet::batch`]).
pub fn probe_training_set(
    clf: &Classifier,
    cut: &Cut<'_, Vgg>,
    set: &TrainingSet,
    batch: usize,
    device: Device,
    progress: Option<&str>,
) -> Result<Vec<ProbeBatch>> {
    probe_scenes(clf, cut, set.len(), batch, progress, |r| {
        set.batch(&r.collect::<Vec<_>>(), device)
    })
}

/// `count` scenes at the cut, rendered `batch` at a time by `render(indices)` (its `classes`:
/// the world class each scene is scored against).
fn probe_scenes(
    clf: &Classifier,
    cut: &Cut<'_, Vgg>,
    count: u64,
    batch: usize,
    progress: Option<&str>,
    render: impl Fn(Range<u64>) -> Result<WorldBatch>,
) -> Result<Vec<ProbeBatch>> {
    if count == 0 {
        bail!("no images to measure on: give at least one sample");
    }
    let bar = progress.map(|name| crate::progress::bar(count, name));
    let _guard = tch::no_grad_guard();
    let outputs = clf.world_class_outputs()?;
    let mut out = Vec::new();
    let mut bytes = 0i64;
    let step = batch.max(1) as u64;
    for start in (0..count).step_by(step as usize) {
        let range = start..(start + step).min(count);
        let n = range.end - range.start;
        let b = render(range)?;
        let features = clf.features(cut, &b.images);
        let s = features.size();
        if s.len() != 4 {
            bail!("the cut layer's output is {s:?}; unit analyses need a conv layer");
        }
        bytes += features.numel() as i64 * 4;
        if bytes > MAX_FEATURE_BYTES {
            bail!(
                "the features of {count} scenes at this layer need more than {} MiB; give fewer samples",
                MAX_FEATURE_BYTES >> 20
            );
        }
        let concepts = b
            .labels
            .unsqueeze(1)
            .to_kind(Kind::Float)
            .upsample_nearest2d([s[2], s[3]], None, None)
            .squeeze_dim(1)
            .to_kind(Kind::Int64);
        out.push(ProbeBatch {
            features,
            truths: outputs.index_select(0, &b.classes.to_device(outputs.device())),
            concepts,
        });
        if let Some(bar) = &bar {
            bar.inc(n);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(out)
}

/// What the network does under each condition over a probe set.
pub struct Measured {
    /// One-vs-all counts per condition and class.
    pub counts: ClassCounts,
    /// Mean log-probability of the true class over each class's images `[G, K]` (f64).
    pub true_log_prob: Tensor,
}

impl Measured {
    /// Overall accuracy per condition.
    pub fn accuracy(&self) -> Result<Vec<f64>> {
        Ok(Vec::<f64>::try_from(
            self.counts.accuracy().to_device(Device::Cpu),
        )?)
    }

    /// Balanced accuracy per condition (row) and class (column).
    pub fn balanced(&self) -> Result<Vec<Vec<f64>>> {
        to_rows(&self.counts.balanced_accuracy())
    }

    /// Mean true-class log-probability per condition (row) and class (column).
    pub fn log_prob(&self) -> Result<Vec<Vec<f64>>> {
        to_rows(&self.true_log_prob)
    }
}

/// Counts over `probe` under conditions: each condition's features come from `perturb(batch
/// index, features)` as a `[G·B, C, h, w]` stack of `G` copies.
pub fn measure_perturbed(
    clf: &Classifier,
    cut: &Cut<'_, Vgg>,
    probe: &[ProbeBatch],
    conditions: usize,
    copies: usize,
    perturb: impl Fn(usize, &Tensor, Range<usize>) -> Result<Tensor>,
) -> Result<Measured> {
    let _guard = tch::no_grad_guard();
    let classes = clf.classes.len() as i64;
    let mut counts: Option<ClassCounts> = None;
    let mut sums: Option<Tensor> = None;
    for (i, pb) in probe.iter().enumerate() {
        let b = pb.features.size()[0];
        let mut parts = Vec::new();
        for start in (0..conditions).step_by(copies.max(1)) {
            let range = start..(start + copies.max(1)).min(conditions);
            let g = range.len() as i64;
            let stacked = perturb(i, &pb.features, range)?;
            let logits = cut.suffix(&stacked);
            let k = logits.size()[1];
            parts.push(logits.view([g, b, k]).log_softmax(2, Kind::Float));
        }
        let lp = Tensor::cat(&parts, 0);
        accumulate(&lp, &pb.truths, classes, &mut counts, &mut sums)?;
    }
    finish(counts, sums)
}

/// Counts over `probe` with each unit set of the cut layer zeroed (stacked copies).
pub fn measure_ablated(
    clf: &Classifier,
    cut: &Cut<'_, Vgg>,
    probe: &[ProbeBatch],
    unit_sets: &[Vec<i64>],
    copies: usize,
) -> Result<Measured> {
    let _guard = tch::no_grad_guard();
    let classes = clf.classes.len() as i64;
    let mut counts: Option<ClassCounts> = None;
    let mut sums: Option<Tensor> = None;
    for pb in probe {
        let lp = log_probs_under_ablation(cut, &pb.features, unit_sets, copies)?;
        accumulate(&lp, &pb.truths, classes, &mut counts, &mut sums)?;
    }
    finish(counts, sums)
}

fn accumulate(
    lp: &Tensor,
    truths: &Tensor,
    classes: i64,
    counts: &mut Option<ClassCounts>,
    sums: &mut Option<Tensor>,
) -> Result<()> {
    let pred = lp.argmax(2, false);
    let c = ClassCounts::from_predictions(&pred, truths, classes)?;
    let truths = truths.to_device(lp.device());
    let g = lp.size()[0];
    let idx = truths.view([1, -1, 1]).expand([g, -1, 1], false);
    let true_lp = lp
        .gather(2, &idx, false)
        .squeeze_dim(2)
        .to_kind(Kind::Double);
    let s = true_lp.matmul(&truths.one_hot(classes).to_kind(Kind::Double));
    *sums = Some(sums.take().map_or(s.shallow_clone(), |t| t + &s));
    match counts {
        None => *counts = Some(c),
        Some(t) => t.add(&c)?,
    }
    Ok(())
}

fn finish(counts: Option<ClassCounts>, sums: Option<Tensor>) -> Result<Measured> {
    match (counts, sums) {
        (Some(counts), Some(sums)) => {
            let per_class = counts.truth.to_kind(Kind::Double).clamp_min(1.0);
            Ok(Measured {
                true_log_prob: sums / per_class,
                counts,
            })
        }
        _ => bail!("no images to measure on: give at least one sample"),
    }
}

/// Per-unit activation profiles on a probe set, post-ReLU and spatially averaged.
pub struct ActivationProfiles {
    /// Mean activation per class (row, the classifier's outputs) and unit (column).
    pub per_class: Vec<Vec<f64>>,
    /// Mean activation over the pixels of each concept (row, world concept ids) and unit;
    /// `None` for concepts absent from the probe set.
    pub per_concept: Vec<Option<Vec<f64>>>,
    /// Mean activation per unit over all images.
    pub mean: Vec<f64>,
}

/// Measures [`ActivationProfiles`].
pub fn activation_profiles(probe: &[ProbeBatch], classes: i64) -> Result<ActivationProfiles> {
    let _guard = tch::no_grad_guard();
    let concepts = CONCEPTS.len() as i64;
    let mut class_sum: Option<Tensor> = None;
    let mut class_n: Option<Tensor> = None;
    let mut concept_sum: Option<Tensor> = None;
    let mut concept_n: Option<Tensor> = None;
    for pb in probe {
        let a = pb.features.relu().to_kind(Kind::Double);
        let per_image = a.mean_dim([2i64, 3].as_slice(), false, Kind::Double); // [B, C]
        let onehot = pb
            .truths
            .to_device(a.device())
            .one_hot(classes)
            .to_kind(Kind::Double);
        let cs = onehot.tr().matmul(&per_image);
        let cn = onehot.sum_dim_intlist([0i64].as_slice(), false, Kind::Double);
        let s = a.size();
        // [B·h·w, C] against [B·h·w, K]
        let flat = a.permute([0, 2, 3, 1]).reshape([-1, s[1]]);
        let lab = pb
            .concepts
            .to_device(a.device())
            .reshape([-1])
            .clamp(0, concepts - 1)
            .one_hot(concepts)
            .to_kind(Kind::Double);
        let ks = lab.tr().matmul(&flat);
        let kn = lab.sum_dim_intlist([0i64].as_slice(), false, Kind::Double);
        let add = |acc: &mut Option<Tensor>, t: Tensor| {
            *acc = Some(acc.take().map_or(t.shallow_clone(), |x| x + &t));
        };
        add(&mut class_sum, cs);
        add(&mut class_n, cn);
        add(&mut concept_sum, ks);
        add(&mut concept_n, kn);
    }
    let (Some(cs), Some(cn), Some(ks), Some(kn)) = (class_sum, class_n, concept_sum, concept_n)
    else {
        bail!("no images to measure on: give at least one sample");
    };
    if bool::try_from(cn.eq(0.0).any())? {
        bail!(
            "some classes have no images; give at least {classes} samples so that every class is seen"
        );
    }
    let per_class = to_rows(&(&cs / cn.unsqueeze(1)))?;
    let concept_counts = Vec::<f64>::try_from(kn.to_device(Device::Cpu))?;
    let per_concept = to_rows(&(&ks / kn.clamp_min(1.0).unsqueeze(1)))?
        .into_iter()
        .zip(concept_counts)
        .map(|(row, n)| (n > 0.0).then_some(row))
        .collect();
    let units = per_class.first().map_or(0, Vec::len);
    let mean = (0..units)
        .map(|u| per_class.iter().map(|r| r[u]).sum::<f64>() / per_class.len() as f64)
        .collect();
    Ok(ActivationProfiles {
        per_class,
        per_concept,
        mean,
    })
}
