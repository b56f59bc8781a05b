//! Activation maximisation for a generator: instead of pixels, optimise what the generator
//! starts from — its latent vectors, or the features of an earlier layer — so the images stay
//! ones the generator can draw. The start is a list of image ids (the images `generate` draws
//! for them), and a penalty keeps the optimised input near its start's scale.

use super::maximize::Step;
use super::objective::{Position, unit_activation};
use crate::cut::Cut;
use crate::nets::layered::LayeredNet;
use crate::nets::proggan::ProGan;
use crate::progress;
use crate::zsample;
use anyhow::{Result, bail};
use serde::Serialize;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Settings of a generator maximisation.
#[derive(Clone, Debug, Serialize)]
pub struct LatentOptions {
    /// The layer whose units are excited.
    pub layer: String,
    /// The units (one, or a concept's top-k), averaged.
    pub units: Vec<i64>,
    /// Which positions count.
    pub position: Position,
    /// Optimise this earlier layer's features instead of the latent.
    pub from: Option<String>,
    /// Image ids to start from (rows of the latent stream).
    pub ids: Vec<u64>,
    /// Seed of the latent stream.
    pub stream_seed: u32,
    /// Adam steps.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Weight of the penalty keeping the optimised input's mean square at its start's.
    pub prior: f64,
    /// Show a progress bar.
    pub progress: bool,
}

impl Default for LatentOptions {
    fn default() -> Self {
        Self {
            layer: "layer4".into(),
            units: vec![0],
            position: Position::Mean,
            from: None,
            ids: vec![0, 1, 2, 3],
            stream_seed: zsample::DEFAULT_STREAM_SEED,
            steps: 100,
            lr: 0.05,
            prior: 1.0,
            progress: false,
        }
    }
}

/// The result: the images before and after, and the objective per step.
pub struct MaximizedLatent {
    /// The generator's images of the starting ids, `[N, 3, H, W]`.
    pub before: Tensor,
    /// The images of the optimised inputs.
    pub after: Tensor,
    /// The objective per image at the start.
    pub start: Vec<f64>,
    /// The objective per step.
    pub trace: Vec<Step>,
}

fn to_vec(t: &Tensor) -> Vec<f64> {
    Vec::<f32>::try_from(t.detach().to_device(Device::Cpu).flatten(0, -1))
        .unwrap_or_default()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Optimises a generator's latents (or an earlier layer's features) to excite units.
pub fn maximize_latent(generator: &ProGan, opts: &LatentOptions) -> Result<MaximizedLatent> {
    if opts.steps == 0 || opts.ids.is_empty() || opts.ids.len() > 64 {
        bail!("a generator maximisation needs at least one step and 1 to 64 image ids");
    }
    if !(opts.lr > 0.0 && opts.lr.is_finite() && opts.prior >= 0.0 && opts.prior.is_finite()) {
        bail!("the learning rate must be positive and the prior weight ≥ 0");
    }
    let device = generator.device();
    let target = Cut::new(generator, &opts.layer)?;
    let channels = generator.channels(target.layer_index());
    if let Some(u) = opts.units.iter().find(|&&u| u < 0 || u >= channels) {
        bail!(
            "unit {u} is out of range: {} has {channels} units (0..{})",
            opts.layer,
            channels - 1
        );
    }
    if opts.units.is_empty() {
        bail!("no units to maximise");
    }
    let first = match &opts.from {
        None => 0,
        Some(from) => {
            let i = generator.layer_index(from)?;
            if i >= target.layer_index() {
                bail!(
                    "--from {from} must be a layer before {}; optimising starts there",
                    opts.layer
                );
            }
            i + 1
        }
    };
    let z = zsample::z_rows(
        opts.stream_seed,
        &opts.ids,
        generator.z_dim() as usize,
        device,
    )?;
    let start = tch::no_grad(|| generator.forward_range(&z, 0, first));
    let scale = start.square().mean(Kind::Float).detach();
    let run = |x: &Tensor| {
        let f = generator.forward_range(x, first, target.layer_index() + 1);
        unit_activation(&f, &opts.units, opts.position)
    };
    let start_value = tch::no_grad(|| run(&start));
    let vs = nn::VarStore::new(device);
    let x = vs.root().var_copy("input", &start);
    let mut adam = nn::Adam::default().build(&vs, opts.lr)?;
    let bar = opts
        .progress
        .then(|| progress::bar(opts.steps as u64, "steps"));
    let mut trace = Vec::with_capacity(opts.steps);
    for step in 0..opts.steps {
        let value = run(&x);
        let drift = (x.square().mean(Kind::Float) / &scale - 1.0).square();
        let loss = -value.mean(Kind::Float) + drift * opts.prior;
        adam.zero_grad();
        loss.backward();
        adam.step();
        trace.push(Step {
            step,
            objective: to_vec(&value),
            loss: loss.double_value(&[]),
        });
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let _guard = tch::no_grad_guard();
    let n = generator.num_layers();
    Ok(MaximizedLatent {
        before: generator.forward_range(&start, first, n),
        after: generator.forward_range(&x.detach(), first, n),
        start: to_vec(&start_value),
        trace,
    })
}
