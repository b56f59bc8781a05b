//! Saliency scored against the world's truth. The world knows every pixel's concept, and three
//! classes differ from their painted kind by one concept only (a forest path from a forest by
//! road, an alpine lake from a lakeside by snow, a wooded beach from a beach by tree), so a map
//! that explains such a class should point at that concept.
//!
//! - **Pointing game** (Zhang et al.): a hit when the map's peak lies within `tolerance` pixels
//!   (Chebyshev distance) of a pixel of the telling concept; *chance* is the hit rate of a peak
//!   placed uniformly at random.
//! - **Deletion / insertion** (Petsiuk et al.): pixels taken in the map's order (largest first)
//!   are turned grey (deletion) or restored into a blurred copy (insertion); the class
//!   probability is measured after each of `steps` equal slices, and the area under the curve
//!   over the fraction of pixels (trapezoids) is reported. Lower deletion and higher insertion
//!   areas are better.

use super::model::Model;
use super::saliency::{self, Explain, Method, SaliencyOptions};
use crate::classify::importance::HELDOUT_SPLIT_START;
use crate::progress;
use crate::world::{self, SceneClass};
use anyhow::{Result, bail};
use serde::Serialize;
use tch::{Kind, Tensor};

/// Where the map's peak lies: `(row, column)` of the first largest value of an `[H, W]` map.
pub fn peak(map: &Tensor) -> (i64, i64) {
    let w = map.size()[1];
    let i = i64::try_from(map.flatten(0, -1).argmax(0, false)).unwrap_or(0);
    (i / w, i % w)
}

/// `[H, W]` booleans: the pixels within `tolerance` (Chebyshev) of a pixel of `mask`.
fn dilate(mask: &Tensor, tolerance: i64) -> Tensor {
    if tolerance == 0 {
        return mask.to_kind(Kind::Bool);
    }
    let k = 2 * tolerance + 1;
    mask.to_kind(Kind::Float)
        .view([1, 1, mask.size()[0], mask.size()[1]])
        .max_pool2d([k, k], [1, 1], [tolerance, tolerance], [1, 1], false)
        .view([mask.size()[0], mask.size()[1]])
        .gt(0.5)
}

/// Whether the map's peak lies within `tolerance` pixels of `mask` (`[H, W]`, non-zero on the
/// concept).
pub fn pointing_hit(map: &Tensor, mask: &Tensor, tolerance: i64) -> bool {
    let (y, x) = peak(map);
    dilate(mask, tolerance).int64_value(&[y, x]) != 0
}

/// The hit rate of a peak placed uniformly at random: the share of pixels within `tolerance`
/// of `mask`.
pub fn chance(mask: &Tensor, tolerance: i64) -> f64 {
    dilate(mask, tolerance)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[])
}

/// A deletion and an insertion curve: class probability at `fractions` of the pixels.
#[derive(Clone, Debug, Serialize)]
pub struct Curves {
    /// Fractions of pixels removed or inserted, 0 to 1.
    pub fractions: Vec<f64>,
    /// Probability as pixels are turned grey.
    pub deletion: Vec<f64>,
    /// Probability as pixels are restored into a blurred copy.
    pub insertion: Vec<f64>,
}

