//! What an attack does to a layer's units (SPEC §6): per unit, the change of its peak (spatial
//! max) post-ReLU activation between original and adversarial image, grouped into the target
//! class's most important units, the source class's most important units and the rest, with
//! 99% confidence intervals; and pictures of the most changed units.

use crate::chart::{Axis, Bar, BarChart, Figure};
use crate::classify::Classifier;
use crate::classify::importance::ImportanceReport;
use crate::imageio::to_rgb_images;
use anyhow::{Result, bail};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Units per importance group (the paper's 4).
pub const GROUP_SIZE: usize = 4;

/// A mean with its 99% confidence interval `mean ± 2.58·sd/√n`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MeanCi {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub sd: f64,
    /// Number of values.
    pub n: usize,
    /// Lower end of the interval.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
}

/// The mean of `values` with its 99% interval (zero width for fewer than two values).
pub fn mean_ci(values: &[f64]) -> MeanCi {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    let sd = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let half = 2.58 * sd / (n.max(1) as f64).sqrt();
    MeanCi {
        mean,
        sd,
        n,
        lo: mean - half,
        hi: mean + half,
    }
}

/// Peak (spatial max) post-ReLU activation per image and unit, `[N, C]`, at a conv layer.
pub fn peak_activations(clf: &Classifier, layer: &str, images: &Tensor) -> Result<Tensor> {
    let cut = clf.conv_cut(layer)?;
    let _guard = tch::no_grad_guard();
    let a = clf.features(&cut, images).relu();
    Ok(a.amax([2i64, 3].as_slice(), false))
}

/// `|Δ peak activation|` per image (row) and unit (column).
pub fn peak_changes(
    clf: &Classifier,
    layer: &str,
    originals: &Tensor,
    adversarials: &Tensor,
) -> Result<Vec<Vec<f64>>> {
    if originals.size() != adversarials.size() {
        bail!(
            "original and adversarial images differ in shape: {:?} vs {:?}",
            originals.size(),
            adversarials.size()
        );
    }
    let d = (peak_activations(clf, layer, adversarials)?
        - peak_activations(clf, layer, originals)?)
    .abs();
    crate::classify::metrics::to_rows(&d)
}

/// The three groups' changes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TraceGroups {
    /// The target class's top units.
    pub target: MeanCi,
    /// The source class's top units (the original prediction's), minus any in the target group.
    pub source: MeanCi,
    /// Every other unit.
    pub rest: MeanCi,
}

/// Groups `deltas[image][unit]`: each (image, unit) value goes to the target group when the
/// unit is in `target_top`, else to the source group when it is in that image's
/// `source_tops[image]`, else to the rest.
pub fn group_changes(
    deltas: &[Vec<f64>],
    target_top: &[i64],
    source_tops: &[Vec<i64>],
) -> Result<TraceGroups> {
    if deltas.len() != source_tops.len() {
        bail!(
            "{} images of changes but {} source unit lists",
            deltas.len(),
            source_tops.len()
        );
    }
    let (mut t, mut s, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for (row, src) in deltas.iter().zip(source_tops) {
        for (u, &d) in row.iter().enumerate() {
            let u = u as i64;
            if target_top.contains(&u) {
                t.push(d);
            } else if src.contains(&u) {
                s.push(d);
            } else {
                r.push(d);
            }
        }
    }
    Ok(TraceGroups {
        target: mean_ci(&t),
        source: mean_ci(&s),
        rest: mean_ci(&r),
    })
}

/// The trace of one attack.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TraceReport {
    /// The layer measured (post-ReLU).
    pub layer: String,
    /// The layer the importance ranking was made at.
    pub ranking_layer: String,
    /// Images traced (successful attacks only).
    pub images: usize,
    /// The target class's top units.
    pub target_units: Vec<i64>,
    /// Group means with 99% intervals.
    pub groups: TraceGroups,
    /// Per traced image: its most changed units as `(unit, |Δ|)`, largest first.
    pub most_changed: Vec<Vec<(i64, f64)>>,
}

/// Traces successful attacks: `sources[i]` is image i's original prediction (a class index).
pub fn trace(
    clf: &Classifier,
    layer: &str,
    importance: &ImportanceReport,
    target: usize,
    originals: &Tensor,
    adversarials: &Tensor,
    sources: &[usize],
) -> Result<TraceReport> {
    let cut = clf.conv_cut(layer)?;
    let units = clf.units(&cut);
    if units != importance.units {
        bail!(
            "the importance results rank {} units of {} but {layer} has {units}; rank the same layer",
            importance.units,
            importance.layer
        );
    }
    let rank =
        |c: usize| -> Result<Vec<i64>> { Ok(importance.ranking(&clf.classes[c])?.top(GROUP_SIZE)) };
    let target_units = rank(target)?;
    let source_tops = sources
        .iter()
        .map(|&s| rank(s))
        .collect::<Result<Vec<_>>>()?;
    let deltas = peak_changes(clf, layer, originals, adversarials)?;
    let groups = group_changes(&deltas, &target_units, &source_tops)?;
    let most_changed = deltas
        .iter()
        .map(|row| {
            let mut v: Vec<(i64, f64)> = row
                .iter()
                .enumerate()
                .map(|(u, &d)| (u as i64, d))
                .collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(5);
            v
        })
        .collect();
    Ok(TraceReport {
        layer: layer.to_string(),
        ranking_layer: importance.layer.clone(),
        images: deltas.len(),
        target_units,
        groups,
        most_changed,
    })
}

