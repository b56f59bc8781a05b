//! The demonstration on the shipped models: every stage writes its output, and the painted
//! scene and the removal curve show trees going away.

mod common;

use common::{gandissect, require_shipped_models, scratch};

#[test]
fn demo_dissects_paints_and_measures_on_the_shipped_models() {
    require_shipped_models();
    let dir = scratch("demo");
    let out = dir.join("demo");
    let o = gandissect(&["demo", "--samples", "300", "--out", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for f in [
        "world/contact_sheet.png",
        "generated/grid.png",
        "dissect/report.html",
        "edit/edited-compare.png",
        "edit/edited.json",
        "ablate/ablate-tree.png",
    ] {
        assert!(out.join(f).exists(), "{f} missing; stdout:\n{stdout}");
    }
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("edit/edited.json")).unwrap()).unwrap();
    let removed = record["strokes"][0]["effect"]["removed_fraction"]
        .as_f64()
        .unwrap();
    assert!(
        removed > 0.3,
        "only {removed} of the region's trees removed"
    );
    let curve: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("ablate/ablate-tree.json")).unwrap())
            .unwrap();
    let points = curve["points"].as_array().unwrap();
    let at = |k: u64| {
        points
            .iter()
            .find(|p| p["k"] == k)
            .map(|p| p["removed"].as_f64().unwrap())
            .unwrap()
    };
    assert!(at(20) > at(4) && at(4) > 0.0, "{points:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
