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
    /// Render procedural world scenes with their label maps and a contact sheet.
    World(WorldArgs),
    /// Train a default model on the procedural world (resumes after a kill).
    Train(TrainArgs),
    /// Measure a default model against the world's ground truth.
    Evaluate(EvaluateArgs),
}

#[derive(Args)]
struct WorldArgs {
    /// World seeds: A..B.
    #[arg(long, default_value = "0..64")]
    seeds: String,
    /// Output directory.
    #[arg(long, default_value = "out/world")]
    out: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DefaultModel {
    /// The segmenter.
    WorldSeg,
    /// The generator.
    WorldProggan,
    /// The scene classifier.
    WorldVgg16,
}

impl DefaultModel {
    fn name(self) -> &'static str {
        match self {
            Self::WorldSeg => "world-seg",
            Self::WorldProggan => "world-proggan",
            Self::WorldVgg16 => "world-vgg16",
        }
    }
    fn default_dir(self) -> PathBuf {
        let kind = if matches!(self, Self::WorldSeg) {
            "segmenters"
        } else {
            "models"
        };
        zoo::home().join(kind).join(self.name())
    }
}

#[derive(Args)]
struct TrainArgs {
    /// Which model.
    #[arg(value_enum)]
    model: DefaultModel,
    /// Optimisation steps (default: the shipped model's).
    #[arg(long)]
    steps: Option<i64>,
    /// Scenes per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Seed of the run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Model directory to write (default: the shipped location).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Save the resumable state every this many steps.
    #[arg(long, default_value_t = 100)]
    checkpoint_every: i64,
    /// Segmenter used to measure a generator.
    #[arg(long, default_value = gandissect::segment::DEFAULT_SEGMENTER)]
    segmenter: String,
    /// World seeds (0..N) the finished model is measured on.
    #[arg(long, default_value_t = gandissect::train::export::EVAL_SEEDS)]
    eval_samples: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct EvaluateArgs {
    /// Which model.
    #[arg(value_enum)]
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
    #[command(flatten)]
    common: Common,
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

fn parse_range(spec: &str) -> Result<std::ops::Range<u64>> {
    let ids = parse_ids(spec)?;
    let (a, b) = (ids[0], *ids.last().unwrap() + 1);
    if ids.len() as u64 != b - a {
        anyhow::bail!("world seeds must be one range A..B, not '{spec}'");
    }
    Ok(a..b)
}

fn run_world(a: WorldArgs) -> Result<()> {
    let summary = gandissect::world::write_samples(parse_range(&a.seeds)?, &a.out)?;
    println!(
        "rendered {} scenes → {} (contact_sheet.png, summary.json)",
        summary.scenes,
        a.out.display()
    );
    Ok(())
}

fn run_train(a: TrainArgs) -> Result<()> {
    use gandissect::train::{RunOptions, export};
    let device = parse_device(&a.common.device)?;
    let steps = a.steps.unwrap_or(match a.model {
        DefaultModel::WorldSeg => 3000,
        DefaultModel::WorldProggan => 6000,
        DefaultModel::WorldVgg16 => 600,
    });
    if steps <= 0 || a.batch == 0 || a.checkpoint_every <= 0 {
        anyhow::bail!("--steps, --batch and --checkpoint-every must be positive");
    }
    let opts = RunOptions {
        out: a.out.unwrap_or_else(|| a.model.default_dir()),
        steps,
        batch: a.batch,
        seed: a.seed,
        checkpoint_every: a.checkpoint_every,
        device,
        eval_samples: a.eval_samples,
    };
    let quality = match a.model {
        DefaultModel::WorldSeg => export::train_segmenter(&opts)?,
        DefaultModel::WorldProggan => export::train_generator(&opts, &a.segmenter)?,
        DefaultModel::WorldVgg16 => export::train_classifier(&opts)?,
    };
    println!("trained {} → {}", a.model.name(), opts.out.display());
    println!("{}", serde_json::to_string_pretty(&quality)?);
    Ok(())
}

fn run_evaluate(a: EvaluateArgs) -> Result<()> {
    use gandissect::train::quality;
    let device = parse_device(&a.common.device)?;
    let dir = a.dir.unwrap_or_else(|| a.model.default_dir());
    let spec = dir.to_string_lossy().into_owned();
    let q = match a.model {
        DefaultModel::WorldSeg => {
            let seg = gandissect::segment::load_segmenter(&spec, device)?;
            serde_json::to_value(quality::segmenter_quality(
                seg.as_ref(),
                0,
                a.samples,
                device,
            )?)?
        }
        DefaultModel::WorldProggan => {
            let (g, _) = zoo::load_generator(&spec, device)?;
            let seg = gandissect::segment::load_segmenter(&a.segmenter, device)?;
            serde_json::to_value(quality::generator_quality(
                &g,
                seg.as_ref(),
                a.samples,
                device,
            )?)?
        }
        DefaultModel::WorldVgg16 => {
            let (net, src) = zoo::load_classifier(&spec, device)?;
            let size = src.card.and_then(|c| c.input_size).unwrap_or(64);
            serde_json::to_value(quality::classifier_quality(
                &net, size, 0, a.samples, device,
            )?)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&q)?);
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(a) => run_generate(a),
        Command::Demo(a) => run_demo(a),
        Command::World(a) => run_world(a),
        Command::Train(a) => run_train(a),
        Command::Evaluate(a) => run_evaluate(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
