//! Charts in a real browser (Debian's headless Chromium): a page that inlines several charts
//! and a standalone SVG both load their embedded font, and the browser sets the text at the
//! widths the embedded font gives (a fallback font would not).

use gandissect::chart::{Axis, Bar, BarChart, Figure, HeatMap, Line, LineChart, page_font_css};
use gandissect::scratch::ScratchDir;
use std::path::Path;
use std::process::Command;

mod common;

/// Loads `probe` (a page whose script writes its findings into `<pre id="out">`) and returns
/// that text.
fn probe(chrome: &Path, dir: &Path, probe: &str) -> String {
    let page = dir.join("probe.html");
    std::fs::write(&page, probe).unwrap();
    let profile = dir.join("profile");
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("Chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"out\">").expect("the probe page") + 14;
    let end = dom[start..].find("</pre>").unwrap() + start;
    dom[start..end].replace("&quot;", "\"")
}

fn charts() -> Vec<Figure> {
    let line = LineChart::new(
        "Removal curve",
        Axis::linear("units zeroed (k)"),
        Axis::linear("removed (%)"),
    )
    .line(
        Line::new("mean", &[(0.0, 0.0), (4.0, 30.0), (20.0, 60.0)]).interval(
            &[0.0, 25.0, 50.0],
            &[0.0, 35.0, 70.0],
            "99% interval",
        ),
    )
    .render()
    .unwrap();
    let bars = BarChart::new("Change by context", "context", Axis::linear("pixels (px)"))
        .bar(Bar::new("wall", 1.5).interval(1.0, 2.0))
        .bar(Bar::new("sky", -0.5))
        .render()
        .unwrap();
    let names: Vec<String> = ["água", "Δ units", "ρ"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let heat = HeatMap::new("Similarity", &names, &names, vec![vec![1.0, 0.2, -0.3]; 3])
        .diverging()
        .labels("correlation", "", "")
        .render()
        .unwrap();
    vec![line, bars, heat]
}

#[test]
fn pages_and_svg_files_show_charts_in_the_embedded_font() {
    let chrome = common::chromium();
    let dir = ScratchDir::new("chart-browser").unwrap();
    let figs = charts();
    let refs: Vec<&Figure> = figs.iter().collect();
    let mut page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">{}</head><body>",
        page_font_css(&refs, "").unwrap()
    );
    for f in &figs {
        page.push_str(&f.inline_svg());
    }
    page.push_str("</body></html>");
    std::fs::write(dir.join("page.html"), page).unwrap();
    std::fs::write(dir.join("line.svg"), figs[0].svg().unwrap()).unwrap();
    let report = probe(
        &chrome,
        &dir,
        r#"<!doctype html><html><body><pre id="out">pending</pre>
<iframe id="page" src="page.html" width="1600" height="1600"></iframe>
<iframe id="svg" src="line.svg" width="800" height="500"></iframe>
<script>
function look(id) {
  return new Promise(function (done) {
    var d = document.getElementById(id).contentDocument;
    d.fonts.ready.then(function () {
        var texts = Array.from(d.querySelectorAll('text'));
        done({
          faces: Array.from(d.fonts).map(function (x) { return x.family + ':' + x.status; }),
          widths: texts.map(function (t) { return [t.textContent, t.getComputedTextLength(),
            parseFloat(getComputedStyle(t).fontSize)]; })
      });
    });
  });
}
window.addEventListener('load', function () {
  Promise.all([look('page'), look('svg')]).then(function (r) {
    document.getElementById('out').textContent = JSON.stringify({page: r[0], svg: r[1]});
  });
});
</script></body></html>"#,
    );
    let v: serde_json::Value =
        serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    for (which, expected) in [
        ("page", figs.iter().map(|f| f.text().len()).sum::<usize>()),
        ("svg", figs[0].text().len()),
    ] {
        let r = &v[which];
        assert_eq!(
            r["faces"],
            serde_json::json!(["DejaVu Sans:loaded"]),
            "{which}: {r}"
        );
        let widths = r["widths"].as_array().unwrap();
        assert_eq!(widths.len(), expected, "{which}: {r}");
        for w in widths {
            let (text, got, size) = (
                w[0].as_str().unwrap().trim(),
                w[1].as_f64().unwrap(),
                w[2].as_f64().unwrap(),
            );
            let want = gandissect::chart::font::text_width(text, size as f32) as f64;
            assert!(
                (got - want).abs() <= 0.01 * want + 0.5,
                "{which}: '{text}' at {size}px is {got:.2} px wide in the browser, {want:.2} px in the embedded font"
            );
        }
    }
}
