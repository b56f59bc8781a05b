//! Training the world scene classifier: a torchvision-layout VGG-16 with a width multiplier,
//! on class-balanced world scenes upsampled to its input size, with label-smoothed
//! cross-entropy, penalties on how the relu5_3 units share the work, and Adam.
//!
//! A small network trained on a few easy classes spreads every decision over much of its top
//! layer, so that no handful of units matters to any class. The penalties ask for the division of
//! labour that large scene classifiers show: each scene carried by few units (concentration) and
//! every unit doing some of the work (balance), so that classes come to rest on units of their
//! own. Two more options are kept for comparison: an L1 penalty (sparsity), which makes most
//! units fall silent instead, and a class-sharing penalty (selectivity), which asks each unit to
//! serve few classes. Label smoothing caps how confident the network may grow, so that training
//! longer does not make every decision robust to anything (a network trained to zero loss on an
//! easy task has margins no handful of units can move).

use super::adam::Adam;
use super::data::step_seeds;
use super::label_noise::{LabelNoise, TrainingSet};
use super::seg::cosine_lr;
use super::{RunOptions, Trainer, named_params, state};
use crate::imageio::to_input_size;
use crate::nets::layered::LayeredNet;
use crate::nets::vgg::{Normalization, Vgg, VggConfig};
use crate::sample::{WorldBatch, world_batch};
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
/// The layer the penalties act on.
const PENALISED_LAYER: &str = "relu5_3";

/// The loss terms of a classifier run beyond plain cross-entropy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    /// Weight of the L1 penalty on relu5_3: per unit, its mean activation over batch and
    /// positions, summed over units (0: none).
    pub sparsity: f64,
    /// Share of each target spread evenly over all classes (0: none).
    pub label_smoothing: f64,
    /// Weight of the per-image concentration penalty on relu5_3: for each image, the L1 norm of
    /// its per-unit mean activations over √units times their L2 norm (1 when every unit is
    /// equally active, 1/√units when one unit carries the image), averaged over the batch (0: none).
    pub concentration: f64,
    /// Weight of the usage-balance penalty on relu5_3: units times the sum of squares of each
    /// unit's share of the batch's total activation (1 when every unit is used equally, units
    /// when one unit is used for everything) (0: none).
    pub balance: f64,
    /// Weight of the class-sharing penalty on relu5_3: for each unit, the L1 norm of its mean
    /// activation per class over √classes times their L2 norm (1 when the unit is equally active
    /// on every class, 1/√classes when it is active on one), averaged over units weighted by
    /// their share of the activation (0: none).
    pub selectivity: f64,
}

impl Recipe {
    /// The shipped model's recipe.
    pub const SHIPPED: Recipe = Recipe {
        sparsity: 0.0,
        label_smoothing: 0.1,
        concentration: 1.0,
        balance: 0.05,
        selectivity: 0.0,
    };

