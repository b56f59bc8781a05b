//! Training on a fixed set of world scenes with a share of their labels replaced, once and for
//! all, by random classes: the networks that must memorise, against those that generalise
//! (SPEC §12.1). Which scenes are relabelled, their new classes and the order the set is visited
//! in all follow from the run's seed, so a resumed run sees exactly what an uninterrupted one
//! would.

use super::data::TRAIN_SEED_BASE;
use crate::imageio::to_input_size;
use crate::nets::vgg::Vgg;
use crate::prng::SplitMix64;
use crate::sample::world_batch;
use crate::world::SceneClass;
use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use tch::Device;

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
    let labels = noise.relabelled(run_seed);
    let (mut hits, mut counts) = ([0u64; 2], [0u64; 2]);
    let indices: Vec<u64> = (0..noise.scenes).collect();
    for chunk in indices.chunks(64) {
        let seeds: Vec<u64> = chunk
            .iter()
            .map(|&i| LabelNoise::scene_seed(run_seed, i))
            .collect();
        let b = world_batch(&seeds, true, device);
        let pred = Vec::<i64>::try_from(
            net.classify(&to_input_size(&b.images, input_size))
                .argmax(1, false),
        )?;
        let truth = Vec::<i64>::try_from(&b.classes)?;
        for ((&i, p), t) in chunk.iter().zip(pred).zip(truth) {
            let given = labels[i as usize];
            let group = given.is_some() as usize;
            counts[group] += 1;
            hits[group] += (p == given.unwrap_or(t)) as u64;
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
