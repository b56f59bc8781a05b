//! Small PNG charts for analysis results: line charts, bar charts with error bars and scatter
//! plots, each with axes, ticks, labels and a legend, drawn with `image`/`imageproc`.

pub mod font;

use font::{draw_text, text_height, text_width};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_line_segment_mut};
use imageproc::rect::Rect;

/// Text scale (a glyph is 3·S × 5·S pixels).
const S: u32 = 2;
const WIDTH: u32 = 860;
const HEIGHT: u32 = 480;
const LEFT: u32 = 80;
const TOP: u32 = 50;
const BOTTOM: u32 = 60;
const LEGEND: u32 = 250;
const INK: [u8; 3] = [30, 30, 30];
const GRID: [u8; 3] = [225, 225, 225];

/// A palette of distinguishable colours for series.
pub const PALETTE: [[u8; 3]; 8] = [
    [31, 119, 180],
    [214, 39, 40],
    [44, 160, 44],
    [255, 127, 14],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
];

/// One axis: label, range, scale and tick positions.
#[derive(Clone, Debug)]
pub struct Axis {
    /// Axis title.
    pub label: String,
    /// Lowest value shown.
    pub min: f64,
    /// Highest value shown.
    pub max: f64,
    /// Logarithmic (base 2) scale; `min` must then be positive.
    pub log2: bool,
    /// Where ticks go (values inside the range).
    pub ticks: Vec<f64>,
}

impl Axis {
    /// A linear axis over `[min, max]` with round ticks.
    pub fn linear(label: &str, min: f64, max: f64) -> Self {
        let (min, max) = if (max - min).abs() < 1e-12 {
            (min - 0.5, max + 0.5)
        } else {
            (min.min(max), min.max(max))
        };
        Self {
            label: label.to_string(),
            min,
            max,
            log2: false,
            ticks: nice_ticks(min, max),
        }
    }

    /// A base-2 logarithmic axis with ticks at `ticks`.
    pub fn log2(label: &str, ticks: &[f64]) -> Self {
        let lo = ticks
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min)
            .max(1e-9);
        let hi = ticks
            .iter()
            .cloned()
            .fold(f64::NEG_INFINITY, f64::max)
            .max(lo * 2.0);
        Self {
            label: label.to_string(),
            min: lo / 1.25,
            max: hi * 1.25,
            log2: true,
            ticks: ticks.to_vec(),
        }
    }

    fn fraction(&self, v: f64) -> f64 {
        if self.log2 {
            (v.max(1e-12).log2() - self.min.log2()) / (self.max.log2() - self.min.log2())
        } else {
            (v - self.min) / (self.max - self.min)
        }
    }
}

