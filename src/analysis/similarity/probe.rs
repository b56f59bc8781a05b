//! What is compared and on what: the networks ([`Subject`], a classifier or a generator, with
//! the layers asked of it) and the one probe set both sides of a comparison see ([`Probe`]:
//! world scenes or a picture folder for classifiers, image ids for generators).

use crate::classify::Classifier;
use crate::classify::folder::ImageFolder;
use crate::cut::capture_layers;
use crate::imageio::from_rgb_images;
use crate::nets::layered::LayeredNet;
use crate::nets::proggan::ProGan;
use crate::nets::vgg::{Normalization, Vgg, VggConfig};
use crate::sample::world_batch;
use crate::zoo;
use crate::zsample::{DEFAULT_STREAM_SEED, z_rows};
use anyhow::{Result, bail};
use std::path::Path;
use tch::{Device, Tensor};

/// The name of the seeded random-weight torchvision-size VGG-16.
pub const RANDOM_VGG: &str = "random-vgg16";

/// torchvision's VGG-16 (1000 classes, 224×224 input, ImageNet normalisation) with random
/// weights drawn as its training starts them, from `seed`.
pub fn random_vgg16(seed: i64, device: Device) -> Result<Classifier> {
    tch::manual_seed(seed);
    let vs = tch::nn::VarStore::new(device);
    let net = Vgg::trainable(
        &vs.root(),
        VggConfig::standard(1000),
        Normalization::imagenet(),
    );
    let classes = (0..1000).map(|i| format!("class{i}")).collect();
    Classifier::new(net, 224, classes, &format!("{RANDOM_VGG}:{seed}"))
}

/// A network whose layers are compared.
pub enum Subject {
    /// A VGG classifier; its probe inputs are images.
    Classifier(Classifier),
    /// A ProGAN generator; its probe inputs are latent rows of image ids.
    Generator {
        /// The network.
        net: ProGan,
        /// A short name for reports.
        name: String,
    },
}

/// A resolved layer of a subject: its index and the name it was asked by.
#[derive(Clone, Debug)]
pub struct Layer {
    /// Index in the network's layer list.
    pub index: usize,
    /// The name it was asked by (canonical or alias).
    pub name: String,
}

impl Subject {
    /// Loads a classifier or a generator (a shipped name, a model directory or a checkpoint);
    /// `random-vgg16[:SEED]` is a torchvision-size VGG-16 (1000 classes, 224×224 input) with
    /// seeded random weights, the full-width network for sizing a comparison.
    pub fn load(spec: &str, device: Device) -> Result<Self> {
        if let Some(rest) = spec.strip_prefix(RANDOM_VGG) {
            let seed = match rest.strip_prefix(':') {
                Some(s) => s
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{RANDOM_VGG}:SEED needs an integer seed"))?,
                None if rest.is_empty() => 0,
                None => bail!("unknown model '{spec}'; did you mean {RANDOM_VGG}:SEED?"),
            };
            return Ok(Self::Classifier(random_vgg16(seed, device)?));
        }
        if spec.starts_with("random") {
            let (net, source) = zoo::load_generator(spec, device)?;
            return Ok(Self::Generator {
                net,
                name: source.name,
            });
        }
        let as_classifier = match Classifier::load(spec, device) {
            Ok(c) => return Ok(Self::Classifier(c)),
            Err(e) => e,
        };
        if as_classifier.to_string().starts_with("unknown model") {
            return Err(as_classifier);
        }
        match zoo::load_generator(spec, device) {
            Ok((net, source)) => Ok(Self::Generator {
                net,
                name: source.name,
            }),
            Err(as_generator) => bail!(
                "{spec} is neither a classifier nor a generator gandissect can load: \
                 {as_classifier}; {as_generator}"
            ),
        }
    }

    /// The same architecture with the weights of checkpoint `path` (a training run's kept
    /// copy), named `name`.
    pub fn with_weights(&self, path: &Path, name: &str, device: Device) -> Result<Self> {
        Ok(match self {
            Self::Classifier(c) => {
                let net = Vgg::load(path, c.net.normalization().clone(), device)?;
                if net.config() != c.net.config() {
                    bail!(
                        "{} is not a checkpoint of {}: its network has another shape",
                        path.display(),
                        c.name
                    );
                }
                Self::Classifier(Classifier::new(net, c.input_size, c.classes.clone(), name)?)
            }
            Self::Generator { net, .. } => {
                let other = ProGan::load(path, device)?;
                if other.layer_names() != net.layer_names() || other.z_dim() != net.z_dim() {
                    bail!(
                        "{} is not a checkpoint of this generator: its layers differ",
                        path.display()
                    );
                }
                Self::Generator {
                    net: other,
                    name: name.to_string(),
                }
            }
        })
    }

    /// A short name for reports.
    pub fn name(&self) -> &str {
        match self {
            Self::Classifier(c) => &c.name,
            Self::Generator { name, .. } => name,
        }
    }

    /// Whether this is a generator.
    pub fn is_generator(&self) -> bool {
        matches!(self, Self::Generator { .. })
    }

