//! Representation similarity against its definitions: numpy's direct computation on random
//! data (`tests/fixtures/similarity/make_similarity.py`), and the command end to end on the
//! shipped classifier and generator, with bad input.

mod common;

use gandissect::analysis::similarity::measures::{Method, PairCovariance, measure, pwcca};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

fn fixture() -> PathBuf {
    let script = common::repo_root().join("tests/fixtures/similarity/make_similarity.py");
    common::cached_fixture("similarity", &script, &[])
}

fn matrix(path: &Path, rows: i64, cols: i64) -> Tensor {
    let bytes = std::fs::read(path).unwrap();
    let values: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Tensor::from_slice(&values).view([rows, cols])
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() < 1e-4,
        "{what}: {got} against numpy's {want}"
    );
}

#[test]
fn svcca_pwcca_and_cka_match_numpy_on_random_data() {
    let dir = fixture();
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    assert_eq!(cases.len(), 2);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let rows = case["rows"].as_i64().unwrap();
        let a = matrix(
            &dir.join(format!("{name}_A.bin")),
            rows,
            case["a_units"].as_i64().unwrap(),
        );
        let b = matrix(
            &dir.join(format!("{name}_B.bin")),
            rows,
            case["b_units"].as_i64().unwrap(),
        );
        // streamed in uneven batches, as the probe activations are
        let pair = PairCovariance::from_rows(&a, &b);
        for keep in [0.99, 0.9] {
            let want = &case[format!("svcca_{keep}")];
            let got = measure(&pair, Method::Svcca, keep).unwrap();
            close(
                got.value,
                want["value"].as_f64().unwrap(),
                &format!("{name} SVCCA {keep}"),
            );
            let dims: Vec<usize> = serde_json::from_value(want["dims"].clone()).unwrap();
            assert_eq!(
                [got.dims.0, got.dims.1],
                [dims[0], dims[1]],
                "{name} dims {keep}"
            );
            let rho: Vec<f64> = serde_json::from_value(want["rho"].clone()).unwrap();
            assert_eq!(got.rho.len(), rho.len());
            for (i, (g, w)) in got.rho.iter().zip(&rho).enumerate() {
                close(*g, *w, &format!("{name} ρ{i} at {keep}"));
            }
        }
        close(
            pwcca(&pair).unwrap().0,
            case["pwcca_ab"].as_f64().unwrap(),
            &format!("{name} PWCCA(A, B)"),
        );
        close(
            pwcca(&pair.swapped()).unwrap().0,
            case["pwcca_ba"].as_f64().unwrap(),
            &format!("{name} PWCCA(B, A)"),
        );
        let cka = measure(&pair, Method::Cka, 0.99).unwrap().value;
        close(cka, case["cka"].as_f64().unwrap(), &format!("{name} CKA"));
    }
}

#[test]
fn streaming_in_batches_gives_the_same_moments_as_the_whole() {
    use gandissect::analysis::similarity::Resize;
    use gandissect::analysis::similarity::accumulate::Accumulator;
    tch::manual_seed(4);
    let a = Tensor::randn([90, 5], (Kind::Double, tch::Device::Cpu));
    let b = a.narrow(1, 0, 3) * 2.0 + Tensor::randn([90, 3], (Kind::Double, tch::Device::Cpu));
    let whole = measure(&PairCovariance::from_rows(&a, &b), Method::Svcca, 0.99).unwrap();
    let mut acc = Accumulator::new(2, vec![(0, 1)], Resize::Pool, tch::Device::Cpu);
    for (from, len) in [(0, 7), (7, 50), (57, 33)] {
        acc.add(&[a.narrow(0, from, len), b.narrow(0, from, len)])
            .unwrap();
    }
    let streamed = measure(&acc.covariance(0, 1).unwrap(), Method::Svcca, 0.99).unwrap();
    assert!((whole.value - streamed.value).abs() < 1e-10);
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_command_compares_the_shipped_classifier_s_layers_and_writes_its_page() {
    common::require_shipped_models();
    let dir = common::scratch("similarity-vgg");
    let out = dir.join("s");
    let o = common::gandissect(&[
        "analyze",
        "similarity",
        "--model",
        "world-vgg16",
        "--layer",
        "relu3_3,relu4_3,relu5_3",
        "--samples",
        "40",
        "--batch",
        "16",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "similarity.json",
        "similarity.png",
        "similarity.svg",
        "similarity.html",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let r = read_json(&out.join("similarity.json"));
    let m: Vec<Vec<f64>> = serde_json::from_value(r["matrix"].clone()).unwrap();
    assert_eq!(m.len(), 3);
    for (i, row) in m.iter().enumerate() {
        assert!(
            (row[i] - 1.0).abs() < 1e-6,
            "a layer against itself: {}",
            row[i]
        );
        for (j, v) in row.iter().enumerate() {
            assert!((v - m[j][i]).abs() < 1e-9, "SVCCA is symmetric");
            assert!(*v > 0.0 && *v <= 1.0 + 1e-9);
        }
    }
    // relu3_3 (32×32) meets relu5_3 (8×8) on 8×8: 40 scenes × 64 positions
    let pair = r["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["a"] == "relu3_3" && p["b"] == "relu5_3")
        .expect("the relu3_3 × relu5_3 pair");
    assert_eq!(pair["grid"], serde_json::json!([8, 8]));
    assert_eq!(pair["data_points"], 40 * 64);
    let html = std::fs::read_to_string(out.join("similarity.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("relu5_3"));
}

#[test]
fn the_command_compares_two_generators_layer_by_layer() {
    common::require_shipped_models();
    let dir = common::scratch("similarity-gan");
    let out = dir.join("g");
    let o = common::gandissect(&[
        "analyze",
        "similarity",
        "--model",
        "world-proggan",
        "--model-b",
        "random:3",
        "--layer",
        "layer1,layer4",
        "--method",
        "cka",
        "--samples",
        "60",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = read_json(&out.join("similarity.json"));
    assert_eq!(r["model_b"], "random:3");
    let m: Vec<Vec<f64>> = serde_json::from_value(r["matrix"].clone()).unwrap();
    assert_eq!((m.len(), m[0].len()), (2, 2));
    // two generators with their own weights: every similarity a measured value in [0, 1]
    assert!(
        m.iter().flatten().all(|v| (0.0..=1.0 + 1e-9).contains(v)),
        "{m:?}"
    );
}

#[test]
fn bad_requests_are_refused_with_what_to_do() {
    common::require_shipped_models();
    let dir = common::scratch("similarity-bad");
    let out = dir.join("x");
    let out = out.to_str().unwrap();
    let shipped_vgg = gandissect::zoo::home().join("models/world-vgg16");
    let shipped_vgg = shipped_vgg.to_string_lossy().into_owned();
    let cases: [(&[&str], &str); 6] = [
        (&["--layer", "conv9_9"], "unknown layer 'conv9_9'"),
        (&["--layer", "fc6"], "not a conv layer"),
        (&["--layer-b", "relu5_3"], "give B with --model-b"),
        (
            &["--model-b", "world-proggan"],
            "compare classifiers with classifiers",
        ),
        (&["--keep", "1.5"], "--keep"),
        (&["--dynamics", &shipped_vgg], "--keep-checkpoints"),
    ];
    for (args, want) in cases {
        let mut all = vec!["analyze", "similarity", "--samples", "4", "--out", out];
        all.extend_from_slice(args);
        let o = common::gandissect(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
