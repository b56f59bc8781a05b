//! The importance analysis end to end: single-unit sweep on a training split, per-class rankings,
//! remove/keep curves on a held-out split, `importance.json` and line charts.
//!
//! Splits are world seed ranges: the training split starts at [`TRAIN_SPLIT_START`] and the
//! held-out split at [`HELDOUT_SPLIT_START`]. Both lie below the classifier's own training seeds
//! (≥ 2⁴⁰) and above its card's evaluation seeds (0..1000). Classes cycle through the scene
//! classes (seed mod 9, the world's class count), so every class has the same number of images.

use super::curves::{ClassCurves, ablation_curves};
use super::model::Classifier;
use super::ranking::{ClassRanking, rank_units};
use super::sweep::{SingleUnitSweep, SweepOptions, single_unit_sweep, world_batches};
use crate::chart::{Axis, Figure, Line, LineChart, PALETTE};
use crate::fsutil::write_json;
use crate::progress;
use crate::world::SIZE;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Device;

/// First world seed of the training split units are ranked on.
pub const TRAIN_SPLIT_START: u64 = 100_000;
/// First world seed of the held-out split the curves are measured on.
pub const HELDOUT_SPLIT_START: u64 = 200_000;
/// The default k values of the remove/keep curves (those below the layer's unit count are used).
pub const DEFAULT_KS: [usize; 9] = [1, 2, 3, 4, 5, 8, 20, 32, 64];

/// What to measure.
#[derive(Clone, Debug)]
pub struct ImportanceOptions {
    /// The conv layer whose units are ablated.
    pub layer: String,
    /// World seeds of the training split.
    pub train: Range<u64>,
    /// World seeds of the held-out split.
    pub heldout: Range<u64>,
    /// k values of the curves.
    pub ks: Vec<usize>,
    /// Batching.
    pub sweep: SweepOptions,
    /// Device the world batches are put on.
    pub device: Device,
    /// Show progress bars.
    pub progress: bool,
}

impl ImportanceOptions {
    /// `samples` training and `heldout` held-out scenes from the default splits.
    pub fn new(layer: &str, samples: u64, heldout: u64, device: Device) -> Self {
        Self {
            layer: layer.to_string(),
            train: TRAIN_SPLIT_START..TRAIN_SPLIT_START + samples,
            heldout: HELDOUT_SPLIT_START..HELDOUT_SPLIT_START + heldout,
            ks: DEFAULT_KS.to_vec(),
            sweep: SweepOptions::default(),
            device,
            progress: false,
        }
    }
}

/// Everything the analysis measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportanceReport {
    /// The classifier.
    pub model: String,
    /// The layer, as given.
    pub layer: String,
    /// Units of the layer.
    pub units: i64,
    /// Class names.
    pub classes: Vec<String>,
    /// World seeds of the training split (`A..B`).
    pub train_seeds: String,
    /// World seeds of the held-out split (`A..B`).
    pub heldout_seeds: String,
    /// Remarks about the input (resizing and the like).
    pub notes: Vec<String>,
    /// The single-unit sweep on the training split.
    pub sweep: SingleUnitSweep,
    /// Per-class rankings, most damaging unit first.
    pub rankings: Vec<ClassRanking>,
    /// Per-class curves on the held-out split.
    pub curves: Vec<ClassCurves>,
    /// Wall time of the curves in seconds.
    pub curves_seconds: f64,
}

impl ImportanceReport {
    /// The ranking of a class; an unknown class is an error listing the known ones.
    pub fn ranking(&self, class: &str) -> Result<&ClassRanking> {
        self.rankings
            .iter()
            .find(|r| r.class == class)
            .with_context(|| {
                format!(
                    "unknown class '{class}'; the importance results cover: {}",
                    self.classes.join(", ")
                )
            })
    }

    /// One line per class: baseline, after removing the top 4, the other classes' mean drop
    /// when removing the top 4, and keep-top-20 (where measured).
    pub fn summary_lines(&self) -> Vec<String> {
        let fmt = |p: Option<f64>| p.map_or("-".to_string(), |v| format!("{v:.3}"));
        let mut out = vec![format!(
            "{:<12} {:>8} {:>10} {:>12} {:>10}",
            "class", "baseline", "remove-4", "others-drop", "keep-20"
        )];
        for c in &self.curves {
            let r4 = c.removed(4);
            out.push(format!(
                "{:<12} {:>8.3} {:>10} {:>12} {:>10}",
                c.class,
                c.baseline.class_accuracy,
                fmt(r4.map(|p| p.class_accuracy)),
                fmt(r4.map(|p| c.baseline.others_mean - p.others_mean)),
                fmt(c.kept(20).map(|p| p.class_accuracy)),
            ));
        }
        out
    }
}

