//! Training on a fixed set of world scenes with a share of their labels replaced, once and for
//! all, by random classes: the networks that must memorise, against those that generalise
//! (SPEC §12.1). Which scenes are relabelled, their new classes and the order the set is visited
//! in all follow from the run's seed, so a resumed run sees exactly what an uninterrupted one
//! would.

use super::data::TRAIN_SEED_BASE;
use crate::imageio::to_input_size;
use crate::nets::vgg::Vgg;
use crate::prng::SplitMix64;
use crate::sample::{WorldBatch, world_batch};
use crate::world::SceneClass;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// Scenes in the fixed training set when none is given.
pub const DEFAULT_TRAIN_SCENES: u64 = 1024;

/// Stream of the relabelling draw (kept apart from the visiting order's streams).
const RELABEL_STREAM: u64 = 0x6c61_6265_6c73;
/// First stream of the per-epoch visiting orders.
const EPOCH_STREAM: u64 = 0x6570_6f63_6800_0000;

/// A fixed training set of `scenes` world scenes, `fraction` of them with a random label.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelNoise {
    /// Share of the training scenes whose label is replaced (0 to 1).
    pub fraction: f64,
    /// Scenes in the fixed training set.
    pub scenes: u64,
}

impl LabelNoise {
    /// Refuses a fraction outside [0, 1] and an empty set.
    pub fn check(&self) -> Result<()> {
        if !(self.fraction.is_finite() && (0.0..=1.0).contains(&self.fraction)) {
            bail!(
                "--label-noise must be a fraction in [0, 1], got {}",
                self.fraction
            );
        }
        if self.scenes == 0 || self.scenes > u32::MAX as u64 {
            bail!(
                "--train-scenes must be between 1 and {}, got {}",
                u32::MAX,
                self.scenes
            );
        }
        Ok(())
    }

    /// How many scenes get a random label: the fraction of the set, rounded.
    pub fn replaced_count(&self) -> u64 {
        (self.fraction * self.scenes as f64).round() as u64
    }

    /// The world seed of training scene `i` of run `run_seed`.
    pub fn scene_seed(run_seed: u64, i: u64) -> u64 {
        TRAIN_SEED_BASE + (run_seed << 32) + i
    }

    /// The label of every training scene: `Some(class)` for the scenes whose label is replaced
    /// (a class drawn uniformly from every world class, which may by chance be the true one),
    /// `None` for those that keep their own. Exactly [`Self::replaced_count`] are replaced.
    pub fn relabelled(&self, run_seed: u64) -> Vec<Option<i64>> {
        let n = self.scenes as usize;
        let mut rng = SplitMix64::stream(run_seed, RELABEL_STREAM);
        let order = permutation(n, &mut rng);
        let classes = SceneClass::ALL.len() as u32;
        let mut out = vec![None; n];
        for &i in &order[..self.replaced_count() as usize] {
            out[i] = Some(rng.below(classes) as i64);
        }
        out
    }

    /// Indices into the training set visited at `step`: the set in a fresh random order each
    /// epoch, `batch` scenes a step, epochs running on into each other.
    pub fn step_indices(&self, run_seed: u64, step: i64, batch: usize) -> Vec<u64> {
        let n = self.scenes;
        let first = step as u64 * batch as u64;
        let mut out = Vec::with_capacity(batch);
        let mut epoch = u64::MAX;
        let mut order = Vec::new();
        for p in first..first + batch as u64 {
            if p / n != epoch {
                epoch = p / n;
                let mut rng = SplitMix64::stream(run_seed, EPOCH_STREAM + epoch);
                order = permutation(n as usize, &mut rng);
            }
            out.push(order[(p % n) as usize] as u64);
        }
        out
    }

    /// The settings a saved run is checked against.
    pub fn settings(&self) -> Value {
        json!({"fraction": self.fraction, "scenes": self.scenes})
    }
}

/// A label-noise run's fixed training set: its scenes and the label each is trained with.
/// The trainer draws its batches from it, and every measurement on the training set renders
/// it through [`TrainingSet::batch`], so both see the same scenes and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingSet {
    /// The set's size and share of replaced labels.
    pub noise: LabelNoise,
    /// The run's seed.
    pub run_seed: u64,
    relabelled: Vec<Option<i64>>,
}

impl TrainingSet {
    /// The training set of run `run_seed` with `noise`.
    pub fn new(noise: LabelNoise, run_seed: u64) -> Self {
        Self {
            relabelled: noise.relabelled(run_seed),
            noise,
            run_seed,
        }
    }

