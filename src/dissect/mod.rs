//! Dissection: which unit of a layer draws (generators) or detects (classifiers) which concept.
//!
//! The default mode follows the PNAS method (SPEC §2.1, §13):
//!
//! 1. **Pass 1.** For every image, the layer's activations are upsampled to the segmentation
//!    resolution (bilinear, pixel-centre aligned, border-clamped: [`upsample`]). Per unit, a
//!    quantile sketch collects every upsampled pixel of every image, and a top-k keeps the
//!    images with the largest spatial maximum of the raw feature map.
//! 2. **Threshold.** `level_u` = the unit's quantile at `q` (default 0.99, the top 1% of pixels).
//! 3. **Pass 2.** The indicator `upsampled > level_u` is tallied against the segmentation; the
//!    IoU of unit `u` and concept `c` is pooled over all pixels of all images:
//!    `|a ∧ c| / |a ∨ c|`.
//! 4. **Labels.** Each unit gets its best concept by IoU and is interpretable when that IoU
//!    exceeds the cut-off (default 0.04); each concept ranks every unit by IoU (the ranking
//!    interventions take their top k from).
//!
//! Both passes stream through [`pipeline`] (draw inputs → forward → segment → tally, on
//! separate threads), save their statistics atomically every few batches and resume where they
//! stopped. A run can be split into shards (image `j` belongs to shard `j mod N`) in two phases:
//!
//! 1. every shard runs pass 1 (`dissect --shard i/N`), then stops;
//! 2. `gandissect merge DIR` merges the pass-1 statistics (the levels come from the merged
//!    quantile sketches);
//! 3. every shard runs again with the same command and tallies pass 2 at the merged levels;
//! 4. `gandissect merge DIR` merges the tallies and writes the results.
//!
//! Counts merge exactly; the quantile sketches merge within their stated bound (exactly while
//! they hold every value), so a sharded dissection gives the same IoU table as one run whenever
//! the merged levels agree.

pub mod compare;
pub mod images;
pub mod passes;
pub mod pipeline;
pub mod report;
pub mod result;
pub mod source;
pub mod stats_paths;
pub mod upsample;

pub use passes::{Shard, Sketch};
pub use result::{
    ConceptUnits, DissectResult, LayerResult, Ranking, TopImage, UnitIou, UnitResult,
};
pub use source::{ImageSource, Labeller, Model, TRUTH};

use crate::segment::Label;
use crate::stats::StatsFile;
use crate::stats::quantile::DEFAULT_RESOLUTION;
use anyhow::{Context, Result, bail};
use passes::{Pass1, Pass2, Progress, check_progress, levels_digest};
use pipeline::Batch;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// Everything a dissection run needs.
#[derive(Clone, Debug)]
pub struct DissectOptions {
    /// The model: a shipped name, a model directory, a checkpoint or `random[:SEED]`.
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
    pub images: Option<std::sync::Arc<dyn ImageSource>>,
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
    /// Whether to draw progress bars.
    pub progress: bool,
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
            quantile: 0.99,
            miniou: 0.04,
            seg_size: 64,
            topk: 100,
            batch: 32,
            shard: Shard::default(),
            images: None,
            device: Device::Cpu,
            stream: crate::zsample::DEFAULT_STREAM_SEED,
            sketch: Sketch {
                resolution: DEFAULT_RESOLUTION,
                sample_floor: Some(
                    DEFAULT_RESOLUTION as i64
                        * crate::stats::quantile::DEFAULT_SAMPLE_FLOOR_PER_RESOLUTION,
                ),
            },
            save_every: 8,
            max_batches: None,
            report_images: 5,
            progress: false,
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
        if !(0.0..=1.0).contains(&self.miniou) {
            bail!("--miniou must lie in [0, 1], got {}", self.miniou);
        }
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

/// Wall time of one stage of this invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct PassTiming {
    /// `pass 1`, `pass 2` or `report`.
    pub pass: String,
    /// Images processed.
    pub images: u64,
    /// Seconds taken.
    pub seconds: f64,
}

