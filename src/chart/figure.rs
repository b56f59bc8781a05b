//! A drawn chart ([`Figure`]): its SVG (standalone with the font subset it needs, or for inlining
//! in a page), its PNG at twice the resolution, and the files; plus the shared frame (title,
//! axes, grid) and legend every chart kind draws with.

use super::axis::{Axis, Resolved};
use super::font::{self, FAMILY};
use super::style::{self, Colour, GRID, INK, LABEL_SIZE, MUTED, PNG_SCALE, TICK_SIZE, TITLE_SIZE};
use crate::fsutil::atomic_write;
use crate::imageio::save_png;
use anyhow::{Context, Result, anyhow};
use image::RgbImage;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use resvg::{tiny_skia, usvg};
use std::path::{Path, PathBuf};

/// A finished chart.
#[derive(Clone, Debug)]
pub struct Figure {
    title: String,
    width: u32,
    height: u32,
    /// The SVG elements, without the enclosing `<svg>`.
    body: String,
}

impl Figure {
    /// Wraps the SVG document plotters wrote.
    pub(crate) fn from_plotters(title: &str, width: u32, height: u32, svg: &str) -> Result<Self> {
        let start = svg
            .find("<svg")
            .and_then(|i| svg[i..].find('>').map(|j| i + j + 1))
            .ok_or_else(|| anyhow!("the chart backend wrote no <svg> element"))?;
        let end = svg
            .rfind("</svg>")
            .ok_or_else(|| anyhow!("the chart backend left its <svg> element open"))?;
        Ok(Self {
            title: title.to_string(),
            width,
            height,
            body: svg[start..end].trim().to_string(),
        })
    }

    /// The title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Width and height in SVG pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Every piece of text the chart shows, one per line, in drawing order.
    pub fn text(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find("<text") {
            let after = &rest[i..];
            let Some(open_end) = after.find('>') else {
                break;
            };
            let Some(close) = after.find("</text>") else {
                break;
            };
            out.push(unescape(after[open_end + 1..close].trim()));
            rest = &after[close + 7..];
        }
        out
    }

    fn open_tag(&self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
             font-family=\"{FAMILY}\" style=\"font-kerning:none\" role=\"img\" class=\"chart\">\
             <title>{t}</title>",
            w = self.width,
            h = self.height,
            t = escape(&self.title)
        )
    }

    /// The SVG for a page that defines the font once for all its charts ([`page_font_css`]).
    pub fn inline_svg(&self) -> String {
        format!("{}\n{}\n</svg>", self.open_tag(), self.body)
    }

    /// A standalone SVG document that carries the subset of the font its text needs, so it
    /// looks the same everywhere and its text stays selectable.
    pub fn svg(&self) -> Result<String> {
        let css = font::font_face_css(&self.text().concat())?;
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}<defs><style>{css}</style></defs>\n{}\n</svg>\n",
            self.open_tag(),
            self.body
        ))
    }

    /// The chart drawn at [`PNG_SCALE`] times its SVG size, with the embedded font only.
    pub fn png(&self) -> Result<RgbImage> {
        rasterize(&self.inline_svg(), PNG_SCALE)
    }

    /// Writes `STEM.svg` and `STEM.png` (atomically); returns both paths.
    pub fn save(&self, stem: &Path) -> Result<(PathBuf, PathBuf)> {
        let with = |ext: &str| {
            let mut name = stem.as_os_str().to_owned();
            name.push(ext);
            PathBuf::from(name)
        };
        let (svg, png) = (with(".svg"), with(".png"));
        atomic_write(&svg, self.svg()?.as_bytes())?;
        save_png(&png, &self.png()?)?;
        Ok((svg, png))
    }
}

/// The `@font-face` rule (in a `<style>` element) a page puts once in its head for all the
/// charts it inlines with [`Figure::inline_svg`], plus any `extra` text drawn in the font.
pub fn page_font_css(figures: &[&Figure], extra: &str) -> Result<String> {
    let mut text: String = figures.iter().flat_map(|f| f.text()).collect();
    text.push_str(extra);
    Ok(format!(
        "<style>{}svg.chart{{max-width:100%;height:auto}}</style>",
        font::font_face_css(&text)?
    ))
}

