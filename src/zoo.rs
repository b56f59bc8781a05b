//! Finding and loading models: a shipped model by name, a model directory with a card, or a
//! bare checkpoint file.
//!
//! A model directory holds `model.json` (the card: architecture, weights file, how it was
//! trained and how good it is) and its weights. Shipped models live under `models/` (generators
//! and classifiers) and `segmenters/` of the models directory, [`home`]: the first of
//! `--models-dir` ([`set_models_dir`]), `$GANDISSECT_HOME`, the user's data directory
//! (`$XDG_DATA_HOME/gandissect`, by default `~/.local/share/gandissect`) when it holds models,
//! and the source checkout the binary was built from.

use crate::nets::checkpoint::StateDict;
use crate::nets::proggan::ProGan;
use crate::nets::vgg::{Normalization, Vgg};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::Device;

/// The generator used when none is named.
pub const DEFAULT_GENERATOR: &str = "world-proggan";
/// The classifier used when none is named.
pub const DEFAULT_CLASSIFIER: &str = "world-vgg16";
/// Channel sizes `[z, 4×4, 8×8, 16×16, 32×32, 64×64]` of the shipped world generator, which the
/// seeded random-weight generator shares and its training run uses by default.
pub const WORLD_GENERATOR_SIZES: [i64; 6] = [128, 128, 256, 64, 32, 16];

/// The environment variable naming the models directory.
pub const HOME_VAR: &str = "GANDISSECT_HOME";

/// The models directory set for this process (the command line's `--models-dir`).
static MODELS_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Makes `dir` the models directory of this process, before `$GANDISSECT_HOME` and the default
/// places (the command line's `--models-dir`).
pub fn set_models_dir(dir: PathBuf) {
    *MODELS_DIR.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir);
}

/// The source checkout the binary was built from (its scripts, benches and virtualenv; its
/// `models/` and `segmenters/` are the last place models are looked for).
pub fn source_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The user's data directory for gandissect: `$XDG_DATA_HOME/gandissect`, else
/// `$HOME/.local/share/gandissect` (`None` when neither variable is set).
pub fn user_dir() -> Option<PathBuf> {
    let nonempty = |v: &str| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    nonempty("XDG_DATA_HOME")
        .or_else(|| nonempty("HOME").map(|h| h.join(".local/share")))
        .map(|d| d.join("gandissect"))
}

/// Whether `dir` holds models: a `models/` or a `segmenters/` directory.
fn holds_models(dir: &Path) -> bool {
    dir.join("models").is_dir() || dir.join("segmenters").is_dir()
}

/// One place models are looked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The directory holding `models/` and `segmenters/`.
    pub dir: PathBuf,
    /// Where it comes from: `--models-dir`, `$GANDISSECT_HOME`, `user data directory` or
    /// `source checkout`.
    pub from: &'static str,
}

/// The places models are looked for, in order. The first two, when given, are used whether or
/// not they hold models; the user's data directory only when it does; the source checkout last.
pub fn search_path() -> Vec<Place> {
    let mut places = Vec::new();
    if let Some(dir) = MODELS_DIR.lock().unwrap_or_else(|e| e.into_inner()).clone() {
        places.push(Place {
            dir,
            from: "--models-dir",
        });
    }
    if let Some(dir) = std::env::var_os(HOME_VAR).filter(|s| !s.is_empty()) {
        places.push(Place {
            dir: PathBuf::from(dir),
            from: "$GANDISSECT_HOME",
        });
    }
    if let Some(dir) = user_dir() {
        places.push(Place {
            dir,
            from: "user data directory",
        });
    }
    places.push(Place {
        dir: source_dir(),
        from: "source checkout",
    });
    places
}

/// The models directory, holding `models/` and `segmenters/`: `--models-dir`, else
/// `$GANDISSECT_HOME`, else the user's data directory when it holds models, else the source
/// checkout.
pub fn home() -> PathBuf {
    let places = search_path();
    places
        .iter()
        .find(|p| p.from != "user data directory" || holds_models(&p.dir))
        .map_or_else(source_dir, |p| p.dir.clone())
}

/// The names of the shipped models of a kind (`models` or `segmenters`) in the models
/// directory: subdirectories with a card (`model.json` or `segmenter.json`).
pub fn installed(kind: &str) -> Vec<String> {
    let card = if kind == "segmenters" {
        "segmenter.json"
    } else {
        "model.json"
    };
    let mut names: Vec<String> = std::fs::read_dir(home().join(kind))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join(card).exists())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A model card (`model.json`). Fields beyond these are kept as they are.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelCard {
    /// `proggan` or `vgg16`.
    pub architecture: String,
    /// The weights file, relative to the model directory.
    pub weights: String,
    /// Input normalisation of a classifier (ImageNet statistics when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<Normalization>,
    /// Class names of a classifier, in output order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// The image side a classifier expects (inputs are resized to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<i64>,
    /// Everything else (training data, steps, measured quality ...).
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// Where a model came from.
#[derive(Clone, Debug)]
pub struct ModelSource {
    /// A short name for summaries.
    pub name: String,
    /// The model directory, when the model has one.
    pub dir: Option<PathBuf>,
    /// The card, when the model has one.
    pub card: Option<ModelCard>,
}

enum Located {
    Dir(PathBuf),
    File(PathBuf),
}

fn locate(spec: &str) -> Result<Located> {
    let path = Path::new(spec);
    if path.is_dir() {
        if !path.join("model.json").exists() {
            bail!(
                "model directory {} has no model.json; point --model at a checkpoint file or a model directory",
                path.display()
            );
        }
        return Ok(Located::Dir(path.to_path_buf()));
    }
    if path.is_file() {
        return Ok(Located::File(path.to_path_buf()));
    }
    let models = home().join("models");
    let shipped = models.join(spec);
    if !spec.contains(['/', '\\']) && shipped.join("model.json").exists() {
        return Ok(Located::Dir(shipped));
    }
    let known = installed("models");
    bail!(
        "unknown model '{spec}': no such file or directory, and not a shipped model in {} ({}); \
         give a checkpoint (.pth, .safetensors) or a model directory, or --models-dir DIR",
        models.display(),
        if known.is_empty() {
            "none installed".to_string()
        } else {
            known.join(", ")
        }
    )
}

/// Reads the card (`model.json`) of a model directory.
pub fn read_card(dir: &Path) -> Result<ModelCard> {
    let path = dir.join("model.json");
    let text = crate::fsutil::read_text(&path, "model card")
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid model card", path.display()))
}

fn describe_other(sd: &StateDict) -> &'static str {
    if ProGan::recognises(sd) {
        "a ProGAN generator"
    } else if Vgg::recognises(sd) {
        "a VGG-16 classifier"
    } else {
        "not a model gandissect knows"
    }
}

