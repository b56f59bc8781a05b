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
    /// Classifier analyses: per-class unit importance by ablation.
    #[command(subcommand)]
    Classify(ClassifyCommand),
    /// Targeted adversarial attack (PGD or Carlini-Wagner) and the trace of its unit changes.
    Attack(AttackArgs),
    /// Analyses of units: class selectivity against importance.
    #[command(subcommand)]
    Analyze(AnalyzeCommand),
}

#[derive(Subcommand)]
enum ClassifyCommand {
    /// Rank a layer's units per class by single-unit ablation; remove/keep-top-k curves.
    Importance(ImportanceArgs),
}

#[derive(Subcommand)]
enum AnalyzeCommand {
    /// Class selectivity index per unit, and its rank correlation with importance (and IoU).
    Selectivity(SelectivityArgs),
}

#[derive(Args)]
struct ImportanceArgs {
    /// A shipped classifier name, a model directory or a VGG-16 checkpoint.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// The conv layer whose units are ablated.
    #[arg(long, default_value = "conv5_3")]
    layer: String,
    /// Training-split scenes the units are ranked on (world seeds from 100000).
    #[arg(long, default_value_t = 3000)]
    samples: u64,
    /// Held-out scenes the curves are measured on (world seeds from 200000).
    #[arg(long, default_value_t = 3000)]
    heldout: u64,
    /// k values of the remove/keep curves (comma-separated; those below the unit count are used).
    #[arg(long, value_delimiter = ',', default_values_t = gandissect::classify::importance::DEFAULT_KS)]
    ks: Vec<usize>,
    /// Images per prefix forward.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Ablated copies per suffix forward.
    #[arg(long, default_value_t = 32)]
    copies: usize,
    /// Output directory.
    #[arg(long, default_value = "out/importance")]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AttackMethod {
    /// Targeted L-infinity projected gradient descent.
    Pgd,
    /// Targeted Carlini-Wagner L2.
    Cw,
}

#[derive(Args)]
struct AttackArgs {
    /// A shipped classifier name, a model directory or a VGG-16 checkpoint.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// Target class name.
    #[arg(long)]
    target: String,
    /// The attack.
    #[arg(long, value_enum, default_value = "pgd")]
    method: AttackMethod,
    /// Images to attack (held-out world scenes neither of nor predicted as the target).
    #[arg(long, default_value_t = 64)]
    samples: usize,
    /// PGD: L-infinity radius on the [0, 1] pixel scale.
    #[arg(long, default_value_t = 8.0 / 255.0)]
    epsilon: f64,
    /// PGD: step size on the [0, 1] pixel scale.
    #[arg(long, default_value_t = 2.0 / 255.0)]
    step: f64,
    /// PGD: steps (default 40); CW: Adam iterations per search step (default 60).
    #[arg(long)]
    iterations: Option<usize>,
    /// CW: binary-search steps over the constant.
    #[arg(long, default_value_t = 4)]
    search_steps: usize,
    /// CW: starting constant.
    #[arg(long, default_value_t = 1.0)]
    initial_const: f64,
    /// CW: Adam learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// CW: required logit margin of the target.
    #[arg(long, default_value_t = 0.0)]
    confidence: f64,
    /// Layer whose units are traced (post-ReLU).
    #[arg(long, default_value = "relu5_3")]
    layer: String,
    /// importance.json from `classify importance` ranking the traced layer's units; without it
    /// the ranking is measured here on the training split.
    #[arg(long)]
    importance: Option<PathBuf>,
    /// Training-split scenes for the ranking when no --importance is given.
    #[arg(long, default_value_t = 1200)]
    importance_samples: u64,
    /// Images per attack batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Output directory.
    #[arg(long, default_value = "out/attack")]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct SelectivityArgs {
    /// A shipped classifier name, a model directory or a VGG-16 checkpoint.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// The conv layer (activations are taken post-ReLU).
    #[arg(long, default_value = "conv5_3")]
    layer: String,
    /// Held-out scenes the class means are measured on (world seeds from 200000).
    #[arg(long, default_value_t = 3000)]
    samples: u64,
    /// importance.json from `classify importance` for the same layer; without it the
    /// single-unit sweep is run here on the training split.
    #[arg(long)]
    importance: Option<PathBuf>,
    /// Training-split scenes for the sweep when no --importance is given.
    #[arg(long, default_value_t = 3000)]
    importance_samples: u64,
    /// Per-unit IoU: a dissect.json of this layer, a JSON array, or {"units": [{"unit", "iou"}]}.
    #[arg(long)]
    iou: Option<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "out/selectivity")]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
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
        DefaultModel::WorldVgg16 => 1500,
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

fn load_or_rank(
    clf: &gandissect::classify::Classifier,
    path: Option<&PathBuf>,
    layer: &str,
    samples: u64,
    device: tch::Device,
) -> Result<gandissect::classify::ImportanceReport> {
    use gandissect::classify::{ImportanceOptions, importance, read_importance};
    match path {
        Some(p) => read_importance(p),
        None => {
            eprintln!("ranking the units of {layer} on {samples} training-split scenes");
            let mut opts = ImportanceOptions::new(layer, samples, 1, device);
            opts.ks.clear();
            opts.progress = true;
            importance(clf, &opts)
        }
    }
}

