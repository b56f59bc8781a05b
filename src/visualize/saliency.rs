//! Saliency maps: which pixels drive a score. One function per method, all over one gradient
//! helper ([`input_gradient`]); each returns `[N, H, W]` maps at the images' resolution, larger
//! where a pixel matters more.
//!
//! The score is a weighted sum of logits per image ([`Explain`]): a class logit, or its margin
//! over another class (what tells a forest path from a forest).

use super::model::Model;
use crate::prng::SplitMix64;
use anyhow::{Result, bail};
use serde::Serialize;
use tch::{Kind, Tensor};

/// Images per forward pass where a method runs many copies (SmoothGrad, integrated gradients,
/// occlusion).
const CHUNK: i64 = 32;

/// What a map explains, per image: the logit of `class`, minus that of `against` when given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explain {
    /// The class explained, per image.
    pub class: Vec<i64>,
    /// The class it is told from, per image (a margin), or `None` for the bare logit.
    pub against: Option<Vec<i64>>,
}

impl Explain {
    /// The bare logit of `class` for every one of `n` images.
    pub fn class(class: i64, n: usize) -> Self {
        Self {
            class: vec![class; n],
            against: None,
        }
    }

    /// The margin of `class` over `against` for every one of `n` images.
    pub fn margin(class: i64, against: i64, n: usize) -> Self {
        Self {
            class: vec![class; n],
            against: Some(vec![against; n]),
        }
    }

    /// The `[N, K]` weights whose row-wise product with the logits is the score.
    pub fn weights(&self, classes: i64, device: tch::Device) -> Result<Tensor> {
        let n = self.class.len();
        let mut w = vec![0f32; n * classes as usize];
        let check = |c: i64| {
            if c < 0 || c >= classes {
                bail!("class {c} is out of range: the model has {classes} outputs")
            }
            Ok(c as usize)
        };
        for (i, &c) in self.class.iter().enumerate() {
            w[i * classes as usize + check(c)?] += 1.0;
        }
        if let Some(against) = &self.against {
            if against.len() != n {
                bail!(
                    "{} classes to explain but {} to tell them from",
                    n,
                    against.len()
                );
            }
            for (i, &c) in against.iter().enumerate() {
                w[i * classes as usize + check(c)?] -= 1.0;
            }
        }
        Ok(Tensor::from_slice(&w)
            .view([n as i64, classes])
            .to_device(device))
    }
}

/// The score of each image: `[N]`.
pub fn score(logits: &Tensor, weights: &Tensor) -> Tensor {
    (logits * weights).sum_dim_intlist(1, false, Kind::Float)
}

