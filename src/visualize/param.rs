//! How an optimised image is parametrised: the tensor Adam moves, and the map from it to an
//! image in [−1, 1].
//!
//! - **Pixels**: one value per pixel and channel.
//! - **Fourier**: a real 2-D spectrum per channel whose coefficients are scaled by
//!   `1 / frequency^decay` (so every frequency starts with about the same energy and the
//!   optimisation does not fill the image with high-frequency patterns), brought back by an
//!   inverse real FFT.
//! - **Decorrelated colour** (optional on both): the three channels are independent
//!   directions of the world's own colour distribution — mixed by the square root of the
//!   covariance of world scene pixels — before a sigmoid maps them into range.

use crate::sample::world_batch;
use anyhow::{Result, bail};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// Where an image is optimised.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// One value per pixel and channel.
    Pixel,
    /// A 2-D spectrum per channel, scaled by `1 / frequency^decay`.
    Fourier {
        /// Exponent of the frequency scaling (1 is the usual choice).
        decay: f64,
    },
}

impl std::str::FromStr for Space {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pixel" => Ok(Self::Pixel),
            "fourier" => Ok(Self::Fourier { decay: 1.0 }),
            _ => bail!("unknown parametrisation '{s}': use pixel or fourier"),
        }
    }
}

/// The colour mixing applied before the sigmoid: `[3, 3]`, columns scaled so the largest has
/// norm 1.
#[derive(Debug)]
pub struct ColourBasis(pub Tensor);

/// World scenes the colour basis is measured on.
const COLOUR_SCENES: u64 = 64;

impl ColourBasis {
    /// No mixing.
    pub fn identity() -> Self {
        Self(Tensor::eye(3, (Kind::Float, Device::Cpu)))
    }

    /// The square root of the pixel colour covariance of `images` (`[N, 3, H, W]`).
    pub fn of_images(images: &Tensor) -> Self {
        let x = images
            .to_kind(Kind::Double)
            .transpose(0, 1)
            .reshape([3, -1]);
        let x = &x - x.mean_dim(1, true, Kind::Double);
        let cov = x.matmul(&x.tr()) / (x.size()[1] - 1) as f64;
        let (values, vectors) = cov.linalg_eigh("L");
        let root = vectors
            .matmul(&values.clamp_min(0.0).sqrt().diag_embed(0, -2, -1))
            .matmul(&vectors.tr());
        let norm = root
            .linalg_norm(2.0, [0].as_slice(), false, Kind::Double)
            .max();
        Self((root / norm).to_kind(Kind::Float))
    }

    /// The basis measured on held-back world scenes (deterministic).
    pub fn world() -> Self {
        let seeds: Vec<u64> = (0..COLOUR_SCENES).map(|i| 0xC01_0000 + i).collect();
        Self::of_images(&world_batch(&seeds, true, Device::Cpu).images)
    }

    /// Mixes `[N, 3, H, W]` decorrelated channels into RGB.
    fn apply(&self, x: &Tensor) -> Tensor {
        let m = self.0.to_device(x.device());
        Tensor::einsum("ij,njhw->nihw", &[m, x.shallow_clone()], None::<i64>)
    }
}

/// A parametrised batch of images.
pub struct ImageParam {
    space: Space,
    colour: ColourBasis,
    size: (i64, i64),
    /// Per-frequency scale of the spectrum (Fourier only): `[H, W/2 + 1, 1]`.
    scale: Option<Tensor>,
}

impl ImageParam {
    /// Images of `h × w` in `space`, mixed by `colour`.
    pub fn new(space: Space, colour: ColourBasis, h: i64, w: i64, device: Device) -> Result<Self> {
        if h < 8 || w < 8 || h > 1024 || w > 1024 {
            bail!("an optimised image must be 8 to 1024 pixels a side, not {h}×{w}");
        }
        let scale = match space {
            Space::Pixel => None,
            Space::Fourier { decay } => {
                if !(0.0..=4.0).contains(&decay) {
                    bail!("the Fourier decay must be in [0, 4], not {decay}");
                }
                let fy = Tensor::fft_fftfreq(h, 1.0, (Kind::Float, device)).view([h, 1]);
                let fx = Tensor::fft_rfftfreq(w, 1.0, (Kind::Float, device)).view([1, w / 2 + 1]);
                let f = (&fy * &fy + &fx * &fx).sqrt();
                let s = f.clamp_min(1.0 / h.max(w) as f64).pow_tensor_scalar(-decay);
                let s = &s / s.square().mean(Kind::Float).sqrt();
                Some(s.unsqueeze(-1))
            }
        };
        Ok(Self {
            space,
            colour,
            size: (h, w),
            scale,
        })
    }

    /// The parameter shape for `n` images.
    pub fn shape(&self, n: i64) -> Vec<i64> {
        let (h, w) = self.size;
        match self.space {
            Space::Pixel => vec![n, 3, h, w],
            Space::Fourier { .. } => vec![n, 3, h, w / 2 + 1, 2],
        }
    }

    /// Starting parameters: small Gaussian noise from `seed` (images close to grey).
    pub fn init(&self, n: i64, seed: u64, device: Device) -> Tensor {
        super::saliency::gaussian(&self.shape(n), seed).to_device(device) * 0.01
    }

    /// The images `[N, 3, H, W]` in [−1, 1] of parameters `p`.
    pub fn image(&self, p: &Tensor) -> Tensor {
        let (h, w) = self.size;
        let channels = match (&self.space, &self.scale) {
            (Space::Fourier { .. }, Some(scale)) => {
                let spectrum = (p * scale).view_as_complex();
                // ortho: coefficients and pixels on the same footing; ×4 to reach the sigmoid's range
                spectrum.fft_irfft2([h, w].as_slice(), [-2, -1].as_slice(), "ortho") * 4.0
            }
            _ => p.shallow_clone(),
        };
        self.colour.apply(&channels).sigmoid() * 2.0 - 1.0
    }
}