/// How a run or a merge ended.
#[derive(Debug)]
pub enum Outcome {
    /// The dissection is complete and written.
    Finished(Box<DissectResult>),
    /// Stopped early (batch limit); running the same command again resumes.
    Interrupted {
        /// The pass that was running.
        pass: u8,
        /// Images of this shard done in that pass.
        images: u64,
        /// Images of this shard.
        of: u64,
    },
    /// This shard finished a pass; the shards' statistics must be merged next.
    ShardDone {
        /// The pass finished.
        pass: u8,
    },
    /// Merged pass 1; the shards must run again for pass 2.
    Pass1Merged,
}

/// Settings shared by both passes: everything pass-1 statistics depend on.
fn common_settings(opts: &DissectOptions, model: &Model, layers: &[String]) -> Result<Value> {
    Ok(json!({
        "model": opts.model,
        "model_kind": model.kind(),
        "weights": model.digest()?,
        "images": model.images_description(),
        "stream": opts.stream,
        "layers": layers,
        "samples": opts.samples,
        "seg_size": opts.seg_size,
        "topk": opts.topk,
        "batch": opts.batch,
        "sketch_resolution": opts.sketch.resolution,
        "sample_floor": opts.sketch.sample_floor,
        "shards": opts.shard.count,
    }))
}

fn with(base: &Value, extra: Value) -> Value {
    let mut v = base.clone();
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

fn label_settings(labels: &[Label]) -> Value {
    Value::Array(labels.iter().map(|l| json!([l.name, l.category])).collect())
}

fn labels_from_settings(settings: &Value) -> Result<Vec<Label>> {
    let arr = settings["labels"]
        .as_array()
        .context("pass-2 statistics lack their label list; the file is damaged")?;
    arr.iter()
        .map(|p| {
            Ok(Label {
                name: p[0].as_str().context("damaged label list")?.to_string(),
                category: p[1].as_str().context("damaged label list")?.to_string(),
            })
        })
        .collect()
}

/// A pass in progress: its statistics, file and settings.
trait Job {
    fn tally(&mut self, batch: Batch) -> Result<()>;
    fn save(&self) -> Result<()>;
    fn progress(&self) -> Progress;
}

struct Pass1Job<'a> {
    stats: Pass1,
    path: PathBuf,
    settings: Value,
    layers: &'a [String],
}

impl Job for Pass1Job<'_> {
    fn tally(&mut self, b: Batch) -> Result<()> {
        self.stats.add(&b.ids, &b.maxima, &b.upsampled)
    }
    fn save(&self) -> Result<()> {
        self.stats.save(&self.path, &self.settings, self.layers)
    }
    fn progress(&self) -> Progress {
        self.stats.progress
    }
}

struct Pass2Job<'a> {
    stats: Pass2,
    levels: &'a [Tensor],
    path: PathBuf,
    settings: Value,
    layers: &'a [String],
}

impl Job for Pass2Job<'_> {
    fn tally(&mut self, b: Batch) -> Result<()> {
        let labels = b.labels.context("pass 2 needs label maps")?;
        self.stats.add(&b.upsampled, self.levels, &labels)
    }
    fn save(&self) -> Result<()> {
        self.stats.save(&self.path, &self.settings, self.layers)
    }
    fn progress(&self) -> Progress {
        self.stats.progress
    }
}

/// Runs the remaining batches of `job` through the pipeline. Returns the model and labeller
/// back, and whether the pass is complete.
#[allow(clippy::too_many_arguments)]
fn drive(
    job: &mut dyn Job,
    model: Model,
    labeller: Option<Labeller>,
    layers: &[usize],
    batches: &[Vec<u64>],
    opts: &DissectOptions,
    what: &str,
    budget: &mut Option<usize>,
    timings: &mut Vec<PassTiming>,
) -> Result<(Model, Option<Labeller>, bool)> {
    let start = job.progress().batches as usize;
    if start >= batches.len() {
        return Ok((model, labeller, true));
    }
    let total: usize = batches.iter().map(Vec::len).sum();
    let bar = crate::progress::bar(total as u64, what);
    if !opts.progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_position(job.progress().images as u64);
    bar.reset_eta();
    let mut since_save = 0;
    let started = std::time::Instant::now();
    let before = job.progress().images;
    let (model, labeller) = pipeline::stream(
        model,
        labeller,
        layers,
        opts.seg_size,
        batches[start..].to_vec(),
        opts.device,
        |b| {
            if *budget == Some(0) {
                return Ok(false);
            }
            let n = b.ids.len() as u64;
            job.tally(b)?;
            bar.inc(n);
            since_save += 1;
            if let Some(left) = budget.as_mut() {
                *left -= 1;
            }
            if since_save >= opts.save_every || *budget == Some(0) {
                job.save()?;
                since_save = 0;
            }
            Ok(*budget != Some(0))
        },
    )?;
    bar.finish_and_clear();
    timings.push(PassTiming {
        pass: what.to_string(),
        images: (job.progress().images - before) as u64,
        seconds: started.elapsed().as_secs_f64(),
    });
    let complete = job.progress().batches as usize == batches.len();
    if since_save > 0 || complete {
        job.save()?;
    }
    Ok((model, labeller, complete))
}

