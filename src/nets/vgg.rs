//! VGG-16 in the torchvision layout.
//!
//! Layers are `features.0 … features.30` (13 convs with ReLUs and five max-pools), `avgpool`
//! (adaptive average pooling to `pool × pool`, then flattening) and `classifier.0 … classifier.6`
//! (fc6, relu6, drop6, fc7, relu7, drop7, fc8). The conv names `conv1_1 … conv5_3`, `relu1_1 …`,
//! `pool1 … pool5`, `fc6 …` are accepted as aliases. Channel widths (a width multiplier), the
//! hidden size, the pooled size and the class count are all inferred from a checkpoint.
//! Inputs are images in [−1, 1]; [`Vgg::preprocess`] maps them to the network's normalisation.

use super::checkpoint::{Expected, StateDict};
use super::layered::LayeredNet;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{Device, Kind, Tensor, nn};

/// Number of conv layers per VGG-16 stage.
const STAGES: [usize; 5] = [2, 2, 3, 3, 3];

/// The geometry of a VGG-16.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VggConfig {
    /// Output channels of the 13 convs (torchvision: 64, 64, 128, 128, 256 ×3, 512 ×6).
    pub channels: Vec<i64>,
    /// Side of the adaptive average pool before the classifier (torchvision: 7).
    pub pool: i64,
    /// Width of fc6 and fc7 (torchvision: 4096).
    pub hidden: i64,
    /// Number of classes (365 for Places365).
    pub num_classes: i64,
}

impl VggConfig {
    /// torchvision's VGG-16 with `num_classes` outputs.
    pub fn standard(num_classes: i64) -> Self {
        Self::scaled(1.0, 7, 4096, num_classes)
    }

    /// VGG-16 with every conv width multiplied by `width` (at least 1 channel).
    pub fn scaled(width: f64, pool: i64, hidden: i64, num_classes: i64) -> Self {
        let base = [64, 128, 256, 512, 512];
        let channels = STAGES
            .iter()
            .zip(base)
            .flat_map(|(&n, c)| std::iter::repeat_n(((c as f64 * width).round() as i64).max(1), n))
            .collect();
        Self {
            channels,
            pool,
            hidden,
            num_classes,
        }
    }
}

/// Per-channel input normalisation applied to images in [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Channel means (RGB).
    pub mean: [f64; 3],
    /// Channel standard deviations (RGB).
    pub std: [f64; 3],
}

impl Normalization {
    /// The ImageNet statistics used by torchvision and Places365 models.
    pub fn imagenet() -> Self {
        Self {
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }
}

enum Op {
    Conv { weight: Tensor, bias: Tensor },
    Relu,
    MaxPool,
    AvgPool(i64),
    Linear { weight: Tensor, bias: Tensor },
    Dropout,
}

/// The network.
pub struct Vgg {
    config: VggConfig,
    names: Vec<String>,
    ops: Vec<Op>,
    device: Device,
    normalization: Normalization,
    train: bool,
}

/// Canonical layer names and the role of each (conv index, linear index or other).
fn layer_plan(config: &VggConfig) -> Vec<(String, Option<String>)> {
    let mut plan = Vec::new();
    let mut i = 0;
    for (stage, &n) in STAGES.iter().enumerate() {
        for k in 0..n {
            plan.push((
                format!("features.{i}"),
                Some(format!("conv{}_{}", stage + 1, k + 1)),
            ));
            plan.push((
                format!("features.{}", i + 1),
                Some(format!("relu{}_{}", stage + 1, k + 1)),
            ));
            i += 2;
        }
        plan.push((format!("features.{i}"), Some(format!("pool{}", stage + 1))));
        i += 1;
    }
    plan.push(("avgpool".into(), None));
    for (j, alias) in ["fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8"]
        .iter()
        .enumerate()
    {
        plan.push((format!("classifier.{j}"), Some(alias.to_string())));
    }
    debug_assert_eq!(config.channels.len(), 13);
    plan
}

fn linear_shapes(config: &VggConfig) -> [(i64, i64); 3] {
    let c = *config.channels.last().unwrap();
    [
        (config.hidden, c * config.pool * config.pool),
        (config.hidden, config.hidden),
        (config.num_classes, config.hidden),
    ]
}

impl Vgg {
    /// The tensors a checkpoint of this geometry holds.
    pub fn expected_tensors(config: &VggConfig) -> Vec<Expected> {
        let mut out = Vec::new();
        let mut cin = 3;
        let mut idx = 0;
        let mut conv = config.channels.iter();
        for &n in &STAGES {
            for _ in 0..n {
                let cout = *conv.next().unwrap();
                out.push((format!("features.{idx}.weight"), vec![cout, cin, 3, 3]));
                out.push((format!("features.{idx}.bias"), vec![cout]));
                cin = cout;
                idx += 2;
            }
            idx += 1;
        }
        for (j, (o, i)) in [0, 3, 6].iter().zip(linear_shapes(config)) {
            out.push((format!("classifier.{j}.weight"), vec![o, i]));
            out.push((format!("classifier.{j}.bias"), vec![o]));
        }
        out
    }

