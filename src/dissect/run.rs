//! One dissection run (or one shard of it): pass 1, the levels, pass 2 and the results, each
//! pass resumed from its saved statistics and saved again every few batches.

use super::estimate::{Plan, RateMeter, running_estimate};
use super::finish::Finish;
use super::options::DissectOptions;
use super::passes::{Pass1, Pass2, Progress, check_progress, levels_digest};
use super::pipeline::{self, Batch};
use super::settings::{Header, Part, Pass2Settings, Settings};
use super::source::{Labeller, Model};
use super::{Outcome, PassTiming, stats_paths};
use crate::stats::StatsFile;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// Runs (or resumes) a dissection of the model and segmenter named in `opts`, loading them
/// first; see the module documentation of [`crate::dissect`] for the shard flow.
pub fn run(opts: &DissectOptions) -> Result<Outcome> {
    opts.validate()?;
    let _lock = lock(opts)?;
    let mut model = Model::load_sized(&opts.model, opts.stream, opts.input_size, opts.device)?;
    if let Some(src) = &opts.images {
        model.attach_images(std::sync::Arc::clone(src))?;
    }
    // the layers are checked before the segmenter is loaded
    model.resolve_layers(&opts.layers)?;
    let mut labeller = Labeller::load_output(
        &opts.segmenter,
        opts.segmenter_output.as_deref(),
        &model,
        opts.device,
    )?;
    dissect(opts, &mut model, &mut labeller)
}

/// Runs (or resumes) a dissection of models already loaded: `model` (its image source, if any,
/// attached) labelled by `labeller`. `opts.model` and `opts.segmenter` are the names the
/// statistics record them by; `opts.images` must be unset (attach images to the model).
pub fn run_with(
    opts: &DissectOptions,
    model: &mut Model,
    labeller: &mut Labeller,
) -> Result<Outcome> {
    opts.validate()?;
    if opts.images.is_some() {
        bail!(
            "a dissection of loaded models takes its images from the model; attach the image \
             source with Model::attach_images instead of DissectOptions::images"
        );
    }
    if let Model::Generator { stream, .. } = model
        && *stream != opts.stream
    {
        bail!(
            "the generator draws latent stream {stream} but the options record stream {}; give \
             both the same stream",
            opts.stream
        );
    }
    let _lock = lock(opts)?;
    dissect(opts, model, labeller)
}

/// Measures a dissection without running it: loads the models, checks them on one image, runs
/// `batches` batches of this shard's images through pass 1 and then pass 2 (the first batch
/// of each a warm-up left out of the rate; nothing is saved, `opts.out` is not touched) and
/// returns the expected time per pass, per shard and in all.
pub fn dry_run(opts: &DissectOptions, batches: usize) -> Result<Plan> {
    opts.validate()?;
    if batches < 2 {
        bail!(
            "a dry run measures at least 2 batches (the first is a warm-up); give --dry-run 2 or more"
        );
    }
    let mut model = Model::load_sized(&opts.model, opts.stream, opts.input_size, opts.device)?;
    if let Some(src) = &opts.images {
        model.attach_images(std::sync::Arc::clone(src))?;
    }
    let layers = model.resolve_layers(&opts.layers)?;
    let mut labeller = Labeller::load_output(
        &opts.segmenter,
        opts.segmenter_output.as_deref(),
        &model,
        opts.device,
    )?;
    let ids = opts.shard.ids(opts.samples);
    let Some(&first) = ids.first() else {
        bail!(
            "shard {} has no images among {} samples; use fewer shards than samples",
            opts.shard,
            opts.samples
        );
    };
    probe(
        &model,
        &labeller,
        &layers,
        first,
        opts.seg_size,
        opts.device,
    )?;
    let indices: Vec<usize> = layers.iter().map(|l| l.0).collect();
    let names: Vec<String> = layers.iter().map(|l| l.1.clone()).collect();
    let measured: Vec<Vec<u64>> = ids
        .chunks(opts.batch)
        .take(batches)
        .map(<[u64]>::to_vec)
        .collect();
    let mut pass1 = Pass1::new(names.len(), opts.sketch, opts.topk, 0, opts.device)?;
    let mut meter1 = RateMeter::new();
    let bar = crate::progress::bar(
        measured.iter().map(Vec::len).sum::<usize>() as u64 * 2,
        "dry run",
    );
    if !opts.progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    pipeline::stream(
        &mut model,
        None,
        &indices,
        opts.seg_size,
        measured.clone(),
        opts.device,
        |b| {
            let n = b.ids.len() as u64;
            pass1.add(&b.ids, &b.maxima, &b.upsampled)?;
            meter1.batch_done(n);
            bar.inc(n);
            Ok(true)
        },
    )?;
    let levels = pass1.levels(opts.quantile)?;
    let mut pass2 = Pass2::new(names.len(), labeller.labels().len(), opts.device)?;
    let mut meter2 = RateMeter::new();
    pipeline::stream(
        &mut model,
        Some(&mut labeller),
        &indices,
        opts.seg_size,
        measured,
        opts.device,
        |b| {
            let n = b.ids.len() as u64;
            let labels = b.labels.context("pass 2 needs label maps")?;
            pass2.add(&b.upsampled, &levels, &labels)?;
            meter2.batch_done(n);
            bar.inc(n);
            Ok(true)
        },
    )?;
    bar.finish_and_clear();
    let (Some(pass1_rate), Some(pass2_rate)) = (meter1.final_rate(), meter2.final_rate()) else {
        bail!(
            "this shard has {} images, fewer than 2 batches of {}; a dry run needs at least 2 \
             batches (give a smaller --batch)",
            ids.len(),
            opts.batch
        );
    };
    Ok(Plan {
        samples: opts.samples,
        shard: opts.shard,
        shard_images: ids.len() as u64,
        pass1_rate,
        pass2_rate,
        measured_images: meter1.images().min(meter2.images()),
    })
}

