//! `gandissect compare`: the unit labels of two dissections of one layer, side by side.

use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::dissect::{DissectResult, compare::label_agreement};
use std::path::PathBuf;

#[derive(Args)]
pub struct CompareArgs {
    /// The first dissection directory.
    first: PathBuf,
    /// The second dissection directory.
    second: PathBuf,
    /// The layer to compare (default: the first layer of the first dissection).
    #[arg(long)]
    layer: Option<String>,
    /// Print JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

impl Run for CompareArgs {
    fn run(self, _ctx: &Context) -> Result<()> {
        let first = DissectResult::load(&self.first)?;
        let second = DissectResult::load(&self.second)?;
        let layer = match self.layer {
            Some(l) => l,
            None => first
                .layers
                .first()
                .map(|l| l.layer.clone())
                .ok_or_else(|| anyhow::anyhow!("{} has no layers", self.first.display()))?,
        };
        let ag = label_agreement(&first, &second, &layer)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&ag)?);
            return Ok(());
        }
        println!(
            "{}: {} of {} units have the same label; interpretable {} / {}, in both {}, of which {} with the same label",
            ag.layer,
            ag.same_label,
            ag.units,
            ag.interpretable.0,
            ag.interpretable.1,
            ag.interpretable_in_both,
            ag.interpretable_same_label
        );
        for (u, x, y) in ag.differing.iter().take(20) {
            println!("  unit {u}: {x} vs {y}");
        }
        Ok(())
    }
}
