//! `gandissect analyze similarity`: SVCCA, PWCCA or linear CKA between the layers of one model,
//! of two models, or of one layer over a training run's kept checkpoints.

use crate::cli::{Context, Run};
use anyhow::{Result, bail};
use clap::Args;
use gandissect::analysis::similarity::compare::{DEFAULT_BATCH, DEFAULT_SETTLED};
use gandissect::analysis::similarity::measures::DEFAULT_KEEP;
use gandissect::analysis::similarity::{
    DEFAULT_BUDGET, MemoryPlan, Method, Options, Probe, Resize, Subject, compare, dynamics,
    write_dynamics, write_similarity,
};
use gandissect::classify::folder::ImageFolder;
use gandissect::classify::importance::HELDOUT_SPLIT_START;
use gandissect::zoo;
use gandissect::zsample::check_id_range;
use std::path::PathBuf;

#[derive(Args)]
pub struct SimilarityArgs {
    /// Model A: a shipped name, a model directory or a checkpoint (classifier or generator).
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// A's layers (repeat or separate by commas; default every conv layer's activation).
    #[arg(long, value_delimiter = ',')]
    layer: Vec<String>,
    /// Model B; without it A's layers are compared with each other.
    #[arg(long)]
    model_b: Option<String>,
    /// B's layers (default: A's when given, else every conv layer's activation).
    #[arg(long, value_delimiter = ',')]
    layer_b: Vec<String>,
    /// A training run's directory (trained with --keep-checkpoints): every layer at every kept
    /// checkpoint against its final state.
    #[arg(long, conflicts_with_all = ["model", "model_b", "layer_b"])]
    dynamics: Option<PathBuf>,
    /// svcca, pwcca or cka.
    #[arg(long, default_value = "svcca")]
    method: Method,
    /// The share of each layer's variance SVCCA keeps.
    #[arg(long, default_value_t = DEFAULT_KEEP)]
    keep: f64,
    /// How a layer on a finer grid meets a coarser one: pool (average) or dft (low
    /// frequencies).
    #[arg(long, default_value = "pool")]
    resize: Resize,
    /// A folder of pictures as the probe set (classifiers; default: world scenes).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Probe inputs: world scenes or image ids.
    #[arg(long, default_value_t = 500)]
    samples: u64,
    /// The first world seed (classifiers) or image id (generators) of the probe set (default:
    /// the held-out world seeds from 200000, image ids from 0).
    #[arg(long)]
    first: Option<u64>,
    /// Probe inputs per batch (the memory of the activations grows with it).
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: usize,
    /// The memory budget in GiB: above it the batch is lowered, then positions are sampled
    /// (docs/similarity.md, "How it is computed, and its memory").
    #[arg(long, default_value_t = (DEFAULT_BUDGET >> 30) as f64)]
    memory_budget: f64,
    /// At most this many spatial positions per probe input and grid, sampled uniformly
    /// without replacement (default: every position the budget allows).
    #[arg(long)]
    max_positions: Option<u64>,
    /// The seed of the position sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The similarity a layer must keep to count as settled (--dynamics).
    #[arg(long, default_value_t = DEFAULT_SETTLED)]
    settled: f64,
    /// Output directory.
    #[arg(long, default_value = "out/similarity")]
    out: PathBuf,
}

impl SimilarityArgs {
    fn probe(&self, a: &Subject) -> Result<Probe> {
        if self.samples == 0 {
            bail!("--samples must be at least 1");
        }
        Ok(match a {
            Subject::Generator { net, .. } => {
                if self.images.is_some() {
                    bail!(
                        "--images gives pictures to classifiers; a generator's probe set is image \
                         ids (--first, --samples)"
                    );
                }
                let first = self.first.unwrap_or(0);
                check_id_range("--first/--samples", first, self.samples)?;
                Probe::Latents {
                    ids: (first..first + self.samples).collect(),
                    z_dim: net.z_dim(),
                }
            }
            Subject::Classifier(c) => match &self.images {
                Some(dir) => Probe::Folder(ImageFolder::open(dir, c.input_size as u32)?),
                None => Probe::World {
                    start: self.first.unwrap_or(HELDOUT_SPLIT_START),
                    count: self.samples,
                },
            },
        })
    }
}

