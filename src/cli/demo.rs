//! `gandissect demo`: the demonstration on the default models.

use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct DemoArgs {
    /// Output directory.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// Images the demo dissection runs over.
    #[arg(long, default_value_t = gandissect::demo::DEFAULT_SAMPLES)]
    samples: u64,
}

impl Run for DemoArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        println!(
            "{}",
            gandissect::demo::run(&self.out, self.samples, ctx.device)?
        );
        Ok(())
    }
}
