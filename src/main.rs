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
    /// How ProGAN convolutions after an upsampling run: fused (four 2×2 phase convolutions on
    /// the input) or plain (upsample, then 3×3; for A/B runs). Both give the same images.
    #[arg(long, global = true, default_value = "fused")]
    upsample_conv: gandissect::nets::upconv::UpsampleConv,
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
    /// Find which unit of a layer draws or detects which concept.
    Dissect(DissectArgs),
    /// Merge the statistics of dissection shards (pass 1, then pass 2 and the results).
    Merge(MergeArgs),
    /// Compare the unit labels of two dissections of one layer (e.g. segmenter vs truth).
    Compare(CompareArgs),
    /// Paint one scene: remove or add concepts in masked regions, with a context check.
    Edit(EditArgs),
    /// Paint the scenes of a JSONL edit script (batched, resumable).
    Batch(BatchArgs),
    /// Concept removal curve: zero the top-k units of a concept everywhere.
    Ablate(AblateArgs),
    /// Where a concept can be inserted: added area by context label.
    Context(ContextArgs),
    /// Measure edit latency, throughput and dissection speed (optionally against PyTorch).
    Bench(BenchArgs),
}

#[derive(Subcommand)]
enum ClassifyCommand {
    /// Rank a layer's units per class by single-unit ablation; remove/keep-top-k curves.
    Importance(ImportanceArgs),
    /// Dissect conv layers (one, several or all) with a per-layer summary by concept category.
    Dissect(ClassifyDissectArgs),
}

#[derive(Args)]
struct ClassifyDissectArgs {
    /// A shipped classifier name, a model directory or a VGG-16 checkpoint.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// Conv layers (comma-separated, e.g. conv5_3 or conv4_3,conv5_3), or all for conv1_1…conv5_3.
    #[arg(long, value_delimiter = ',', default_value = "conv5_3")]
    layer: Vec<String>,
    /// Segmenter (name, directory or TorchScript file), or truth for world scenes.
    #[arg(long, default_value = gandissect::segment::DEFAULT_SEGMENTER)]
    segmenter: String,
    /// Images dissected over (default: 1000 world scenes, or every picture of --images).
    #[arg(long)]
    samples: Option<u64>,
    /// A folder of PNG/JPEG pictures instead of world scenes (centre-cropped, resized to the
    /// classifier's input and converted to RGB, with a note).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Class labels of the --images pictures: a CSV of filename,class lines.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Images per batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Quantile level of the unit thresholds.
    #[arg(long, default_value_t = 0.99)]
    quantile: f64,
    /// IoU above which a unit counts as interpretable.
    #[arg(long, default_value_t = 0.04)]
    miniou: f64,
    /// Output directory.
    #[arg(long, default_value = "out/classify-dissect")]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
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

/// Models, layer and dissection shared by the painting commands.
#[derive(Args)]
struct PaintModelArgs {
    /// The generator: shipped name, model directory, checkpoint, or random[:SEED].
    #[arg(long, default_value = zoo::DEFAULT_GENERATOR)]
    model: String,
    /// Segmenter (name, directory or TorchScript file) for unit rankings and the effect.
    #[arg(long, default_value = gandissect::segment::DEFAULT_SEGMENTER)]
    segmenter: String,
    /// The layer edited.
    #[arg(long, default_value = "layer4")]
    layer: String,
    /// A dissection directory of the model at the layer (default: one run once and cached).
    #[arg(long)]
    dissection: Option<PathBuf>,
    /// Where dissections run on the fly are cached.
    #[arg(long, default_value = gandissect::edit::units_source::DEFAULT_CACHE_DIR)]
    dissect_cache: PathBuf,
    /// Images a dissection run on the fly covers.
    #[arg(long, default_value_t = gandissect::edit::units_source::DEFAULT_CACHE_SAMPLES)]
    dissect_samples: u64,
    #[command(flatten)]
    common: Common,
}

impl PaintModelArgs {
    fn session(&self, value_quantile: f64) -> Result<gandissect::edit::Session> {
        use gandissect::edit::{DissectionSource, Session, SessionOptions};
        let mut o = SessionOptions::new(&self.model);
        o.segmenter = self.segmenter.clone();
        o.layer = self.layer.clone();
        o.value_quantile = value_quantile;
        o.device = parse_device(&self.common.device)?;
        o.dissection = DissectionSource {
            dir: self.dissection.clone(),
            cache_root: self.dissect_cache.clone(),
            samples: self.dissect_samples,
        };
        Session::open(&o)
    }
}

/// How strokes are planned, shared by `edit` and `batch`.
#[derive(Args)]
struct StrokeArgs {
    /// Units to set instead of the concept's top k, e.g. 12,55,301.
    #[arg(long)]
    units: Option<String>,
    /// Units per stroke: the concept's top k by IoU.
    #[arg(long, default_value_t = gandissect::edit::plan::DEFAULT_K)]
    k: usize,
    /// Quantile of each unit's activation that insertion sets it to.
    #[arg(long, default_value_t = gandissect::edit::plan::DEFAULT_VALUE_QUANTILE)]
    value_quantile: f64,
    /// How a mask is pooled to the layer's grid: max or mean.
    #[arg(long, default_value = "max")]
    pooling: gandissect::cut::Pooling,
    /// Resize masks of another aspect ratio instead of refusing them.
    #[arg(long)]
    stretch: bool,
    /// Keep insertions that fail the context check.
    #[arg(long)]
    force: bool,
}

impl StrokeArgs {
    fn plan_options(&self) -> Result<gandissect::edit::PlanOptions> {
        let units = match &self.units {
            None => None,
            Some(spec) => Some(
                spec.split(',')
                    .map(|u| u.trim().parse::<usize>())
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "cannot read --units '{spec}': give unit numbers separated by commas, e.g. 12,55,301"
                        )
                    })?,
            ),
        };
        Ok(gandissect::edit::PlanOptions {
            k: self.k,
            units,
            pooling: self.pooling,
        })
    }
}

