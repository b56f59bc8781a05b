//! An attack end to end: pick world images that are neither of nor predicted as the target,
//! attack them, measure success and perturbation norms, trace the unit changes, and write
//! `attack.json`, an image grid and the trace charts. Failed images are reported, not hidden.

use super::cw::{CwOptions, carlini_wagner};
use super::pgd::{PgdOptions, pgd};
use super::trace::{TraceReport, trace, trace_chart, unit_pictures};
use crate::chart::text::{draw_text, line_height};
use crate::classify::Classifier;
use crate::classify::importance::{HELDOUT_SPLIT_START, ImportanceReport};
use crate::fsutil::write_json;
use crate::imageio::{grid, save_png, to_rgb_images};
use crate::sample::world_batch;
use anyhow::{Result, bail};
use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Which attack, with its settings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Method {
    /// Targeted L∞ PGD.
    Pgd(PgdOptions),
    /// Targeted Carlini–Wagner L2.
    Cw(CwOptions),
}

/// What to attack.
#[derive(Clone, Debug)]
pub struct AttackOptions {
    /// Target class name.
    pub target: String,
    /// The attack.
    pub method: Method,
    /// Images to attack.
    pub samples: usize,
    /// First world seed scanned for images (the held-out split by default).
    pub first_seed: u64,
    /// Layer traced (post-ReLU).
    pub layer: String,
    /// Images per attack batch.
    pub batch: usize,
    /// Where the images are put.
    pub device: Device,
}

/// The layer an attack traces by default.
pub const DEFAULT_TRACE_LAYER: &str = "relu5_3";
/// Images per attack batch by default.
pub const DEFAULT_BATCH: usize = 16;

impl AttackOptions {
    /// `samples` images towards `target` with `method`, traced at `relu5_3`.
    pub fn new(target: &str, method: Method, samples: usize, device: Device) -> Self {
        Self {
            target: target.to_string(),
            method,
            samples,
            first_seed: HELDOUT_SPLIT_START,
            layer: DEFAULT_TRACE_LAYER.to_string(),
            batch: DEFAULT_BATCH,
            device,
        }
    }

    /// The conv layer whose unit ranking groups the trace: the traced layer itself, or for a
    /// post-ReLU layer (`reluX_Y`) the conv layer it follows (`convX_Y`), whose units it shares.
    pub fn ranking_layer(&self) -> String {
        match self.layer.strip_prefix("relu") {
            Some(rest) => format!("conv{rest}"),
            None => self.layer.clone(),
        }
    }
}

/// Images chosen for an attack.
pub struct Selection {
    /// World seeds.
    pub seeds: Vec<u64>,
    /// Images `[N, 3, 64, 64]` in [−1, 1].
    pub images: Tensor,
    /// True classes.
    pub truths: Vec<usize>,
    /// The classifier's predictions (the attack's source classes).
    pub predictions: Vec<usize>,
}

/// Scans world seeds from `first_seed` (classes cycling) for `n` images whose truth and
/// prediction both differ from `target`.
pub fn select_images(
    clf: &Classifier,
    target: usize,
    first_seed: u64,
    n: usize,
    device: Device,
) -> Result<Selection> {
    let _guard = tch::no_grad_guard();
    let (mut seeds, mut images, mut truths, mut preds) = (vec![], vec![], vec![], vec![]);
    let outputs = clf.world_class_outputs()?.to_device(device);
    let mut next = first_seed;
    let limit = first_seed + 20 * n as u64 + 1000;
    while seeds.len() < n && next < limit {
        let chunk: Vec<u64> = (next..next + 64).collect();
        next += 64;
        let b = world_batch(&chunk, true, device);
        let p = Vec::<i64>::try_from(
            clf.logits(&b.images)
                .argmax(1, false)
                .to_device(Device::Cpu),
        )?;
        let t = Vec::<i64>::try_from(outputs.index_select(0, &b.classes).to_device(Device::Cpu))?;
        for i in 0..chunk.len() {
            if seeds.len() < n && t[i] as usize != target && p[i] as usize != target {
                seeds.push(chunk[i]);
                images.push(b.images.get(i as i64));
                truths.push(t[i] as usize);
                preds.push(p[i] as usize);
            }
        }
    }
    if seeds.len() < n {
        bail!(
            "found only {} of {n} images that are neither of nor predicted as '{}' in seeds {first_seed}..{limit}",
            seeds.len(),
            clf.classes[target]
        );
    }
    Ok(Selection {
        seeds,
        images: Tensor::stack(&images, 0),
        truths,
        predictions: preds,
    })
}

