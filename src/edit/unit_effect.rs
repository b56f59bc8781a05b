//! Units chosen by their effect (SPEC §3.2's single-unit ablation, extended greedily): every unit
//! of the edited layer zeroed alone, everywhere, and the share of a concept's pixels that goes
//! with it; then, round by round, the units whose removal takes most of what is left, given the
//! units already chosen. The order they are chosen in is a causal ranking, an alternative to
//! ranking units by IoU.
//!
//! Units do not add up: two units that each remove a tenth of the trees may together remove
//! little more than one, so ranking by single effects alone stalls. Each round therefore
//! re-measures the candidates on top of the units already chosen. After the first round only the
//! `pool` units with the largest single effects remain candidates, which keeps the cost near
//! `units + rounds · pool` ablated copies per image.
//!
//! The effects are measured on their own images, ids `first_id .. first_id + samples` (by
//! default far from the ids `0..N` that the analyses measure), so a removal curve over the usual
//! images does not reuse the images the units were picked on.

use super::paint::Painter;
pub use super::ranking::{DEFAULT_EFFECT_FIRST_ID, DEFAULT_EFFECT_SAMPLES, EffectOptions};
use super::verdict::label_fractions;
use crate::cut::stacked_ablated;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Units ranked by their effect on one concept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnitEffects {
    /// The layer.
    pub layer: String,
    /// The concept.
    pub concept: String,
    /// The first image id measured.
    pub first_id: u64,
    /// Images measured.
    pub samples: u64,
    /// The concept's mean fraction of the image without ablation.
    pub baseline_fraction: f64,
    /// Per unit: portion of the concept's pixels removed by zeroing that unit alone
    /// (`−mean Δ / baseline`; negative when the concept grows).
    pub single: Vec<f64>,
    /// The units in the order the rounds chose them.
    pub order: Vec<usize>,
    /// Per round: the portion removed, on the effect images, by the units chosen before it
    /// together with the round's first unit.
    pub rounds: Vec<f64>,
}

impl UnitEffects {
    /// The first `k` units chosen.
    pub fn top(&self, k: usize) -> Result<Vec<usize>> {
        if k > self.order.len() {
            bail!(
                "{k} units asked for, but {} units were ranked at {} ({} in all)",
                self.order.len(),
                self.layer,
                self.single.len()
            );
        }
        Ok(self.order[..k].to_vec())
    }
}

/// Ablation sweeps over a fixed set of images, measured against their unedited segmentation.
struct Sweeper<'a, 'b> {
    painter: &'b Painter<'a>,
    concept: i64,
    labels: i64,
    /// Features of the cut layer and the concept's fraction per image, per batch.
    batches: Vec<(Tensor, Tensor)>,
    copies: usize,
}

impl Sweeper<'_, '_> {
    fn share(&self, images: &Tensor) -> Result<Tensor> {
        let seg = self.painter.segment(&images.clamp(-1.0, 1.0))?;
        Ok(label_fractions(&seg, self.labels).select(1, self.concept))
    }

    /// Sum over the images of the concept's fraction without ablation.
    fn baseline_sum(&self) -> Result<f64> {
        let mut s = 0.0;
        for (_, before) in &self.batches {
            s += f64::try_from(before.sum(Kind::Double))?;
        }
        Ok(s)
    }

    /// Per candidate: the sum over the images of the change in the concept's fraction when
    /// `base` and the candidate are zeroed together.
    fn delta_sums(
        &self,
        base: &[usize],
        candidates: &[usize],
        bar: Option<&indicatif::ProgressBar>,
    ) -> Result<Vec<f64>> {
        let sets: Vec<Vec<i64>> = candidates
            .iter()
            .map(|&c| base.iter().chain([&c]).map(|&u| u as i64).collect())
            .collect();
        let mut sums = vec![0f64; candidates.len()];
        for (features, before) in &self.batches {
            let b = features.size()[0];
            for (ci, chunk) in sets.chunks(self.copies).enumerate() {
                let stacked = stacked_ablated(features, chunk)?;
                let after = self
                    .share(&self.painter.cut().suffix(&stacked))?
                    .view([chunk.len() as i64, b]);
                let delta = (after - before.unsqueeze(0)).sum_dim_intlist(1, false, Kind::Double);
                for (j, d) in Vec::<f64>::try_from(delta)?.into_iter().enumerate() {
                    sums[ci * self.copies + j] += d;
                }
                if let Some(bar) = bar {
                    bar.inc((chunk.len() as i64 * b) as u64);
                }
            }
        }
        Ok(sums)
    }
}

/// The `take` candidates with the largest removal (ties by unit index), largest first.
fn best(candidates: &[usize], removed: &[f64], take: usize) -> Vec<(usize, f64)> {
    let mut pairs: Vec<(usize, f64)> = candidates.iter().copied().zip(removed.to_vec()).collect();
    pairs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    pairs.truncate(take);
    pairs
}