/// Area under a curve sampled at `xs` (trapezoids).
pub fn auc(xs: &[f64], ys: &[f64]) -> f64 {
    xs.windows(2)
        .zip(ys.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
        .sum()
}

/// A heavily blurred copy of `[N, 3, H, W]` images (two 9×9 box filters): insertion's start.
pub fn blurred(images: &Tensor) -> Tensor {
    let blur = |x: &Tensor| x.avg_pool2d([9, 9], [1, 1], [4, 4], false, false, None::<i64>);
    blur(&blur(images))
}

/// Deletion and insertion curves for one image (`[1, 3, H, W]`), its map (`[H, W]`) and the
/// class whose probability is followed, over `steps` slices.
pub fn deletion_insertion(
    model: &Model,
    image: &Tensor,
    map: &Tensor,
    class: i64,
    steps: usize,
) -> Result<Curves> {
    let (h, w) = (image.size()[2], image.size()[3]);
    if map.size() != [h, w] {
        bail!("a {:?} map for a {h}×{w} image", map.size());
    }
    if steps == 0 {
        bail!("deletion and insertion curves need at least one step");
    }
    let _guard = tch::no_grad_guard();
    let order = map.flatten(0, -1).to_kind(Kind::Float).sort(0, true).1;
    let rank = Tensor::zeros([h * w], (Kind::Int64, image.device())).scatter(
        0,
        &order,
        &Tensor::arange(h * w, (Kind::Int64, image.device())),
    );
    let fractions: Vec<f64> = (0..=steps).map(|k| k as f64 / steps as f64).collect();
    let counts: Vec<i64> = fractions
        .iter()
        .map(|f| (f * (h * w) as f64).round() as i64)
        .collect();
    // taken[k] = 1 where the pixel is among the first counts[k] of the order
    let taken = Tensor::from_slice(&counts)
        .to_device(image.device())
        .view([-1, 1])
        .gt_tensor(&rank.view([1, -1]))
        .to_kind(Kind::Float)
        .view([-1, 1, h, w]);
    let deleted = image * (1.0 - &taken);
    let start = blurred(image);
    let inserted = &start * (1.0 - &taken) + image * &taken;
    let prob = |x: &Tensor| -> Result<Vec<f64>> {
        let p = model.logits(x).softmax(1, Kind::Float).select(1, class);
        Ok(Vec::<f32>::try_from(p.to_device(tch::Device::Cpu))?
            .into_iter()
            .map(f64::from)
            .collect())
    };
    Ok(Curves {
        deletion: prob(&deleted)?,
        insertion: prob(&inserted)?,
        fractions,
    })
}

/// Settings of the scoring on world scenes.
#[derive(Clone, Debug, Serialize)]
pub struct TruthOptions {
    /// Scenes per class (held-out seeds).
    pub scenes: usize,
    /// The first held-out seed.
    pub first_seed: u64,
    /// The methods scored.
    pub methods: Vec<Method>,
    /// Pointing-game tolerance in pixels at the scene's 64×64.
    pub tolerance: i64,
    /// Slices of the deletion and insertion curves.
    pub steps: usize,
    /// The methods' settings.
    pub saliency: SaliencyOptions,
}

/// Pointing-game tolerance at 64×64: 15 px at 224 scaled to the scene.
pub const DEFAULT_TOLERANCE: i64 = 4;

impl Default for TruthOptions {
    fn default() -> Self {
        Self {
            scenes: 20,
            first_seed: HELDOUT_SPLIT_START,
            methods: Method::ALL.to_vec(),
            tolerance: DEFAULT_TOLERANCE,
            steps: 16,
            saliency: SaliencyOptions::default(),
        }
    }
}

/// One method on one class.
#[derive(Clone, Debug, Serialize)]
pub struct TruthRow {
    /// The method.
    pub method: Method,
    /// The class explained.
    pub class: String,
    /// The concept that tells it from its painted kind.
    pub concept: String,
    /// Scenes scored.
    pub scenes: usize,
    /// Pointing-game hit rate explaining the class logit.
    pub pointing: f64,
    /// Pointing-game hit rate explaining the margin over the painted kind.
    pub pointing_margin: f64,
    /// The mean hit rate of a random peak.
    pub chance: f64,
    /// Mean area under the deletion curve (class logit maps).
    pub deletion_auc: f64,
    /// Mean area under the insertion curve (class logit maps).
    pub insertion_auc: f64,
}

/// Held-out scenes of `class` (`[n, 3, 64, 64]` images and `[n, 64, 64]` concept maps), their
/// seeds counting up from `first_seed`.
pub fn scenes_of(class: SceneClass, n: usize, first_seed: u64) -> (Vec<u64>, Tensor, Tensor) {
    let seeds: Vec<u64> = (first_seed..first_seed + n as u64).collect();
    let scenes: Vec<world::Scene> = seeds
        .iter()
        .map(|&s| world::render_class(s, class))
        .collect();
    let side = world::SIZE as i64;
    let rgb: Vec<u8> = scenes.iter().flat_map(|s| s.rgb.iter().copied()).collect();
    let labels: Vec<u8> = scenes
        .iter()
        .flat_map(|s| s.labels.iter().copied())
        .collect();
    let images = Tensor::from_slice(&rgb)
        .view([n as i64, side, side, 3])
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float)
        / 127.5
        - 1.0;
    let labels = Tensor::from_slice(&labels)
        .view([n as i64, side, side])
        .to_kind(Kind::Int64);
    (seeds, images, labels)
}

/// Scores every method on the three finer classes: one row per method and class.
pub fn score_world(model: &Model, opts: &TruthOptions) -> Result<Vec<TruthRow>> {
    if opts.scenes == 0 || opts.methods.is_empty() {
        bail!("scoring needs at least one scene and one method");
    }
    let device = model.net().device();
    let bar = progress::bar(
        (SceneClass::FINE.len() * opts.methods.len()) as u64,
        "saliency scored",
    );
    let mut rows = Vec::new();
    for class in SceneClass::FINE {
        let concept = class.telling_concept().expect("a finer class");
        let c = model.class_index(class.name())?;
        let against = model.class_index(class.painted().name())?;
        let (_, images, labels) = scenes_of(class, opts.scenes, opts.first_seed);
        let images = images.to_device(device);
        let masks = labels.eq(concept as i64);
        let n = opts.scenes;
        let chance_mean = (0..n as i64)
            .map(|i| chance(&masks.get(i), opts.tolerance))
            .sum::<f64>()
            / n as f64;
        for &method in &opts.methods {
            let maps = saliency::map(
                method,
                model,
                &images,
                &Explain::class(c, n),
                &opts.saliency,
            )?
            .to_device(tch::Device::Cpu);
            let margin_maps = saliency::map(
                method,
                model,
                &images,
                &Explain::margin(c, against, n),
                &opts.saliency,
            )?
            .to_device(tch::Device::Cpu);
            let (mut hits, mut margin_hits, mut del, mut ins) = (0usize, 0usize, 0.0, 0.0);
            for i in 0..n as i64 {
                let mask = masks.get(i);
                hits += pointing_hit(&maps.get(i), &mask, opts.tolerance) as usize;
                margin_hits += pointing_hit(&margin_maps.get(i), &mask, opts.tolerance) as usize;
                let curves = deletion_insertion(
                    model,
                    &images.narrow(0, i, 1),
                    &maps.get(i).to_device(device),
                    c,
                    opts.steps,
                )?;
                del += auc(&curves.fractions, &curves.deletion);
                ins += auc(&curves.fractions, &curves.insertion);
            }
            rows.push(TruthRow {
                method,
                class: class.name().into(),
                concept: world::CONCEPTS[concept as usize].into(),
                scenes: n,
                pointing: hits as f64 / n as f64,
                pointing_margin: margin_hits as f64 / n as f64,
                chance: chance_mean,
                deletion_auc: del / n as f64,
                insertion_auc: ins / n as f64,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(rows)
}
