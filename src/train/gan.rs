//! Training the world generator adversarially: the netdissect ProGAN layout at 64×64 against a
//! mirrored discriminator, non-saturating logistic loss, a lazy R1 gradient penalty on real
//! images, Adam (β₁ = 0, β₂ = 0.99) and an exponential moving average of the generator's
//! weights (the average is what gets shipped). A run may also continue a trained generator,
//! for example at a lower learning rate: from the whole training state its directory holds
//! (networks, average and optimizer moments), or else from the generator's weights alone with a
//! fresh discriminator, which then trains alone for the first steps (the warm-up) so that the
//! generator's first updates follow a discriminator that already tells the two apart.

use super::adam::Adam;
use super::data::step_seeds;
use super::discriminator::Discriminator;
use super::{RunOptions, Trainer, named_params, state};
use crate::nets::checkpoint::StateDict;
use crate::nets::layered::LayeredNet;
use crate::nets::proggan::ProGan;
use crate::sample::world_batch;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn};

/// Default channel sizes `[z, 4×4, 8×8, 16×16, 32×32, 64×64]`: the shipped generator's.
pub const SIZES: [i64; 6] = crate::zoo::WORLD_GENERATOR_SIZES;
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

/// How a generator run starts.
#[derive(Clone, Debug)]
pub struct Start {
    /// A trained generator's directory to continue from (its `train_state.safetensors` if it
    /// has one, else its `weights.safetensors`), or `None` for fresh weights.
    pub from: Option<PathBuf>,
    /// Steps at the start in which only the discriminator trains (by default 200 when only a
    /// generator's weights are continued, else none).
    pub warmup: Option<i64>,
    /// Adam's learning rate, for both networks.
    pub lr: f64,
    /// Channel sizes `[z, 4×4, 8×8, 16×16, 32×32, 64×64]`.
    pub sizes: Vec<i64>,
    /// The decay of the weights' moving average (the shipped generator's 0.999 remembers
    /// about 1000 steps; a short run wants a shorter memory).
    pub ema_beta: f64,
}

impl Default for Start {
    fn default() -> Self {
        Self {
            from: None,
            warmup: None,
            lr: LR,
            sizes: SIZES.to_vec(),
            ema_beta: EMA_BETA,
        }
    }
}

/// What a continued run starts from.
enum Earlier {
    /// A whole training state (`g.`, `d.`, `ema.`, optimizer moments).
    State(BTreeMap<String, Tensor>),
    /// The averaged generator's weights only.
    Weights(BTreeMap<String, Tensor>),
}

impl Start {
    /// The training-command flags that give this start, beyond the defaults.
    pub fn flags(&self) -> String {
        let mut flags = String::new();
        if let Some(dir) = &self.from {
            flags += &format!(" --continue-from {}", dir.display());
        }
        if let Some(warmup) = self.warmup {
            flags += &format!(" --warmup {warmup}");
        }
        if self.lr != LR {
            flags += &format!(" --lr {}", self.lr);
        }
        if self.sizes != SIZES {
            let sizes: Vec<String> = self.sizes.iter().map(i64::to_string).collect();
            flags += &format!(" --sizes {}", sizes.join(","));
        }
        if self.ema_beta != EMA_BETA {
            flags += &format!(" --ema-beta {}", self.ema_beta);
        }
        flags
    }

    /// What `self.from` holds, if anything.
    fn earlier(&self) -> Result<Option<Earlier>> {
        let Some(dir) = &self.from else {
            return Ok(None);
        };
        let read = |path: PathBuf| -> Result<BTreeMap<String, Tensor>> {
            let tensors = Tensor::read_safetensors(&path).with_context(|| {
                format!(
                    "cannot read the generator to continue from, {} (name a directory written by `gandissect train world-proggan`)",
                    path.display()
                )
            })?;
            Ok(tensors.into_iter().collect())
        };
        let state = super::state_path(dir);
        Ok(Some(if state.exists() {
            Earlier::State(read(state)?)
        } else {
            Earlier::Weights(read(dir.join("weights.safetensors"))?)
        }))
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
    /// The start, its warm-up resolved.
    start: Start,
    /// Whether the run continued a whole training state (not only a generator's weights).
    from_state: bool,
}

impl GanTrainer {
    /// Fresh networks, seeded from the run's seed.
    pub fn new(opts: &RunOptions) -> Result<Self> {
        Self::starting(opts, Start::default())
    }