/// Forwards and segments one image to check the layers and the segmenter before the run.
fn probe(
    model: &Model,
    labeller: &Labeller,
    layers: &[(usize, String)],
    first: u64,
    seg_size: i64,
    device: Device,
) -> Result<()> {
    let inputs = model.sampler().inputs(&[first], device)?;
    let indices: Vec<usize> = layers.iter().map(|l| l.0).collect();
    let (acts, images) = model.forward(&inputs, &indices, true)?;
    for (a, (_, name)) in acts.iter().zip(layers) {
        if a.dim() != 4 {
            bail!(
                "layer {name} gives outputs of shape {:?}; dissection needs a convolutional layer ([N, C, H, W])",
                a.size()
            );
        }
    }
    let images = images.context("the model produced no images")?;
    let maps = labeller.segment(&images, inputs.truth.as_ref(), seg_size)?;
    let n = labeller.labels().len() as i64;
    let (lo, hi) = (maps.min().int64_value(&[]), maps.max().int64_value(&[]));
    if lo < 0 || hi >= n {
        bail!(
            "the segmenter produced label id {} but lists only {n} labels (0..{}); its label list does not match its outputs",
            if lo < 0 { lo } else { hi },
            n - 1
        );
    }
    if n < 2 {
        bail!("the segmenter lists no concepts (only the 'none' label)");
    }
    Ok(())
}

fn load_or<T>(
    path: &Path,
    settings: &Value,
    read: impl FnOnce(&StatsFile) -> Result<T>,
    fresh: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if path.exists() {
        let file = StatsFile::load(path, settings)?;
        read(&file).with_context(|| format!("cannot resume from {}", path.display()))
    } else {
        fresh()
    }
}