fn run_importance(a: ImportanceArgs) -> Result<()> {
    use gandissect::classify::{Classifier, ImportanceOptions, importance, write_importance};
    let device = parse_device(&a.common.device)?;
    let clf = Classifier::load(&a.model, device)?;
    let mut opts = ImportanceOptions::new(&a.layer, a.samples, a.heldout, device);
    opts.ks = a.ks;
    opts.sweep.batch = a.batch;
    opts.sweep.copies = a.copies;
    opts.progress = true;
    let report = importance(&clf, &opts)?;
    write_importance(&report, &a.out)?;
    for n in &report.notes {
        println!("note: {n}");
    }
    println!(
        "{} {}: {} units ablated one at a time on {} scenes in {:.1} s (prefix {:.1} s, stacked suffixes {:.1} s); curves on {} scenes in {:.1} s",
        report.model,
        report.layer,
        report.units,
        report.sweep.images,
        report.sweep.seconds,
        report.sweep.timing.prefix,
        report.sweep.timing.suffix,
        a.heldout,
        report.curves_seconds
    );
    for line in report.summary_lines() {
        println!("{line}");
    }
    println!("→ {}", a.out.display());
    Ok(())
}

fn run_attack(a: AttackArgs) -> Result<()> {
    use gandissect::attack::cw::CwOptions;
    use gandissect::attack::pgd::PgdOptions;
    use gandissect::attack::{AttackOptions, Method, attack, write_attack};
    use gandissect::classify::Classifier;
    let device = parse_device(&a.common.device)?;
    let clf = Classifier::load(&a.model, device)?;
    clf.class_index(&a.target)?;
    let method = match a.method {
        AttackMethod::Pgd => Method::Pgd(PgdOptions {
            epsilon: a.epsilon,
            step: a.step,
            iterations: a.iterations.unwrap_or(40),
        }),
        AttackMethod::Cw => Method::Cw(CwOptions {
            search_steps: a.search_steps,
            iterations: a.iterations.unwrap_or(60),
            lr: a.lr,
            initial_const: a.initial_const,
            confidence: a.confidence,
        }),
    };
    let ranking_layer = if a.layer.starts_with("relu") {
        a.layer.replacen("relu", "conv", 1)
    } else {
        a.layer.clone()
    };
    let imp = load_or_rank(
        &clf,
        a.importance.as_ref(),
        &ranking_layer,
        a.importance_samples,
        device,
    )?;
    let mut opts = AttackOptions::new(&a.target, method, a.samples, device);
    opts.layer = a.layer;
    opts.batch = a.batch;
    let (report, images) = attack(&clf, &opts, &imp)?;
    write_attack(&clf, &report, &images, &a.out)?;
    for n in &report.notes {
        println!("note: {n}");
    }
    let norm = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    println!(
        "{} towards {}: {}/{} succeeded ({:.1}%) in {:.1} s; mean L2 {}, mean Linf {} (on [0,1] pixels)",
        a.method.name(),
        report.target,
        report.successes,
        report.images,
        100.0 * report.success_rate,
        report.seconds,
        norm(report.mean_l2),
        norm(report.mean_linf)
    );
    if let Some(t) = &report.trace {
        println!(
            "|delta peak| at {} over {} images (mean [99% CI]): target top-4 {:.3} [{:.3}, {:.3}], source top-4 {:.3} [{:.3}, {:.3}], others {:.3} [{:.3}, {:.3}]",
            t.layer,
            t.images,
            t.groups.target.mean,
            t.groups.target.lo,
            t.groups.target.hi,
            t.groups.source.mean,
            t.groups.source.lo,
            t.groups.source.hi,
            t.groups.rest.mean,
            t.groups.rest.lo,
            t.groups.rest.hi
        );
    }
    println!("→ {}", a.out.display());
    Ok(())
}

impl AttackMethod {
    fn name(self) -> &'static str {
        match self {
            Self::Pgd => "PGD",
            Self::Cw => "CW-L2",
        }
    }
}

fn run_selectivity(a: SelectivityArgs) -> Result<()> {
    use gandissect::analysis::selectivity::{
        read_unit_iou, selectivity_analysis, write_selectivity,
    };
    use gandissect::classify::Classifier;
    use gandissect::classify::importance::HELDOUT_SPLIT_START;
    use gandissect::classify::sweep::world_batches;
    let device = parse_device(&a.common.device)?;
    let clf = Classifier::load(&a.model, device)?;
    let imp = load_or_rank(
        &clf,
        a.importance.as_ref(),
        &a.layer,
        a.importance_samples,
        device,
    )?;
    let iou = match &a.iou {
        Some(p) => {
            let layer = clf.conv_cut(&a.layer)?.layer_name().to_string();
            Some(read_unit_iou(p, imp.units as usize, &layer)?)
        }
        None => None,
    };
    let seeds = HELDOUT_SPLIT_START..HELDOUT_SPLIT_START + a.samples;
    let label = format!("{}..{}", seeds.start, seeds.end);
    let report = selectivity_analysis(
        &clf,
        &a.layer,
        &label,
        world_batches(seeds, 50, device),
        &imp,
        iou,
    )?;
    write_selectivity(&report, &a.out)?;
    let rho = |r: Option<f64>| r.map_or("n/a (constant)".to_string(), |r| format!("{r:.3}"));
    let mean_sel = report.selectivity.iter().sum::<f64>() / report.selectivity.len().max(1) as f64;
    println!(
        "{} {}: mean selectivity {:.3}; Spearman(selectivity, importance) = {}",
        report.model,
        report.layer,
        mean_sel,
        rho(report.spearman_selectivity_importance)
    );
    if report.iou.is_some() {
        println!(
            "Spearman(IoU, importance) = {}; Spearman(IoU, selectivity) = {}",
            rho(report.spearman_iou_importance),
            rho(report.spearman_iou_selectivity)
        );
    }
    println!("→ {}", a.out.display());
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
        Command::Classify(ClassifyCommand::Importance(a)) => run_importance(a),
        Command::Attack(a) => run_attack(a),
        Command::Analyze(AnalyzeCommand::Selectivity(a)) => run_selectivity(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
