//! Cumulative ablation curves on a generator (SPEC §12.1): a layer's units zeroed in a growing
//! set — in random orders (several draws), by mean activation and by IoU (from a dissection) —
//! and Gaussian noise of growing size added to the layer, measured by what a segmenter
//! (world-seg by default) sees in the generated scenes: each concept's share of the pixels, and the total variation
//! distance between the label distributions of the ablated and the intact generator.
//!
//! The curves are on held-out image ids (from [`HELDOUT_FIRST_ID`], clear of the ids a
//! dissection covers by default); the mean activations and the noise scale on the score ids
//! (`0..N`, the dissection's own). The prefix runs once per batch of images; every
//! (order, level) is one ablated copy of the batch's features in a stack the rest of the
//! generator runs on together, identical unit sets measured once. Removing no units is the
//! intact generator itself: its distance is 0 by construction.

use super::ablation_curve::{
    DEFAULT_FRACTIONS, DEFAULT_NOISE, Order, mean_sd, normals, order_by, random_orders,
    removed_count,
};
use crate::chart::{Axis, Figure, Line, LineChart, PALETTE};
use crate::cut::{Cut, stacked_ablated};
use crate::edit::Painter;
use crate::edit::verdict::label_fractions;
use crate::fsutil::write_json;
use crate::nets::layered::LayeredNet;
use crate::nets::proggan::ProGan;
use crate::prng::SplitMix64;
use crate::segment::Segmenter;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// First held-out image id: clear of the ids `0..N` a dissection covers by default and of the
/// effect rankings' ids (from 100000).
pub const HELDOUT_FIRST_ID: u64 = 200_000;
/// Held-out images (and score images) by default.
pub const DEFAULT_IMAGES: u64 = 200;
/// A concept counts as vanished once its mean share falls to this part of its intact share.
pub const VANISHED_SHARE: f64 = 0.5;
/// Concepts followed for vanishing: those with at least this mean share of the intact scenes.
pub const TRACKED_SHARE: f64 = 0.01;
/// What the distance is, as the report states it.
pub const DISTANCE: &str = "total variation between the label distributions of the ablated and \
    the intact scene (half the summed absolute difference of each label's share of the \
    segmentation, 'none' included), per image, averaged over images";

/// What to measure.
#[derive(Clone, Debug)]
pub struct GeneratorCurveOptions {
    /// The layer whose units are removed.
    pub layer: String,
    /// Image ids the curves are measured on.
    pub heldout: Range<u64>,
    /// Image ids the mean activations (and the noise scale) are measured on.
    pub scores: Range<u64>,
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
    /// Seed of the latent stream the image ids index.
    pub stream: u32,
    /// Device.
    pub device: Device,
    /// Show a progress bar.
    pub progress: bool,
}

impl GeneratorCurveOptions {
    /// `scores` score images (ids `0..scores`) and `heldout` held-out images (ids from
    /// [`HELDOUT_FIRST_ID`]), the default levels, 5 draws, 25 images × 8 copies a forward.
    pub fn new(layer: &str, scores: u64, heldout: u64, device: Device) -> Self {
        Self {
            layer: layer.to_string(),
            heldout: HELDOUT_FIRST_ID..HELDOUT_FIRST_ID + heldout,
            scores: 0..scores,
            fractions: DEFAULT_FRACTIONS.to_vec(),
            draws: super::ablation_curve::DEFAULT_DRAWS,
            seed: 0,
            noise: DEFAULT_NOISE.to_vec(),
            iou: None,
            batch: 25,
            copies: 8,
            stream: crate::zsample::DEFAULT_STREAM_SEED,
            device,
            progress: false,
        }
    }