/// Renders an SVG document at `scale` onto white with the embedded font as the only font.
pub fn rasterize(svg: &str, scale: f32) -> Result<RgbImage> {
    let opts = usvg::Options {
        fontdb: font::database(),
        font_family: FAMILY.to_string(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &opts).context("parsing a chart's SVG")?;
    let size = tree.size();
    let (w, h) = (
        (size.width() * scale).ceil() as u32,
        (size.height() * scale).ceil() as u32,
    );
    let mut pixmap = tiny_skia::Pixmap::new(w.max(1), h.max(1))
        .ok_or_else(|| anyhow!("a chart of {w}×{h} pixels cannot be drawn"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    let mut img = RgbImage::new(pixmap.width(), pixmap.height());
    for (dst, src) in img.pixels_mut().zip(pixmap.pixels()) {
        // opaque everywhere (white underneath), so premultiplied equals straight colour
        *dst = image::Rgb([src.red(), src.green(), src.blue()]);
    }
    Ok(img)
}

/// Escapes text for XML.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The drawing surface of one chart.
pub(crate) type Root<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// One axis in plot units (log2 of the value on a log axis) with its ticks where the chart
/// wants them.
#[derive(Clone, Debug)]
pub(crate) struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(r: &Resolved) -> Self {
        Self {
            lo: r.lo,
            hi: r.hi,
            ticks: r.ticks.clone(),
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.lo) / (self.hi - self.lo).max(1e-300);
        (limit.0 as f64 + t * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// Plot coordinates.
pub(crate) type Coords = Cartesian2d<Ticked, Ticked>;
/// A chart's plotting context.
pub(crate) type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Coords>;

/// Maps plotters' drawing errors to this crate's errors.
pub(crate) fn drawn<T, E: std::fmt::Debug>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| anyhow!("drawing a chart: {e:?}"))
}

/// Draws a chart of `size` with `draw` and wraps the result.
pub(crate) fn figure(
    title: &str,
    size: (u32, u32),
    draw: impl FnOnce(&Root<'_>) -> Result<()>,
) -> Result<Figure> {
    font::register();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        drawn(root.fill(&WHITE))?;
        draw(&root)?;
        drawn(root.present())?;
    }
    Figure::from_plotters(title, size.0, size.1, &svg)
}

/// The two axes of a frame, resolved.
pub(crate) struct Axes {
    pub x: Resolved,
    pub y: Resolved,
    pub x_label: String,
    pub y_label: String,
}

impl Axes {
    pub fn new(x: &Axis, x_data: &[f64], y: &Axis, y_data: &[f64], bars: bool) -> Self {
        Self {
            x: x.resolve(x_data, false),
            y: y.resolve(y_data, bars),
            x_label: x.label.clone(),
            y_label: y.label.clone(),
        }
    }
}

/// The title's text size: [`TITLE_SIZE`], smaller for a title too long for the chart's width.
pub(crate) fn title_size(title: &str, width: u32) -> f32 {
    let room = width as f32 - 24.0;
    let w = font::text_width(title, TITLE_SIZE);
    if w > room {
        (TITLE_SIZE * room / w).max(9.0)
    } else {
        TITLE_SIZE
    }
}

/// Whether a categorical x axis needs its labels turned upright to fit.
fn upright(x: &Resolved, plot_width: f32) -> bool {
    if x.labels.is_empty() {
        return false;
    }
    let slot = plot_width / (x.hi - x.lo).max(1e-9) as f32;
    x.labels
        .iter()
        .any(|l| font::text_width(l, TICK_SIZE) > slot * 0.92)
}

/// Draws the title, axes, ticks, labels and horizontal grid on `root`, returning the chart
/// context to plot in. Categorical labels that do not fit side by side are drawn upright.
pub(crate) fn frame<'a, 'b>(root: &'a Root<'b>, title: &str, axes: &Axes) -> Result<Chart<'a, 'b>> {
    let (w, _) = root.dim_in_pixel();
    let y_tick_w = axes
        .y
        .labels
        .iter()
        .map(|l| font::text_width(l, TICK_SIZE))
        .fold(0.0f32, f32::max);
    let y_area = (y_tick_w
        + 14.0
        + if axes.y_label.is_empty() {
            0.0
        } else {
            LABEL_SIZE + 12.0
        }) as u32;
    let turn = axes.x.categorical && upright(&axes.x, w as f32 - y_area as f32 - 30.0);
    let x_tick_h = if turn {
        axes.x
            .labels
            .iter()
            .map(|l| font::text_width(l, TICK_SIZE))
            .fold(0.0f32, f32::max)
            + 6.0
    } else {
        TICK_SIZE * 1.3
    };
    let x_area = (x_tick_h
        + 12.0
        + if axes.x_label.is_empty() {
            0.0
        } else {
            LABEL_SIZE + 12.0
        }) as u32;
    let mut chart = drawn(
        ChartBuilder::on(root)
            .margin_top(8)
            .margin_right(24)
            .margin_left(8)
            .margin_bottom(6)
            .caption(title, style::text(title_size(title, w), INK))
            .x_label_area_size(x_area)
            .y_label_area_size(y_area)
            .build_cartesian_2d(Ticked::new(&axes.x), Ticked::new(&axes.y)),
    )?;
    let x_fmt = |v: &f64| {
        if turn {
            String::new()
        } else {
            axes.x.label_at(*v)
        }
    };
    let y_fmt = |v: &f64| axes.y.label_at(*v);
    drawn(
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(style::rgb(GRID).stroke_width(1))
            .axis_style(style::rgb(MUTED).stroke_width(1))
            .set_all_tick_mark_size(4)
            .label_style(style::text(TICK_SIZE, MUTED))
            .axis_desc_style(style::text(LABEL_SIZE, INK))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_desc(axes.x_label.clone())
            .y_desc(axes.y_label.clone())
            .draw(),
    )?;
    if turn {
        let y0 = axes.y.lo;
        for (t, label) in axes.x.ticks.iter().zip(&axes.x.labels) {
            let (px, py) = chart.backend_coord(&(*t, y0));
            let style = style::text(TICK_SIZE, MUTED)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Right, VPos::Center));
            drawn(root.draw(&Text::new(label.clone(), (px, py + 7), style)))?;
        }
    }
    Ok(chart)
}

/// What a legend entry shows beside its text.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Swatch {
    /// A line, dashed or not, with or without a marker.
    Line {
        colour: Colour,
        dashed: bool,
        marker: bool,
    },
    /// A translucent band (an interval).
    Band(Colour),
    /// A filled box (a bar group).
    Box(Colour),
    /// A marker alone (a scatter group).
    Marker(Colour),
    /// A ring marker alone (a scatter group past the palette's length).
    Ring(Colour),
    /// An error bar.
    ErrorBar,
    /// Nothing (a note).
    None,
}

