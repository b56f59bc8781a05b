//! Training the world scene classifier: a torchvision-layout VGG-16 with a width multiplier,
//! on class-balanced world scenes upsampled to its input size, with cross-entropy and Adam.

use super::adam::Adam;
use super::data::{step_seeds, world_batch};
use super::seg::cosine_lr;
use super::{RunOptions, Trainer, named_params, state};
use crate::nets::vgg::{Normalization, Vgg, VggConfig};
use crate::world::SceneClass;
use anyhow::Result;
use std::collections::BTreeMap;
use tch::{Kind, Reduction, Tensor, nn};

/// Width multiplier of the shipped classifier.
pub const WIDTH: f64 = 0.25;
/// Image side the classifier sees (world images are upsampled to it).
pub const INPUT_SIZE: i64 = 128;
/// Side of the pooled conv5 features fed to fc6.
pub const POOL: i64 = 4;
/// Width of fc6 and fc7.
pub const HIDDEN: i64 = 256;
const LR: f64 = 2e-4;

/// The shipped classifier's geometry.
pub fn config() -> VggConfig {
    VggConfig::scaled(WIDTH, POOL, HIDDEN, SceneClass::ALL.len() as i64)
}

/// Resizes `[N, 3, h, w]` images to the classifier's input size (bilinear).
pub fn to_input_size(images: &Tensor, size: i64) -> Tensor {
    let s = images.size();
    if s[2] == size && s[3] == size {
        return images.shallow_clone();
    }
    images.upsample_bilinear2d([size, size], false, None, None)
}

/// The classifier's training run.
pub struct ClassifierTrainer {
    vs: nn::VarStore,
    net: Vgg,
    opt: Adam,
    opts: RunOptions,
}

impl ClassifierTrainer {
    /// A fresh network, seeded from the run's seed.
    pub fn new(opts: &RunOptions) -> Self {
        tch::manual_seed(opts.seed as i64);
        let vs = nn::VarStore::new(opts.device);
        // No dropout: every step sees fresh scenes, and steps stay deterministic.
        let net = Vgg::trainable(&vs.root(), config(), Normalization::imagenet());
        Self {
            vs,
            net,
            opt: Adam::new(LR, 0.9, 0.999, 1e-8),
            opts: opts.clone(),
        }
    }

    /// The weights in torchvision layout.
    pub fn weights(&self) -> Vec<(String, Tensor)> {
        self.net.named_tensors()
    }
}

impl Trainer for ClassifierTrainer {
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({"model": "world-vgg16", "width": WIDTH, "input_size": INPUT_SIZE, "pool": POOL,
            "hidden": HIDDEN, "lr": LR, "steps": self.opts.steps, "batch": self.opts.batch, "seed": self.opts.seed})
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        state::net_and_optimizer(&self.vs, &self.opt)
    }

    fn restore(&mut self, saved: &BTreeMap<String, Tensor>) -> Result<()> {
        state::restore_net_and_optimizer(&self.vs, &mut self.opt, saved)
    }

    fn step(&mut self, step: i64) -> Result<Vec<(&'static str, f64)>> {
        let b = world_batch(
            &step_seeds(self.opts.seed, step, self.opts.batch),
            true,
            self.opts.device,
        );
        let logits = self.net.classify(&to_input_size(&b.images, INPUT_SIZE));
        let loss =
            logits.cross_entropy_loss::<Tensor>(&b.classes, None, Reduction::Mean, -100, 0.0);
        loss.backward();
        self.opt.lr = cosine_lr(LR, step, self.opts.steps);
        self.opt.step(&named_params(&self.vs));
        let acc = logits
            .argmax(1, false)
            .eq_tensor(&b.classes)
            .to_kind(Kind::Float)
            .mean(Kind::Float);
        Ok(vec![
            ("loss", f64::try_from(loss)?),
            ("acc", f64::try_from(acc)?),
        ])
    }
}