    /// Checks the options, naming the one to fix.
    pub fn validate(&self) -> Result<()> {
        if self.heldout.is_empty() || self.scores.is_empty() {
            bail!("both image sets need at least one image: give --samples and --heldout above 0");
        }
        crate::zsample::check_id_range(
            "--heldout",
            self.heldout.start,
            self.heldout.end - self.heldout.start,
        )?;
        crate::zsample::check_id_range(
            "--samples",
            self.scores.start,
            self.scores.end - self.scores.start,
        )?;
        if self.heldout.start < self.scores.end && self.scores.start < self.heldout.end {
            bail!(
                "the held-out ids {}..{} overlap the score ids {}..{}; give fewer --samples",
                self.heldout.start,
                self.heldout.end,
                self.scores.start,
                self.scores.end
            );
        }
        if self.fractions.is_empty() {
            bail!("give at least one fraction of units to remove");
        }
        if let Some(f) = self
            .fractions
            .iter()
            .find(|f| !(f.is_finite() && (0.0..=1.0).contains(*f)))
        {
            bail!("fractions of units removed must lie in [0, 1], got {f}");
        }
        if let Some(s) = self.noise.iter().find(|s| !(s.is_finite() && **s >= 0.0)) {
            bail!("noise levels must be finite and ≥ 0, got {s}");
        }
        if self.draws == 0 || self.batch == 0 || self.copies == 0 {
            bail!("--draws, the batch and the copies per forward must be at least 1");
        }
        Ok(())
    }
}

/// One level of a curve.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabelPoint {
    /// Fraction of the units removed (or the noise level).
    pub x: f64,
    /// Units removed (0 for noise).
    pub units: usize,
    /// Mean total variation distance from the intact scenes (the mean over draws for random
    /// orders).
    pub distance: f64,
    /// Smallest and largest distance over the draws (random orders only).
    pub range: Option<(f64, f64)>,
    /// Standard deviation of the distance over the draws (random orders only).
    pub sd: Option<f64>,
    /// Each concept's mean share of the pixels (the mean over draws for random orders).
    pub fractions: BTreeMap<String, f64>,
}

/// One curve.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabelCurve {
    /// How the units were removed, or "noise".
    pub order: String,
    /// Units in removal order (for random orders the first draw's).
    pub ranking: Vec<i64>,
    /// The levels.
    pub points: Vec<LabelPoint>,
    /// The mean distance over the x range (trapezoids): 0 when nothing moves.
    pub mean_distance: f64,
    /// For each concept with at least [`TRACKED_SHARE`] of the intact scenes, the first level
    /// at which its share is at most [`VANISHED_SHARE`] of its intact share (`None`: never).
    pub vanished: BTreeMap<String, Option<f64>>,
}

/// A unit of the layer with its best concept in the dissection the IoU order comes from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnitConcept {
    /// The unit.
    pub unit: usize,
    /// Its best concept.
    pub concept: String,
    /// Its IoU with it.
    pub iou: f64,
}

/// Everything the analysis measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GeneratorCurveReport {
    /// Always `generator` (the classifier's report has no such field).
    pub network: String,
    /// The generator.
    pub model: String,
    /// The layer.
    pub layer: String,
    /// Units of the layer.
    pub units: i64,
    /// The segmenter.
    pub segmenter: String,
    /// Held-out images measured.
    pub images: u64,
    /// The images the curves are measured on, in words.
    pub curves_on: String,
    /// The images the mean activations and noise scale are measured on, in words.
    pub scores_on: String,
    /// What `distance` means.
    pub distance: String,
    /// Seed of the random orders and the noise.
    pub seed: u64,
    /// Each concept's mean share of the intact scenes.
    pub intact: BTreeMap<String, f64>,
    /// Each concept's mean share with every unit of the layer zeroed.
    pub all_removed: BTreeMap<String, f64>,
    /// The distance with every unit zeroed.
    pub all_removed_distance: f64,
    /// Removal curves: random first, then the scored orders.
    pub curves: Vec<LabelCurve>,
    /// The noise curve (x: noise standard deviation over the unit's own), when measured.
    pub noise: Option<LabelCurve>,
    /// The IoU order's units with their concepts, best first (when ordered by IoU).
    pub iou_units: Option<Vec<UnitConcept>>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl GeneratorCurveReport {
    /// The curve of an order.
    pub fn curve(&self, order: Order) -> Option<&LabelCurve> {
        self.curves.iter().find(|c| c.order == order.name())
    }
}

/// One perturbation of the cut layer.
#[derive(Clone, Debug)]
enum Condition {
    /// These units zeroed.
    Ablate(Vec<i64>),
    /// Noise of this level (index into the levels, level).
    Noise(usize, f64),
}

