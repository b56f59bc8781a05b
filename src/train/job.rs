//! What to train or measure: one of the default models, with the settings that apply to it.
//! Settings that belong to another model (a classifier's loss terms for a generator run, a
//! generator's start for a classifier run) are refused by name.

use super::classifier::Recipe;
use super::export::{self, EVAL_SEEDS};
use super::gan::Start;
use super::label_noise::LabelNoise;
use super::{RunOptions, quality};
use anyhow::{Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tch::Device;

/// Scenes per training step by default.
pub const DEFAULT_BATCH: usize = 32;
/// Steps between two saves of the training state by default.
pub const DEFAULT_CHECKPOINT_EVERY: i64 = 100;

/// The models gandissect trains on its world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultModel {
    /// The segmenter, `world-seg`.
    WorldSeg,
    /// The generator, `world-proggan`.
    WorldProggan,
    /// The scene classifier, `world-vgg16`.
    WorldVgg16,
}

impl DefaultModel {
    /// Every default model, in training order.
    pub const ALL: [DefaultModel; 3] = [Self::WorldSeg, Self::WorldVgg16, Self::WorldProggan];

    /// The model's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::WorldSeg => "world-seg",
            Self::WorldProggan => "world-proggan",
            Self::WorldVgg16 => "world-vgg16",
        }
    }

    /// Where the shipped model lives: `segmenters/NAME` or `models/NAME` under the models
    /// directory ([`crate::zoo::home`]).
    pub fn default_dir(self) -> PathBuf {
        let kind = match self {
            Self::WorldSeg => "segmenters",
            Self::WorldProggan | Self::WorldVgg16 => "models",
        };
        crate::zoo::home().join(kind).join(self.name())
    }

    /// The shipped model's optimisation steps.
    pub fn shipped_steps(self) -> i64 {
        match self {
            Self::WorldSeg => 3000,
            Self::WorldProggan => 8200,
            Self::WorldVgg16 => 1200,
        }
    }
}

impl std::str::FromStr for DefaultModel {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown default model '{s}': world-seg, world-vgg16 or world-proggan"
                )
            })
    }
}

/// Changes to how a generator run starts (world-proggan only); unset ones keep the defaults.
#[derive(Clone, Debug, Default)]
pub struct StartChanges {
    /// A trained generator's directory to continue from.
    pub continue_from: Option<PathBuf>,
    /// Steps in which only a fresh discriminator trains (continued runs only).
    pub warmup: Option<i64>,
    /// Adam's learning rate.
    pub lr: Option<f64>,
    /// Channel sizes, latent then 4×4 to 64×64.
    pub sizes: Option<Vec<i64>>,
    /// The decay of the generator's weight average.
    pub ema_beta: Option<f64>,
}

impl StartChanges {
    fn any(&self) -> bool {
        self.continue_from.is_some()
            || self.warmup.is_some()
            || self.lr.is_some()
            || self.sizes.is_some()
            || self.ema_beta.is_some()
    }

    /// The start with these changes made to the default one.
    pub fn start(&self) -> Start {
        let defaults = Start::default();
        Start {
            from: self.continue_from.clone(),
            warmup: self.warmup,
            lr: self.lr.unwrap_or(defaults.lr),
            sizes: self.sizes.clone().unwrap_or(defaults.sizes),
            ema_beta: self.ema_beta.unwrap_or(defaults.ema_beta),
        }
    }
}

/// Changes to a classifier's loss terms (world-vgg16 only); unset ones keep the shipped recipe's.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecipeChanges {
    /// Weight of the L1 penalty on relu5_3.
    pub sparsity: Option<f64>,
    /// Label smoothing of the cross-entropy.
    pub label_smoothing: Option<f64>,
    /// Weight of the per-image concentration penalty.
    pub concentration: Option<f64>,
    /// Weight of the unit-usage balance penalty.
    pub balance: Option<f64>,
    /// Weight of the class-sharing penalty.
    pub selectivity: Option<f64>,
}

