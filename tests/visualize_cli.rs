//! `gandissect visualize` end to end on the shipped classifier: filters, maps, a short
//! maximisation, an embedding page hovered in headless Chromium, and clear refusals.

use std::path::Path;
use std::process::{Command, Output};

mod common;

fn run(args: &[&str]) -> Output {
    common::require_shipped_models();
    common::gandissect(args)
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(args: &[&str], needle: &str) {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(err.contains(needle), "{args:?}: '{err}' lacks '{needle}'");
    assert!(!err.contains("panicked"), "{err}");
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn filters_are_drawn_and_non_conv_layers_refused() {
    let dir = common::scratch("vis-filters");
    let out = dir.join("f1");
    ok(&[
        "visualize",
        "filters",
        "--layer",
        "conv1_1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let j = json(&out.join("filters.json"));
    assert_eq!(j["inputs"], 3);
    assert_eq!(j["filters"].as_array().unwrap().len(), 16);
    let png = image::open(out.join("filters.png")).unwrap();
    // 4 × 4 tiles of 3 weights × 8 px with 2 px between
    assert_eq!(png.width(), 4 * 24 + 5 * 2);
    let deep = dir.join("f3");
    ok(&[
        "visualize",
        "filters",
        "--layer",
        "relu3_1",
        "--out",
        deep.to_str().unwrap(),
    ]);
    let j = json(&deep.join("filters.json"));
    assert_eq!(j["inputs"], 32);
    let first = &j["filters"][0]["channels"];
    assert!(
        first
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.as_i64().unwrap() < 32)
    );
    refused(
        &[
            "visualize",
            "filters",
            "--layer",
            "fc6",
            "--out",
            deep.to_str().unwrap(),
        ],
        "not a conv layer",
    );
    refused(
        &["visualize", "filters", "--layer", "conv9_9"],
        "unknown layer 'conv9_9'",
    );
}

#[test]
fn saliency_maps_per_method_and_bad_requests() {
    let dir = common::scratch("vis-saliency");
    let out = dir.join("s");
    let o = out.to_str().unwrap();
    ok(&[
        "visualize",
        "saliency",
        "--seeds",
        "200000,200001",
        "--methods",
        "gradient,grad_cam,occlusion",
        "--out",
        o,
    ]);
    let j = json(&out.join("saliency.json"));
    assert_eq!(j["rows"].as_array().unwrap().len(), 4);
    assert_eq!(j["explained"], j["predicted"]);
    let png = image::open(out.join("saliency.png")).unwrap();
    assert_eq!(
        (png.width(), png.height()),
        (2 * 192 + 3 * 2, 4 * 192 + 5 * 2)
    );
    // a picture file, explained as a class told from its painted kind
    let pic = dir.join("scene.png");
    gandissect::world::render(200003)
        .image()
        .unwrap()
        .save(&pic)
        .unwrap();
    ok(&[
        "visualize",
        "saliency",
        "--image",
        pic.to_str().unwrap(),
        "--class",
        "forest_path",
        "--against",
        "forest",
        "--methods",
        "integrated_gradients",
        "--out",
        o,
    ]);
    assert_eq!(json(&out.join("saliency.json"))["against"][0], "forest");
    refused(
        &[
            "visualize",
            "saliency",
            "--seeds",
            "1",
            "--methods",
            "magic",
            "--out",
            o,
        ],
        "unknown saliency method 'magic'",
    );
    refused(
        &[
            "visualize",
            "saliency",
            "--seeds",
            "1",
            "--class",
            "desert",
            "--out",
            o,
        ],
        "unknown class 'desert'",
    );
    refused(
        &["visualize", "saliency", "--out", o],
        "give either --seeds",
    );
    refused(
        &[
            "visualize",
            "saliency",
            "--image",
            dir.join("none.png").to_str().unwrap(),
            "--out",
            o,
        ],
        "none.png",
    );
    refused(
        &[
            "visualize",
            "saliency",
            "--seeds",
            "1",
            "--methods",
            "grad_cam",
            "--layer",
            "fc7",
            "--out",
            o,
        ],
        "spatial grid",
    );
}

#[test]
fn maximisation_writes_its_trace_and_refuses_bad_targets() {
    let dir = common::scratch("vis-max");
    let out = dir.join("m");
    let o = out.to_str().unwrap();
    ok(&[
        "visualize",
        "maximize",
        "--layer",
        "conv5_3",
        "--unit",
        "3",
        "--steps",
        "4",
        "--images",
        "2",
        "--diversity",
        "0.5",
        "--out",
        o,
    ]);
    let j = json(&out.join("maximize.json"));
    let t = &j["targets"][0];
    assert_eq!(t["trace"].as_array().unwrap().len(), 4);
    assert_eq!(t["objective"].as_array().unwrap().len(), 2);
    refused(
        &[
            "visualize",
            "maximize",
            "--layer",
            "conv5_3",
            "--unit",
            "4096",
            "--out",
            o,
        ],
        "out of range",
    );
    refused(
        &[
            "visualize",
            "maximize",
            "--layer",
            "conv5_3",
            "--concept",
            "tree",
            "--out",
            o,
        ],
        "--dissection",
    );
    refused(
        &["visualize", "maximize", "--class", "desert", "--out", o],
        "unknown class 'desert'",
    );
    refused(
        &["visualize", "maximize", "--out", o],
        "give either --class",
    );
    refused(
        &[
            "visualize",
            "maximize",
            "--class",
            "forest",
            "--scale-range",
            "2,1",
            "--out",
            o,
        ],
        "scale",
    );
}

#[test]
fn generator_latents_are_optimised_to_excite_a_unit() {
    let dir = common::scratch("vis-gen");
    let out = dir.join("g");
    let o = out.to_str().unwrap();
    ok(&[
        "visualize",
        "maximize",
        "--generator",
        "world-proggan",
        "--layer",
        "layer4",
        "--unit",
        "7",
        "--steps",
        "12",
        "--ids",
        "0,1",
        "--out",
        o,
    ]);
    let j = json(&out.join("maximize.json"));
    let start: f64 = j["start"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    let trace = j["trace"].as_array().unwrap();
    let last: f64 = trace.last().unwrap()["objective"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!(last > start, "{start} → {last}");
    refused(
        &[
            "visualize",
            "maximize",
            "--generator",
            "world-proggan",
            "--layer",
            "layer4",
            "--unit",
            "7",
            "--from",
            "layer6",
            "--out",
            o,
        ],
        "before layer4",
    );
}

#[test]
fn embedding_page_shows_the_scene_under_the_pointer() {
    let dir = common::scratch("vis-embed");
    let out = dir.join("e");
    ok(&[
        "visualize",
        "embed",
        "--scenes",
        "36",
        "--perplexity",
        "5",
        "--iterations",
        "250",
        "--out",
        out.to_str().unwrap(),
    ]);
    let j = json(&out.join("embed.json"));
    assert_eq!(j["scenes"].as_array().unwrap().len(), 36);
    assert!(out.join("embed.png").exists() && out.join("embed.svg").exists());
    let html = std::fs::read_to_string(out.join("embed.html")).unwrap();
    assert_eq!(html.matches("data:image/png;base64,").count(), 36);
    refused(
        &[
            "visualize",
            "embed",
            "--scenes",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
        "8 to",
    );

    // hover a point in a real browser: the panel shows that point's scene; far from every
    // point it stays hidden
    let probe = r#"<pre id="out"></pre><script>
window.addEventListener('load', () => {
  const svg = map.querySelector('svg'), box = svg.getBoundingClientRect();
  const vb = svg.viewBox.baseVal;
  const kx = vb && vb.width ? box.width / vb.width : 1, ky = vb && vb.height ? box.height / vb.height : 1;
  const p = POINTS[5];
  map.dispatchEvent(new MouseEvent('mousemove', {clientX: box.left + p.x * kx, clientY: box.top + p.y * ky, bubbles: true}));
  const shown = POINTS.find(q => String(q.seed) === panel.dataset.seed);
  const d = shown ? Math.hypot(shown.x - p.x, shown.y - p.y) : -1;
  const hit = {hidden: panel.hidden, distance: d, src: shown ? img.src === shown.src : false, caption: caption.textContent};
  map.dispatchEvent(new MouseEvent('mousemove', {clientX: box.left + 2, clientY: box.top + 2, bubbles: true}));
  document.getElementById('out').textContent = JSON.stringify({hit, far: panel.hidden});
});
</script></body>"#;
    let page = out.join("probe.html");
    std::fs::write(&page, html.replace("</body>", probe)).unwrap();
    let dom = Command::new(common::chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("Chromium runs");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let start = dom.find("<pre id=\"out\">").expect("the probe page") + 14;
    let end = dom[start..].find("</pre>").unwrap() + start;
    let found: serde_json::Value =
        serde_json::from_str(&dom[start..end].replace("&quot;", "\"")).unwrap();
    assert_eq!(found["hit"]["hidden"], false, "{found}");
    assert!(found["hit"]["distance"].as_f64().unwrap() <= 1.0, "{found}");
    assert_eq!(found["hit"]["src"], true, "{found}");
    assert!(
        found["hit"]["caption"]
            .as_str()
            .unwrap()
            .contains("(seed 2000"),
        "{found}"
    );
    assert_eq!(found["far"], true, "{found}");
}
