//! Small PNG charts for the analyses: a line chart with error bars and a bar chart with error
//! bars, drawn on a pixel grid with the world's bitmap font and scaled up twice.

use crate::world::font::{draw_text, text_width};
use image::{Rgb, RgbImage, imageops};
use imageproc::drawing::{draw_filled_rect_mut, draw_line_segment_mut};
use imageproc::rect::Rect;

const W: u32 = 320;
const H: u32 = 200;
const LEFT: u32 = 36;
const RIGHT: u32 = 8;
const TOP: u32 = 16;
const BOTTOM: u32 = 30;
const INK: [u8; 3] = [40, 40, 40];
const GRID: [u8; 3] = [225, 225, 225];
const SERIES: [u8; 3] = [30, 100, 200];
const ERROR: [u8; 3] = [200, 60, 40];

/// Draws `text` with the bitmap font, dots drawn as single pixels.
pub fn label(img: &mut RgbImage, x: u32, y: u32, text: &str, colour: [u8; 3]) {
    let mut cx = x;
    for c in text.chars() {
        if c == '.' {
            if cx + 1 < img.width() && y + 4 < img.height() {
                img.put_pixel(cx + 1, y + 4, Rgb(colour));
            }
        } else {
            draw_text(img, cx, y, &c.to_string(), colour);
        }
        cx += 4;
    }
}

/// A round tick step covering `range` in about four steps.
fn tick_step(range: f64) -> f64 {
    let raw = (range / 4.0).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

fn tick_text(v: f64, step: f64) -> String {
    let decimals = (0..4)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6
        })
        .unwrap_or(4) as usize;
    format!("{v:.decimals$}")
}

/// The value axis: `(low, high, step)` covering every value in `values`, with 0 included.
fn value_axis(values: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let (mut lo, mut hi) = (0f64, 0f64);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let step = tick_step(hi - lo);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

struct Frame {
    img: RgbImage,
    lo: f64,
    hi: f64,
}

impl Frame {
    fn new(title: &str, y_label: &str, x_label: &str, lo: f64, hi: f64, step: f64) -> Self {
        let mut img = RgbImage::from_pixel(W, H, Rgb([255, 255, 255]));
        label(&mut img, LEFT, 4, title, INK);
        label(&mut img, 2, H - 8, y_label, INK);
        label(
            &mut img,
            W - RIGHT - text_width(x_label),
            H - 8,
            x_label,
            INK,
        );
        let mut f = Self { img, lo, hi };
        let mut v = lo;
        while v <= hi + step * 1e-6 {
            let y = f.y(v);
            draw_line_segment_mut(
                &mut f.img,
                (LEFT as f32, y),
                ((W - RIGHT) as f32, y),
                Rgb(GRID),
            );
            let t = tick_text(v, step);
            label(
                &mut f.img,
                LEFT.saturating_sub(3 + text_width(&t)),
                (y as u32).saturating_sub(2),
                &t,
                INK,
            );
            v += step;
        }
        let (x0, y0, y1) = (LEFT as f32, TOP as f32, (H - BOTTOM) as f32);
        draw_line_segment_mut(&mut f.img, (x0, y0), (x0, y1), Rgb(INK));
        let zero = f.y(0.0);
        draw_line_segment_mut(&mut f.img, (x0, zero), ((W - RIGHT) as f32, zero), Rgb(INK));
        f
    }

    fn y(&self, v: f64) -> f32 {
        let t = (v - self.lo) / (self.hi - self.lo);
        (H - BOTTOM) as f32 - t as f32 * (H - BOTTOM - TOP) as f32
    }

    fn finish(self) -> RgbImage {
        imageops::resize(&self.img, 2 * W, 2 * H, imageops::FilterType::Nearest)
    }
}

/// A line chart of `(x, y, error)` points (x ascending), error bars of ±error.
pub fn line_chart(
    title: &str,
    y_label: &str,
    x_label: &str,
    points: &[(f64, f64, f64)],
) -> RgbImage {
    let (lo, hi, step) = value_axis(points.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2]));
    let mut f = Frame::new(title, y_label, x_label, lo, hi, step);
    let xmax = points.iter().map(|p| p.0).fold(1e-9, f64::max);
    let span = (W - RIGHT - LEFT - 12) as f64;
    let x = |v: f64| (LEFT + 6) as f32 + (v / xmax * span) as f32;
    for pair in points.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (ya, yb) = (f.y(a.1), f.y(b.1));
        draw_line_segment_mut(&mut f.img, (x(a.0), ya), (x(b.0), yb), Rgb(SERIES));
    }
    for p in points {
        let px = x(p.0);
        let (ylo, yhi, ymid) = (f.y(p.1 - p.2), f.y(p.1 + p.2), f.y(p.1));
        draw_line_segment_mut(&mut f.img, (px, ylo), (px, yhi), Rgb(ERROR));
        draw_filled_rect_mut(
            &mut f.img,
            Rect::at(px as i32 - 1, ymid as i32 - 1).of_size(3, 3),
            Rgb(SERIES),
        );
        let t = tick_text(p.0, 1.0);
        label(
            &mut f.img,
            (px as u32).saturating_sub(text_width(&t) / 2),
            H - BOTTOM + 4,
            &t,
            INK,
        );
    }
    f.finish()
}

