//! Dendrograms: a hierarchical clustering given as its merges (the layout of SciPy's linkage
//! matrices), the leaf order it implies, and its drawing, alone or beside a heat map.

use super::axis::Axis;
use super::figure::{Axes, Figure, Root, drawn, figure, frame};
use super::style::{self, HEIGHT, INK, WIDTH};
use anyhow::{Result, bail};
use plotters::prelude::*;

/// One merge of two clusters. Ids below the number of leaves are leaves; id `leaves + i` is the
/// cluster made by merge `i`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Merge {
    /// First cluster (drawn on the left, or on top).
    pub a: usize,
    /// Second cluster.
    pub b: usize,
    /// Distance at which the two join.
    pub height: f64,
}

/// A binary tree over `leaves` items built by `leaves − 1` merges.
#[derive(Clone, Debug, PartialEq)]
pub struct Dendrogram {
    leaves: usize,
    merges: Vec<Merge>,
}

impl Dendrogram {
    /// Checks that `merges` join `leaves` items into one tree, each cluster used once and only
    /// after it exists, at finite heights.
    pub fn new(leaves: usize, merges: Vec<Merge>) -> Result<Self> {
        if leaves == 0 {
            bail!("a dendrogram needs at least one leaf");
        }
        if merges.len() != leaves - 1 {
            bail!(
                "a dendrogram over {leaves} leaves needs {} merges, got {}",
                leaves - 1,
                merges.len()
            );
        }
        let mut used = vec![false; 2 * leaves - 1];
        for (i, m) in merges.iter().enumerate() {
            for id in [m.a, m.b] {
                if id >= leaves + i {
                    bail!(
                        "merge {i} joins cluster {id}, which does not exist yet (ids below {} exist then)",
                        leaves + i
                    );
                }
                if used[id] {
                    bail!("merge {i} joins cluster {id}, which an earlier merge already joined");
                }
                used[id] = true;
            }
            if m.a == m.b {
                bail!("merge {i} joins cluster {} with itself", m.a);
            }
            if !m.height.is_finite() {
                bail!("merge {i} has height {}; heights must be finite", m.height);
            }
        }
        Ok(Self { leaves, merges })
    }

    /// Number of leaves.
    pub fn leaves(&self) -> usize {
        self.leaves
    }

    /// The merges, in order.
    pub fn merges(&self) -> &[Merge] {
        &self.merges
    }

    /// The leaves from left to right as the tree draws them (each merge's `a` side first).
    pub fn leaf_order(&self) -> Vec<usize> {
        if self.merges.is_empty() {
            return vec![0];
        }
        let mut order = Vec::with_capacity(self.leaves);
        let mut stack = vec![self.leaves + self.merges.len() - 1];
        while let Some(id) = stack.pop() {
            if id < self.leaves {
                order.push(id);
            } else {
                let m = self.merges[id - self.leaves];
                stack.push(m.b);
                stack.push(m.a);
            }
        }
        order
    }

    /// The largest merge height (0 for a single leaf).
    pub fn max_height(&self) -> f64 {
        self.merges.iter().map(|m| m.height).fold(0.0, f64::max)
    }

    /// The tree's links as paths in (leaf slot, height) coordinates: leaf `order[i]` sits at
    /// slot `i` and height 0; each merge is a ⊓ joining its two children at its height.
    pub(crate) fn links(&self) -> Vec<[(f64, f64); 4]> {
        let order = self.leaf_order();
        let mut place = vec![(0.0, 0.0); self.leaves + self.merges.len()];
        for (slot, &leaf) in order.iter().enumerate() {
            place[leaf] = (slot as f64, 0.0);
        }
        let mut out = Vec::with_capacity(self.merges.len());
        for (i, m) in self.merges.iter().enumerate() {
            let (a, b) = (place[m.a], place[m.b]);
            out.push([(a.0, a.1), (a.0, m.height), (b.0, m.height), (b.0, b.1)]);
            place[self.leaves + i] = ((a.0 + b.0) / 2.0, m.height);
        }
        out
    }

    /// Draws the links into the pixel box `(x0, y0)–(x1, y1)` of `root`: with `upright` the
    /// leaves run along the bottom edge (a tree above columns), otherwise along the right edge
    /// (a tree left of rows). `slot` maps a leaf slot to its centre along that edge.
    pub(crate) fn draw_in(
        &self,
        root: &Root<'_>,
        bounds: ((i32, i32), (i32, i32)),
        upright: bool,
        slot: &dyn Fn(f64) -> f64,
    ) -> Result<()> {
        let ((x0, y0), (x1, y1)) = bounds;
        let top = self.max_height().max(1e-12);
        let s = style::rgb(INK).stroke_width(1);
        for link in self.links() {
            let pts: Vec<(i32, i32)> = link
                .iter()
                .map(|&(leaf, h)| {
                    let along = slot(leaf);
                    let t = h / top;
                    if upright {
                        (
                            along.round() as i32,
                            (y1 as f64 - t * (y1 - y0) as f64).round() as i32,
                        )
                    } else {
                        (
                            (x1 as f64 - t * (x1 - x0) as f64).round() as i32,
                            along.round() as i32,
                        )
                    }
                })
                .collect();
            drawn(root.draw(&PathElement::new(pts, s)))?;
        }
        Ok(())
    }
}

/// A dendrogram on its own: leaves labelled along the bottom, merge height up the side.
#[derive(Clone, Debug, PartialEq)]
pub struct DendrogramChart {
    /// Title, in sentence case.
    pub title: String,
    /// The tree.
    pub tree: Dendrogram,
    /// One label per leaf, by leaf id.
    pub labels: Vec<String>,
    /// Label of the height axis (with its unit).
    pub height_label: String,
    /// Size in SVG pixels.
    pub size: (u32, u32),
}

impl DendrogramChart {
    /// A chart of `tree` with `labels[i]` under leaf `i`.
    pub fn new(title: &str, tree: Dendrogram, labels: &[String], height_label: &str) -> Self {
        Self {
            title: title.to_string(),
            tree,
            labels: labels.to_vec(),
            height_label: height_label.to_string(),
            size: (WIDTH, HEIGHT),
        }
    }

    /// Draws the chart.
    pub fn render(&self) -> Result<Figure> {
        if self.labels.len() != self.tree.leaves() {
            bail!(
                "{} labels for a dendrogram of {} leaves; give one per leaf",
                self.labels.len(),
                self.tree.leaves()
            );
        }
        let order = self.tree.leaf_order();
        let names: Vec<String> = order.iter().map(|&i| self.labels[i].clone()).collect();
        let heights: Vec<f64> = std::iter::once(0.0)
            .chain(self.tree.merges().iter().map(|m| m.height))
            .collect();
        let axes = Axes::new(
            &Axis::categories("", &names),
            &[],
            &Axis::linear(&self.height_label),
            &heights,
            true,
        );
        figure(&self.title, self.size, |root| {
            let mut chart = frame(root, &self.title, &axes)?;
            let s = style::rgb(INK).stroke_width(2);
            for link in self.tree.links() {
                let pts: Vec<(f64, f64)> = link.iter().map(|&(x, h)| (x, h)).collect();
                drawn(chart.draw_series(std::iter::once(PathElement::new(pts, s))))?;
            }
            Ok(())
        })
    }
}
