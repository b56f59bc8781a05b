//! The Progressive GAN generator in the netdissect layout.
//!
//! A flat sequence `layer1 … layerN, output_RxR`. Every block is PixelNorm → (nearest ×2
//! upsample) → conv (no bias) → ×`scale` + per-channel bias → LeakyReLU(0.2); the output block
//! is PixelNorm → 1×1 conv → ×`1/sqrt(C_in)` + bias, with no activation. `layer1` is a 4×4 conv
//! with padding 3 on the 1×1 latent map. `scale = sqrt(2)/k/sqrt(C_in)` is not stored in the
//! checkpoint; at load time it is folded into the conv weights, so inference runs one conv with
//! bias per block. The captured output of `layerN` is the post-LeakyReLU tensor, before the next
//! block's PixelNorm.
//!
//! A block that upsamples runs its convolution as four 2×2 phase convolutions on the
//! un-upsampled input ([`super::upconv`]), with the phase kernels made once at load; every
//! layer's output, and so every cut and edit, stays the same up to float rounding.
//! [`UpsampleConv::Plain`] runs the upsampling and the 3×3 convolution instead (for A/B runs).
//! On the CPU, inference runs channels-last ([`super::layout`]): weights are laid out that way
//! once at load, a range's input is converted on entry and its output handed back in the
//! default layout, so callers never see the difference.
//! Trainable generators always run the plain path: their weights change at every step.
//!
//! `sizes` lists the channel counts `[z, 4×4, 8×8, …]`: the standard 256×256 models use
//! `[512, 512, 512, 512, 512, 256, 128, 64]`. Sizes are inferred from a checkpoint's shapes.

use super::activation;
use super::checkpoint::{Expected, StateDict};
use super::layered::LayeredNet;
use super::layout;
use super::upconv::{self, UpsampleConv};
use anyhow::{Result, bail};
use std::path::Path;
use tch::{Device, Kind, Tensor, nn};

/// Divides each pixel's feature vector by its root mean square over channels.
pub fn pixel_norm(x: &Tensor) -> Tensor {
    if layout::is_channels_last(x) {
        // each pixel's channels are contiguous: one reading pass for the norms (a third less
        // CPU time than squaring into a temporary and averaging)
        let c = x.size()[1] as f64;
        let norm = x.norm_scalaropt_dim(2.0, [1], true);
        return x * (norm.square() / c + 1e-8).rsqrt();
    }
    x / (x.square().mean_dim(1, true, Kind::Float) + 1e-8).sqrt()
}

/// The negative slope of every ProGAN block's leaky ReLU.
pub const LEAKY_SLOPE: f64 = 0.2;

/// LeakyReLU with slope 0.2, as used by every ProGAN block.
pub fn leaky_relu_02(x: &Tensor) -> Tensor {
    activation::leaky_relu(x, LEAKY_SLOPE)
}

/// One block of the generator.
pub struct Block {
    weight: Tensor,
    bias: Tensor,
    /// Runtime weight scale; 1 once folded into `weight`.
    scale: f64,
    padding: i64,
    upsample: bool,
    activation: bool,
    /// The stacked phase kernels and the bias repeated per phase, when this block upsamples
    /// and runs fused.
    phases: Option<(Tensor, Tensor)>,
}