/// One attacked image.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttackedImage {
    /// World seed.
    pub seed: u64,
    /// True class.
    pub truth: String,
    /// Prediction before the attack (the source class).
    pub source: String,
    /// Prediction after the attack.
    pub prediction: String,
    /// Whether the prediction is the target.
    pub success: bool,
    /// L2 norm of the perturbation on [0, 1] pixels.
    pub l2: f64,
    /// L∞ norm of the perturbation on [0, 1] pixels.
    pub linf: f64,
}

/// The results of an attack.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttackReport {
    /// The classifier.
    pub model: String,
    /// The target class.
    pub target: String,
    /// The attack and its settings.
    pub method: Method,
    /// Images attacked.
    pub images: usize,
    /// Successful attacks.
    pub successes: usize,
    /// `successes / images`.
    pub success_rate: f64,
    /// Mean L2 norm over successful attacks (on [0, 1] pixels); `None` when none succeeded.
    pub mean_l2: Option<f64>,
    /// Mean L∞ norm over successful attacks; `None` when none succeeded.
    pub mean_linf: Option<f64>,
    /// Every image.
    pub per_image: Vec<AttackedImage>,
    /// Remarks (resizing, failures).
    pub notes: Vec<String>,
    /// The unit trace over successful attacks (absent when none succeeded).
    pub trace: Option<TraceReport>,
    /// Wall time of the attack itself in seconds.
    pub seconds: f64,
}

/// The attack's images, for pictures.
pub struct AttackImages {
    /// Originals in [−1, 1].
    pub originals: Tensor,
    /// Adversarials in [−1, 1].
    pub adversarials: Tensor,
}

/// Runs the attack and the trace. `importance` must rank units of the traced layer.
pub fn attack(
    clf: &Classifier,
    opts: &AttackOptions,
    importance: &ImportanceReport,
) -> Result<(AttackReport, AttackImages)> {
    let target = clf.class_index(&opts.target)?;
    if opts.samples == 0 {
        bail!("nothing to attack: give --samples above 0");
    }
    crate::zsample::check_id_range("--samples", 0, opts.samples as u64)?;
    clf.conv_cut(&opts.layer)?;
    let sel = select_images(clf, target, opts.first_seed, opts.samples, opts.device)?;
    let mut notes: Vec<String> = clf.check_images(&sel.images)?.into_iter().collect();
    let start = Instant::now();
    let mut parts = Vec::new();
    for i in (0..opts.samples).step_by(opts.batch.max(1)) {
        let n = opts.batch.max(1).min(opts.samples - i) as i64;
        let x = sel.images.narrow(0, i as i64, n);
        let t = Tensor::full([n], target as i64, (Kind::Int64, opts.device));
        parts.push(match &opts.method {
            Method::Pgd(o) => pgd(clf, &x, &t, o)?,
            Method::Cw(o) => carlini_wagner(clf, &x, &t, o)?.adversarial,
        });
    }
    let adv = Tensor::cat(&parts, 0);
    let seconds = start.elapsed().as_secs_f64();
    let _guard = tch::no_grad_guard();
    let after = Vec::<i64>::try_from(clf.logits(&adv).argmax(1, false).to_device(Device::Cpu))?;
    let diff = (&adv - &sel.images) / 2.0;
    let l2 = Vec::<f64>::try_from(
        diff.square()
            .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Double)
            .sqrt()
            .to_device(Device::Cpu),
    )?;
    let linf = Vec::<f64>::try_from(
        diff.abs()
            .amax([1i64, 2, 3].as_slice(), false)
            .to_kind(Kind::Double)
            .to_device(Device::Cpu),
    )?;
    let per_image: Vec<AttackedImage> = (0..opts.samples)
        .map(|i| AttackedImage {
            seed: sel.seeds[i],
            truth: clf.classes[sel.truths[i]].clone(),
            source: clf.classes[sel.predictions[i]].clone(),
            prediction: clf.classes[after[i] as usize].clone(),
            success: after[i] as usize == target,
            l2: l2[i],
            linf: linf[i],
        })
        .collect();
    let ok: Vec<usize> = (0..opts.samples)
        .filter(|&i| per_image[i].success)
        .collect();
    let mean = |v: &[f64]| {
        (!ok.is_empty()).then(|| ok.iter().map(|&i| v[i]).sum::<f64>() / ok.len() as f64)
    };
    let trace_report = if ok.is_empty() {
        notes.push(format!(
            "the attack failed on all {} images: no adversarial image reached '{}', so there is nothing to trace",
            opts.samples, opts.target
        ));
        None
    } else {
        if ok.len() < opts.samples {
            notes.push(format!(
                "the attack failed on {} of {} images (listed with success = false); only successes are traced",
                opts.samples - ok.len(),
                opts.samples
            ));
        }
        let idx = Tensor::from_slice(&ok.iter().map(|&i| i as i64).collect::<Vec<_>>())
            .to_device(opts.device);
        let sources: Vec<usize> = ok.iter().map(|&i| sel.predictions[i]).collect();
        Some(trace(
            clf,
            &opts.layer,
            importance,
            target,
            &sel.images.index_select(0, &idx),
            &adv.index_select(0, &idx),
            &sources,
        )?)
    };
    let report = AttackReport {
        model: clf.name.clone(),
        target: opts.target.clone(),
        method: opts.method,
        images: opts.samples,
        successes: ok.len(),
        success_rate: ok.len() as f64 / opts.samples as f64,
        mean_l2: mean(&l2),
        mean_linf: mean(&linf),
        per_image,
        notes,
        trace: trace_report,
        seconds,
    };
    Ok((
        report,
        AttackImages {
            originals: sel.images,
            adversarials: adv,
        },
    ))
}

