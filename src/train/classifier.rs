//! Training the world scene classifier: a torchvision-layout VGG-16 with a width multiplier,
//! on class-balanced world scenes upsampled to its input size, with label-smoothed
//! cross-entropy, an L1 penalty on the conv5_3 activations, and Adam.
//!
//! The penalty makes each unit's activity cost something, so the network stops encoding the same
//! evidence in many units at once: a class comes to rest on a few units of its own rather than on
//! a fifth of the layer. Label smoothing caps how confident the network may grow, so that
//! training longer does not make every decision robust to anything (a network trained to zero
//! loss on an easy task has margins no handful of units can move).

use super::adam::Adam;
use super::data::{step_seeds, world_batch};
use super::seg::cosine_lr;
use super::{RunOptions, Trainer, named_params, state};
use crate::nets::layered::LayeredNet;
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
/// The layer the sparsity penalty acts on.
const SPARSE_LAYER: &str = "relu5_3";

/// The loss terms of a classifier run beyond plain cross-entropy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    /// Weight of the L1 penalty on relu5_3: per unit, its mean activation over batch and
    /// positions, summed over units (0: none).
    pub sparsity: f64,
    /// Share of each target spread evenly over all classes (0: none).
    pub label_smoothing: f64,
}

impl Recipe {
    /// The shipped model's recipe.
    pub const SHIPPED: Recipe = Recipe {
        sparsity: 0.02,
        label_smoothing: 0.1,
    };

    /// Refuses negative or non-finite weights and a smoothing of 1 or more.
    pub fn check(&self) -> Result<()> {
        if !(self.sparsity.is_finite() && self.sparsity >= 0.0) {
            anyhow::bail!(
                "sparsity must be a finite number ≥ 0, got {}",
                self.sparsity
            );
        }
        if !(self.label_smoothing.is_finite() && (0.0..1.0).contains(&self.label_smoothing)) {
            anyhow::bail!(
                "label smoothing must be in [0, 1), got {}",
                self.label_smoothing
            );
        }
        Ok(())
    }
}

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
    recipe: Recipe,
    sparse_layer: usize,
}

impl ClassifierTrainer {
    /// A fresh network, seeded from the run's seed, trained with [`Recipe::SHIPPED`].
    pub fn new(opts: &RunOptions) -> Self {
        Self::with_recipe(opts, Recipe::SHIPPED)
    }

    /// A fresh network trained with `recipe`.
    pub fn with_recipe(opts: &RunOptions, recipe: Recipe) -> Self {
        tch::manual_seed(opts.seed as i64);
        let vs = nn::VarStore::new(opts.device);
        // No dropout: every step sees fresh scenes, and steps stay deterministic.
        let net = Vgg::trainable(&vs.root(), config(), Normalization::imagenet());
        let sparse_layer = net
            .layer_index(SPARSE_LAYER)
            .expect("every VGG-16 has relu5_3");
        Self {
            vs,
            net,
            opt: Adam::new(LR, 0.9, 0.999, 1e-8),
            opts: opts.clone(),
            recipe,
            sparse_layer,
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
            "hidden": HIDDEN, "lr": LR, "sparsity": self.recipe.sparsity,
            "label_smoothing": self.recipe.label_smoothing, "steps": self.opts.steps, "batch": self.opts.batch, "seed": self.opts.seed})
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
        let input = self.net.preprocess(&to_input_size(&b.images, INPUT_SIZE));
        let cut = self.sparse_layer + 1;
        let features = self.net.forward_range(&input, 0, cut);
        let logits = self
            .net
            .forward_range(&features, cut, self.net.num_layers());
        let ce = logits.cross_entropy_loss::<Tensor>(
            &b.classes,
            None,
            Reduction::Mean,
            -100,
            self.recipe.label_smoothing,
        );
        // Per unit: mean activation over batch and positions; summed over units.
        let l1 = features
            .mean_dim([0i64, 2, 3].as_slice(), false, Kind::Float)
            .sum(Kind::Float);
        let loss = &ce + &l1 * self.recipe.sparsity;
        loss.backward();
        self.opt.lr = cosine_lr(LR, step, self.opts.steps);
        self.opt.step(&named_params(&self.vs));
        let acc = logits
            .argmax(1, false)
            .eq_tensor(&b.classes)
            .to_kind(Kind::Float)
            .mean(Kind::Float);
        Ok(vec![
            ("loss", f64::try_from(ce)?),
            ("l1", f64::try_from(l1)?),
            ("acc", f64::try_from(acc)?),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_outside_their_ranges_are_refused() {
        assert!(Recipe::SHIPPED.check().is_ok());
        let bad = [(-0.1, 0.0), (f64::NAN, 0.0), (0.0, 1.0), (0.0, -0.2)];
        for (sparsity, label_smoothing) in bad {
            let r = Recipe {
                sparsity,
                label_smoothing,
            };
            let err = r.check().unwrap_err().to_string();
            assert!(
                err.contains("sparsity") || err.contains("label smoothing"),
                "{err}"
            );
        }
    }
}
