//! Concept removal curves (SPEC §3.2): zero the top-k units of a concept everywhere and measure
//! the portion of the concept's pixels removed, for several k.
//!
//! Per image, `Δ = fraction_after − fraction_before` of the concept (label counts over all
//! segmentation channels divided by the pixel count, both computed in the same batch). The
//! reported value is `−mean Δ / baseline fraction`, with a 99% interval of `2.58 · stderr`
//! (scaled the same way); the mean fraction of every other label after the ablation is kept too.
//!
//! The units are the concept's top units by IoU from the dissection, as in the PNAS curve, or
//! units chosen by their ablation effect on other images ([`super::unit_effect`]).

use super::Session;
pub use super::ranking::UnitRanking;
use super::unit_effect::{EffectOptions, UnitEffects};
use super::verdict::label_fractions;
use crate::chart::{Axis, Line, LineChart, sentence_case};
use crate::cut::Edit;
use crate::fsutil::write_json;
use anyhow::{Result, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The k values of the PNAS tree curve.
pub const DEFAULT_KS: [usize; 6] = [0, 2, 4, 8, 20, 30];

/// Images a removal curve is measured on by default (ids `0..N`).
pub const DEFAULT_SAMPLES: u64 = 200;

/// Images per forward pass of a removal curve by default.
pub const DEFAULT_BATCH: usize = 25;

/// What to ablate and over which images.
#[derive(Clone, Debug)]
pub struct AblationOptions {
    /// The concept whose units are zeroed.
    pub concept: String,
    /// Numbers of top units to zero.
    pub ks: Vec<usize>,
    /// Images: ids `0..samples`.
    pub samples: u64,
    /// Images per forward pass.
    pub batch: usize,
    /// How the units are chosen; effect images must lie clear of the measured ids
    /// `0..samples`.
    pub ranking: UnitRanking,
    /// Accept effect images among the measured ones (a check that a ranking's rounds are the
    /// curve on its own images; a curve reported this way is biased towards its units).
    pub overlap_allowed: bool,
    /// Show a progress bar.
    pub progress: bool,
}

/// The effect of zeroing the top k units.
#[derive(Clone, Debug, Serialize)]
pub struct AblationPoint {
    /// Units zeroed.
    pub k: usize,
    /// Which.
    pub units: Vec<usize>,
    /// Mean per-image change of the concept's fraction of the image.
    pub mean_delta: f64,
    /// Standard error of `mean_delta`.
    pub stderr: f64,
    /// Portion of the concept's pixels removed: `−mean_delta / baseline`.
    pub removed: f64,
    /// Half-width of the 99% interval of `removed` (`2.58 · stderr / baseline`).
    pub ci99: f64,
    /// Mean fraction of the image per label after the ablation.
    pub fractions: BTreeMap<String, f64>,
}

/// A removal curve.
#[derive(Clone, Debug, Serialize)]
pub struct AblationResult {
    /// The model.
    pub model: String,
    /// The layer.
    pub layer: String,
    /// The concept.
    pub concept: String,
    /// How the units were chosen: `iou` or `effect`.
    pub ranking: String,
    /// The effects the units were chosen by (`effect` ranking only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effects: Option<UnitEffects>,
    /// Images measured.
    pub samples: u64,
    /// The concept's mean fraction of the image without ablation.
    pub baseline_fraction: f64,
    /// Mean fraction of the image per label without ablation.
    pub baseline: BTreeMap<String, f64>,
    /// One point per k.
    pub points: Vec<AblationPoint>,
}

#[derive(Default, Clone)]
struct Sums {
    n: f64,
    delta: f64,
    delta_sq: f64,
    fractions: Vec<f64>,
}

impl AblationOptions {
    /// The curve of `concept` with the defaults: k = 0, 2, 4, 8, 20, 30 over ids 0..200, 25
    /// images a forward, units by IoU, no progress bar.
    pub fn new(concept: &str) -> Self {
        Self {
            concept: concept.to_string(),
            ks: DEFAULT_KS.to_vec(),
            samples: DEFAULT_SAMPLES,
            batch: DEFAULT_BATCH,
            ranking: UnitRanking::Iou,
            overlap_allowed: false,
            progress: false,
        }
    }

    /// Checks the options, naming the one to fix: at least 2 images and 1 per batch, some k,
    /// and effect images that do not overlap the measured ones (unless allowed).
    pub fn validate(&self) -> Result<()> {
        if self.samples < 2 || self.batch == 0 {
            bail!("ablation needs --samples of at least 2 and --batch of at least 1");
        }
        crate::zsample::check_id_range("--samples", 0, self.samples)?;
        if self.ks.is_empty() {
            bail!("no k given; use e.g. --k 0,2,4,8,20,30");
        }
        if let UnitRanking::Effect(e) = &self.ranking
            && !self.overlap_allowed
        {
            let ids = e.ids();
            if ids.start < self.samples {
                bail!(
                    "the effect images (ids {}..{}) overlap the measured ids 0..{}; give \
                     --rank-first-id of at least {}",
                    ids.start,
                    ids.end,
                    self.samples,
                    self.samples
                );
            }
        }
        Ok(())
    }
}

/// Runs the removal curve with `session`'s generator, segmenter and rankings.
pub fn run_ablation(session: &Session, opts: &AblationOptions) -> Result<AblationResult> {
    opts.validate()?;
    let concept = session.segmenter.label_id(&opts.concept)? as i64;
    let kmax = opts.ks.iter().copied().max().unwrap_or(0);
    let mut effects = None;
    let top: Vec<usize> = match (&opts.ranking, kmax) {
        (_, 0) => Vec::new(),
        (UnitRanking::Iou, _) => session
            .catalog
            .top_units(&opts.concept, kmax)?
            .into_iter()
            .map(|u| u.0)
            .collect(),
        (UnitRanking::Effect(effect), _) => {
            let e = session.rank_by_effect(
                &EffectOptions {
                    progress: opts.progress,
                    ..effect.for_concept(&opts.concept)
                },
                kmax,
            )?;
            let top = e.top(kmax)?;
            effects = Some(e);
            top
        }
    };
    let labels = session.segmenter.labels();
    let nl = labels.len() as i64;
    let painter = session.painter()?;
    let cut = painter.cut();
    let _guard = tch::no_grad_guard();
    let mut base_sum = vec![0f64; labels.len()];
    let mut sums = vec![
        Sums {
            fractions: vec![0.0; labels.len()],
            ..Default::default()
        };
        opts.ks.len()
    ];
    let ids: Vec<u64> = (0..opts.samples).collect();
    let bar = opts
        .progress
        .then(|| crate::progress::bar(opts.samples, "images"));
    for chunk in ids.chunks(opts.batch) {
        let features = cut.prefix(&painter.latents(chunk)?);
        let before = label_fractions(
            &painter.segment(&cut.suffix(&features).clamp(-1.0, 1.0))?,
            nl,
        );
        let b: Vec<Vec<f64>> = Vec::try_from(&before.to_device(tch::Device::Cpu))?;
        for row in &b {
            for (s, v) in base_sum.iter_mut().zip(row) {
                *s += v;
            }
        }
        for (ki, &k) in opts.ks.iter().enumerate() {
            let after = if k == 0 {
                before.shallow_clone()
            } else {
                let units: Vec<i64> = top[..k].iter().map(|&u| u as i64).collect();
                let edited = cut.edit(&features, &[Edit::ablate(&units, None)])?;
                label_fractions(&painter.segment(&cut.suffix(&edited).clamp(-1.0, 1.0))?, nl)
            };
            let a: Vec<Vec<f64>> = Vec::try_from(&after.to_device(tch::Device::Cpu))?;
            let s = &mut sums[ki];
            for (ra, rb) in a.iter().zip(&b) {
                let d = ra[concept as usize] - rb[concept as usize];
                s.n += 1.0;
                s.delta += d;
                s.delta_sq += d * d;
                for (f, v) in s.fractions.iter_mut().zip(ra) {
                    *f += v;
                }
            }
        }
        if let Some(bar) = &bar {
            bar.inc(chunk.len() as u64);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let n = opts.samples as f64;
    let by_label = |v: &[f64]| -> BTreeMap<String, f64> {
        labels
            .iter()
            .zip(v)
            .skip(1)
            .map(|(l, x)| (l.name.clone(), x / n))
            .collect()
    };
    let baseline_fraction = base_sum[concept as usize] / n;
    if baseline_fraction <= 0.0 {
        bail!(
            "no {} pixels in the {} images: nothing to remove; measure more --samples or another concept",
            opts.concept,
            opts.samples
        );
    }
    let points = opts
        .ks
        .iter()
        .zip(&sums)
        .map(|(&k, s)| {
            let mean = s.delta / s.n;
            let var = ((s.delta_sq - s.n * mean * mean) / (s.n - 1.0)).max(0.0);
            let stderr = (var / s.n).sqrt();
            AblationPoint {
                k,
                units: top[..k].to_vec(),
                mean_delta: mean,
                stderr,
                removed: 0.0 - mean / baseline_fraction,
                ci99: 2.58 * stderr / baseline_fraction,
                fractions: by_label(&s.fractions),
            }
        })
        .collect();
    Ok(AblationResult {
        model: session.model.clone(),
        layer: session.catalog.layer.clone(),
        concept: opts.concept.clone(),
        ranking: opts.ranking.name().to_string(),
        effects,
        samples: opts.samples,
        baseline_fraction,
        baseline: by_label(&base_sum),
        points,
    })
}

/// Writes `ablate-<concept>.json` and the chart `ablate-<concept>.svg` / `.png` (portion
/// removed, %, vs k) into `dir`; returns the JSON and PNG paths.
pub fn write_ablation(
    result: &AblationResult,
    dir: &Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let json = dir.join(format!("ablate-{}.json", result.concept));
    let png = dir.join(format!("ablate-{}.png", result.concept));
    write_json(&json, result)?;
    ablation_chart(result)?.save(&png.with_extension(""))?;
    Ok((json, png))
}

/// The removal curve: percent of the concept's pixels removed against the number of units
/// zeroed, with its 99% interval shaded.
pub fn ablation_chart(result: &AblationResult) -> Result<crate::chart::Figure> {
    let ranking = if result.ranking == "iou" {
        "IoU"
    } else {
        result.ranking.as_str()
    };
    let title = sentence_case(&format!(
        "{} pixels removed by zeroing the top units by {ranking} at {}",
        result.concept, result.layer
    ));
    let points: Vec<(f64, f64)> = result
        .points
        .iter()
        .map(|p| (p.k as f64, 100.0 * p.removed))
        .collect();
    let lo: Vec<f64> = result
        .points
        .iter()
        .map(|p| 100.0 * (p.removed - p.ci99))
        .collect();
    let hi: Vec<f64> = result
        .points
        .iter()
        .map(|p| 100.0 * (p.removed + p.ci99))
        .collect();
    LineChart::new(
        &title,
        Axis::linear("units zeroed (k)"),
        Axis::linear(&format!("{} pixels removed (%)", result.concept)),
    )
    .line(Line::new("mean over images", &points).interval(&lo, &hi, "99% interval"))
    .note(&format!("{} images", result.samples))
    .render()
}
