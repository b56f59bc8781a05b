//! The sky layer: a vertical gradient that follows the time of day, the sun and clouds.

use super::SIZE;
use super::concepts::{CLOUD, SKY, SUN};
use super::light::{Light, TimeOfDay, jitter, mix};
use super::raster::{Canvas, Rgb};
use crate::prng::SplitMix64;

/// Fills the whole canvas with a sky whose colour runs from the zenith to `horizon`.
pub fn sky(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light, horizon: i32) {
    let (top, bottom) = match light.time {
        TimeOfDay::Day => ([55.0, 115.0, 210.0], [165.0, 205.0, 240.0]),
        TimeOfDay::Evening => ([60.0, 70.0, 150.0], [245.0, 160.0, 105.0]),
        TimeOfDay::Overcast => ([140.0, 150.0, 165.0], [190.0, 195.0, 205.0]),
    };
    let top = jitter(rng, top, 12.0);
    let bottom = jitter(rng, bottom, 10.0);
    let span = horizon.max(8) as f32;
    canvas.rect(0, 0, SIZE as i32, SIZE as i32, SKY, |_, y| {
        mix(top, bottom, (y as f32 / span).min(1.0))
    });
}

/// Draws the sun somewhere above `horizon` (lower in the evening) and returns its centre.
pub fn sun(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light, horizon: i32) -> (f32, f32) {
    let r = rng.uniform(3.0, 5.5);
    let cx = rng.uniform(8.0, SIZE as f32 - 8.0);
    let low = (horizon as f32 - r - 3.0).max(r + 2.0);
    let cy = match light.time {
        TimeOfDay::Evening => rng.uniform((low * 0.6).max(r + 1.0), low),
        _ => rng.uniform(r + 1.0, (low * 0.6).max(r + 1.5)),
    };
    let core: Rgb = match light.time {
        TimeOfDay::Evening => [255.0, 200.0, 110.0],
        _ => [255.0, 245.0, 185.0],
    };
    let rim = mix(core, [255.0, 170.0, 60.0], 0.3);
    canvas.ellipse(cx, cy, r, r, SUN, |x, y| {
        let dx = x as f32 + 0.5 - cx;
        let dy = y as f32 + 0.5 - cy;
        mix(core, rim, ((dx * dx + dy * dy) / (r * r)).min(1.0))
    });
    (cx, cy)
}

/// Draws `count` clouds (each a cluster of puffs with a flat-ish base) above `horizon`.
pub fn clouds(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light, horizon: i32, count: u32) {
    let base: Rgb = match light.time {
        TimeOfDay::Day => [245.0, 247.0, 252.0],
        TimeOfDay::Evening => [240.0, 190.0, 175.0],
        TimeOfDay::Overcast => [228.0, 230.0, 235.0],
    };
    for _ in 0..count {
        let w = rng.uniform(9.0, 20.0);
        let cx = rng.uniform(-2.0, SIZE as f32 + 2.0);
        let bottom = rng.uniform(6.0, (horizon as f32 - 4.0).max(8.0));
        let colour = jitter(rng, base, 6.0);
        let shade = mix(colour, [150.0, 160.0, 185.0], 0.3);
        let puffs = rng.range(2, 4);
        for p in 0..puffs {
            let t = (p as f32 + 0.5) / puffs as f32 - 0.5;
            let px = cx + t * w * 0.9 + rng.uniform(-1.0, 1.0);
            let r = rng.uniform(w * 0.2, w * 0.32);
            let py = bottom - r * rng.uniform(0.5, 0.9);
            canvas.ellipse(px, py, r * 1.15, r, CLOUD, |_, y| {
                mix(
                    colour,
                    shade,
                    ((y as f32 - (bottom - w * 0.35)) / (w * 0.35)).clamp(0.0, 1.0),
                )
            });
        }
        canvas.ellipse(cx, bottom - 1.5, w * 0.55, 2.2, CLOUD, |_, _| shade);
    }
}
