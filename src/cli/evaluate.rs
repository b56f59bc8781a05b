//! `gandissect evaluate`: measures a default model against the world's ground truth.

use super::train::default_model;
use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::train::DefaultModel;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvaluateArgs {
    /// Which model: world-seg, world-vgg16 or world-proggan.
    #[arg(value_parser = default_model, value_name = "MODEL")]
    model: DefaultModel,
    /// Its directory (default: the shipped location).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Segmenter used to measure a generator.
    #[arg(long, default_value = gandissect::segment::DEFAULT_SEGMENTER)]
    segmenter: String,
    /// Images (or scenes) to measure on.
    #[arg(long, default_value_t = gandissect::train::export::EVAL_SEEDS)]
    samples: u64,
}

impl Run for EvaluateArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let dir = self.dir.unwrap_or_else(|| self.model.default_dir());
        let q = gandissect::train::evaluate(
            self.model,
            &dir,
            &self.segmenter,
            self.samples,
            ctx.device,
        )?;
        println!("{}", serde_json::to_string_pretty(&q)?);
        Ok(())
    }
}