/// Runs (or resumes) a dissection; see the module documentation for the shard flow.
pub fn run(opts: &DissectOptions) -> Result<Outcome> {
    opts.validate()?;
    // one process per shard and directory: another run of the same shard waits, then resumes
    let _lock = crate::fsutil::lock_file(
        &stats_paths::lock(&opts.out, opts.shard),
        &format!("shard {} of {}", opts.shard, opts.out.display()),
    )?;
    // what a run killed before its renames left behind
    for dir in [opts.out.clone(), opts.out.join("stats")] {
        crate::fsutil::remove_stale_temps(&dir)?;
    }
    let device = opts.device;
    let mut model = Model::load(&opts.model, opts.stream, device)?;
    if let Some(src) = &opts.images {
        if opts.samples > src.len() {
            bail!(
                "--samples {} exceeds the {} images of {}; give --samples {} or fewer",
                opts.samples,
                src.len(),
                src.describe(),
                src.len()
            );
        }
        model = model.with_images(std::sync::Arc::clone(src))?;
    }
    let layers = model.resolve_layers(&opts.layers)?;
    let names: Vec<String> = layers.iter().map(|l| l.1.clone()).collect();
    let indices: Vec<usize> = layers.iter().map(|l| l.0).collect();
    let labeller = Labeller::load(&opts.segmenter, &model, device)?;
    let ids = opts.shard.ids(opts.samples);
    let Some(&first) = ids.first() else {
        bail!(
            "shard {} has no images among {} samples; use fewer shards than samples",
            opts.shard,
            opts.samples
        );
    };
    probe(&model, &labeller, &layers, first, opts.seg_size, device)?;
    let batches: Vec<Vec<u64>> = ids.chunks(opts.batch).map(<[u64]>::to_vec).collect();
    let common = common_settings(opts, &model, &names)?;
    let mut budget = opts.max_batches;
    let mut timings = Vec::new();

    // Pass 1.
    let p1_settings = with(&common, json!({"pass": 1, "shard": opts.shard.to_string()}));
    let p1_path = stats_paths::pass1_shard(&opts.out, opts.shard);
    let seed = 0x6469_7373_6563_7400 ^ (opts.shard.index << 16);
    let stats = load_or(
        &p1_path,
        &p1_settings,
        |f| Pass1::from_file(f, &names, device),
        || Pass1::new(names.len(), opts.sketch, opts.topk, seed, device),
    )?;
    check_progress(stats.progress, ids.len(), &p1_path)?;
    let mut job1 = Pass1Job {
        stats,
        path: p1_path,
        settings: p1_settings,
        layers: &names,
    };
    let (model, _, done) = drive(
        &mut job1,
        model,
        None,
        &indices,
        &batches,
        opts,
        "pass 1",
        &mut budget,
        &mut timings,
    )?;
    if !done {
        return Ok(Outcome::Interrupted {
            pass: 1,
            images: job1.stats.progress.images as u64,
            of: ids.len() as u64,
        });
    }
    let merged1_settings = with(&common, json!({"pass": 1, "shard": "merged"}));
    let merged1_path = stats_paths::pass1_merged(&opts.out);
    let pass1 = if opts.shard.count == 1 {
        job1.stats.save(&merged1_path, &merged1_settings, &names)?;
        job1.stats
    } else if merged1_path.exists() {
        Pass1::from_file(
            &StatsFile::load(&merged1_path, &merged1_settings)?,
            &names,
            device,
        )?
    } else {
        return Ok(Outcome::ShardDone { pass: 1 });
    };
    if budget == Some(0) {
        return Ok(Outcome::Interrupted {
            pass: 2,
            images: 0,
            of: ids.len() as u64,
        });
    }

    // Pass 2.
    let levels = pass1.levels(opts.quantile)?;
    let labels = labeller.labels().to_vec();
    let p2_common = with(
        &common,
        json!({
            "pass": 2,
            "quantile": opts.quantile,
            "segmenter": opts.segmenter,
            "labels": label_settings(&labels),
            "levels": levels_digest(&levels)?,
        }),
    );
    let p2_settings = with(&p2_common, json!({"shard": opts.shard.to_string()}));
    let p2_path = stats_paths::pass2_shard(&opts.out, opts.quantile, opts.shard);
    let stats = load_or(
        &p2_path,
        &p2_settings,
        |f| Pass2::from_file(f, &names, device),
        || Pass2::new(names.len(), labels.len(), device),
    )?;
    check_progress(stats.progress, ids.len(), &p2_path)?;
    let mut job2 = Pass2Job {
        stats,
        levels: &levels,
        path: p2_path,
        settings: p2_settings,
        layers: &names,
    };
    let (model, _, done) = drive(
        &mut job2,
        model,
        Some(labeller),
        &indices,
        &batches,
        opts,
        "pass 2",
        &mut budget,
        &mut timings,
    )?;
    if !done {
        return Ok(Outcome::Interrupted {
            pass: 2,
            images: job2.stats.progress.images as u64,
            of: ids.len() as u64,
        });
    }
    if opts.shard.count > 1 {
        return Ok(Outcome::ShardDone { pass: 2 });
    }
    let merged2_settings = with(&p2_common, json!({"shard": "merged"}));
    let pass2 = job2.stats;
    pass2.save(
        &stats_paths::pass2_merged(&opts.out, opts.quantile),
        &merged2_settings,
        &names,
    )?;
    let finish = Finish {
        dir: &opts.out,
        settings: &merged2_settings,
        miniou: opts.miniou,
        report_images: opts.report_images,
        device,
    };
    let started = std::time::Instant::now();
    let mut result = finish.write(&model, &pass1, &pass2, &levels)?;
    timings.push(PassTiming {
        pass: "report".into(),
        images: 0,
        seconds: started.elapsed().as_secs_f64(),
    });
    result.timings = timings;
    Ok(Outcome::Finished(Box::new(result)))
}