/// Runs the analysis.
pub fn importance(clf: &Classifier, opts: &ImportanceOptions) -> Result<ImportanceReport> {
    if opts.train.is_empty() || opts.heldout.is_empty() {
        bail!("both splits need at least one sample: give --samples and --heldout above 0");
    }
    let cut = clf.conv_cut(&opts.layer)?;
    let units = clf.units(&cut);
    let mut ks: Vec<usize> = opts
        .ks
        .iter()
        .copied()
        .filter(|&k| k > 0 && (k as i64) < units)
        .collect();
    ks.sort_unstable();
    ks.dedup();
    let probe = tch::Tensor::zeros(
        [1, 3, SIZE as i64, SIZE as i64],
        (tch::Kind::Float, opts.device),
    );
    let notes: Vec<String> = clf.check_images(&probe)?.into_iter().collect();
    let n_train = opts.train.end - opts.train.start;
    let bar = opts.progress.then(|| progress::bar(n_train, "unit sweep"));
    let sweep = single_unit_sweep(
        clf,
        &cut,
        world_batches(clf, opts.train.clone(), opts.sweep.batch, opts.device)?,
        opts.sweep,
        bar.as_ref(),
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let rankings = rank_units(&sweep, &clf.classes)?;
    let start = Instant::now();
    let n_held = opts.heldout.end - opts.heldout.start;
    let bar = opts.progress.then(|| progress::bar(n_held, "curves"));
    let curves = ablation_curves(
        clf,
        &cut,
        world_batches(clf, opts.heldout.clone(), opts.sweep.batch, opts.device)?,
        &rankings,
        &ks,
        opts.sweep,
        bar.as_ref(),
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(ImportanceReport {
        model: clf.name.clone(),
        layer: opts.layer.clone(),
        units,
        classes: clf.classes.clone(),
        train_seeds: format!("{}..{}", opts.train.start, opts.train.end),
        heldout_seeds: format!("{}..{}", opts.heldout.start, opts.heldout.end),
        notes,
        sweep,
        rankings,
        curves,
        curves_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Draws one class's curves: its balanced accuracy and the other classes' mean, with the top-k
/// removed and with only the top-k kept, against k (log scale), and the baseline dashed.
pub fn curves_chart(c: &ClassCurves, units: i64) -> Result<Figure> {
    let ks: Vec<f64> = c.remove_top.iter().map(|p| p.k as f64).collect();
    let take = |pts: &[super::curves::CurvePoint], f: fn(&super::curves::CurvePoint) -> f64| {
        pts.iter().map(|p| (p.k as f64, f(p))).collect::<Vec<_>>()
    };
    let (remove, keep) = (PALETTE[1], PALETTE[0]);
    LineChart::new(
        &format!(
            "{}: balanced accuracy with its top-k of {units} units removed or kept",
            c.class
        ),
        Axis::log2("units removed or kept (k, log scale)").ticks(&ks),
        Axis::linear("balanced accuracy"),
    )
    .line(
        Line::new(
            "remove top-k: this class",
            &take(&c.remove_top, |p| p.class_accuracy),
        )
        .colour(remove),
    )
    .line(
        Line::new(
            "remove top-k: other classes",
            &take(&c.remove_top, |p| p.others_mean),
        )
        .colour(remove)
        .dashed(),
    )
    .line(
        Line::new(
            "keep top-k: this class",
            &take(&c.keep_top, |p| p.class_accuracy),
        )
        .colour(keep),
    )
    .line(
        Line::new(
            "keep top-k: other classes",
            &take(&c.keep_top, |p| p.others_mean),
        )
        .colour(keep)
        .dashed(),
    )
    .reference("this class, nothing removed", c.baseline.class_accuracy)
    .render()
}

/// Writes `importance.json` and `curves_<class>.svg` / `.png` for every class into `dir`;
/// returns the JSON path and the PNGs.
pub fn write_importance(report: &ImportanceReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = vec![dir.join("importance.json")];
    write_json(&written[0], report)?;
    for c in &report.curves {
        let path = dir.join(format!("curves_{}.png", c.class));
        curves_chart(c, report.units)?.save(&path.with_extension(""))?;
        written.push(path);
    }
    Ok(written)
}

/// Reads an `importance.json` written by [`write_importance`].
pub fn read_importance(path: &Path) -> Result<ImportanceReport> {
    let text = crate::fsutil::read_text(path, "importance results")
        .with_context(|| format!("cannot read importance results {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not an importance.json from `gandissect classify importance`",
            path.display()
        )
    })
}
