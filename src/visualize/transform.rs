//! Transformation robustness: each step the images are randomly shifted (jitter), scaled and
//! rotated before the network sees them, so what excites a unit must survive small moves
//! instead of sitting in one exact pixel pattern. Each transform is a 2×3 affine matrix in
//! normalised coordinates; [`warp`] applies their product (bilinear, grey outside).

use crate::prng::SplitMix64;
use anyhow::{Result, bail};
use serde::Serialize;
use tch::{Kind, Tensor};

/// A 2×3 affine matrix acting on normalised coordinates in [−1, 1].
pub type Affine = [[f64; 3]; 2];

/// A shift by `(dy, dx)` pixels of an `h × w` image.
pub fn jitter(dy: f64, dx: f64, h: i64, w: i64) -> Affine {
    // the sampling grid moves the other way to shift the content
    [
        [1.0, 0.0, -2.0 * dx / w as f64],
        [0.0, 1.0, -2.0 * dy / h as f64],
    ]
}

/// Scaling by `s` about the centre.
pub fn scale(s: f64) -> Affine {
    [[1.0 / s, 0.0, 0.0], [0.0, 1.0 / s, 0.0]]
}

/// A rotation by `degrees` about the centre.
pub fn rotation(degrees: f64) -> Affine {
    let (sin, cos) = degrees.to_radians().sin_cos();
    [[cos, sin, 0.0], [-sin, cos, 0.0]]
}

/// The product `a · b` (apply `b`'s sampling first, then `a`'s).
pub fn compose(a: &Affine, b: &Affine) -> Affine {
    let mut out = [[0.0; 3]; 2];
    for (i, row) in out.iter_mut().enumerate() {
        for j in 0..3 {
            row[j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + if j == 2 { a[i][2] } else { 0.0 };
        }
    }
    out
}

/// Warps `[N, 3, H, W]` images by one matrix per image (bilinear; grey, i.e. 0, outside).
pub fn warp(images: &Tensor, matrices: &[Affine]) -> Tensor {
    let s = images.size();
    let flat: Vec<f32> = matrices
        .iter()
        .flat_map(|m| m.iter().flatten().map(|&v| v as f32))
        .collect();
    let theta = Tensor::from_slice(&flat)
        .view([s[0], 2, 3])
        .to_device(images.device());
    let grid = Tensor::affine_grid_generator(&theta, s.as_slice(), false);
    // interpolation 0 = bilinear, padding 0 = zeros
    images.grid_sampler(&grid.to_kind(Kind::Float), 0, 0, false)
}

/// The random transforms drawn each step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transforms {
    /// Largest shift in pixels, each way, drawn before and after scaling and rotation.
    pub jitter: i64,
    /// Scale factors drawn uniformly from `[lo, hi]`.
    pub scale: (f64, f64),
    /// Largest rotation in degrees, each way.
    pub degrees: f64,
}

impl Default for Transforms {
    /// Sized for the world's 64×64 scenes: 4 px shifts, scale 0.9 to 1.1, ±10°.
    fn default() -> Self {
        Self {
            jitter: 4,
            scale: (0.9, 1.1),
            degrees: 10.0,
        }
    }
}

impl Transforms {
    /// No transforms at all.
    pub fn none() -> Self {
        Self {
            jitter: 0,
            scale: (1.0, 1.0),
            degrees: 0.0,
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        let (lo, hi) = self.scale;
        if self.jitter < 0
            || !(lo > 0.0 && lo <= hi && hi <= 4.0)
            || !(0.0..=180.0).contains(&self.degrees)
        {
            bail!(
                "transforms need jitter ≥ 0, 0 < scale lo ≤ hi ≤ 4 and rotation in [0, 180]°, not {} px, {lo}..{hi}, {}°",
                self.jitter,
                self.degrees
            );
        }
        Ok(())
    }

    /// Whether every transform is the identity.
    pub fn is_identity(&self) -> bool {
        self.jitter == 0 && self.scale == (1.0, 1.0) && self.degrees == 0.0
    }

    /// Draws one matrix per image: jitter, scale, rotation, jitter.
    pub fn draw(&self, n: i64, h: i64, w: i64, rng: &mut SplitMix64) -> Vec<Affine> {
        let shift = |rng: &mut SplitMix64| {
            let j = self.jitter as i32;
            jitter(rng.range(-j, j) as f64, rng.range(-j, j) as f64, h, w)
        };
        (0..n)
            .map(|_| {
                let first = shift(rng);
                let s = self.scale.0 + (self.scale.1 - self.scale.0) * rng.next_open01();
                let r = self.degrees * (2.0 * rng.next_open01() - 1.0);
                let last = shift(rng);
                compose(&compose(&compose(&first, &scale(s)), &rotation(r)), &last)
            })
            .collect()
    }

    /// Applies freshly drawn transforms to `[N, 3, H, W]` images.
    pub fn apply(&self, images: &Tensor, rng: &mut SplitMix64) -> Tensor {
        if self.is_identity() {
            return images.shallow_clone();
        }
        let s = images.size();
        warp(images, &self.draw(s[0], s[2], s[3], rng))
    }
}
