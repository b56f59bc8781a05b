//! `gandissect models`: where models are looked for, which directory is in use, and the models
//! installed there.

use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::zoo;

#[derive(Args)]
pub struct ModelsArgs {}

impl Run for ModelsArgs {
    fn run(self, _ctx: &Context) -> Result<()> {
        let home = zoo::home();
        println!("models are looked for in (first that applies):");
        for place in zoo::search_path() {
            let mark = if place.dir == home { "→" } else { " " };
            println!("  {mark} {} ({})", place.dir.display(), place.from);
        }
        for kind in ["models", "segmenters"] {
            let names = zoo::installed(kind);
            println!(
                "{kind} in {}: {}",
                home.join(kind).display(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
        }
        Ok(())
    }
}
