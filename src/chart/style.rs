//! The look of every chart, decided in one place: sizes, text sizes, the colour-blind-safe
//! palette and the colour scales of heat maps.

use super::font::FAMILY;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::{Color, IntoFont, RGBColor, TextStyle};

/// A colour as 8-bit RGB.
pub type Colour = [u8; 3];

/// The series palette (Okabe and Ito's colours for readers with any kind of colour blindness):
/// blue, vermillion, bluish green, orange, reddish purple, sky blue, yellow, black.
pub const PALETTE: [Colour; 8] = [
    [0, 114, 178],
    [213, 94, 0],
    [0, 158, 115],
    [230, 159, 0],
    [204, 121, 167],
    [86, 180, 233],
    [240, 228, 66],
    [0, 0, 0],
];

/// Text and axes.
pub const INK: Colour = [38, 38, 38];
/// Secondary text (tick labels, notes).
pub const MUTED: Colour = [77, 77, 77];
/// Grid lines.
pub const GRID: Colour = [229, 229, 229];
/// A neutral grey for reference lines.
pub const GREY: Colour = [140, 140, 140];

/// Default chart size in SVG pixels (the PNG is drawn at [`PNG_SCALE`] times this).
pub const WIDTH: u32 = 720;
/// Default chart height.
pub const HEIGHT: u32 = 450;
/// The PNG's resolution relative to the SVG.
pub const PNG_SCALE: f32 = 2.0;

/// Title text size in pixels.
pub const TITLE_SIZE: f32 = 15.0;
/// Axis label text size.
pub const LABEL_SIZE: f32 = 13.0;
/// Tick label, legend and note text size.
pub const TICK_SIZE: f32 = 11.5;
/// Line width of data lines.
pub const LINE_WIDTH: u32 = 2;
/// Radius of line markers.
pub const MARKER: u32 = 3;

/// A plotters colour.
pub(crate) fn rgb(c: Colour) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// Plotters' sizes are the SVG size times 1.24 (it divides by that when writing SVG).
pub(crate) fn text(size: f32, colour: Colour) -> TextStyle<'static> {
    (FAMILY, f64::from(size) * 1.24)
        .into_font()
        .color(&rgb(colour))
}

/// A filled style of `colour` at `alpha`.
pub(crate) fn fill(colour: Colour, alpha: f64) -> plotters::style::ShapeStyle {
    rgb(colour).mix(alpha).filled()
}

/// How values map to colours in a heat map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ColourScale {
    /// Viridis from the lowest to the highest value (counts, IoU, similarities in [0, 1]).
    Sequential,
    /// Blue through white to red, white at zero and the range symmetric about it (signed values
    /// such as correlations or changes).
    Diverging,
}

/// ColorBrewer's RdBu anchors, from most negative to most positive.
const DIVERGING: [Colour; 7] = [
    [33, 102, 172],
    [103, 169, 207],
    [209, 229, 240],
    [247, 247, 247],
    [253, 219, 199],
    [239, 138, 98],
    [178, 24, 43],
];

impl ColourScale {
    /// The colour of `t` in [0, 1] along the scale (clamped).
    pub fn at(self, t: f64) -> Colour {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        match self {
            ColourScale::Sequential => {
                let c = ViridisRGB::get_color(t as f32);
                [c.0, c.1, c.2]
            }
            ColourScale::Diverging => {
                let x = t * (DIVERGING.len() - 1) as f64;
                let i = (x.floor() as usize).min(DIVERGING.len() - 2);
                let f = x - i as f64;
                let (a, b) = (DIVERGING[i], DIVERGING[i + 1]);
                std::array::from_fn(|k| (a[k] as f64 * (1.0 - f) + b[k] as f64 * f).round() as u8)
            }
        }
    }

    /// The range shown for values spanning `[lo, hi]` (symmetric about zero when diverging).
    pub fn range(self, lo: f64, hi: f64) -> (f64, f64) {
        match self {
            ColourScale::Sequential if hi > lo => (lo, hi),
            ColourScale::Sequential => (lo, lo + 1.0),
            ColourScale::Diverging => {
                let m = lo.abs().max(hi.abs());
                if m > 0.0 { (-m, m) } else { (-1.0, 1.0) }
            }
        }
    }

    /// Text colour readable on a cell of colour `c` (black on light, white on dark).
    pub fn ink_on(c: Colour) -> Colour {
        let l = 0.2126 * c[0] as f64 + 0.7152 * c[1] as f64 + 0.0722 * c[2] as f64;
        if l > 140.0 { INK } else { [255, 255, 255] }
    }
}