impl Block {
    /// Runs the block on its input.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let x = if x.dim() == 2 {
            x.view([x.size()[0], -1, 1, 1])
        } else {
            x.shallow_clone()
        };
        let mut x = pixel_norm(&x);
        let y = if let Some((kernels, bias4)) = &self.phases {
            let (h, w) = (x.size()[2], x.size()[3]);
            let phases = upconv::phase_conv(&x, kernels, bias4);
            if self.activation
                && let Some(out) = upconv::interleave_phases_leaky(&phases, h, w, LEAKY_SLOPE)
            {
                return out;
            }
            upconv::interleave_phases(&phases, h, w)
        } else {
            if self.upsample {
                let (h, w) = (x.size()[2], x.size()[3]);
                x = x.upsample_nearest2d([2 * h, 2 * w], Some(2.0), Some(2.0));
            }
            let p = self.padding;
            if self.scale == 1.0 {
                x.conv2d(&self.weight, Some(&self.bias), [1, 1], [p, p], [1, 1], 1)
            } else {
                x.conv2d(&self.weight, None::<Tensor>, [1, 1], [p, p], [1, 1], 1) * self.scale
                    + self.bias.view([1, -1, 1, 1])
            }
        };
        if self.activation {
            activation::leaky_relu_owned(y, LEAKY_SLOPE)
        } else {
            y
        }
    }

    /// The same block with its convolution weights laid out channels-last or in the default
    /// layout.
    fn with_layout(&self, channels_last: bool) -> Self {
        let lay = |t: &Tensor| layout::to_layout(t, channels_last);
        Self {
            weight: lay(&self.weight),
            bias: self.bias.shallow_clone(),
            scale: self.scale,
            padding: self.padding,
            upsample: self.upsample,
            activation: self.activation,
            phases: self
                .phases
                .as_ref()
                .map(|(k, b)| (lay(k), b.shallow_clone())),
        }
    }

    /// The same block on the same weight tensors, computing its upsampling convolution the
    /// `mode` way (only folded weights, scale 1, can run fused).
    fn with_upsample_conv(&self, mode: UpsampleConv) -> Result<Self> {
        let phases = match (&self.phases, mode) {
            _ if !self.upsample || self.scale != 1.0 => None,
            (_, UpsampleConv::Plain) => None,
            (Some((k, b)), UpsampleConv::Fused) => Some((k.shallow_clone(), b.shallow_clone())),
            (None, UpsampleConv::Fused) => {
                let kernels = upconv::phase_kernels(&self.weight)?;
                let kernels = layout::to_layout(&kernels, layout::is_channels_last(&self.weight));
                Some((kernels, self.bias.repeat([4])))
            }
        };
        Ok(Self {
            weight: self.weight.shallow_clone(),
            bias: self.bias.shallow_clone(),
            scale: self.scale,
            padding: self.padding,
            upsample: self.upsample,
            activation: self.activation,
            phases,
        })
    }
}

/// Layer geometry derived from `sizes`: (name, in, out, kernel, padding, upsample, gain).
struct LayerSpec {
    name: String,
    cin: i64,
    cout: i64,
    kernel: i64,
    padding: i64,
    upsample: bool,
    gain: f64,
    activation: bool,
}

/// The generator.
pub struct ProGan {
    sizes: Vec<i64>,
    names: Vec<String>,
    blocks: Vec<Block>,
    device: Device,
    output_tanh: bool,
    upsample_conv: UpsampleConv,
    channels_last: bool,
}

/// The output resolution of a generator with `n_layers` blocks (before the output block).
pub fn resolution_for_layers(n_layers: usize) -> i64 {
    4 * (1i64 << (n_layers / 2).saturating_sub(1))
}

fn layer_specs(sizes: &[i64]) -> Vec<LayerSpec> {
    let mut specs = Vec::new();
    let sqrt2 = std::f64::consts::SQRT_2;
    let mut push = |cin, cout, kernel, padding, upsample| {
        let name = format!("layer{}", specs.len() + 1);
        let gain = sqrt2 / kernel as f64;
        specs.push(LayerSpec {
            name,
            cin,
            cout,
            kernel,
            padding,
            upsample,
            gain,
            activation: true,
        });
    };
    push(sizes[0], sizes[1], 4, 3, false);
    push(sizes[1], sizes[1], 3, 1, false);
    for w in sizes[1..].windows(2) {
        push(w[0], w[1], 3, 1, true);
        push(w[1], w[1], 3, 1, false);
    }
    let res = resolution_for_layers(specs.len());
    let last = *sizes.last().unwrap();
    specs.push(LayerSpec {
        name: format!("output_{res}x{res}"),
        cin: last,
        cout: 3,
        kernel: 1,
        padding: 0,
        upsample: false,
        gain: 1.0,
        activation: false,
    });
    specs
}