/// A bar chart of the three groups' mean |Δ peak| with 99% intervals.
pub fn trace_chart(t: &TraceReport, target: &str) -> Result<Figure> {
    let bar = |label: &str, g: &MeanCi| Bar::new(label, g.mean).interval(g.lo, g.hi);
    BarChart::new(
        &format!(
            "Attack towards {target}: change of peak activation at {}",
            t.layer
        ),
        "units",
        Axis::linear("mean |Δ peak activation|"),
    )
    .bar(bar(&format!("target ({target}) top-4"), &t.groups.target))
    .bar(bar("source class top-4", &t.groups.source))
    .bar(bar("other units", &t.groups.rest))
    .interval_label("99% interval of the mean")
    .note(&format!("{} successful attacks", t.images))
    .size(600, 420)
    .render()
}

/// One row per image: original, adversarial, then for each of its `units` the unit's activation
/// over the original and over the adversarial (red, on a shared scale per unit).
pub fn unit_pictures(
    clf: &Classifier,
    layer: &str,
    originals: &Tensor,
    adversarials: &Tensor,
    units: &[Vec<i64>],
) -> Result<Vec<Vec<RgbImage>>> {
    let cut = clf.conv_cut(layer)?;
    let _guard = tch::no_grad_guard();
    let a0 = clf.features(&cut, originals).relu();
    let a1 = clf.features(&cut, adversarials).relu();
    let s = originals.size();
    let (h, w) = (s[2], s[3]);
    let heat = |img: &Tensor, act: &Tensor, scale: &Tensor| -> Tensor {
        let m = (act / scale)
            .clamp(0.0, 1.0)
            .view([1, 1, act.size()[0], act.size()[1]])
            .upsample_bilinear2d([h, w], false, None, None)
            .view([1, h, w]);
        let grey = ((img + 1.0) / 2.0).mean_dim([0i64].as_slice(), true, Kind::Float);
        let colour = Tensor::cat(&[&m, &(&m * 0.15), &(&m * 0.1)], 0);
        (grey * 0.45 + colour * 0.55) * 2.0 - 1.0
    };
    let mut rows = Vec::new();
    for (i, us) in units.iter().enumerate() {
        let i = i as i64;
        let mut tiles = vec![originals.get(i), adversarials.get(i)];
        for &u in us {
            let (x0, x1) = (a0.get(i).get(u), a1.get(i).get(u));
            let scale = x0.max().maximum(&x1.max()).clamp_min(1e-6);
            tiles.push(heat(&originals.get(i), &x0, &scale));
            tiles.push(heat(&adversarials.get(i), &x1, &scale));
        }
        let batch = Tensor::stack(&tiles, 0).to_device(Device::Cpu);
        rows.push(to_rgb_images(&batch)?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_go_to_the_right_groups() {
        // 2 images × 6 units; target top = {0, 1}; sources: image 0 → {1, 2}, image 1 → {3, 4}
        let deltas = vec![
            vec![1.0, 2.0, 3.0, 10.0, 10.0, 10.0],
            vec![5.0, 6.0, 20.0, 7.0, 8.0, 20.0],
        ];
        let g = group_changes(&deltas, &[0, 1], &[vec![1, 2], vec![3, 4]]).unwrap();
        assert_eq!(g.target.n, 4);
        assert!((g.target.mean - 14.0 / 4.0).abs() < 1e-12);
        // unit 1 of image 0 is a target unit, so the source group has unit 2 of image 0 and
        // units 3, 4 of image 1
        assert_eq!(g.source.n, 3);
        assert!((g.source.mean - 6.0).abs() < 1e-12);
        assert_eq!(g.rest.n, 5);
        assert!((g.rest.mean - 14.0).abs() < 1e-12);
        assert!(group_changes(&deltas, &[0], &[vec![1]]).is_err());
    }

    #[test]
    fn the_interval_is_mean_plus_minus_2_58_standard_errors() {
        let c = mean_ci(&[1.0, 2.0, 3.0, 4.0]);
        let sd = (5.0f64 / 3.0).sqrt();
        assert!((c.sd - sd).abs() < 1e-12);
        assert!((c.hi - (2.5 + 2.58 * sd / 2.0)).abs() < 1e-12);
        assert!((c.lo - (2.5 - 2.58 * sd / 2.0)).abs() < 1e-12);
        let one = mean_ci(&[7.0]);
        assert_eq!((one.lo, one.hi), (7.0, 7.0));
    }
}