fn print_memory(m: &MemoryPlan) {
    let gb = |b: u64| b as f64 / (1u64 << 30) as f64;
    match &m.rule {
        Some(rule) => println!("memory: {rule}"),
        None => println!(
            "memory: estimated {:.2} GiB ({:.2} GiB of moments), within the budget {:.2} GiB; \
             batch {}, {}",
            gb(m.planned.total),
            gb(m.planned.moments),
            gb(m.budget),
            m.batch,
            m.positions.map_or("every position".into(), |k| format!(
                "at most {k} positions per input"
            ))
        ),
    }
}

impl Run for SimilarityArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        if !(self.memory_budget > 0.0 && self.memory_budget.is_finite()) {
            bail!(
                "--memory-budget is a size in GiB above 0, not {}",
                self.memory_budget
            );
        }
        if !(0.0..=1.0).contains(&self.settled) {
            bail!("--settled is a similarity in [0, 1], not {}", self.settled);
        }
        let opts = Options {
            method: self.method,
            keep: self.keep,
            resize: self.resize,
            batch: self.batch,
            device: ctx.device,
            budget: (self.memory_budget * (1u64 << 30) as f64) as u64,
            max_positions: self.max_positions,
            seed: self.seed,
        };
        opts.validate()?;
        if let Some(run) = &self.dynamics {
            let last = Subject::load(&run.to_string_lossy(), ctx.device)?;
            let layers = last.layers(&self.layer)?;
            let probe = self.probe(&last)?;
            let report = dynamics(run, &last, &layers, &probe, &opts, self.settled)?;
            write_dynamics(&report, &self.out)?;
            print_memory(&report.memory);
            println!(
                "{} over {} kept steps ({}); settling order (≥ {}): {}",
                report.method.name(),
                report.steps.len(),
                report.probe,
                report.settled,
                report.settling_order.join(", ")
            );
            for l in &report.layers {
                println!(
                    "  {:<12} settled at {:>6}  first {:.3}  last {:.3}",
                    l.layer,
                    l.settled_at.map_or("never".into(), |s| s.to_string()),
                    l.values.first().copied().unwrap_or(f64::NAN),
                    l.values.last().copied().unwrap_or(f64::NAN)
                );
            }
            println!("→ {}", self.out.join("dynamics.html").display());
            return Ok(());
        }
        let a = Subject::load(&self.model, ctx.device)?;
        let layers_a = a.layers(&self.layer)?;
        let probe = self.probe(&a)?;
        let b = match &self.model_b {
            Some(spec) => Some(Subject::load(spec, ctx.device)?),
            None => None,
        };
        let layers_b = match &b {
            Some(b) if self.layer_b.is_empty() => b.layers(&self.layer)?,
            Some(b) => b.layers(&self.layer_b)?,
            None if !self.layer_b.is_empty() => {
                bail!("--layer-b names B's layers; give B with --model-b")
            }
            None => Vec::new(),
        };
        let report = compare(
            (&a, &layers_a),
            b.as_ref().map(|b| (b, layers_b.as_slice())),
            &probe,
            &opts,
        )?;
        write_similarity(&report, &self.out)?;
        print_memory(&report.memory);
        for n in &report.notes {
            println!("note: {n}");
        }
        println!(
            "{} {} × {} over {} ({:.1} s, {:.1} MB of moments)",
            report.method.name(),
            report.model_a,
            report.model_b,
            report.probe,
            report.seconds,
            report.moment_bytes as f64 / 1e6
        );
        if report.model_a != report.model_b || self.model_b.is_some() {
            for (i, l) in report.layers_a.iter().enumerate() {
                if let Some(j) = report.layers_b.iter().position(|m| m.name == l.name) {
                    println!("  {:<12} {:.3}", l.name, report.matrix[i][j]);
                }
            }
        }
        println!("→ {}", self.out.join("similarity.html").display());
        Ok(())
    }
}