impl ProGan {
    /// The tensors a checkpoint of this geometry holds, with their shapes.
    pub fn expected_tensors(sizes: &[i64]) -> Vec<Expected> {
        layer_specs(sizes)
            .iter()
            .flat_map(|s| {
                [
                    (
                        format!("{}.conv.weight", s.name),
                        vec![s.cout, s.cin, s.kernel, s.kernel],
                    ),
                    (format!("{}.wscale.b", s.name), vec![s.cout]),
                ]
            })
            .collect()
    }

    /// Whether a checkpoint looks like a ProGAN generator (new or old key layout).
    pub fn recognises(sd: &StateDict) -> bool {
        sd.contains("layer1.conv.weight") || sd.contains("features.0.conv.weight")
    }

    /// Renames the old `features.N` / `output` keys to `layerN+1` / `output_RxR`.
    fn normalise_keys(sd: StateDict) -> StateDict {
        if !sd.contains("features.0.conv.weight") {
            return sd;
        }
        let n = (0..)
            .take_while(|i| sd.contains(&format!("features.{i}.conv.weight")))
            .count();
        let res = resolution_for_layers(n);
        sd.rename(|k| {
            if let Some((i, tail)) = k.strip_prefix("features.").and_then(|r| r.split_once('.'))
                && let Ok(i) = i.parse::<usize>()
            {
                return format!("layer{}.{tail}", i + 1);
            }
            if let Some(tail) = k.strip_prefix("output.") {
                return format!("output_{res}x{res}.{tail}");
            }
            k.to_string()
        })
    }

    /// Infers `sizes` from the conv weight shapes, checking that consecutive layers fit.
    pub fn sizes_from_state_dict(sd: &StateDict) -> Result<Vec<i64>> {
        let src = sd.source().display();
        let n = (1..)
            .take_while(|i| sd.contains(&format!("layer{i}.conv.weight")))
            .count();
        if n < 2 || n % 2 != 0 {
            bail!(
                "{src} is not a ProGAN generator checkpoint: expected an even number (≥ 2) of \
                 layerN.conv.weight tensors, found {n}"
            );
        }
        let shape = |i: usize| {
            sd.shape(&format!("layer{i}.conv.weight"))
                .unwrap_or_default()
        };
        let first = shape(1);
        if first.len() != 4 {
            bail!("{src}: layer1.conv.weight has shape {first:?}, expected [out, z, 4, 4]");
        }
        let mut sizes = vec![first[1], first[0]];
        for i in (3..=n).step_by(2) {
            let s = shape(i);
            if s.len() != 4 {
                bail!("{src}: layer{i}.conv.weight has shape {s:?}, expected 4 dimensions");
            }
            sizes.push(s[0]);
        }
        Ok(sizes)
    }

    /// Builds the generator from a checkpoint's tensors (strict: every tensor must be present
    /// with the right shape, and nothing else), folding the weight scale into the weights.
    pub fn from_state_dict(sd: StateDict, device: Device) -> Result<Self> {
        let sd = Self::normalise_keys(sd);
        let sizes = Self::sizes_from_state_dict(&sd)?;
        sd.check_strict("ProGAN generator", &Self::expected_tensors(&sizes))?;
        let mut weights = Vec::new();
        for s in layer_specs(&sizes) {
            let w = sd.tensor(&format!("{}.conv.weight", s.name), device)?;
            let b = sd.tensor(&format!("{}.wscale.b", s.name), device)?;
            weights.push((w, b));
        }
        Self::from_weights(&sizes, weights, true, device)
    }

