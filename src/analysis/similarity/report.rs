//! Writing a comparison: `similarity.json`, the layer × layer heat map
//! (`similarity.svg` / `.png`) and `similarity.html`; for training dynamics `dynamics.json`,
//! one curve per layer (`dynamics.svg` / `.png`) and `dynamics.html`.

use super::compare::{DynamicsReport, SimilarityReport};
use crate::chart::{Axis, ColourScale, Figure, HeatMap, Line, LineChart, page_font_css};
use crate::dissect::report::escape;
use crate::fsutil::{atomic_write, write_json};
use anyhow::Result;
use std::path::{Path, PathBuf};

fn method_title(m: super::Method) -> &'static str {
    match m {
        super::Method::Svcca => "SVCCA",
        super::Method::Pwcca => "PWCCA",
        super::Method::Cka => "Linear CKA",
    }
}

/// The layer × layer heat map of a comparison.
pub fn heat_map(r: &SimilarityReport) -> Result<Figure> {
    let rows: Vec<String> = r.layers_a.iter().map(|l| l.name.clone()).collect();
    let cols: Vec<String> = r.layers_b.iter().map(|l| l.name.clone()).collect();
    let title = if r.model_a == r.model_b {
        format!(
            "{} between the layers of {}",
            method_title(r.method),
            r.model_a
        )
    } else {
        format!(
            "{}: {} against {}",
            method_title(r.method),
            r.model_a,
            r.model_b
        )
    };
    HeatMap::new(&title, &rows, &cols, r.matrix.clone())
        .range(0.0, 1.0)
        .labels(
            &format!("{} similarity", method_title(r.method)),
            &r.model_a,
            &r.model_b,
        )
        .show_values()
        .render()
}

fn page_head(title: &str, figures: &[&Figure]) -> Result<String> {
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title>",
        escape(title)
    );
    h.push_str(&page_font_css(figures, "")?);
    h.push_str("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}td.l,th.l{text-align:left}</style></head><body>");
    Ok(h)
}

fn settings_line(method: super::Method, keep: f64, resize: super::Resize, probe: &str) -> String {
    let how = match method {
        super::Method::Svcca => format!(
            "SVD keeping {}% of each layer's variance, then CCA",
            keep * 100.0
        ),
        super::Method::Pwcca => {
            "CCA on every direction, correlations weighted by the row layer's projection weights"
                .into()
        }
        super::Method::Cka => "linear centred kernel alignment".into(),
    };
    format!(
        "Probe: {}. Every spatial position is a data point; layers on different grids meet on the smaller one ({}). Measure: {how}.",
        escape(probe),
        match resize {
            super::Resize::Pool => "average pooling",
            super::Resize::Dft => "low DFT frequencies",
        }
    )
}

/// The page of a comparison: the heat map and every pair's numbers.
pub fn similarity_html(r: &SimilarityReport, chart: &Figure) -> Result<String> {
    let mut h = page_head(chart.title(), &[chart])?;
    h.push_str(&format!(
        "<h1>{}</h1><p>{}</p>",
        escape(chart.title()),
        settings_line(r.method, r.keep, r.resize, &r.probe)
    ));
    for n in &r.notes {
        h.push_str(&format!("<p><em>{}</em></p>", escape(n)));
    }
    if let Some(rule) = &r.memory.rule {
        h.push_str(&format!("<p><em>memory: {}</em></p>", escape(rule)));
    }
    h.push_str(&chart.inline_svg());
    h.push_str("<table><tr><th class=\"l\">A</th><th class=\"l\">B</th><th>grid</th><th>data points</th><th>similarity</th><th>dimensions kept</th><th class=\"l\">leading canonical correlations</th></tr>");
    for p in &r.pairs {
        let rho: Vec<String> = p
            .similarity
            .rho
            .iter()
            .take(8)
            .map(|v| format!("{v:.3}"))
            .collect();
        h.push_str(&format!(
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}×{}</td><td>{}</td><td>{:.4}</td><td>{} / {}</td><td class=\"l\">{}</td></tr>",
            escape(&p.a), escape(&p.b), p.grid[0], p.grid[1], p.data_points, p.similarity.value,
            p.similarity.dims.0, p.similarity.dims.1, rho.join(" ")
        ));
    }
    h.push_str("</table></body></html>\n");
    Ok(h)
}