    /// Scenes in the set.
    pub fn len(&self) -> u64 {
        self.noise.scenes
    }

    /// Whether the set holds no scene.
    pub fn is_empty(&self) -> bool {
        self.noise.scenes == 0
    }

    /// Per scene: `Some(class)` where its label was replaced, `None` where it keeps its own.
    pub fn relabelled(&self) -> &[Option<i64>] {
        &self.relabelled
    }

    /// The world seed of scene `i`.
    pub fn seed_of(&self, i: u64) -> u64 {
        LabelNoise::scene_seed(self.run_seed, i)
    }

    /// Scenes `indices` rendered as the trainer renders them, `classes` holding the labels the
    /// network is trained with (world class indices; the replaced ones where replaced).
    pub fn batch(&self, indices: &[u64], device: Device) -> Result<WorldBatch> {
        if let Some(&i) = indices.iter().find(|&&i| i >= self.len()) {
            bail!(
                "scene {i} is outside the training set of {} scenes",
                self.len()
            );
        }
        let seeds: Vec<u64> = indices.iter().map(|&i| self.seed_of(i)).collect();
        let mut b = world_batch(&seeds, true, device);
        if indices
            .iter()
            .any(|&i| self.relabelled[i as usize].is_some())
        {
            let truth = Vec::<i64>::try_from(&b.classes)?;
            let labels: Vec<i64> = truth
                .iter()
                .zip(indices)
                .map(|(&t, &i)| self.relabelled[i as usize].unwrap_or(t))
                .collect();
            b.classes = Tensor::from_slice(&labels).to_device(device);
        }
        Ok(b)
    }

    /// A few words on the set for reports: its size, seeds and relabelled share.
    pub fn describe(&self) -> String {
        format!(
            "the run's training set: {} scenes (world seeds 2^40 + {}·2^32 + 0..{}), {} with a replaced label, scored against the labels it was trained with",
            self.len(),
            self.run_seed,
            self.len(),
            self.noise.replaced_count()
        )
    }

    /// The training set of the label-noise run `path` belongs to: the run's folder, its
    /// training state (`train_state.safetensors` or a copy of it), or a weights file the run
    /// kept in its `checkpoints/` folder. The set is read from the run's saved settings (its
    /// training state, else its `model.json`).
    pub fn of_run(path: &Path) -> Result<(Self, PathBuf)> {
        use super::classifier::is_training_state;
        if path.is_file() && is_training_state(path) {
            let settings = super::state::read_settings(path)?;
            return Ok((Self::from_settings(&settings, path)?, path.to_path_buf()));
        }
        let run = if path.is_dir() {
            path.to_path_buf()
        } else {
            match path.parent() {
                Some(dir) if path.is_file() && dir.file_name() == Some("checkpoints".as_ref()) => {
                    dir.parent().unwrap_or(Path::new(".")).to_path_buf()
                }
                _ => bail!(
                    "{} is neither a training run's folder, its training state nor one of its \
                     checkpoints/; the training set of a --label-noise run is read from there",
                    path.display()
                ),
            }
        };
        let state = super::state_path(&run);
        if state.is_file() {
            let settings = super::state::read_settings(&state)?;
            return Ok((Self::from_settings(&settings, &state)?, state));
        }
        let card = run.join("model.json");
        if !card.is_file() {
            bail!(
                "{} holds neither train_state.safetensors nor model.json: not a training run's folder",
                run.display()
            );
        }
        let text = crate::fsutil::read_text(&card, "model card")?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", card.display()))?;
        let mut settings = v.get("training").cloned().unwrap_or(Value::Null);
        if settings.get("label_noise").is_none() {
            bail!(
                "{} records no --label-noise training: the network has no fixed training set to measure on (use the held-out split)",
                card.display()
            );
        }
        settings["model"] = json!("world-vgg16");
        Ok((Self::from_settings(&settings, &card)?, card))
    }

    fn from_settings(settings: &Value, source: &Path) -> Result<Self> {
        let noise = settings.get("label_noise").with_context(|| {
            format!(
                "{} was not trained with --label-noise: the network has no fixed training set to measure on (use the held-out split)",
                source.display()
            )
        })?;
        if settings.get("model").and_then(Value::as_str) != Some("world-vgg16") {
            bail!("{} is not a world-vgg16 run", source.display());
        }
        let fraction = noise.get("fraction").and_then(Value::as_f64);
        let scenes = noise.get("scenes").and_then(Value::as_u64);
        let seed = settings.get("seed").and_then(Value::as_u64);
        let (Some(fraction), Some(scenes), Some(seed)) = (fraction, scenes, seed) else {
            bail!(
                "{}: the run's label-noise settings are incomplete (fraction, scenes and seed needed)",
                source.display()
            );
        };
        let noise = LabelNoise { fraction, scenes };
        noise.check()?;
        Ok(Self::new(noise, seed))
    }
}

