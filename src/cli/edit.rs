//! `gandissect edit`: paints one scene, removing or adding concepts in masked regions, with a
//! context check.

use super::painting::{PaintModelArgs, StrokeArgs};
use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::edit::pairing::pair_strokes;
use gandissect::edit::scene::{ScenePaths, write_scene};
use gandissect::edit::{Action, ScenePlan};
use std::path::PathBuf;

#[derive(Args)]
pub struct EditArgs {
    /// Image id (row of the latent stream).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Remove a concept in the region of the --mask that follows (repeatable).
    #[arg(long)]
    remove: Vec<String>,
    /// Add a concept in the region of the --mask that follows (repeatable).
    #[arg(long)]
    add: Vec<String>,
    /// Mask image of the preceding --remove/--add (alpha, or luminance; any size).
    #[arg(long)]
    mask: Vec<PathBuf>,
    #[command(flatten)]
    stroke: StrokeArgs,
    /// The edited image; the original, a side-by-side and a JSON record go beside it.
    #[arg(long, default_value = "out/edit/edited.png")]
    out: PathBuf,
    /// Print the JSON record instead of the summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    models: PaintModelArgs,
}

impl Run for EditArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        // --remove, --add and --mask pair up by their order on the command line
        let matches = ctx.matches.subcommand_matches("edit");
        let positions = |id: &str| -> Vec<usize> {
            matches
                .and_then(|m| m.indices_of(id))
                .map(|i| i.collect())
                .unwrap_or_default()
        };
        let mut edits: Vec<(usize, Action, String)> = Vec::new();
        for (pos, c) in positions("remove").into_iter().zip(&self.remove) {
            edits.push((pos, Action::Remove, c.clone()));
        }
        for (pos, c) in positions("add").into_iter().zip(&self.add) {
            edits.push((pos, Action::Add, c.clone()));
        }
        let masks: Vec<(usize, PathBuf)> = positions("mask")
            .into_iter()
            .zip(self.mask.clone())
            .collect();
        let strokes = pair_strokes(edits, masks)?;
        let paths = ScenePaths::for_image(&self.out)?;
        let plan_opts = self.stroke.plan_options()?;
        let session = self
            .models
            .session(self.stroke.value_quantile, ctx.device)?;
        let mut planned = Vec::new();
        for s in &strokes {
            let p = session.plan_from_file(
                s.action,
                &s.concept,
                &s.mask,
                self.stroke.stretch,
                &plan_opts,
            )?;
            if p.empty {
                eprintln!(
                    "warning: mask {} is empty; --{} {} does nothing",
                    s.mask.display(),
                    s.action,
                    s.concept
                );
            }
            planned.push(p);
        }
        let scene = ScenePlan {
            seed: self.seed,
            strokes: planned,
            force: self.stroke.force,
        };
        let painter = session.painter()?;
        let outcome = painter.paint(&[&scene])?.remove(0);
        let record = write_scene(
            &outcome,
            &scene.strokes,
            &paths,
            &session.model,
            painter.layer(),
        )?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&record)?);
            return Ok(());
        }
        println!(
            "seed {} of {} at {}",
            self.seed,
            session.model,
            painter.layer()
        );
        for s in &outcome.strokes {
            let units: Vec<String> = s.plan.units.iter().map(usize::to_string).collect();
            println!("  {} [units {}]", s.summary, units.join(","));
        }
        println!(
            "wrote {} ({}), {}, {}, {}",
            paths.image.display(),
            if outcome.changed() {
                "edited"
            } else {
                "unchanged"
            },
            paths.original.display(),
            paths.compare.display(),
            paths.record.display()
        );
        Ok(())
    }
}