    /// Loads a `.pth` or `.safetensors` checkpoint.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        Self::from_state_dict(StateDict::load(path)?, device)
    }

    /// A generator with random weights (N(0,1) conv weights, zero biases, as at the start of
    /// training), reproducible from `seed`.
    pub fn random(sizes: &[i64], seed: i64, device: Device) -> Result<Self> {
        Self::check_sizes(sizes)?;
        tch::manual_seed(seed);
        let weights = layer_specs(sizes)
            .iter()
            .map(|s| {
                let w = Tensor::randn([s.cout, s.cin, s.kernel, s.kernel], (Kind::Float, device));
                (w, Tensor::zeros([s.cout], (Kind::Float, device)))
            })
            .collect();
        Self::from_weights(sizes, weights, true, device)
    }

    /// A generator whose weights are trainable variables of `vs` (named as in a netdissect
    /// checkpoint); the weight scale is applied at run time (equalised learning rate).
    pub fn trainable(vs: &nn::Path, sizes: &[i64]) -> Result<Self> {
        Self::check_sizes(sizes)?;
        let weights = layer_specs(sizes)
            .iter()
            .map(|s| {
                let p = vs / s.name.as_str();
                let w =
                    (&p / "conv").randn("weight", &[s.cout, s.cin, s.kernel, s.kernel], 0.0, 1.0);
                let b = (&p / "wscale").zeros("b", &[s.cout]);
                (w, b)
            })
            .collect();
        Self::from_weights(sizes, weights, false, vs.device())
    }

    fn check_sizes(sizes: &[i64]) -> Result<()> {
        if sizes.len() < 2 || sizes.iter().any(|&s| s <= 0) {
            bail!(
                "ProGAN sizes must list the latent size and at least one resolution's channels, all positive; got {sizes:?}"
            );
        }
        Ok(())
    }

    fn from_weights(
        sizes: &[i64],
        weights: Vec<(Tensor, Tensor)>,
        fold: bool,
        device: Device,
    ) -> Result<Self> {
        let specs = layer_specs(sizes);
        let mut blocks = Vec::new();
        let mut names = Vec::new();
        for (s, (w, b)) in specs.into_iter().zip(weights) {
            let scale = s.gain / (s.cin as f64).sqrt();
            let (weight, scale) = if fold { (w * scale, 1.0) } else { (w, scale) };
            names.push(s.name);
            blocks.push(Block {
                weight,
                bias: b,
                scale,
                padding: s.padding,
                upsample: s.upsample,
                activation: s.activation,
                phases: None,
            });
        }
        let plain = Self {
            sizes: sizes.to_vec(),
            names,
            blocks,
            device,
            output_tanh: false,
            upsample_conv: UpsampleConv::Plain,
            channels_last: false,
        };
        if fold {
            plain
                .with_channels_last(layout::preferred(device))
                .with_upsample_conv(upconv::default_mode())
        } else {
            Ok(plain)
        }
    }

    /// The same generator on the same weight tensors, computing the convolutions that follow an
    /// upsampling the `mode` way (a trainable generator stays plain). Fused phase kernels are
    /// made here, once, from the plain weights.
    pub fn with_upsample_conv(&self, mode: UpsampleConv) -> Result<Self> {
        let _g = tch::no_grad_guard();
        let blocks = self
            .blocks
            .iter()
            .map(|b| b.with_upsample_conv(mode))
            .collect::<Result<Vec<_>>>()?;
        let fused = blocks.iter().any(|b| b.phases.is_some());
        Ok(Self {
            sizes: self.sizes.clone(),
            names: self.names.clone(),
            blocks,
            device: self.device,
            output_tanh: self.output_tanh,
            upsample_conv: if fused {
                UpsampleConv::Fused
            } else {
                UpsampleConv::Plain
            },
            channels_last: self.channels_last,
        })
    }

    /// The same generator running channels-last (`true`) or in the default layout, with its
    /// weights laid out to match (for A/B runs; the default is [`layout::preferred`] for the
    /// device). A trainable generator keeps its variables as they are and stays in the default
    /// layout.
    pub fn with_channels_last(&self, on: bool) -> Self {
        let _g = tch::no_grad_guard();
        let on = on && self.blocks.iter().all(|b| b.scale == 1.0);
        Self {
            sizes: self.sizes.clone(),
            names: self.names.clone(),
            blocks: self.blocks.iter().map(|b| b.with_layout(on)).collect(),
            device: self.device,
            output_tanh: self.output_tanh,
            upsample_conv: self.upsample_conv,
            channels_last: on,
        }
    }

    /// Whether forwards run channels-last.
    pub fn channels_last(&self) -> bool {
        self.channels_last
    }

    /// How the convolutions after an upsampling run.
    pub fn upsample_conv(&self) -> UpsampleConv {
        self.upsample_conv
    }

    /// Clamps the output to [−1, 1] (the reference's optional Hardtanh).
    pub fn with_output_tanh(mut self, on: bool) -> Self {
        self.output_tanh = on;
        self
    }

    /// Channel counts `[z, 4×4, 8×8, …]`.
    pub fn sizes(&self) -> &[i64] {
        &self.sizes
    }

    /// Length of the latent vector.
    pub fn z_dim(&self) -> i64 {
        self.sizes[0]
    }

    /// Output image side in pixels.
    pub fn resolution(&self) -> i64 {
        resolution_for_layers(self.blocks.len() - 1)
    }

    /// Number of units (channels) of a layer.
    pub fn channels(&self, layer: usize) -> i64 {
        self.blocks[layer].weight.size()[0]
    }

    /// The weights in checkpoint layout (scale removed again), for saving.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let specs = layer_specs(&self.sizes);
        let mut out = Vec::new();
        for (s, b) in specs.iter().zip(&self.blocks) {
            let unscale = if b.scale == 1.0 {
                (s.cin as f64).sqrt() / s.gain
            } else {
                1.0
            };
            out.push((
                format!("{}.conv.weight", s.name),
                (&b.weight * unscale).detach().contiguous(),
            ));
            out.push((format!("{}.wscale.b", s.name), b.bias.detach()));
        }
        out
    }
}

