//! The measured workloads on our side: a single edit on cached features, batch throughput of
//! edited scenes, mask pooling and compositing alone, PNG encoding, the device's convolution
//! peak, and the dissection pipeline.

use super::flops::{PEAK_BATCH, PEAK_CONV, proggan_suffix_flops};
use super::models::BenchModel;
use super::timing::{Percentiles, interleaved};
use crate::cut::{Cut, Edit, EditPlanes};
use crate::dissect::{self, DissectOptions, Outcome};
use anyhow::{Context, Result, bail};
use image::ImageEncoder;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// How much to measure.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Untimed rounds before timing.
    pub warmup: usize,
    /// Timed rounds of the single-edit workloads, at least.
    pub runs: usize,
    /// Timed runs per batch size, at least.
    pub batch_runs: usize,
    /// Rounds go on until the timed ones took this many seconds (fast workloads get more).
    pub min_seconds: f64,
    /// Batch sizes for models of at most 64×64 pixels.
    pub batches: Vec<i64>,
    /// Batch sizes for larger models.
    pub big_batches: Vec<i64>,
    /// Images of the dissection run.
    pub dissect_samples: u64,
    /// Images per dissection batch.
    pub dissect_batch: usize,
}

impl Settings {
    /// Tiny settings for development and tests (seconds on a small model).
    pub fn quick() -> Self {
        Self {
            warmup: 1,
            runs: 5,
            batch_runs: 2,
            min_seconds: 0.5,
            batches: vec![1, 8],
            big_batches: vec![1],
            dissect_samples: 32,
            dissect_batch: 16,
        }
    }

    /// The settings of a recorded measurement.
    pub fn full() -> Self {
        Self {
            warmup: 2,
            runs: 30,
            batch_runs: 8,
            min_seconds: 10.0,
            batches: vec![1, 8, 32],
            big_batches: vec![1, 8],
            dissect_samples: 500,
            dissect_batch: 32,
        }
    }

    /// The batch sizes measured for a model drawing `resolution`-pixel images.
    pub fn batches_for(&self, resolution: i64) -> &[i64] {
        if resolution <= 64 {
            &self.batches
        } else {
            &self.big_batches
        }
    }
}

/// The edit every measurement applies: ablate the first 20 units of the layer inside a
/// rectangle covering the left half of the image's middle half of rows (a mask at image
/// resolution, max-pooled to the layer's grid).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EditSpec {
    /// The cut layer.
    pub layer: String,
    /// Units set to zero.
    pub units: Vec<i64>,
    /// The masked rectangle as fractions of the image side: top, bottom, left, right.
    pub rect: [f64; 4],
}

impl EditSpec {
    /// The standard edit at `layer` of a layer with `channels` units.
    pub fn standard(layer: &str, channels: i64) -> Self {
        Self {
            layer: layer.to_string(),
            units: (0..channels.min(20)).collect(),
            rect: [0.25, 0.75, 0.0, 0.5],
        }
    }

    /// The mask `[side, side]` (1 inside the rectangle).
    pub fn mask(&self, side: i64, device: Device) -> Tensor {
        let at = |f: f64| ((f * side as f64).round() as i64).clamp(0, side);
        let (t, b, l, r) = (
            at(self.rect[0]),
            at(self.rect[1]),
            at(self.rect[2]),
            at(self.rect[3]),
        );
        let mask = Tensor::zeros([side, side], (Kind::Float, device));
        if b > t && r > l {
            let _ = mask.narrow(0, t, b - t).narrow(1, l, r - l).fill_(1.0);
        }
        mask
    }

    /// The edit as one stroke with a mask of `side` pixels.
    pub fn edits(&self, side: i64, device: Device) -> Vec<Edit> {
        vec![Edit::ablate(&self.units, Some(self.mask(side, device)))]
    }
}

/// Single-edit latency at batch 1 on cached prefix features, with its two ratios.
#[derive(Clone, Debug, Serialize)]
pub struct SingleEdit {
    /// Bare suffix forward (libtorch, no edit) on the cached features.
    pub suffix: Percentiles,
    /// Mask pooling + compositing + applying the edit + suffix forward.
    pub edit: Percentiles,
    /// Mask pooling + compositing + applying alone.
    pub composite: Percentiles,
    /// Converting the edited image to 8-bit RGB and encoding it as PNG (in memory).
    pub png_encode: Percentiles,
    /// The peak convolution (512→512 3×3, 16×16, batch 8), timed in the same rounds.
    pub peak_conv: Percentiles,
    /// Ratio (a): edit p50 / bare suffix p50.
    pub overhead_ratio: f64,
    /// Operations of the suffix for one image (convolutions counted from the layer shapes).
    pub suffix_gflop: f64,
    /// Suffix operations / suffix p50.
    pub suffix_gflops: f64,
    /// Peak convolution operations / its p50.
    pub peak_gflops: f64,
    /// Ratio (b): achieved suffix GFLOP/s over the peak.
    pub peak_fraction: f64,
}

