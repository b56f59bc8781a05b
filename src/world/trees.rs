//! Trees: round broadleaf trees and layered conifers, canopy and trunk both labelled tree.

use super::concepts::TREE;
use super::light::{Light, TimeOfDay, jitter, mix, scale};
use super::raster::{Canvas, Rgb};
use crate::prng::SplitMix64;

/// The silhouette of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// A round or oval canopy on a visible trunk.
    Broadleaf,
    /// Stacked triangular tiers on a short trunk.
    Conifer,
}

/// One tree standing on the ground at row `base` (its lowest row is `base - 1`).
#[derive(Debug, Clone, Copy)]
pub struct Tree {
    /// Column of the trunk's centre.
    pub x: f32,
    /// Row just below the trunk's foot.
    pub base: i32,
    /// Total height in rows.
    pub height: f32,
    /// Silhouette.
    pub kind: TreeKind,
}

impl Tree {
    /// Half the width of the tree's widest part.
    pub fn half_width(&self) -> f32 {
        match self.kind {
            TreeKind::Broadleaf => self.height * 0.36,
            TreeKind::Conifer => self.height * 0.27,
        }
    }

    /// The columns `x0..x1` the tree may cover.
    pub fn columns(&self) -> (i32, i32) {
        let h = self.half_width();
        (
            (self.x - h).floor() as i32 - 1,
            (self.x + h).ceil() as i32 + 1,
        )
    }
}

/// Draws `tree` with a leaf colour of its own, lighter on the lit side.
pub fn draw_tree(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light, tree: &Tree) {
    let leaves: Rgb = match tree.kind {
        TreeKind::Broadleaf => {
            let pick = [
                [60.0, 120.0, 45.0],
                [45.0, 105.0, 40.0],
                [85.0, 130.0, 40.0],
                [70.0, 110.0, 55.0],
            ];
            rng.pick(&pick)
        }
        TreeKind::Conifer => [30.0, 80.0, 50.0],
    };
    let mut leaves = jitter(rng, leaves, 8.0);
    if light.time == TimeOfDay::Evening {
        leaves = scale(leaves, 0.9);
    }
    let dark = scale(leaves, 0.72);
    let bark = jitter(rng, [95.0, 65.0, 40.0], 8.0);
    let lit = |x: i32, centre: f32| light.lit_side(x as f32 + 0.5, centre);
    let base = tree.base as f32;
    let h = tree.height;
    match tree.kind {
        TreeKind::Broadleaf => {
            let trunk_h = (h * rng.uniform(0.28, 0.38)).max(2.0);
            let trunk_w = (h * 0.1).clamp(1.0, 3.0).round() as i32;
            let tx0 = (tree.x - trunk_w as f32 / 2.0).round() as i32;
            canvas.rect(
                tx0,
                (base - trunk_h - 2.0) as i32,
                tx0 + trunk_w,
                tree.base,
                TREE,
                |x, _| {
                    if lit(x, tree.x) {
                        bark
                    } else {
                        scale(bark, 0.75)
                    }
                },
            );
            let ry = (h - trunk_h) * 0.5 + 1.0;
            let rx = tree.half_width() * rng.uniform(0.85, 1.0);
            let cy = base - trunk_h - ry + 1.5;
            let cx = tree.x;
            let shade = move |x: i32, y: i32| {
                let dx = (x as f32 + 0.5 - cx) / rx;
                let dy = (y as f32 + 0.5 - cy) / ry;
                let toward = if light.from_left { -dx } else { dx };
                let t = (0.5 - 0.35 * toward + 0.35 * dy).clamp(0.0, 1.0);
                mix(scale(leaves, 1.12), dark, t)
            };
            canvas.ellipse(cx, cy, rx, ry, TREE, shade);
            if h > 10.0 {
                let side = if rng.chance(0.5) { -1.0 } else { 1.0 };
                canvas.ellipse(
                    cx + side * rx * 0.45,
                    cy + ry * 0.25,
                    rx * 0.65,
                    ry * 0.65,
                    TREE,
                    shade,
                );
                canvas.ellipse(
                    cx - side * rx * 0.2,
                    cy - ry * 0.35,
                    rx * 0.6,
                    ry * 0.6,
                    TREE,
                    shade,
                );
            }
        }
        TreeKind::Conifer => {
            let trunk_h = (h * 0.12).max(1.0);
            let trunk_w = (h * 0.08).clamp(1.0, 2.0).round() as i32;
            let tx0 = (tree.x - trunk_w as f32 / 2.0).round() as i32;
            canvas.rect(
                tx0,
                (base - trunk_h - 1.0) as i32,
                tx0 + trunk_w,
                tree.base,
                TREE,
                |_, _| scale(bark, 0.85),
            );
            let tiers = if h < 9.0 { 2 } else { 3 };
            let crown_bottom = base - trunk_h;
            let crown_h = h - trunk_h;
            let half = tree.half_width();
            for t in 0..tiers {
                let frac_top = t as f32 / (tiers as f32 + 0.6);
                let frac_bottom = (t as f32 + 1.6) / (tiers as f32 + 0.6);
                let top = crown_bottom - crown_h * (1.0 - frac_top);
                let bottom = crown_bottom - crown_h * (1.0 - frac_bottom.min(1.0));
                let w = half * (0.55 + 0.45 * frac_bottom.min(1.0));
                let pts = [(tree.x, top), (tree.x + w, bottom), (tree.x - w, bottom)];
                canvas.polygon(
                    &pts,
                    TREE,
                    |x, _| if lit(x, tree.x) { leaves } else { dark },
                );
            }
        }
    }
}