/// Round tick values covering `[min, max]` (steps of 1, 2 or 5 × 10ⁿ, about 6 ticks).
pub fn nice_ticks(min: f64, max: f64) -> Vec<f64> {
    let span = (max - min).abs().max(1e-12);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (min / step).ceil() * step;
    let mut out = Vec::new();
    while t <= max + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

fn tick_label(v: f64) -> String {
    if v.abs() >= 1e6 || (v != 0.0 && v.abs() < 1e-3) {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// The plot area and its two axes on a white canvas.
struct Frame {
    img: RgbImage,
    x: Axis,
    y: Axis,
    x0: f32,
    y0: f32,
    w: f32,
    h: f32,
    legend_rows: u32,
}

impl Frame {
    fn new(title: &str, x: Axis, y: Axis, x_ticks_as_labels: Option<&[String]>) -> Self {
        let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, Rgb([255, 255, 255]));
        let (x0, y0) = (LEFT as f32, (HEIGHT - BOTTOM) as f32);
        let w = (WIDTH - LEFT - LEGEND) as f32;
        let h = (HEIGHT - TOP - BOTTOM) as f32;
        draw_text(&mut img, LEFT as i64, 8, title, S, INK);
        let mut f = Self {
            img,
            x,
            y,
            x0,
            y0,
            w,
            h,
            legend_rows: 0,
        };
        // grid and ticks
        for &t in &f.y.ticks.clone() {
            let py = f.py(t);
            draw_line_segment_mut(&mut f.img, (x0, py), (x0 + w, py), Rgb(GRID));
            draw_line_segment_mut(&mut f.img, (x0 - 5.0, py), (x0, py), Rgb(INK));
            let label = tick_label(t);
            let tx = x0 as i64 - 8 - text_width(&label, S) as i64;
            draw_text(&mut f.img, tx, py as i64 - 5, &label, S, INK);
        }
        let xt = f.x.ticks.clone();
        for (i, &t) in xt.iter().enumerate() {
            let px = f.px(t);
            if x_ticks_as_labels.is_none() {
                draw_line_segment_mut(&mut f.img, (px, y0), (px, y0 - h), Rgb(GRID));
            }
            draw_line_segment_mut(&mut f.img, (px, y0), (px, y0 + 5.0), Rgb(INK));
            let label = match x_ticks_as_labels {
                Some(names) => names.get(i).cloned().unwrap_or_default(),
                None => tick_label(t),
            };
            let tx = px as i64 - text_width(&label, S) as i64 / 2;
            draw_text(&mut f.img, tx, y0 as i64 + 10, &label, S, INK);
        }
        draw_line_segment_mut(&mut f.img, (x0, y0), (x0 + w, y0), Rgb(INK));
        draw_line_segment_mut(&mut f.img, (x0, y0), (x0, y0 - h), Rgb(INK));
        let xl = f.x.label.clone();
        let tx = (x0 + w / 2.0) as i64 - text_width(&xl, S) as i64 / 2;
        draw_text(&mut f.img, tx, y0 as i64 + 32, &xl, S, INK);
        let yl = f.y.label.clone();
        draw_text(&mut f.img, 8, TOP as i64 - 24, &yl, S, INK);
        f
    }

    fn px(&self, v: f64) -> f32 {
        self.x0 + (self.x.fraction(v).clamp(-0.02, 1.02) as f32) * self.w
    }

    fn py(&self, v: f64) -> f32 {
        self.y0 - (self.y.fraction(v).clamp(-0.02, 1.02) as f32) * self.h
    }

    fn legend(&mut self, label: &str, colour: [u8; 3], dashed: bool) {
        let lx = (WIDTH - LEGEND + 20) as f32;
        let ly = TOP as f32 + 10.0 + self.legend_rows as f32 * (text_height(S) + 10) as f32;
        if dashed {
            dashed_line(&mut self.img, (lx, ly + 5.0), (lx + 24.0, ly + 5.0), colour);
        } else {
            thick_line(&mut self.img, (lx, ly + 5.0), (lx + 24.0, ly + 5.0), colour);
        }
        draw_text(&mut self.img, lx as i64 + 32, ly as i64, label, S, INK);
        self.legend_rows += 1;
    }
}

fn thick_line(img: &mut RgbImage, a: (f32, f32), b: (f32, f32), c: [u8; 3]) {
    for (dx, dy) in [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0)] {
        draw_line_segment_mut(img, (a.0 + dx, a.1 + dy), (b.0 + dx, b.1 + dy), Rgb(c));
    }
}

fn dashed_line(img: &mut RgbImage, a: (f32, f32), b: (f32, f32), c: [u8; 3]) {
    let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
    let n = (len / 6.0).ceil().max(1.0) as usize;
    for i in (0..n).step_by(2) {
        let t0 = i as f32 / n as f32;
        let t1 = ((i + 1) as f32 / n as f32).min(1.0);
        let p = |t: f32| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        thick_line(img, p(t0), p(t1), c);
    }
}

fn marker(img: &mut RgbImage, p: (f32, f32), c: [u8; 3]) {
    draw_filled_rect_mut(
        img,
        Rect::at(p.0 as i32 - 3, p.1 as i32 - 3).of_size(7, 7),
        Rgb(c),
    );
}

/// A line with optional markers.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text (empty: no legend entry).
    pub label: String,
    /// `(x, y)` points in order.
    pub points: Vec<(f64, f64)>,
    /// Line colour.
    pub colour: [u8; 3],
    /// Dashed instead of solid.
    pub dashed: bool,
}

/// Draws a line chart.
pub fn line_chart(title: &str, x: Axis, y: Axis, series: &[Series]) -> RgbImage {
    lines(Frame::new(title, x, y, None), series)
}

/// Draws a line chart whose x ticks carry `tick_labels` (one per tick of `x`) instead of
/// numbers.
pub fn line_chart_labelled(
    title: &str,
    x: Axis,
    y: Axis,
    series: &[Series],
    tick_labels: &[String],
) -> RgbImage {
    lines(Frame::new(title, x, y, Some(tick_labels)), series)
}

fn lines(mut f: Frame, series: &[Series]) -> RgbImage {
    for s in series {
        let pts: Vec<(f32, f32)> = s.points.iter().map(|&(a, b)| (f.px(a), f.py(b))).collect();
        for w in pts.windows(2) {
            if s.dashed {
                dashed_line(&mut f.img, w[0], w[1], s.colour);
            } else {
                thick_line(&mut f.img, w[0], w[1], s.colour);
            }
        }
        if !s.dashed {
            for p in &pts {
                marker(&mut f.img, *p, s.colour);
            }
        }
        if !s.label.is_empty() {
            f.legend(&s.label, s.colour, s.dashed);
        }
    }
    f.img
}

/// One bar with an interval drawn as an error bar.
#[derive(Clone, Debug)]
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// Height.
    pub value: f64,
    /// Lower end of the interval.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
}