impl RecipeChanges {
    fn any(&self) -> bool {
        [
            self.sparsity,
            self.label_smoothing,
            self.concentration,
            self.balance,
            self.selectivity,
        ]
        .iter()
        .any(Option::is_some)
    }

    /// The shipped recipe with these changes.
    pub fn recipe(&self) -> Recipe {
        let shipped = Recipe::SHIPPED;
        Recipe {
            sparsity: self.sparsity.unwrap_or(shipped.sparsity),
            label_smoothing: self.label_smoothing.unwrap_or(shipped.label_smoothing),
            concentration: self.concentration.unwrap_or(shipped.concentration),
            balance: self.balance.unwrap_or(shipped.balance),
            selectivity: self.selectivity.unwrap_or(shipped.selectivity),
        }
    }
}

/// A training run of one default model.
#[derive(Clone, Debug)]
pub struct TrainJob {
    /// Which model.
    pub model: DefaultModel,
    /// Optimisation steps (default: the shipped model's).
    pub steps: Option<i64>,
    /// Scenes per step.
    pub batch: usize,
    /// Seed of the run.
    pub seed: u64,
    /// Model directory to write (default: the shipped location).
    pub out: Option<PathBuf>,
    /// Save the resumable state every this many steps.
    pub checkpoint_every: i64,
    /// Keep a numbered copy of the weights at every save of the state (`checkpoints/`).
    pub keep_checkpoints: bool,
    /// Where to train.
    pub device: Device,
    /// World seeds `0..eval_samples` the finished model is measured on.
    pub eval_samples: u64,
    /// The segmenter a generator is measured with.
    pub segmenter: String,
    /// How a generator run starts (world-proggan only).
    pub start: StartChanges,
    /// A classifier's loss terms (world-vgg16 only).
    pub recipe: RecipeChanges,
    /// A fixed training set with random labels instead of fresh scenes (world-vgg16 only).
    pub label_noise: Option<LabelNoise>,
}

impl TrainJob {
    /// A run of `model` with the shipped settings, on the CPU.
    pub fn new(model: DefaultModel) -> Self {
        Self {
            model,
            steps: None,
            batch: DEFAULT_BATCH,
            seed: 0,
            out: None,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            keep_checkpoints: false,
            device: Device::Cpu,
            eval_samples: EVAL_SEEDS,
            segmenter: crate::segment::DEFAULT_SEGMENTER.to_string(),
            start: StartChanges::default(),
            recipe: RecipeChanges::default(),
            label_noise: None,
        }
    }

    /// Checks the settings, naming those that are out of range or belong to another model.
    pub fn validate(&self) -> Result<()> {
        if self.steps.is_some_and(|s| s <= 0) || self.batch == 0 || self.checkpoint_every <= 0 {
            bail!("--steps, --batch and --checkpoint-every must be positive");
        }
        if self.recipe.any() && self.model != DefaultModel::WorldVgg16 {
            bail!(
                "--sparsity, --label-smoothing, --concentration, --balance and --selectivity apply to world-vgg16 only"
            );
        }
        if let Some(noise) = &self.label_noise {
            if self.model != DefaultModel::WorldVgg16 {
                bail!("--label-noise and --train-scenes apply to world-vgg16 only");
            }
            if self.out.is_none() {
                bail!(
                    "a --label-noise run needs its own --out DIR; it never replaces the shipped model"
                );
            }
            noise.check()?;
        }
        if self.start.any() && self.model != DefaultModel::WorldProggan {
            bail!(
                "--continue-from, --warmup, --lr, --sizes and --ema-beta apply to world-proggan only"
            );
        }
        if self.start.warmup.is_some() && self.start.continue_from.is_none() {
            bail!("--warmup applies to a run that continues a generator (--continue-from DIR)");
        }
        Ok(())
    }

