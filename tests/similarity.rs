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

#[test]
fn above_the_budget_positions_are_sampled_and_a_planted_low_rank_pair_still_reads_one() {
    use gandissect::analysis::similarity::Resize;
    use gandissect::analysis::similarity::accumulate::Accumulator;
    use gandissect::analysis::similarity::memory::{Shape, estimate, plan};
    // two conv layers reading one rank-3 code at every position: B = M·A with M 5×6 of rank 3
    tch::manual_seed(5);
    let opts = (Kind::Double, tch::Device::Cpu);
    let code = Tensor::randn([12, 3, 8, 8], opts);
    let layer = |units: i64| {
        let map = Tensor::randn([units, 3], opts);
        Tensor::einsum("uc,bchw->buhw", &[&map, &code], None::<i64>)
    };
    let (a, b) = (layer(6), layer(5));
    let shapes = [
        Shape {
            units: 6,
            grid: (8, 8),
        },
        Shape {
            units: 5,
            grid: (8, 8),
        },
    ];
    let pairs = vec![(0, 1)];
    let run = |batch: usize, positions: Option<u64>| {
        let mut acc = Accumulator::new(2, pairs.clone(), Resize::Pool, tch::Device::Cpu);
        acc.sample_positions(positions, 11);
        for from in (0..12).step_by(batch) {
            let len = batch.min(12 - from) as i64;
            acc.add(&[a.narrow(0, from as i64, len), b.narrow(0, from as i64, len)])
                .unwrap();
        }
        let pair = acc.covariance(0, 1).unwrap();
        (pair.n, measure(&pair, Method::Svcca, 0.99).unwrap())
    };
    let (n_all, all) = run(4, None);
    assert_eq!(n_all, 12.0 * 64.0);
    // a budget one input with every position exceeds: batch 1 and a sample of positions
    let budget = estimate(&shapes, &pairs, 1, None).total - 1;
    let p = plan(&shapes, &pairs, 4, None, budget, 11).unwrap();
    let k = p.positions.expect("the rule samples positions");
    assert!(p.batch == 1 && k < 64 && p.rule.is_some() && p.planned.total <= budget);
    let (n_sampled, sampled) = run(p.batch, p.positions);
    assert_eq!(n_sampled, 12.0 * k as f64);
    assert_eq!(all.dims, (3, 3));
    assert_eq!(sampled.dims, (3, 3));
    for s in [&all, &sampled] {
        assert!((s.value - 1.0).abs() < 1e-9, "{}", s.value);
    }
    // the sample depends on each input's place, not on the batching
    let (_, rebatched) = run(5, Some(k));
    assert!(
        sampled
            .rho
            .iter()
            .zip(&rebatched.rho)
            .all(|(x, y)| (x - y).abs() < 1e-12)
    );
    // a random pair is not 1 on the same sample: the test could fail
    let noise = Tensor::randn([12, 5, 8, 8], opts);
    let mut acc = Accumulator::new(2, pairs.clone(), Resize::Pool, tch::Device::Cpu);
    acc.sample_positions(Some(k), 11);
    acc.add(&[a.shallow_clone(), noise]).unwrap();
    let r = measure(&acc.covariance(0, 1).unwrap(), Method::Svcca, 0.99).unwrap();
    assert!(r.value < 0.9, "{}", r.value);
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
    assert_eq!(r["memory"]["batch"], 16);
    assert!(r["memory"]["rule"].is_null() && r["memory"]["positions"].is_null());
    // under a 1 MiB budget the batch drops to 1 and positions are sampled, recorded and printed
    let small = dir.join("small");
    let o = common::gandissect(&[
        "analyze",
        "similarity",
        "--model",
        "world-vgg16",
        "--layer",
        "relu4_3,relu5_3",
        "--samples",
        "6",
        "--memory-budget",
        "0.001",
        "--out",
        small.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("positions per input"), "{stdout}");
    let r = read_json(&small.join("similarity.json"));
    let k = r["memory"]["positions"]
        .as_u64()
        .expect("positions sampled");
    assert_eq!(r["memory"]["batch"], 1);
    assert!(r["memory"]["planned"]["total"].as_u64().unwrap() <= 1_073_742);
    let pair = &r["pairs"].as_array().unwrap()[1];
    assert_eq!(pair["data_points"].as_u64().unwrap(), 6 * k.min(64));
    let html = std::fs::read_to_string(small.join("similarity.html")).unwrap();
    assert!(
        html.contains("positions per input"),
        "the page states the sample"
    );
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