#[derive(Args)]
struct EditArgs {
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
    /// How removals choose their units when none are named: by IoU, or by their effect on the
    /// concept (measured once over other images and saved beside the cached dissections).
    /// Insertions always use the IoU ranking.
    #[arg(long, value_enum, default_value = "iou")]
    rank: RankArg,
    /// Images the effects are measured on (`--rank effect`; ids from 100000).
    #[arg(long, default_value_t = gandissect::edit::unit_effect::DEFAULT_EFFECT_SAMPLES)]
    rank_samples: u64,
    /// Print the JSON record instead of the summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    models: PaintModelArgs,
}

#[derive(Args)]
struct BatchArgs {
    /// The edit script: JSONL, one scene per line.
    script: PathBuf,
    /// Output directory.
    #[arg(long, default_value = "out/batch")]
    out: PathBuf,
    /// Scenes per forward pass.
    #[arg(long, default_value_t = gandissect::edit::script::DEFAULT_BATCH)]
    batch: usize,
    #[command(flatten)]
    stroke: StrokeArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    models: PaintModelArgs,
}

#[derive(Args)]
struct AblateArgs {
    /// The concept whose top units are zeroed.
    #[arg(long)]
    concept: String,
    /// Numbers of top units to zero, comma-separated.
    #[arg(long, default_value = "0,2,4,8,20,30")]
    k: String,
    /// Images (ids 0..N).
    #[arg(long, default_value_t = 200)]
    samples: u64,
    /// Images per forward pass.
    #[arg(long, default_value_t = 25)]
    batch: usize,
    /// How the units are chosen: by IoU from the dissection, or by how much of the concept
    /// their removal takes, chosen round by round on other images first.
    #[arg(long, value_enum, default_value = "iou")]
    rank: RankArg,
    /// Images the effects are measured on (`--rank effect`).
    #[arg(long, default_value_t = gandissect::edit::unit_effect::DEFAULT_EFFECT_SAMPLES)]
    rank_samples: u64,
    /// First image id of the effect measurement (`--rank effect`); keep the ids clear of 0..N.
    #[arg(long, default_value_t = gandissect::edit::unit_effect::DEFAULT_EFFECT_FIRST_ID)]
    rank_first_id: u64,
    /// Units chosen per round (`--rank effect`; 1 is plain greedy selection).
    #[arg(long, default_value_t = 2)]
    rank_step: usize,
    /// Candidates after the first round: the units with the largest single effects
    /// (`--rank effect`).
    #[arg(long, default_value_t = 48)]
    rank_pool: usize,
    /// Output directory (ablate-CONCEPT.json and .png).
    #[arg(long, default_value = "out/ablate")]
    out: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    models: PaintModelArgs,
}

