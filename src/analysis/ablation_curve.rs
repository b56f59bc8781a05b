//! Cumulative ablation curves (SPEC §12.1, Morcos et al.): a conv layer's units zeroed in a
//! growing set — in random orders (several draws) and ordered by a per-unit score (class
//! selectivity, single-unit importance, mean activation, IoU) — and, as the second perturbation,
//! Gaussian noise of growing size added to every unit; accuracy and per-class balanced accuracy
//! on held-out world scenes against the fraction removed (or the noise level).
//!
//! The curves are on held-out world scenes (scores measured on the training split), or, for a
//! label-noise run, on the run's own training set with the labels it was trained with (scores
//! and curves both). Besides the robustness relative to the intact accuracy, each curve reports
//! its robustness above chance (1/classes). The features are computed once ([`probe`](super::probe)); every level of every order is one copy
//! in a stack of ablated copies run through the rest of the network together.

use super::probe::{
    ProbeBatch, activation_profiles, measure_ablated, measure_perturbed, probe_set,
    probe_training_set,
};
use super::selectivity::selectivity_index;
use crate::chart::{Axis, Figure, Line, LineChart, PALETTE};
use crate::classify::Classifier;
use crate::classify::importance::{HELDOUT_SPLIT_START, TRAIN_SPLIT_START};
use crate::classify::sweep::{ImportanceMeasure, SingleUnitSweep, SweepTiming};
use crate::cut::Cut;
use crate::fsutil::write_json;
use crate::nets::vgg::Vgg;
use crate::prng::SplitMix64;
use crate::train::label_noise::TrainingSet;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Fractions of the layer's units removed by default.
pub const DEFAULT_FRACTIONS: [f64; 12] =
    [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
/// Noise levels by default: the noise's standard deviation in units of each unit's own.
pub const DEFAULT_NOISE: [f64; 8] = [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0];
/// Random orders drawn by default.
pub const DEFAULT_DRAWS: usize = 5;

/// The order units are removed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// A random permutation (several draws).
    Random,
    /// Most class-selective first.
    Selectivity,
    /// Largest single-unit ablation importance first.
    Importance,
    /// Largest mean (post-ReLU) activation first.
    Activation,
    /// Largest IoU with its best concept first (from a dissection).
    Iou,
}

impl Order {
    /// The order's name in charts and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::Selectivity => "selectivity",
            Self::Importance => "importance",
            Self::Activation => "activation",
            Self::Iou => "iou",
        }
    }
}

/// The scenes the curves are measured on.
#[derive(Clone, Debug, Default)]
pub enum Split {
    /// Held-out world scenes, scored against their own class; unit scores on the training
    /// split.
    #[default]
    Heldout,
    /// A label-noise run's fixed training set, scored against the labels it was trained with
    /// (the replaced ones included); unit scores on the same set.
    Training(TrainingSet),
}

impl Split {
    /// The split's name in reports and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Heldout => "heldout",
            Self::Training(_) => "training",
        }
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct CurveOptions {
    /// The conv layer whose units are removed.
    pub layer: String,
    /// World seeds the unit scores are measured on.
    pub train: Range<u64>,
    /// World seeds the curves are measured on.
    pub heldout: Range<u64>,
    /// Which scenes the curves are on (with [`Split::Training`], `train` and `heldout` are not
    /// used).
    pub split: Split,
    /// Fractions of the units removed (0 to 1).
    pub fractions: Vec<f64>,
    /// Random orders drawn.
    pub draws: usize,
    /// Seed of the random orders and of the noise.
    pub seed: u64,
    /// Noise levels (standard deviation in units of each unit's own); empty or only 0: no
    /// noise curve.
    pub noise: Vec<f64>,
    /// Per-unit IoU (from a dissection) to order by; `None`: no IoU order.
    pub iou: Option<Vec<f64>>,
    /// Images per prefix forward.
    pub batch: usize,
    /// Ablated copies per suffix forward.
    pub copies: usize,
    /// Device.
    pub device: Device,
    /// Show progress bars.
    pub progress: bool,
}

impl CurveOptions {
    /// `train` training-split and `heldout` held-out scenes, the default levels and draws.
    pub fn new(layer: &str, train: u64, heldout: u64, device: Device) -> Self {
        Self {
            layer: layer.to_string(),
            train: TRAIN_SPLIT_START..TRAIN_SPLIT_START + train,
            heldout: HELDOUT_SPLIT_START..HELDOUT_SPLIT_START + heldout,
            split: Split::Heldout,
            fractions: DEFAULT_FRACTIONS.to_vec(),
            draws: DEFAULT_DRAWS,
            seed: 0,
            noise: DEFAULT_NOISE.to_vec(),
            iou: None,
            batch: 50,
            copies: 32,
            device,
            progress: false,
        }
    }
}

