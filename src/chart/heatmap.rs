//! Heat maps: a matrix of values as coloured cells with row and column labels and a colour bar,
//! optionally ordered by dendrograms drawn beside it (rows on the left, columns on top).

use super::axis::{nice_ticks, number};
use super::dendrogram::Dendrogram;
use super::figure::{Figure, Root, drawn, figure};
use super::font::text_width;
use super::style::{self, ColourScale, INK, LABEL_SIZE, MUTED, TICK_SIZE, TITLE_SIZE};
use anyhow::{Result, bail};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A matrix drawn as coloured cells.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatMap {
    /// Title, in sentence case.
    pub title: String,
    /// Row labels, top to bottom before any reordering.
    pub rows: Vec<String>,
    /// Column labels, left to right before any reordering.
    pub columns: Vec<String>,
    /// `values[r][c]`; non-finite cells are drawn grey.
    pub values: Vec<Vec<f64>>,
    /// How values map to colours.
    pub scale: ColourScale,
    /// Values at the two ends of the colour bar; from the data when `None`.
    pub range: Option<(f64, f64)>,
    /// Label of the colour bar (what a cell's value is, with its unit).
    pub value_label: String,
    /// Label of the row axis.
    pub row_label: String,
    /// Label of the column axis.
    pub column_label: String,
    /// Orders the rows and is drawn on their left.
    pub row_tree: Option<Dendrogram>,
    /// Orders the columns and is drawn above them.
    pub column_tree: Option<Dendrogram>,
    /// Writes each value in its cell when cells are large enough.
    pub show_values: bool,
}

/// Where a heat map's parts go, in SVG pixels.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layout {
    pub size: (u32, u32),
    /// Top-left corner of the cell grid.
    pub grid: (i32, i32),
    /// Cell width and height.
    pub cell: i32,
    /// Row ids top to bottom and column ids left to right.
    pub row_order: Vec<usize>,
    pub column_order: Vec<usize>,
    pub bar: (i32, i32, i32, i32),
    /// Left edge of the colour bar's label.
    pub bar_label_x: i32,
    pub tree_band: i32,
    pub row_labels_right: bool,
    pub upright_columns: bool,
    pub label_step: (usize, usize),
}

const TREE: i32 = 70;

impl HeatMap {
    /// A heat map of `values[r][c]` with the given labels, on a sequential scale.
    pub fn new(title: &str, rows: &[String], columns: &[String], values: Vec<Vec<f64>>) -> Self {
        Self {
            title: title.to_string(),
            rows: rows.to_vec(),
            columns: columns.to_vec(),
            values,
            scale: ColourScale::Sequential,
            range: None,
            value_label: String::new(),
            row_label: String::new(),
            column_label: String::new(),
            row_tree: None,
            column_tree: None,
            show_values: false,
        }
    }

    /// Uses a diverging scale centred at zero.
    pub fn diverging(mut self) -> Self {
        self.scale = ColourScale::Diverging;
        self
    }