    /// The penalty weights on relu5_3 by their field (and command-line) names.
    pub fn penalties(&self) -> [(&'static str, f64); 4] {
        [
            ("sparsity", self.sparsity),
            ("concentration", self.concentration),
            ("balance", self.balance),
            ("selectivity", self.selectivity),
        ]
    }

    /// Every weight of the recipe by its field name: label smoothing, then the penalties.
    pub fn terms(&self) -> Vec<(&'static str, f64)> {
        let mut terms = vec![("label_smoothing", self.label_smoothing)];
        terms.extend(self.penalties());
        terms
    }

    /// The recipe in words, naming only its terms that are on (e.g. "label smoothing 0.1;
    /// concentration 1, balance 0.05 on relu5_3").
    pub fn describe(&self) -> String {
        let penalties: Vec<String> = self
            .penalties()
            .iter()
            .filter(|(_, w)| *w > 0.0)
            .map(|&(name, w)| match name {
                "sparsity" => format!("an L1 penalty {w}"),
                _ => format!("{name} {w}"),
            })
            .collect();
        let mut parts = Vec::new();
        if self.label_smoothing > 0.0 {
            parts.push(format!("label smoothing {}", self.label_smoothing));
        }
        if !penalties.is_empty() {
            parts.push(format!("{} on {PENALISED_LAYER}", penalties.join(", ")));
        }
        if parts.is_empty() {
            return "plain cross-entropy".into();
        }
        parts.join("; ")
    }

    /// Refuses negative or non-finite weights and a smoothing of 1 or more.
    pub fn check(&self) -> Result<()> {
        for (name, w) in self.penalties() {
            if !(w.is_finite() && w >= 0.0) {
                anyhow::bail!("{name} must be a finite number ≥ 0, got {w}");
            }
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

/// Mean over images of `‖e‖₁ / (√U·‖e‖₂)` for per-image unit activations `e` (`[N, U]`,
/// non-negative): 1 when all U units are equally active, `1/√U` when one unit is.
pub fn concentration(per_image: &Tensor) -> Tensor {
    let units = per_image.size()[1] as f64;
    let l1 = per_image.sum_dim_intlist(1, false, Kind::Float);
    let l2 = per_image
        .square()
        .sum_dim_intlist(1, false, Kind::Float)
        .sqrt()
        + 1e-6;
    (l1 / (l2 * units.sqrt())).mean(Kind::Float)
}

/// `U·Σ s_u²` where `s_u` is unit u's share of all activation in `per_image` (`[N, U]`,
/// non-negative): 1 when every unit carries the same share, U when one unit carries it all.
pub fn usage_imbalance(per_image: &Tensor) -> Tensor {
    let units = per_image.size()[1] as f64;
    let usage = per_image.sum_dim_intlist(0, false, Kind::Float);
    let share = &usage / (usage.sum(Kind::Float) + 1e-6);
    share.square().sum(Kind::Float) * units
}

/// How evenly units spread over classes: for each unit, `‖m‖₁ / (√K·‖m‖₂)` over its mean
/// activation `m` per class (K classes present in `labels`), averaged over units weighted by
/// their (constant) share of all activation. 1 when every unit is equally active on every
/// class; `1/√K` when each unit is active on one class only.
pub fn class_sharing(per_image: &Tensor, labels: &Tensor, classes: i64) -> Tensor {
    let onehot = labels.one_hot(classes).to_kind(Kind::Float);
    let counts = onehot.sum_dim_intlist(0, false, Kind::Float);
    let present = counts.gt(0.0).to_kind(Kind::Float).sum(Kind::Float);
    // [K, U]: per class, the mean activation of each unit (0 for absent classes).
    let means = onehot.tr().matmul(per_image) / counts.clamp_min(1.0).unsqueeze(1);
    let l1 = means.sum_dim_intlist(0, false, Kind::Float);
    let l2 = means.square().sum_dim_intlist(0, false, Kind::Float).sqrt() + 1e-6;
    let spread = &l1 / (l2 * present.sqrt());
    let weight = (&l1 / (l1.sum(Kind::Float) + 1e-6)).detach();
    (spread * weight).sum(Kind::Float)
}

/// The classifier's training run.
pub struct ClassifierTrainer {
    vs: nn::VarStore,
    net: Vgg,
    opt: Adam,
    opts: RunOptions,
    recipe: Recipe,
    penalised_layer: usize,
    noise: Option<TrainingSet>,
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
        let penalised_layer = net
            .layer_index(PENALISED_LAYER)
            .expect("every VGG-16 has relu5_3");
        Self {
            vs,
            net,
            opt: Adam::new(LR, 0.9, 0.999, 1e-8),
            opts: opts.clone(),
            recipe,
            penalised_layer,
            noise: None,
        }
    }

    /// Trains on a fixed set of scenes with a share of their labels replaced by random classes
    /// instead of fresh scenes every step.
    pub fn with_label_noise(mut self, noise: LabelNoise) -> Self {
        self.noise = Some(TrainingSet::new(noise, self.opts.seed));
        self
    }

    /// The scenes of `step` with the labels the network is trained with (`classes`): fresh
    /// scenes, or the fixed training set's with its replaced labels.
    pub fn step_batch(&self, step: i64) -> Result<WorldBatch> {
        let (seed, batch, device) = (self.opts.seed, self.opts.batch, self.opts.device);
        match &self.noise {
            None => Ok(world_batch(&step_seeds(seed, step, batch), true, device)),
            Some(set) => set.batch(&set.noise.step_indices(seed, step, batch), device),
        }
    }

    /// The weights in torchvision layout.
    pub fn weights(&self) -> Vec<(String, Tensor)> {
        self.net.named_tensors()
    }
}

impl Trainer for ClassifierTrainer {
    fn settings(&self) -> serde_json::Value {
        let mut settings = serde_json::json!({"model": "world-vgg16", "width": WIDTH, "input_size": INPUT_SIZE,
            "pool": POOL, "hidden": HIDDEN, "lr": LR, "steps": self.opts.steps, "batch": self.opts.batch,
            "seed": self.opts.seed});
        for (name, w) in self.recipe.terms() {
            settings[name] = serde_json::json!(w);
        }
        if let Some(set) = &self.noise {
            settings["label_noise"] = set.noise.settings();
        }
        settings
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        state::net_and_optimizer(&self.vs, &self.opt)
    }

    fn restore(&mut self, saved: &BTreeMap<String, Tensor>) -> Result<()> {
        state::restore_net_and_optimizer(&self.vs, &mut self.opt, saved)
    }

    fn weights(&self) -> Vec<(String, Tensor)> {
        ClassifierTrainer::weights(self)
    }

    fn step(&mut self, step: i64) -> Result<Vec<(&'static str, f64)>> {
        let b = self.step_batch(step)?;
        let input = self.net.preprocess(&to_input_size(&b.images, INPUT_SIZE));
        let cut = self.penalised_layer + 1;
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
        let per_image = features.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
        // Per unit: mean activation over batch and positions; summed over units.
        let l1 = per_image.mean_dim(0, false, Kind::Float).sum(Kind::Float);
        let mut loss = &ce + &l1 * self.recipe.sparsity;
        if self.recipe.concentration > 0.0 {
            loss += concentration(&per_image) * self.recipe.concentration;
        }
        if self.recipe.balance > 0.0 {
            loss += usage_imbalance(&per_image) * self.recipe.balance;
        }
        if self.recipe.selectivity > 0.0 {
            let classes = SceneClass::ALL.len() as i64;
            loss += class_sharing(&per_image, &b.classes, classes) * self.recipe.selectivity;
        }
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

/// Whether `path` is a classifier run's saved training state (a safetensors file whose header
/// names the run's settings) rather than plain weights.
pub fn is_training_state(path: &std::path::Path) -> bool {
    use std::io::Read;
    let Ok(mut f) = crate::fsutil::open_regular(path, "training state") else {
        return false;
    };
    let mut len = [0u8; 8];
    if f.read_exact(&mut len).is_err() {
        return false;
    }
    let n = u64::from_le_bytes(len).min(1 << 20) as usize;
    let mut header = vec![0u8; n];
    f.read_exact(&mut header).is_ok()
        && String::from_utf8_lossy(&header).contains("\"__settings_json\"")
        && String::from_utf8_lossy(&header).contains("\"net.features.0.weight\"")
}

/// The network of a classifier run's saved training state (its `net.` tensors), as a
/// classifier over the world's classes at the trainer's input size: a run's intermediate
/// states are networks of their own.
pub fn load_training_state(
    path: &std::path::Path,
    device: tch::Device,
) -> Result<crate::classify::Classifier> {
    let tensors = Tensor::read_safetensors(path)
        .map_err(|e| anyhow::anyhow!("cannot read the training state {} ({e})", path.display()))?;
    let net: Vec<(String, Tensor)> = tensors
        .into_iter()
        .filter_map(|(k, t)| k.strip_prefix("net.").map(|k| (k.to_string(), t)))
        .collect();
    if net.is_empty() {
        anyhow::bail!(
            "{} holds no network (no net.* tensors); give a classifier's training state",
            path.display()
        );
    }
    world_classifier(net, path, device)
}

/// Whether `path` is a weights file a world-vgg16 run kept in its `checkpoints/` folder
/// (`--keep-checkpoints`): the run's folder above it holds a card or a training state of a
/// world-vgg16 run.
pub fn is_kept_checkpoint(path: &std::path::Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    let Some(run) = dir.parent() else {
        return false;
    };
    if !path.is_file() || dir.file_name() != Some("checkpoints".as_ref()) {
        return false;
    }
    let state = super::state_path(run);
    if state.is_file() {
        return is_training_state(&state);
    }
    crate::fsutil::read_text(&run.join("model.json"), "model card")
        .is_ok_and(|t| t.contains("gandissect train world-vgg16"))
}

/// The network of a weights file a world-vgg16 run kept in its `checkpoints/` folder, as a
/// classifier over the world's classes at the trainer's input size.
pub fn load_kept_checkpoint(
    path: &std::path::Path,
    device: tch::Device,
) -> Result<crate::classify::Classifier> {
    let tensors = Tensor::read_safetensors(path)
        .map_err(|e| anyhow::anyhow!("cannot read the checkpoint {} ({e})", path.display()))?;
    world_classifier(tensors, path, device)
}

/// A world classifier from its torchvision-layout tensors.
fn world_classifier(
    net: Vec<(String, Tensor)>,
    path: &std::path::Path,
    device: tch::Device,
) -> Result<crate::classify::Classifier> {
    let sd = crate::nets::checkpoint::StateDict::from_tensors(net, path);
    let vgg = Vgg::from_state_dict(sd, Normalization::imagenet(), device)?;
    let classes = SceneClass::ALL
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let name = path.file_stem().unwrap_or_default().to_string_lossy();
    crate::classify::Classifier::new(vgg, INPUT_SIZE, classes, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_outside_their_ranges_are_refused() {
        assert!(Recipe::SHIPPED.check().is_ok());
        type Spoil = fn(&mut Recipe);
        let bad: [(Spoil, &str); 7] = [
            (|r| r.sparsity = -0.1, "sparsity"),
            (|r| r.sparsity = f64::NAN, "sparsity"),
            (|r| r.label_smoothing = 1.0, "label smoothing"),
            (|r| r.label_smoothing = -0.2, "label smoothing"),
            (|r| r.concentration = -1.0, "concentration"),
            (|r| r.balance = f64::INFINITY, "balance"),
            (|r| r.selectivity = -0.5, "selectivity"),
        ];
        for (spoil, name) in bad {
            let mut r = Recipe::SHIPPED;
            spoil(&mut r);
            let err = r.check().unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn concentration_and_imbalance_span_their_ranges() {
        let units = 16;
        let even = Tensor::ones([4, units], (Kind::Float, tch::Device::Cpu));
        let one_hot = Tensor::zeros([4, units], (Kind::Float, tch::Device::Cpu));
        let _ = one_hot.narrow(1, 3, 1).fill_(2.0);
        let c = |t: &Tensor| f64::try_from(concentration(t)).unwrap();
        let b = |t: &Tensor| f64::try_from(usage_imbalance(t)).unwrap();
        assert!((c(&even) - 1.0).abs() < 1e-4);
        assert!((c(&one_hot) - 0.25).abs() < 1e-4);
        assert!((b(&even) - 1.0).abs() < 1e-4);
        assert!((b(&one_hot) - units as f64).abs() < 1e-3);
        // Each image on its own unit: concentrated per image, yet balanced over the batch.
        let diagonal = Tensor::eye(units, (Kind::Float, tch::Device::Cpu));
        assert!((c(&diagonal) - 0.25).abs() < 1e-4);
        assert!((b(&diagonal) - 1.0).abs() < 1e-4);
    }

    #[test]
    fn recipes_are_described_by_their_terms_that_are_on() {
        assert_eq!(
            Recipe::SHIPPED.describe(),
            "label smoothing 0.1; concentration 1, balance 0.05 on relu5_3"
        );
        let plain = Recipe {
            sparsity: 0.0,
            label_smoothing: 0.0,
            concentration: 0.0,
            balance: 0.0,
            selectivity: 0.0,
        };
        assert_eq!(plain.describe(), "plain cross-entropy");
        let l1 = Recipe {
            sparsity: 0.02,
            ..plain
        };
        assert_eq!(l1.describe(), "an L1 penalty 0.02 on relu5_3");
    }

    #[test]
    fn class_sharing_is_low_for_units_of_one_class() {
        let cpu = (Kind::Float, tch::Device::Cpu);
        // Four images of classes 0, 1, 2, 3 (of 5); unit u active on class u only.
        let labels = Tensor::from_slice(&[0i64, 1, 2, 3]);
        let s = |t: &Tensor| f64::try_from(class_sharing(t, &labels, 5)).unwrap();
        assert!((s(&Tensor::eye(4, cpu)) - 0.5).abs() < 1e-4);
        assert!((s(&Tensor::ones([4, 4], cpu)) - 1.0).abs() < 1e-4);
        // A silent unit does not count; one unit shared by two classes sits in between.
        let one = Tensor::eye(4, cpu);
        let _ = one.narrow(1, 3, 1).fill_(0.0);
        assert!((s(&one) - 0.5).abs() < 1e-4);
        let _ = one.get(1).get(0).fill_(1.0);
        let v = s(&one);
        assert!(v > 0.55 && v < 0.7, "{v}");
    }
}