/// Loads a generator: a shipped name, a model directory, or a checkpoint. `random` (or
/// `random:SEED`) gives a seeded random-weight 64×64 generator; the default name falls back to
/// it, with a warning, when the shipped model is not installed.
pub fn load_generator(spec: &str, device: Device) -> Result<(ProGan, ModelSource)> {
    if let Some(seed) = spec
        .strip_prefix("random")
        .map(|s| s.trim_start_matches(':'))
    {
        let seed: i64 = if seed.is_empty() {
            0
        } else {
            seed.parse().context("random:SEED needs an integer seed")?
        };
        let g = ProGan::random(&WORLD_GENERATOR_SIZES, seed, device)?;
        return Ok((
            g,
            ModelSource {
                name: format!("random:{seed}"),
                dir: None,
                card: None,
            },
        ));
    }
    let located = match locate(spec) {
        Ok(l) => l,
        Err(_) if spec == DEFAULT_GENERATOR => {
            eprintln!(
                "warning: the default generator {spec} is not installed; using a random-weight generator (random:0)"
            );
            return load_generator("random:0", device);
        }
        Err(e) => return Err(e),
    };
    let (file, source) = match located {
        Located::Dir(dir) => {
            let card = read_card(&dir)?;
            if card.architecture != "proggan" {
                bail!(
                    "{} is a {} model, not a ProGAN generator",
                    dir.display(),
                    card.architecture
                );
            }
            let name = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (
                dir.join(&card.weights),
                ModelSource {
                    name,
                    dir: Some(dir),
                    card: Some(card),
                },
            )
        }
        Located::File(file) => {
            let name = file
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (
                file,
                ModelSource {
                    name,
                    dir: None,
                    card: None,
                },
            )
        }
    };
    let sd = StateDict::load(&file)?;
    if !ProGan::recognises(&sd) {
        bail!(
            "{} is {}, not a ProGAN generator checkpoint",
            file.display(),
            describe_other(&sd)
        );
    }
    Ok((ProGan::from_state_dict(sd, device)?, source))
}

/// Loads a classifier: a shipped name, a model directory, or a torchvision VGG-16 checkpoint
/// (ImageNet normalisation).
pub fn load_classifier(spec: &str, device: Device) -> Result<(Vgg, ModelSource)> {
    let (file, normalization, source) = match locate(spec)? {
        Located::Dir(dir) => {
            let card = read_card(&dir)?;
            if card.architecture != "vgg16" {
                bail!(
                    "{} is a {} model, not a VGG-16 classifier",
                    dir.display(),
                    card.architecture
                );
            }
            let norm = card
                .normalization
                .clone()
                .unwrap_or_else(Normalization::imagenet);
            let name = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (
                dir.join(&card.weights),
                norm,
                ModelSource {
                    name,
                    dir: Some(dir),
                    card: Some(card),
                },
            )
        }
        Located::File(file) => {
            let name = file
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (
                file,
                Normalization::imagenet(),
                ModelSource {
                    name,
                    dir: None,
                    card: None,
                },
            )
        }
    };
    let sd = StateDict::load(&file)?;
    if !Vgg::recognises(&sd) {
        bail!(
            "{} is {}, not a VGG-16 checkpoint",
            file.display(),
            describe_other(&sd)
        );
    }
    Ok((Vgg::from_state_dict(sd, normalization, device)?, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_are_told_apart() {
        let dir = std::env::temp_dir().join(format!("gd-zoo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let g = ProGan::random(&[8, 4, 4], 0, Device::Cpu).unwrap();
        let file = dir.join("g.safetensors");
        tch::Tensor::write_safetensors(&g.named_tensors(), &file).unwrap();
        let (g2, src) = load_generator(file.to_str().unwrap(), Device::Cpu).unwrap();
        assert_eq!(g2.sizes(), [8, 4, 4]);
        assert_eq!(src.name, "g");
        let err = load_classifier(file.to_str().unwrap(), Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("is a ProGAN generator, not a VGG-16 checkpoint"),
            "{err}"
        );
        let err = load_generator("no-such-model", Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown model 'no-such-model'"), "{err}");
        let err = load_generator(dir.to_str().unwrap(), Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("has no model.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