/// How `ablate` picks the units it zeroes.
#[derive(Clone, Copy, clap::ValueEnum)]
enum RankArg {
    /// Top units by IoU with the concept.
    Iou,
    /// Units chosen greedily by their ablation effect on the concept.
    Effect,
}

#[derive(Args)]
struct ContextArgs {
    /// The concept inserted.
    #[arg(long)]
    concept: String,
    /// Its top units by IoU inserted.
    #[arg(long, default_value_t = gandissect::edit::insertion_context::DEFAULT_UNITS)]
    k: usize,
    /// Quantile of each unit's activation inserted.
    #[arg(long, default_value_t = gandissect::edit::insertion_context::DEFAULT_QUANTILE)]
    value_quantile: f64,
    /// Images (ids 0..N); each costs one forward of 64 copies at an 8×8 layer.
    #[arg(long, default_value_t = 100)]
    samples: u64,
    /// Contexts with fewer cells are left out of the chart.
    #[arg(long, default_value_t = 100)]
    min_count: u64,
    /// Output directory (context-CONCEPT.json and .png).
    #[arg(long, default_value = "out/context")]
    out: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    models: PaintModelArgs,
}

#[derive(Args)]
struct DissectArgs {
    /// A generator or classifier: shipped name, model directory, checkpoint, or random[:SEED].
    #[arg(long, default_value = zoo::DEFAULT_GENERATOR)]
    model: String,
    /// Layer to dissect (repeat for several; they share one forward).
    #[arg(long = "layer", required = true)]
    layers: Vec<String>,
    /// Segmenter (name, directory, TorchScript file) or `truth` (world images only).
    #[arg(long, default_value = gandissect::segment::DEFAULT_SEGMENTER)]
    segmenter: String,
    /// Images to dissect over (ids 0..N).
    #[arg(long, default_value_t = 1000)]
    samples: u64,
    /// Output directory.
    #[arg(long, default_value = "out/dissect")]
    out: PathBuf,
    /// Quantile level of each unit's threshold.
    #[arg(long, default_value_t = 0.99)]
    quantile: f64,
    /// IoU above which a unit is interpretable.
    #[arg(long, default_value_t = 0.04)]
    miniou: f64,
    /// Side of the segmentation and of the upsampled activations.
    #[arg(long, default_value_t = 64)]
    seg_size: i64,
    /// Top images kept per unit.
    #[arg(long, default_value_t = 100)]
    topk: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Process only shard i of N (images i, i+N, ...); merge the shards afterwards.
    #[arg(long, default_value = "0/1")]
    shard: gandissect::dissect::Shard,
    /// Images of a classifier: `world` (world scenes, ids = seeds).
    #[arg(long, default_value = "world")]
    images: String,
    /// Save statistics every this many batches.
    #[arg(long, default_value_t = 8)]
    save_every: usize,
    /// Stop after this many batches (a later run resumes).
    #[arg(long)]
    max_batches: Option<usize>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct MergeArgs {
    /// Directories holding shard statistics (DIR/stats/).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where merged statistics and results go (default: the first directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// IoU above which a unit is interpretable.
    #[arg(long, default_value_t = 0.04)]
    miniou: f64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct BenchArgs {
    /// Model to measure (repeatable): world (the trained world generator, or random weights of
    /// its geometry until it is installed), random256, or a generator; default: world and random256.
    #[arg(long = "model")]
    models: Vec<String>,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also run the same workloads in PyTorch (benches/baseline.py) and compare.
    #[arg(long)]
    baseline: bool,
    /// Tiny settings (a few rounds, 32 dissected images) for a quick check.
    #[arg(long)]
    quick: bool,
    /// Scratch directory (random weights, dissection statistics, baseline job).
    #[arg(long, default_value = "out/bench")]
    work: PathBuf,
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
    /// A trained generator's directory to continue from: its whole training state, or else its
    /// weights with a fresh discriminator (world-proggan only).
    #[arg(long)]
    continue_from: Option<PathBuf>,
    /// Steps at the start of a continued run in which only the fresh discriminator trains
    /// (default 200 when only weights are continued, 0 when a whole training state is).
    #[arg(long)]
    warmup: Option<i64>,
    /// Adam's learning rate (world-proggan only; default 0.002).
    #[arg(long)]
    lr: Option<f64>,
    /// Channel sizes, latent then 4×4 to 64×64 (world-proggan only; default
    /// 128,128,256,64,32,16).
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<i64>>,
    /// Segmenter used to measure a generator.
    #[arg(long, default_value = gandissect::segment::DEFAULT_SEGMENTER)]
    segmenter: String,
    /// World seeds (0..N) the finished model is measured on.
    #[arg(long, default_value_t = gandissect::train::export::EVAL_SEEDS)]
    eval_samples: u64,
    /// Weight of the L1 penalty on the classifier's relu5_3 activations (world-vgg16 only;
    /// default: the shipped model's).
    #[arg(long)]
    sparsity: Option<f64>,
    /// Label smoothing of the classifier's cross-entropy (world-vgg16 only; default: the
    /// shipped model's).
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// Weight of the per-image concentration penalty on relu5_3 (world-vgg16 only; default:
    /// the shipped model's).
    #[arg(long)]
    concentration: Option<f64>,
    /// Weight of the unit-usage balance penalty on relu5_3 (world-vgg16 only; default: the
    /// shipped model's).
    #[arg(long)]
    balance: Option<f64>,
    /// Weight of the class-sharing penalty on relu5_3 (world-vgg16 only; default: the shipped
    /// model's).
    #[arg(long)]
    selectivity: Option<f64>,
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
    /// Images the demo dissection runs over.
    #[arg(long, default_value_t = 500)]
    samples: u64,
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
    println!("{}", gandissect::demo::run(&a.out, a.samples, device)?);
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
        DefaultModel::WorldProggan => 8200,
        DefaultModel::WorldVgg16 => 1200,
    });
    if steps <= 0 || a.batch == 0 || a.checkpoint_every <= 0 {
        anyhow::bail!("--steps, --batch and --checkpoint-every must be positive");
    }
    let shipped = gandissect::train::classifier::Recipe::SHIPPED;
    let recipe = gandissect::train::classifier::Recipe {
        sparsity: a.sparsity.unwrap_or(shipped.sparsity),
        label_smoothing: a.label_smoothing.unwrap_or(shipped.label_smoothing),
        concentration: a.concentration.unwrap_or(shipped.concentration),
        balance: a.balance.unwrap_or(shipped.balance),
        selectivity: a.selectivity.unwrap_or(shipped.selectivity),
    };
    let recipe_given = [
        a.sparsity,
        a.label_smoothing,
        a.concentration,
        a.balance,
        a.selectivity,
    ]
    .iter()
    .any(Option::is_some);
    if recipe_given && !matches!(a.model, DefaultModel::WorldVgg16) {
        anyhow::bail!(
            "--sparsity, --label-smoothing, --concentration, --balance and --selectivity apply to world-vgg16 only"
        );
    }
    if (a.continue_from.is_some() || a.warmup.is_some() || a.lr.is_some() || a.sizes.is_some())
        && !matches!(a.model, DefaultModel::WorldProggan)
    {
        anyhow::bail!("--continue-from, --warmup, --lr and --sizes apply to world-proggan only");
    }
    if a.warmup.is_some() && a.continue_from.is_none() {
        anyhow::bail!("--warmup applies to a run that continues a generator (--continue-from DIR)");
    }
    let defaults = gandissect::train::gan::Start::default();
    let start = gandissect::train::gan::Start {
        warmup: a.warmup,
        from: a.continue_from,
        lr: a.lr.unwrap_or(defaults.lr),
        sizes: a.sizes.unwrap_or(defaults.sizes),
    };
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
        DefaultModel::WorldProggan => export::train_generator(&opts, start, &a.segmenter)?,
        DefaultModel::WorldVgg16 => export::train_classifier(&opts, recipe)?,
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
            let clf = gandissect::classify::Classifier::load(&spec, device)?;
            serde_json::to_value(quality::classifier_quality(
                &clf.net,
                &clf.classes,
                clf.input_size,
                0,
                a.samples,
                device,
            )?)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&q)?);
    Ok(())
}

