//! `gandissect merge`: merges the statistics of dissection shards.

use super::dissect::print_outcome;
use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::dissect::{DEFAULT_MINIOU, MergeOptions, merge};
use std::path::PathBuf;

#[derive(Args)]
pub struct MergeArgs {
    /// Directories holding shard statistics (DIR/stats/).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where merged statistics and results go (default: the first directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// IoU above which a unit is interpretable.
    #[arg(long, default_value_t = DEFAULT_MINIOU)]
    miniou: f64,
}

impl Run for MergeArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let opts = MergeOptions {
            out: self.out,
            miniou: self.miniou,
            device: ctx.device,
            ..MergeOptions::new(self.dirs)
        };
        let out = opts.out_dir().map(PathBuf::from).unwrap_or_default();
        print_outcome(merge(&opts)?, &out);
        Ok(())
    }
}