    fn net(&self) -> &dyn LayeredNet {
        match self {
            Self::Classifier(c) => &c.net,
            Self::Generator { net, .. } => net,
        }
    }

    /// The layers named (canonical names or aliases), or by default every conv layer's
    /// activation: a classifier's `relu1_1 … relu5_3`, a generator's layers before its output.
    pub fn layers(&self, asked: &[String]) -> Result<Vec<Layer>> {
        let net = self.net();
        let names: Vec<String> = if asked.is_empty() {
            match self {
                Self::Classifier(c) => c
                    .net
                    .layer_aliases()
                    .into_iter()
                    .filter(|(a, _)| a.starts_with("relu") && a.contains('_'))
                    .map(|(a, _)| a)
                    .collect(),
                Self::Generator { net, .. } => {
                    let all = net.layer_names();
                    all[..all.len() - 1].to_vec()
                }
            }
        } else {
            asked.to_vec()
        };
        let mut out = Vec::with_capacity(names.len());
        for name in &names {
            let index = match self {
                Self::Classifier(c) => c.conv_cut(name)?.layer_index(),
                Self::Generator { .. } => net.layer_index(name)?,
            };
            if out.iter().any(|l: &Layer| l.index == index) {
                bail!("layer '{name}' is asked for twice");
            }
            out.push(Layer {
                index,
                name: name.clone(),
            });
        }
        out.sort_by_key(|l| l.index);
        Ok(out)
    }

    /// The outputs of `layers` for a probe batch (images in [−1, 1] for a classifier, latent
    /// rows for a generator), in one pass.
    pub fn capture(&self, input: &Tensor, layers: &[Layer]) -> Vec<Tensor> {
        let idx: Vec<usize> = layers.iter().map(|l| l.index).collect();
        match self {
            Self::Classifier(c) => capture_layers(&c.net, &c.network_input(input), &idx),
            Self::Generator { net, .. } => capture_layers(net, input, &idx),
        }
    }
}

/// The inputs both sides of a comparison see.
pub enum Probe {
    /// World scenes of seeds `start..start + count` (classes balanced by seed).
    World {
        /// First seed.
        start: u64,
        /// Scenes.
        count: u64,
    },
    /// A folder's pictures, served at a side (`id` = the file's place in name order).
    Folder(ImageFolder),
    /// Image ids: latent rows of the default stream, for generators of latent size `z_dim`.
    Latents {
        /// The ids.
        ids: Vec<u64>,
        /// Latent size.
        z_dim: i64,
    },
}

impl Probe {
    /// Checks that `subject` takes this probe's inputs.
    pub fn check(&self, subject: &Subject) -> Result<()> {
        match (self, subject) {
            (Self::Latents { z_dim, .. }, Subject::Generator { net, name }) => {
                if net.z_dim() != *z_dim {
                    bail!(
                        "generator {name} takes latents of size {}, the probe's are {z_dim}; \
                         generators compared must share their latent size",
                        net.z_dim()
                    );
                }
                Ok(())
            }
            (Self::Latents { .. }, Subject::Classifier(c)) => bail!(
                "{} is a classifier but the probe set is image ids for generators; compare \
                 classifiers with classifiers and generators with generators",
                c.name
            ),
            (_, Subject::Generator { name, .. }) => bail!(
                "{name} is a generator, which takes image ids, not pictures or world scenes; \
                 compare classifiers with classifiers and generators with generators"
            ),
            _ => Ok(()),
        }
    }

    /// Inputs in the probe.
    pub fn len(&self) -> u64 {
        match self {
            Self::World { count, .. } => *count,
            Self::Folder(f) => f.files.len() as u64,
            Self::Latents { ids, .. } => ids.len() as u64,
        }
    }

    /// Whether the probe holds no input.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A line saying what the probe is.
    pub fn describe(&self) -> String {
        match self {
            Self::World { start, count } => {
                format!("{count} world scenes (seeds {start}..{})", start + count)
            }
            Self::Folder(f) => format!("{} pictures of {}", f.files.len(), f.dir.display()),
            Self::Latents { ids, .. } => match (ids.first(), ids.last()) {
                (Some(a), Some(b)) => format!("{} image ids ({a}..={b})", ids.len()),
                _ => "no image ids".into(),
            },
        }
    }

    /// Inputs `from..to` as one tensor.
    pub fn batch(&self, from: u64, to: u64, device: Device) -> Result<Tensor> {
        match self {
            Self::World { start, .. } => {
                let seeds: Vec<u64> = (start + from..start + to).collect();
                Ok(world_batch(&seeds, true, device).images)
            }
            Self::Folder(f) => {
                let images = (from..to).map(|i| f.read(i)).collect::<Result<Vec<_>>>()?;
                from_rgb_images(&images, device)
            }
            Self::Latents { ids, z_dim } => z_rows(
                DEFAULT_STREAM_SEED,
                &ids[from as usize..to as usize],
                *z_dim as usize,
                device,
            ),
        }
    }
}