/// Where a curve point's numbers come from.
#[derive(Clone, Copy, PartialEq)]
enum Slot {
    /// The intact generator.
    Intact,
    /// A measured condition.
    Measured(usize),
}

/// Sums over the held-out images.
struct Tally {
    /// Per-label share sums of the intact scenes.
    intact: Vec<f64>,
    /// Per condition, per-label share sums.
    shares: Vec<Vec<f64>>,
    /// Per condition, sum of the per-image distances.
    distance: Vec<f64>,
    images: f64,
}

/// Per-image label distributions `[N, L]` (f64) of segmentations `[N, K, h, w]`.
fn distributions(seg: &Tensor, labels: i64) -> Tensor {
    let f = label_fractions(seg, labels);
    let total = f.sum_dim_intlist([1i64].as_slice(), true, Kind::Double);
    f / total
}

fn add_rows(acc: &mut [f64], t: &Tensor) -> Result<()> {
    let v = Vec::<f64>::try_from(t.to_device(Device::Cpu).contiguous().view([-1]))?;
    for (a, x) in acc.iter_mut().zip(v) {
        *a += x;
    }
    Ok(())
}

/// Mean and standard deviation of each unit's output over the images `ids` (spatial positions
/// and images pooled).
fn unit_stats(
    cut: &Cut<'_, ProGan>,
    painter: &Painter<'_>,
    ids: Range<u64>,
    batch: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let _guard = tch::no_grad_guard();
    let ids: Vec<u64> = ids.collect();
    let mut sum: Option<Tensor> = None;
    let mut sq: Option<Tensor> = None;
    let mut n = 0f64;
    for chunk in ids.chunks(batch) {
        let h = cut.prefix(&painter.latents(chunk)?).to_kind(Kind::Double);
        let s = h.size();
        n += (s[0] * s[2] * s[3]) as f64;
        let dims = [0i64, 2, 3];
        let a = h.sum_dim_intlist(dims.as_slice(), false, Kind::Double);
        let b = (&h * &h).sum_dim_intlist(dims.as_slice(), false, Kind::Double);
        sum = Some(sum.map_or(a.shallow_clone(), |x| x + &a));
        sq = Some(sq.map_or(b.shallow_clone(), |x| x + &b));
    }
    let (Some(sum), Some(sq)) = (sum, sq) else {
        bail!("no images to measure the unit scores on: give --samples above 0");
    };
    let mean = Vec::<f64>::try_from(&sum / n)?;
    let sq = Vec::<f64>::try_from(&sq / n)?;
    let sd = mean
        .iter()
        .zip(sq)
        .map(|(m, q)| ((q - m * m) * n / (n - 1.0).max(1.0)).max(0.0).sqrt())
        .collect();
    Ok((mean, sd))
}