    /// Networks for a run that starts as `start` says: everything from a continued training
    /// state; or the generator (and its average) from a trained one's weights with a fresh
    /// discriminator; or all fresh. Fresh weights are seeded from the run's seed.
    pub fn starting(opts: &RunOptions, mut start: Start) -> Result<Self> {
        if let Some(warmup) = start.warmup
            && warmup < 0
        {
            bail!("the warm-up must be zero or more steps, not {warmup}");
        }
        if !(start.lr > 0.0 && start.lr.is_finite()) {
            bail!("the learning rate must be positive, not {}", start.lr);
        }
        if !(0.0..1.0).contains(&start.ema_beta) {
            bail!(
                "the moving average's decay is in [0, 1), not {}",
                start.ema_beta
            );
        }
        if start.sizes.len() != SIZES.len() {
            bail!(
                "a world generator has {} channel sizes (latent, then 4×4 to 64×64), not {:?}",
                SIZES.len(),
                start.sizes
            );
        }
        if let Some(from) = &start.from
            && same_dir(from, &opts.out)
        {
            bail!(
                "the run would overwrite the generator it continues ({}); write to another --out and move it afterwards",
                from.display()
            );
        }
        tch::manual_seed(opts.seed as i64);
        let g_vs = nn::VarStore::new(opts.device);
        let g = ProGan::trainable(&g_vs.root(), &start.sizes)?;
        let earlier = start.earlier()?;
        if let Some(Earlier::Weights(weights)) = &earlier {
            state::restore_params(&named_params(&g_vs), weights, "")
                .map_err(|e| sizes_error(&e, &start.sizes))?;
            start.warmup.get_or_insert(200);
        }
        let d_vs = nn::VarStore::new(opts.device);
        let d = Discriminator::new(&d_vs.root(), &start.sizes);
        let ema = named_params(&g_vs)
            .into_iter()
            .map(|(k, t)| (k, t.detach().copy()))
            .collect();
        let adam = || Adam::new(start.lr, 0.0, 0.99, 1e-8);
        let mut trainer = Self {
            g_vs,
            g,
            d_vs,
            d,
            ema,
            g_opt: adam(),
            d_opt: adam(),
            opts: opts.clone(),
            start,
            from_state: matches!(earlier, Some(Earlier::State(_))),
        };
        if let Some(Earlier::State(saved)) = &earlier {
            let sizes = trainer.start.sizes.clone();
            trainer
                .restore(saved)
                .map_err(|e| sizes_error(&e, &sizes))?;
        }
        Ok(trainer)
    }

    /// How the run started (its warm-up resolved).
    pub fn start(&self) -> &Start {
        &self.start
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

    /// Steps in which only the discriminator trains.
    fn warmup(&self) -> i64 {
        self.start.warmup.unwrap_or(0)
    }

    /// Latent noise for `step`, drawn from its own stream (not libtorch's global generator),
    /// so that a resumed run draws exactly what an uninterrupted one would.
    fn noise(&self, step: i64, salt: u64) -> Result<Tensor> {
        let stream = crate::prng::SplitMix64::stream(self.opts.seed, (step as u64) * 2 + salt)
            .next_u64() as u32;
        let z_dim = self.start.sizes[0] as usize;
        crate::zsample::z_dataset(stream, self.opts.batch, z_dim, self.opts.device)
    }
}

impl Trainer for GanTrainer {
    fn settings(&self) -> serde_json::Value {
        let mut s = serde_json::json!({"model": "world-proggan", "sizes": self.start.sizes, "lr": self.start.lr,
            "r1_gamma": R1_GAMMA, "r1_every": R1_EVERY, "ema_beta": self.start.ema_beta,
            "steps": self.opts.steps, "batch": self.opts.batch, "seed": self.opts.seed});
        if let Some(from) = &self.start.from {
            s["continues"] = serde_json::json!(from.display().to_string());
            if self.from_state {
                s["continues_state"] = serde_json::json!(true);
            }
            s["warmup"] = serde_json::json!(self.warmup());
        }
        s
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

    fn weights(&self) -> Vec<(String, Tensor)> {
        self.averaged_weights()
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
        let mut out = vec![("d", f64::try_from(loss_d)?)];
        if !r1_value.is_nan() {
            out.push(("r1", r1_value));
        }
        if step < self.warmup() {
            return Ok(out);
        }

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
                let beta = self.start.ema_beta;
                let _ = e.g_mul_scalar_(beta).g_add_(&(p * (1.0 - beta)));
            }
        });
        out.insert(1, ("g", f64::try_from(loss_g)?));
        Ok(out)
    }
}