fn print_outcome(outcome: gandissect::dissect::Outcome, out: &std::path::Path) {
    use gandissect::dissect::Outcome;
    match outcome {
        Outcome::Finished(r) => {
            for layer in &r.layers {
                let mut counts: Vec<_> = layer.counts.iter().collect();
                counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let top: Vec<String> = counts
                    .iter()
                    .take(8)
                    .map(|(c, n)| format!("{c} {n}"))
                    .collect();
                println!(
                    "{}: {} of {} units interpretable ({})",
                    layer.layer,
                    layer.interpretable,
                    layer.units.len(),
                    top.join(", ")
                );
            }
            for t in &r.timings {
                if t.images > 0 {
                    println!(
                        "{}: {} images in {:.1} s ({:.1} images/s)",
                        t.pass,
                        t.images,
                        t.seconds,
                        t.images as f64 / t.seconds.max(1e-9)
                    );
                } else {
                    println!("{}: {:.1} s", t.pass, t.seconds);
                }
            }
            println!("results → {} (dissect.json, report.html)", out.display());
        }
        Outcome::Interrupted { pass, images, of } => println!(
            "stopped in pass {pass} after {images} of {of} images; run the same command again to resume"
        ),
        Outcome::ShardDone { pass } => println!(
            "this shard finished pass {pass}; when every shard has, run: gandissect merge {}",
            out.display()
        ),
        Outcome::Pass1Merged => println!(
            "merged pass 1; now run every shard again (same command) for pass 2, then merge again"
        ),
    }
}