/// Ranks the first `k` units of the painter's layer by their effect on `opts.concept` (see the
/// module documentation): a single-unit sweep over every unit, then rounds of `opts.step` units
/// from the `opts.pool` best single units until `k` are chosen.
pub fn rank_by_effect(painter: &Painter, opts: &EffectOptions, k: usize) -> Result<UnitEffects> {
    if opts.samples == 0 || opts.batch == 0 || opts.copies == 0 || opts.step == 0 {
        bail!(
            "the effect ranking needs at least 1 image (--rank-samples), 1 unit per round \
             (--rank-step), and at least 1 image and 1 copy per forward"
        );
    }
    let segmenter = painter.segmenter();
    let concept = segmenter.label_id(&opts.concept)? as i64;
    let cut = painter.cut();
    let _guard = tch::no_grad_guard();
    crate::zsample::check_id_range("--rank-samples", opts.first_id, opts.samples)?;
    let ids: Vec<u64> = (opts.first_id..opts.first_id.saturating_add(opts.samples)).collect();
    // drawn at once: a latent row costs drawing every row before it
    let latents = painter.latents(&ids)?;
    let mut sweeper = Sweeper {
        painter,
        concept,
        labels: segmenter.labels().len() as i64,
        batches: Vec::new(),
        copies: opts.copies,
    };
    for (i, chunk) in ids.chunks(opts.batch).enumerate() {
        let z = latents.narrow(0, (i * opts.batch) as i64, chunk.len() as i64);
        let features = cut.prefix(&z);
        let before = sweeper.share(&cut.suffix(&features))?;
        sweeper.batches.push((features, before));
    }
    let units = sweeper.batches[0].0.size()[1] as usize;
    if k > units {
        bail!(
            "{k} units asked for, but {} has only {units} units",
            painter.layer()
        );
    }
    let n = opts.samples as f64;
    let baseline_fraction = sweeper.baseline_sum()? / n;
    if baseline_fraction <= 0.0 {
        bail!(
            "no {} pixels in the {} effect images (ids {}..{}): no unit can remove any; measure \
             more images or another concept",
            opts.concept,
            opts.samples,
            ids[0],
            ids[0] + opts.samples
        );
    }
    let removed = |sums: Vec<f64>| -> Vec<f64> {
        sums.iter()
            .map(|d| 0.0 - d / n / baseline_fraction)
            .collect()
    };
    let pool = opts.pool.max(k).min(units);
    let rounds = k.saturating_sub(opts.step).div_ceil(opts.step);
    let work = (units + rounds * pool) as u64 * opts.samples;
    let bar = opts
        .progress
        .then(|| crate::progress::bar(work, "ablated images"));
    let all: Vec<usize> = (0..units).collect();
    let single = removed(sweeper.delta_sums(&[], &all, bar.as_ref())?);
    let mut order: Vec<usize> = Vec::new();
    let mut rounds = Vec::new();
    let (mut candidates, mut scores): (Vec<usize>, Vec<f64>) =
        best(&all, &single, pool).into_iter().unzip();
    while order.len() < k {
        if !order.is_empty() {
            scores = removed(sweeper.delta_sums(&order, &candidates, bar.as_ref())?);
        }
        let chosen = best(&candidates, &scores, opts.step.min(k - order.len()));
        rounds.push(chosen[0].1);
        order.extend(chosen.iter().map(|c| c.0));
        let left: Vec<(usize, f64)> = candidates
            .iter()
            .copied()
            .zip(scores.iter().copied())
            .filter(|(c, _)| !order.contains(c))
            .collect();
        (candidates, scores) = left.into_iter().unzip();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(UnitEffects {
        layer: painter.layer().to_string(),
        concept: opts.concept.clone(),
        first_id: opts.first_id,
        samples: opts.samples,
        baseline_fraction,
        single,
        order,
        rounds,
    })
}

/// What a saved effect ranking is kept under besides its options: the generator's weights and
/// the segmenter that counted the pixels.
#[derive(Clone, Copy, Debug)]
pub struct SavedRanking<'a> {
    /// The digest of the generator's weights.
    pub digest: &'a str,
    /// The segmenter's name.
    pub segmenter: &'a str,
    /// The directory the rankings are saved in.
    pub root: &'a Path,
}

impl SavedRanking<'_> {
    /// Where the ranking of `opts.concept` for `k` units of the painter's layer is kept: the
    /// file name holds the weights' digest, the layer, the segmenter, the latent stream and
    /// every option that changes the result.
    pub fn path(&self, painter: &Painter, opts: &EffectOptions, k: usize) -> PathBuf {
        use super::units_source::file_safe;
        let digest = self.digest;
        self.root.join(format!(
            "effects-{}-{}-{}-z{}-{}-k{k}-ids{}+{}-step{}-pool{}.json",
            &digest[..digest.len().min(8)],
            painter.layer(),
            file_safe(self.segmenter),
            painter.stream(),
            file_safe(&opts.concept),
            opts.first_id,
            opts.samples,
            opts.step,
            opts.pool
        ))
    }

    /// [`rank_by_effect`], read from [`SavedRanking::path`] when a run with the same weights and
    /// options saved it there, else run (saying so on stderr) and saved atomically.
    pub fn rank(&self, painter: &Painter, opts: &EffectOptions, k: usize) -> Result<UnitEffects> {
        let path = self.path(painter, opts, k);
        if path.exists() {
            let text = crate::fsutil::read_text(&path, "unit ranking")
                .with_context(|| format!("cannot read {}", path.display()))?;
            let effects: UnitEffects = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a saved effect ranking; delete it to measure again",
                    path.display()
                )
            })?;
            eprintln!("using the saved effect ranking {}", path.display());
            return Ok(effects);
        }
        eprintln!(
            "ranking the {} units of {} by their effect on {} over images {}..{} (once; later \
             runs reuse {})",
            k,
            painter.layer(),
            opts.concept,
            opts.first_id,
            opts.first_id.saturating_add(opts.samples),
            path.display()
        );
        let effects = rank_by_effect(painter, opts, k)?;
        crate::fsutil::write_json(&path, &effects)?;
        Ok(effects)
    }
}
