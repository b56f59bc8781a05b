//! Pictures of an edit: the original and the edited image side by side, the painted region
//! outlined on both.

use image::{Rgb, RgbImage, imageops};
use tch::{Kind, Tensor};

/// Colour of the mask outline.
pub const OUTLINE: [u8; 3] = [255, 230, 0];

/// Pixels of a `w × h` boolean mask (row-major) that are inside and touch an outside pixel or
/// the border.
pub fn outline(mask: &[bool], w: usize, h: usize) -> Vec<bool> {
    let at = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && mask[y as usize * w + x as usize]
    };
    let mut out = vec![false; w * h];
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            if at(x, y)
                && [(-1, 0), (1, 0), (0, -1), (0, 1)]
                    .iter()
                    .any(|(dx, dy)| !at(x + dx, y + dy))
            {
                out[y as usize * w + x as usize] = true;
            }
        }
    }
    out
}

/// The region to outline: where any of `masks` (`[H, W]` in [0, 1]) is at least one half.
pub fn union_mask(masks: &[&Tensor], w: usize, h: usize) -> Vec<bool> {
    let mut region = vec![false; w * h];
    for m in masks {
        let values: Vec<f32> =
            Vec::try_from(m.to_kind(Kind::Float).flatten(0, -1)).unwrap_or_default();
        for (r, v) in region.iter_mut().zip(values) {
            *r |= v >= 0.5;
        }
    }
    region
}

/// `original | edited`, each scaled up `scale` times (nearest) with the region outlined.
pub fn side_by_side(
    original: &RgbImage,
    edited: &RgbImage,
    region: &[bool],
    scale: u32,
) -> RgbImage {
    let (w, h) = original.dimensions();
    let (sw, sh) = (w * scale, h * scale);
    let big: Vec<bool> = (0..sh)
        .flat_map(|y| (0..sw).map(move |x| (x / scale, y / scale)))
        .map(|(x, y)| region.get((y * w + x) as usize).copied().unwrap_or(false))
        .collect();
    let line = outline(&big, sw as usize, sh as usize);
    let pad = scale.max(2);
    let mut out = RgbImage::from_pixel(2 * sw + 3 * pad, sh + 2 * pad, Rgb([255, 255, 255]));
    for (i, img) in [original, edited].into_iter().enumerate() {
        let mut tile = imageops::resize(img, sw, sh, imageops::FilterType::Nearest);
        for (p, on) in tile.pixels_mut().zip(&line) {
            if *on {
                *p = Rgb(OUTLINE);
            }
        }
        imageops::replace(
            &mut out,
            &tile,
            (pad + i as u32 * (sw + pad)) as i64,
            pad as i64,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outline_is_the_inner_border_of_the_region() {
        // a 3×3 block in a 5×5 image: its 8 border pixels, not its centre
        let mask: Vec<bool> = (0..25)
            .map(|i| (1..4).contains(&(i % 5)) && (1..4).contains(&(i / 5)))
            .collect();
        let o = outline(&mask, 5, 5);
        assert_eq!(o.iter().filter(|b| **b).count(), 8);
        assert!(!o[12] && o[6] && !o[0]);
    }

    #[test]
    fn side_by_side_marks_both_tiles() {
        let a = RgbImage::from_pixel(4, 4, Rgb([0, 0, 0]));
        let b = RgbImage::from_pixel(4, 4, Rgb([9, 9, 9]));
        let region: Vec<bool> = (0..16).map(|i| i % 4 < 2).collect();
        let s = side_by_side(&a, &b, &region, 2);
        assert_eq!(s.dimensions(), (2 * 8 + 6, 8 + 4));
        assert_eq!(s.get_pixel(2, 2).0, OUTLINE);
        assert_eq!(s.get_pixel(2 + 8 + 2, 2).0, OUTLINE);
        assert_eq!(s.get_pixel(2 + 8 + 2 + 7, 2 + 7).0, [9, 9, 9]);
    }
}
