//! A researcher's own models end to end: TorchScript segmenters of every output kind (made by
//! `tests/fixtures/make_segmenters.py`), a bare classifier checkpoint of any input size
//! dissected at any segmentation size, raw generator outputs and layer features as files, and
//! the time estimate of a dissection.

mod common;

use common::{cached_fixture, gandissect, repo_root, scratch};
use gandissect::dissect::source::resize_labels;
use gandissect::nets::layered::LayeredNet;
use gandissect::nets::vgg::{Normalization, Vgg, VggConfig};
use gandissect::segment::{Segmenter, load_segmenter_output};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use tch::{Device, Kind, Tensor, nn};

fn segmenters() -> PathBuf {
    cached_fixture(
        "segmenters",
        &repo_root().join("tests/fixtures/make_segmenters.py"),
        &[],
    )
}

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

fn load(dir: &Path, file: &str, output: Option<&str>) -> anyhow::Result<Box<dyn Segmenter>> {
    load_segmenter_output(dir.join(file).to_str().unwrap(), output, Device::Cpu)
}

fn error_of(dir: &Path, file: &str, output: Option<&str>) -> String {
    let seg = match load(dir, file, output) {
        Ok(s) => s,
        Err(e) => return format!("{e:#}"),
    };
    let images = Tensor::read_npy(dir.join("probe_images.npy")).unwrap();
    match seg.segment(&images) {
        Ok(maps) => panic!("{file} with {output:?} gave maps {:?}", maps.size()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn every_output_kind_gives_the_segmenters_label_maps() {
    let dir = segmenters();
    let images = Tensor::read_npy(dir.join("probe_images.npy")).unwrap();
    let truth = Tensor::read_npy(dir.join("probe_labels.npy")).unwrap();
    assert_eq!(truth.size(), [4, 2, 64, 64]);
    // the rules give every label somewhere, so an argmax or an entry mixed up would show
    for label in 0..5 {
        assert!(bool::try_from(truth.eq(label).any()).unwrap(), "{label}");
    }
    let objects = truth.narrow(1, 0, 1);
    for (file, output, expected) in [
        ("labels.pt", None, &truth),
        ("scores.pt", None, &objects),
        ("dict.pt", Some("maps"), &truth),
        ("dict.pt", Some("scores"), &objects),
        ("tuple.pt", Some("1"), &truth),
    ] {
        let seg = load(&dir, file, output).unwrap();
        let maps = seg.segment(&images).unwrap();
        assert_eq!(maps.kind(), Kind::Int64, "{file} {output:?}");
        assert!(maps.equal(expected), "{file} {output:?}");
    }
    // a segmenter working at 224×224 is resized to any segmentation size, nearest neighbour
    let big = load(&dir, "labels224.pt", None)
        .unwrap()
        .segment(&images)
        .unwrap();
    assert_eq!(big.size(), [4, 2, 224, 224]);
    let half = resize_labels(&big, 112);
    let odd = Tensor::arange_start_step(1, 224, 2, (Kind::Int64, Device::Cpu));
    assert!(half.equal(&big.index_select(2, &odd).index_select(3, &odd)));
    let small = resize_labels(&big, 64);
    assert_eq!(small.size(), [4, 2, 64, 64]);
    // pixel i of 64 takes pixel ⌊(i + ½)·224/64⌋ = ⌊3.5·i + 1.75⌋
    let rows = Tensor::from_slice(&(0..64).map(|i| (7 * i + 3) / 2).collect::<Vec<i64>>());
    assert!(small.equal(&big.index_select(2, &rows).index_select(3, &rows)));
    // labels are never blended: every value is one the segmenter gave
    assert!(bool::try_from(small.le(4).all()).unwrap());
    let doubled = small
        .repeat_interleave_self_int(2, 2, None)
        .repeat_interleave_self_int(2, 3, None);
    assert!(resize_labels(&small, 128).equal(&doubled));
}

#[test]
fn duplicate_names_are_kept_apart_and_bad_outputs_are_explained() {
    let dir = segmenters();
    let seg = load(&dir, "labels.pt", None).unwrap();
    let names: Vec<&str> = seg.labels().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["-", "sky", "carpet-object", "carpet-material", "wood"]
    );
    assert_eq!(seg.label_id("carpet-material").unwrap(), 3);
    let e = format!("{:#}", seg.label_id("carpet").unwrap_err());
    assert!(
        e.contains("carpet-object") && e.contains("carpet-material"),
        "{e}"
    );

    let e = error_of(&dir, "dict.pt", None);
    assert!(
        e.contains("--segmenter-output") && e.contains("maps") && e.contains("scores"),
        "{e}"
    );
    let e = error_of(&dir, "dict.pt", Some("labels"));
    assert!(
        e.contains("no output 'labels'") && e.contains("maps"),
        "{e}"
    );
    let e = error_of(&dir, "tuple.pt", None);
    assert!(e.contains("0: a Float tensor [4, 64, 64]"), "{e}");
    let e = error_of(&dir, "tuple.pt", Some("0"));
    assert!(e.contains("per-class scores [N, L, h, w]"), "{e}");
    let e = error_of(&dir, "badscores.pt", None);
    assert!(
        e.contains("scores for 3 classes") && e.contains("5 labels"),
        "{e}"
    );
    let e = error_of(&dir, "labels.pt", Some("maps"));
    assert!(e.contains("single tensor"), "{e}");

    // a label list that lists one label twice, or too short for the outputs
    let other = scratch("seg-labels");
    for file in ["labels.pt", "probe_images.npy"] {
        std::fs::copy(dir.join(file), other.join(file)).unwrap();
    }
    let write = |labels: Value| {
        std::fs::write(other.join("labels.json"), labels.to_string()).unwrap();
    };
    write(serde_json::json!([
        {"name": "-", "category": "-"},
        {"name": "sky", "category": "object"},
        {"name": "sky", "category": "object"}
    ]));
    let e = error_of(&other, "labels.pt", None);
    assert!(e.contains("sky (object) twice"), "{e}");
    write(serde_json::json!([
        {"name": "-", "category": "-"},
        {"name": "sky", "category": "object"},
        {"name": "carpet", "category": "object"}
    ]));
    let e = error_of(&other, "labels.pt", None);
    assert!(
        e.contains("returned label 4") && e.contains("3 labels"),
        "{e}"
    );
    std::fs::remove_file(other.join("labels.json")).unwrap();
    let e = error_of(&other, "labels.pt", None);
    assert!(e.contains("labels.json"), "{e}");
}

/// A tiny random VGG-16 written as a bare checkpoint (no model card).
fn bare_vgg(dir: &Path) -> String {
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Vgg::trainable(
        &vs.root(),
        VggConfig::scaled(0.125, 2, 32, 6),
        Normalization::imagenet(),
    );
    let tensors: Vec<(String, Tensor)> = net
        .named_tensors()
        .into_iter()
        .map(|(k, t)| (k, t.contiguous()))
        .collect();
    let path = dir.join("vgg.safetensors");
    Tensor::write_safetensors(&tensors, &path).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_bare_224_classifier_dissects_against_a_224_segmenter_at_any_seg_size() {
    let seg = segmenters().join("labels224.pt");
    let dir = scratch("own-224");
    let model = bare_vgg(&dir);
    let run = |out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let mut args = vec![
            "classify",
            "dissect",
            "--model",
            &model,
            "--segmenter",
            seg.to_str().unwrap(),
            "--samples",
            "4",
            "--batch",
            "2",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        (gandissect(&args), out)
    };
    for size in ["224", "112", "64"] {
        let (o, out) = run(
            &format!("d{size}"),
            &["--input-size", "224", "--seg-size", size],
        );
        assert!(o.status.success(), "{size}: {}", text(&o));
        let d = json(&out.join("dissect.json"));
        assert_eq!(d["settings"]["input_size"], 224);
        assert_eq!(d["settings"]["seg_size"].to_string(), size);
        let names: Vec<&str> = d["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"carpet-object") && names.contains(&"carpet-material"));
    }
    // without --input-size a bare checkpoint takes 64×64 input
    let (o, out) = run("d64in", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        json(&out.join("dissect.json"))["settings"]["input_size"],
        64
    );
    // statistics made at one input size are not resumed at another
    let (o, _) = run("d64in", &["--input-size", "96"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("input_size 64, not 96"), "{}", text(&o));
    // a bad size is refused by name
    let (o, _) = run("bad", &["--input-size", "0"]);
    assert!(
        text(&o).contains("--input-size must be between 1 and 4096"),
        "{}",
        text(&o)
    );
}

#[test]
fn raw_outputs_and_features_leave_the_tool_exactly() {
    let dir = scratch("own-raw");
    let npy = dir.join("raw.npy");
    let st = dir.join("raw.safetensors");
    for raw in [&npy, &st] {
        let o = gandissect(&[
            "generate",
            "--model",
            "random:3",
            "--seeds",
            "2..5",
            "--out",
            dir.join("png").to_str().unwrap(),
            "--raw",
            raw.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let (g, _) = gandissect::zoo::load_generator("random:3", Device::Cpu).unwrap();
    let z = gandissect::zsample::z_rows(1, &[2, 3, 4], g.z_dim() as usize, Device::Cpu).unwrap();
    let expected = tch::no_grad(|| g.forward(&z));
    let from_npy = Tensor::read_npy(&npy).unwrap();
    assert_eq!(from_npy.size(), [3, 3, 64, 64]);
    assert!(from_npy.allclose(&expected, 1e-6, 1e-6, false));
    let named = Tensor::read_safetensors(&st).unwrap();
    let get = |all: &[(String, Tensor)], n: &str| {
        all.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone()
    };
    assert!(get(&named, "images").equal(&from_npy));
    assert_eq!(Vec::<i64>::try_from(get(&named, "ids")).unwrap(), [2, 3, 4]);

    // layer4 features: two units in the order asked, whole (one batch, as the reference
    // forward) and pooled (batches of two)
    let feats = dir.join("f.safetensors");
    let pooled = dir.join("f.npy");
    for (out, pool, batch) in [(&feats, "none", "16"), (&pooled, "max", "2")] {
        let o = gandissect(&[
            "features",
            "--model",
            "random:3",
            "--layer",
            "layer4",
            "--seeds",
            "2..5",
            "--units",
            "5,1",
            "--pool",
            pool,
            "--batch",
            batch,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let named = Tensor::read_safetensors(&feats).unwrap();
    let f = get(&named, "features");
    let index = g.layer_index("layer4").unwrap();
    let layer4 = tch::no_grad(|| g.forward_range(&z, 0, index + 1));
    let want = layer4.index_select(1, &Tensor::from_slice(&[5i64, 1]));
    assert_eq!(f.size(), want.size());
    assert!(f.equal(&want));
    assert_eq!(Vec::<i64>::try_from(get(&named, "units")).unwrap(), [5, 1]);
    let p = Tensor::read_npy(&pooled).unwrap();
    assert_eq!(p.size(), [3, 2]);
    // another batch size may round differently in the last bits
    assert!(p.allclose(&f.amax([2, 3], false), 1e-5, 1e-6, false));

    let bad = |args: &[&str], phrase: &str| {
        let o = gandissect(args);
        assert!(!o.status.success());
        assert!(text(&o).contains(phrase), "{phrase}: {}", text(&o));
    };
    let out = dir.join("x.npy");
    let out = out.to_str().unwrap();
    bad(
        &[
            "features", "--model", "random:3", "--layer", "layer4", "--units", "999", "--out", out,
        ],
        "unit 999 is out of range",
    );
    bad(
        &[
            "features", "--model", "random:3", "--layer", "layer4", "--out", "x.csv",
        ],
        "must end in .npy",
    );
    bad(
        &[
            "features", "--model", "random:3", "--layer", "nope", "--out", out,
        ],
        "nope",
    );
    bad(
        &[
            "generate", "--model", "random:3", "--seeds", "0", "--raw", "x.png", "--out", out,
        ],
        "must end in .npy",
    );
}

#[test]
fn a_dissection_estimates_its_time_and_a_dry_run_writes_nothing() {
    let seg = segmenters().join("labels.pt");
    let dir = scratch("own-estimate");
    let out = dir.join("d");
    let base = [
        "dissect",
        "--model",
        "random:0",
        "--layer",
        "layer4",
        "--segmenter",
        seg.to_str().unwrap(),
        "--batch",
        "4",
        "--out",
        out.to_str().unwrap(),
    ];
    let mut args = base.to_vec();
    args.extend_from_slice(&["--samples", "400", "--shard", "1/2", "--dry-run"]);
    let o = gandissect(&args);
    assert!(o.status.success(), "{}", text(&o));
    let s = text(&o);
    assert!(s.contains("measured on 8 images per pass"), "{s}");
    assert!(
        s.contains("pass 1: ") && s.contains("for 200 images"),
        "{s}"
    );
    assert!(
        s.contains("shard 1/2:") && s.contains("all 2 shards"),
        "{s}"
    );
    assert!(!out.exists(), "a dry run writes nothing");

    let mut args = base.to_vec();
    args.extend_from_slice(&["--samples", "24"]);
    let o = gandissect(&args);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("pass 1: ")
            && err.contains("images/s measured")
            && err.contains("pass 2 about"),
        "{err}"
    );
    assert!(
        err.contains("pass 2: ") && err.contains("left in this pass (12 images)"),
        "{err}"
    );
}