/// A bar chart of `(name, value, error)` bars, error bars of ±error.
pub fn bar_chart(title: &str, y_label: &str, bars: &[(String, f64, f64)]) -> RgbImage {
    let (lo, hi, step) = value_axis(bars.iter().flat_map(|b| [b.1 - b.2, b.1 + b.2]));
    let mut f = Frame::new(title, y_label, "", lo, hi, step);
    let n = bars.len().max(1) as u32;
    let slot = (W - RIGHT - LEFT - 4) / n;
    for (i, (name, v, e)) in bars.iter().enumerate() {
        let x0 = LEFT + 4 + i as u32 * slot;
        let (ya, yb) = (f.y(0.0), f.y(*v));
        let (top, bottom) = (ya.min(yb), ya.max(yb));
        let bw = (slot * 2 / 3).max(1);
        let height = (bottom - top).round().max(1.0) as u32;
        draw_filled_rect_mut(
            &mut f.img,
            Rect::at(x0 as i32, top as i32).of_size(bw, height),
            Rgb(SERIES),
        );
        let cx = (x0 + bw / 2) as f32;
        let (ylo, yhi) = (f.y(v - e), f.y(v + e));
        draw_line_segment_mut(&mut f.img, (cx, ylo), (cx, yhi), Rgb(ERROR));
        let row = if i % 2 == 0 { 4 } else { 11 };
        label(&mut f.img, x0, H - BOTTOM + row, name, INK);
    }
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_values() {
        assert_eq!(tick_step(100.0), 25.0);
        assert_eq!(tick_step(0.3), 0.1);
        let (lo, hi, step) = value_axis([-0.3, 2.2].into_iter());
        assert!(lo <= -0.3 && hi >= 2.2 && step == 1.0, "{lo} {hi} {step}");
        assert_eq!(tick_text(0.25, 0.05), "0.25");
        assert_eq!(tick_text(50.0, 25.0), "50");
        assert_eq!(tick_text(0.5, 0.25), "0.50");
    }

    #[test]
    fn bars_are_drawn_up_to_their_value() {
        let img = bar_chart("t", "px", &[("a".into(), 2.0, 0.0), ("b".into(), 4.0, 0.0)]);
        let blue = |x: u32, y: u32| img.get_pixel(2 * x, 2 * y).0 == SERIES;
        // 0..4 in steps of 1 maps to rows H-BOTTOM .. TOP; bar a reaches half way, bar b the top
        let mid = (TOP + (H - BOTTOM)) / 2;
        let slot = (W - RIGHT - LEFT - 4) / 2;
        let (xa, xb) = (LEFT + 5, LEFT + 5 + slot);
        assert!(blue(xa, mid + 2) && !blue(xa, mid - 3));
        assert!(blue(xb, mid - 3) && blue(xb, TOP + 2));
    }
}
