//! Where images and activations come from, and how images are labelled.
//!
//! - A **generator** source draws latent vectors (image id `i` = row `i` of sample stream 1),
//!   takes the activation at the dissected layers, and segments the generated image.
//! - A **classifier** source renders world scenes (image id = world seed), takes the activation
//!   of the classifier at the dissected layers on the image resized to its input size, and
//!   segments the input image itself.
//!
//! - A classifier may instead read its images from an [`ImageSource`] (e.g. a folder of
//!   pictures, see `classify::folder`): image id `i` = the source's image `i`.
//!
//! The `truth` segmenter labels world images with the world's own concept maps (classifier
//! sources only: generated images have no ground truth).

use crate::cut::Cut;
use crate::imageio::to_input_size;
use crate::nets::layered::LayeredNet;
use crate::nets::proggan::ProGan;
use crate::nets::vgg::Vgg;
use crate::sample::world_batch;
use crate::segment::{Label, Segmenter, load_segmenter_output};
use crate::zoo;
use crate::zsample::z_rows;
use anyhow::{Context, Result, bail};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// The segmenter name that selects the world's ground-truth label maps.
pub const TRUTH: &str = "truth";

/// Images other than world scenes for a classifier to be dissected over.
pub trait ImageSource: Send + Sync + std::fmt::Debug {
    /// Number of images (ids `0..len`).
    fn len(&self) -> u64;
    /// Whether the source holds no image.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Images `ids` as `[B, 3, H, W]` in [−1, 1] on `device`.
    fn images(&self, ids: &[u64], device: Device) -> Result<Tensor>;
    /// A short description that identifies the images (recorded with the statistics, so that a
    /// resumed run over other images is refused).
    fn describe(&self) -> String;
}

/// A dissected network with its input stream.
pub enum Model {
    /// A generator; image ids are rows of the latent stream `stream`.
    Generator {
        /// The network.
        net: ProGan,
        /// Seed of the latent sample stream.
        stream: u32,
    },
    /// A classifier over world scenes; image ids are world seeds.
    Classifier {
        /// The network.
        net: Vgg,
        /// The side images are resized to before the classifier sees them.
        input_size: i64,
        /// Where the images come from instead of world scenes.
        images: Option<Arc<dyn ImageSource>>,
    },
}

/// One batch of inputs drawn for image ids.
pub struct Inputs {
    /// Latent vectors `[B, z]` (generator sources).
    pub z: Option<Tensor>,
    /// Images `[B, 3, H, W]` in [−1, 1] (world sources).
    pub images: Option<Tensor>,
    /// The world's label maps `[B, 1, H, W]` (world sources).
    pub truth: Option<Tensor>,
}

impl Model {
    /// Loads `spec` as a generator, or else as a classifier (models with architecture `vgg16`;
    /// a bare checkpoint takes 64×64 input).
    pub fn load(spec: &str, stream: u32, device: Device) -> Result<Self> {
        Self::load_sized(spec, stream, None, device)
    }

    /// Loads `spec` as [`Model::load`] does; a classifier takes `input_size` images unless its
    /// card states a size ([`crate::classify::model::input_size`]); a generator refuses one.
    pub fn load_sized(
        spec: &str,
        stream: u32,
        input_size: Option<i64>,
        device: Device,
    ) -> Result<Self> {
        match zoo::load_generator(spec, device) {
            Ok((net, _)) => {
                if let Some(n) = input_size {
                    bail!(
                        "--input-size {n} applies to classifiers; {spec} is a generator, whose \
                         output size its weights fix ({r}×{r})",
                        r = net.resolution()
                    );
                }
                Ok(Self::Generator { net, stream })
            }
            Err(gen_err) => match zoo::load_classifier(spec, device) {
                Ok((net, src)) => {
                    let input_size = crate::classify::model::input_size(
                        src.card.and_then(|c| c.input_size),
                        input_size,
                        spec,
                    )?;
                    Ok(Self::Classifier {
                        net,
                        input_size,
                        images: None,
                    })
                }
                Err(_) => Err(gen_err.context(format!(
                    "cannot load '{spec}' as a generator or a classifier"
                ))),
            },
        }
    }

    /// Makes the classifier read its images from `source` instead of world scenes; generators
    /// draw their own images and are refused.
    pub fn attach_images(&mut self, source: Arc<dyn ImageSource>) -> Result<()> {
        match self {
            Self::Generator { .. } => {
                bail!("a generator makes its own images; --images applies to classifiers only")
            }
            Self::Classifier { images, .. } => {
                if source.is_empty() {
                    bail!("the image source {} holds no image", source.describe());
                }
                *images = Some(source);
                Ok(())
            }
        }
    }

    /// The image source a classifier reads instead of world scenes, if any.
    pub fn image_source(&self) -> Option<&Arc<dyn ImageSource>> {
        match self {
            Self::Classifier {
                images: Some(src), ..
            } => Some(src),
            _ => None,
        }
    }

