//! Training the world segmenter: per-pixel cross-entropy against the world's true concept maps.

use super::adam::Adam;
use super::data::step_seeds;
use super::{RunOptions, Trainer, named_params, state};
use crate::sample::world_batch;
use crate::segment::worldseg::WorldSegNet;
use crate::world;
use anyhow::Result;
use std::collections::BTreeMap;
use tch::{Kind, Reduction, Tensor, nn};

/// Base width of the shipped segmenter.
pub const WIDTH: i64 = 16;
/// Peak learning rate.
const LR: f64 = 2e-3;

/// Learning rate at `step` of `steps`: cosine decay from `peak` to a tenth of it.
pub fn cosine_lr(peak: f64, step: i64, steps: i64) -> f64 {
    let t = step as f64 / steps.max(1) as f64;
    peak * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

/// The segmenter's training run.
pub struct SegTrainer {
    vs: nn::VarStore,
    net: WorldSegNet,
    opt: Adam,
    opts: RunOptions,
}

impl SegTrainer {
    /// A fresh network, seeded from the run's seed.
    pub fn new(opts: &RunOptions) -> Self {
        tch::manual_seed(opts.seed as i64);
        let vs = nn::VarStore::new(opts.device);
        let net = WorldSegNet::trainable(&vs.root(), WIDTH, world::CONCEPTS.len() as i64);
        Self {
            vs,
            net,
            opt: Adam::new(LR, 0.9, 0.999, 1e-8),
            opts: opts.clone(),
        }
    }

    /// The network being trained.
    pub fn net(&self) -> &WorldSegNet {
        &self.net
    }
}

impl Trainer for SegTrainer {
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({"model": "world-seg", "width": WIDTH, "lr": LR, "steps": self.opts.steps,
            "batch": self.opts.batch, "seed": self.opts.seed})
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        state::net_and_optimizer(&self.vs, &self.opt)
    }

    fn restore(&mut self, saved: &BTreeMap<String, Tensor>) -> Result<()> {
        state::restore_net_and_optimizer(&self.vs, &mut self.opt, saved)
    }

    fn weights(&self) -> Vec<(String, Tensor)> {
        self.net.named_tensors()
    }

    fn step(&mut self, step: i64) -> Result<Vec<(&'static str, f64)>> {
        let b = world_batch(
            &step_seeds(self.opts.seed, step, self.opts.batch),
            false,
            self.opts.device,
        );
        let logits = self.net.logits(&b.images);
        let loss = logits.cross_entropy_loss::<Tensor>(&b.labels, None, Reduction::Mean, -100, 0.0);
        loss.backward();
        self.opt.lr = cosine_lr(LR, step, self.opts.steps);
        self.opt.step(&named_params(&self.vs));
        let acc = tch::no_grad(|| {
            logits
                .argmax(1, false)
                .eq_tensor(&b.labels)
                .to_kind(Kind::Float)
                .mean(Kind::Float)
        });
        Ok(vec![
            ("loss", f64::try_from(loss)?),
            ("acc", f64::try_from(acc)?),
        ])
    }
}