/// Writes `similarity.json`, `similarity.svg` / `.png` and `similarity.html` into `dir`;
/// returns their paths.
pub fn write_similarity(r: &SimilarityReport, dir: &Path) -> Result<Vec<PathBuf>> {
    write_outputs(dir, "similarity", r, heat_map(r)?, |c| {
        similarity_html(r, c)
    })
}

/// Writes `dir/STEM.json` (the report), `STEM.svg` / `.png` (the chart) and `STEM.html`.
fn write_outputs<T: serde::Serialize>(
    dir: &Path,
    stem: &str,
    report: &T,
    chart: Figure,
    html: impl FnOnce(&Figure) -> Result<String>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let json = dir.join(format!("{stem}.json"));
    write_json(&json, report)?;
    let (svg, png) = chart.save(&dir.join(stem))?;
    let page = dir.join(format!("{stem}.html"));
    atomic_write(&page, html(&chart)?.as_bytes())?;
    Ok(vec![json, svg, png, page])
}

/// One curve per layer: similarity to the final state against the training step, coloured
/// from the input side (dark) to the output side (light).
pub fn dynamics_chart(r: &DynamicsReport) -> Result<Figure> {
    let run = Path::new(&r.run)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| r.run.clone());
    let mut chart = LineChart::new(
        &format!(
            "{} of each layer with its final state: {run}",
            method_title(r.method)
        ),
        Axis::linear("training step"),
        Axis::linear(&format!("{} similarity", method_title(r.method))).range(0.0, 1.0),
    )
    .reference(&format!("settled ({})", r.settled), r.settled);
    let n = r.layers.len().max(2) as f64 - 1.0;
    for (i, l) in r.layers.iter().enumerate() {
        let points: Vec<(f64, f64)> = r
            .steps
            .iter()
            .zip(&l.values)
            .map(|(s, v)| (*s as f64, *v))
            .collect();
        chart = chart.line(
            Line::new(&l.layer, &points).colour(ColourScale::Sequential.at(0.9 * i as f64 / n)),
        );
    }
    chart.render()
}

/// The page of a dynamics measurement: the curves and each layer's settling step.
pub fn dynamics_html(r: &DynamicsReport, chart: &Figure) -> Result<String> {
    let mut h = page_head(chart.title(), &[chart])?;
    h.push_str(&format!(
        "<h1>{}</h1><p>{}</p>",
        escape(chart.title()),
        settings_line(r.method, r.keep, r.resize, &r.probe)
    ));
    for n in &r.notes {
        h.push_str(&format!("<p><em>{}</em></p>", escape(n)));
    }
    if let Some(rule) = &r.memory.rule {
        h.push_str(&format!("<p><em>memory: {}</em></p>", escape(rule)));
    }
    h.push_str(&chart.inline_svg());
    h.push_str(&format!(
        "<p>Settling order (first step from which the similarity stays at least {}): {}.</p>",
        r.settled,
        escape(&r.settling_order.join(", "))
    ));
    h.push_str("<table><tr><th class=\"l\">layer</th><th>settled at step</th>");
    for s in &r.steps {
        h.push_str(&format!("<th>{s}</th>"));
    }
    h.push_str("</tr>");
    for l in &r.layers {
        h.push_str(&format!(
            "<tr><td class=\"l\">{}</td><td>{}</td>",
            escape(&l.layer),
            l.settled_at.map_or("—".to_string(), |s| s.to_string())
        ));
        for v in &l.values {
            h.push_str(&format!("<td>{v:.3}</td>"));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table></body></html>\n");
    Ok(h)
}

/// Writes `dynamics.json`, `dynamics.svg` / `.png` and `dynamics.html` into `dir`; returns
/// their paths.
pub fn write_dynamics(r: &DynamicsReport, dir: &Path) -> Result<Vec<PathBuf>> {
    write_outputs(dir, "dynamics", r, dynamics_chart(r)?, |c| {
        dynamics_html(r, c)
    })
}