/// Pixels the data covers, on a coarse grid, so legends go where they hide the least.
pub(crate) struct Occupancy {
    cell: i32,
    cells: std::collections::HashSet<(i32, i32)>,
}

impl Occupancy {
    pub fn new() -> Self {
        Self {
            cell: 6,
            cells: Default::default(),
        }
    }

    /// Marks the pixels along the segment from `a` to `b`.
    pub fn segment(&mut self, a: (i32, i32), b: (i32, i32)) {
        let len = ((b.0 - a.0).pow(2) as f64 + (b.1 - a.1).pow(2) as f64).sqrt();
        let n = (len / (self.cell as f64 / 2.0)).ceil().max(1.0) as i32;
        for i in 0..=n {
            let t = i as f64 / n as f64;
            let x = a.0 as f64 + (b.0 - a.0) as f64 * t;
            let y = a.1 as f64 + (b.1 - a.1) as f64 * t;
            self.cells.insert((
                (x as i32).div_euclid(self.cell),
                (y as i32).div_euclid(self.cell),
            ));
        }
    }

    /// Marks a rectangle given by two corners.
    pub fn rect(&mut self, a: (i32, i32), b: (i32, i32)) {
        let (x0, x1) = (a.0.min(b.0), a.0.max(b.0));
        let (y0, y1) = (a.1.min(b.1), a.1.max(b.1));
        for cx in x0.div_euclid(self.cell)..=x1.div_euclid(self.cell) {
            for cy in y0.div_euclid(self.cell)..=y1.div_euclid(self.cell) {
                self.cells.insert((cx, cy));
            }
        }
    }

    fn count(&self, x0: i32, y0: i32, x1: i32, y1: i32) -> usize {
        let mut n = 0;
        for cx in x0.div_euclid(self.cell)..=x1.div_euclid(self.cell) {
            for cy in y0.div_euclid(self.cell)..=y1.div_euclid(self.cell) {
                n += usize::from(self.cells.contains(&(cx, cy)));
            }
        }
        n
    }
}

const ROW: i32 = 18;
const SWATCH: i32 = 24;

