//! Charts for analysis results. An analysis says *what* to plot; this module decides the look
//! (one font, one palette, one set of sizes) and draws with [plotters] into SVG, which
//! [resvg] renders to PNG at twice the size.
//!
//! Every chart kind is a plain struct with a few builder methods and a `render()` that returns
//! a [`Figure`]; [`Figure::save`] writes `STEM.svg` and `STEM.png`:
//!
//! ```no_run
//! use gandissect::chart::{Axis, Bar, BarChart, Line, LineChart, Point, Scatter};
//! # fn main() -> anyhow::Result<()> {
//! // a line with a shaded 99% interval and a dashed reference level
//! LineChart::new("Tree pixels removed", Axis::linear("units zeroed"), Axis::linear("removed (%)"))
//!     .line(Line::new("removed", &[(0.0, 0.0), (4.0, 28.7), (20.0, 62.7)])
//!         .interval(&[0.0, 23.9, 52.7], &[0.0, 33.5, 72.7], "99% interval"))
//!     .reference("baseline", 10.0)
//!     .render()?
//!     .save("out/ablate-tree".as_ref())?;
//! // bars with error bars; negative values hang below the zero line
//! BarChart::new("Change per context", "context", Axis::linear("change (px)"))
//!     .bar(Bar::new("wall", 0.9).interval(0.5, 1.3))
//!     .bar(Bar::new("sky", -0.2).interval(-0.4, 0.0))
//!     .interval_label("1 sd")
//!     .render()?;
//! // scatter with labelled points and a note
//! Scatter::new("Selectivity against importance", Axis::linear("selectivity"), Axis::linear("drop"))
//!     .points([Point::new(0.2, 0.01), Point::new(0.9, 0.12).label("unit 7")])
//!     .note("Spearman ρ = 0.41")
//!     .render()?;
//! # Ok(()) }
//! ```
//!
//! - [`LineChart`] / [`Line`]: lines with markers, shaded [`Interval`]s, dashed lines and
//!   reference levels; [`Axis::log2`] for k = 1, 2, 4, …
//! - [`BarChart`] / [`Bar`]: error bars, negative bars, colour groups with a legend
//!   ([`Bar::group`]), values on the bars.
//! - [`Scatter`] / [`Point`]: labels beside points, colour groups, notes.
//! - [`HeatMap`]: a matrix with row and column labels and a colour bar, on a sequential
//!   (viridis) or diverging (blue–white–red, centred at zero) [`ColourScale`]; given a
//!   [`Dendrogram`] for rows or columns, it orders them by its [`Dendrogram::leaf_order`] and
//!   draws the tree beside them. [`DendrogramChart`] draws a tree alone.
//! - Axes ([`Axis`]) carry their label with its unit, and may fix their range or ticks;
//!   [`Axis::categories`] names the positions 0, 1, 2, …
//!
//! Legends go inside the plot, in the corner where they hide the least data. Titles are in
//! sentence case. Colours come from [`PALETTE`] (Okabe and Ito's, safe for colour-blind
//! readers) unless a line asks for one.
//!
//! Text is set in DejaVu Sans, embedded in the binary ([`font`]): charts never look for a
//! system font. A standalone SVG carries the subset of the font its text needs as an
//! `@font-face` data URI (its text stays selectable); an HTML page that inlines several charts
//! ([`Figure::inline_svg`]) defines the font once with [`page_font_css`]. Captions on raster
//! pictures use the same font through [`text::draw_text`].

mod axis;
mod bars;
mod dendrogram;
mod figure;
pub mod font;
mod heatmap;
mod line;
mod scatter;
mod style;
pub mod text;

#[cfg(test)]
mod tests;

pub use axis::{Axis, Scale, nice_ticks, number};
pub use bars::{Bar, BarChart};
pub use dendrogram::{Dendrogram, DendrogramChart, Merge};
pub use figure::{Figure, page_font_css, rasterize};
pub use heatmap::HeatMap;
pub use line::{Interval, Line, LineChart, Reference};
pub use scatter::{Placed, Point, Scatter};
/// `s` with its first letter capitalised (titles are in sentence case; names such as a concept
/// often start them).
pub fn sentence_case(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub use style::{
    Colour, ColourScale, GREY, HEIGHT, INK, LABEL_SIZE, PALETTE, PNG_SCALE, TICK_SIZE, TITLE_SIZE,
    WIDTH,
};