fn run_dissect(a: DissectArgs) -> Result<()> {
    use gandissect::dissect::{DissectOptions, run};
    if a.images != "world" {
        anyhow::bail!(
            "unknown --images '{}': world (world scenes) is the only image source",
            a.images
        );
    }
    let layers: Vec<&str> = a.layers.iter().map(String::as_str).collect();
    let mut opts = DissectOptions::new(&a.model, &layers, &a.segmenter, a.samples, &a.out);
    opts.quantile = a.quantile;
    opts.miniou = a.miniou;
    opts.seg_size = a.seg_size;
    opts.topk = a.topk;
    opts.batch = a.batch;
    opts.shard = a.shard;
    opts.device = parse_device(&a.common.device)?;
    opts.save_every = a.save_every;
    opts.max_batches = a.max_batches;
    opts.progress = true;
    let start = std::time::Instant::now();
    let outcome = run(&opts)?;
    print_outcome(outcome, &a.out);
    println!("took {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

fn run_merge(a: MergeArgs) -> Result<()> {
    use gandissect::dissect::{MergeOptions, merge};
    let out = a.out.clone().unwrap_or_else(|| a.dirs[0].clone());
    let outcome = merge(&MergeOptions {
        dirs: a.dirs,
        out: a.out,
        miniou: a.miniou,
        report_images: 5,
        device: parse_device(&a.common.device)?,
    })?;
    print_outcome(outcome, &out);
    Ok(())
}

fn run_edit(a: EditArgs, matches: Option<&clap::ArgMatches>) -> Result<()> {
    use gandissect::edit::pairing::pair_strokes;
    use gandissect::edit::scene::{ScenePaths, write_scene};
    use gandissect::edit::{Action, ScenePlan};
    let positions = |id: &str| -> Vec<usize> {
        matches
            .and_then(|m| m.indices_of(id))
            .map(|i| i.collect())
            .unwrap_or_default()
    };
    let mut edits: Vec<(usize, Action, String)> = Vec::new();
    for (pos, c) in positions("remove").into_iter().zip(&a.remove) {
        edits.push((pos, Action::Remove, c.clone()));
    }
    for (pos, c) in positions("add").into_iter().zip(&a.add) {
        edits.push((pos, Action::Add, c.clone()));
    }
    let masks: Vec<(usize, PathBuf)> = positions("mask").into_iter().zip(a.mask.clone()).collect();
    let strokes = pair_strokes(edits, masks)?;
    let paths = ScenePaths::for_image(&a.out)?;
    let plan_opts = a.stroke.plan_options()?;
    let session = a.models.session(a.stroke.value_quantile)?;
    let mut planned = Vec::new();
    for s in &strokes {
        let by_effect = matches!(a.rank, RankArg::Effect)
            && s.action == Action::Remove
            && plan_opts.units.is_none();
        let p = if by_effect {
            use gandissect::edit::unit_effect::{EffectOptions, rank_by_effect_cached};
            // the cheap checks before the ranking: the concept, then the mask
            let mask = session.read_stroke_mask(&s.concept, &s.mask, a.stroke.stretch)?;
            let effect = EffectOptions {
                samples: a.rank_samples,
                progress: true,
                ..EffectOptions::new(&s.concept)
            };
            let k = plan_opts.k;
            let ranked = rank_by_effect_cached(&session, &effect, k, &a.models.dissect_cache)?;
            let opts = gandissect::edit::PlanOptions {
                units: Some(ranked.top(k)?),
                ..plan_opts.clone()
            };
            session.plan(s.action, &s.concept, mask, &opts)?
        } else {
            session.plan_from_file(s.action, &s.concept, &s.mask, a.stroke.stretch, &plan_opts)?
        };
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
        seed: a.seed,
        strokes: planned,
        force: a.stroke.force,
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
    if a.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
        return Ok(());
    }
    println!(
        "seed {} of {} at {}",
        a.seed,
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

fn run_batch(a: BatchArgs) -> Result<()> {
    use gandissect::edit::script::{BatchOptions, run_batch};
    let opts = BatchOptions {
        script: a.script.clone(),
        out: a.out.clone(),
        batch: a.batch,
        plan: a.stroke.plan_options()?,
        stretch: a.stroke.stretch,
        force: a.stroke.force,
        progress: true,
    };
    let session = a.models.session(a.stroke.value_quantile)?;
    let s = run_batch(&session, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    for w in &s.warnings {
        eprintln!("warning: line {}: {}", w.line, w.error);
    }
    for f in &s.failed {
        eprintln!("line {}: {}", f.line, f.error);
    }
    println!(
        "{} scenes: {} painted, {} already done, {} failed ({:.1} s)",
        s.scenes,
        s.painted,
        s.already_done,
        s.failed.len(),
        s.seconds
    );
    println!(
        "removals: {} (mean {} removed in the region); insertions: {} accepted, {} rejected; {} empty strokes",
        s.removals,
        s.mean_removed_fraction
            .map_or("n/a".to_string(), |f| format!("{:.0}%", 100.0 * f)),
        s.insertions_accepted,
        s.insertions_rejected,
        s.empty_strokes
    );
    println!("manifest → {}", a.out.join("manifest.jsonl").display());
    if !s.failed.is_empty() {
        anyhow::bail!("{} script lines failed (listed above)", s.failed.len());
    }
    Ok(())
}

fn run_ablate(a: AblateArgs) -> Result<()> {
    use gandissect::edit::ablation::{AblationOptions, UnitRanking, run_ablation, write_ablation};
    use gandissect::edit::unit_effect::EffectOptions;
    let ks =
        a.k.split(',')
            .map(|k| k.trim().parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| {
                anyhow::anyhow!(
                    "cannot read --k '{}': give unit counts like 0,2,4,8,20,30",
                    a.k
                )
            })?;
    let session = a
        .models
        .session(gandissect::edit::plan::DEFAULT_VALUE_QUANTILE)?;
    let r = run_ablation(
        &session,
        &AblationOptions {
            concept: a.concept.clone(),
            ks,
            samples: a.samples,
            batch: a.batch,
            ranking: match a.rank {
                RankArg::Iou => UnitRanking::Iou,
                RankArg::Effect => {
                    let ids = a.rank_first_id..a.rank_first_id.saturating_add(a.rank_samples);
                    if ids.start < a.samples {
                        anyhow::bail!(
                            "the effect images (ids {}..{}) overlap the measured ids 0..{}; \
                             give --rank-first-id of at least {}",
                            ids.start,
                            ids.end,
                            a.samples,
                            a.samples
                        );
                    }
                    UnitRanking::Effect(EffectOptions {
                        first_id: a.rank_first_id,
                        samples: a.rank_samples,
                        step: a.rank_step,
                        pool: a.rank_pool,
                        ..EffectOptions::new(&a.concept)
                    })
                }
            },
            progress: true,
        },
    )?;
    let (json, png) = write_ablation(&r, &a.out)?;
    if a.json {
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

fn run_context(a: ContextArgs) -> Result<()> {
    use gandissect::edit::insertion_context::{
        ContextOptions, context_table, run_context, write_context,
    };
    let session = a.models.session(a.value_quantile)?;
    let r = run_context(
        &session,
        &ContextOptions {
            concept: a.concept.clone(),
            k: a.k,
            samples: a.samples,
            min_count: a.min_count,
            progress: true,
        },
    )?;
    let (json, png) = write_context(&r, &a.out)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    print!("{}", context_table(&r));
    println!("results → {}, {}", json.display(), png.display());
    Ok(())
}

#[derive(Args)]
struct CompareArgs {
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

fn run_compare(a: CompareArgs) -> Result<()> {
    use gandissect::dissect::{DissectResult, compare::label_agreement};
    let first = DissectResult::load(&a.first)?;
    let second = DissectResult::load(&a.second)?;
    let layer = match a.layer {
        Some(l) => l,
        None => first
            .layers
            .first()
            .map(|l| l.layer.clone())
            .ok_or_else(|| anyhow::anyhow!("{} has no layers", a.first.display()))?,
    };
    let ag = label_agreement(&first, &second, &layer)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&ag)?);
    } else {
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
    }
    Ok(())
}

fn run_classify_dissect(a: ClassifyDissectArgs) -> Result<()> {
    use gandissect::classify::dissection::{ClassifierDissectOptions, dissect_classifier};
    let layers: Vec<&str> = a.layer.iter().map(String::as_str).collect();
    let mut o = ClassifierDissectOptions::new(&a.model, &layers, &a.segmenter, &a.out);
    o.samples = a.samples;
    o.images = a.images;
    o.labels = a.labels;
    o.batch = a.batch;
    o.quantile = a.quantile;
    o.miniou = a.miniou;
    o.device = parse_device(&a.common.device)?;
    o.progress = true;
    let (s, _) = dissect_classifier(&o)?;
    for note in &s.notes {
        println!("note: {note}");
    }
    print!("{:<8} {:>5} {:>6}", "layer", "units", "interp");
    for c in &s.categories {
        print!(" {c:>8}");
    }
    println!("  top concepts");
    for l in &s.layers {
        print!("{:<8} {:>5} {:>6}", l.layer, l.units, l.interpretable);
        for c in &s.categories {
            print!(" {:>8}", l.by_category.get(c).copied().unwrap_or(0));
        }
        let top: Vec<String> = l
            .concepts
            .iter()
            .take(4)
            .map(|c| format!("{} {}", c.concept, c.units))
            .collect();
        println!("  {}", top.join(", "));
    }
    if let Some(acc) = &s.accuracy {
        println!(
            "accuracy on {} labelled pictures: {:.1}%",
            acc.labelled,
            acc.accuracy * 100.0
        );
    }
    println!(
        "{} images in {:.1} s → {}/summary.html, report.html",
        s.samples,
        s.seconds,
        a.out.display()
    );
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
    use gandissect::classify::sweep::{ImportanceMeasure, world_batches};
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
        world_batches(&clf, seeds, 50, device)?,
        &imp,
        iou,
    )?;
    write_selectivity(&report, &a.out)?;
    let rho = |r: Option<f64>| r.map_or("n/a (constant)".to_string(), |r| format!("{r:.3}"));
    let mean_sel = report.selectivity.iter().sum::<f64>() / report.selectivity.len().max(1) as f64;
    if report.importance_measure == ImportanceMeasure::LogProbDrop {
        println!(
            "note: no single unit changes accuracy, so importance is the drop of the true class's \
             log-probability"
        );
    }
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

fn run_bench(a: BenchArgs) -> Result<()> {
    use gandissect::bench::{BenchOptions, render_table, run};
    let mut o = BenchOptions::new(a.quick);
    if !a.models.is_empty() {
        o.models = a.models;
    }
    o.device = parse_device(&a.common.device)?;
    o.baseline = a.baseline;
    o.work = a.work;
    let report = run(&o)?;
    print!("{}", render_table(&report));
    if let Some(path) = &a.json {
        gandissect::fsutil::write_json(path, &report)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn main() {
    use clap::{CommandFactory, FromArgMatches};
    gandissect::allocator::keep_freed_memory();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    gandissect::nets::upconv::set_default(cli.upsample_conv);
    let result = match cli.command {
        Command::Generate(a) => run_generate(a),
        Command::Demo(a) => run_demo(a),
        Command::World(a) => run_world(a),
        Command::Train(a) => run_train(a),
        Command::Evaluate(a) => run_evaluate(a),
        Command::Classify(ClassifyCommand::Importance(a)) => run_importance(a),
        Command::Classify(ClassifyCommand::Dissect(a)) => run_classify_dissect(a),
        Command::Attack(a) => run_attack(a),
        Command::Analyze(AnalyzeCommand::Selectivity(a)) => run_selectivity(a),
        Command::Dissect(a) => run_dissect(a),
        Command::Merge(a) => run_merge(a),
        Command::Compare(a) => run_compare(a),
        Command::Edit(a) => run_edit(a, matches.subcommand_matches("edit")),
        Command::Batch(a) => run_batch(a),
        Command::Ablate(a) => run_ablate(a),
        Command::Context(a) => run_context(a),
        Command::Bench(a) => run_bench(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