    /// Whether a checkpoint looks like a torchvision VGG.
    pub fn recognises(sd: &StateDict) -> bool {
        sd.contains("features.0.weight") && sd.contains("classifier.6.weight")
    }

    /// Infers the geometry from a checkpoint's shapes.
    pub fn config_from_state_dict(sd: &StateDict) -> Result<VggConfig> {
        let src = sd.source().display();
        if !Self::recognises(sd) {
            bail!("{src} is not a VGG-16 checkpoint (no features.0.weight / classifier.6.weight)");
        }
        let mut channels = Vec::new();
        let mut idx = 0;
        for &n in &STAGES {
            for _ in 0..n {
                let key = format!("features.{idx}.weight");
                match sd.shape(&key) {
                    Some(s) if s.len() == 4 => channels.push(s[0]),
                    Some(s) => bail!("{src}: {key} has shape {s:?}, expected [out, in, 3, 3]"),
                    None => bail!("{src} is not a VGG-16 checkpoint: {key} is missing"),
                }
                idx += 2;
            }
            idx += 1;
        }
        let fc6 = sd.shape("classifier.0.weight").unwrap_or_default();
        let fc8 = sd.shape("classifier.6.weight").unwrap_or_default();
        if fc6.len() != 2 || fc8.len() != 2 {
            bail!("{src}: classifier weights must be matrices (fc6 {fc6:?}, fc8 {fc8:?})");
        }
        let c5 = channels[12];
        let area = fc6[1] / c5;
        let pool = (area as f64).sqrt().round() as i64;
        if pool * pool * c5 != fc6[1] {
            bail!(
                "{src}: classifier.0 takes {} inputs, which is not {c5} channels × a square pool",
                fc6[1]
            );
        }
        Ok(VggConfig {
            channels,
            pool,
            hidden: fc6[0],
            num_classes: fc8[0],
        })
    }

    /// Builds the network from a checkpoint (strict).
    pub fn from_state_dict(
        sd: StateDict,
        normalization: Normalization,
        device: Device,
    ) -> Result<Self> {
        let config = Self::config_from_state_dict(&sd)?;
        sd.check_strict("VGG-16", &Self::expected_tensors(&config))?;
        let tensors = Self::expected_tensors(&config)
            .iter()
            .map(|(k, _)| sd.tensor(k, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::from_weights(config, tensors, normalization, device))
    }

    /// Loads a `.pth` or `.safetensors` checkpoint.
    pub fn load(path: &Path, normalization: Normalization, device: Device) -> Result<Self> {
        Self::from_state_dict(StateDict::load(path)?, normalization, device)
    }

    /// A network whose weights are trainable variables of `vs`, named as in torchvision
    /// (Kaiming-normal convs, N(0, 0.01) linears, zero biases).
    pub fn trainable(vs: &nn::Path, config: VggConfig, normalization: Normalization) -> Self {
        let tensors = Self::expected_tensors(&config)
            .iter()
            .map(|(name, shape)| {
                let (module, param) = name.rsplit_once('.').unwrap();
                let mut p = vs.clone();
                for part in module.split('.') {
                    p = &p / part;
                }
                if param == "bias" {
                    p.zeros(param, shape)
                } else if shape.len() == 4 {
                    let fan_out = (shape[0] * shape[2] * shape[3]) as f64;
                    p.randn(param, shape, 0.0, (2.0 / fan_out).sqrt())
                } else {
                    p.randn(param, shape, 0.0, 0.01)
                }
            })
            .collect();
        Self::from_weights(config, tensors, normalization, vs.device())
    }

    fn from_weights(
        config: VggConfig,
        tensors: Vec<Tensor>,
        normalization: Normalization,
        device: Device,
    ) -> Self {
        let mut weights = tensors.into_iter();
        let mut next_pair = || {
            let w = weights.next().unwrap();
            let b = weights.next().unwrap();
            (w, b)
        };
        let plan = layer_plan(&config);
        let mut ops = Vec::new();
        for (name, alias) in &plan {
            let alias = alias.as_deref().unwrap_or("");
            let op = if alias.starts_with("conv") {
                let (weight, bias) = next_pair();
                Op::Conv { weight, bias }
            } else if alias.starts_with("relu") {
                Op::Relu
            } else if alias.starts_with("pool") {
                Op::MaxPool
            } else if name == "avgpool" {
                Op::AvgPool(config.pool)
            } else if alias.starts_with("fc") {
                let (weight, bias) = next_pair();
                Op::Linear { weight, bias }
            } else {
                Op::Dropout
            };
            ops.push(op);
        }
        let names = plan.into_iter().map(|(n, _)| n).collect();
        Self {
            config,
            names,
            ops,
            device,
            normalization,
            train: false,
        }
    }

    /// Switches dropout on (training) or off (evaluation, the default).
    pub fn set_train(&mut self, train: bool) {
        self.train = train;
    }

    /// The geometry.
    pub fn config(&self) -> &VggConfig {
        &self.config
    }

    /// The input normalisation.
    pub fn normalization(&self) -> &Normalization {
        &self.normalization
    }

    /// Maps images in [−1, 1] (`[N, 3, H, W]`) to the network's input normalisation.
    pub fn preprocess(&self, images: &Tensor) -> Tensor {
        let dev = images.device();
        let mean = Tensor::from_slice(&self.normalization.mean)
            .to_kind(Kind::Float)
            .to_device(dev);
        let std = Tensor::from_slice(&self.normalization.std)
            .to_kind(Kind::Float)
            .to_device(dev);
        ((images + 1.0) / 2.0 - mean.view([1, 3, 1, 1])) / std.view([1, 3, 1, 1])
    }

    /// Class logits for images in [−1, 1].
    pub fn classify(&self, images: &Tensor) -> Tensor {
        self.forward(&self.preprocess(images))
    }

    /// Number of output channels of a layer (conv layers and their ReLU / pool).
    pub fn channels(&self, layer: usize) -> Option<i64> {
        self.ops[..=layer].iter().rev().find_map(|op| match op {
            Op::Conv { weight, .. } | Op::Linear { weight, .. } => Some(weight.size()[0]),
            _ => None,
        })
    }

    /// Whether a layer is a conv layer or a ReLU / pool directly on conv features.
    pub fn is_conv_feature(&self, layer: usize) -> bool {
        self.names[layer].starts_with("features.")
    }

    /// The weights in torchvision layout, for saving.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (name, op) in self.names.iter().zip(&self.ops) {
            if let Op::Conv { weight, bias } | Op::Linear { weight, bias } = op {
                out.push((format!("{name}.weight"), weight.detach()));
                out.push((format!("{name}.bias"), bias.detach()));
            }
        }
        out
    }
}