    /// The generator, when this is one (to take it back after a dissection of loaded models).
    pub fn into_generator(self) -> Option<ProGan> {
        match self {
            Self::Generator { net, .. } => Some(net),
            Self::Classifier { .. } => None,
        }
    }

    /// What the images are: `latent stream`, `world seeds` or the image source's description.
    pub fn images_description(&self) -> String {
        match self {
            Self::Generator { .. } => "latent stream".into(),
            Self::Classifier { images: None, .. } => "world seeds".into(),
            Self::Classifier {
                images: Some(src), ..
            } => src.describe(),
        }
    }

    /// The side a classifier's input images are resized to (`None` for a generator).
    pub fn input_size(&self) -> Option<i64> {
        match self {
            Self::Generator { .. } => None,
            Self::Classifier { input_size, .. } => Some(*input_size),
        }
    }

    /// `generator` or `classifier`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Generator { .. } => "generator",
            Self::Classifier { .. } => "classifier",
        }
    }

    fn net(&self) -> &dyn LayeredNet {
        match self {
            Self::Generator { net, .. } => net,
            Self::Classifier { net, .. } => net,
        }
    }

    /// The index of each named layer (canonical name or alias) with its canonical name; an
    /// unknown name is an error listing the network's layers.
    pub fn resolve_layers(&self, names: &[String]) -> Result<Vec<(usize, String)>> {
        let mut out: Vec<(usize, String)> = Vec::new();
        for name in names {
            let cut = Cut::new(self.net(), name)?;
            if out.iter().any(|(i, _)| *i == cut.layer_index()) {
                bail!("layer '{name}' is given twice; name each layer once");
            }
            out.push((cut.layer_index(), cut.layer_name().to_string()));
        }
        if out.is_empty() {
            bail!("no layer to dissect; give at least one --layer");
        }
        Ok(out)
    }

    /// A stable digest of the weights, so that statistics of another model are refused.
    pub fn digest(&self) -> Result<String> {
        weights_digest(&match self {
            Self::Generator { net, .. } => net.named_tensors(),
            Self::Classifier { net, .. } => net.named_tensors(),
        })
    }

    /// What draws this model's inputs (a plain value that can move to its own thread).
    pub fn sampler(&self) -> Sampler {
        match self {
            Self::Generator { net, stream } => Sampler::Latent {
                stream: *stream,
                dim: net.z_dim() as usize,
            },
            Self::Classifier { images: None, .. } => Sampler::World,
            Self::Classifier {
                images: Some(src), ..
            } => Sampler::Images(Arc::clone(src)),
        }
    }

    /// Runs the network on `inputs` and returns the outputs of `layers` (sorted indices,
    /// captured in one forward) and, when `want_images`, the images to segment: the generated
    /// images clamped to [−1, 1], or the world images themselves.
    pub fn forward(
        &self,
        inputs: &Inputs,
        layers: &[usize],
        want_images: bool,
    ) -> Result<(Vec<Tensor>, Option<Tensor>)> {
        let _guard = tch::no_grad_guard();
        let net = self.net();
        let mut order: Vec<usize> = layers.to_vec();
        order.sort_unstable();
        let (mut x, images) = match self {
            Self::Generator { .. } => (
                inputs
                    .z
                    .as_ref()
                    .context("generator inputs lack z")?
                    .shallow_clone(),
                None,
            ),
            Self::Classifier {
                net, input_size, ..
            } => {
                let images = inputs.images.as_ref().context("world inputs lack images")?;
                (
                    net.preprocess(&to_input_size(images, *input_size)),
                    Some(images.shallow_clone()),
                )
            }
        };
        let mut captured = Vec::with_capacity(order.len());
        let mut at = 0;
        for &layer in &order {
            x = net.forward_range(&x, at, layer + 1);
            at = layer + 1;
            captured.push(x.shallow_clone());
        }
        let images = match (self, want_images) {
            (Self::Generator { .. }, true) => {
                Some(net.forward_range(&x, at, net.num_layers()).clamp(-1.0, 1.0))
            }
            (_, true) => images,
            (_, false) => None,
        };
        let acts = layers
            .iter()
            .map(|l| captured[order.iter().position(|o| o == l).unwrap()].shallow_clone())
            .collect();
        Ok((acts, images))
    }
}

/// Draws inputs for image ids without any network work.
#[derive(Clone, Debug)]
pub enum Sampler {
    /// Latent rows of a sample stream.
    Latent {
        /// Stream seed.
        stream: u32,
        /// Latent length.
        dim: usize,
    },
    /// World scenes (ids are seeds) with their label maps.
    World,
    /// Images of an [`ImageSource`] (no label maps).
    Images(Arc<dyn ImageSource>),
}

