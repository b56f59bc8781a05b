//! Bar charts: one bar per category, negative values hanging below the zero line, optional
//! error bars, colour groups with a legend, and values written on the bars.

use super::axis::{Axis, number};
use super::figure::{Axes, Figure, Occupancy, Swatch, drawn, figure, frame, legend};
use super::style::{self, HEIGHT, INK, MUTED, PALETTE, TICK_SIZE, WIDTH};
use anyhow::{Result, bail};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Category label under the bar.
    pub label: String,
    /// Height (negative bars go down from zero).
    pub value: f64,
    /// Error bar from `lo` to `hi`.
    pub interval: Option<(f64, f64)>,
    /// Colour group (bars of one group share a colour and a legend entry).
    pub group: Option<String>,
}

impl Bar {
    /// A bar of `value` labelled `label`.
    pub fn new(label: &str, value: f64) -> Self {
        Self {
            label: label.to_string(),
            value,
            interval: None,
            group: None,
        }
    }

    /// Adds an error bar from `lo` to `hi`.
    pub fn interval(mut self, lo: f64, hi: f64) -> Self {
        self.interval = Some((lo.min(hi), lo.max(hi)));
        self
    }

    /// Puts the bar in a colour group.
    pub fn group(mut self, group: &str) -> Self {
        self.group = Some(group.to_string());
        self
    }
}

/// Bars against categories.
#[derive(Clone, Debug, PartialEq)]
pub struct BarChart {
    /// Title, in sentence case.
    pub title: String,
    /// Label of the category axis.
    pub x_label: String,
    /// The value axis.
    pub y: Axis,
    /// The bars, left to right.
    pub bars: Vec<Bar>,
    /// Legend text for the error bars (none when empty).
    pub interval_label: String,
    /// Notes listed in the legend.
    pub notes: Vec<String>,
    /// Write each bar's value at its end.
    pub show_values: bool,
    /// Size in SVG pixels.
    pub size: (u32, u32),
}

impl BarChart {
    /// An empty chart with `y` as the value axis.
    pub fn new(title: &str, x_label: &str, y: Axis) -> Self {
        Self {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y,
            bars: Vec::new(),
            interval_label: String::new(),
            notes: Vec::new(),
            show_values: false,
            size: (WIDTH, HEIGHT),
        }
    }

    /// Adds a bar.
    pub fn bar(mut self, bar: Bar) -> Self {
        self.bars.push(bar);
        self
    }

    /// Names the error bars in the legend.
    pub fn interval_label(mut self, label: &str) -> Self {
        self.interval_label = label.to_string();
        self
    }

    /// Adds a note to the legend.
    pub fn note(mut self, note: &str) -> Self {
        self.notes.push(note.to_string());
        self
    }

    /// Writes each bar's value at its end.
    pub fn show_values(mut self) -> Self {
        self.show_values = true;
        self
    }

    /// Sets the size in SVG pixels.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// The colour groups in order of first appearance.
    fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for g in self.bars.iter().filter_map(|b| b.group.as_ref()) {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
        groups
    }

    /// Draws the chart.
    pub fn render(&self) -> Result<Figure> {
        if self.bars.is_empty() {
            bail!(
                "a bar chart needs at least one bar ('{}' has none)",
                self.title
            );
        }
        let names: Vec<String> = self.bars.iter().map(|b| b.label.clone()).collect();
        let mut ys: Vec<f64> = self.bars.iter().map(|b| b.value).collect();
        for b in &self.bars {
            if let Some((lo, hi)) = b.interval {
                ys.extend([lo, hi]);
            }
        }
        if self.show_values {
            // room for the value written above the tallest bar
            let hi = ys
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0f64, f64::max);
            ys.push(hi * 1.08);
        }
        let axes = Axes::new(
            &Axis::categories(&self.x_label, &names),
            &[],
            &self.y,
            &ys,
            true,
        );
        let groups = self.groups();
        let integers = self
            .bars
            .iter()
            .all(|b| b.value.fract() == 0.0 && b.value.abs() < 1e9);
        figure(&self.title, self.size, |root| {
            let mut chart = frame(root, &self.title, &axes)?;
            let mut occupied = Occupancy::new();
            let zero = axes.y.pos(0.0).clamp(axes.y.lo, axes.y.hi);
            let half = 0.36;
            for (i, b) in self.bars.iter().enumerate() {
                if !b.value.is_finite() {
                    continue;
                }
                let colour = match &b.group {
                    Some(g) => {
                        PALETTE[groups.iter().position(|x| x == g).unwrap_or(0) % PALETTE.len()]
                    }
                    None => PALETTE[0],
                };
                let x = i as f64;
                let corners = [(x - half, zero), (x + half, b.value)];
                drawn(chart.draw_series(std::iter::once(Rectangle::new(
                    corners,
                    style::rgb(colour).filled(),
                ))))?;
                occupied.rect(
                    chart.backend_coord(&corners[0]),
                    chart.backend_coord(&corners[1]),
                );
                let mut end = b.value;
                if let Some((lo, hi)) = b.interval {
                    let s = style::rgb(INK).stroke_width(1);
                    let cap = half * 0.35;
                    for seg in [
                        [(x, lo), (x, hi)],
                        [(x - cap, lo), (x + cap, lo)],
                        [(x - cap, hi), (x + cap, hi)],
                    ] {
                        drawn(
                            chart.draw_series(std::iter::once(PathElement::new(seg.to_vec(), s))),
                        )?;
                    }
                    occupied.rect(
                        chart.backend_coord(&(x - cap, lo)),
                        chart.backend_coord(&(x + cap, hi)),
                    );
                    end = if b.value >= 0.0 { hi } else { lo };
                }
                if self.show_values {
                    let text = if integers {
                        format!("{}", b.value as i64)
                    } else {
                        number(b.value, 0.01)
                    };
                    let (px, py) = chart.backend_coord(&(x, end));
                    let (dy, v) = if b.value >= 0.0 {
                        (-3, VPos::Bottom)
                    } else {
                        (3, VPos::Top)
                    };
                    let s = style::text(TICK_SIZE, MUTED).pos(Pos::new(HPos::Center, v));
                    drawn(root.draw(&Text::new(text, (px, py + dy), s)))?;
                    occupied.rect((px - 10, py + dy), (px + 10, py + dy * 5));
                }
            }
            if axes.y.lo < 0.0 && axes.y.hi > 0.0 {
                let s = style::rgb(INK).stroke_width(1);
                drawn(chart.draw_series(std::iter::once(PathElement::new(
                    vec![(axes.x.lo, 0.0), (axes.x.hi, 0.0)],
                    s,
                ))))?;
            }
            let mut entries: Vec<(Swatch, String)> = groups
                .iter()
                .enumerate()
                .map(|(i, g)| (Swatch::Box(PALETTE[i % PALETTE.len()]), g.clone()))
                .collect();
            if !self.interval_label.is_empty() {
                entries.push((Swatch::ErrorBar, self.interval_label.clone()));
            }
            entries.extend(self.notes.iter().map(|n| (Swatch::None, n.clone())));
            legend(root, &chart, &entries, &occupied)
        })
    }
}
