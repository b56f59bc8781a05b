//! The generators a benchmark runs on, each with a weights file that the PyTorch baseline
//! reads too.
//!
//! - `world`: the shipped world generator when `models/world-proggan/weights.safetensors`
//!   exists, otherwise a random-weight generator of the same geometry (seed 0);
//! - `random256`: a random-weight 256×256 generator of the standard sizes (seed 0);
//! - anything `zoo::load_generator` accepts (a model name, directory or checkpoint).
//!
//! Random weights are written once into the work directory, so both sides load one file.

use crate::fsutil::atomic_write_with;
use crate::nets::proggan::ProGan;
use crate::zoo::{self, WORLD_GENERATOR_SIZES};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// The name of the default-geometry model.
pub const WORLD: &str = "world";
/// The name of the random-weight 256×256 model.
pub const RANDOM256: &str = "random256";
/// Channel sizes of the standard 256×256 ProGAN.
pub const PROGGAN256_SIZES: [i64; 8] = [512, 512, 512, 512, 512, 256, 128, 64];

/// A generator under measurement.
pub struct BenchModel {
    /// Its name in tables.
    pub name: String,
    /// Where the weights come from, in words.
    pub origin: String,
    /// The weights file both sides load.
    pub weights: PathBuf,
    /// The network.
    pub generator: ProGan,
}

/// The trained world generator's weights file (present once the model is installed).
pub fn world_weights() -> PathBuf {
    zoo::home()
        .join("models")
        .join(zoo::DEFAULT_GENERATOR)
        .join("weights.safetensors")
}

fn save_weights(g: &ProGan, path: &Path) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = g
        .named_tensors()
        .into_iter()
        .map(|(k, t)| (k, t.to_device(Device::Cpu).contiguous()))
        .collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the work directory {}", dir.display()))?;
    }
    atomic_write_with(path, |tmp| Ok(Tensor::write_safetensors(&tensors, tmp)?))
}

fn random_model(name: &str, sizes: &[i64], work: &Path, device: Device) -> Result<BenchModel> {
    let g = ProGan::random(sizes, 0, device)?;
    let weights = work.join(format!("{name}.safetensors"));
    save_weights(&g, &weights)?;
    // Both sides read the file: load it back so the measured weights are the file's.
    let generator = ProGan::load(&weights, device)?;
    Ok(BenchModel {
        name: name.to_string(),
        origin: format!("random weights {sizes:?}, seed 0"),
        weights,
        generator,
    })
}

/// Loads the model `spec` (see the module documentation), writing random weights under `work`.
pub fn load(spec: &str, work: &Path, device: Device) -> Result<BenchModel> {
    match spec {
        WORLD => {
            let file = world_weights();
            if file.exists() {
                Ok(BenchModel {
                    name: WORLD.into(),
                    origin: format!("trained weights {}", file.display()),
                    generator: ProGan::load(&file, device)?,
                    weights: file,
                })
            } else {
                let mut m = random_model(WORLD, &WORLD_GENERATOR_SIZES, work, device)?;
                m.origin = format!(
                    "{} (the trained model is not installed at {})",
                    m.origin,
                    file.display()
                );
                Ok(m)
            }
        }
        RANDOM256 => random_model(RANDOM256, &PROGGAN256_SIZES, work, device),
        other => {
            let (generator, source) = zoo::load_generator(other, device).with_context(|| {
                format!("cannot benchmark '{other}'; use {WORLD}, {RANDOM256} or a generator")
            })?;
            let (weights, generator) = match &source.card {
                Some(card) => (
                    source
                        .dir
                        .as_ref()
                        .map(|d| d.join(&card.weights))
                        .context("a model card without its directory")?,
                    generator,
                ),
                None if Path::new(other).is_file() => (PathBuf::from(other), generator),
                None => {
                    let file = work.join(format!("{}.safetensors", source.name.replace(':', "-")));
                    save_weights(&generator, &file)?;
                    let reloaded = ProGan::load(&file, device)?;
                    (file, reloaded)
                }
            };
            Ok(BenchModel {
                name: source.name,
                origin: other.to_string(),
                weights,
                generator,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::layered::LayeredNet;

    #[test]
    fn random_models_are_saved_for_the_baseline_and_reload_identically() {
        let work = std::env::temp_dir().join(format!("gd-bench-models-{}", std::process::id()));
        let m = load("random:3", &work, Device::Cpu).unwrap();
        assert_eq!(m.generator.sizes(), WORLD_GENERATOR_SIZES);
        assert!(m.weights.exists(), "{}", m.weights.display());
        let again = ProGan::load(&m.weights, Device::Cpu).unwrap();
        let z = Tensor::randn([1, 128], (tch::Kind::Float, Device::Cpu));
        assert!(again.forward(&z).equal(&m.generator.forward(&z)));
        let err = load("no-such-model", &work, Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("cannot benchmark 'no-such-model'"), "{err}");
        std::fs::remove_dir_all(&work).unwrap();
    }
}
