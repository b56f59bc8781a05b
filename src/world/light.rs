//! Scene lighting and colour helpers: time of day, global brightness and tint, per-object
//! colour jitter, and the final quantisation with mild per-pixel noise.

use super::raster::Rgb;
use crate::prng::{SplitMix64, mix64};

/// The time of day sets the sky colours and the mood of the scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOfDay {
    /// Blue sky, sunlit.
    Day,
    /// Orange horizon, warm tint, lit windows.
    Evening,
    /// Grey sky, flat light, no sun.
    Overcast,
}

/// The global lighting of one scene.
#[derive(Debug, Clone, Copy)]
pub struct Light {
    /// Time of day.
    pub time: TimeOfDay,
    /// Overall brightness factor.
    pub brightness: f32,
    /// Per-channel tint factor.
    pub tint: Rgb,
    /// Whether the light comes from the left (shaded sides face right).
    pub from_left: bool,
}

impl Light {
    /// Draws a lighting setup: mostly day, sometimes evening or overcast.
    pub fn sample(rng: &mut SplitMix64) -> Light {
        let roll = rng.unit();
        let time = if roll < 0.7 {
            TimeOfDay::Day
        } else if roll < 0.85 {
            TimeOfDay::Evening
        } else {
            TimeOfDay::Overcast
        };
        let (brightness, tint) = match time {
            TimeOfDay::Day => (rng.uniform(0.9, 1.08), [1.0, 1.0, 1.0]),
            TimeOfDay::Evening => (rng.uniform(0.8, 0.94), [1.06, 0.96, 0.88]),
            TimeOfDay::Overcast => (rng.uniform(0.82, 0.96), [0.97, 0.99, 1.03]),
        };
        let tint = tint.map(|t| t * rng.uniform(0.96, 1.04));
        Light {
            time,
            brightness,
            tint,
            from_left: rng.chance(0.5),
        }
    }

    /// The factor for a surface facing towards (`lit`) or away from the light.
    pub fn side(&self, lit: bool) -> f32 {
        match (self.time, lit) {
            (TimeOfDay::Overcast, true) => 1.0,
            (TimeOfDay::Overcast, false) => 0.9,
            (_, true) => 1.06,
            (_, false) => 0.78,
        }
    }

    /// Whether `x` lies on the lit side of a vertical dividing line at `centre`.
    pub fn lit_side(&self, x: f32, centre: f32) -> bool {
        (x < centre) == self.from_left
    }
}

/// `c` with a shared brightness change and small per-channel changes, both up to `amount`.
pub fn jitter(rng: &mut SplitMix64, c: Rgb, amount: f32) -> Rgb {
    let shared = rng.uniform(-amount, amount);
    c.map(|v| (v + shared + rng.uniform(-amount, amount) * 0.5).clamp(0.0, 255.0))
}

/// `c` scaled by `k`.
pub fn scale(c: Rgb, k: f32) -> Rgb {
    c.map(|v| v * k)
}

/// The blend `a·(1−t) + b·t`.
pub fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [0, 1, 2].map(|i| a[i] + (b[i] - a[i]) * t)
}

/// Applies the scene's light to linear colours and quantises them to RGB bytes, adding a
/// per-pixel luminance noise of at most ±3 levels fixed by `seed`.
pub fn finish(rgb: &[Rgb], light: &Light, seed: u64) -> Vec<u8> {
    let gain = light.tint.map(|t| t * light.brightness);
    let base = mix64(seed ^ 0x6e6f_6973_6500_0000);
    let mut out = vec![0u8; rgb.len() * 3];
    let mut bits = 0u64;
    for (i, (c, px)) in rgb.iter().zip(out.chunks_exact_mut(3)).enumerate() {
        // One hash gives the noise of eight pixels, a byte each, mapped to -3..=3.
        if i % 8 == 0 {
            bits = mix64(base.wrapping_add(i as u64));
        }
        let noise = (((bits & 0xff) * 7) >> 8) as f32 - 3.0;
        bits >>= 8;
        for ch in 0..3 {
            // Clamp, then round half up by truncation: no libm call per channel.
            px[ch] = ((c[ch] * gain[ch] + noise).clamp(0.0, 255.0) + 0.5) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_keeps_noise_small_and_seeded() {
        let light = Light {
            time: TimeOfDay::Day,
            brightness: 1.0,
            tint: [1.0; 3],
            from_left: true,
        };
        let flat = vec![[100.0, 150.0, 200.0]; 64];
        let a = finish(&flat, &light, 5);
        assert_eq!(a, finish(&flat, &light, 5));
        assert_ne!(a, finish(&flat, &light, 6));
        for px in a.chunks(3) {
            assert!(
                px[0].abs_diff(100) <= 3 && px[1].abs_diff(150) <= 3 && px[2].abs_diff(200) <= 3
            );
        }
    }
}
