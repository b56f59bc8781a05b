//! A classifier as the analyses see it: the network, the image side it expects and its class
//! names, with the checks every analysis needs (conv layers only, known class names, input size).

use crate::cut::Cut;
use crate::imageio::to_input_size;
use crate::nets::layered::LayeredNet;
use crate::nets::vgg::Vgg;
use crate::world::SceneClass;
use crate::zoo;
use anyhow::{Result, bail};
use tch::{Device, Tensor};

/// A VGG classifier with its input size and class names.
pub struct Classifier {
    /// The network.
    pub net: Vgg,
    /// The image side it expects; other sizes are resized (bilinear) to it.
    pub input_size: i64,
    /// Class names in output order.
    pub classes: Vec<String>,
    /// A short name for summaries.
    pub name: String,
}

impl Classifier {
    /// Loads a classifier with [`zoo::load_classifier`] and honours its card's `input_size` and
    /// `classes`. Without a card the world's scene classes are assumed when the class count
    /// matches (else `class0 …`), and the input size is 64.
    pub fn load(spec: &str, device: Device) -> Result<Self> {
        Self::load_sized(spec, None, device)
    }

    /// Loads a classifier as [`Classifier::load`] does, taking `input_size` images when the model
    /// has no card that states its size (see [`input_size`]).
    pub fn load_sized(spec: &str, input_size: Option<i64>, device: Device) -> Result<Self> {
        let (net, source) = zoo::load_classifier(spec, device)?;
        let card = source.card.as_ref();
        let input_size = self::input_size(card.and_then(|c| c.input_size), input_size, spec)?;
        let classes = match card.and_then(|c| c.classes.clone()) {
            Some(c) => c,
            None => default_class_names(net.config().num_classes),
        };
        Self::new(net, input_size, classes, &source.name)
    }

    /// Wraps a network; `classes` must name every output.
    pub fn new(net: Vgg, input_size: i64, classes: Vec<String>, name: &str) -> Result<Self> {
        let n = net.config().num_classes;
        if classes.len() as i64 != n {
            bail!(
                "the classifier has {n} outputs but {} class names were given; give one name per output",
                classes.len()
            );
        }
        if input_size <= 0 {
            bail!("input size must be positive, not {input_size}");
        }
        Ok(Self {
            net,
            input_size,
            classes,
            name: name.to_string(),
        })
    }

    /// The index of a class name; an unknown name is an error listing the known ones.
    pub fn class_index(&self, name: &str) -> Result<usize> {
        match self.classes.iter().position(|c| c == name) {
            Some(i) => Ok(i),
            None => bail!(
                "unknown class '{name}'; this classifier's classes are: {}",
                self.classes.join(", ")
            ),
        }
    }

    /// Per world class (id order), the output that stands for it ([`SceneClass::outputs_in`]);
    /// an error when the classifier lacks a world class.
    pub fn world_class_outputs(&self) -> Result<Tensor> {
        let map = SceneClass::outputs_in(&self.classes)?;
        Ok(Tensor::from_slice(&map).to_device(self.net.device()))
    }

    /// Checks `[N, 3, H, W]` images and says whether they will be resized to the input size
    /// (`Some(note)`), or `None` when they already fit.
    pub fn check_images(&self, images: &Tensor) -> Result<Option<String>> {
        let s = images.size();
        if s.len() != 4 || s[1] != 3 {
            bail!("expected RGB images as [N, 3, H, W] in [-1, 1], got shape {s:?}");
        }
        if s[2] == self.input_size && s[3] == self.input_size {
            return Ok(None);
        }
        Ok(Some(format!(
            "images are {}×{}; resized (bilinear) to the classifier's input size {n}×{n}",
            s[2],
            s[3],
            n = self.input_size
        )))
    }

    /// Images in [−1, 1] (any size) as the network's normalised input at its input size.
    pub fn network_input(&self, images: &Tensor) -> Tensor {
        self.net.preprocess(&to_input_size(images, self.input_size))
    }

    /// Class logits for images in [−1, 1] of any size (differentiable in the images).
    pub fn logits(&self, images: &Tensor) -> Tensor {
        self.net.forward(&self.network_input(images))
    }

    /// Cuts the network at a conv feature layer (a conv, its ReLU or a pool); any other layer
    /// is refused.
    pub fn conv_cut(&self, layer: &str) -> Result<Cut<'_, Vgg>> {
        let index = self.net.layer_index(layer)?;
        if !self.net.is_conv_feature(index) {
            bail!(
                "layer '{layer}' ({}) is not a conv layer; unit analyses need a conv feature layer \
                 such as conv5_3 or relu5_3",
                self.net.layer_names()[index]
            );
        }
        Cut::new(&self.net, layer)
    }

    /// Number of units (channels) of a conv feature layer.
    pub fn units(&self, cut: &Cut<'_, Vgg>) -> i64 {
        self.net
            .channels(cut.layer_index())
            .expect("a conv feature layer has channels")
    }

    /// The cut layer's output for images in [−1, 1] of any size.
    pub fn features(&self, cut: &Cut<'_, Vgg>, images: &Tensor) -> Tensor {
        cut.prefix(&self.network_input(images))
    }
}

/// The input side assumed for a classifier whose card does not state one and for which none is
/// given.
pub const DEFAULT_INPUT_SIZE: i64 = 64;

