//! `gandissect context`: where a concept can be inserted, as the added area by context label.

use super::painting::PaintModelArgs;
use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::edit::insertion_context::{
    ContextOptions, DEFAULT_MIN_COUNT, DEFAULT_QUANTILE, DEFAULT_SAMPLES, DEFAULT_UNITS,
    context_table, run_context, write_context,
};
use std::path::PathBuf;

#[derive(Args)]
pub struct ContextArgs {
    /// The concept inserted.
    #[arg(long)]
    concept: String,
    /// Its top units by IoU inserted.
    #[arg(long, default_value_t = DEFAULT_UNITS)]
    k: usize,
    /// Quantile of each unit's activation inserted.
    #[arg(long, default_value_t = DEFAULT_QUANTILE)]
    value_quantile: f64,
    /// Images (ids 0..N); each costs one forward of 64 copies at an 8×8 layer.
    #[arg(long, default_value_t = DEFAULT_SAMPLES)]
    samples: u64,
    /// Contexts with fewer cells are left out of the chart.
    #[arg(long, default_value_t = DEFAULT_MIN_COUNT)]
    min_count: u64,
    /// Output directory (context-CONCEPT.json and .png).
    #[arg(long, default_value = "out/context")]
    out: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    models: PaintModelArgs,
}

impl Run for ContextArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let session = self.models.session(self.value_quantile, ctx.device)?;
        let r = run_context(
            &session,
            &ContextOptions {
                concept: self.concept.clone(),
                k: self.k,
                samples: self.samples,
                min_count: self.min_count,
                progress: true,
            },
        )?;
        let (json, png) = write_context(&r, &self.out)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
            return Ok(());
        }
        print!("{}", context_table(&r));
        println!("results → {}, {}", json.display(), png.display());
        Ok(())
    }
}
