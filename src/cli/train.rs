//! `gandissect train`: trains a default model on the procedural world (resumes after a kill).

use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::train::job::{
    DEFAULT_BATCH, DEFAULT_CHECKPOINT_EVERY, RecipeChanges, StartChanges,
};
use gandissect::train::label_noise::{DEFAULT_TRAIN_SCENES, LabelNoise};
use gandissect::train::{DefaultModel, TrainJob};
use std::path::PathBuf;

/// A default model named on the command line.
pub fn default_model(name: &str) -> Result<DefaultModel, String> {
    name.parse().map_err(|e: anyhow::Error| e.to_string())
}

#[derive(Args)]
pub struct TrainArgs {
    /// Which model: world-seg, world-vgg16 or world-proggan.
    #[arg(value_parser = default_model, value_name = "MODEL")]
    model: DefaultModel,
    /// Optimisation steps (default: the shipped model's).
    #[arg(long)]
    steps: Option<i64>,
    /// Scenes per step.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: usize,
    /// Seed of the run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Model directory to write (default: the shipped location).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Save the resumable state every this many steps.
    #[arg(long, default_value_t = DEFAULT_CHECKPOINT_EVERY)]
    checkpoint_every: i64,
    /// Also keep a numbered copy of the weights at the start and at every save, in
    /// `checkpoints/step_NNNNNN.safetensors` (for `analyze similarity --dynamics`).
    #[arg(long)]
    keep_checkpoints: bool,
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
    /// Decay of the generator's weight average, which is what a run keeps and ships
    /// (world-proggan only; default 0.999, about 1000 steps of memory).
    #[arg(long)]
    ema_beta: Option<f64>,
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
    /// Train on a fixed set of scenes (--train-scenes) with this fraction of their labels
    /// replaced once and for all by random classes (world-vgg16 only; 0 keeps every label).
    #[arg(long, value_name = "P")]
    label_noise: Option<f64>,
    /// Scenes in the fixed training set of a --label-noise run.
    #[arg(long, value_name = "N", requires = "label_noise")]
    train_scenes: Option<u64>,
}

impl TrainArgs {
    fn job(self, ctx: &Context) -> TrainJob {
        TrainJob {
            steps: self.steps,
            batch: self.batch,
            seed: self.seed,
            out: self.out,
            checkpoint_every: self.checkpoint_every,
            keep_checkpoints: self.keep_checkpoints,
            device: ctx.device,
            eval_samples: self.eval_samples,
            segmenter: self.segmenter,
            start: StartChanges {
                continue_from: self.continue_from,
                warmup: self.warmup,
                lr: self.lr,
                sizes: self.sizes,
                ema_beta: self.ema_beta,
            },
            recipe: RecipeChanges {
                sparsity: self.sparsity,
                label_smoothing: self.label_smoothing,
                concentration: self.concentration,
                balance: self.balance,
                selectivity: self.selectivity,
            },
            label_noise: self.label_noise.map(|fraction| LabelNoise {
                fraction,
                scenes: self.train_scenes.unwrap_or(DEFAULT_TRAIN_SCENES),
            }),
            ..TrainJob::new(self.model)
        }
    }
}

impl Run for TrainArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let job = self.job(ctx);
        let quality = job.run()?;
        println!("trained {} → {}", job.model.name(), job.out_dir().display());
        println!("{}", serde_json::to_string_pretty(&quality)?);
        Ok(())
    }
}