/// Edited scenes per second at one batch size (latent → prefix → edit → suffix).
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    /// Scenes per batch.
    pub batch: i64,
    /// Time per batch.
    pub time: Percentiles,
    /// `batch` / median time.
    pub scenes_per_s: f64,
}

/// The dissection pipeline's throughput.
#[derive(Clone, Debug, Serialize)]
pub struct Dissection {
    /// The dissected layer.
    pub layer: String,
    /// The segmenter.
    pub segmenter: String,
    /// Images dissected.
    pub samples: u64,
    /// Images per batch.
    pub batch: usize,
    /// Seconds of pass 1 (quantiles and top images).
    pub pass1_s: f64,
    /// Seconds of pass 2 (IoU tallies, with segmentation).
    pub pass2_s: f64,
    /// Images / (pass 1 + pass 2 seconds).
    pub images_per_s: f64,
    /// The label of each unit, for comparison with the baseline.
    #[serde(skip)]
    pub unit_labels: Vec<String>,
    /// The segmenter's label names by id.
    #[serde(skip)]
    pub label_names: Vec<String>,
}

fn png_bytes(image: &Tensor) -> Result<usize> {
    let rgb = crate::imageio::to_rgb_images(image)?;
    let mut total = 0;
    for img in rgb {
        let mut buf = Vec::new();
        image::codecs::png::PngEncoder::new(&mut buf).write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )?;
        total += buf.len();
    }
    Ok(total)
}

/// Measures the single edit on `model` at batch 1 (latent: row 0 of a seeded normal draw).
pub fn single_edit(
    model: &BenchModel,
    spec: &EditSpec,
    s: &Settings,
    device: Device,
) -> Result<SingleEdit> {
    let _g = tch::no_grad_guard();
    let g = &model.generator;
    let cut = Cut::new(g, &spec.layer)?;
    let side = g.resolution();
    tch::manual_seed(1);
    let z = Tensor::randn([1, g.z_dim()], (Kind::Float, device));
    let h = cut.prefix(&z);
    let edits = spec.edits(side, device);
    let edited_image = cut.suffix(&cut.edit(&h, &edits)?);
    // Check the workloads once outside the timer, so errors are reported, not panicked.
    EditPlanes::composite(&edits, cut.layer_name(), &h.size(), device)?
        .context("the benchmark edit is empty")?;
    png_bytes(&edited_image)?;
    let x = Tensor::randn(
        [PEAK_BATCH, PEAK_CONV.cin, PEAK_CONV.out_h, PEAK_CONV.out_w],
        (Kind::Float, device),
    );
    let w = Tensor::randn(
        [
            PEAK_CONV.cout,
            PEAK_CONV.cin,
            PEAK_CONV.kernel,
            PEAK_CONV.kernel,
        ],
        (Kind::Float, device),
    ) * 0.02;
    let mut suffix = || {
        let _ = cut.suffix(&h);
    };
    let mut edit = || {
        let e = spec.edits(side, device);
        let _ = cut.suffix(&cut.edit(&h, &e).expect("checked above"));
    };
    let mut composite = || {
        let e = spec.edits(side, device);
        let planes = EditPlanes::composite(&e, cut.layer_name(), &h.size(), device)
            .expect("checked above")
            .expect("non-empty");
        let _ = planes.apply(&h);
    };
    let mut png = || {
        png_bytes(&edited_image).expect("checked above");
    };
    let mut conv = || {
        let _ = x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
    };
    let times = interleaved(
        &mut [&mut suffix, &mut edit, &mut composite, &mut png, &mut conv],
        s.warmup,
        s.runs,
        s.min_seconds,
        device,
    );
    let p: Vec<Percentiles> = times.iter().map(|t| Percentiles::from_seconds(t)).collect();
    let [suffix, edit, composite, png_encode, peak_conv] =
        <[Percentiles; 5]>::try_from(p).expect("five workloads");
    let flop = proggan_suffix_flops(g.sizes(), cut.layer_name())?;
    let suffix_gflops = flop / 1e9 / (suffix.p50_ms / 1e3);
    let peak_gflops = PEAK_CONV.flops() * PEAK_BATCH as f64 / 1e9 / (peak_conv.p50_ms / 1e3);
    Ok(SingleEdit {
        overhead_ratio: edit.p50_ms / suffix.p50_ms,
        suffix_gflop: flop / 1e9,
        suffix_gflops,
        peak_gflops,
        peak_fraction: suffix_gflops / peak_gflops,
        suffix,
        edit,
        composite,
        png_encode,
        peak_conv,
    })
}