/// One level of a curve.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Fraction of the units removed (or the noise level).
    pub x: f64,
    /// Units removed (0 for noise).
    pub units: usize,
    /// Overall accuracy (the mean over draws for random orders).
    pub accuracy: f64,
    /// Smallest and largest accuracy over the draws (random orders only).
    pub range: Option<(f64, f64)>,
    /// Standard deviation of the accuracy over the draws (random orders only).
    pub sd: Option<f64>,
    /// Balanced accuracy per class (the mean over draws for random orders).
    pub balanced: Vec<f64>,
}

/// One curve.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Curve {
    /// How the units were removed, or "noise".
    pub order: String,
    /// Units in removal order (scored orders; for random orders the first draw's).
    pub ranking: Vec<i64>,
    /// The levels.
    pub points: Vec<CurvePoint>,
    /// The area under the accuracy curve relative to the baseline: the mean of
    /// accuracy / baseline over the x range (trapezoids), 1 when nothing is lost.
    pub robustness: f64,
    /// The same area above chance: the mean of (accuracy − chance) / (baseline − chance), 1
    /// when nothing is lost, 0 when the curve falls to chance at once (undefined, null, for a
    /// baseline at or below chance).
    pub robustness_above_chance: f64,
}

/// Everything the analysis measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AblationCurveReport {
    /// The classifier.
    pub model: String,
    /// The layer.
    pub layer: String,
    /// Units of the layer.
    pub units: i64,
    /// Class names.
    pub classes: Vec<String>,
    /// Which scenes the curves are on: `heldout` or `training` (a label-noise run's own set).
    pub split: String,
    /// The scenes the unit scores were measured on, in words.
    pub scores_on: String,
    /// The scenes the curves were measured on, in words.
    pub curves_on: String,
    /// Chance accuracy, 1/classes: the floor of [`Curve::robustness_above_chance`].
    pub chance: f64,
    /// Seed of the random orders and the noise.
    pub seed: u64,
    /// Accuracy on the split with nothing removed.
    pub baseline_accuracy: f64,
    /// Balanced accuracy per class on the split with nothing removed.
    pub baseline_balanced: Vec<f64>,
    /// The prediction of the network with every unit removed (class name).
    pub all_removed_prediction: Option<String>,
    /// Removal curves: random first, then the scored orders.
    pub curves: Vec<Curve>,
    /// The noise curve (x: noise standard deviation over the unit's own), when measured.
    pub noise: Option<Curve>,
    /// What the importance order measures.
    pub importance_measure: ImportanceMeasure,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl AblationCurveReport {
    /// The curve of an order.
    pub fn curve(&self, order: Order) -> Option<&Curve> {
        self.curves.iter().find(|c| c.order == order.name())
    }
}

/// Units sorted by `score`, largest first (ties: the smaller unit first).
pub fn order_by(score: &[f64]) -> Vec<i64> {
    let mut units: Vec<i64> = (0..score.len() as i64).collect();
    units.sort_by(|&a, &b| score[b as usize].total_cmp(&score[a as usize]));
    units
}

/// `draws` random permutations of `units` units from `seed` (Fisher–Yates on SplitMix64).
pub fn random_orders(units: usize, draws: usize, seed: u64) -> Vec<Vec<i64>> {
    (0..draws as u64)
        .map(|d| {
            let mut rng = SplitMix64::stream(seed, d);
            let mut v: Vec<i64> = (0..units as i64).collect();
            for i in (1..units).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                v.swap(i, j);
            }
            v
        })
        .collect()
}

/// Units removed at `fraction` of `units` (rounded).
pub fn removed_count(fraction: f64, units: usize) -> usize {
    ((fraction * units as f64).round() as usize).min(units)
}

/// Every unit of the cut layer ablated alone on a probe set (and one unablated condition).
pub fn single_unit_sweep_on(
    clf: &Classifier,
    cut: &Cut<'_, Vgg>,
    probe: &[ProbeBatch],
    copies: usize,
) -> Result<SingleUnitSweep> {
    let start = Instant::now();
    let units = clf.units(cut);
    let mut sets = vec![Vec::new()];
    sets.extend((0..units).map(|u| vec![u]));
    let m = measure_ablated(clf, cut, probe, &sets, copies)?;
    let mut bal = m.balanced()?;
    let mut lp = m.log_prob()?;
    let acc = m.accuracy()?;
    Ok(SingleUnitSweep {
        baseline: bal.remove(0),
        baseline_accuracy: acc[0],
        ablated: bal,
        accuracy: acc[1..].to_vec(),
        baseline_log_prob: lp.remove(0),
        ablated_log_prob: lp,
        images: m.counts.total,
        seconds: start.elapsed().as_secs_f64(),
        timing: SweepTiming::default(),
    })
}