/// Writing the results of complete statistics.
struct Finish<'a> {
    dir: &'a Path,
    settings: &'a Value,
    miniou: f64,
    report_images: usize,
    device: Device,
}

impl Finish<'_> {
    fn write(
        &self,
        model: &Model,
        pass1: &Pass1,
        pass2: &Pass2,
        levels: &[Tensor],
    ) -> Result<DissectResult> {
        let names: Vec<String> = serde_json::from_value(self.settings["layers"].clone())
            .context("statistics lack their layer list")?;
        let quantile = self.settings["quantile"]
            .as_f64()
            .context("statistics lack their quantile")?;
        let labels = labels_from_settings(self.settings)?;
        let mut settings = self.settings.clone();
        if let Value::Object(m) = &mut settings {
            m.remove("shard");
            m.remove("pass");
            m.remove("levels");
            m.remove("labels");
            m.insert("miniou".into(), json!(self.miniou));
        }
        let mut layers = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            layers.push(result::layer_result(
                name,
                &pass2.tallies[i],
                &levels[i],
                &pass1.topk[i],
                &labels,
                self.miniou,
            )?);
        }
        let result = DissectResult {
            settings,
            quantile,
            miniou: self.miniou,
            labels,
            layers,
            dir: self.dir.to_path_buf(),
            timings: Vec::new(),
        };
        let resolved = model.resolve_layers(&names)?;
        for (layer, (index, _)) in result.layers.iter().zip(&resolved) {
            images::write_unit_images(
                model,
                *index,
                layer,
                self.report_images,
                self.dir,
                self.device,
            )?;
        }
        crate::fsutil::write_json(&self.dir.join("dissect.json"), &result)?;
        report::write_report(&result, self.dir)?;
        Ok(result)
    }
}

/// Options of [`merge`].
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

/// The common settings of a group of shard files (everything but the shard), checked to agree
/// and to cover shards `0..N` once, each complete.
fn check_group(files: &[(PathBuf, Shard, StatsFile)]) -> Result<Value> {
    let (first_path, first_shard, first) = &files[0];
    let strip = |f: &StatsFile| {
        let mut m = f.settings().clone();
        m.remove("shard");
        Value::Object(m)
    };
    let base = strip(first);
    for (path, shard, f) in files {
        if shard.count != first_shard.count {
            bail!(
                "{} belongs to a run in {} shards but {} to one in {}; merge one run at a time",
                path.display(),
                shard.count,
                first_path.display(),
                first_shard.count
            );
        }
        let with_shard = with(&base, json!({"shard": shard.to_string()}));
        f.check_settings(&with_shard, path)?;
    }
    let count = first_shard.count;
    let mut seen = vec![false; count as usize];
    for (path, shard, _) in files {
        if std::mem::replace(&mut seen[shard.index as usize], true) {
            bail!(
                "shard {shard} appears twice (again in {}); merge each shard once",
                path.display()
            );
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|&i| !seen[i as usize])
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "shards {} are missing; run them (gandissect dissect --shard i/{count}) before merging",
            missing.join(", ")
        );
    }
    Ok(base)
}

fn check_complete(progress: Progress, shard: Shard, samples: u64, path: &Path) -> Result<()> {
    let want = shard.ids(samples).len() as i64;
    if progress.images != want {
        bail!(
            "shard {shard} is incomplete ({} of {want} images in {}); run it again to finish before merging",
            progress.images,
            path.display()
        );
    }
    Ok(())
}