/// One process per shard and directory: another run of the same shard waits, then resumes.
/// Once the lock is held, removes what a run killed before its renames left behind.
fn lock(opts: &DissectOptions) -> Result<crate::fsutil::FileLock> {
    let lock = crate::fsutil::lock_file(
        &stats_paths::lock(&opts.out, opts.shard),
        &format!("shard {} of {}", opts.shard, opts.out.display()),
    )?;
    for dir in [opts.out.clone(), opts.out.join("stats")] {
        crate::fsutil::remove_stale_temps(&dir)?;
    }
    Ok(lock)
}

/// Everything the statistics of this run depend on.
fn common_settings(opts: &DissectOptions, model: &Model, layers: &[String]) -> Result<Settings> {
    Ok(Settings {
        model: opts.model.clone(),
        model_kind: model.kind().to_string(),
        weights: model.digest()?,
        images: model.images_description(),
        stream: opts.stream,
        layers: layers.to_vec(),
        samples: opts.samples,
        seg_size: opts.seg_size,
        topk: opts.topk,
        batch: opts.batch,
        sketch_resolution: opts.sketch.resolution,
        sample_floor: opts.sketch.sample_floor,
        shards: opts.shard.count,
        input_size: model.input_size(),
    })
}

fn dissect(opts: &DissectOptions, model: &mut Model, labeller: &mut Labeller) -> Result<Outcome> {
    let device = opts.device;
    if let Some(src) = model.image_source()
        && opts.samples > src.len()
    {
        bail!(
            "--samples {} exceeds the {} images of {}; give --samples {} or fewer",
            opts.samples,
            src.len(),
            src.describe(),
            src.len()
        );
    }
    let layers = model.resolve_layers(&opts.layers)?;
    let names: Vec<String> = layers.iter().map(|l| l.1.clone()).collect();
    let indices: Vec<usize> = layers.iter().map(|l| l.0).collect();
    let ids = opts.shard.ids(opts.samples);
    let Some(&first) = ids.first() else {
        bail!(
            "shard {} has no images among {} samples; use fewer shards than samples",
            opts.shard,
            opts.samples
        );
    };
    let seg_seconds = probe(model, labeller, &layers, first, opts.seg_size, device)?;
    let batches: Vec<Vec<u64>> = ids.chunks(opts.batch).map(<[u64]>::to_vec).collect();
    let common = common_settings(opts, model, &names)?;
    let shard = Part::Shard(opts.shard);
    let mut budget = opts.max_batches;
    let mut timings = Vec::new();

    // Pass 1.
    let p1_header = Header::pass1(&common, shard);
    let p1_path = stats_paths::pass1_shard(&opts.out, opts.shard);
    let seed = 0x6469_7373_6563_7400 ^ (opts.shard.index << 16);
    let stats = load_or(
        &p1_path,
        &p1_header,
        |f| Pass1::from_file(f, &names, device),
        || Pass1::new(names.len(), opts.sketch, opts.topk, seed, device),
    )?;
    check_progress(stats.progress, ids.len(), &p1_path)?;
    let mut job1 = Pass1Job {
        stats,
        path: p1_path,
        header: p1_header,
        layers: &names,
    };
    let mut stages = Stages {
        indices: &indices,
        batches: &batches,
        opts,
        budget: &mut budget,
        timings: &mut timings,
        seg_seconds,
    };
    if !stages.drive(&mut job1, model, None, "pass 1")? {
        return Ok(Outcome::Interrupted {
            pass: 1,
            images: job1.stats.progress.images as u64,
            of: ids.len() as u64,
        });
    }
    let merged1_header = Header::pass1(&common, Part::Merged);
    let merged1_path = stats_paths::pass1_merged(&opts.out);
    let pass1 = if opts.shard.count == 1 {
        job1.stats
            .save(&merged1_path, &merged1_header.to_json(), &names)?;
        job1.stats
    } else if merged1_path.exists() {
        let file = StatsFile::load_any(&merged1_path)?;
        Header::check(&file, &merged1_path, &merged1_header)?;
        Pass1::from_file(&file, &names, device)?
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
    let pass2 = Pass2Settings {
        quantile: opts.quantile,
        segmenter: opts.segmenter_record(),
        labels: labels.clone(),
        levels: levels_digest(&levels)?,
    };
    let p2_header = Header::pass2(&common, &pass2, shard);
    let p2_path = stats_paths::pass2_shard(&opts.out, opts.quantile, opts.shard);
    let stats = load_or(
        &p2_path,
        &p2_header,
        |f| Pass2::from_file(f, &names, device),
        || Pass2::new(names.len(), labels.len(), device),
    )?;
    check_progress(stats.progress, ids.len(), &p2_path)?;
    let mut job2 = Pass2Job {
        stats,
        levels: &levels,
        path: p2_path,
        header: p2_header,
        layers: &names,
    };
    let mut stages = Stages {
        indices: &indices,
        batches: &batches,
        opts,
        budget: &mut budget,
        timings: &mut timings,
        seg_seconds,
    };
    if !stages.drive(&mut job2, model, Some(labeller), "pass 2")? {
        return Ok(Outcome::Interrupted {
            pass: 2,
            images: job2.stats.progress.images as u64,
            of: ids.len() as u64,
        });
    }
    if opts.shard.count > 1 {
        return Ok(Outcome::ShardDone { pass: 2 });
    }
    let merged2_header = Header::pass2(&common, &pass2, Part::Merged);
    let tallies = job2.stats;
    tallies.save(
        &stats_paths::pass2_merged(&opts.out, opts.quantile),
        &merged2_header.to_json(),
        &names,
    )?;
    let finish = Finish {
        dir: &opts.out,
        common: &common,
        pass2: &pass2,
        miniou: opts.miniou,
        report_images: opts.report_images,
        device,
    };
    let started = std::time::Instant::now();
    let mut result = finish.write(model, &pass1, &tallies, &levels)?;
    timings.push(PassTiming {
        pass: "report".into(),
        images: 0,
        seconds: started.elapsed().as_secs_f64(),
    });
    result.timings = timings;
    Ok(Outcome::Finished(Box::new(result)))
}

/// A pass in progress: its statistics, file and header.
trait Job {
    fn tally(&mut self, batch: Batch) -> Result<()>;
    fn save(&self) -> Result<()>;
    fn progress(&self) -> Progress;
}

struct Pass1Job<'a> {
    stats: Pass1,
    path: PathBuf,
    header: Header,
    layers: &'a [String],
}

