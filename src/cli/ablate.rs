//! `gandissect ablate`: the concept removal curve, zeroing the top-k units of a concept
//! everywhere.

use super::painting::{PaintModelArgs, RankArgs};
use super::{Context, Run, parse_list};

/// Numbers of units, written `0,2,4`.
#[derive(Clone)]
struct UnitCounts(Vec<usize>);

impl std::str::FromStr for UnitCounts {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(Self(parse_list(
            s,
            "--k",
            "give unit counts like 0,2,4,8,20,30",
        )?))
    }
}

impl std::fmt::Display for UnitCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items: Vec<String> = self.0.iter().map(usize::to_string).collect();
        f.write_str(&items.join(","))
    }
}
use anyhow::Result;
use clap::Args;
use gandissect::edit::ablation::{
    AblationOptions, DEFAULT_BATCH, DEFAULT_KS, DEFAULT_SAMPLES, run_ablation, write_ablation,
};
use gandissect::edit::plan::DEFAULT_VALUE_QUANTILE;
use std::path::PathBuf;

#[derive(Args)]
pub struct AblateArgs {
    /// The concept whose top units are zeroed.
    #[arg(long)]
    concept: String,
    /// Numbers of top units to zero, comma-separated.
    #[arg(long, default_value_t = UnitCounts(DEFAULT_KS.to_vec()))]
    k: UnitCounts,
    /// Images (ids 0..N).
    #[arg(long, default_value_t = DEFAULT_SAMPLES)]
    samples: u64,
    /// Images per forward pass.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: usize,
    #[command(flatten)]
    rank: RankArgs,
    /// Output directory (ablate-CONCEPT.json and .png).
    #[arg(long, default_value = "out/ablate")]
    out: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    models: PaintModelArgs,
}

impl Run for AblateArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let opts = AblationOptions {
            ks: self.k.0,
            samples: self.samples,
            batch: self.batch,
            ranking: self.rank.ranking(&self.concept),
            progress: true,
            ..AblationOptions::new(&self.concept)
        };
        // the cheap checks before the models load
        opts.validate()?;
        let session = self.models.session(DEFAULT_VALUE_QUANTILE, ctx.device)?;
        let r = run_ablation(&session, &opts)?;
        let (json, png) = write_ablation(&r, &self.out)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
            return Ok(());
        }
        println!(
            "{} at {} of {}: {:.2}% of the image over {} images",
            r.concept,
            r.layer,
            r.model,
            100.0 * r.baseline_fraction,
            r.samples
        );
        if let Some(e) = &r.effects {
            println!(
                "units chosen by their effect on {}, round by round, on images {}..{}",
                r.concept,
                e.first_id,
                e.first_id + e.samples
            );
        }
        println!("{:>4} {:>10} {:>10}", "k", "removed", "99% CI");
        for p in &r.points {
            println!(
                "{:>4} {:>9.1}% {:>9.1}%",
                p.k,
                100.0 * p.removed,
                100.0 * p.ci99
            );
        }
        println!("results → {}, {}", json.display(), png.display());
        Ok(())
    }
}
