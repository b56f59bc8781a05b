//! `gandissect world`: procedural world scenes with their label maps and a contact sheet.

use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::zsample::parse_ids;
use std::path::PathBuf;

#[derive(Args)]
pub struct WorldArgs {
    /// World seeds: A..B.
    #[arg(long, default_value = "0..64")]
    seeds: String,
    /// Output directory.
    #[arg(long, default_value = "out/world")]
    out: PathBuf,
}

/// One range `A..B` of ids.
fn parse_range(spec: &str) -> Result<std::ops::Range<u64>> {
    let ids = parse_ids(spec)?;
    let (Some(&a), Some(&last)) = (ids.first(), ids.last()) else {
        anyhow::bail!("world seeds must be one range A..B, not '{spec}'");
    };
    let b = last + 1;
    if ids.len() as u64 != b - a {
        anyhow::bail!("world seeds must be one range A..B, not '{spec}'");
    }
    Ok(a..b)
}

impl Run for WorldArgs {
    fn run(self, _ctx: &Context) -> Result<()> {
        let summary = gandissect::world::write_samples(parse_range(&self.seeds)?, &self.out)?;
        println!(
            "rendered {} scenes → {} (contact_sheet.png, summary.json)",
            summary.scenes,
            self.out.display()
        );
        Ok(())
    }
}