/// How well a network fits its fixed training set.
#[derive(Clone, Debug, Serialize)]
pub struct TrainingFit {
    /// Accuracy against the training labels, over the whole set.
    pub accuracy: f64,
    /// Accuracy against the training labels on the scenes that kept their own label.
    pub kept_accuracy: Option<f64>,
    /// Accuracy against the training labels on the relabelled scenes (memorised labels).
    pub relabelled_accuracy: Option<f64>,
    /// Scenes in the set.
    pub scenes: u64,
    /// Of which relabelled.
    pub relabelled: u64,
}

/// Measures `net` (input side `input_size`, the world's classes as outputs) on its training set
/// against the labels it was trained with.
pub fn training_fit(
    net: &Vgg,
    input_size: i64,
    noise: &LabelNoise,
    run_seed: u64,
    device: Device,
) -> Result<TrainingFit> {
    let _guard = tch::no_grad_guard();
    let set = TrainingSet::new(*noise, run_seed);
    let (mut hits, mut counts) = ([0u64; 2], [0u64; 2]);
    let indices: Vec<u64> = (0..set.len()).collect();
    for chunk in indices.chunks(64) {
        let b = set.batch(chunk, device)?;
        let pred = Vec::<i64>::try_from(
            net.classify(&to_input_size(&b.images, input_size))
                .argmax(1, false),
        )?;
        let given = Vec::<i64>::try_from(&b.classes)?;
        for ((&i, p), t) in chunk.iter().zip(pred).zip(given) {
            let group = set.relabelled()[i as usize].is_some() as usize;
            counts[group] += 1;
            hits[group] += (p == t) as u64;
        }
    }
    let share = |g: usize| (counts[g] > 0).then(|| hits[g] as f64 / counts[g] as f64);
    Ok(TrainingFit {
        accuracy: (hits[0] + hits[1]) as f64 / noise.scenes.max(1) as f64,
        kept_accuracy: share(0),
        relabelled_accuracy: share(1),
        scenes: noise.scenes,
        relabelled: counts[1],
    })
}

/// A uniformly random permutation of `0..n` (Fisher–Yates).
fn permutation(n: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stated_fraction_is_replaced_and_only_those() {
        for (fraction, scenes) in [(0.0, 100), (0.25, 1000), (0.5, 333), (1.0, 64)] {
            let noise = LabelNoise { fraction, scenes };
            let labels = noise.relabelled(7);
            assert_eq!(labels.len() as u64, scenes);
            let replaced = labels.iter().filter(|l| l.is_some()).count() as u64;
            assert_eq!(replaced, (fraction * scenes as f64).round() as u64);
            assert!(labels.iter().flatten().all(|&c| (0..9).contains(&c)));
            // the same run relabels the same scenes the same way; another run differently
            assert_eq!(labels, noise.relabelled(7));
            if replaced > 0 && replaced < scenes {
                assert_ne!(labels, noise.relabelled(8));
            }
        }
        // every class is drawn, each about a ninth of the time
        let labels = LabelNoise {
            fraction: 1.0,
            scenes: 9000,
        }
        .relabelled(1);
        for c in 0..9 {
            let n = labels.iter().filter(|&&l| l == Some(c)).count();
            assert!((800..1200).contains(&n), "class {c}: {n}");
        }
    }

    #[test]
    fn each_epoch_visits_every_scene_once() {
        let noise = LabelNoise {
            fraction: 0.5,
            scenes: 10,
        };
        let visits: Vec<u64> = (0..5).flat_map(|s| noise.step_indices(3, s, 4)).collect();
        for epoch in visits.chunks(10) {
            let mut e = epoch.to_vec();
            e.sort_unstable();
            assert_eq!(e, (0..10).collect::<Vec<u64>>());
        }
        assert_ne!(visits[..10], visits[10..20]);
        assert_eq!(noise.step_indices(3, 2, 4), visits[8..12]);
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = LabelNoise {
            fraction: 1.5,
            scenes: 10,
        };
        assert!(
            bad.check()
                .unwrap_err()
                .to_string()
                .contains("--label-noise")
        );
        let empty = LabelNoise {
            fraction: 0.5,
            scenes: 0,
        };
        assert!(
            empty
                .check()
                .unwrap_err()
                .to_string()
                .contains("--train-scenes")
        );
    }
}
