//! Training the default models on the procedural world: a loop that saves its state
//! periodically and resumes after a kill, and one trainer per model.

pub mod adam;
pub mod classifier;
pub mod data;
pub mod discriminator;
pub mod export;
pub mod gan;
pub mod job;
pub mod label_noise;
pub mod quality;
pub mod seg;
pub mod state;

pub use job::{DefaultModel, TrainJob, evaluate};

use crate::progress;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Tensor};

/// Options every training run shares.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The model directory to write (weights, card, and the resumable `train_state.safetensors`).
    pub out: PathBuf,
    /// Total optimisation steps.
    pub steps: i64,
    /// Scenes per step.
    pub batch: usize,
    /// Seed of the run (initial weights, data order, noise).
    pub seed: u64,
    /// Save the training state every this many steps.
    pub checkpoint_every: i64,
    /// Where to train.
    pub device: Device,
    /// World seeds (`0..eval_samples`) the finished model is measured on.
    pub eval_samples: u64,
    /// Keep a numbered copy of the weights at the start and at every save of the state
    /// ([`checkpoint_path`]), for studying how the representation forms during training.
    pub keep_checkpoints: bool,
}

/// One model's training procedure.
pub trait Trainer {
    /// What identifies the run; a saved state with other settings is refused.
    fn settings(&self) -> serde_json::Value;
    /// Everything needed to resume: parameters, optimizer moments, averages.
    fn state(&self) -> Vec<(String, Tensor)>;
    /// Restores [`Self::state`].
    fn restore(&mut self, saved: &BTreeMap<String, Tensor>) -> Result<()>;
    /// The weights the finished model ships, in its checkpoint layout.
    fn weights(&self) -> Vec<(String, Tensor)>;
    /// Runs optimisation step `step` (0-based) and returns named losses for the progress line.
    fn step(&mut self, step: i64) -> Result<Vec<(&'static str, f64)>>;
    /// Whether the schedule is independent of the total step count, so that a saved run may
    /// be resumed with another `--steps` (extended, or finished early where it stands).
    fn open_ended(&self) -> bool {
        false
    }
}

/// How a run went.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunSummary {
    /// Steps completed.
    pub steps: i64,
    /// The step the run resumed from (0 for a fresh start).
    pub resumed_from: i64,
    /// Wall time over all sessions of the run, in seconds.
    pub wall_seconds: f64,
    /// The last losses.
    pub last_losses: Vec<(String, f64)>,
}

/// The resumable state file of a model directory.
pub fn state_path(out: &Path) -> PathBuf {
    out.join("train_state.safetensors")
}

/// The directory of the numbered weight copies a run keeps (`--keep-checkpoints`).
pub fn checkpoints_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// The kept copy of the weights after `step` steps.
pub fn checkpoint_path(out: &Path, step: i64) -> PathBuf {
    checkpoints_dir(out).join(format!("step_{step:06}.safetensors"))
}

/// Writes the kept copy of the weights after `step` steps.
fn keep_checkpoint(trainer: &dyn Trainer, out: &Path, step: i64) -> Result<()> {
    std::fs::create_dir_all(checkpoints_dir(out))?;
    export::write_weights(&checkpoint_path(out, step), &trainer.weights())
}

/// Runs `trainer` to `opts.steps`, resuming from a saved state in `opts.out` if there is one.
pub fn run(trainer: &mut dyn Trainer, opts: &RunOptions) -> Result<RunSummary> {
    let path = state_path(&opts.out);
    let settings = trainer.settings();
    let free: &[&str] = if trainer.open_ended() {
        &["steps"]
    } else {
        &[]
    };
    let (mut step, mut wall) = match state::load(&path, &settings, free)? {
        Some(saved) => {
            trainer.restore(&saved.tensors)?;
            let wall = saved
                .tensors
                .get("run.wall_seconds")
                .map(|t| f64::try_from(t).unwrap_or(0.0))
                .unwrap_or(0.0);
            (saved.step, wall)
        }
        None => (0, 0.0),
    };
    let resumed_from = step;
    if opts.keep_checkpoints && step == 0 {
        keep_checkpoint(trainer, &opts.out, 0)?;
    }
    let bar = progress::bar(opts.steps as u64, "training");
    bar.set_position(step as u64);
    let mut last = Vec::new();
    let mut since = Instant::now();
    let save = |step: i64, wall: f64, trainer: &dyn Trainer| {
        let mut tensors = trainer.state();
        tensors.push(("run.wall_seconds".into(), Tensor::from(wall)));
        state::save(&path, &settings, step, tensors)
    };
    while step < opts.steps {
        last = trainer.step(step)?;
        step += 1;
        bar.set_position(step as u64);
        let msg: Vec<String> = last.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
        bar.set_message(msg.join(" "));
        if step % opts.checkpoint_every == 0 || step == opts.steps {
            wall += since.elapsed().as_secs_f64();
            since = Instant::now();
            if opts.keep_checkpoints {
                keep_checkpoint(trainer, &opts.out, step)?;
            }
            save(step, wall, trainer)?;
            if bar.is_hidden() {
                eprintln!(
                    "step {step}/{} ({:.0} s) {}",
                    opts.steps,
                    wall,
                    msg.join(" ")
                );
            }
        }
    }
    bar.finish_and_clear();
    Ok(RunSummary {
        steps: step,
        resumed_from,
        wall_seconds: wall,
        last_losses: last.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    })
}

