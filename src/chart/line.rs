//! Line charts: lines with markers, each optionally with a shaded interval, dashed reference
//! levels, and notes in the legend.

use super::axis::Axis;
use super::figure::{Axes, Figure, Occupancy, Swatch, drawn, figure, frame, legend};
use super::style::{self, Colour, GREY, HEIGHT, LINE_WIDTH, MARKER, PALETTE, WIDTH};
use anyhow::{Result, bail};
use plotters::element::DashedPathElement;
use plotters::prelude::*;

/// An interval around a line (e.g. a 99% confidence interval), one `(lo, hi)` per point.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// Lower ends, one per point of the line.
    pub lo: Vec<f64>,
    /// Upper ends, one per point of the line.
    pub hi: Vec<f64>,
    /// Legend text (empty: none).
    pub label: String,
}

/// One line of a [`LineChart`].
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Legend text (empty: none).
    pub label: String,
    /// `(x, y)` points in drawing order; a non-finite point breaks the line.
    pub points: Vec<(f64, f64)>,
    /// Shaded interval around the line.
    pub interval: Option<Interval>,
    /// Dashed instead of solid.
    pub dashed: bool,
    /// A marker at every point.
    pub markers: bool,
    /// Colour; the next palette colour when `None`.
    pub colour: Option<Colour>,
}

impl Line {
    /// A solid line with markers through `points`.
    pub fn new(label: &str, points: &[(f64, f64)]) -> Self {
        Self {
            label: label.to_string(),
            points: points.to_vec(),
            interval: None,
            dashed: false,
            markers: true,
            colour: None,
        }
    }

    /// Shades the interval `lo[i]..hi[i]` around point `i`, named `label` in the legend.
    pub fn interval(mut self, lo: &[f64], hi: &[f64], label: &str) -> Self {
        self.interval = Some(Interval {
            lo: lo.to_vec(),
            hi: hi.to_vec(),
            label: label.to_string(),
        });
        self
    }

    /// Draws the line dashed and without markers.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self.markers = false;
        self
    }

    /// Sets the colour.
    pub fn colour(mut self, colour: Colour) -> Self {
        self.colour = Some(colour);
        self
    }
}

/// A horizontal reference level drawn dashed in grey across the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    /// Legend text.
    pub label: String,
    /// The level.
    pub y: f64,
}

/// Lines against a shared pair of axes.
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    /// Title, in sentence case.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// The lines, drawn in order.
    pub lines: Vec<Line>,
    /// Horizontal reference levels.
    pub references: Vec<Reference>,
    /// Notes listed under the legend entries.
    pub notes: Vec<String>,
    /// Size in SVG pixels.
    pub size: (u32, u32),
}

impl LineChart {
    /// An empty chart.
    pub fn new(title: &str, x: Axis, y: Axis) -> Self {
        Self {
            title: title.to_string(),
            x,
            y,
            lines: Vec::new(),
            references: Vec::new(),
            notes: Vec::new(),
            size: (WIDTH, HEIGHT),
        }
    }

    /// Adds a line.
    pub fn line(mut self, line: Line) -> Self {
        self.lines.push(line);
        self
    }

    /// Adds a dashed grey reference level.
    pub fn reference(mut self, label: &str, y: f64) -> Self {
        self.references.push(Reference {
            label: label.to_string(),
            y,
        });
        self
    }

    /// Adds a note to the legend.
    pub fn note(mut self, note: &str) -> Self {
        self.notes.push(note.to_string());
        self
    }