/// Runs every condition over the held-out images: the prefix once per batch, the suffix on
/// stacks of up to `copies` perturbed copies.
fn measure(
    painter: &Painter<'_>,
    conditions: &[Condition],
    sd: &Tensor,
    labels: i64,
    opts: &GeneratorCurveOptions,
) -> Result<Tally> {
    let _guard = tch::no_grad_guard();
    let cut = painter.cut();
    let l = labels as usize;
    let mut t = Tally {
        intact: vec![0.0; l],
        shares: vec![vec![0.0; l]; conditions.len()],
        distance: vec![0.0; conditions.len()],
        images: 0.0,
    };
    let ids: Vec<u64> = opts.heldout.clone().collect();
    let bar = opts.progress.then(|| {
        crate::progress::bar(
            ids.len() as u64 * (1 + conditions.len() as u64),
            "generated",
        )
    });
    let levels = opts.noise.len().max(1);
    for (bi, chunk) in ids.chunks(opts.batch).enumerate() {
        let features = cut.prefix(&painter.latents(chunk)?);
        let b = features.size()[0];
        let intact = distributions(
            &painter.segment(&cut.suffix(&features).clamp(-1.0, 1.0))?,
            labels,
        );
        add_rows(
            &mut t.intact,
            &intact.sum_dim_intlist([0i64].as_slice(), false, Kind::Double),
        )?;
        t.images += b as f64;
        if let Some(bar) = &bar {
            bar.inc(b as u64);
        }
        for (ci, group) in conditions.chunks(opts.copies).enumerate() {
            let copies: Vec<Tensor> = group
                .iter()
                .map(|c| match c {
                    Condition::Ablate(units) => {
                        stacked_ablated(&features, std::slice::from_ref(units))
                    }
                    Condition::Noise(li, level) => {
                        let mut rng = SplitMix64::stream(
                            opts.seed ^ 0x006e_6f69_7365,
                            (bi * levels + li) as u64,
                        );
                        let eps = normals(&features.size(), &mut rng).to_device(features.device());
                        Ok(&features + eps * sd * *level)
                    }
                })
                .collect::<Result<_>>()?;
            let g = group.len() as i64;
            let out = cut.suffix(&Tensor::cat(&copies, 0)).clamp(-1.0, 1.0);
            let p = distributions(&painter.segment(&out)?, labels).view([g, b, labels]);
            let shares = p.sum_dim_intlist([1i64].as_slice(), false, Kind::Double);
            let dist = (&p - intact.unsqueeze(0)).abs().sum_dim_intlist(
                [1i64, 2].as_slice(),
                false,
                Kind::Double,
            ) * 0.5;
            let shares = Vec::<Vec<f64>>::try_from(shares)?;
            let dist = Vec::<f64>::try_from(dist)?;
            for (j, (s, d)) in shares.into_iter().zip(dist).enumerate() {
                let k = ci * opts.copies + j;
                for (a, x) in t.shares[k].iter_mut().zip(s) {
                    *a += x;
                }
                t.distance[k] += d;
            }
            if let Some(bar) = &bar {
                bar.inc((g * b) as u64);
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(t)
}

/// Trapezoid mean of `ys` over the `xs` range (`ys[0]` for a single point).
fn trapezoid_mean(xs: &[f64], ys: &[f64]) -> f64 {
    let span = xs.last().copied().unwrap_or(0.0) - xs.first().copied().unwrap_or(0.0);
    if xs.len() < 2 || span <= 0.0 {
        return ys.first().copied().unwrap_or(0.0);
    }
    xs.windows(2)
        .zip(ys.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
        .sum::<f64>()
        / span
}

/// The first level at which each tracked concept's share is at most [`VANISHED_SHARE`] of its
/// intact share.
fn vanished(
    points: &[LabelPoint],
    intact: &BTreeMap<String, f64>,
) -> BTreeMap<String, Option<f64>> {
    intact
        .iter()
        .filter(|(_, v)| **v >= TRACKED_SHARE)
        .map(|(name, &base)| {
            let at = points
                .iter()
                .find(|p| {
                    p.fractions
                        .get(name)
                        .is_some_and(|&f| f <= VANISHED_SHARE * base)
                })
                .map(|p| p.x);
            (name.clone(), at)
        })
        .collect()
}

/// Runs the analysis on `generator` (named `model` in the report) with `segmenter`.
pub fn generator_curves(
    generator: &ProGan,
    model: &str,
    segmenter: &dyn Segmenter,
    opts: &GeneratorCurveOptions,
) -> Result<GeneratorCurveReport> {
    let start = Instant::now();
    opts.validate()?;
    let painter = Painter::new(generator, &opts.layer, segmenter, opts.stream, opts.device)?;
    let cut = painter.cut();
    if cut.layer_index() + 1 == generator.num_layers() {
        bail!(
            "{} is the generator's output, not a layer of units; choose one of {}",
            cut.layer_name(),
            generator.layer_names()[..generator.num_layers() - 1].join(", ")
        );
    }
    let (mean, sd) = unit_stats(cut, &painter, opts.scores.clone(), opts.batch)?;
    let units = mean.len();
    if let Some(iou) = &opts.iou
        && iou.len() != units
    {
        bail!(
            "IoU is given for {} units but {} has {units}",
            iou.len(),
            cut.layer_name()
        );
    }
    let mut fractions = opts.fractions.clone();
    fractions.sort_by(f64::total_cmp);
    fractions.dedup();
    let labels = segmenter.labels();
    let nl = labels.len() as i64;

    let randoms = random_orders(units, opts.draws, opts.seed);
    let mut scored = vec![(Order::Activation, order_by(&mean))];
    if let Some(iou) = &opts.iou {
        scored.push((Order::Iou, order_by(iou)));
    }
    let orders: Vec<&Vec<i64>> = randoms.iter().chain(scored.iter().map(|s| &s.1)).collect();

    // unit sets: each distinct set once, the empty set the intact generator
    let mut conditions = Vec::new();
    let mut index: HashMap<Vec<i64>, usize> = HashMap::new();
    let mut slot_of = |set: &[i64], conditions: &mut Vec<Condition>| -> Slot {
        if set.is_empty() {
            return Slot::Intact;
        }
        let mut key = set.to_vec();
        key.sort_unstable();
        let n = conditions.len();
        let i = *index.entry(key).or_insert(n);
        if i == n {
            conditions.push(Condition::Ablate(set.to_vec()));
        }
        Slot::Measured(i)
    };
    let all: Vec<i64> = (0..units as i64).collect();
    let all_slot = slot_of(&all, &mut conditions);
    let slots: Vec<Vec<Slot>> = orders
        .iter()
        .map(|o| {
            fractions
                .iter()
                .map(|&f| slot_of(&o[..removed_count(f, units)], &mut conditions))
                .collect()
        })
        .collect();
    let noise_levels: Vec<f64> = if opts.noise.iter().all(|&s| s == 0.0) {
        Vec::new()
    } else {
        opts.noise.clone()
    };
    let noise_slots: Vec<Slot> = noise_levels
        .iter()
        .enumerate()
        .map(|(li, &s)| {
            if s == 0.0 {
                Slot::Intact
            } else {
                conditions.push(Condition::Noise(li, s));
                Slot::Measured(conditions.len() - 1)
            }
        })
        .collect();
    let sd_t = Tensor::from_slice(&sd)
        .to_kind(Kind::Float)
        .view([1, units as i64, 1, 1])
        .to_device(opts.device);
    let t = measure(&painter, &conditions, &sd_t, nl, opts)?;

    let n = t.images;
    let named = |v: &[f64]| -> BTreeMap<String, f64> {
        labels
            .iter()
            .zip(v)
            .skip(1)
            .map(|(l, x)| (l.name.clone(), x / n))
            .collect()
    };
    let at = |s: Slot| -> (f64, BTreeMap<String, f64>) {
        match s {
            Slot::Intact => (0.0, named(&t.intact)),
            Slot::Measured(i) => (t.distance[i] / n, named(&t.shares[i])),
        }
    };
    let intact = named(&t.intact);
    let (all_removed_distance, all_removed) = at(all_slot);
    let finish = |order: &str, ranking: Vec<i64>, points: Vec<LabelPoint>| {
        let xs: Vec<f64> = points.iter().map(|p| p.x).collect();
        let ys: Vec<f64> = points.iter().map(|p| p.distance).collect();
        LabelCurve {
            order: order.into(),
            ranking,
            mean_distance: trapezoid_mean(&xs, &ys),
            vanished: vanished(&points, &intact),
            points,
        }
    };

    let draws = randoms.len();
    let random_points: Vec<LabelPoint> = fractions
        .iter()
        .enumerate()
        .map(|(li, &x)| {
            let measured: Vec<(f64, BTreeMap<String, f64>)> =
                (0..draws).map(|d| at(slots[d][li])).collect();
            let ds: Vec<f64> = measured.iter().map(|m| m.0).collect();
            let (m, s) = mean_sd(&ds);
            let lo = ds.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            // the same unit set in every draw (nothing or everything removed): its own numbers
            let fr = if (1..draws).all(|d| slots[d][li] == slots[0][li]) {
                measured[0].1.clone()
            } else {
                let mut fr: BTreeMap<String, f64> = BTreeMap::new();
                for (_, f) in &measured {
                    for (k, v) in f {
                        *fr.entry(k.clone()).or_default() += v / draws as f64;
                    }
                }
                fr
            };
            LabelPoint {
                x,
                units: removed_count(x, units),
                distance: m,
                range: Some((lo, hi)),
                sd: Some(s),
                fractions: fr,
            }
        })
        .collect();
    let mut curves = vec![finish(
        Order::Random.name(),
        randoms[0].clone(),
        random_points,
    )];
    for (i, (order, ranking)) in scored.iter().enumerate() {
        let points = fractions
            .iter()
            .enumerate()
            .map(|(li, &x)| {
                let (distance, fractions) = at(slots[draws + i][li]);
                LabelPoint {
                    x,
                    units: removed_count(x, units),
                    distance,
                    range: None,
                    sd: None,
                    fractions,
                }
            })
            .collect();
        curves.push(finish(order.name(), ranking.clone(), points));
    }
    let noise = (!noise_levels.is_empty()).then(|| {
        let points = noise_levels
            .iter()
            .zip(&noise_slots)
            .map(|(&x, &s)| {
                let (distance, fractions) = at(s);
                LabelPoint {
                    x,
                    units: 0,
                    distance,
                    range: None,
                    sd: None,
                    fractions,
                }
            })
            .collect();
        finish("noise", Vec::new(), points)
    });
    Ok(GeneratorCurveReport {
        network: "generator".into(),
        model: model.to_string(),
        layer: cut.layer_name().to_string(),
        units: units as i64,
        segmenter: segmenter.name().to_string(),
        images: n as u64,
        curves_on: format!(
            "image ids {}..{} of latent stream {} (held out)",
            opts.heldout.start, opts.heldout.end, opts.stream
        ),
        scores_on: format!(
            "image ids {}..{} of latent stream {}",
            opts.scores.start, opts.scores.end, opts.stream
        ),
        distance: DISTANCE.into(),
        seed: opts.seed,
        intact,
        all_removed,
        all_removed_distance,
        curves,
        noise,
        iou_units: None,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The distance against the fraction removed: one line per order, the random orders' mean
/// with their range shaded.
pub fn distance_chart(report: &GeneratorCurveReport) -> Result<Figure> {
    let top = report
        .curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.range.map_or(p.distance, |r| r.1)))
        .fold(report.all_removed_distance, f64::max);
    let mut chart = LineChart::new(
        &format!(
            "{}: label distribution moved as its units are removed",
            report.layer
        ),
        Axis::linear("fraction of the layer's units removed"),
        Axis::linear("total variation from the intact scene (mean over images)")
            .range(0.0, (top * 1.1).clamp(0.05, 1.0)),
    );
    for (i, c) in report.curves.iter().enumerate() {
        let pts: Vec<(f64, f64)> = c.points.iter().map(|p| (p.x, p.distance)).collect();
        let mut line = Line::new(&c.order, &pts).colour(PALETTE[i % PALETTE.len()]);
        if c.order == Order::Random.name() {
            let lo: Vec<f64> = c
                .points
                .iter()
                .map(|p| p.range.map_or(p.distance, |r| r.0))
                .collect();
            let hi: Vec<f64> = c
                .points
                .iter()
                .map(|p| p.range.map_or(p.distance, |r| r.1))
                .collect();
            line = Line::new("random (mean)", &pts)
                .colour(PALETTE[0])
                .interval(&lo, &hi, "random: range over draws");
        }
        chart = chart.line(line);
    }
    chart
        .note(&format!(
            "{} units; {} images, {}",
            report.units, report.images, report.curves_on
        ))
        .render()
}

/// The concepts most present in the intact scenes, largest first (at most `n`).
pub fn main_concepts(report: &GeneratorCurveReport, n: usize) -> Vec<String> {
    let mut v: Vec<(&String, &f64)> = report.intact.iter().filter(|(_, f)| **f > 0.0).collect();
    v.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    v.into_iter().take(n).map(|(k, _)| k.clone()).collect()
}

/// Each main concept's share of the pixels (%) along one curve.
pub fn concepts_chart(report: &GeneratorCurveReport, curve: &LabelCurve) -> Result<Figure> {
    let noise = curve.order == "noise";
    let mut chart = LineChart::new(
        &format!(
            "{}: concepts {} ({} order)",
            report.layer,
            if noise {
                "under Gaussian noise"
            } else {
                "as units are removed"
            },
            curve.order
        ),
        Axis::linear(if noise {
            "noise standard deviation (in units of each unit's own)"
        } else {
            "fraction of the layer's units removed"
        }),
        Axis::linear("share of the pixels (%, mean over images)"),
    );
    for (i, name) in main_concepts(report, PALETTE.len()).iter().enumerate() {
        let pts: Vec<(f64, f64)> = curve
            .points
            .iter()
            .map(|p| (p.x, 100.0 * p.fractions.get(name).copied().unwrap_or(0.0)))
            .collect();
        chart = chart.line(Line::new(name, &pts).colour(PALETTE[i]));
    }
    chart
        .note(&format!("{} held-out images", report.images))
        .render()
}

/// The distance against the noise level.
pub fn noise_chart(report: &GeneratorCurveReport, noise: &LabelCurve) -> Result<Figure> {
    let pts: Vec<(f64, f64)> = noise.points.iter().map(|p| (p.x, p.distance)).collect();
    LineChart::new(
        &format!(
            "{}: label distribution moved by Gaussian noise",
            report.layer
        ),
        Axis::linear("noise standard deviation (in units of each unit's own)"),
        Axis::linear("total variation from the intact scene (mean over images)"),
    )
    .line(Line::new("noise added to every unit", &pts).colour(PALETTE[0]))
    .render()
}

/// Writes `ablation_curve.json`, `ablation_curve.png` (the distance), `concepts_ORDER.png`
/// per curve and `noise_curve.png` into `dir` (each chart with its `.svg`); returns the JSON
/// path and the PNGs.
pub fn write_generator_curves(report: &GeneratorCurveReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = vec![dir.join("ablation_curve.json")];
    write_json(&written[0], report)?;
    let mut save = |fig: Figure, name: &str| -> Result<()> {
        let path = dir.join(format!("{name}.png"));
        fig.save(&path.with_extension(""))?;
        written.push(path);
        Ok(())
    };
    save(distance_chart(report)?, "ablation_curve")?;
    for c in report.curves.iter().chain(report.noise.iter()) {
        save(concepts_chart(report, c)?, &format!("concepts_{}", c.order))?;
    }
    if let Some(noise) = &report.noise {
        save(noise_chart(report, noise)?, "noise_curve")?;
    }
    Ok(written)
}

/// Per-unit IoU of `layer` (canonical name) from the dissection `d` of `generator`, and the
/// layer's units with their best concepts, best first. Refuses a dissection of other weights,
/// of another layer, or one whose images include held-out ids.
pub fn dissection_iou(
    d: &crate::dissect::DissectResult,
    generator: &ProGan,
    layer: &str,
    opts: &GeneratorCurveOptions,
) -> Result<(Vec<f64>, Vec<UnitConcept>)> {
    let digest = crate::edit::units_source::weights_digest(generator)?;
    if d.settings.common.weights != digest {
        bail!(
            "the dissection in {} was made for other weights ({}) than this generator; dissect it \
             with gandissect dissect --model … --layer {layer}",
            d.dir.display(),
            d.settings.common.model
        );
    }
    let l = d.layer(layer)?;
    let s = &d.settings.common;
    if s.stream == opts.stream && opts.heldout.start < s.samples {
        bail!(
            "the dissection in {} covers image ids 0..{}, which overlap the held-out ids {}..{}",
            d.dir.display(),
            s.samples,
            opts.heldout.start,
            opts.heldout.end
        );
    }
    let c = generator.channels(Cut::new(generator, layer)?.layer_index()) as usize;
    let mut iou = vec![0.0; c];
    let mut named = Vec::new();
    for u in &l.units {
        if u.unit >= c {
            bail!(
                "the dissection in {} lists unit {} of {layer}, which has {c} units",
                d.dir.display(),
                u.unit
            );
        }
        iou[u.unit] = f64::from(u.iou);
        named.push(UnitConcept {
            unit: u.unit,
            concept: u.label.clone(),
            iou: f64::from(u.iou),
        });
    }
    named.sort_by(|a, b| b.iou.total_cmp(&a.iou).then(a.unit.cmp(&b.unit)));
    Ok((iou, named))
}