    /// The model directory the run writes.
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| self.model.default_dir())
    }

    /// Trains (resuming a saved state in the model directory), writes the weights and card, and
    /// returns the measured quality.
    pub fn run(&self) -> Result<Value> {
        self.validate()?;
        let opts = RunOptions {
            out: self.out_dir(),
            steps: self.steps.unwrap_or(self.model.shipped_steps()),
            batch: self.batch,
            seed: self.seed,
            checkpoint_every: self.checkpoint_every,
            device: self.device,
            eval_samples: self.eval_samples,
            keep_checkpoints: self.keep_checkpoints,
        };
        match self.model {
            DefaultModel::WorldSeg => export::train_segmenter(&opts),
            DefaultModel::WorldProggan => {
                export::train_generator(&opts, self.start.start(), &self.segmenter)
            }
            DefaultModel::WorldVgg16 => {
                export::train_classifier(&opts, self.recipe.recipe(), self.label_noise)
            }
        }
    }
}

/// Measures the default model `model` in `dir` against the world's truth on world seeds
/// `0..samples` (a generator through `segmenter`), as its card records it.
pub fn evaluate(
    model: DefaultModel,
    dir: &Path,
    segmenter: &str,
    samples: u64,
    device: Device,
) -> Result<Value> {
    let spec = dir.to_string_lossy().into_owned();
    Ok(match model {
        DefaultModel::WorldSeg => {
            let seg = crate::segment::load_segmenter(&spec, device)?;
            serde_json::to_value(quality::segmenter_quality(
                seg.as_ref(),
                0,
                samples,
                device,
            )?)?
        }
        DefaultModel::WorldProggan => {
            let (g, _) = crate::zoo::load_generator(&spec, device)?;
            let seg = crate::segment::load_segmenter(segmenter, device)?;
            serde_json::to_value(quality::generator_quality(
                &g,
                seg.as_ref(),
                samples,
                device,
            )?)?
        }
        DefaultModel::WorldVgg16 => {
            let (net, source) = crate::zoo::load_classifier(&spec, device)?;
            let card = source.card.as_ref();
            let classes = card.and_then(|c| c.classes.clone()).unwrap_or_else(|| {
                crate::world::SceneClass::ALL
                    .iter()
                    .map(|c| c.name().to_string())
                    .collect()
            });
            let input_size = card
                .and_then(|c| c.input_size)
                .unwrap_or(crate::world::SIZE as i64);
            serde_json::to_value(quality::classifier_quality(
                &net, &classes, input_size, 0, samples, device,
            )?)?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_of_another_model_are_refused_by_name() {
        let mut job = TrainJob::new(DefaultModel::WorldSeg);
        job.recipe.balance = Some(0.1);
        let e = job.validate().unwrap_err().to_string();
        assert!(e.contains("apply to world-vgg16 only"), "{e}");
        let mut job = TrainJob::new(DefaultModel::WorldVgg16);
        job.start.lr = Some(0.001);
        let e = job.validate().unwrap_err().to_string();
        assert!(e.contains("apply to world-proggan only"), "{e}");
        let mut job = TrainJob::new(DefaultModel::WorldProggan);
        job.start.warmup = Some(10);
        let e = job.validate().unwrap_err().to_string();
        assert!(e.contains("--continue-from DIR"), "{e}");
        job.start.continue_from = Some("g".into());
        job.validate().unwrap();
        job.steps = Some(0);
        assert!(job.validate().is_err());
        let mut job = TrainJob::new(DefaultModel::WorldVgg16);
        job.label_noise = Some(LabelNoise {
            fraction: 0.5,
            scenes: 8,
        });
        let e = job.validate().unwrap_err().to_string();
        assert!(e.contains("--out"), "{e}");
        job.out = Some("out/noisy".into());
        job.validate().unwrap();
    }

    #[test]
    fn changes_apply_to_the_shipped_settings() {
        let changes = RecipeChanges {
            balance: Some(0.2),
            ..Default::default()
        };
        let r = changes.recipe();
        assert_eq!(r.balance, 0.2);
        assert_eq!(r.concentration, Recipe::SHIPPED.concentration);
        assert_eq!(StartChanges::default().start().lr, Start::default().lr);
        assert_eq!(
            "world-vgg16".parse::<DefaultModel>().unwrap(),
            DefaultModel::WorldVgg16
        );
        assert!("world".parse::<DefaultModel>().is_err());
    }
}
