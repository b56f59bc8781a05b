//! The `gandissect` command line: parse, call the library, print.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use gandissect::device::{device_name, parse_device};
use gandissect::generate::{Latents, generate, read_z_file};
use gandissect::zoo;
use gandissect::zsample::{DEFAULT_STREAM_SEED, parse_ids};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "gandissect",
    version,
    about = "Find out what the units of a network do, and use them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Common {
    /// Where tensors live: cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu", global = true)]
    device: String,
}

#[derive(Subcommand)]
enum Command {
    /// Generate images from a generator for image ids or latent vectors.
    Generate(GenerateArgs),
    /// Run the demonstration on the default models.
    Demo(DemoArgs),
}

#[derive(Args)]
struct GenerateArgs {
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
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct DemoArgs {
    /// Output directory.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

fn run_generate(a: GenerateArgs) -> Result<()> {
    let device = parse_device(&a.common.device)?;
    let (g, source) = zoo::load_generator(&a.model, device)?;
    let latents = match &a.z {
        Some(path) => Latents::Vectors(read_z_file(path, g.z_dim())?),
        None => Latents::Ids {
            stream: a.stream,
            ids: parse_ids(&a.seeds)?,
        },
    };
    let written = generate(&g, &latents, &a.out, a.batch, a.grid)?;
    println!(
        "generated {} images of {r}×{r} with {} on {} → {}",
        latents.len(),
        source.name,
        device_name(device),
        a.out.display(),
        r = g.resolution()
    );
    if a.grid.is_some() {
        println!("grid: {}", written.last().unwrap().display());
    }
    Ok(())
}

fn run_demo(a: DemoArgs) -> Result<()> {
    let device = parse_device(&a.common.device)?;
    let (g, source) = zoo::load_generator(zoo::DEFAULT_GENERATOR, device)?;
    let latents = Latents::Ids {
        stream: DEFAULT_STREAM_SEED,
        ids: (0..32).collect(),
    };
    let dir = a.out.join("generated");
    let written = generate(&g, &latents, &dir, 8, Some(8))?;
    println!(
        "demo: 32 scenes from {} → {}",
        source.name,
        written.last().unwrap().display()
    );
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(a) => run_generate(a),
        Command::Demo(a) => run_demo(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
