//! Per-unit images: each unit's top images with the region where it fires highlighted.
//!
//! The activation is upsampled to the thumbnail (bilinear, pixel-centre aligned) and compared
//! with the unit's level. Inside the region the image is unchanged; the pixels just outside it
//! (8-neighbours of the region) form a 1-pixel yellow border; everything else is shown at half
//! brightness.

use super::result::LayerResult;
use super::source::Model;
use super::upsample::upsample;
use crate::imageio::{grid, save_png, to_rgb_images};
use anyhow::Result;
use image::{Rgb, RgbImage, imageops};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind};

/// Images per forward when rendering top images.
const CHUNK: usize = 16;
/// Gap between the images of a unit's strip.
const GAP: u32 = 2;
/// The border colour.
const YELLOW: Rgb<u8> = Rgb([255, 255, 0]);

/// The thumbnail side for images of side `side`: the smallest multiple of it of at least 100.
pub fn thumb_size(side: u32) -> u32 {
    side * 100u32.div_ceil(side.max(1))
}

/// Highlights `mask` (`t × t`, row-major) on `img` (`t × t`).
pub fn highlight(img: &RgbImage, mask: &[bool]) -> RgbImage {
    let (w, h) = img.dimensions();
    let inside = |x: i64, y: i64| {
        x >= 0 && y >= 0 && x < w as i64 && y < h as i64 && mask[(y * w as i64 + x) as usize]
    };
    let mut out = img.clone();
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            if inside(x, y) {
                continue;
            }
            let near = (-1..=1).any(|dy| (-1..=1).any(|dx| inside(x + dx, y + dy)));
            let p = out.get_pixel_mut(x as u32, y as u32);
            *p = if near {
                YELLOW
            } else {
                Rgb(p.0.map(|v| v / 2))
            };
        }
    }
    out
}

/// Writes `DIR/<layer>/units/unitNNNN.png` for every unit of `result`: its first `count` top
/// images side by side, highlighted at its level. `layer` is the layer's index in `model`.
pub fn write_unit_images(
    model: &Model,
    layer: usize,
    result: &LayerResult,
    count: usize,
    dir: &Path,
    device: Device,
) -> Result<Vec<PathBuf>> {
    let _guard = tch::no_grad_guard();
    let mut ids: Vec<u64> = result
        .units
        .iter()
        .flat_map(|u| u.top.iter().take(count).map(|t| t.image))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let levels: Vec<f32> = result.units.iter().map(|u| u.level).collect();
    let mut thumbs: HashMap<(usize, u64), RgbImage> = HashMap::new();
    let sampler = model.sampler();
    for chunk in ids.chunks(CHUNK) {
        let inputs = sampler.inputs(chunk, device)?;
        let (acts, images) = model.forward(&inputs, &[layer], true)?;
        let images = images.expect("images were asked for");
        let rgb = to_rgb_images(&images)?;
        let side = rgb[0].width();
        let t = thumb_size(side);
        let filter = if t.is_multiple_of(side) {
            imageops::FilterType::Nearest
        } else {
            imageops::FilterType::Triangle
        };
        let up = upsample(&acts[0], t as i64)?.to_device(Device::Cpu);
        for (j, &id) in chunk.iter().enumerate() {
            let thumb = imageops::resize(&rgb[j], t, t, filter);
            for u in &result.units {
                if !u.top.iter().take(count).any(|x| x.image == id) {
                    continue;
                }
                let mask: Vec<bool> = Vec::try_from(
                    up.get(j as i64)
                        .get(u.unit as i64)
                        .gt(f64::from(levels[u.unit]))
                        .to_kind(Kind::Bool)
                        .reshape([-1]),
                )?;
                thumbs.insert((u.unit, id), highlight(&thumb, &mask));
            }
        }
    }
    let units_dir = dir.join(&result.layer).join("units");
    // what a run killed while writing these pictures left behind
    crate::fsutil::remove_stale_temps(&units_dir)?;
    let mut written = Vec::with_capacity(result.units.len());
    for u in &result.units {
        let strip: Vec<RgbImage> = u
            .top
            .iter()
            .take(count)
            .filter_map(|t| thumbs.remove(&(u.unit, t.image)))
            .collect();
        let path = units_dir.join(unit_file(u.unit));
        save_png(&path, &grid(&strip, strip.len().max(1), GAP))?;
        written.push(path);
    }
    Ok(written)
}

/// The file name of a unit's strip.
pub fn unit_file(unit: usize) -> String {
    format!("unit{unit:04}.png")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlight_keeps_inside_borders_in_yellow_and_dims_outside() {
        let img = RgbImage::from_pixel(5, 5, Rgb([200, 100, 50]));
        let mut mask = vec![false; 25];
        mask[12] = true; // centre pixel
        let out = highlight(&img, &mask);
        assert_eq!(out.get_pixel(2, 2).0, [200, 100, 50]);
        for (x, y) in [(1, 1), (2, 1), (3, 3), (1, 2)] {
            assert_eq!(out.get_pixel(x, y).0, [255, 255, 0], "({x},{y})");
        }
        assert_eq!(out.get_pixel(0, 0).0, [100, 50, 25]);
        assert_eq!(out.get_pixel(4, 2).0, [100, 50, 25]);
        assert_eq!(thumb_size(64), 128);
        assert_eq!(thumb_size(256), 256);
        assert_eq!(thumb_size(30), 120);
    }
}