fn sizes_error(e: &anyhow::Error, sizes: &[i64]) -> anyhow::Error {
    anyhow::anyhow!("{e}: the generator to continue from must have this run's sizes {sizes:?}")
}

/// Whether two paths name the same directory (by their canonical forms where they exist).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDir;

    fn opts(out: &Path) -> RunOptions {
        RunOptions {
            out: out.to_path_buf(),
            steps: 3,
            batch: 2,
            seed: 3,
            checkpoint_every: 10,
            device: Device::Cpu,
            eval_samples: 4,
            keep_checkpoints: false,
        }
    }

    fn snapshot(params: &[(String, Tensor)]) -> Vec<Tensor> {
        params.iter().map(|(_, t)| t.detach().copy()).collect()
    }

    fn all_equal(a: &[Tensor], b: &[(String, Tensor)]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, (_, y))| x.equal(y))
    }

    /// A continued run starts from the given weights, keeps the generator still while the
    /// fresh discriminator warms up, and then trains both.
    #[test]
    fn a_continued_run_starts_from_the_given_generator_and_warms_up_the_discriminator() {
        let dir = ScratchDir::new("gan-continue").unwrap();
        let (from, out) = (dir.join("from"), dir.join("out"));
        std::fs::create_dir_all(&from).unwrap();
        let earlier = GanTrainer::new(&opts(&from)).unwrap();
        let weights: Vec<(String, Tensor)> = earlier
            .averaged_weights()
            .into_iter()
            .map(|(k, t)| (k, t.detach() * 0.5 + 0.25))
            .collect();
        Tensor::write_safetensors(&weights, from.join("weights.safetensors")).unwrap();

        let start = Start {
            from: Some(from.clone()),
            warmup: Some(2),
            ..Start::default()
        };
        let mut t = GanTrainer::starting(&opts(&out), start).unwrap();
        let given = snapshot(&weights);
        assert!(all_equal(&given, &named_params(&t.g_vs)));
        assert!(all_equal(&given, &t.ema));
        let d0 = snapshot(&named_params(&t.d_vs));

        for step in 0..2 {
            let losses = t.step(step).unwrap();
            assert!(losses.iter().all(|(k, _)| *k != "g"), "{losses:?}");
        }
        assert!(all_equal(&given, &named_params(&t.g_vs)));
        assert!(all_equal(&given, &t.ema));
        assert!(!all_equal(&d0, &named_params(&t.d_vs)));

        let losses = t.step(2).unwrap();
        assert!(losses.iter().any(|(k, _)| *k == "g"), "{losses:?}");
        assert!(!all_equal(&given, &named_params(&t.g_vs)));
        assert!(!all_equal(&given, &t.ema));
        assert_eq!(t.settings()["warmup"], 2);
        assert_eq!(t.settings()["continues"], from.display().to_string());
        let by_default = Start {
            from: Some(from.clone()),
            ..Start::default()
        };
        let t = GanTrainer::starting(&opts(&out), by_default).unwrap();
        assert_eq!(t.settings()["warmup"], 200);
        assert_eq!(
            t.start().flags(),
            format!(" --continue-from {} --warmup 200", from.display())
        );
    }

    #[test]
    fn bad_starts_are_refused_with_the_reason() {
        let dir = ScratchDir::new("gan-continue-refusals").unwrap();
        let out = dir.join("out");
        let refused = |start: Start, out: &Path| match GanTrainer::starting(&opts(out), start) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        };
        let from = |warmup: i64| Start {
            from: Some(dir.to_path_buf()),
            warmup: Some(warmup),
            ..Start::default()
        };
        let cases = [
            (from(0), &*dir, "would overwrite the generator it continues"),
            (from(-1), &out, "warm-up must be zero or more"),
            (from(0), &out, "cannot read the generator to continue from"),
            (
                Start {
                    lr: 0.0,
                    ..Start::default()
                },
                &out,
                "learning rate must be positive",
            ),
            (
                Start {
                    sizes: vec![128, 128, 64],
                    ..Start::default()
                },
                &out,
                "6 channel sizes",
            ),
            (
                Start {
                    ema_beta: 1.0,
                    ..Start::default()
                },
                &out,
                "moving average's decay",
            ),
        ];
        for (start, out, reason) in cases {
            let e = refused(start, out);
            assert!(e.contains(reason), "{e}");
        }

        let small = nn::VarStore::new(Device::Cpu);
        ProGan::trainable(&small.root(), &[8, 8, 8]).unwrap();
        Tensor::write_safetensors(&named_params(&small), dir.join("weights.safetensors")).unwrap();
        let e = refused(from(0), &out);
        assert!(e.contains("must have this run's sizes"), "{e}");
    }

    /// A run with other channel sizes trains and averages a generator of those sizes, and its
    /// state cannot be continued by a run of the default sizes.
    #[test]
    fn a_run_of_other_sizes_trains_a_generator_of_those_sizes() {
        let dir = ScratchDir::new("gan-sizes").unwrap();
        let sizes = vec![16, 16, 24, 8, 8, 4];
        let o = opts(&dir.join("run"));
        std::fs::create_dir_all(&o.out).unwrap();
        let mut t = GanTrainer::starting(
            &o,
            Start {
                sizes: sizes.clone(),
                ..Start::default()
            },
        )
        .unwrap();
        crate::train::run(&mut t, &o).unwrap();
        assert_eq!(t.settings()["sizes"], serde_json::json!(sizes));
        let g = t.averaged_generator(Device::Cpu).unwrap();
        assert_eq!(g.sizes(), sizes);
        assert_eq!(t.start().flags(), " --sizes 16,16,24,8,8,4");
        let z = Tensor::randn([2, 16], (Kind::Float, Device::Cpu));
        assert_eq!(g.forward(&z).size(), [2, 3, 64, 64]);
        let start = Start {
            from: Some(o.out.clone()),
            ..Start::default()
        };
        let e = GanTrainer::starting(&opts(&dir.join("other")), start)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("must have this run's sizes"), "{e}");
    }

    /// A run continued from a directory with a training state takes all of it (both networks,
    /// the average and the optimizer moments) and goes on at its own learning rate.
    #[test]
    fn a_run_continued_from_a_training_state_takes_all_of_it_at_its_own_learning_rate() {
        let dir = ScratchDir::new("gan-continue-state").unwrap();
        let (from, out) = (dir.join("from"), dir.join("out"));
        std::fs::create_dir_all(&from).unwrap();
        let mut o = opts(&from);
        o.steps = 2;
        let mut earlier = GanTrainer::new(&o).unwrap();
        crate::train::run(&mut earlier, &o).unwrap();
        let start = Start {
            from: Some(from.clone()),
            lr: 1e-4,
            ..Start::default()
        };
        let t = GanTrainer::starting(&opts(&out), start).unwrap();
        let (a, b) = (earlier.state(), t.state());
        assert_eq!(a.len(), b.len());
        for ((ka, ta), (kb, tb)) in a.iter().zip(&b) {
            assert_eq!(ka, kb);
            assert!(ta.equal(tb), "{ka} differs");
        }
        assert_eq!((t.g_opt.lr, t.d_opt.lr), (1e-4, 1e-4));
        assert_eq!(t.settings()["lr"], 1e-4);
        assert_eq!(t.settings()["continues_state"], true);
        assert_eq!(t.settings()["warmup"], 0);
        assert_eq!(
            t.start().flags(),
            format!(" --continue-from {} --lr 0.0001", from.display())
        );
        let fresh = GanTrainer::starting(&opts(&out), Start::default()).unwrap();
        assert!(fresh.settings().get("continues_state").is_none());
    }
}
