//! Activation maximisation: images optimised from noise (Adam) to excite an [`Objective`],
//! built from a parametrisation ([`super::param`]), random transforms each step
//! ([`super::transform`]) and penalties ([`super::objective`]). Everything random is drawn from
//! the seed, so a run is reproducible.

use super::model::Model;
use super::objective::{self, Objective, Penalties};
use super::param::{ColourBasis, ImageParam, Space};
use super::transform::Transforms;
use crate::prng::SplitMix64;
use crate::progress;
use anyhow::{Result, bail};
use serde::Serialize;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Settings of a maximisation.
#[derive(Clone, Debug, Serialize)]
pub struct MaximizeOptions {
    /// Adam steps.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Images optimised together (different images with a diversity penalty).
    pub images: i64,
    /// Image side in pixels.
    pub size: i64,
    /// Where the image is optimised.
    pub space: Space,
    /// Whether colours are decorrelated with the world's colour statistics.
    pub decorrelate: bool,
    /// The random transforms.
    pub transforms: Transforms,
    /// The penalty weights.
    pub penalties: Penalties,
    /// The layer the diversity penalty compares when the objective has none (a class).
    pub diversity_layer: String,
    /// Seed of the starting noise and the transforms.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
}

impl Default for MaximizeOptions {
    fn default() -> Self {
        Self {
            steps: 256,
            lr: 0.05,
            images: 1,
            size: crate::world::SIZE as i64,
            space: Space::Fourier { decay: 1.0 },
            decorrelate: true,
            transforms: Transforms::default(),
            penalties: Penalties::default(),
            diversity_layer: super::saliency::DEFAULT_CAM_LAYER.into(),
            seed: 0,
            progress: false,
        }
    }
}

/// One step's values.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Step number, from 0.
    pub step: usize,
    /// The objective per image (on the transformed images the step saw).
    pub objective: Vec<f64>,
    /// The loss minimised: −mean objective + penalties.
    pub loss: f64,
}

/// The result of a maximisation.
pub struct Maximized {
    /// The images, `[N, 3, H, W]` in [−1, 1], untransformed.
    pub images: Tensor,
    /// The objective per step.
    pub trace: Vec<Step>,
    /// The objective of the final images, untransformed, per image.
    pub objective: Vec<f64>,
}

fn to_vec(t: &Tensor) -> Vec<f64> {
    Vec::<f32>::try_from(
        t.detach()
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .flatten(0, -1),
    )
    .unwrap_or_default()
    .into_iter()
    .map(f64::from)
    .collect()
}

/// Optimises images to excite `objective` on `model`.
pub fn maximize(model: &Model, objective: &Objective, opts: &MaximizeOptions) -> Result<Maximized> {
    if opts.steps == 0 || opts.images < 1 || opts.images > 64 {
        bail!(
            "maximisation needs at least one step and 1 to 64 images, not {} steps and {} images",
            opts.steps,
            opts.images
        );
    }
    if !(opts.lr > 0.0 && opts.lr.is_finite()) {
        bail!("the learning rate must be positive, not {}", opts.lr);
    }
    opts.transforms.validate()?;
    opts.penalties.validate()?;
    let device = model.net().device();
    let colour = if opts.decorrelate {
        ColourBasis::world()
    } else {
        ColourBasis::identity()
    };
    let param = ImageParam::new(opts.space, colour, opts.size, opts.size, device)?;
    objective::validate(
        model,
        objective,
        &param.image(&param.init(1, opts.seed, device)),
    )?;
    let diversity_layer = (opts.penalties.diversity > 0.0).then_some(opts.diversity_layer.as_str());

    let vs = nn::VarStore::new(device);
    let p = vs
        .root()
        .var_copy("image", &param.init(opts.images, opts.seed, device));
    let mut adam = nn::Adam::default().build(&vs, opts.lr)?;
    let mut rng = SplitMix64::stream(opts.seed, 0x7472_616e);
    let bar = opts
        .progress
        .then(|| progress::bar(opts.steps as u64, "steps"));
    let mut trace = Vec::with_capacity(opts.steps);
    for step in 0..opts.steps {
        let images = param.image(&p);
        let seen = opts.transforms.apply(&images, &mut rng);
        let (value, features) = objective::evaluate(model, objective, &seen, diversity_layer)?;
        let mut loss = -value.mean(Kind::Float);
        if opts.penalties.tv > 0.0 {
            loss += objective::total_variation(&images).mean(Kind::Float) * opts.penalties.tv;
        }
        if opts.penalties.l2 > 0.0 {
            loss += objective::l2(&images).mean(Kind::Float) * opts.penalties.l2;
        }
        if let (true, Some(f)) = (opts.penalties.diversity > 0.0, &features) {
            loss += objective::similarity(f) * opts.penalties.diversity;
        }
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
    let images = param.image(&p).detach();
    let (value, _) = objective::evaluate(model, objective, &images, None)?;
    Ok(Maximized {
        objective: to_vec(&value),
        images,
        trace,
    })
}