/// Caption text size of the attack pictures, in pixels.
const CAPTION: f32 = 12.0;

/// The tile doubled in size (nearest neighbour), with a border of `colour` and `caption` above.
fn tile(img: &RgbImage, caption: &str, colour: [u8; 3]) -> RgbImage {
    let (w, h) = (img.width() * 2, img.height() * 2);
    let big = image::imageops::resize(img, w, h, image::imageops::FilterType::Nearest);
    let band = line_height(CAPTION) + 2;
    let mut out = RgbImage::from_pixel(w + 4, h + band + 4, Rgb([255, 255, 255]));
    imageproc::drawing::draw_filled_rect_mut(
        &mut out,
        imageproc::rect::Rect::at(0, band as i32).of_size(w + 4, h + 4),
        Rgb(colour),
    );
    image::imageops::replace(&mut out, &big, 2, i64::from(band) + 2);
    draw_text(&mut out, 2, 1, caption, CAPTION, [38, 38, 38]);
    out
}

/// Writes `attack.json`, `examples.png` (rows of original | adversarial | difference ×10 around
/// grey, captioned with the predictions, framed green for success and red for failure), and for
/// traced attacks `trace.png` and `units.png` (each of the first successful images with its
/// three most changed units' activations before and after, on a shared scale per unit).
pub fn write_attack(
    clf: &Classifier,
    report: &AttackReport,
    images: &AttackImages,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let _guard = tch::no_grad_guard();
    let mut written = vec![dir.join("attack.json")];
    write_json(&written[0], report)?;
    let shown = report.images.min(16) as i64;
    let orig = images.originals.narrow(0, 0, shown);
    let adv = images.adversarials.narrow(0, 0, shown);
    let amplified = ((&adv - &orig) * 10.0).clamp(-1.0, 1.0);
    let (o, a, d) = (
        to_rgb_images(&orig)?,
        to_rgb_images(&adv)?,
        to_rgb_images(&amplified)?,
    );
    let mut tiles = Vec::new();
    for i in 0..shown as usize {
        let p = &report.per_image[i];
        let colour = if p.success {
            [40, 170, 40]
        } else {
            [210, 30, 30]
        };
        tiles.push(tile(&o[i], &p.source, colour));
        tiles.push(tile(&a[i], &p.prediction, colour));
        tiles.push(tile(&d[i], "difference ×10", colour));
    }
    let path = dir.join("examples.png");
    save_png(&path, &grid(&tiles, 3, 2))?;
    written.push(path);
    if let Some(t) = &report.trace {
        let path = dir.join("trace.png");
        trace_chart(t, &report.target)?.save(&path.with_extension(""))?;
        written.push(path);
        let ok: Vec<i64> = (0..report.images)
            .filter(|&i| report.per_image[i].success)
            .take(6)
            .map(|i| i as i64)
            .collect();
        let idx = Tensor::from_slice(&ok).to_device(images.originals.device());
        let units: Vec<Vec<i64>> = t
            .most_changed
            .iter()
            .take(ok.len())
            .map(|v| v.iter().take(3).map(|(u, _)| *u).collect())
            .collect();
        let rows = unit_pictures(
            clf,
            &t.layer,
            &images.originals.index_select(0, &idx),
            &images.adversarials.index_select(0, &idx),
            &units,
        )?;
        let cols = rows.first().map_or(1, Vec::len);
        let mut tiles = Vec::new();
        for (row, us) in rows.iter().zip(&units) {
            let mut captions = vec!["original".to_string(), "adversarial".to_string()];
            for u in us {
                captions.push(format!("unit {u} before"));
                captions.push(format!("unit {u} after"));
            }
            for (img, cap) in row.iter().zip(&captions) {
                tiles.push(tile(img, cap, [255, 255, 255]));
            }
        }
        let path = dir.join("units.png");
        save_png(&path, &grid(&tiles, cols, 2))?;
        written.push(path);
    }
    Ok(written)
}