/// Scores of `images` without gradients, in chunks: `[N]`. `weights` has one row per image.
pub fn scores(model: &Model, images: &Tensor, weights: &Tensor) -> Tensor {
    let _guard = tch::no_grad_guard();
    let n = images.size()[0];
    let parts: Vec<Tensor> = (0..n)
        .step_by(CHUNK as usize)
        .map(|s| {
            let e = (s + CHUNK).min(n);
            score(
                &model.logits(&images.narrow(0, s, e - s)),
                &weights.narrow(0, s, e - s),
            )
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// The shared gradient helper: each image's score (`[N]`) and its gradient with respect to the
/// image (`[N, 3, H, W]`).
pub fn input_gradient(model: &Model, images: &Tensor, weights: &Tensor) -> (Tensor, Tensor) {
    let x = images.detach().set_requires_grad(true);
    let s = score(&model.logits(&x), weights);
    let grad = Tensor::run_backward(&[s.sum(Kind::Float)], &[&x], false, false).remove(0);
    (s.detach(), grad)
}

/// [`input_gradient`] over copies of a batch, chunked: `images` is `[M·N, …]` (copy-major) and
/// the weights repeat per copy.
fn chunked_gradient(model: &Model, images: &Tensor, weights: &Tensor) -> Tensor {
    let m = images.size()[0];
    let parts: Vec<Tensor> = (0..m)
        .step_by(CHUNK as usize)
        .map(|s| {
            let e = (s + CHUNK).min(m);
            input_gradient(
                model,
                &images.narrow(0, s, e - s),
                &weights.narrow(0, s, e - s),
            )
            .1
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// The largest absolute value over the colour channels: `[N, 3, H, W]` → `[N, H, W]`.
fn channel_max_abs(x: &Tensor) -> Tensor {
    x.abs().amax([1].as_slice(), false)
}

/// Plain gradient (Simonyan et al.): `|∂score/∂pixel|`, the largest over the colour channels.
pub fn gradient(model: &Model, images: &Tensor, explain: &Explain) -> Result<Tensor> {
    let w = weights_for(model, images, explain)?;
    Ok(channel_max_abs(&input_gradient(model, images, &w).1))
}

/// SmoothGrad (Smilkov et al.): the gradient map averaged over `samples` copies with Gaussian
/// noise of standard deviation `sigma` × the [−1, 1] range (2), drawn from `seed`.
pub fn smoothgrad(
    model: &Model,
    images: &Tensor,
    explain: &Explain,
    samples: usize,
    sigma: f64,
    seed: u64,
) -> Result<Tensor> {
    if samples == 0 || sigma.is_nan() || sigma < 0.0 {
        bail!(
            "SmoothGrad needs at least one sample and a noise level ≥ 0, not {samples} and {sigma}"
        );
    }
    let w = weights_for(model, images, explain)?;
    let m = samples as i64;
    let noise = gaussian(
        &[m * images.size()[0]]
            .iter()
            .chain(&images.size()[1..])
            .copied()
            .collect::<Vec<_>>(),
        seed,
    )
    .to_device(images.device())
        * (2.0 * sigma);
    let noisy = images.repeat([m, 1, 1, 1]) + noise;
    let grads = chunked_gradient(model, &noisy, &w.repeat([m, 1]));
    let n = images.size()[0];
    let maps = channel_max_abs(&grads).view([m, n, images.size()[2], images.size()[3]]);
    Ok(maps.mean_dim(0, false, Kind::Float))
}

/// Integrated gradients (Sundararajan et al.): `(x − x₀) · mean_k ∂score/∂x (x₀ + α_k (x − x₀))`
/// with `α_k = (k + ½)/steps` (midpoint rule), per pixel and channel: `[N, 3, H, W]`. Their sum
/// is close to `score(x) − score(x₀)` (completeness).
pub fn integrated_attributions(
    model: &Model,
    images: &Tensor,
    baseline: &Tensor,
    explain: &Explain,
    steps: usize,
) -> Result<Tensor> {
    if steps == 0 {
        bail!("integrated gradients need at least one step");
    }
    if baseline.size() != images.size() {
        bail!(
            "the baseline has shape {:?} but the images {:?}",
            baseline.size(),
            images.size()
        );
    }
    let w = weights_for(model, images, explain)?;
    let m = steps as i64;
    let alphas: Vec<f32> = (0..steps)
        .map(|k| (k as f32 + 0.5) / steps as f32)
        .collect();
    let alpha = Tensor::from_slice(&alphas)
        .to_device(images.device())
        .view([m, 1, 1, 1, 1]);
    let delta = images - baseline;
    let path = (baseline.unsqueeze(0) + &alpha * delta.unsqueeze(0)).flatten(0, 1);
    let grads = chunked_gradient(model, &path, &w.repeat([m, 1]));
    let mean = grads
        .view(
            [m].iter()
                .chain(&images.size())
                .copied()
                .collect::<Vec<_>>()
                .as_slice(),
        )
        .mean_dim(0, false, Kind::Float);
    Ok(delta * mean)
}

/// Integrated gradients from a grey baseline (0 in [−1, 1]) as a map: the absolute sum of a
/// pixel's attributions over its channels.
pub fn integrated_gradients(
    model: &Model,
    images: &Tensor,
    explain: &Explain,
    steps: usize,
) -> Result<Tensor> {
    let attr = integrated_attributions(model, images, &images.zeros_like(), explain, steps)?;
    Ok(attr.sum_dim_intlist(1, false, Kind::Float).abs())
}

/// Grad-CAM (Selvaraju et al.) at `layer`: the layer's channels weighted by their mean
/// gradient, summed, rectified and upsampled (bilinear) to the image.
pub fn grad_cam(model: &Model, images: &Tensor, explain: &Explain, layer: &str) -> Result<Tensor> {
    let w = weights_for(model, images, explain)?;
    let cut = model.cut(layer)?;
    let features = model.features(&cut, &images.detach()).detach();
    if features.dim() != 4 {
        bail!(
            "Grad-CAM needs a layer with a spatial grid; {layer} gives {:?}",
            features.size()
        );
    }
    let a = features.set_requires_grad(true);
    let s = score(&cut.suffix(&a), &w);
    let grad = Tensor::run_backward(&[s.sum(Kind::Float)], &[&a], false, false).remove(0);
    let _guard = tch::no_grad_guard();
    let alpha = grad.mean_dim([2, 3].as_slice(), true, Kind::Float);
    let cam = (alpha * a.detach())
        .sum_dim_intlist(1, true, Kind::Float)
        .relu();
    let (h, w) = (images.size()[2], images.size()[3]);
    Ok(cam
        .upsample_bilinear2d([h, w], false, None, None)
        .squeeze_dim(1))
}

/// Occlusion (Zeiler and Fergus): a `patch`-pixel grey square slid with `stride`; a pixel's
/// value is the mean drop of the score over the placements that cover it.
pub fn occlusion(
    model: &Model,
    images: &Tensor,
    explain: &Explain,
    patch: i64,
    stride: i64,
) -> Result<Tensor> {
    let (n, h, w) = (images.size()[0], images.size()[2], images.size()[3]);
    if patch < 1 || stride < 1 || patch > h.min(w) {
        bail!(
            "occlusion needs 1 ≤ patch ≤ the image side ({h}×{w}) and stride ≥ 1, not patch {patch}, stride {stride}"
        );
    }
    let weights = weights_for(model, images, explain)?;
    let _guard = tch::no_grad_guard();
    let base = scores(model, images, &weights);
    let starts = |side: i64| {
        let mut v: Vec<i64> = (0..=side - patch).step_by(stride as usize).collect();
        if *v.last().unwrap() != side - patch {
            v.push(side - patch);
        }
        v
    };
    let places: Vec<(i64, i64)> = starts(h)
        .into_iter()
        .flat_map(|y| starts(w).into_iter().map(move |x| (y, x)))
        .collect();
    let p = places.len() as i64;
    // one mask per placement: 1 inside the square
    let mut masks = vec![0f32; (p * h * w) as usize];
    for (k, &(y, x)) in places.iter().enumerate() {
        for yy in y..y + patch {
            let row = (k as i64 * h + yy) * w;
            masks[(row + x) as usize..(row + x + patch) as usize].fill(1.0);
        }
    }
    let masks = Tensor::from_slice(&masks)
        .view([p, 1, h, w])
        .to_device(images.device());
    let drop = Tensor::zeros([n, h, w], (Kind::Float, images.device()));
    for i in 0..n {
        let img = images.narrow(0, i, 1);
        let occluded = &img * (1.0 - &masks);
        let s = scores(model, &occluded, &weights.narrow(0, i, 1).repeat([p, 1]));
        let d = (base.narrow(0, i, 1) - s).view([p, 1, 1]);
        let per_pixel = (d * masks.squeeze_dim(1)).sum_dim_intlist(0, false, Kind::Float);
        drop.narrow(0, i, 1).copy_(&per_pixel.unsqueeze(0));
    }
    let cover = masks.squeeze_dim(1).sum_dim_intlist(0, false, Kind::Float);
    Ok(drop / cover.unsqueeze(0))
}

/// Uniform noise maps drawn from `seed`: the control a method must beat.
pub fn random(images: &Tensor, seed: u64) -> Tensor {
    let s = images.size();
    uniform(&[s[0], s[2], s[3]], seed).to_device(images.device())
}

fn weights_for(model: &Model, images: &Tensor, explain: &Explain) -> Result<Tensor> {
    let s = images.size();
    if s.len() != 4 || s[1] != 3 {
        bail!("saliency needs images as [N, 3, H, W], not {s:?}");
    }
    if explain.class.len() as i64 != s[0] {
        bail!(
            "{} images but {} classes to explain; give one class per image",
            s[0],
            explain.class.len()
        );
    }
    explain.weights(model.classes().len() as i64, images.device())
}

/// Values uniform in [0, 1) from a seeded SplitMix64 stream.
pub(crate) fn uniform(shape: &[i64], seed: u64) -> Tensor {
    let mut rng = SplitMix64::new(seed);
    let n: i64 = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.next_open01() as f32).collect();
    Tensor::from_slice(&v).view(shape)
}

/// Standard normal values from a seeded SplitMix64 stream (Box–Muller).
pub(crate) fn gaussian(shape: &[i64], seed: u64) -> Tensor {
    let mut rng = SplitMix64::new(seed);
    let n: i64 = shape.iter().product();
    let mut v: Vec<f32> = Vec::with_capacity(n as usize);
    while (v.len() as i64) < n {
        let (u1, u2) = (rng.next_open01(), rng.next_open01());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        v.push((r * t.cos()) as f32);
        v.push((r * t.sin()) as f32);
    }
    v.truncate(n as usize);
    Tensor::from_slice(&v).view(shape)
}

/// A saliency method, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// [`gradient`].
    Gradient,
    /// [`smoothgrad`].
    SmoothGrad,
    /// [`integrated_gradients`].
    IntegratedGradients,
    /// [`grad_cam`].
    GradCam,
    /// [`occlusion`].
    Occlusion,
    /// [`random`]: a control.
    Random,
}

impl Method {
    /// Every method, the control last.
    pub const ALL: [Method; 6] = [
        Method::Gradient,
        Method::SmoothGrad,
        Method::IntegratedGradients,
        Method::GradCam,
        Method::Occlusion,
        Method::Random,
    ];

    /// The method's name on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Method::Gradient => "gradient",
            Method::SmoothGrad => "smoothgrad",
            Method::IntegratedGradients => "integrated_gradients",
            Method::GradCam => "grad_cam",
            Method::Occlusion => "occlusion",
            Method::Random => "random",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown saliency method '{s}'; use one of: {}",
                    Self::ALL.map(Method::name).join(", ")
                )
            })
    }
}

