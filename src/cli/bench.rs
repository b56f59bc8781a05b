//! `gandissect bench`: edit latency, throughput and dissection speed, optionally against
//! PyTorch.

use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::bench::{BenchOptions, render_table, run};
use std::path::PathBuf;

#[derive(Args)]
pub struct BenchArgs {
    /// Model to measure (repeatable): world (the trained world generator, or random weights of
    /// its geometry until it is installed), random256, or a generator; default: world and random256.
    #[arg(long = "model")]
    models: Vec<String>,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also run the same workloads in PyTorch (benches/baseline.py) and compare.
    #[arg(long)]
    baseline: bool,
    /// Tiny settings (a few rounds, 32 dissected images) for a quick check.
    #[arg(long)]
    quick: bool,
    /// Scratch directory (random weights, dissection statistics, baseline job).
    #[arg(long, default_value = "out/bench")]
    work: PathBuf,
    /// Measure the painting server over loopback HTTP on the world generator (alone unless
    /// --model is given too).
    #[arg(long)]
    serve: bool,
}

impl Run for BenchArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let mut o = BenchOptions::new(self.quick);
        if !self.models.is_empty() {
            o.models = self.models;
        } else if self.serve {
            o.models.clear();
        }
        o.serve = self.serve;
        o.device = ctx.device;
        o.baseline = self.baseline;
        o.work = self.work;
        let report = run(&o)?;
        print!("{}", render_table(&report));
        if let Some(path) = &self.json {
            gandissect::fsutil::write_json(path, &report)?;
            println!("wrote {}", path.display());
        }
        Ok(())
    }
}