impl LayeredNet for ProGan {
    fn layer_names(&self) -> &[String] {
        &self.names
    }

    fn forward_range(&self, x: &Tensor, from: usize, to: usize) -> Tensor {
        let mut x = if self.channels_last {
            layout::to_channels_last(x)
        } else {
            x.shallow_clone()
        };
        for block in &self.blocks[from..to] {
            x = block.forward(&x);
            if self.channels_last {
                // a no-op except after a block on a 1×1 grid, where both layouts coincide
                x = layout::to_channels_last(&x);
            }
        }
        if self.output_tanh && to == self.blocks.len() && to > from {
            x = x.clamp(-1.0, 1.0);
        }
        if self.channels_last {
            x.contiguous()
        } else {
            x
        }
    }

    fn device(&self) -> Device {
        self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_sizes_give_the_netdissect_geometry() {
        let sizes = [512, 512, 512, 512, 512, 256, 128, 64];
        let exp = ProGan::expected_tensors(&sizes);
        assert_eq!(exp.len(), 30);
        assert_eq!(
            exp[0],
            ("layer1.conv.weight".to_string(), vec![512, 512, 4, 4])
        );
        assert_eq!(
            exp[16],
            ("layer9.conv.weight".to_string(), vec![256, 512, 3, 3])
        );
        assert_eq!(
            exp[28],
            ("output_256x256.conv.weight".to_string(), vec![3, 64, 1, 1])
        );
        assert_eq!(resolution_for_layers(14), 256);
        assert_eq!(resolution_for_layers(10), 64);
    }

    #[test]
    fn layer_shapes_follow_the_schedule() {
        let g = ProGan::random(&[16, 8, 8, 4], 0, Device::Cpu).unwrap();
        assert_eq!(g.layer_names().len(), 7);
        assert_eq!(g.layer_names()[6], "output_16x16");
        let z = Tensor::randn([2, 16], (Kind::Float, Device::Cpu));
        let h4 = g.forward_range(&z, 0, 4);
        assert_eq!(h4.size(), [2, 8, 8, 8]);
        let out = g.forward(&z);
        assert_eq!(out.size(), [2, 3, 16, 16]);
        // layer outputs are post-LeakyReLU: negatives are exactly 0.2 × something ≤ 0
        let min = f64::try_from(h4.min()).unwrap();
        let max = f64::try_from(h4.max()).unwrap();
        assert!(min < 0.0 && max > 0.0 && -min < max, "min {min} max {max}");
    }

    #[test]
    fn named_tensors_round_trip_through_a_state_dict() {
        let g = ProGan::random(&[16, 8, 4], 3, Device::Cpu).unwrap();
        let sd = StateDict::from_tensors(g.named_tensors(), "memory");
        let g2 = ProGan::from_state_dict(sd, Device::Cpu).unwrap();
        let z = Tensor::randn([3, 16], (Kind::Float, Device::Cpu));
        let diff = (g.forward(&z) - g2.forward(&z)).abs().max();
        assert!(f64::try_from(diff).unwrap() < 1e-5);
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.size(), b.size());
        let err = f64::try_from((a - b).abs().max()).unwrap();
        err / f64::try_from(b.abs().max()).unwrap()
    }