/// The settings of every method.
#[derive(Clone, Debug, Serialize)]
pub struct SaliencyOptions {
    /// SmoothGrad: noisy copies.
    pub smooth_samples: usize,
    /// SmoothGrad: noise standard deviation as a fraction of the [−1, 1] range.
    pub smooth_sigma: f64,
    /// Integrated gradients: steps along the path from the grey baseline.
    pub ig_steps: usize,
    /// Grad-CAM: the layer.
    pub cam_layer: String,
    /// Occlusion: square side in pixels.
    pub patch: i64,
    /// Occlusion: stride in pixels.
    pub stride: i64,
    /// Seed of SmoothGrad's noise and of the random control.
    pub seed: u64,
}

/// Grad-CAM's default layer on a VGG: the last conv block's rectified output.
pub const DEFAULT_CAM_LAYER: &str = "relu5_3";

impl Default for SaliencyOptions {
    fn default() -> Self {
        Self {
            smooth_samples: 16,
            smooth_sigma: 0.1,
            ig_steps: 32,
            cam_layer: DEFAULT_CAM_LAYER.into(),
            patch: 8,
            stride: 4,
            seed: 0,
        }
    }
}

/// Runs `method` on `images` (`[N, 3, H, W]` in [−1, 1]): `[N, H, W]` maps.
pub fn map(
    method: Method,
    model: &Model,
    images: &Tensor,
    explain: &Explain,
    opts: &SaliencyOptions,
) -> Result<Tensor> {
    let m = match method {
        Method::Gradient => gradient(model, images, explain)?,
        Method::SmoothGrad => smoothgrad(
            model,
            images,
            explain,
            opts.smooth_samples,
            opts.smooth_sigma,
            opts.seed,
        )?,
        Method::IntegratedGradients => integrated_gradients(model, images, explain, opts.ig_steps)?,
        Method::GradCam => grad_cam(model, images, explain, &opts.cam_layer)?,
        Method::Occlusion => occlusion(model, images, explain, opts.patch, opts.stride)?,
        Method::Random => {
            let _ = weights_for(model, images, explain)?;
            random(images, opts.seed ^ 0x5a11_e4c7)
        }
    };
    Ok(m.detach())
}