impl Job for Pass1Job<'_> {
    fn tally(&mut self, b: Batch) -> Result<()> {
        self.stats.add(&b.ids, &b.maxima, &b.upsampled)
    }
    fn save(&self) -> Result<()> {
        self.stats
            .save(&self.path, &self.header.to_json(), self.layers)
    }
    fn progress(&self) -> Progress {
        self.stats.progress
    }
}

struct Pass2Job<'a> {
    stats: Pass2,
    levels: &'a [Tensor],
    path: PathBuf,
    header: Header,
    layers: &'a [String],
}

impl Job for Pass2Job<'_> {
    fn tally(&mut self, b: Batch) -> Result<()> {
        let labels = b.labels.context("pass 2 needs label maps")?;
        self.stats.add(&b.upsampled, self.levels, &labels)
    }
    fn save(&self) -> Result<()> {
        self.stats
            .save(&self.path, &self.header.to_json(), self.layers)
    }
    fn progress(&self) -> Progress {
        self.stats.progress
    }
}

/// What every pass of one invocation shares: the layers, the batches, the batch budget and the
/// timings.
struct Stages<'a> {
    indices: &'a [usize],
    batches: &'a [Vec<u64>],
    opts: &'a DissectOptions,
    budget: &'a mut Option<usize>,
    timings: &'a mut Vec<PassTiming>,
    /// Seconds the segmenter took on the probe image (for the pass-2 estimate).
    seg_seconds: f64,
}

