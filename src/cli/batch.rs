//! `gandissect batch`: paints the scenes of a JSONL edit script (batched, resumable).

use super::painting::{PaintModelArgs, StrokeArgs};
use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::edit::script::{BatchOptions, DEFAULT_BATCH, run_batch};
use std::path::PathBuf;

#[derive(Args)]
pub struct BatchArgs {
    /// The edit script: JSONL, one scene per line.
    script: PathBuf,
    /// Output directory.
    #[arg(long, default_value = "out/batch")]
    out: PathBuf,
    /// Scenes per forward pass.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: usize,
    #[command(flatten)]
    stroke: StrokeArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    models: PaintModelArgs,
}

impl Run for BatchArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let opts = BatchOptions {
            script: self.script.clone(),
            out: self.out.clone(),
            batch: self.batch,
            plan: self.stroke.plan_options()?,
            stretch: self.stroke.stretch,
            force: self.stroke.force,
            progress: true,
        };
        let session = self
            .models
            .session(self.stroke.value_quantile, ctx.device)?;
        let s = run_batch(&session, &opts)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&s)?);
            return Ok(());
        }
        for w in &s.warnings {
            eprintln!("warning: line {}: {}", w.line, w.error);
        }
        for f in &s.failed {
            eprintln!("line {}: {}", f.line, f.error);
        }
        println!(
            "{} scenes: {} painted, {} already done, {} failed ({:.1} s)",
            s.scenes,
            s.painted,
            s.already_done,
            s.failed.len(),
            s.seconds
        );
        println!(
            "removals: {} (mean {} removed in the region); insertions: {} accepted, {} rejected; {} empty strokes",
            s.removals,
            s.mean_removed_fraction
                .map_or("n/a".to_string(), |f| format!("{:.0}%", 100.0 * f)),
            s.insertions_accepted,
            s.insertions_rejected,
            s.empty_strokes
        );
        println!("manifest → {}", self.out.join("manifest.jsonl").display());
        if !s.failed.is_empty() {
            anyhow::bail!("{} script lines failed (listed above)", s.failed.len());
        }
        Ok(())
    }
}
