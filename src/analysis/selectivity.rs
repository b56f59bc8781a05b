//! Class selectivity against importance (SPEC §12.1, Morcos et al.): per unit, the selectivity
//! index `(μ_max − μ_−max)/(μ_max + μ_−max)` of its spatially averaged post-ReLU activation
//! (μ_max: the mean over the class with the highest mean; μ_−max: the mean of the other classes'
//! means), and its Spearman correlation with single-unit ablation importance and, when a
//! dissection result is given, with IoU.

use super::spearman::spearman;
use crate::chart::{Axis, Figure, Point, Scatter};
use crate::classify::Classifier;
use crate::classify::importance::ImportanceReport;
use crate::classify::metrics::to_rows;
use crate::classify::sweep::ImportanceMeasure;
use crate::fsutil::write_json;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Mean spatially averaged post-ReLU activation per class (row) and unit (column).
pub fn class_means(
    clf: &Classifier,
    layer: &str,
    batches: impl IntoIterator<Item = (Tensor, Tensor)>,
) -> Result<Vec<Vec<f64>>> {
    let cut = clf.conv_cut(layer)?;
    let _guard = tch::no_grad_guard();
    let k = clf.classes.len() as i64;
    let mut sums: Option<Tensor> = None;
    let mut counts: Option<Tensor> = None;
    for (images, classes) in batches {
        let a =
            clf.features(&cut, &images)
                .relu()
                .mean_dim([2i64, 3].as_slice(), false, Kind::Double);
        let onehot = classes
            .to_device(a.device())
            .one_hot(k)
            .to_kind(Kind::Double);
        let s = onehot.tr().matmul(&a);
        let c = onehot.sum_dim_intlist([0i64].as_slice(), false, Kind::Double);
        sums = Some(sums.map_or(s.shallow_clone(), |t| t + &s));
        counts = Some(counts.map_or(c.shallow_clone(), |t| t + &c));
    }
    let (Some(sums), Some(counts)) = (sums, counts) else {
        bail!("no images to measure on: give at least one sample");
    };
    if bool::try_from(counts.eq(0.0).any())? {
        bail!(
            "some classes have no images; give at least {} samples so that every class is seen",
            k
        );
    }
    to_rows(&(sums / counts.unsqueeze(1)))
}

/// Selectivity index per unit from class means (`[class][unit]`), and the preferred class.
/// A unit that never fires has index 0.
pub fn selectivity_index(means: &[Vec<f64>]) -> Vec<(f64, usize)> {
    let units = means.first().map_or(0, Vec::len);
    let k = means.len();
    (0..units)
        .map(|u| {
            let (best, max) = (0..k)
                .map(|c| (c, means[c][u]))
                .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
            let rest = (0..k)
                .filter(|&c| c != best)
                .map(|c| means[c][u])
                .sum::<f64>()
                / (k - 1).max(1) as f64;
            let denom = max + rest;
            let index = if denom > 0.0 {
                (max - rest) / denom
            } else {
                0.0
            };
            (index, best)
        })
        .collect()
}

/// Per-unit IoU from a dissection result. Accepted forms: a `dissect.json` (`{"layers": [{"layer":
/// name, "units": [{"unit": i, "iou": x, …}]}]}`; the entry for `layer`, the canonical layer
/// name, is used, or the only one), an object with a `units` array of `{"unit": i, "iou": x}`
/// entries (units not listed get 0), or a JSON array of numbers, one per unit.
pub fn read_unit_iou(path: &Path, units: usize, layer: &str) -> Result<Vec<f64>> {
    let text = crate::fsutil::read_text(path, "IoU results")
        .with_context(|| format!("cannot read IoU results {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let bad = || {
        anyhow::anyhow!(
            "{} holds no per-unit IoU: give a dissect.json, a JSON array of {units} numbers or \
             {{\"units\": [{{\"unit\": i, \"iou\": x}}, …]}}",
            path.display()
        )
    };
    let from_units = |list: &serde_json::Value| -> Result<Vec<f64>> {
        let list = list.as_array().ok_or_else(bad)?;
        let mut out = vec![0.0; units];
        for e in list {
            let u = e.get("unit").and_then(|u| u.as_u64()).ok_or_else(bad)? as usize;
            let iou = e.get("iou").and_then(|x| x.as_f64()).ok_or_else(bad)?;
            if u >= units {
                bail!(
                    "{} lists unit {u}, but the layer has {units} units",
                    path.display()
                );
            }
            out[u] = iou;
        }
        Ok(out)
    };
    let out = match &v {
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| x.as_f64())
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(bad)?,
        serde_json::Value::Object(o) if o.contains_key("layers") => {
            let layers = o["layers"].as_array().ok_or_else(bad)?;
            let entry = layers
                .iter()
                .find(|l| l.get("layer").and_then(|n| n.as_str()) == Some(layer))
                .or(if layers.len() == 1 {
                    layers.first()
                } else {
                    None
                });
            let Some(entry) = entry else {
                let names: Vec<&str> = layers
                    .iter()
                    .filter_map(|l| l.get("layer").and_then(|n| n.as_str()))
                    .collect();
                bail!(
                    "{} has no dissection of {layer}; it covers: {}",
                    path.display(),
                    names.join(", ")
                );
            };
            from_units(entry.get("units").ok_or_else(bad)?)?
        }
        serde_json::Value::Object(o) => from_units(o.get("units").ok_or_else(bad)?)?,
        _ => return Err(bad()),
    };
    if out.len() != units {
        bail!(
            "{} gives IoU for {} units, but the layer has {units}",
            path.display(),
            out.len()
        );
    }
    Ok(out)
}