    /// Fixes the values at the ends of the colour bar.
    pub fn range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo.min(hi), lo.max(hi)));
        self
    }

    /// Names the value, the rows and the columns.
    pub fn labels(mut self, value: &str, rows: &str, columns: &str) -> Self {
        self.value_label = value.to_string();
        self.row_label = rows.to_string();
        self.column_label = columns.to_string();
        self
    }

    /// Orders the rows by `tree` and draws it.
    pub fn row_tree(mut self, tree: Dendrogram) -> Self {
        self.row_tree = Some(tree);
        self
    }

    /// Orders the columns by `tree` and draws it.
    pub fn column_tree(mut self, tree: Dendrogram) -> Self {
        self.column_tree = Some(tree);
        self
    }

    /// Writes values in cells large enough to hold them.
    pub fn show_values(mut self) -> Self {
        self.show_values = true;
        self
    }

    fn check(&self) -> Result<()> {
        let (r, c) = (self.rows.len(), self.columns.len());
        if r == 0 || c == 0 {
            bail!(
                "a heat map needs at least one row and one column ('{}' has {r}×{c})",
                self.title
            );
        }
        if self.values.len() != r || self.values.iter().any(|row| row.len() != c) {
            bail!(
                "a heat map of {r} rows and {c} columns needs {r} rows of {c} values; got rows of {:?}",
                self.values.iter().map(Vec::len).collect::<Vec<_>>()
            );
        }
        for (tree, n, what) in [
            (&self.row_tree, r, "rows"),
            (&self.column_tree, c, "columns"),
        ] {
            if let Some(t) = tree
                && t.leaves() != n
            {
                bail!(
                    "the dendrogram of the {what} has {} leaves for {n} {what}",
                    t.leaves()
                );
            }
        }
        Ok(())
    }

    /// The value range the colours span.
    pub fn colour_range(&self) -> (f64, f64) {
        if let Some(r) = self.range {
            return r;
        }
        let finite = self
            .values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if lo.is_finite() {
            self.scale.range(lo, hi)
        } else {
            self.scale.range(0.0, 1.0)
        }
    }

    /// The colour of one value.
    pub fn colour_of(&self, v: f64) -> style::Colour {
        if !v.is_finite() {
            return [210, 210, 210];
        }
        let (lo, hi) = self.colour_range();
        self.scale.at((v - lo) / (hi - lo).max(1e-300))
    }

    /// The colour bar's ticks and their labels.
    fn bar_ticks(&self) -> Vec<(f64, String)> {
        let (lo, hi) = self.colour_range();
        let ticks = nice_ticks(lo, hi);
        let step = ticks
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, f64::min);
        let step = if step.is_finite() { step } else { hi - lo };
        ticks.into_iter().map(|t| (t, number(t, step))).collect()
    }

    pub(crate) fn layout(&self) -> Layout {
        let (r, c) = (self.rows.len(), self.columns.len());
        let cell = (560 / c as i32).min(440 / r as i32).clamp(3, 40);
        let label_step = |n: usize| {
            if cell >= 12 {
                1
            } else {
                (13.0 / cell as f64).ceil() as usize
            }
            .min(n.max(1))
        };
        let steps = (label_step(r), label_step(c));
        let widest = |labels: &[String], step: usize| {
            labels
                .iter()
                .step_by(step)
                .map(|l| text_width(l, TICK_SIZE))
                .fold(0.0f32, f32::max)
                .ceil() as i32
        };
        let row_w = widest(&self.rows, steps.0) + 8;
        let upright_columns = self
            .columns
            .iter()
            .any(|l| text_width(l, TICK_SIZE) > cell as f32 * steps.1 as f32 * 0.92);
        let col_h = if upright_columns {
            widest(&self.columns, steps.1) + 8
        } else {
            18
        };
        let row_labels_right = self.row_tree.is_some();
        let left_label = if self.row_label.is_empty() { 0 } else { 22 };
        let left = 10
            + left_label
            + if self.row_tree.is_some() { TREE + 4 } else { 0 }
            + if row_labels_right { 0 } else { row_w };
        let top = 10
            + (TITLE_SIZE * 1.6) as i32
            + if self.column_tree.is_some() {
                TREE + 4
            } else {
                0
            };
        let (gw, gh) = (cell * c as i32, cell * r as i32);
        let right_labels = if row_labels_right { row_w } else { 0 };
        let bar_x = left + gw + right_labels + 16;
        let bar_h = gh.clamp(120, 320).min(gh.max(60));
        let tick_w = self
            .bar_ticks()
            .iter()
            .map(|(_, t)| text_width(t, TICK_SIZE))
            .fold(0.0f32, f32::max)
            .ceil() as i32;
        let bar_label_x = bar_x + 14 + 6 + tick_w + 8;
        let width = bar_label_x
            + if self.value_label.is_empty() {
                0
            } else {
                LABEL_SIZE as i32 + 12
            };
        let bottom = col_h + if self.column_label.is_empty() { 0 } else { 24 } + 10;
        let height = top + gh + bottom;
        let title_w = text_width(&self.title, TITLE_SIZE) as i32 + 20;
        Layout {
            size: (width.max(title_w).max(200) as u32, height.max(140) as u32),
            grid: (left, top),
            cell,
            row_order: self
                .row_tree
                .as_ref()
                .map_or((0..r).collect(), Dendrogram::leaf_order),
            column_order: self
                .column_tree
                .as_ref()
                .map_or((0..c).collect(), Dendrogram::leaf_order),
            bar: (bar_x, top, 14, bar_h),
            bar_label_x,
            tree_band: TREE,
            row_labels_right,
            upright_columns,
            label_step: steps,
        }
    }

    /// Draws the heat map.
    pub fn render(&self) -> Result<Figure> {
        self.check()?;
        let l = self.layout();
        figure(&self.title, l.size, |root| self.draw(root, &l))
    }

    fn draw(&self, root: &Root<'_>, l: &Layout) -> Result<()> {
        let (gx, gy) = l.grid;
        let cell = l.cell;
        let (r, c) = (self.rows.len() as i32, self.columns.len() as i32);
        let title = style::text(super::figure::title_size(&self.title, l.size.0), INK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        drawn(root.draw(&Text::new(
            self.title.clone(),
            (l.size.0 as i32 / 2, 8),
            title,
        )))?;
        for (ri, &row) in l.row_order.iter().enumerate() {
            for (ci, &col) in l.column_order.iter().enumerate() {
                let v = self.values[row][col];
                let (x, y) = (gx + ci as i32 * cell, gy + ri as i32 * cell);
                let colour = self.colour_of(v);
                drawn(root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    style::rgb(colour).filled(),
                )))?;
                if self.show_values && v.is_finite() {
                    let text = number(v, 0.01);
                    if text_width(&text, TICK_SIZE * 0.9) < cell as f32 - 4.0 && cell >= 16 {
                        let s = style::text(TICK_SIZE * 0.9, ColourScale::ink_on(colour))
                            .pos(Pos::new(HPos::Center, VPos::Center));
                        drawn(root.draw(&Text::new(text, (x + cell / 2, y + cell / 2), s)))?;
                    }
                }
            }
        }
        // row labels
        let (rstep, cstep) = l.label_step;
        for (ri, &row) in l.row_order.iter().enumerate().step_by(rstep) {
            let cy = gy + ri as i32 * cell + cell / 2;
            let (x, h) = if l.row_labels_right {
                (gx + c * cell + 5, HPos::Left)
            } else {
                (gx - 5, HPos::Right)
            };
            let s = style::text(TICK_SIZE, MUTED).pos(Pos::new(h, VPos::Center));
            drawn(root.draw(&Text::new(self.rows[row].clone(), (x, cy), s)))?;
        }
        // column labels
        let below = gy + r * cell + 5;
        for (ci, &col) in l.column_order.iter().enumerate().step_by(cstep) {
            let cx = gx + ci as i32 * cell + cell / 2;
            let s = if l.upright_columns {
                style::text(TICK_SIZE, MUTED)
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Right, VPos::Center))
            } else {
                style::text(TICK_SIZE, MUTED).pos(Pos::new(HPos::Center, VPos::Top))
            };
            drawn(root.draw(&Text::new(self.columns[col].clone(), (cx, below), s)))?;
        }
        // axis labels
        if !self.column_label.is_empty() {
            let s = style::text(LABEL_SIZE, INK).pos(Pos::new(HPos::Center, VPos::Bottom));
            drawn(root.draw(&Text::new(
                self.column_label.clone(),
                (gx + c * cell / 2, l.size.1 as i32 - 8),
                s,
            )))?;
        }
        if !self.row_label.is_empty() {
            let s = style::text(LABEL_SIZE, INK)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Center, VPos::Top));
            drawn(root.draw(&Text::new(
                self.row_label.clone(),
                (8, gy + r * cell / 2),
                s,
            )))?;
        }
        // trees
        if let Some(t) = &self.column_tree {
            let y1 = gy - 4;
            t.draw_in(
                root,
                ((gx, y1 - l.tree_band), (gx + c * cell, y1)),
                true,
                &|slot| gx as f64 + (slot + 0.5) * cell as f64,
            )?;
        }
        if let Some(t) = &self.row_tree {
            let x1 = gx - 4;
            t.draw_in(
                root,
                ((x1 - l.tree_band, gy), (x1, gy + r * cell)),
                false,
                &|slot| gy as f64 + (slot + 0.5) * cell as f64,
            )?;
        }
        self.colour_bar(root, l)
    }

    fn colour_bar(&self, root: &Root<'_>, l: &Layout) -> Result<()> {
        let (bx, by, bw, bh) = l.bar;
        let (lo, hi) = self.colour_range();
        let steps = bh.max(1);
        for i in 0..steps {
            // top of the bar is the highest value
            let t = 1.0 - (i as f64 + 0.5) / steps as f64;
            let colour = self.scale.at(t);
            drawn(root.draw(&Rectangle::new(
                [(bx, by + i), (bx + bw, by + i + 1)],
                style::rgb(colour).filled(),
            )))?;
        }
        drawn(root.draw(&Rectangle::new(
            [(bx, by), (bx + bw, by + bh)],
            style::rgb(MUTED).stroke_width(1),
        )))?;
        for (t, text) in self.bar_ticks() {
            let y = by + ((hi - t) / (hi - lo).max(1e-300) * bh as f64).round() as i32;
            let s = style::rgb(MUTED).stroke_width(1);
            drawn(root.draw(&PathElement::new(vec![(bx + bw, y), (bx + bw + 4, y)], s)))?;
            let ts = style::text(TICK_SIZE, MUTED).pos(Pos::new(HPos::Left, VPos::Center));
            drawn(root.draw(&Text::new(text, (bx + bw + 6, y), ts)))?;
        }
        if !self.value_label.is_empty() {
            // reads upwards, as an axis label does
            let s = style::text(LABEL_SIZE, INK)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Center, VPos::Top));
            drawn(root.draw(&Text::new(
                self.value_label.clone(),
                (l.bar_label_x, by + bh / 2),
                s,
            )))?;
        }
        Ok(())
    }
}