/// The image side classifier `name` takes: its card's `input_size` when it has one (a different
/// `requested` side is noted on stderr and ignored), else `requested`, else
/// [`DEFAULT_INPUT_SIZE`]. A side outside 1..=4096 is refused.
pub fn input_size(card: Option<i64>, requested: Option<i64>, name: &str) -> Result<i64> {
    if let Some(n) = requested
        && !(1..=4096).contains(&n)
    {
        bail!("--input-size must be between 1 and 4096 pixels, got {n}");
    }
    match (card, requested) {
        (Some(c), Some(r)) if c != r => {
            eprintln!(
                "note: {name}'s model card says its input is {c}×{c}; --input-size {r} is ignored \
                 (the card wins; edit model.json to change it)"
            );
            Ok(c)
        }
        (Some(c), _) => Ok(c),
        (None, Some(r)) => Ok(r),
        (None, None) => Ok(DEFAULT_INPUT_SIZE),
    }
}

/// The world's scene class names when there are as many classes, else `class0, class1, …`.
pub fn default_class_names(n: i64) -> Vec<String> {
    if n == SceneClass::ALL.len() as i64 {
        SceneClass::ALL
            .iter()
            .map(|c| c.name().to_string())
            .collect()
    } else {
        (0..n).map(|i| format!("class{i}")).collect()
    }
}

#[cfg(test)]
pub(crate) mod testnet {
    use super::*;
    use crate::nets::vgg::{Normalization, VggConfig};
    use tch::nn;

    /// Values uniform in `[lo, hi)` from a seeded SplitMix64 stream: test inputs that do not
    /// depend on libtorch's global generator, which tests running in parallel share.
    pub fn uniform(shape: &[i64], seed: u64, lo: f64, hi: f64) -> Tensor {
        let mut rng = crate::prng::SplitMix64::new(seed);
        let n: i64 = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| (lo + (hi - lo) * rng.next_open01()) as f32)
            .collect();
        Tensor::from_slice(&v).view(shape)
    }

    /// A tiny random VGG (conv5_3 with 64 units, 2×2 at 32×32 input) over the six painted kinds
    /// of the world (finer world classes read as their painted kind),
    /// its classifier weights scaled up so that logits depend clearly on the input. Weights are
    /// uniform with the spread of `Vgg::trainable`, from a stream seeded by `seed` (not the global generator, so the
    /// network is the same whatever other tests run at the same time). The returned store keeps
    /// the weights alive.
    pub fn tiny(seed: i64) -> (nn::VarStore, Classifier) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Vgg::trainable(
            &vs.root(),
            VggConfig::scaled(0.125, 2, 32, SceneClass::PAINTED.len() as i64),
            Normalization::imagenet(),
        );
        tch::no_grad(|| {
            let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            for (i, (name, t)) in vars.iter_mut().enumerate() {
                let shape = t.size();
                // the spread of `Vgg::trainable`: conv weights with sd √(2/fan-out), linear
                // weights with sd 0.01 (×20 for the scaled-up classifier), biases zero
                let sd = if name.ends_with("bias") {
                    0.0
                } else if shape.len() == 4 {
                    (2.0 / (shape[0] * shape[2] * shape[3]) as f64).sqrt()
                } else {
                    0.01 * if name.starts_with("classifier") {
                        20.0
                    } else {
                        1.0
                    }
                };
                let bound = sd * 3f64.sqrt();
                t.copy_(&uniform(
                    &shape,
                    seed as u64 * 1000 + i as u64,
                    -bound,
                    bound,
                ));
            }
        });
        let painted = SceneClass::PAINTED.iter().map(|c| c.name().to_string());
        let clf = Classifier::new(net, 32, painted.collect(), "tiny").unwrap();
        (vs, clf)
    }
}

#[cfg(test)]
mod tests {
    use super::testnet::tiny;
    use super::*;
    use tch::Kind;

    #[test]
    fn bad_layers_classes_and_shapes_are_explained() {
        let (_vs, clf) = tiny(0);
        let err = clf.conv_cut("fc6").err().unwrap().to_string();
        assert!(
            err.contains("not a conv layer") && err.contains("conv5_3"),
            "{err}"
        );
        assert!(clf.conv_cut("avgpool").is_err());
        assert!(clf.conv_cut("relu5_3").is_ok());
        let err = clf.class_index("desert").unwrap_err().to_string();
        assert!(
            err.contains("unknown class 'desert'") && err.contains("beach"),
            "{err}"
        );
        assert_eq!(clf.class_index("beach").unwrap(), 5);
        let img = Tensor::zeros([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let note = clf.check_images(&img).unwrap().unwrap();
        assert!(note.contains("64×64") && note.contains("32×32"), "{note}");
        assert_eq!(clf.logits(&img).size(), [2, 6]);
        let fit = Tensor::zeros([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert!(clf.check_images(&fit).unwrap().is_none());
        assert!(
            clf.check_images(&Tensor::zeros([3, 32, 32], (Kind::Float, Device::Cpu)))
                .is_err()
        );
        let names = vec!["a".to_string()];
        let (_vs2, other) = tiny(1);
        assert!(Classifier::new(other.net, 32, names, "x").is_err());
    }
}