/// The results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelectivityReport {
    /// The classifier.
    pub model: String,
    /// The layer (activations post-ReLU).
    pub layer: String,
    /// World seeds the class means come from.
    pub seeds: String,
    /// Selectivity index per unit.
    pub selectivity: Vec<f64>,
    /// The class each unit prefers.
    pub preferred_class: Vec<String>,
    /// Importance per unit when it alone is ablated (training split), measured as
    /// [`Self::importance_measure`] says.
    pub importance: Vec<f64>,
    /// The accuracy drop, or the log-probability drop where no single unit moves accuracy.
    pub importance_measure: ImportanceMeasure,
    /// Spearman ρ of selectivity and importance (`None` when one side is constant).
    pub spearman_selectivity_importance: Option<f64>,
    /// Per-unit IoU, when a dissection result was given.
    pub iou: Option<Vec<f64>>,
    /// Spearman ρ of IoU and importance.
    pub spearman_iou_importance: Option<f64>,
    /// Spearman ρ of IoU and selectivity.
    pub spearman_iou_selectivity: Option<f64>,
}

/// Measures selectivity on `batches` and correlates it with `importance` (same layer's units)
/// and optionally with per-unit IoU.
pub fn selectivity_analysis(
    clf: &Classifier,
    layer: &str,
    seeds: &str,
    batches: impl IntoIterator<Item = (Tensor, Tensor)>,
    importance: &ImportanceReport,
    iou: Option<Vec<f64>>,
) -> Result<SelectivityReport> {
    let means = class_means(clf, layer, batches)?;
    let sel = selectivity_index(&means);
    if sel.len() as i64 != importance.units {
        bail!(
            "{layer} has {} units but the importance results rank {} units of {}; use the same layer",
            sel.len(),
            importance.units,
            importance.layer
        );
    }
    let selectivity: Vec<f64> = sel.iter().map(|s| s.0).collect();
    let (imp, measure) = importance.sweep.importance();
    let (r_iou_imp, r_iou_sel) = match &iou {
        Some(v) => {
            if v.len() != selectivity.len() {
                bail!(
                    "IoU is given for {} units but {layer} has {}",
                    v.len(),
                    selectivity.len()
                );
            }
            (spearman(v, &imp)?, spearman(v, &selectivity)?)
        }
        None => (None, None),
    };
    Ok(SelectivityReport {
        model: clf.name.clone(),
        layer: layer.to_string(),
        seeds: seeds.to_string(),
        spearman_selectivity_importance: spearman(&selectivity, &imp)?,
        preferred_class: sel.iter().map(|s| clf.classes[s.1].clone()).collect(),
        selectivity,
        importance: imp,
        importance_measure: measure,
        iou,
        spearman_iou_importance: r_iou_imp,
        spearman_iou_selectivity: r_iou_sel,
    })
}

fn rho(r: Option<f64>) -> String {
    r.map_or("Spearman ρ: n/a".into(), |r| {
        format!("Spearman ρ = {r:.3}").replace('-', "\u{2212}")
    })
}

/// Units labelled by name in the scatter plots: the most important ones.
const LABELLED: usize = 5;

