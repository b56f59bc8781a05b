//! Captions on raster pictures (contact sheets, attack tiles): anti-aliased text in the embedded
//! font, blended onto an `RgbImage`.

use super::font::{ascent, font, scale, text_width};
use ab_glyph::{Font, ScaleFont, point};
use image::RgbImage;

/// Draws `text` at `size` px in `colour` with the top-left corner of its line at `(x, y)`;
/// whatever falls outside the image is clipped.
pub fn draw_text(img: &mut RgbImage, x: i32, y: i32, text: &str, size: f32, colour: [u8; 3]) {
    let f = font().as_scaled(scale(size));
    let baseline = y as f32 + ascent(size);
    let mut pen = x as f32;
    for c in text.chars() {
        let id = f.glyph_id(c);
        let glyph = id.with_scale_and_position(scale(size), point(pen, baseline));
        pen += f.h_advance(id);
        let Some(outline) = font().outline_glyph(glyph) else {
            continue;
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let px = bounds.min.x as i32 + gx as i32;
            let py = bounds.min.y as i32 + gy as i32;
            if px < 0 || py < 0 || px >= img.width() as i32 || py >= img.height() as i32 {
                return;
            }
            let a = coverage.clamp(0.0, 1.0);
            let p = img.get_pixel_mut(px as u32, py as u32);
            for (ch, ink) in p.0.iter_mut().zip(colour) {
                *ch = (*ch as f32 * (1.0 - a) + ink as f32 * a).round() as u8;
            }
        });
    }
}

/// Width in whole pixels of `text` at `size` px.
pub fn width(text: &str, size: f32) -> u32 {
    text_width(text, size).ceil() as u32
}

/// Height in whole pixels of one line at `size` px (ascent to descent).
pub fn line_height(size: f32) -> u32 {
    let f = font().as_scaled(scale(size));
    (f.ascent() - f.descent()).ceil() as u32
}