/// Trainable parameters of a var store as `(name, tensor)` pairs.
pub fn named_params(vs: &tch::nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails once at a given step, as a kill would.
    struct Interrupted<'a> {
        inner: &'a mut dyn Trainer,
        fail_at: Option<i64>,
    }

    impl Trainer for Interrupted<'_> {
        fn settings(&self) -> serde_json::Value {
            self.inner.settings()
        }
        fn state(&self) -> Vec<(String, Tensor)> {
            self.inner.state()
        }
        fn restore(&mut self, saved: &BTreeMap<String, Tensor>) -> Result<()> {
            self.inner.restore(saved)
        }
        fn weights(&self) -> Vec<(String, Tensor)> {
            self.inner.weights()
        }
        fn step(&mut self, step: i64) -> Result<Vec<(&'static str, f64)>> {
            if self.fail_at == Some(step) {
                anyhow::bail!("killed");
            }
            self.inner.step(step)
        }
    }

    fn opts(name: &str, steps: i64) -> RunOptions {
        let out = std::env::temp_dir().join(format!("gd-train-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        RunOptions {
            out,
            steps,
            batch: 2,
            seed: 5,
            checkpoint_every: 2,
            device: Device::Cpu,
            eval_samples: 8,
            keep_checkpoints: false,
        }
    }

    fn check_resume<T: Trainer>(name: &str, make: impl Fn(&RunOptions) -> T) {
        let a = opts(&format!("{name}-a"), 4);
        let mut whole = make(&a);
        // libtorch's initialisation draws from a global generator that other tests share, so
        // both runs start from one snapshot; the steps themselves draw from no global state.
        let start: BTreeMap<String, Tensor> = whole
            .state()
            .into_iter()
            .map(|(k, t)| (k, t.copy()))
            .collect();
        run(&mut whole, &a).unwrap();
        let b = opts(&format!("{name}-b"), 4);
        let mut first = make(&b);
        first.restore(&start).unwrap();
        let err = run(
            &mut Interrupted {
                inner: &mut first,
                fail_at: Some(3),
            },
            &b,
        )
        .unwrap_err();
        assert!(err.to_string().contains("killed"));
        let mut second = make(&b);
        let summary = run(&mut second, &b).unwrap();
        assert_eq!(summary.resumed_from, 2);
        let (sa, sb) = (whole.state(), second.state());
        assert_eq!(sa.len(), sb.len());
        for ((ka, ta), (kb, tb)) in sa.iter().zip(&sb) {
            assert_eq!(ka, kb);
            assert!(ta.equal(tb), "{name}: {ka} differs after resuming");
        }
        // a run with another length resumes only where the schedule does not depend on it
        let mut c = b.clone();
        c.steps = 6;
        let mut longer = make(&c);
        if longer.open_ended() {
            let summary = run(&mut longer, &c).unwrap();
            assert_eq!((summary.resumed_from, summary.steps), (4, 6));
        } else {
            let err = run(&mut longer, &c).unwrap_err().to_string();
            assert!(
                err.contains("other settings") && err.contains("steps"),
                "{err}"
            );
        }
        // other settings are always refused
        c.batch = 3;
        let err = run(&mut make(&c), &c).unwrap_err().to_string();
        assert!(
            err.contains("other settings") && err.contains("batch"),
            "{err}"
        );
        for o in [a, b] {
            std::fs::remove_dir_all(&o.out).unwrap();
        }
    }

    #[test]
    fn kept_checkpoints_survive_a_kill_and_the_last_is_the_final_weights() {
        let mut o = opts("keep", 4);
        o.keep_checkpoints = true;
        let mut first = seg::SegTrainer::new(&o);
        let err = run(
            &mut Interrupted {
                inner: &mut first,
                fail_at: Some(3),
            },
            &o,
        )
        .unwrap_err();
        assert!(err.to_string().contains("killed"));
        let kept = |o: &RunOptions| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(checkpoints_dir(&o.out))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            kept(&o),
            ["step_000000.safetensors", "step_000002.safetensors"]
        );
        let step2 = Tensor::read_safetensors(checkpoint_path(&o.out, 2)).unwrap();
        let mut second = seg::SegTrainer::new(&o);
        let summary = run(&mut second, &o).unwrap();
        assert_eq!(summary.resumed_from, 2);
        assert_eq!(
            kept(&o),
            [
                "step_000000.safetensors",
                "step_000002.safetensors",
                "step_000004.safetensors"
            ]
        );
        // the resumed run leaves the earlier copies as they were and keeps the final weights
        let again: BTreeMap<String, Tensor> = Tensor::read_safetensors(checkpoint_path(&o.out, 2))
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(step2.len(), again.len());
        for (k, t) in &step2 {
            assert!(again[k].equal(t), "{k}");
        }
        let last: BTreeMap<String, Tensor> = Tensor::read_safetensors(checkpoint_path(&o.out, 4))
            .unwrap()
            .into_iter()
            .collect();
        let weights = second.weights();
        assert_eq!(last.len(), weights.len());
        for (k, t) in &weights {
            assert!(last[k].equal(&t.to_device(Device::Cpu)), "{k}");
        }
        std::fs::remove_dir_all(&o.out).unwrap();
    }

    #[test]
    fn a_killed_segmenter_run_resumes_to_the_same_weights() {
        check_resume("seg", seg::SegTrainer::new);
    }

    #[test]
    fn a_killed_gan_run_resumes_to_the_same_weights() {
        check_resume("gan", |o| gan::GanTrainer::new(o).unwrap());
    }

    #[test]
    fn a_killed_classifier_run_resumes_to_the_same_weights() {
        check_resume("vgg", classifier::ClassifierTrainer::new);
    }

    #[test]
    fn a_killed_label_noise_run_resumes_to_the_same_weights() {
        let noise = label_noise::LabelNoise {
            fraction: 0.5,
            scenes: 5,
        };
        check_resume("vgg-noise", |o| {
            classifier::ClassifierTrainer::new(o).with_label_noise(noise)
        });
    }
}