impl Sampler {
    /// The inputs of image `ids`: latent rows, or rendered scenes with their label maps.
    pub fn inputs(&self, ids: &[u64], device: Device) -> Result<Inputs> {
        match self {
            Self::Latent { stream, dim } => Ok(Inputs {
                z: Some(z_rows(*stream, ids, *dim, device)?),
                images: None,
                truth: None,
            }),
            Self::World => {
                let batch = world_batch(ids, false, device);
                Ok(Inputs {
                    z: None,
                    images: Some(batch.images),
                    truth: Some(batch.labels.unsqueeze(1)),
                })
            }
            Self::Images(src) => Ok(Inputs {
                z: None,
                images: Some(src.images(ids, device)?),
                truth: None,
            }),
        }
    }
}

fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A stable digest of named weights (FNV-1a over each name and its values as float32), recorded
/// with dissection statistics and results so that those of other weights are refused.
pub fn weights_digest(tensors: &[(String, Tensor)]) -> Result<String> {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for (name, t) in tensors {
        hash = fnv1a(name.as_bytes(), hash);
        let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        let values = Vec::<f32>::try_from(t.flatten(0, -1))?;
        for v in values {
            hash = fnv1a(&v.to_bits().to_le_bytes(), hash);
        }
    }
    Ok(format!("{hash:016x}"))
}

/// What labels the images: a segmenter network, or the world's ground truth.
pub enum Labeller {
    /// A segmenter.
    Net(Box<dyn Segmenter>),
    /// The world's own label maps (world image sources only).
    Truth(Vec<Label>),
}

impl Labeller {
    /// Loads `spec` (a segmenter name, directory or TorchScript file, or `truth`) for `model`.
    pub fn load(spec: &str, model: &Model, device: Device) -> Result<Self> {
        Self::load_output(spec, None, model, device)
    }

    /// Loads `spec` as [`Labeller::load`] does; `output` names the entry of a TorchScript
    /// segmenter's dict or tuple output that holds its label maps or scores.
    pub fn load_output(
        spec: &str,
        output: Option<&str>,
        model: &Model,
        device: Device,
    ) -> Result<Self> {
        if spec == TRUTH {
            if let Model::Generator { .. } = model {
                bail!(
                    "the truth segmenter gives the world's own label maps, which exist only for world images; \
                     generated images need a segmenter such as world-seg"
                );
            }
            if output.is_some() {
                bail!(
                    "--segmenter-output chooses among a TorchScript segmenter's outputs; the truth has none"
                );
            }
            return Ok(Self::Truth(crate::segment::world_labels()));
        }
        Ok(Self::Net(load_segmenter_output(spec, output, device)?))
    }

    /// Labels by id (0 = none).
    pub fn labels(&self) -> &[Label] {
        match self {
            Self::Net(s) => s.labels(),
            Self::Truth(l) => l,
        }
    }

    /// Label maps `[B, K, size, size]` (i64) for `images` (or the world's `truth`), resized to
    /// `size` by [`resize_labels`] when the segmenter gives another resolution.
    pub fn segment(&self, images: &Tensor, truth: Option<&Tensor>, size: i64) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let maps = match self {
            Self::Net(s) => s.segment(images)?,
            Self::Truth(_) => truth
                .context("the truth segmenter needs world images with their label maps")?
                .shallow_clone(),
        };
        let s = maps.size();
        if s.len() != 4 || s[0] != images.size()[0] {
            bail!(
                "the segmenter returned label maps of shape {s:?} for {} images; expected [N, K, h, w]",
                images.size()[0]
            );
        }
        let (h, w) = (s[2], s[3]);
        if h != w {
            bail!(
                "the segmenter returned {h}×{w} label maps for square images; dissection needs \
                 square maps (a segmenter that pads or crops must undo it before returning)"
            );
        }
        Ok(resize_labels(&maps.to_kind(Kind::Int64), size))
    }
}

/// Label maps `[B, K, h, w]` resized to `size × size` by nearest neighbour at pixel centres:
/// output pixel `i` takes input pixel `⌊(i + ½)·h / size⌋` (PyTorch's `nearest-exact`), so a
/// map `f` times larger is sampled at the centre of each `f × f` block and a smaller one is
/// repeated. Labels are never blended.
pub fn resize_labels(maps: &Tensor, size: i64) -> Tensor {
    let s = maps.size();
    let (h, w) = (s[2], s[3]);
    if h == size && w == size {
        return maps.shallow_clone();
    }
    let index = |from: i64| {
        let rows: Vec<i64> = (0..size)
            .map(|i| ((2 * i + 1) * from) / (2 * size))
            .collect();
        Tensor::from_slice(&rows).to_device(maps.device())
    };
    maps.index_select(2, &index(h))
        .index_select(3, &index(w))
        .contiguous()
}
