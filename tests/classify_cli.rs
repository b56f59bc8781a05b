//! `gandissect classify importance`, `attack` and `analyze selectivity` end to end on a tiny
//! random classifier, and their answers to bad input.

mod common;

use common::{gandissect, scratch};
use gandissect::nets::vgg::{Normalization, Vgg, VggConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use tch::{Device, Tensor, nn};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A tiny random VGG-16 model directory (conv5_3: 64 units, input 32×32, the six painted kinds of
/// the world; finer world classes read as their kind).
fn tiny_model(dir: &Path) -> String {
    // libtorch's generator is global and the tests of this file run in parallel: seeding and
    // drawing happen under one lock, so every test gets the same network.
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let (_vs, net) = {
        let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
        tch::manual_seed(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Vgg::trainable(
            &vs.root(),
            VggConfig::scaled(0.125, 2, 32, 6),
            Normalization::imagenet(),
        );
        (vs, net)
    };
    let tensors: Vec<(String, Tensor)> = net
        .named_tensors()
        .into_iter()
        .map(|(k, t)| {
            let t = if k.starts_with("classifier") && k.ends_with("weight") {
                t * 20.0
            } else {
                t
            };
            (k, t.contiguous())
        })
        .collect();
    let model = dir.join("tiny-vgg");
    std::fs::create_dir_all(&model).unwrap();
    Tensor::write_safetensors(&tensors, model.join("weights.safetensors")).unwrap();
    let card = serde_json::json!({
        "architecture": "vgg16",
        "weights": "weights.safetensors",
        "classes": ["ski_resort", "church", "village", "forest", "lakeside", "beach"],
        "input_size": 32
    });
    std::fs::write(model.join("model.json"), card.to_string()).unwrap();
    model.to_string_lossy().into_owned()
}

#[test]
fn importance_attack_and_selectivity_write_their_results() {
    let dir = scratch("all");
    let model = tiny_model(&dir);
    let imp = dir.join("imp");
    let o = gandissect(&[
        "classify",
        "importance",
        "--model",
        &model,
        "--samples",
        "24",
        "--heldout",
        "24",
        "--ks",
        "1,4,200",
        "--out",
        imp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resized"), "{}", text(&o));
    let r = json(&imp.join("importance.json"));
    assert_eq!(r["units"], 64);
    assert_eq!(r["rankings"].as_array().unwrap().len(), 6);
    assert_eq!(r["rankings"][0]["units"].as_array().unwrap().len(), 64);
    // k = 200 exceeds the layer and is dropped
    let ks: Vec<u64> = r["curves"][0]["remove_top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["k"].as_u64().unwrap())
        .collect();
    assert_eq!(ks, vec![1, 4]);
    assert!(imp.join("curves_beach.png").exists());

    let att = dir.join("att");
    let imp_json = imp.join("importance.json");
    let o = gandissect(&[
        "attack",
        "--model",
        &model,
        "--target",
        "lakeside",
        "--method",
        "pgd",
        "--samples",
        "4",
        "--iterations",
        "5",
        "--epsilon",
        "0.1",
        "--step",
        "0.02",
        "--importance",
        imp_json.to_str().unwrap(),
        "--out",
        att.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let a = json(&att.join("attack.json"));
    assert_eq!(a["images"], 4);
    assert_eq!(a["per_image"].as_array().unwrap().len(), 4);
    for img in a["per_image"].as_array().unwrap() {
        assert_ne!(img["source"], "lakeside");
        assert_ne!(img["truth"], "lakeside");
        assert!(img["linf"].as_f64().unwrap() <= 0.1 + 1e-6);
    }
    assert!(att.join("examples.png").exists());
    // these four images of the fixed network are attacked successfully, so the trace exists
    assert!(a["successes"].as_u64().unwrap() > 0, "{a}");
    assert!(att.join("trace.png").exists() && att.join("units.png").exists());
    assert_eq!(a["trace"]["target_units"].as_array().unwrap().len(), 4);

    let sel = dir.join("sel");
    let iou = dir.join("iou.json");
    let values: Vec<f64> = (0..64).map(|u| f64::from(u) / 64.0).collect();
    std::fs::write(&iou, serde_json::to_string(&values).unwrap()).unwrap();
    let o = gandissect(&[
        "analyze",
        "selectivity",
        "--model",
        &model,
        "--samples",
        "24",
        "--importance",
        imp_json.to_str().unwrap(),
        "--iou",
        iou.to_str().unwrap(),
        "--out",
        sel.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let s = json(&sel.join("selectivity.json"));
    assert_eq!(s["selectivity"].as_array().unwrap().len(), 64);
    assert_eq!(s["iou"].as_array().unwrap().len(), 64);
    assert!(sel.join("selectivity_vs_importance.png").exists());
    assert!(sel.join("iou_vs_importance.png").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_explained() {
    let dir = scratch("bad");
    let model = tiny_model(&dir);
    let out = dir.join("x");
    let o = gandissect(&[
        "classify",
        "importance",
        "--model",
        &model,
        "--layer",
        "fc6",
        "--samples",
        "6",
        "--heldout",
        "6",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("not a conv layer"), "{}", text(&o));
    let o = gandissect(&[
        "attack",
        "--model",
        &model,
        "--target",
        "desert",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("unknown class 'desert'") && t.contains("ski_resort"),
        "{t}"
    );
    // an attack too weak to succeed is reported as a failure, not hidden
    let o = gandissect(&[
        "attack",
        "--model",
        &model,
        "--target",
        "forest",
        "--samples",
        "3",
        "--iterations",
        "1",
        "--epsilon",
        "0.000001",
        "--step",
        "0.000001",
        "--importance-samples",
        "12",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let a = json(&out.join("attack.json"));
    assert_eq!(a["successes"], 0);
    assert!(a["trace"].is_null());
    assert!(text(&o).contains("failed on all 3 images"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn classify_dissect_summarises_every_conv_layer_over_world_scenes() {
    let dir = scratch("dis-all");
    let model = tiny_model(&dir);
    let out = dir.join("d");
    let o = gandissect(&[
        "classify",
        "dissect",
        "--model",
        &model,
        "--layer",
        "all",
        "--segmenter",
        "truth",
        "--samples",
        "12",
        "--batch",
        "6",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let s = json(&out.join("summary.json"));
    let layers = s["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 13);
    assert_eq!(layers[0]["layer"], "conv1_1");
    assert_eq!(layers[12]["layer"], "conv5_3");
    assert_eq!(
        s["categories"],
        serde_json::json!(["object", "part", "material"])
    );
    // the summary agrees with the dissection it summarises, layer by layer
    let d = json(&out.join("dissect.json"));
    let dl = d["layers"].as_array().unwrap();
    assert_eq!(dl.len(), 13);
    for (sl, dl) in layers.iter().zip(dl) {
        assert_eq!(sl["canonical"], dl["layer"]);
        assert_eq!(sl["interpretable"], dl["interpretable"]);
        let units = dl["units"].as_array().unwrap();
        assert_eq!(sl["units"].as_u64().unwrap() as usize, units.len());
        for cat in ["object", "part", "material"] {
            let n = units
                .iter()
                .filter(|u| u["interpretable"] == true && u["category"] == cat)
                .count();
            assert_eq!(
                sl["by_category"][cat].as_u64().unwrap() as usize,
                n,
                "{cat}"
            );
        }
    }
    // a width-0.125 VGG has 8 units at conv1_1 and 64 at conv5_3
    assert_eq!(layers[0]["units"], 8);
    assert_eq!(layers[12]["units"], 64);
    for f in ["summary.png", "summary.html", "report.html"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let html = std::fs::read_to_string(out.join("summary.html")).unwrap();
    assert!(html.contains("conv3_3") && html.contains("material"));
}

/// Writes world scenes as PNG files (64×64, larger than the tiny model's 32×32 input) and a
/// label file with their classes.
fn picture_folder(dir: &Path, n: u64) -> (PathBuf, PathBuf) {
    let pics = dir.join("pics");
    std::fs::create_dir_all(&pics).unwrap();
    let seeds: Vec<u64> = (500..500 + n).collect();
    let batch = gandissect::sample::world_batch(&seeds, false, Device::Cpu);
    let images = gandissect::imageio::to_rgb_images(&batch.images).unwrap();
    let classes = Vec::<i64>::try_from(&batch.classes).unwrap();
    // The tiny model knows the painted kinds only: finer classes are labelled by their kind.
    let kind = |c: i64| {
        gandissect::world::SceneClass::ALL[c as usize]
            .painted()
            .name()
    };
    let mut csv = String::from("filename,class\n");
    for (i, img) in images.iter().enumerate() {
        let name = format!("scene{i:02}.png");
        img.save(pics.join(&name)).unwrap();
        csv.push_str(&format!("{name},{}\n", kind(classes[i])));
    }
    let labels = dir.join("labels.csv");
    std::fs::write(&labels, csv).unwrap();
    (pics, labels)
}

#[test]
fn classify_dissect_reads_a_picture_folder_with_labels() {
    let dir = scratch("dis-folder");
    let model = tiny_model(&dir);
    let (pics, labels) = picture_folder(&dir, 10);
    let out = dir.join("d");
    let o = gandissect(&[
        "classify",
        "dissect",
        "--model",
        &model,
        "--layer",
        "conv4_3,conv5_3",
        "--images",
        pics.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--batch",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resized"), "{}", text(&o));
    let s = json(&out.join("summary.json"));
    assert_eq!(s["samples"], 10);
    assert!(
        s["images"].as_str().unwrap().contains("10 pictures"),
        "{}",
        s["images"]
    );
    assert_eq!(s["layers"].as_array().unwrap().len(), 2);
    let acc = &s["accuracy"];
    assert_eq!(acc["labelled"], 10);
    let per_class = acc["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 6);
    let total: i64 = per_class.iter().map(|c| c[1].as_i64().unwrap()).sum();
    assert_eq!(total, 10);
    let a = acc["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&a));
    let d = json(&out.join("dissect.json"));
    let top = d["layers"][1]["units"][0]["top"].as_array().unwrap();
    assert!(top.iter().all(|t| t["image"].as_u64().unwrap() < 10));
}

#[test]
fn classify_dissect_bad_input_is_explained() {
    let dir = scratch("dis-bad");
    let model = tiny_model(&dir);
    let (pics, labels) = picture_folder(&dir, 3);
    let out = dir.join("d");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let bad_labels = dir.join("bad.csv");
    std::fs::write(&bad_labels, "scene00.png,desert\n").unwrap();
    let (p, l, e, b) = (
        pics.to_str().unwrap(),
        labels.to_str().unwrap(),
        empty.to_str().unwrap(),
        bad_labels.to_str().unwrap(),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--layer", "fc6"], "not a conv layer"),
        (vec!["--layer", "all,conv5_3"], "stands alone"),
        (vec!["--images", "/nonexistent/pics"], "does not exist"),
        (vec!["--images", e], "holds no PNG or JPEG"),
        (vec!["--images", p, "--labels", b], "unknown class 'desert'"),
        (vec!["--labels", l], "give --images DIR too"),
        (
            vec!["--images", p, "--samples", "9"],
            "exceeds the 3 pictures",
        ),
        (
            vec!["--images", p, "--segmenter", "truth"],
            "truth segmenter",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec![
            "classify",
            "dissect",
            "--model",
            &model,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(&extra);
        let o = gandissect(&args);
        assert!(!o.status.success(), "{extra:?} succeeded");
        assert!(text(&o).contains(want), "{extra:?}: {}", text(&o));
    }
}

/// An attack traced after a ReLU groups its units by the ranking of the conv layer before it.
#[test]
fn a_post_relu_trace_is_ranked_at_its_conv_layer() {
    use gandissect::attack::{AttackOptions, Method};
    let mut o = AttackOptions::new("beach", Method::Pgd(Default::default()), 4, Device::Cpu);
    assert_eq!(o.layer, "relu5_3");
    assert_eq!(o.ranking_layer(), "conv5_3");
    o.layer = "relu4_2".into();
    assert_eq!(o.ranking_layer(), "conv4_2");
    o.layer = "conv5_1".into();
    assert_eq!(o.ranking_layer(), "conv5_1");
}
