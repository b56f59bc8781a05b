//! `gandissect dissect`: which unit of a layer draws or detects which concept.

use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::dissect::{
    DEFAULT_BATCH, DEFAULT_MINIOU, DEFAULT_QUANTILE, DEFAULT_SAMPLES, DEFAULT_SAVE_EVERY,
    DEFAULT_SEG_SIZE, DEFAULT_TOPK, DissectOptions, Outcome, Shard, dry_run, run,
};
use gandissect::zoo;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct DissectArgs {
    /// A generator or classifier: shipped name, model directory, checkpoint, or random[:SEED].
    #[arg(long, default_value = zoo::DEFAULT_GENERATOR)]
    model: String,
    /// Layer to dissect (repeat for several; they share one forward).
    #[arg(long = "layer", required = true)]
    layers: Vec<String>,
    /// Segmenter (name, directory, TorchScript file) or `truth` (world images only).
    #[arg(long, default_value = gandissect::segment::DEFAULT_SEGMENTER)]
    segmenter: String,
    /// Images to dissect over (ids 0..N).
    #[arg(long, default_value_t = DEFAULT_SAMPLES)]
    samples: u64,
    /// Output directory.
    #[arg(long, default_value = "out/dissect")]
    out: PathBuf,
    /// Quantile level of each unit's threshold.
    #[arg(long, default_value_t = DEFAULT_QUANTILE)]
    quantile: f64,
    /// IoU above which a unit is interpretable.
    #[arg(long, default_value_t = DEFAULT_MINIOU)]
    miniou: f64,
    /// Side of the segmentation and of the upsampled activations.
    #[arg(long, default_value_t = DEFAULT_SEG_SIZE)]
    seg_size: i64,
    /// Top images kept per unit.
    #[arg(long, default_value_t = DEFAULT_TOPK)]
    topk: usize,
    /// Images per batch.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: usize,
    /// Process only shard i of N (images i, i+N, ...); merge the shards afterwards.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// Images of a classifier: `world` (world scenes, ids = seeds).
    #[arg(long, default_value = "world")]
    images: String,
    /// Save statistics every this many batches.
    #[arg(long, default_value_t = DEFAULT_SAVE_EVERY)]
    save_every: usize,
    /// Stop after this many batches (a later run resumes).
    #[arg(long)]
    max_batches: Option<usize>,
    /// The entry of a TorchScript segmenter's dict or tuple output holding its label maps or
    /// scores (a dict key or a tuple index).
    #[arg(long, value_name = "NAME")]
    segmenter_output: Option<String>,
    /// Input side of a classifier checkpoint without a model card (a card's size wins).
    #[arg(long, value_name = "PIXELS")]
    input_size: Option<i64>,
    /// Measure N batches of each pass (default 3, the first a warm-up) and print the expected
    /// time per pass, per shard and in all; nothing is written.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "3")]
    dry_run: Option<usize>,
}

impl Run for DissectArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        if self.images != "world" {
            anyhow::bail!(
                "unknown --images '{}': world (world scenes) is the only image source",
                self.images
            );
        }
        let layers: Vec<&str> = self.layers.iter().map(String::as_str).collect();
        let mut opts = DissectOptions::new(
            &self.model,
            &layers,
            &self.segmenter,
            self.samples,
            &self.out,
        );
        opts.quantile = self.quantile;
        opts.miniou = self.miniou;
        opts.seg_size = self.seg_size;
        opts.topk = self.topk;
        opts.batch = self.batch;
        opts.shard = self.shard;
        opts.device = ctx.device;
        opts.save_every = self.save_every;
        opts.max_batches = self.max_batches;
        opts.progress = true;
        opts.segmenter_output = self.segmenter_output;
        opts.input_size = self.input_size;
        if let Some(batches) = self.dry_run {
            let plan = dry_run(&opts, batches)?;
            for line in plan.describe() {
                println!("{line}");
            }
            return Ok(());
        }
        let start = std::time::Instant::now();
        let outcome = run(&opts)?;
        print_outcome(outcome, &self.out);
        println!("took {:.1} s", start.elapsed().as_secs_f64());
        Ok(())
    }
}

/// Prints how a dissection or a merge ended: per layer its interpretable units, the passes'
/// timings, or what to run next.
pub fn print_outcome(outcome: Outcome, out: &Path) {
    match outcome {
        Outcome::Finished(r) => {
            for layer in &r.layers {
                let mut counts: Vec<_> = layer.counts.iter().collect();
                counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let top: Vec<String> = counts
                    .iter()
                    .take(8)
                    .map(|(c, n)| format!("{c} {n}"))
                    .collect();
                println!(
                    "{}: {} of {} units interpretable ({})",
                    layer.layer,
                    layer.interpretable,
                    layer.units.len(),
                    top.join(", ")
                );
            }
            for t in &r.timings {
                if t.images > 0 {
                    println!(
                        "{}: {} images in {:.1} s ({:.1} images/s)",
                        t.pass,
                        t.images,
                        t.seconds,
                        t.images as f64 / t.seconds.max(1e-9)
                    );
                } else {
                    println!("{}: {:.1} s", t.pass, t.seconds);
                }
            }
            println!("results → {} (dissect.json, report.html)", out.display());
        }
        Outcome::Interrupted { pass, images, of } => println!(
            "stopped in pass {pass} after {images} of {of} images; run the same command again to resume"
        ),
        Outcome::ShardDone { pass } => println!(
            "this shard finished pass {pass}; when every shard has, run: gandissect merge {}",
            out.display()
        ),
        Outcome::Pass1Merged => println!(
            "merged pass 1; now run every shard again (same command) for pass 2, then merge again"
        ),
    }
}
