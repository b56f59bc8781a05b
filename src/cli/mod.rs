//! The command line: one file per command, each with its clap arguments, their conversion into
//! the library's options, and its printer. A new command is a new file here plus one line in
//! [`Command`] (or in a group such as `analyze`).

mod ablate;
mod analyze;
mod attack;
mod batch;
mod bench;
mod classify;
mod compare;
mod context;
mod demo;
mod dissect;
mod edit;
mod evaluate;
mod features;
mod generate;
mod merge;
mod models;
mod painting;
mod serve;
mod train;
mod visualize;
mod world;

use anyhow::Result;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser};
use std::path::PathBuf;
use tch::Device;

/// What every command is given besides its own arguments.
pub struct Context {
    /// Where tensors live (`--device`, parsed once).
    pub device: Device,
    /// The parsed command line, for commands that read the order of their arguments.
    pub matches: ArgMatches,
}

/// A command: its arguments run against the library.
pub trait Run {
    /// Runs the command and prints its summary.
    fn run(self, ctx: &Context) -> Result<()>;
}

/// Declares a subcommand enum whose variants each hold a command's arguments, and runs the one
/// given. One line per command.
macro_rules! commands {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident($args:ty),)+
    }) => {
        $(#[$meta])*
        #[derive(clap::Subcommand)]
        $vis enum $name {
            $($(#[$vmeta])* $variant($args),)+
        }

        impl $crate::cli::Run for $name {
            fn run(self, ctx: &$crate::cli::Context) -> anyhow::Result<()> {
                match self {
                    $(Self::$variant(args) => args.run(ctx),)+
                }
            }
        }
    };
}
pub(crate) use commands;

commands! {
    /// The commands.
    pub enum Command {
        /// Generate images from a generator for image ids or latent vectors.
        Generate(generate::GenerateArgs),
        /// A layer's activations for ids, latent vectors or pictures, as .npy or .safetensors.
        Features(features::FeaturesArgs),
        /// Run the demonstration on the default models.
        Demo(demo::DemoArgs),
        /// Render procedural world scenes with their label maps and a contact sheet.
        World(world::WorldArgs),
        /// Train a default model on the procedural world (resumes after a kill).
        Train(train::TrainArgs),
        /// Measure a default model against the world's ground truth.
        Evaluate(evaluate::EvaluateArgs),
        /// Where models are looked for, and which are installed.
        Models(models::ModelsArgs),
        /// Classifier analyses: per-class unit importance by ablation, dissection of conv layers.
        #[command(subcommand)]
        Classify(classify::ClassifyCommand),
        /// Targeted adversarial attack (PGD or Carlini-Wagner) and the trace of its unit changes.
        Attack(attack::AttackArgs),
        /// Analyses of units: class selectivity against importance.
        #[command(subcommand)]
        Analyze(analyze::AnalyzeCommand),
        /// Find which unit of a layer draws or detects which concept.
        Dissect(dissect::DissectArgs),
        /// Merge the statistics of dissection shards (pass 1, then pass 2 and the results).
        Merge(merge::MergeArgs),
        /// Compare the unit labels of two dissections of one layer (e.g. segmenter vs truth).
        Compare(compare::CompareArgs),
        /// Paint one scene: remove or add concepts in masked regions, with a context check.
        Edit(edit::EditArgs),
        /// Paint the scenes of a JSONL edit script (batched, resumable).
        Batch(batch::BatchArgs),
        /// Concept removal curve: zero the top-k units of a concept everywhere.
        Ablate(ablate::AblateArgs),
        /// Where a concept can be inserted: added area by context label.
        Context(context::ContextArgs),
        /// Measure edit latency, throughput and dissection speed (optionally against PyTorch).
        Bench(bench::BenchArgs),
        /// Serve the painting page: paint with concepts in the browser.
        Serve(serve::ServeArgs),
        /// Feature visualisation: filters, activation maximisation, saliency, embeddings.
        #[command(subcommand)]
        Visualize(visualize::VisualizeCommand),
    }
}

/// Options every command takes.
#[derive(Args)]
struct Global {
    /// Where tensors live: cpu, cuda, cuda:N or auto.
    #[arg(long, global = true, default_value = "cpu", value_parser = device_arg)]
    device: Device,
    /// The directory holding models/ and segmenters/ (default: $GANDISSECT_HOME, else the
    /// user's data directory when it holds models, else the source checkout).
    #[arg(long, global = true, value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// How ProGAN convolutions after an upsampling run: fused (four 2×2 phase convolutions on
    /// the input) or plain (upsample, then 3×3; for A/B runs). Both give the same images.
    #[arg(long, global = true, default_value = "fused")]
    upsample_conv: gandissect::nets::upconv::UpsampleConv,
}

fn device_arg(name: &str) -> Result<Device, String> {
    gandissect::device::parse_device(name).map_err(|e| e.to_string())
}

#[derive(Parser)]
#[command(
    name = "gandissect",
    version,
    about = "Find out what the units of a network do, and use them"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Parses the command line and runs the command; errors end the process with one line and
/// status 1 (2 for a command line that does not parse).
pub fn main() {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => exit_for(e),
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| exit_for(e));
    gandissect::nets::upconv::set_default(cli.global.upsample_conv);
    if let Some(dir) = cli.global.models_dir {
        gandissect::zoo::set_models_dir(dir);
    }
    let ctx = Context {
        device: cli.global.device,
        matches,
    };
    if let Err(e) = cli.command.run(&ctx) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Exits for a command line that does not parse: clap's own report, except that a value our
/// parsers refuse (a device, a shard, a pooling) is reported on one line.
fn exit_for(e: clap::Error) -> ! {
    if e.kind() == clap::error::ErrorKind::ValueValidation {
        let text = e.to_string();
        eprintln!("{}", text.lines().next().unwrap_or("error: invalid value"));
        std::process::exit(2);
    }
    e.exit()
}

/// Reads a comma-separated list such as `0,2,4` for `--flag`, naming the flag and an example
/// when an item is not a number.
pub fn parse_list<T: std::str::FromStr>(spec: &str, flag: &str, example: &str) -> Result<Vec<T>> {
    spec.split(',')
        .map(|item| item.trim().parse::<T>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| anyhow::anyhow!("cannot read {flag} '{spec}': {example}"))
}