/// Draws a legend box with `entries` inside the plotting area of `chart`, in the corner where
/// it covers the fewest occupied cells.
pub(crate) fn legend(
    root: &Root<'_>,
    chart: &Chart<'_, '_>,
    entries: &[(Swatch, String)],
    occupied: &Occupancy,
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let text_w = entries
        .iter()
        .map(|(_, t)| font::text_width(t, TICK_SIZE))
        .fold(0.0f32, f32::max) as i32;
    let has_swatch = entries.iter().any(|(s, _)| !matches!(s, Swatch::None));
    let w = 16 + if has_swatch { SWATCH + 8 } else { 0 } + text_w;
    let h = 8 + ROW * entries.len() as i32;
    let inset = 8;
    // corners first (upper right preferred on ties), then positions along the top, bottom and
    // middle of the plot
    let (left, right) = (xr.start + inset, (xr.end - inset - w).max(xr.start + inset));
    let (top, bottom) = (yr.start + inset, (yr.end - inset - h).max(yr.start + inset));
    let middle = (top + bottom) / 2;
    let mut candidates = vec![(right, top), (left, top), (right, bottom), (left, bottom)];
    for y in [top, bottom, middle] {
        let mut x = right;
        while x > left {
            candidates.push((x, y));
            x -= 12;
        }
    }
    let (x0, y0) = candidates
        .iter()
        .copied()
        .min_by_key(|&(x, y)| occupied.count(x, y, x + w, y + h))
        .unwrap_or((right, top));
    drawn(root.draw(&Rectangle::new(
        [(x0, y0), (x0 + w, y0 + h)],
        style::fill([255, 255, 255], 0.88),
    )))?;
    drawn(root.draw(&Rectangle::new(
        [(x0, y0), (x0 + w, y0 + h)],
        style::rgb([204, 204, 204]).stroke_width(1),
    )))?;
    for (i, (swatch, text)) in entries.iter().enumerate() {
        let cy = y0 + 4 + ROW * i as i32 + ROW / 2;
        let sx = x0 + 8;
        draw_swatch(root, *swatch, sx, cy)?;
        let tx = if has_swatch { sx + SWATCH + 8 } else { sx };
        let colour = if matches!(swatch, Swatch::None) {
            MUTED
        } else {
            INK
        };
        let style = style::text(TICK_SIZE, colour).pos(Pos::new(HPos::Left, VPos::Center));
        drawn(root.draw(&Text::new(text.clone(), (tx, cy), style)))?;
    }
    Ok(())
}

fn draw_swatch(root: &Root<'_>, swatch: Swatch, x: i32, cy: i32) -> Result<()> {
    match swatch {
        Swatch::Line {
            colour,
            dashed,
            marker,
        } => {
            let style = style::rgb(colour).stroke_width(style::LINE_WIDTH);
            if dashed {
                drawn(root.draw(&DashedPathElement::new(
                    vec![(x, cy), (x + SWATCH, cy)],
                    5,
                    3,
                    style,
                )))?;
            } else {
                drawn(root.draw(&PathElement::new(vec![(x, cy), (x + SWATCH, cy)], style)))?;
            }
            if marker {
                drawn(root.draw(&Circle::new(
                    (x + SWATCH / 2, cy),
                    style::MARKER,
                    style::rgb(colour).filled(),
                )))?;
            }
        }
        Swatch::Band(c) => drawn(root.draw(&Rectangle::new(
            [(x, cy - 6), (x + SWATCH, cy + 6)],
            style::fill(c, 0.22),
        )))?,
        Swatch::Box(c) => drawn(root.draw(&Rectangle::new(
            [(x + 4, cy - 6), (x + SWATCH - 4, cy + 6)],
            style::rgb(c).filled(),
        )))?,
        Swatch::Marker(c) => {
            drawn(root.draw(&Circle::new((x + SWATCH / 2, cy), 4, style::fill(c, 0.75))))?
        }
        Swatch::Ring(c) => drawn(root.draw(&Circle::new(
            (x + SWATCH / 2, cy),
            4,
            style::rgb(c).stroke_width(2),
        )))?,
        Swatch::ErrorBar => {
            let s = style::rgb(INK).stroke_width(1);
            let m = x + SWATCH / 2;
            drawn(root.draw(&PathElement::new(vec![(m, cy - 7), (m, cy + 7)], s)))?;
            drawn(root.draw(&PathElement::new(vec![(m - 4, cy - 7), (m + 4, cy - 7)], s)))?;
            drawn(root.draw(&PathElement::new(vec![(m - 4, cy + 7), (m + 4, cy + 7)], s)))?;
        }
        Swatch::None => {}
    }
    Ok(())
}