/// A scatter of `xs` against the report's importance, the most important units labelled.
fn importance_scatter(
    report: &SelectivityReport,
    title: &str,
    x: Axis,
    xs: &[f64],
    r: Option<f64>,
) -> Result<Figure> {
    let y_label = match report.importance_measure {
        ImportanceMeasure::AccuracyDrop => "accuracy drop when ablated alone (fraction of images)",
        ImportanceMeasure::LogProbDrop => "log-probability drop when ablated alone (nats)",
    };
    let mut top: Vec<usize> = (0..report.importance.len()).collect();
    top.sort_by(|&a, &b| report.importance[b].total_cmp(&report.importance[a]));
    top.truncate(LABELLED);
    let points = xs
        .iter()
        .zip(&report.importance)
        .enumerate()
        .map(|(u, (&x, &y))| {
            let p = Point::new(x, y);
            if top.contains(&u) {
                p.label(&format!("unit {u}"))
            } else {
                p
            }
        });
    Scatter::new(title, x, Axis::linear(y_label))
        .points(points)
        .note(&format!("{} units", xs.len()))
        .note(&rho(r))
        .render()
}

/// Writes `selectivity.json`, `selectivity_vs_importance.svg` / `.png` and, with IoU,
/// `iou_vs_importance.svg` / `.png` into `dir`; returns the JSON path and the PNGs.
pub fn write_selectivity(report: &SelectivityReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = vec![dir.join("selectivity.json")];
    write_json(&written[0], report)?;
    let fig = importance_scatter(
        report,
        &format!("{}: class selectivity against importance", report.layer),
        Axis::linear("class selectivity index"),
        &report.selectivity,
        report.spearman_selectivity_importance,
    )?;
    let path = dir.join("selectivity_vs_importance.png");
    fig.save(&path.with_extension(""))?;
    written.push(path);
    if let Some(iou) = &report.iou {
        let fig = importance_scatter(
            report,
            &format!(
                "{}: IoU of the best concept against importance",
                report.layer
            ),
            Axis::linear("IoU with the unit's best concept"),
            iou,
            report.spearman_iou_importance,
        )?;
        let path = dir.join("iou_vs_importance.png");
        fig.save(&path.with_extension(""))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_follows_its_definition() {
        // unit 0 fires for class 1 only; unit 1 fires equally; unit 2 never fires;
        // unit 3: class means 4, 1, 1 → (4 − 1)/(4 + 1)
        let means = vec![
            vec![0.0, 2.0, 0.0, 4.0],
            vec![3.0, 2.0, 0.0, 1.0],
            vec![0.0, 2.0, 0.0, 1.0],
        ];
        let s = selectivity_index(&means);
        assert_eq!(s[0], (1.0, 1));
        assert_eq!(s[1].0, 0.0);
        assert_eq!(s[2].0, 0.0);
        assert!((s[3].0 - 0.6).abs() < 1e-12 && s[3].1 == 0);
    }

    #[test]
    fn iou_files_in_both_forms_are_read_and_bad_ones_explained() {
        let dir = std::env::temp_dir().join(format!("gd-sel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.json");
        std::fs::write(&a, "[0.1, 0.2, 0.3]").unwrap();
        assert_eq!(read_unit_iou(&a, 3, "x").unwrap(), vec![0.1, 0.2, 0.3]);
        assert!(
            read_unit_iou(&a, 4, "x")
                .unwrap_err()
                .to_string()
                .contains("3 units")
        );
        let b = dir.join("b.json");
        std::fs::write(
            &b,
            r#"{"units": [{"unit": 2, "iou": 0.5, "label": "sky"}]}"#,
        )
        .unwrap();
        assert_eq!(read_unit_iou(&b, 3, "x").unwrap(), vec![0.0, 0.0, 0.5]);
        let d = dir.join("dissect.json");
        let layers = r#"{"layers": [
            {"layer": "features.26", "units": [{"unit": 0, "iou": 0.9}]},
            {"layer": "features.28", "units": [{"unit": 1, "iou": 0.25, "label": "sky"}]}]}"#;
        std::fs::write(&d, layers).unwrap();
        assert_eq!(
            read_unit_iou(&d, 2, "features.28").unwrap(),
            vec![0.0, 0.25]
        );
        let err = read_unit_iou(&d, 2, "features.29").unwrap_err().to_string();
        assert!(err.contains("features.26, features.28"), "{err}");
        let c = dir.join("c.json");
        std::fs::write(&c, r#"{"layers": {}}"#).unwrap();
        assert!(
            read_unit_iou(&c, 3, "x")
                .unwrap_err()
                .to_string()
                .contains("no per-unit IoU")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
