//! What a dissection run and a merge are asked to do, with the defaults the command line and
//! the library share.

use super::passes::{Shard, Sketch};
use super::source::ImageSource;
use crate::stats::quantile::{DEFAULT_RESOLUTION, DEFAULT_SAMPLE_FLOOR_PER_RESOLUTION};
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::Device;

/// Images dissected over by default.
pub const DEFAULT_SAMPLES: u64 = 1000;
/// Quantile level of each unit's threshold (the top 1% of its pixels).
pub const DEFAULT_QUANTILE: f64 = 0.99;
/// IoU above which a unit counts as interpretable.
pub const DEFAULT_MINIOU: f64 = 0.04;
/// Side of the segmentation and of the upsampled activations.
pub const DEFAULT_SEG_SIZE: i64 = 64;
/// Top images kept per unit.
pub const DEFAULT_TOPK: usize = 100;
/// Images per batch.
pub const DEFAULT_BATCH: usize = 32;
/// Batches between two saves of the statistics.
pub const DEFAULT_SAVE_EVERY: usize = 8;
/// Top images shown per unit in the report.
pub const DEFAULT_REPORT_IMAGES: usize = 5;

/// Everything a dissection run needs.
#[derive(Clone, Debug)]
pub struct DissectOptions {
    /// The model: a shipped name, a model directory, a checkpoint or `random[:SEED]` (recorded
    /// with the statistics; a run on loaded models records it as the models' name).
    pub model: String,
    /// Layers to dissect (canonical names or aliases); they share one forward.
    pub layers: Vec<String>,
    /// The segmenter (name, directory, TorchScript file) or `truth` (world images only).
    pub segmenter: String,
    /// Images to dissect over: ids `0..samples`.
    pub samples: u64,
    /// Output directory.
    pub out: PathBuf,
    /// Quantile level of the per-unit threshold.
    pub quantile: f64,
    /// IoU above which a unit counts as interpretable.
    pub miniou: f64,
    /// Side of the segmentation (and of the upsampled activations).
    pub seg_size: i64,
    /// Top images kept per unit.
    pub topk: usize,
    /// Images per batch.
    pub batch: usize,
    /// Which part of the images this run takes.
    pub shard: Shard,
    /// Images a classifier is dissected over instead of world scenes (ids `0..samples` index
    /// them; `samples` may not exceed their number).
    pub images: Option<Arc<dyn ImageSource>>,
    /// Where tensors live.
    pub device: Device,
    /// Seed of the latent stream (generators).
    pub stream: u32,
    /// Quantile sketch settings.
    pub sketch: Sketch,
    /// Save statistics every this many batches.
    pub save_every: usize,
    /// Stop after this many batches in this invocation (for time-limited jobs; the next run
    /// resumes).
    pub max_batches: Option<usize>,
    /// Top images shown per unit in the report.
    pub report_images: usize,
    /// Whether to draw progress bars (and print the time estimate).
    pub progress: bool,
    /// The entry of a TorchScript segmenter's dict or tuple output that holds its label maps.
    pub segmenter_output: Option<String>,
    /// The input side of a classifier checkpoint without a card (a card's size wins).
    pub input_size: Option<i64>,
}

impl DissectOptions {
    /// Options with the defaults: quantile 0.99, IoU cut-off 0.04, 64×64 segmentation, top 100,
    /// batch 32, one shard, CPU, stream 1, sketch resolution 2048, saving every 8 batches.
    pub fn new(model: &str, layers: &[&str], segmenter: &str, samples: u64, out: &Path) -> Self {
        Self {
            model: model.to_string(),
            layers: layers.iter().map(|s| s.to_string()).collect(),
            segmenter: segmenter.to_string(),
            samples,
            out: out.to_path_buf(),
            quantile: DEFAULT_QUANTILE,
            miniou: DEFAULT_MINIOU,
            seg_size: DEFAULT_SEG_SIZE,
            topk: DEFAULT_TOPK,
            batch: DEFAULT_BATCH,
            shard: Shard::default(),
            images: None,
            device: Device::Cpu,
            stream: crate::zsample::DEFAULT_STREAM_SEED,
            sketch: Sketch {
                resolution: DEFAULT_RESOLUTION,
                sample_floor: Some(DEFAULT_RESOLUTION as i64 * DEFAULT_SAMPLE_FLOOR_PER_RESOLUTION),
            },
            save_every: DEFAULT_SAVE_EVERY,
            max_batches: None,
            report_images: DEFAULT_REPORT_IMAGES,
            progress: false,
            segmenter_output: None,
            input_size: None,
        }
    }

    /// The segmenter as the statistics record it: its name, with the chosen output.
    pub fn segmenter_record(&self) -> String {
        match &self.segmenter_output {
            Some(o) => format!("{} (output {o})", self.segmenter),
            None => self.segmenter.clone(),
        }
    }

    /// Checks the numbers, naming the option to fix.
    pub fn validate(&self) -> Result<()> {
        if self.samples == 0 {
            bail!("--samples must be at least 1 (the number of images to dissect over)");
        }
        if self.samples > crate::zsample::MAX_IDS {
            bail!(
                "--samples {} is more than a dissection can hold (at most {} images, whose ids \
                 alone take memory); give fewer samples",
                self.samples,
                crate::zsample::MAX_IDS
            );
        }
        if self.batch == 0 || self.topk == 0 || self.save_every == 0 || self.report_images == 0 {
            bail!(
                "--batch, --topk, the save interval and the report image count must be at least 1"
            );
        }
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            bail!(
                "--quantile must lie strictly between 0 and 1 (0.99 = top 1%), got {}",
                self.quantile
            );
        }
        check_miniou(self.miniou)?;
        if !(1..=4096).contains(&self.seg_size) {
            bail!(
                "--seg-size must be between 1 and 4096, got {}",
                self.seg_size
            );
        }
        if self.layers.is_empty() {
            bail!("no layer to dissect; give at least one --layer");
        }
        Ok(())
    }
}

/// Refuses an IoU cut-off outside [0, 1].
fn check_miniou(miniou: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&miniou) {
        bail!("--miniou must lie in [0, 1], got {miniou}");
    }
    Ok(())
}

/// Options of [`super::merge`].
#[derive(Clone, Debug)]
pub struct MergeOptions {
    /// Directories holding shard statistics under `stats/`.
    pub dirs: Vec<PathBuf>,
    /// Where merged statistics and results go (default: the first directory).
    pub out: Option<PathBuf>,
    /// IoU cut-off for the results.
    pub miniou: f64,
    /// Top images shown per unit in the report.
    pub report_images: usize,
    /// Where tensors live.
    pub device: Device,
}

impl MergeOptions {
    /// Merging `dirs` into the first of them with the default cut-off and report on the CPU.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self {
            dirs,
            out: None,
            miniou: DEFAULT_MINIOU,
            report_images: DEFAULT_REPORT_IMAGES,
            device: Device::Cpu,
        }
    }

    /// Where the merged statistics and results go: `out`, else the first directory.
    pub fn out_dir(&self) -> Option<&Path> {
        self.out
            .as_deref()
            .or(self.dirs.first().map(PathBuf::as_path))
    }

    /// Checks the options, naming the one to fix.
    pub fn validate(&self) -> Result<()> {
        if self.dirs.is_empty() {
            bail!("give at least one directory with shard statistics to merge");
        }
        check_miniou(self.miniou)?;
        if self.report_images == 0 {
            bail!("the report image count must be at least 1");
        }
        Ok(())
    }
}
