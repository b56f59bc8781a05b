//! Training the world generator adversarially: the netdissect ProGAN layout at 64×64 against a
//! mirrored discriminator, non-saturating logistic loss, a lazy R1 gradient penalty on real
//! images, Adam (β₁ = 0, β₂ = 0.99) and an exponential moving average of the generator's
//! weights (the average is what gets shipped).

use super::adam::Adam;
use super::data::{step_seeds, world_batch};
use super::discriminator::Discriminator;
use super::{RunOptions, Trainer, named_params, state};
use crate::nets::checkpoint::StateDict;
use crate::nets::layered::LayeredNet;
use crate::nets::proggan::ProGan;
use anyhow::Result;
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor, nn};

/// Channel sizes of the shipped generator `[z, 4×4, 8×8, 16×16, 32×32, 64×64]`.
pub const SIZES: [i64; 6] = [128, 128, 128, 64, 32, 16];
const LR: f64 = 2e-3;
const R1_GAMMA: f64 = 1.0;
const R1_EVERY: i64 = 4;
const EMA_BETA: f64 = 0.999;

fn zero_grads(params: &[(String, Tensor)]) {
    for (_, p) in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
}

/// The generator's training run.
pub struct GanTrainer {
    g_vs: nn::VarStore,
    g: ProGan,
    d_vs: nn::VarStore,
    d: Discriminator,
    ema: Vec<(String, Tensor)>,
    g_opt: Adam,
    d_opt: Adam,
    opts: RunOptions,
}

impl GanTrainer {
    /// Fresh networks, seeded from the run's seed.
    pub fn new(opts: &RunOptions) -> Result<Self> {
        tch::manual_seed(opts.seed as i64);
        let g_vs = nn::VarStore::new(opts.device);
        let g = ProGan::trainable(&g_vs.root(), &SIZES)?;
        let d_vs = nn::VarStore::new(opts.device);
        let d = Discriminator::new(&d_vs.root(), &SIZES);
        let ema = named_params(&g_vs)
            .into_iter()
            .map(|(k, t)| (k, t.detach().copy()))
            .collect();
        let adam = || Adam::new(LR, 0.0, 0.99, 1e-8);
        Ok(Self {
            g_vs,
            g,
            d_vs,
            d,
            ema,
            g_opt: adam(),
            d_opt: adam(),
            opts: opts.clone(),
        })
    }

    /// The averaged generator weights in checkpoint layout.
    pub fn averaged_weights(&self) -> Vec<(String, Tensor)> {
        self.ema
            .iter()
            .map(|(k, t)| (k.clone(), t.shallow_clone()))
            .collect()
    }

    /// The averaged generator, ready for inference.
    pub fn averaged_generator(&self, device: Device) -> Result<ProGan> {
        ProGan::from_state_dict(
            StateDict::from_tensors(self.averaged_weights(), "training"),
            device,
        )
    }

    /// Latent noise for `step`, drawn from its own stream (not libtorch's global generator),
    /// so that a resumed run draws exactly what an uninterrupted one would.
    fn noise(&self, step: i64, salt: u64) -> Result<Tensor> {
        let stream =
            crate::world::Rng::new(self.opts.seed, (step as u64) * 2 + salt).next_u64() as u32;
        crate::zsample::z_dataset(stream, self.opts.batch, SIZES[0] as usize, self.opts.device)
    }
}

impl Trainer for GanTrainer {
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({"model": "world-proggan", "sizes": SIZES, "lr": LR, "r1_gamma": R1_GAMMA,
            "r1_every": R1_EVERY, "ema_beta": EMA_BETA, "steps": self.opts.steps,
            "batch": self.opts.batch, "seed": self.opts.seed})
    }

    /// The learning rate is constant, so a run may be extended or stopped where it stands.
    fn open_ended(&self) -> bool {
        true
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = Vec::new();
        out.extend(
            named_params(&self.g_vs)
                .into_iter()
                .map(|(k, t)| (format!("g.{k}"), t)),
        );
        out.extend(
            named_params(&self.d_vs)
                .into_iter()
                .map(|(k, t)| (format!("d.{k}"), t)),
        );
        out.extend(
            self.ema
                .iter()
                .map(|(k, t)| (format!("ema.{k}"), t.shallow_clone())),
        );
        out.extend(self.g_opt.to_tensors("g_opt"));
        out.extend(self.d_opt.to_tensors("d_opt"));
        out
    }

    fn restore(&mut self, saved: &BTreeMap<String, Tensor>) -> Result<()> {
        state::restore_params(&named_params(&self.g_vs), saved, "g.")?;
        state::restore_params(&named_params(&self.d_vs), saved, "d.")?;
        state::restore_params(&self.ema, saved, "ema.")?;
        self.g_opt.load_tensors("g_opt", saved)?;
        self.d_opt.load_tensors("d_opt", saved)
    }

    fn step(&mut self, step: i64) -> Result<Vec<(&'static str, f64)>> {
        let g_params = named_params(&self.g_vs);
        let d_params = named_params(&self.d_vs);
        let real = world_batch(
            &step_seeds(self.opts.seed, step, self.opts.batch),
            false,
            self.opts.device,
        )
        .images;

        // discriminator
        let z = self.noise(step, 0)?;
        let fake = tch::no_grad(|| self.g.forward(&z));
        let d_real = self.d.forward(&real);
        let d_fake = self.d.forward(&fake);
        let mut loss_d =
            d_fake.softplus().mean(Kind::Float) + (-&d_real).softplus().mean(Kind::Float);
        let mut r1_value = f64::NAN;
        if step % R1_EVERY == 0 {
            let real_rg = real.detach().set_requires_grad(true);
            let score = self.d.forward(&real_rg).sum(Kind::Float);
            let grad = Tensor::run_backward(&[score], &[&real_rg], true, true).remove(0);
            let r1 = grad
                .square()
                .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float)
                .mean(Kind::Float);
            r1_value = f64::try_from(&r1)?;
            loss_d += r1 * (R1_GAMMA / 2.0 * R1_EVERY as f64);
        }
        loss_d.backward();
        self.d_opt.step(&d_params);
        zero_grads(&g_params);

        // generator
        let z = self.noise(step, 1)?;
        let loss_g = (-self.d.forward(&self.g.forward(&z)))
            .softplus()
            .mean(Kind::Float);
        loss_g.backward();
        self.g_opt.step(&g_params);
        zero_grads(&d_params);

        // moving average
        tch::no_grad(|| {
            for ((_, e), (_, p)) in self.ema.iter_mut().zip(&g_params) {
                let _ = e.g_mul_scalar_(EMA_BETA).g_add_(&(p * (1.0 - EMA_BETA)));
            }
        });
        let mut out = vec![("d", f64::try_from(loss_d)?), ("g", f64::try_from(loss_g)?)];
        if !r1_value.is_nan() {
            out.push(("r1", r1_value));
        }
        Ok(out)
    }
}