/// Measures edited scenes per second at each batch size for `model`.
pub fn throughput(
    model: &BenchModel,
    spec: &EditSpec,
    s: &Settings,
    device: Device,
) -> Result<Vec<Throughput>> {
    let _g = tch::no_grad_guard();
    let g = &model.generator;
    let cut = Cut::new(g, &spec.layer)?;
    let side = g.resolution();
    let mut out = Vec::new();
    for &batch in s.batches_for(side) {
        tch::manual_seed(2);
        let z = Tensor::randn([batch, g.z_dim()], (Kind::Float, device));
        let _ = cut.forward_edited(&z, &spec.edits(side, device))?;
        let mut job = || {
            let e = spec.edits(side, device);
            let _ = cut.forward_edited(&z, &e).expect("checked above");
        };
        let times = interleaved(
            &mut [&mut job],
            s.warmup.min(1),
            s.batch_runs,
            s.min_seconds,
            device,
        );
        let time = Percentiles::from_seconds(&times[0]);
        out.push(Throughput {
            batch,
            scenes_per_s: batch as f64 / (time.p50_ms / 1e3),
            time,
        });
    }
    Ok(out)
}

/// Runs a fresh dissection of `model` at `layer` with `segmenter` into `dir` and times its two
/// passes (the report and unit images written afterwards are not counted).
pub fn dissection(
    model: &BenchModel,
    layer: &str,
    segmenter: &str,
    s: &Settings,
    dir: &Path,
    device: Device,
) -> Result<Dissection> {
    if dir.exists() {
        // statistics left by an earlier run would be resumed instead of measured
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot clear the old dissection in {}", dir.display()))?;
    }
    let weights = model
        .weights
        .to_str()
        .context("the weights path is not valid UTF-8")?;
    let mut opts = DissectOptions::new(weights, &[layer], segmenter, s.dissect_samples, dir);
    opts.batch = s.dissect_batch;
    opts.device = device;
    opts.report_images = 1;
    let result = match dissect::run(&opts)? {
        Outcome::Finished(r) => r,
        _ => bail!(
            "the benchmark dissection in {} did not finish",
            dir.display()
        ),
    };
    let time = |pass: &str| {
        result
            .timings
            .iter()
            .find(|t| t.pass == pass)
            .map(|t| t.seconds)
            .with_context(|| format!("the dissection reported no time for {pass}"))
    };
    let (pass1_s, pass2_s) = (time("pass 1")?, time("pass 2")?);
    let unit_labels = result
        .layers
        .first()
        .map(|l| l.units.iter().map(|u| u.label.clone()).collect())
        .unwrap_or_default();
    Ok(Dissection {
        layer: result
            .layers
            .first()
            .map_or(layer.to_string(), |l| l.layer.clone()),
        segmenter: segmenter.to_string(),
        samples: s.dissect_samples,
        batch: s.dissect_batch,
        images_per_s: s.dissect_samples as f64 / (pass1_s + pass2_s),
        pass1_s,
        pass2_s,
        unit_labels,
        label_names: result.labels.iter().map(|l| l.name.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_mask_covers_its_rectangle() {
        let spec = EditSpec::standard("layer4", 128);
        assert_eq!(spec.units, (0..20).collect::<Vec<_>>());
        assert_eq!(EditSpec::standard("layer4", 8).units.len(), 8);
        let m = spec.mask(64, Device::Cpu);
        assert_eq!(f64::try_from(m.sum(Kind::Float)).unwrap(), 32.0 * 32.0);
        assert_eq!(f64::try_from(m.get(16).get(0)).unwrap(), 1.0);
        assert_eq!(f64::try_from(m.get(15).get(0)).unwrap(), 0.0);
        assert_eq!(f64::try_from(m.get(16).get(32)).unwrap(), 0.0);
    }
}