/// Trapezoid mean of `y / base` over the points' x range (1 for a flat curve at `base`).
pub fn robustness(points: &[CurvePoint], base: f64) -> f64 {
    robustness_above(points, base, 0.0)
}

/// Trapezoid mean of `(y − floor) / (base − floor)` over the points' x range: 1 for a flat
/// curve at `base`, 0 for one at `floor`; NaN when `base ≤ floor` or the x range is empty.
pub fn robustness_above(points: &[CurvePoint], base: f64, floor: f64) -> f64 {
    if points.len() < 2 || base <= floor {
        return f64::NAN;
    }
    let span = points.last().map_or(0.0, |p| p.x) - points[0].x;
    if span <= 0.0 {
        return f64::NAN;
    }
    let area = points
        .windows(2)
        .map(|w| (w[1].x - w[0].x) * (w[0].accuracy + w[1].accuracy) / 2.0)
        .sum::<f64>()
        / span;
    (area - floor) / (base - floor)
}

/// A curve of `order` through `points`, with its robustness relative to `base` and above
/// `chance`.
fn curve(order: &str, ranking: Vec<i64>, points: Vec<CurvePoint>, base: f64, chance: f64) -> Curve {
    Curve {
        order: order.into(),
        ranking,
        robustness: robustness(&points, base),
        robustness_above_chance: robustness_above(&points, base, chance),
        points,
    }
}

pub(crate) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

/// Standard normal values from a SplitMix64 stream (Box–Muller), as a tensor of `shape`.
pub(crate) fn normals(shape: &[i64], rng: &mut SplitMix64) -> Tensor {
    let n: i64 = shape.iter().product();
    let mut v = Vec::with_capacity(n as usize);
    while (v.len() as i64) < n {
        let (u1, u2) = (rng.next_open01(), rng.next_open01());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        v.push((r * t.cos()) as f32);
        v.push((r * t.sin()) as f32);
    }
    v.truncate(n as usize);
    Tensor::from_slice(&v).view(shape)
}