    #[test]
    fn fused_and_plain_paths_agree_at_every_layer_and_cut() {
        let _g = tch::no_grad_guard();
        let fused = ProGan::random(&[32, 16, 16, 8, 8], 4, Device::Cpu)
            .unwrap()
            .with_upsample_conv(UpsampleConv::Fused)
            .unwrap();
        let plain = fused.with_upsample_conv(UpsampleConv::Plain).unwrap();
        assert_eq!(fused.upsample_conv(), UpsampleConv::Fused);
        assert_eq!(plain.upsample_conv(), UpsampleConv::Plain);
        let z = Tensor::randn([3, 32], (Kind::Float, Device::Cpu));
        let (mut a, mut b) = (z.shallow_clone(), z.shallow_clone());
        for i in 0..fused.num_layers() {
            a = fused.forward_range(&a, i, i + 1);
            b = plain.forward_range(&b, i, i + 1);
            let rel = max_rel(&a, &b);
            assert!(
                rel < 1e-5,
                "{}: relative error {rel}",
                fused.layer_names()[i]
            );
            // every suffix from this layer's output agrees too
            let rel = max_rel(
                &fused.forward_range(&b, i + 1, fused.num_layers()),
                &plain.forward_range(&b, i + 1, plain.num_layers()),
            );
            assert!(rel < 1e-5, "suffix after {}: {rel}", fused.layer_names()[i]);
        }
        // and the fused path is really another computation: the kernels are not the plain ones
        let block = fused.blocks.iter().find(|b| b.upsample).unwrap();
        let (kernels, _) = block.phases.as_ref().unwrap();
        assert_eq!(kernels.size()[2..], [2, 2]);
    }

    #[test]
    fn channels_last_runs_stay_channels_last_inside_and_agree_outside() {
        let _g = tch::no_grad_guard();
        let g = ProGan::random(&[32, 16, 16, 8, 8], 5, Device::Cpu).unwrap();
        assert!(
            g.channels_last(),
            "CPU inference generators run channels-last"
        );
        for mode in [UpsampleConv::Fused, UpsampleConv::Plain] {
            let cl = g.with_upsample_conv(mode).unwrap();
            let nchw = cl.with_channels_last(false);
            assert!(cl.channels_last() && !nchw.channels_last());
            let z = Tensor::randn([2, 32], (Kind::Float, Device::Cpu));
            let (mut a, mut b) = (z.shallow_clone(), z.shallow_clone());
            for i in 0..cl.num_layers() {
                a = cl.forward_range(&a, i, i + 1);
                b = nchw.forward_range(&b, i, i + 1);
                assert!(a.is_contiguous(), "{mode}: callers get the default layout");
                let rel = max_rel(&a, &b);
                assert!(rel < 1e-5, "{mode} {}: {rel}", cl.layer_names()[i]);
            }
            // inside a range every block after the first hands on a channels-last tensor
            let mut x = cl.blocks[0].forward(&z);
            for block in &cl.blocks[1..cl.blocks.len() - 1] {
                x = block.forward(&layout::to_channels_last(&x));
                assert!(layout::is_channels_last(&x), "{mode}: {:?}", x.stride());
            }
        }
        // saved weights come back in the default layout and equal
        let names = g.named_tensors();
        let back = g.with_channels_last(false).named_tensors();
        for ((n1, t1), (_, t2)) in names.iter().zip(&back) {
            assert!(t1.is_contiguous() && t1.equal(t2), "{n1}");
        }
        // a trainable generator stays in the default layout
        let vs = nn::VarStore::new(Device::Cpu);
        let t = ProGan::trainable(&vs.root(), &[16, 8, 8]).unwrap();
        assert!(!t.with_channels_last(true).channels_last());
    }

