//! Scatter plots: points, optionally in colour groups and with labels beside them, and notes
//! (such as a correlation) in the legend.

use super::axis::Axis;
use super::figure::{Axes, Figure, Occupancy, Swatch, drawn, figure, frame, legend};
use super::style::{self, HEIGHT, MUTED, PALETTE, TICK_SIZE, WIDTH};
use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One point.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Horizontal value.
    pub x: f64,
    /// Vertical value.
    pub y: f64,
    /// Text written beside the point.
    pub label: Option<String>,
    /// Colour group.
    pub group: Option<String>,
}

impl Point {
    /// A point at `(x, y)`.
    pub fn new(x: f64, y: f64) -> Self {
        Self {
            x,
            y,
            label: None,
            group: None,
        }
    }

    /// Writes `label` beside the point.
    pub fn label(mut self, label: &str) -> Self {
        self.label = Some(label.to_string());
        self
    }

    /// Puts the point in a colour group.
    pub fn group(mut self, group: &str) -> Self {
        self.group = Some(group.to_string());
        self
    }
}

/// A drawn scatter plot with each point's centre in SVG pixels (`None` where not drawn).
pub type Placed = (Figure, Vec<Option<(i32, i32)>>);

/// Points against two axes.
#[derive(Clone, Debug, PartialEq)]
pub struct Scatter {
    /// Title, in sentence case.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// The points.
    pub points: Vec<Point>,
    /// Notes listed in the legend.
    pub notes: Vec<String>,
    /// Size in SVG pixels.
    pub size: (u32, u32),
}

impl Scatter {
    /// An empty scatter plot.
    pub fn new(title: &str, x: Axis, y: Axis) -> Self {
        Self {
            title: title.to_string(),
            x,
            y,
            points: Vec::new(),
            notes: Vec::new(),
            size: (WIDTH, HEIGHT),
        }
    }

    /// Adds points.
    pub fn points(mut self, points: impl IntoIterator<Item = Point>) -> Self {
        self.points.extend(points);
        self
    }

    /// Adds a note to the legend.
    pub fn note(mut self, note: &str) -> Self {
        self.notes.push(note.to_string());
        self
    }

    /// Draws the chart.
    pub fn render(&self) -> Result<Figure> {
        Ok(self.render_placed()?.0)
    }

    /// Draws the chart and says where each point landed: its centre in the figure's SVG
    /// pixels, or `None` for a point with a coordinate that is not finite (such a point is not
    /// drawn). A page can then find the point under the pointer.
    pub fn render_placed(&self) -> Result<Placed> {
        let centres = std::cell::RefCell::new(vec![None; self.points.len()]);
        let xs: Vec<f64> = self.points.iter().map(|p| p.x).collect();
        let ys: Vec<f64> = self.points.iter().map(|p| p.y).collect();
        let axes = Axes::new(&self.x, &xs, &self.y, &ys, false);
        let mut groups: Vec<String> = Vec::new();
        for g in self.points.iter().filter_map(|p| p.group.as_ref()) {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
        figure(&self.title, self.size, |root| {
            let chart = frame(root, &self.title, &axes)?;
            let mut occupied = Occupancy::new();
            let ring = |p: &Point| match &p.group {
                Some(g) => {
                    let i = groups.iter().position(|x| x == g).unwrap_or(0);
                    (PALETTE[i % PALETTE.len()], i >= PALETTE.len())
                }
                None => (PALETTE[0], false),
            };
            let placed: Vec<(f64, f64, &Point, usize)> = self
                .points
                .iter()
                .enumerate()
                .map(|(i, p)| (axes.x.pos(p.x), axes.y.pos(p.y), p, i))
                .filter(|(x, y, _, _)| x.is_finite() && y.is_finite())
                .collect();
            for &(x, y, p, i) in &placed {
                let (px, py) = chart.backend_coord(&(x, y));
                drawn(root.draw(&marker((px, py), ring(p))))?;
                occupied.rect((px - 4, py - 4), (px + 4, py + 4));
                centres.borrow_mut()[i] = Some((px, py));
            }
            for &(x, y, p, _) in &placed {
                if let Some(label) = &p.label {
                    let (px, py) = chart.backend_coord(&(x, y));
                    let s = style::text(TICK_SIZE, MUTED).pos(Pos::new(HPos::Left, VPos::Bottom));
                    drawn(root.draw(&Text::new(label.clone(), (px + 5, py - 3), s)))?;
                    let w = super::font::text_width(label, TICK_SIZE) as i32;
                    occupied.rect((px + 5, py - 16), (px + 5 + w, py - 3));
                }
            }
            let mut entries: Vec<(Swatch, String)> = groups
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    let c = PALETTE[i % PALETTE.len()];
                    let swatch = if i < PALETTE.len() {
                        Swatch::Marker(c)
                    } else {
                        Swatch::Ring(c)
                    };
                    (swatch, g.clone())
                })
                .collect();
            entries.extend(self.notes.iter().map(|n| (Swatch::None, n.clone())));
            legend(root, &chart, &entries, &occupied)
        })
        .map(|figure| (figure, centres.into_inner()))
    }
}

/// A point's marker: a filled dot of its group's colour, or — for groups past the palette's
/// length, whose colours repeat — a ring of it.
fn marker(at: (i32, i32), (colour, ring): (style::Colour, bool)) -> Circle<(i32, i32), i32> {
    if ring {
        Circle::new(at, 4, style::rgb(colour).stroke_width(2))
    } else {
        Circle::new(at, 4, style::fill(colour, 0.7))
    }
}