/// Runs the analysis on a classifier.
pub fn ablation_curves(clf: &Classifier, opts: &CurveOptions) -> Result<AblationCurveReport> {
    let start = Instant::now();
    if opts.train.is_empty() || opts.heldout.is_empty() {
        bail!("both splits need at least one sample: give --samples and --heldout above 0");
    }
    if opts.fractions.is_empty() {
        bail!("give at least one fraction of units to remove");
    }
    if let Some(f) = opts
        .fractions
        .iter()
        .find(|f| !(f.is_finite() && (0.0..=1.0).contains(*f)))
    {
        bail!("fractions of units removed must lie in [0, 1], got {f}");
    }
    if let Some(s) = opts.noise.iter().find(|s| !(s.is_finite() && **s >= 0.0)) {
        bail!("noise levels must be finite and ≥ 0, got {s}");
    }
    let cut = clf.conv_cut(&opts.layer)?;
    let units = clf.units(&cut) as usize;
    if let Some(iou) = &opts.iou
        && iou.len() != units
    {
        bail!(
            "IoU is given for {} units but {} has {units}",
            iou.len(),
            opts.layer
        );
    }
    let mut fractions = opts.fractions.clone();
    fractions.sort_by(f64::total_cmp);
    fractions.dedup();
    let k = clf.classes.len() as i64;
    let chance = 1.0 / k.max(1) as f64;
    let training_probe = |name: &str, set: &TrainingSet| {
        probe_training_set(
            clf,
            &cut,
            set,
            opts.batch,
            opts.device,
            opts.progress.then_some(name),
        )
    };
    let (scores_on, curves_on) = match &opts.split {
        Split::Heldout => (
            format!(
                "world seeds {}..{} (training split), each scored against its own class",
                opts.train.start, opts.train.end
            ),
            format!(
                "world seeds {}..{} (held-out), each scored against its own class",
                opts.heldout.start, opts.heldout.end
            ),
        ),
        Split::Training(set) => (set.describe(), set.describe()),
    };

    // scores: on the training split, or on the run's training set
    let train = match &opts.split {
        Split::Heldout => probe_set(
            clf,
            &cut,
            opts.train.clone(),
            opts.batch,
            opts.device,
            opts.progress.then_some("scores"),
        )?,
        Split::Training(set) => training_probe("scores", set)?,
    };
    let profiles = activation_profiles(&train, k)?;
    let selectivity: Vec<f64> = selectivity_index(&profiles.per_class)
        .into_iter()
        .map(|s| s.0)
        .collect();
    let sweep = single_unit_sweep_on(clf, &cut, &train, opts.copies)?;
    drop(train);
    let (importance, importance_measure) = sweep.importance();
    let mut scored: Vec<(Order, Vec<i64>)> = vec![
        (Order::Selectivity, order_by(&selectivity)),
        (Order::Importance, order_by(&importance)),
        (Order::Activation, order_by(&profiles.mean)),
    ];
    if let Some(iou) = &opts.iou {
        scored.push((Order::Iou, order_by(iou)));
    }

    // curves on the split: every (order, level) one ablated copy
    let held = match &opts.split {
        Split::Heldout => probe_set(
            clf,
            &cut,
            opts.heldout.clone(),
            opts.batch,
            opts.device,
            opts.progress.then_some("held-out"),
        )?,
        Split::Training(set) => training_probe("training set", set)?,
    };
    let randoms = random_orders(units, opts.draws.max(1), opts.seed);
    let orders: Vec<&Vec<i64>> = randoms.iter().chain(scored.iter().map(|s| &s.1)).collect();
    let mut sets = vec![Vec::new(), (0..units as i64).collect()];
    for order in &orders {
        for &f in &fractions {
            sets.push(order[..removed_count(f, units)].to_vec());
        }
    }
    let m = measure_ablated(clf, &cut, &held, &sets, opts.copies)?;
    let acc = m.accuracy()?;
    let bal = m.balanced()?;
    let (baseline_accuracy, baseline_balanced) = (acc[0], bal[0].clone());
    let all_removed_prediction = constant_prediction(clf, &cut, &held)?;
    let levels = fractions.len();
    let at = |o: usize, l: usize| 2 + o * levels + l;
    let mut curves = Vec::new();
    let points: Vec<CurvePoint> = (0..levels)
        .map(|l| {
            let accs: Vec<f64> = (0..randoms.len()).map(|d| acc[at(d, l)]).collect();
            let (mean, sd) = mean_sd(&accs);
            let balanced = (0..k as usize)
                .map(|c| {
                    (0..randoms.len()).map(|d| bal[at(d, l)][c]).sum::<f64>() / randoms.len() as f64
                })
                .collect();
            let lo = accs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = accs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            CurvePoint {
                x: fractions[l],
                units: removed_count(fractions[l], units),
                accuracy: mean,
                range: Some((lo, hi)),
                sd: Some(sd),
                balanced,
            }
        })
        .collect();
    curves.push(curve(
        Order::Random.name(),
        randoms[0].clone(),
        points,
        baseline_accuracy,
        chance,
    ));
    for (i, (order, ranking)) in scored.iter().enumerate() {
        let o = randoms.len() + i;
        let points: Vec<CurvePoint> = (0..levels)
            .map(|l| CurvePoint {
                x: fractions[l],
                units: removed_count(fractions[l], units),
                accuracy: acc[at(o, l)],
                range: None,
                sd: None,
                balanced: bal[at(o, l)].clone(),
            })
            .collect();
        curves.push(curve(
            order.name(),
            ranking.clone(),
            points,
            baseline_accuracy,
            chance,
        ));
    }
    let noise = if opts.noise.iter().all(|&s| s == 0.0) {
        None
    } else {
        Some(noise_curve(
            clf,
            &cut,
            &held,
            &opts.noise,
            opts,
            (baseline_accuracy, chance),
        )?)
    };
    Ok(AblationCurveReport {
        model: clf.name.clone(),
        layer: opts.layer.clone(),
        units: units as i64,
        classes: clf.classes.clone(),
        split: opts.split.name().into(),
        scores_on,
        curves_on,
        chance,
        seed: opts.seed,
        baseline_accuracy,
        baseline_balanced,
        all_removed_prediction,
        curves,
        noise,
        importance_measure,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The class the network predicts from an all-zero layer (the same for every image when the
/// layer is the only input the rest of the network sees).
fn constant_prediction(
    clf: &Classifier,
    cut: &Cut<'_, Vgg>,
    probe: &[ProbeBatch],
) -> Result<Option<String>> {
    let _guard = tch::no_grad_guard();
    let Some(first) = probe.first() else {
        return Ok(None);
    };
    let zeros = first.features.narrow(0, 0, 1).zeros_like();
    let c = i64::try_from(cut.suffix(&zeros).argmax(1, false).get(0))?;
    Ok(clf.classes.get(c as usize).cloned())
}

/// Gaussian noise with standard deviation `level × (the unit's own standard deviation over the
/// probe set)` added to every unit; one stacked copy per level, the noise drawn per batch and
/// level from the run's seed.
fn noise_curve(
    clf: &Classifier,
    cut: &Cut<'_, Vgg>,
    probe: &[ProbeBatch],
    levels: &[f64],
    opts: &CurveOptions,
    (baseline, chance): (f64, f64),
) -> Result<Curve> {
    let _guard = tch::no_grad_guard();
    let c = probe[0].features.size()[1];
    let flat: Vec<Tensor> = probe
        .iter()
        .map(|p| p.features.transpose(0, 1).reshape([c, -1]))
        .collect();
    let sd = Tensor::cat(&flat, 1)
        .to_kind(Kind::Double)
        .std_dim([1i64].as_slice(), true, false)
        .to_kind(Kind::Float)
        .view([1, c, 1, 1]);
    let m = measure_perturbed(
        clf,
        cut,
        probe,
        levels.len(),
        opts.copies,
        |batch, h, range| {
            let copies: Vec<Tensor> = range
                .map(|l| {
                    let mut rng = SplitMix64::stream(
                        opts.seed ^ 0x006e_6f69_7365,
                        (batch * levels.len() + l) as u64,
                    );
                    let eps = normals(&h.size(), &mut rng).to_device(h.device());
                    h + eps * sd.to_device(h.device()) * levels[l]
                })
                .collect();
            Ok(Tensor::cat(&copies, 0))
        },
    )?;
    let acc = m.accuracy()?;
    let bal = m.balanced()?;
    let points: Vec<CurvePoint> = levels
        .iter()
        .enumerate()
        .map(|(l, &x)| CurvePoint {
            x,
            units: 0,
            accuracy: acc[l],
            range: None,
            sd: None,
            balanced: bal[l].clone(),
        })
        .collect();
    Ok(curve("noise", Vec::new(), points, baseline, chance))
}

/// Accuracy against the fraction removed: one line per order, the random orders' mean with
/// their range shaded, chance and the baseline as references.
pub fn curves_chart(report: &AblationCurveReport) -> Result<Figure> {
    let mut chart = LineChart::new(
        &format!("{}: accuracy as its units are removed", report.layer),
        Axis::linear("fraction of the layer's units removed"),
        Axis::linear(split_label(&report.split)).range(0.0, 1.0),
    );
    for (i, c) in report.curves.iter().enumerate() {
        let pts: Vec<(f64, f64)> = c.points.iter().map(|p| (p.x, p.accuracy)).collect();
        let mut line = Line::new(&c.order, &pts).colour(PALETTE[i % PALETTE.len()]);
        if c.order == Order::Random.name() {
            let lo: Vec<f64> = c
                .points
                .iter()
                .map(|p| p.range.map_or(p.accuracy, |r| r.0))
                .collect();
            let hi: Vec<f64> = c
                .points
                .iter()
                .map(|p| p.range.map_or(p.accuracy, |r| r.1))
                .collect();
            line = Line::new("random (mean)", &pts)
                .colour(PALETTE[0])
                .interval(&lo, &hi, "random: range over draws");
        }
        chart = chart.line(line);
    }
    chart
        .reference("chance", 1.0 / report.classes.len().max(1) as f64)
        .note(&format!(
            "{} units; curves on {}",
            report.units, report.curves_on
        ))
        .render()
}

/// Accuracy against the noise level.
pub fn noise_chart(report: &AblationCurveReport, noise: &Curve) -> Result<Figure> {
    let pts: Vec<(f64, f64)> = noise.points.iter().map(|p| (p.x, p.accuracy)).collect();
    LineChart::new(
        &format!("{}: accuracy under Gaussian noise", report.layer),
        Axis::linear("noise standard deviation (in units of each unit's own)"),
        Axis::linear(split_label(&report.split)).range(0.0, 1.0),
    )
    .line(Line::new("noise added to every unit", &pts).colour(PALETTE[0]))
    .reference("chance", 1.0 / report.classes.len().max(1) as f64)
    .render()
}

/// The y-axis label of a split named `split` (see [`Split::name`]).
pub fn split_label(split: &str) -> &'static str {
    match split {
        "training" => "training-set accuracy (labels trained with)",
        _ => "held-out accuracy",
    }
}

/// Writes `ablation_curve.json`, `ablation_curve.svg/.png` and `noise_curve.svg/.png` into
/// `dir`; returns the JSON path and the PNGs.
pub fn write_curves(report: &AblationCurveReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = vec![dir.join("ablation_curve.json")];
    write_json(&written[0], report)?;
    let path = dir.join("ablation_curve.png");
    curves_chart(report)?.save(&path.with_extension(""))?;
    written.push(path);
    if let Some(noise) = &report.noise {
        let path = dir.join("noise_curve.png");
        noise_chart(report, noise)?.save(&path.with_extension(""))?;
        written.push(path);
    }
    Ok(written)
}

/// Several networks' random-order curves, each relative to its own baseline.
pub fn comparison_chart(reports: &[(String, AblationCurveReport)]) -> Result<Figure> {
    let split = reports.first().map_or("heldout", |(_, r)| r.split.as_str());
    let mut chart = LineChart::new(
        &format!(
            "Accuracy relative to the intact network as random units are removed ({})",
            match split {
                "training" => "training sets, labels trained with",
                _ => "held-out scenes",
            }
        ),
        Axis::linear("fraction of the layer's units removed"),
        Axis::linear("accuracy / accuracy with nothing removed"),
    );
    for (i, (label, r)) in reports.iter().enumerate() {
        let Some(c) = r.curve(Order::Random) else {
            continue;
        };
        let base = r.baseline_accuracy.max(1e-12);
        let pts: Vec<(f64, f64)> = c.points.iter().map(|p| (p.x, p.accuracy / base)).collect();
        let lo: Vec<f64> = c
            .points
            .iter()
            .map(|p| p.range.map_or(p.accuracy, |r| r.0) / base)
            .collect();
        let hi: Vec<f64> = c
            .points
            .iter()
            .map(|p| p.range.map_or(p.accuracy, |r| r.1) / base)
            .collect();
        chart = chart.line(
            Line::new(label, &pts)
                .colour(PALETTE[i % PALETTE.len()])
                .interval(&lo, &hi, ""),
        );
    }
    chart.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::metrics::{ClassCounts, to_rows};
    use crate::classify::model::testnet::tiny;
    use crate::classify::sweep::world_batches;

    fn options(seed: u64) -> CurveOptions {
        let mut o = CurveOptions::new("conv5_3", 18, 24, Device::Cpu);
        o.draws = 3;
        o.seed = seed;
        o.noise = vec![0.0, 1.0];
        o.batch = 12;
        o.copies = 7;
        o
    }

    #[test]
    fn no_units_removed_is_the_baseline_and_all_removed_the_constant_prediction() {
        let (_vs, clf) = tiny(5);
        let r = ablation_curves(&clf, &options(7)).unwrap();
        // the plain network on the same held-out scenes
        let mut preds = Vec::new();
        let mut truths = Vec::new();
        for (images, classes) in world_batches(&clf, options(7).heldout, 12, Device::Cpu).unwrap() {
            preds.push(clf.logits(&images).argmax(1, false));
            truths.push(classes);
        }
        let (pred, truth) = (Tensor::cat(&preds, 0), Tensor::cat(&truths, 0));
        let counts = ClassCounts::from_predictions(&pred, &truth, 6).unwrap();
        let acc = f64::try_from(counts.accuracy().get(0)).unwrap();
        let bal = to_rows(&counts.balanced_accuracy()).unwrap().remove(0);
        assert_eq!(r.baseline_accuracy, acc);
        assert_eq!(r.baseline_balanced, bal);
        for c in r.curves.iter().chain(r.noise.iter()) {
            assert_eq!(c.points[0].accuracy, acc, "{} at 0", c.order);
            assert_eq!(c.points[0].balanced, bal, "{} at 0", c.order);
        }
        // every unit removed: the class the rest of the network gives an all-zero layer
        let cut = clf.conv_cut("conv5_3").unwrap();
        let zeros = Tensor::zeros([1, 64, 2, 2], (Kind::Float, Device::Cpu));
        let constant = i64::try_from(cut.suffix(&zeros).argmax(1, false).get(0)).unwrap();
        assert_eq!(
            r.all_removed_prediction.as_deref(),
            Some(clf.classes[constant as usize].as_str())
        );
        let share =
            f64::try_from(truth.eq(constant).to_kind(Kind::Double).mean(Kind::Double)).unwrap();
        for c in &r.curves {
            let last = c.points.last().unwrap();
            assert_eq!((last.x, last.units), (1.0, 64));
            assert_eq!(last.accuracy, share, "{}", c.order);
            if let Some((lo, hi)) = last.range {
                assert_eq!(lo, hi);
            }
        }
        // the scored orders are permutations of the units
        for c in &r.curves {
            let mut u = c.ranking.clone();
            u.sort_unstable();
            assert_eq!(u, (0..64).collect::<Vec<i64>>(), "{}", c.order);
        }
    }

    #[test]
    fn random_curves_with_a_fixed_seed_are_reproducible() {
        let (_vs, clf) = tiny(5);
        let mut o = options(11);
        o.noise.clear();
        let a = ablation_curves(&clf, &o).unwrap();
        let b = ablation_curves(&clf, &o).unwrap();
        let (ra, rb) = (
            a.curve(Order::Random).unwrap(),
            b.curve(Order::Random).unwrap(),
        );
        assert_eq!(ra.ranking, rb.ranking);
        for (p, q) in ra.points.iter().zip(&rb.points) {
            assert_eq!(
                (p.accuracy, p.range, &p.balanced),
                (q.accuracy, q.range, &q.balanced)
            );
        }
        assert_eq!(random_orders(64, 3, 11), random_orders(64, 3, 11));
        assert_ne!(random_orders(64, 3, 11)[0], random_orders(64, 3, 12)[0]);
        assert_ne!(random_orders(64, 3, 11)[0], random_orders(64, 3, 11)[1]);
    }

    fn hand_curve(ys: &[f64]) -> Vec<CurvePoint> {
        let n = ys.len() - 1;
        ys.iter()
            .enumerate()
            .map(|(i, &y)| CurvePoint {
                x: i as f64 / n as f64,
                units: i,
                accuracy: y,
                range: None,
                sd: None,
                balanced: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn robustness_above_chance_measures_the_area_between_chance_and_the_intact_accuracy() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // flat at the intact accuracy: nothing lost either way
        let flat = hand_curve(&[0.6, 0.6, 0.6]);
        assert!(close(robustness(&flat, 0.6), 1.0));
        assert!(close(robustness_above(&flat, 0.6, 0.2), 1.0));
        // a straight fall to chance: half the area above chance, more relative to zero
        let fall = hand_curve(&[0.6, 0.4, 0.2]);
        assert!(close(robustness_above(&fall, 0.6, 0.2), 0.5));
        assert!(close(robustness(&fall, 0.6), 0.4 / 0.6));
        // at chance from the first removal on (trapezoids over 4 equal steps)
        let drop = hand_curve(&[0.6, 0.2, 0.2, 0.2, 0.2]);
        assert!(close(robustness_above(&drop, 0.6, 0.2), 0.125));
        // a network near chance loses little in absolute terms but all that it had
        let near = hand_curve(&[0.25, 0.2, 0.2]);
        assert!(robustness(&near, 0.25) > 0.8);
        assert!(close(robustness_above(&near, 0.25, 0.2), 0.25));
        // falling below chance counts negative; an intact accuracy at chance has none defined
        let below = hand_curve(&[0.4, 0.0]);
        assert!(close(robustness_above(&below, 0.4, 0.2), 0.0));
        assert!(robustness_above(&flat, 0.2, 0.2).is_nan());
        assert!(robustness_above(&hand_curve(&[0.6]), 0.6, 0.2).is_nan());
    }

    #[test]
    fn training_split_scores_a_label_noise_run_against_the_labels_it_was_trained_with() {
        use crate::sample::world_batch;
        use crate::train::classifier::{ClassifierTrainer, Recipe};
        use crate::train::label_noise::LabelNoise;
        use crate::train::{RunOptions, checkpoint_path, export, state_path};

        let out = std::env::temp_dir().join(format!("gd-curve-train-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let opts = RunOptions {
            out: out.clone(),
            steps: 2,
            batch: 9,
            seed: 3,
            checkpoint_every: 1,
            device: Device::Cpu,
            eval_samples: 9,
            keep_checkpoints: true,
        };
        let noise = LabelNoise {
            fraction: 0.2,
            scenes: 45,
        };
        let recipe = Recipe {
            label_smoothing: 0.0,
            concentration: 0.0,
            balance: 0.0,
            ..Recipe::SHIPPED
        };
        let measured = export::train_classifier(&opts, recipe, Some(noise)).unwrap();
        let fit = measured["training_fit"]["accuracy"].as_f64().unwrap();

        // the run's folder, its state and a kept checkpoint all name the same training set
        let (set, _) = TrainingSet::of_run(&out).unwrap();
        assert_eq!(set, TrainingSet::new(noise, 3));
        assert_eq!(TrainingSet::of_run(&state_path(&out)).unwrap().0, set);
        assert_eq!(
            TrainingSet::of_run(&checkpoint_path(&out, 1)).unwrap().0,
            set
        );

        // the labels the probe scores against are the ones the trainer trained with
        let trainer = ClassifierTrainer::with_recipe(&opts, recipe).with_label_noise(noise);
        let mut trained = std::collections::BTreeMap::new();
        for step in 0..5 {
            let b = trainer.step_batch(step).unwrap();
            let labels = Vec::<i64>::try_from(&b.classes).unwrap();
            let idx = noise.step_indices(3, step, 9);
            for (i, l) in idx.into_iter().zip(labels) {
                trained.insert(i, l);
            }
        }
        assert_eq!(trained.len(), 45, "one epoch visits every scene");
        let clf = Classifier::load(out.to_str().unwrap(), Device::Cpu).unwrap();
        let cut = clf.conv_cut("conv5_3").unwrap();
        let probe = probe_training_set(&clf, &cut, &set, 5, Device::Cpu, None).unwrap();
        let truths: Vec<i64> = probe
            .iter()
            .flat_map(|p| Vec::<i64>::try_from(&p.truths).unwrap())
            .collect();
        let seeds: Vec<u64> = (0..45).map(|i| set.seed_of(i)).collect();
        let world = Vec::<i64>::try_from(&world_batch(&seeds, true, Device::Cpu).classes).unwrap();
        let mut differ = 0;
        for i in 0..45u64 {
            assert_eq!(truths[i as usize], trained[&i], "scene {i}");
            match set.relabelled()[i as usize] {
                None => assert_eq!(truths[i as usize], world[i as usize]),
                Some(c) => {
                    assert_eq!(truths[i as usize], c);
                    differ += (c != world[i as usize]) as usize;
                }
            }
        }
        assert!(
            differ > 0,
            "some replaced labels differ from the scene's class"
        );

        // nothing removed: exactly the network's training fit, on every curve
        let mut o = options(1);
        o.split = Split::Training(set);
        o.fractions = vec![0.0, 0.5, 1.0];
        o.draws = 2;
        let r = ablation_curves(&clf, &o).unwrap();
        assert_eq!(r.split, "training");
        assert!(r.curves_on.contains("45 scenes") && r.curves_on.contains("9 with a replaced"));
        assert_eq!(r.baseline_accuracy, fit);
        for c in r.curves.iter().chain(r.noise.iter()) {
            assert_eq!(c.points[0].accuracy, fit, "{}", c.order);
        }
        // the last kept checkpoint is the final network, loaded as a world classifier
        use crate::train::classifier::{is_kept_checkpoint, load_kept_checkpoint};
        let kept = checkpoint_path(&out, 2);
        assert!(is_kept_checkpoint(&kept));
        assert!(!is_kept_checkpoint(&out.join("weights.safetensors")));
        let kept = load_kept_checkpoint(&kept, Device::Cpu).unwrap();
        o.noise.clear();
        assert_eq!(ablation_curves(&kept, &o).unwrap().baseline_accuracy, fit);
        let _ = std::fs::remove_dir_all(&out);

        // a network with no label-noise run behind it has no training set to measure on
        let plain = std::env::temp_dir().join(format!("gd-curve-plain-{}", std::process::id()));
        std::fs::create_dir_all(&plain).unwrap();
        let err = TrainingSet::of_run(&plain).unwrap_err().to_string();
        assert!(err.contains("not a training run"), "{err}");
        let _ = std::fs::remove_dir_all(&plain);
    }

    #[test]
    fn bad_levels_and_layers_are_refused() {
        let (_vs, clf) = tiny(5);
        let mut o = options(0);
        o.fractions = vec![0.0, 1.5];
        assert!(
            ablation_curves(&clf, &o)
                .unwrap_err()
                .to_string()
                .contains("[0, 1]")
        );
        let mut o = options(0);
        o.layer = "fc6".into();
        assert!(
            ablation_curves(&clf, &o)
                .unwrap_err()
                .to_string()
                .contains("not a conv layer")
        );
        let mut o = options(0);
        o.iou = Some(vec![0.0; 3]);
        assert!(
            ablation_curves(&clf, &o)
                .unwrap_err()
                .to_string()
                .contains("64")
        );
    }
}