/// Merges shard statistics: pass 1 when all pass-1 shards are complete, and pass 2 (then writing
/// the results) when all pass-2 shards are complete too.
pub fn merge(opts: &MergeOptions) -> Result<Outcome> {
    let Some(first_dir) = opts.dirs.first() else {
        bail!("give at least one directory with shard statistics to merge");
    };
    let out = opts.out.clone().unwrap_or_else(|| first_dir.clone());
    let device = opts.device;
    let mut found: Vec<(PathBuf, Shard, String)> = opts
        .dirs
        .iter()
        .flat_map(|d| stats_paths::shard_files(d))
        .collect();
    found.sort_by(|a, b| (a.2.as_str(), a.1.index).cmp(&(b.2.as_str(), b.1.index)));
    let load = |tag: &str| -> Result<Vec<(PathBuf, Shard, StatsFile)>> {
        found
            .iter()
            .filter(|f| f.2 == tag)
            .map(|(p, s, _)| Ok((p.clone(), *s, StatsFile::load_any(p)?)))
            .collect()
    };
    let p1 = load("pass1")?;
    if p1.is_empty() {
        bail!(
            "no shard statistics under {}/stats; run gandissect dissect --shard i/N --out DIR first",
            first_dir.display()
        );
    }
    let base1 = check_group(&p1)?;
    let names: Vec<String> = serde_json::from_value(base1["layers"].clone())
        .context("statistics lack their layer list")?;
    let samples = base1["samples"]
        .as_u64()
        .context("statistics lack samples")?;
    let mut merged1: Option<Pass1> = None;
    for (path, shard, file) in &p1 {
        let stats = Pass1::from_file(file, &names, device)?;
        check_complete(stats.progress, *shard, samples, path)?;
        match merged1.as_mut() {
            None => merged1 = Some(stats),
            Some(m) => m.merge(&stats)?,
        }
    }
    let pass1 = merged1.expect("at least one shard");
    let merged1_settings = with(&base1, json!({"shard": "merged"}));
    pass1.save(&stats_paths::pass1_merged(&out), &merged1_settings, &names)?;

    let mut tags: Vec<&str> = found
        .iter()
        .map(|f| f.2.as_str())
        .filter(|t| t.starts_with("pass2-"))
        .collect();
    tags.dedup();
    let Some(&tag) = tags.first() else {
        return Ok(Outcome::Pass1Merged);
    };
    if tags.len() > 1 {
        bail!(
            "shard statistics of several quantile levels ({}) are present; merge one level at a time from separate directories",
            tags.join(", ")
        );
    }
    let p2 = load(tag)?;
    let base2 = check_group(&p2)?;
    let quantile = base2["quantile"]
        .as_f64()
        .context("statistics lack quantile")?;
    let levels = pass1.levels(quantile)?;
    if base2["levels"].as_str() != Some(levels_digest(&levels)?.as_str()) {
        bail!(
            "the pass-2 shards were tallied at levels other than those of the merged pass 1; \
             delete the pass2 shard files and run the shards again"
        );
    }
    let labels = labels_from_settings(&base2)?;
    let mut merged2: Option<Pass2> = None;
    for (path, shard, file) in &p2 {
        let stats = Pass2::from_file(file, &names, device)?;
        check_complete(stats.progress, *shard, samples, path)?;
        match merged2.as_mut() {
            None => merged2 = Some(stats),
            Some(m) => m.merge(&stats)?,
        }
    }
    let pass2 = merged2.expect("at least one shard");
    if pass2
        .tallies
        .iter()
        .any(|t| t.num_labels() != labels.len() as i64)
    {
        bail!("the pass-2 tallies do not match their label list; the files are damaged");
    }
    let merged2_settings = with(&base2, json!({"shard": "merged"}));
    pass2.save(
        &stats_paths::pass2_merged(&out, quantile),
        &merged2_settings,
        &names,
    )?;
    let model_spec = base2["model"].as_str().context("statistics lack model")?;
    if !matches!(
        base2["images"].as_str(),
        Some("latent stream" | "world seeds") | None
    ) {
        bail!(
            "these shards dissected images of their own ({}); merging is for latent or world-seed runs, \
             so run a dissection over an image folder in one piece",
            base2["images"]
        );
    }
    let stream = base2["stream"].as_u64().unwrap_or(1) as u32;
    let model = Model::load(model_spec, stream, device)?;
    if base2["weights"].as_str() != Some(model.digest()?.as_str()) {
        bail!(
            "the model {model_spec} has changed since the shards ran (other weights); rerun the shards with it"
        );
    }
    let finish = Finish {
        dir: &out,
        settings: &merged2_settings,
        miniou: opts.miniou,
        report_images: opts.report_images,
        device,
    };
    Ok(Outcome::Finished(Box::new(
        finish.write(&model, &pass1, &pass2, &levels)?,
    )))
}
