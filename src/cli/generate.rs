//! `gandissect generate`: images from a generator for image ids or latent vectors.

use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::device::device_name;
use gandissect::generate::{Latents, generate_with, read_z_file};
use gandissect::zoo;
use gandissect::zsample::{DEFAULT_STREAM_SEED, parse_ids};
use std::path::PathBuf;

#[derive(Args)]
pub struct GenerateArgs {
    /// A shipped model name, a model directory, a checkpoint (.pth, .safetensors), or random[:SEED].
    #[arg(long, default_value = zoo::DEFAULT_GENERATOR)]
    model: String,
    /// Image ids: N, A..B, A..=B, or a comma-separated list (rows of the sample stream).
    #[arg(long, default_value = "0..16", conflicts_with = "z")]
    seeds: String,
    /// Latent vectors from a file (.npy or .safetensors, [N, z]) instead of ids.
    #[arg(long)]
    z: Option<PathBuf>,
    /// Seed of the sample stream the ids index.
    #[arg(long, default_value_t = DEFAULT_STREAM_SEED)]
    stream: u32,
    /// Output directory.
    #[arg(long, default_value = "out/generate")]
    out: PathBuf,
    /// Also write grid.png with this many columns.
    #[arg(long)]
    grid: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Also write the outputs as floats, exactly as the generator gives them: FILE.npy
    /// ([N, 3, R, R]) or FILE.safetensors (images, and ids when ids were given).
    #[arg(long, value_name = "FILE")]
    raw: Option<PathBuf>,
}

impl Run for GenerateArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let (g, source) = zoo::load_generator(&self.model, ctx.device)?;
        let latents = match &self.z {
            Some(path) => Latents::Vectors(read_z_file(path, g.z_dim())?),
            None => Latents::Ids {
                stream: self.stream,
                ids: parse_ids(&self.seeds)?,
            },
        };
        let written = generate_with(
            &g,
            &latents,
            &self.out,
            self.batch,
            self.grid,
            self.raw.as_deref(),
        )?;
        println!(
            "generated {} images of {r}×{r} with {} on {} → {}",
            latents.len(),
            source.name,
            device_name(ctx.device),
            self.out.display(),
            r = g.resolution()
        );
        if self.grid.is_some()
            && let Some(grid) = written.iter().find(|p| p.ends_with("grid.png"))
        {
            println!("grid: {}", grid.display());
        }
        if let Some(raw) = &self.raw {
            println!("raw outputs (float32): {}", raw.display());
        }
        Ok(())
    }
}