/// Draws bars (negative ones downwards from zero) with error bars; `legend` lines are
/// written beside the plot.
pub fn bar_chart(title: &str, y_label: &str, bars: &[Bar], legend: &[String]) -> RgbImage {
    let top = bars
        .iter()
        .map(|b| b.hi.max(b.value))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let bottom = bars
        .iter()
        .map(|b| b.lo.min(b.value))
        .fold(0.0f64, f64::min)
        * 1.1;
    let n = bars.len().max(1) as f64;
    let mut x = Axis::linear("", 0.0, n);
    x.ticks = (0..bars.len()).map(|i| i as f64 + 0.5).collect();
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let mut f = Frame::new(title, x, Axis::linear(y_label, bottom, top), Some(&labels));
    let bw = f.w / n as f32 * 0.6;
    for (i, b) in bars.iter().enumerate() {
        let cx = f.px(i as f64 + 0.5);
        let (py, base) = (f.py(b.value), f.py(0.0));
        let colour = PALETTE[i % PALETTE.len()];
        let hgt = (base - py).abs().max(1.0);
        draw_filled_rect_mut(
            &mut f.img,
            Rect::at((cx - bw / 2.0) as i32, py.min(base) as i32).of_size(bw as u32, hgt as u32),
            Rgb(colour),
        );
        let (lo, hi) = (f.py(b.lo), f.py(b.hi));
        thick_line(&mut f.img, (cx, lo), (cx, hi), INK);
        thick_line(&mut f.img, (cx - 8.0, lo), (cx + 8.0, lo), INK);
        thick_line(&mut f.img, (cx - 8.0, hi), (cx + 8.0, hi), INK);
    }
    for line in legend {
        let ly = TOP as i64 + 10 + f.legend_rows as i64 * (text_height(S) + 10) as i64;
        draw_text(&mut f.img, (WIDTH - LEGEND + 20) as i64, ly, line, S, INK);
        f.legend_rows += 1;
    }
    f.img
}

/// Draws a scatter plot; `legend` lines (e.g. a correlation) are written beside it.
pub fn scatter(
    title: &str,
    x: Axis,
    y: Axis,
    points: &[(f64, f64)],
    legend: &[String],
) -> RgbImage {
    let mut f = Frame::new(title, x, y, None);
    for &(a, b) in points {
        let (px, py) = (f.px(a), f.py(b));
        draw_hollow_rect_mut(
            &mut f.img,
            Rect::at(px as i32 - 3, py as i32 - 3).of_size(7, 7),
            Rgb(PALETTE[0]),
        );
    }
    for line in legend {
        let ly = TOP as i64 + 10 + f.legend_rows as i64 * (text_height(S) + 10) as i64;
        draw_text(&mut f.img, (WIDTH - LEGEND + 20) as i64, ly, line, S, INK);
        f.legend_rows += 1;
    }
    f.img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let t = nice_ticks(0.5, 1.0);
        assert_eq!(t.first().copied(), Some(0.5));
        assert!((t.last().unwrap() - 1.0).abs() < 1e-9);
        assert!(
            t.windows(2).all(|w| (w[1] - w[0] - 0.1).abs() < 1e-9),
            "{t:?}"
        );
        let t = nice_ticks(-3.0, 47.0);
        assert_eq!(t, vec![0.0, 10.0, 20.0, 30.0, 40.0]);
        let labels: Vec<String> = nice_ticks(0.0, 0.05).into_iter().map(tick_label).collect();
        assert_eq!(labels, ["0", "0.01", "0.02", "0.03", "0.04", "0.05"]);
        assert_eq!(tick_label(1.0000000002), "1");
    }

    #[test]
    fn series_are_drawn_in_their_colour_inside_the_frame() {
        let s = Series {
            label: "rising".into(),
            points: vec![(1.0, 0.0), (4.0, 1.0)],
            colour: [200, 0, 0],
            dashed: false,
        };
        let img = line_chart(
            "t",
            Axis::log2("k", &[1.0, 2.0, 4.0]),
            Axis::linear("y", 0.0, 1.0),
            &[s],
        );
        let red = img.pixels().filter(|p| p.0 == [200, 0, 0]).count();
        assert!(red > 100, "{red}");
        // nothing red in the left margin (the y tick labels live there)
        let margin_red = (0..LEFT - 10)
            .flat_map(|x| (0..HEIGHT).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 == [200, 0, 0])
            .count();
        assert_eq!(margin_red, 0);
    }

    #[test]
    fn negative_bars_hang_below_positive_ones() {
        let bar = |label: &str, v: f64| Bar {
            label: label.into(),
            value: v,
            lo: v,
            hi: v,
        };
        let img = bar_chart("t", "px", &[bar("up", 2.0), bar("down", -2.0)], &[]);
        let rows = |c: [u8; 3]| -> Vec<u32> {
            img.enumerate_pixels()
                .filter(|(_, _, p)| p.0 == c)
                .map(|(_, y, _)| y)
                .collect()
        };
        let (up, down) = (rows(PALETTE[0]), rows(PALETTE[1]));
        assert!(
            up.len() > 100 && down.len() > 100,
            "{} {}",
            up.len(),
            down.len()
        );
        assert!(
            up.iter().max() < down.iter().min(),
            "bars overlap vertically"
        );
    }
}