    #[test]
    fn gradients_flow_through_the_inference_paths() {
        // Without a gradient the activations run in place and the fused blocks interleave and
        // activate in one pass; with one (latent optimisation) they take the ordinary ops, and
        // every path gives the plain NCHW forward's values and latent gradient.
        let g = ProGan::random(&[32, 16, 16, 8, 8], 3, Device::Cpu).unwrap();
        let reference = g
            .with_upsample_conv(UpsampleConv::Plain)
            .unwrap()
            .with_channels_last(false);
        let z0 = Tensor::randn([2, 32], (Kind::Float, Device::Cpu));
        let grad_of = |net: &ProGan| {
            let z = z0.copy().set_requires_grad(true);
            let out = net.forward(&z);
            out.square().sum(Kind::Float).backward();
            (out.detach(), z.grad())
        };
        let (out_ref, grad_ref) = grad_of(&reference);
        for net in [g.with_channels_last(true), g.with_channels_last(false)] {
            let (out, grad) = grad_of(&net);
            assert!(max_rel(&out, &out_ref) < 1e-5);
            assert!(
                max_rel(&grad, &grad_ref) < 1e-4,
                "{}",
                max_rel(&grad, &grad_ref)
            );
            let _g = tch::no_grad_guard();
            assert!(max_rel(&net.forward(&z0), &out_ref) < 1e-5);
        }
        let x = Tensor::randn([3, 4, 5, 5], (Kind::Float, Device::Cpu));
        assert!(activation::leaky_relu_owned(x.copy(), LEAKY_SLOPE).equal(&leaky_relu_02(&x)));
    }

    #[test]
    fn trainable_generators_stay_plain() {
        let vs = nn::VarStore::new(Device::Cpu);
        let g = ProGan::trainable(&vs.root(), &[8, 8, 4]).unwrap();
        assert_eq!(g.upsample_conv(), UpsampleConv::Plain);
        assert_eq!(
            g.with_upsample_conv(UpsampleConv::Fused)
                .unwrap()
                .upsample_conv(),
            UpsampleConv::Plain
        );
    }

    #[test]
    fn wrong_shapes_are_named() {
        let g = ProGan::random(&[16, 8, 4], 3, Device::Cpu).unwrap();
        let mut t = g.named_tensors();
        t.retain(|(k, _)| k != "layer2.wscale.b");
        t.push((
            "layer4.wscale.b".into(),
            Tensor::zeros([5], (Kind::Float, Device::Cpu)),
        ));
        t.push((
            "extra.weight".into(),
            Tensor::zeros([1], (Kind::Float, Device::Cpu)),
        ));
        let err = ProGan::from_state_dict(StateDict::from_tensors(t, "x.pth"), Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("missing: layer2.wscale.b"), "{err}");
        assert!(err.contains("unexpected: extra.weight"), "{err}");
        assert!(
            err.contains("layer4.wscale.b is [5], expected [4]"),
            "{err}"
        );
    }
}