    /// Draws the chart.
    pub fn render(&self) -> Result<Figure> {
        for l in &self.lines {
            if let Some(iv) = &l.interval
                && (iv.lo.len() != l.points.len() || iv.hi.len() != l.points.len())
            {
                bail!(
                    "the interval of line '{}' has {} lower and {} upper ends for {} points; give one of each per point",
                    l.label,
                    iv.lo.len(),
                    iv.hi.len(),
                    l.points.len()
                );
            }
        }
        let xs: Vec<f64> = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .collect();
        let mut ys: Vec<f64> = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .collect();
        for l in &self.lines {
            if let Some(iv) = &l.interval {
                ys.extend(iv.lo.iter().chain(&iv.hi));
            }
        }
        ys.extend(self.references.iter().map(|r| r.y));
        let axes = Axes::new(&self.x, &xs, &self.y, &ys, false);
        figure(&self.title, self.size, |root| {
            let mut chart = frame(root, &self.title, &axes)?;
            let mut occupied = Occupancy::new();
            let mut entries = Vec::new();
            let pos = |x: f64, y: f64| (axes.x.pos(x), axes.y.pos(y));
            let (x_lo, x_hi) = (axes.x.lo, axes.x.hi);
            for r in &self.references {
                let y = axes.y.pos(r.y);
                let s = style::rgb(GREY).stroke_width(1);
                drawn(chart.draw_series(std::iter::once(DashedPathElement::new(
                    vec![(x_lo, y), (x_hi, y)],
                    6,
                    4,
                    s,
                ))))?;
                occupied.segment(
                    chart.backend_coord(&(x_lo, y)),
                    chart.backend_coord(&(x_hi, y)),
                );
                entries.push((
                    Swatch::Line {
                        colour: GREY,
                        dashed: true,
                        marker: false,
                    },
                    r.label.clone(),
                ));
            }
            for (i, l) in self.lines.iter().enumerate() {
                let colour = l.colour.unwrap_or(PALETTE[i % PALETTE.len()]);
                let placed: Vec<(f64, f64)> = l.points.iter().map(|p| pos(p.0, p.1)).collect();
                for run in finite_runs(&placed) {
                    if let Some(iv) = &l.interval {
                        let upper = run.clone().map(|j| pos(l.points[j].0, iv.hi[j]));
                        let lower = run.clone().rev().map(|j| pos(l.points[j].0, iv.lo[j]));
                        let poly: Vec<(f64, f64)> = upper.chain(lower).collect();
                        for w in poly.windows(2) {
                            occupied
                                .segment(chart.backend_coord(&w[0]), chart.backend_coord(&w[1]));
                        }
                        drawn(chart.draw_series(std::iter::once(Polygon::new(
                            poly,
                            style::fill(colour, 0.2),
                        ))))?;
                    }
                    let pts: Vec<(f64, f64)> = placed[run.clone()].to_vec();
                    for w in pts.windows(2) {
                        occupied.segment(chart.backend_coord(&w[0]), chart.backend_coord(&w[1]));
                    }
                    let s = style::rgb(colour).stroke_width(LINE_WIDTH);
                    if l.dashed {
                        drawn(chart.draw_series(std::iter::once(DashedPathElement::new(
                            pts.clone(),
                            7,
                            4,
                            s,
                        ))))?;
                    } else {
                        drawn(
                            chart.draw_series(std::iter::once(PathElement::new(pts.clone(), s))),
                        )?;
                    }
                    if l.markers {
                        drawn(
                            chart.draw_series(
                                pts.iter()
                                    .map(|p| Circle::new(*p, MARKER, style::rgb(colour).filled())),
                            ),
                        )?;
                    }
                }
                if !l.label.is_empty() {
                    entries.push((
                        Swatch::Line {
                            colour,
                            dashed: l.dashed,
                            marker: l.markers,
                        },
                        l.label.clone(),
                    ));
                }
                if let Some(iv) = &l.interval
                    && !iv.label.is_empty()
                {
                    entries.push((Swatch::Band(colour), iv.label.clone()));
                }
            }
            entries.extend(self.notes.iter().map(|n| (Swatch::None, n.clone())));
            legend(root, &chart, &entries, &occupied)?;
            Ok(())
        })
    }
}

/// Index ranges of consecutive finite points.
fn finite_runs(points: &[(f64, f64)]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, p) in points.iter().enumerate() {
        let ok = p.0.is_finite() && p.1.is_finite();
        match (ok, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(s..points.len());
    }
    runs
}