impl Stages<'_> {
    /// Runs the remaining batches of `job` through the pipeline; returns whether the pass is
    /// complete.
    fn drive(
        &mut self,
        job: &mut dyn Job,
        model: &mut Model,
        labeller: Option<&mut Labeller>,
        what: &str,
    ) -> Result<bool> {
        let batches = self.batches;
        let start = job.progress().batches as usize;
        if start >= batches.len() {
            return Ok(true);
        }
        let total: usize = batches.iter().map(Vec::len).sum();
        let bar = crate::progress::bar(total as u64, what);
        if !self.opts.progress {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar.set_position(job.progress().images as u64);
        bar.reset_eta();
        let mut since_save = 0;
        let started = std::time::Instant::now();
        let before = job.progress().images;
        let save_every = self.opts.save_every;
        let budget = &mut *self.budget;
        let mut meter = RateMeter::new();
        let mut estimated = false;
        let pass = if labeller.is_some() { 2 } else { 1 };
        let seg_seconds = self.seg_seconds;
        let progress = self.opts.progress;
        pipeline::stream(
            model,
            labeller,
            self.indices,
            self.opts.seg_size,
            batches[start..].to_vec(),
            self.opts.device,
            |b| {
                if *budget == Some(0) {
                    return Ok(false);
                }
                let n = b.ids.len() as u64;
                job.tally(b)?;
                bar.inc(n);
                meter.batch_done(n);
                if !estimated && let Some(rate) = meter.rate() {
                    estimated = true;
                    let line = running_estimate(
                        pass,
                        rate,
                        total as u64 - bar.position(),
                        total as u64,
                        Some(seg_seconds),
                    );
                    match (progress, bar.is_hidden()) {
                        (false, _) => {}
                        // a log file (no terminal) still gets the estimate
                        (true, true) => eprintln!("{line}"),
                        (true, false) => bar.println(line),
                    }
                }
                since_save += 1;
                if let Some(left) = budget.as_mut() {
                    *left -= 1;
                }
                if since_save >= save_every || *budget == Some(0) {
                    job.save()?;
                    since_save = 0;
                }
                Ok(*budget != Some(0))
            },
        )?;
        bar.finish_and_clear();
        self.timings.push(PassTiming {
            pass: what.to_string(),
            images: (job.progress().images - before) as u64,
            seconds: started.elapsed().as_secs_f64(),
        });
        let complete = job.progress().batches as usize == batches.len();
        if since_save > 0 || complete {
            job.save()?;
        }
        Ok(complete)
    }
}

/// Forwards and segments one image to check the layers and the segmenter before the run;
/// returns the seconds a segmentation of it takes (measured on a second call).
fn probe(
    model: &Model,
    labeller: &Labeller,
    layers: &[(usize, String)],
    first: u64,
    seg_size: i64,
    device: Device,
) -> Result<f64> {
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
    // timed on a second call: a TorchScript module's first calls include its optimisation
    let started = std::time::Instant::now();
    let _again = labeller.segment(&images, inputs.truth.as_ref(), seg_size)?;
    let seg_seconds = started.elapsed().as_secs_f64();
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
    Ok(seg_seconds)
}

/// The statistics saved at `path` when their header is `header` (any other is refused), or
/// fresh ones when there is no file yet.
fn load_or<T>(
    path: &Path,
    header: &Header,
    read: impl FnOnce(&StatsFile) -> Result<T>,
    fresh: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if path.exists() {
        let file = StatsFile::load_any(path)?;
        Header::check(&file, path, header)?;
        read(&file).with_context(|| format!("cannot resume from {}", path.display()))
    } else {
        fresh()
    }
}