impl LayeredNet for Vgg {
    fn layer_names(&self) -> &[String] {
        &self.names
    }

    fn layer_aliases(&self) -> Vec<(String, String)> {
        layer_plan(&self.config)
            .into_iter()
            .filter_map(|(n, a)| a.map(|a| (a, n)))
            .collect()
    }

    fn forward_range(&self, x: &Tensor, from: usize, to: usize) -> Tensor {
        let mut x = x.shallow_clone();
        for op in &self.ops[from..to] {
            x = match op {
                Op::Conv { weight, bias } => {
                    x.conv2d(weight, Some(bias), [1, 1], [1, 1], [1, 1], 1)
                }
                Op::Relu => x.relu(),
                Op::MaxPool => x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
                Op::AvgPool(p) => x.adaptive_avg_pool2d([*p, *p]).flatten(1, -1),
                Op::Linear { weight, bias } => x.linear(weight, Some(bias)),
                Op::Dropout => x.dropout(0.5, self.train),
            };
        }
        x
    }

    fn device(&self) -> Device {
        self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchvision_geometry_and_aliases() {
        let cfg = VggConfig::standard(365);
        let exp = Vgg::expected_tensors(&cfg);
        assert_eq!(exp.len(), 32);
        assert_eq!(
            exp[24],
            ("features.28.weight".to_string(), vec![512, 512, 3, 3])
        );
        assert_eq!(
            exp[26],
            ("classifier.0.weight".to_string(), vec![4096, 25088])
        );
        assert_eq!(exp[31], ("classifier.6.bias".to_string(), vec![365]));
        let vs = nn::VarStore::new(Device::Cpu);
        let small = VggConfig::scaled(0.125, 1, 32, 6);
        let net = Vgg::trainable(&vs.root(), small, Normalization::imagenet());
        assert_eq!(net.layer_index("conv5_3").unwrap(), 28);
        assert_eq!(net.layer_index("relu5_3").unwrap(), 29);
        assert_eq!(net.layer_index("fc8").unwrap(), 38);
        let err = net.layer_index("conv6_1").unwrap_err().to_string();
        assert!(
            err.contains("unknown layer 'conv6_1'") && err.contains("conv5_3"),
            "{err}"
        );
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(net.classify(&x).size(), [2, 6]);
        assert_eq!(
            net.forward_range(&net.preprocess(&x), 0, 29).size(),
            [2, 64, 2, 2]
        );
        let cfg2 = Vgg::config_from_state_dict(&StateDict::from_tensors(net.named_tensors(), "m"))
            .unwrap();
        assert_eq!(cfg2, *net.config());
    }
}
