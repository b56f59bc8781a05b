//! `report.html`: a self-contained page (no network) with, per layer, a bar chart of
//! interpretable units per concept (inline SVG, its font defined once for the page) and a
//! sortable table of units with their top images (the per-unit PNGs, referenced by relative
//! path).

use super::images::unit_file;
use super::result::{DissectResult, LayerResult};
use crate::chart::{Axis, Bar, BarChart, Figure, page_font_css};
use crate::fsutil::atomic_write;
use anyhow::Result;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Category order of the bar chart; other categories follow alphabetically.
const CATEGORY_ORDER: [&str; 7] = [
    "object", "scene", "part", "piece", "material", "texture", "color",
];

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn category_rank(cat: &str) -> usize {
    CATEGORY_ORDER
        .iter()
        .position(|c| *c == cat)
        .unwrap_or(CATEGORY_ORDER.len())
}

/// The bar chart of interpretable units per concept, coloured and ordered by category (most
/// units first within each); `None` when the layer has no interpretable unit.
pub fn bar_chart(layer: &LayerResult) -> Result<Option<Figure>> {
    let mut bars: Vec<(&str, &str, usize)> = layer
        .concepts
        .iter()
        .filter(|c| c.interpretable_units > 0)
        .map(|c| {
            (
                c.concept.as_str(),
                c.category.as_str(),
                c.interpretable_units,
            )
        })
        .collect();
    bars.sort_by(|a, b| {
        (category_rank(a.1), a.1, std::cmp::Reverse(a.2), a.0).cmp(&(
            category_rank(b.1),
            b.1,
            std::cmp::Reverse(b.2),
            b.0,
        ))
    });
    if bars.is_empty() {
        return Ok(None);
    }
    let width = (140 + 44 * bars.len() as u32).clamp(520, 1400);
    let mut chart = BarChart::new(
        &format!("{}: interpretable units per concept", layer.layer),
        "concept",
        Axis::linear("interpretable units"),
    )
    .show_values()
    .size(width, 380);
    for (name, cat, n) in bars {
        chart = chart.bar(Bar::new(name, n as f64).group(cat));
    }
    chart.render().map(Some)
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}\
th{cursor:pointer;background:#f3f3f3}th:hover{background:#e4e4e4}img{image-rendering:pixelated}\
.no{color:#999}";

const SORT_SCRIPT: &str = "document.querySelectorAll('table.units th').forEach(function(th,col){\
th.addEventListener('click',function(){var t=th.closest('table'),b=t.tBodies[0];\
var rows=Array.from(b.rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';\
rows.sort(function(x,y){var a=x.cells[col].dataset.v||x.cells[col].textContent,\
c=y.cells[col].dataset.v||y.cells[col].textContent,na=parseFloat(a),nc=parseFloat(c);\
var r=(!isNaN(na)&&!isNaN(nc))?na-nc:a.localeCompare(c);return asc?r:-r;});\
rows.forEach(function(r){b.appendChild(r);});});});";

/// The report page for `result`, referencing unit images under `<layer>/units/`.
pub fn render(result: &DissectResult) -> Result<String> {
    let charts = result
        .layers
        .iter()
        .map(bar_chart)
        .collect::<Result<Vec<_>>>()?;
    let fonts = page_font_css(&charts.iter().flatten().collect::<Vec<_>>(), "")?;
    let mut html = String::new();
    let model = &result.settings.common.model;
    let segmenter = &result.settings.segmenter;
    let samples = result.settings.common.samples;
    let _ = write!(
        html,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Dissection of {m}</title>\
         {fonts}<style>{STYLE}</style></head><body><h1>Dissection of {m}</h1>\
         <p>{samples} images, segmenter {s}, threshold at the {q} quantile of each unit, \
         interpretable when IoU &gt; {miniou}. Click a column heading to sort.</p>",
        m = escape(model),
        s = escape(segmenter),
        q = result.quantile,
        miniou = result.miniou
    );
    for (layer, chart) in result.layers.iter().zip(&charts) {
        let _ = write!(
            html,
            "<h2 id=\"{l}\">{l}: {} of {} units interpretable</h2>{}",
            layer.interpretable,
            layer.units.len(),
            chart.as_ref().map_or_else(
                || "<p>No interpretable units at this cut-off.</p>".to_string(),
                Figure::inline_svg
            ),
            l = escape(&layer.layer)
        );
        html.push_str(
            "<table class=\"units\"><thead><tr><th>unit</th><th>label</th><th>category</th>\
             <th>IoU</th><th>level</th><th>interpretable</th><th>top images</th></tr></thead><tbody>",
        );
        let mut units: Vec<_> = layer.units.iter().collect();
        units.sort_by(|a, b| b.iou.total_cmp(&a.iou).then(a.unit.cmp(&b.unit)));
        for u in units {
            let src = format!("{}/units/{}", layer.layer, unit_file(u.unit));
            let _ = write!(
                html,
                "<tr{cls}><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td>\
                 <td><img src=\"{}\" alt=\"unit {} top images\" loading=\"lazy\"></td></tr>",
                u.unit,
                escape(&u.label),
                escape(&u.category),
                u.iou,
                u.level,
                if u.interpretable { "yes" } else { "no" },
                escape(&src),
                u.unit,
                cls = if u.interpretable { "" } else { " class=\"no\"" }
            );
        }
        html.push_str("</tbody></table>");
    }
    let _ = write!(html, "<script>{SORT_SCRIPT}</script></body></html>");
    Ok(html)
}

/// Writes `DIR/report.html`.
pub fn write_report(result: &DissectResult, dir: &Path) -> Result<PathBuf> {
    let path = dir.join("report.html");
    atomic_write(&path, render(result)?.as_bytes())?;
    Ok(path)
}
