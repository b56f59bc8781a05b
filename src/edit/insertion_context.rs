//! Where can a concept be inserted (SPEC §3.2): insert its top units at one layer cell at a
//! time, in every cell of every image, and tally the concept's added pixels by the label the
//! cell's centre had before.
//!
//! The cells of one image are one batch: its features copied once per cell, each copy edited
//! (through [`cut::Edit`](crate::cut::Edit) with a one-cell mask per copy) at its own cell.

use super::Session;
use crate::chart::{Axis, Bar, BarChart, Figure, sentence_case};
use crate::cut::Edit;
use crate::fsutil::write_json;
use anyhow::{Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Units inserted by default (the PNAS door experiment).
pub const DEFAULT_UNITS: usize = 20;

/// Quantile of each unit's activation inserted by default (the PNAS door experiment).
pub const DEFAULT_QUANTILE: f64 = 0.995;

/// Images the context table is measured on by default (ids `0..N`).
pub const DEFAULT_SAMPLES: u64 = 100;

/// Contexts with fewer cells are left out of the chart by default.
pub const DEFAULT_MIN_COUNT: u64 = 100;

/// What to insert and over which images.
#[derive(Clone, Debug)]
pub struct ContextOptions {
    /// The concept inserted.
    pub concept: String,
    /// Its top units by IoU inserted.
    pub k: usize,
    /// Images: ids `0..samples`.
    pub samples: u64,
    /// Contexts with fewer samples are left out of the chart.
    pub min_count: u64,
    /// Show a progress bar.
    pub progress: bool,
}

/// Added concept pixels under one context label.
#[derive(Clone, Debug, Serialize)]
pub struct ContextRow {
    /// The label at the cell's centre before the insertion.
    pub context: String,
    /// Cells with this context.
    pub count: u64,
    /// Mean added concept pixels.
    pub mean: f64,
    /// Their standard deviation.
    pub std: f64,
    /// `mean` divided by the baseline concept pixels per image.
    pub relative: f64,
}

/// The context table.
#[derive(Clone, Debug, Serialize)]
pub struct ContextResult {
    /// The model.
    pub model: String,
    /// The layer.
    pub layer: String,
    /// The concept inserted.
    pub concept: String,
    /// Images measured.
    pub samples: u64,
    /// Units inserted.
    pub units: Vec<usize>,
    /// Their values.
    pub values: Vec<f32>,
    /// The quantile of the values.
    pub quantile: f64,
    /// Mean concept pixels per image without insertion.
    pub baseline_pixels: f64,
    /// Per context label, most added first.
    pub rows: Vec<ContextRow>,
    /// Contexts with fewer cells than this are left out of the chart.
    pub min_count: u64,
}

#[derive(Default, Clone, Copy)]
struct Acc {
    n: u64,
    sum: f64,
    sum_sq: f64,
}

/// One-cell masks `[h·w, 1, h, w]`: copy `i` is 1 at cell `i` (row-major).
pub fn cell_masks(h: i64, w: i64, device: tch::Device) -> Tensor {
    Tensor::eye(h * w, (Kind::Float, device)).view([h * w, 1, h, w])
}

/// Runs the context analysis with `session` (its catalog's quantile gives the values).
pub fn run_context(session: &Session, opts: &ContextOptions) -> Result<ContextResult> {
    if opts.samples == 0 {
        bail!("--samples must be at least 1 image");
    }
    crate::zsample::check_id_range("--samples", 0, opts.samples)?;
    let concept = session.segmenter.label_id(&opts.concept)? as i64;
    let top = session.catalog.top_units(&opts.concept, opts.k)?;
    let units: Vec<usize> = top.iter().map(|u| u.0).collect();
    let values: Vec<f32> = units.iter().map(|&u| session.catalog.levels[u]).collect();
    let units_i: Vec<i64> = units.iter().map(|&u| u as i64).collect();
    let labels = session.segmenter.labels();
    let painter = session.painter()?;
    let cut = painter.cut();
    let _guard = tch::no_grad_guard();
    let mut acc = vec![Acc::default(); labels.len()];
    let mut baseline = 0f64;
    let bar = opts
        .progress
        .then(|| crate::progress::bar(opts.samples, "images"));
    for id in 0..opts.samples {
        let features = cut.prefix(&painter.latents(&[id])?);
        let s = features.size();
        let (c, h, w) = (s[1], s[2], s[3]);
        let cells = h * w;
        let seg0 = painter.segment(&cut.suffix(&features).clamp(-1.0, 1.0))?;
        let (sh, sw) = (seg0.size()[2], seg0.size()[3]);
        if sh % h != 0 || sw % w != 0 {
            bail!("a {sh}×{sw} segmentation does not tile the layer's {h}×{w} grid");
        }
        let count = |seg: &Tensor| {
            seg.eq(concept).any_dim(1, false).sum_dim_intlist(
                [1i64, 2].as_slice(),
                false,
                Kind::Int64,
            )
        };
        let before = i64::try_from(count(&seg0).get(0))?;
        baseline += before as f64;
        let copies = features.expand([cells, c, h, w], false).contiguous();
        let edit = Edit::set(&units_i, &values, Some(cell_masks(h, w, features.device())));
        let edited = cut.edit(&copies, &[edit])?;
        let seg = painter.segment(&cut.suffix(&edited).clamp(-1.0, 1.0))?;
        let added: Vec<i64> = Vec::try_from(count(&seg) - before)?;
        // the context of cell (y, x): labels at the centre pixel, every channel, before
        let (py, px) = (sh / h, sw / w);
        let centres: Vec<Vec<i64>> = Vec::try_from(
            seg0.get(0)
                .slice(1, py / 2, sh, py)
                .slice(2, px / 2, sw, px)
                .reshape([-1, cells])
                .transpose(0, 1)
                .contiguous(),
        )?;
        for (cell, ctx) in centres.iter().enumerate() {
            let mut seen = Vec::new();
            for &l in ctx
                .iter()
                .filter(|&&l| l > 0 && (l as usize) < labels.len())
            {
                if seen.contains(&l) {
                    continue;
                }
                seen.push(l);
                let a = &mut acc[l as usize];
                let d = added[cell] as f64;
                a.n += 1;
                a.sum += d;
                a.sum_sq += d * d;
            }
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let baseline_pixels = baseline / opts.samples as f64;
    let mut rows: Vec<ContextRow> = acc
        .iter()
        .enumerate()
        .filter(|(_, a)| a.n > 0)
        .map(|(l, a)| {
            let n = a.n as f64;
            let mean = a.sum / n;
            let var = if a.n > 1 {
                ((a.sum_sq - n * mean * mean) / (n - 1.0)).max(0.0)
            } else {
                0.0
            };
            ContextRow {
                context: labels[l].name.clone(),
                count: a.n,
                mean,
                std: var.sqrt(),
                relative: if baseline_pixels > 0.0 {
                    mean / baseline_pixels
                } else {
                    f64::NAN
                },
            }
        })
        .collect();
    rows.sort_by(|a, b| b.mean.total_cmp(&a.mean).then(a.context.cmp(&b.context)));
    Ok(ContextResult {
        model: session.model.clone(),
        layer: session.catalog.layer.clone(),
        concept: opts.concept.clone(),
        samples: opts.samples,
        units,
        values,
        quantile: session.catalog.quantile,
        baseline_pixels,
        rows,
        min_count: opts.min_count,
    })
}

/// The table as text: context, cells, mean, std and relative added area.
pub fn context_table(r: &ContextResult) -> String {
    let mut s = format!(
        "added {} pixels by context ({} images, top {} units at q={}, {} px per image before)\n",
        r.concept,
        r.samples,
        r.units.len(),
        r.quantile,
        format_args!("{:.1}", r.baseline_pixels)
    );
    s.push_str(&format!(
        "{:<12} {:>8} {:>9} {:>9} {:>9}\n",
        "context", "cells", "mean px", "std px", "relative"
    ));
    for row in &r.rows {
        s.push_str(&format!(
            "{:<12} {:>8} {:>9.2} {:>9.2} {:>9.3}{}\n",
            row.context,
            row.count,
            row.mean,
            row.std,
            row.relative,
            if row.count < r.min_count {
                "  (few cells)"
            } else {
                ""
            }
        ));
    }
    s
}

/// Writes `context-<concept>.json` and the chart `context-<concept>.svg` / `.png` (bars of
/// contexts with at least `min_count` cells) into `dir`; returns the JSON and PNG paths.
pub fn write_context(r: &ContextResult, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let json = dir.join(format!("context-{}.json", r.concept));
    let png = dir.join(format!("context-{}.png", r.concept));
    write_json(&json, r)?;
    context_chart(r)?.save(&png.with_extension(""))?;
    Ok((json, png))
}

/// Mean concept pixels added per cell by the context the cell showed, with the 99% interval
/// of each mean (2.58 standard errors), for contexts with at least `min_count` cells.
pub fn context_chart(r: &ContextResult) -> Result<Figure> {
    let title = sentence_case(&format!(
        "{} pixels added by inserting {} units into one cell, by what the cell showed ({})",
        r.concept,
        r.units.len(),
        r.layer
    ));
    let mut chart = BarChart::new(
        &title,
        "context at the cell's centre",
        Axis::linear(&format!("{} pixels added per cell", r.concept)),
    )
    .interval_label("99% interval of the mean")
    .note(&format!(
        "{} images, {} cells each",
        r.samples,
        r.rows.iter().map(|row| row.count).sum::<u64>() / r.samples.max(1)
    ));
    for row in r.rows.iter().filter(|row| row.count >= r.min_count) {
        let half = 2.58 * row.std / (row.count as f64).sqrt();
        chart =
            chart.bar(Bar::new(&row.context, row.mean).interval(row.mean - half, row.mean + half));
    }
    chart.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_copy_masks_exactly_its_own_cell() {
        let m = cell_masks(2, 3, tch::Device::Cpu);
        assert_eq!(m.size(), [6, 1, 2, 3]);
        let v: Vec<f32> = Vec::try_from(m.flatten(0, -1)).unwrap();
        for copy in 0..6 {
            for cell in 0..6 {
                assert_eq!(v[copy * 6 + cell], if copy == cell { 1.0 } else { 0.0 });
            }
        }
    }
}
