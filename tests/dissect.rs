//! Dissection end to end on tiny random networks: IoU against per-pixel loops, resume, shards,
//! outputs and bad input.

mod common;

use common::{scratch, tiny_generator, tiny_segmenter};
use gandissect::cut::Cut;
use gandissect::dissect::compare::label_agreement;
use gandissect::dissect::upsample::upsample;
use gandissect::dissect::{
    DissectOptions, DissectResult, Labeller, MergeOptions, Model, Outcome, Shard, Sketch, merge,
    run, run_with,
};
use gandissect::nets::layered::LayeredNet;
use gandissect::nets::proggan::ProGan;
use gandissect::nets::vgg::{Normalization, Vgg, VggConfig};
use gandissect::segment::load_segmenter;
use gandissect::segment::world_labels;
use gandissect::stats::{IouTally, RunningQuantile, RunningTopK, Statistic, StatsFile};
use gandissect::zsample::z_rows;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor, nn};

/// A random narrow VGG-16 saved to a file.
fn tiny_classifier(dir: &Path) -> String {
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Vgg::trainable(
        &vs.root(),
        VggConfig::scaled(1.0 / 16.0, 1, 16, 6),
        Normalization::imagenet(),
    );
    let path = dir.join("vgg.safetensors");
    Tensor::write_safetensors(&net.named_tensors(), &path).unwrap();
    path.to_string_lossy().into_owned()
}

/// Options for the tiny generator: 12 images in batches of 5, 16×16 segmentation, exact sketch.
fn options(model: &str, seg: &str, out: &Path) -> DissectOptions {
    let mut o = DissectOptions::new(model, &["layer2", "layer4"], seg, 12, out);
    o.seg_size = 16;
    o.batch = 5;
    o.topk = 4;
    o.report_images = 3;
    o.sketch = Sketch {
        resolution: 1 << 14,
        sample_floor: None,
    };
    o
}

fn finished(outcome: Outcome) -> DissectResult {
    match outcome {
        Outcome::Finished(r) => *r,
        other => panic!("expected a finished dissection, got {other:?}"),
    }
}

fn tensors_of<S: Statistic>(s: &S) -> Vec<(String, Tensor)> {
    s.to_tensors("x")
}

/// Asserts that two statistics files hold bit-identical statistics for `layers`.
fn assert_same_stats(a: &Path, b: &Path, layers: &[&str], pass: u8) {
    let (fa, fb) = (
        StatsFile::load_any(a).unwrap(),
        StatsFile::load_any(b).unwrap(),
    );
    let same = |x: Vec<(String, Tensor)>, y: Vec<(String, Tensor)>, what: &str| {
        assert_eq!(x.len(), y.len());
        for ((n, t), (_, u)) in x.iter().zip(&y) {
            assert!(t.equal(u), "{what}: tensor {n} differs");
        }
    };
    for l in layers {
        if pass == 1 {
            let qa: RunningQuantile = fa.get(&format!("{l}.quantile"), Device::Cpu).unwrap();
            let qb: RunningQuantile = fb.get(&format!("{l}.quantile"), Device::Cpu).unwrap();
            same(tensors_of(&qa), tensors_of(&qb), "quantile");
            let ta: RunningTopK = fa.get(&format!("{l}.topk"), Device::Cpu).unwrap();
            let tb: RunningTopK = fb.get(&format!("{l}.topk"), Device::Cpu).unwrap();
            same(tensors_of(&ta), tensors_of(&tb), "topk");
        } else {
            let ia: IouTally = fa.get(&format!("{l}.iou"), Device::Cpu).unwrap();
            let ib: IouTally = fb.get(&format!("{l}.iou"), Device::Cpu).unwrap();
            same(tensors_of(&ia), tensors_of(&ib), "iou");
        }
    }
}

#[test]
fn pipeline_iou_equals_per_pixel_loops() {
    let dir = scratch("loops");
    let model = tiny_generator(&dir, "g1.safetensors", 1);
    let seg = tiny_segmenter(&dir, None);
    let opts = options(&model, &seg, &dir.join("out"));
    let result = finished(run(&opts).unwrap());

    let _guard = tch::no_grad_guard();
    let g = ProGan::load(Path::new(&model), Device::Cpu).unwrap();
    let segmenter = load_segmenter(&seg, Device::Cpu).unwrap();
    let ids: Vec<u64> = (0..12).collect();
    let z = z_rows(1, &ids, 16, Device::Cpu).unwrap();
    let images = g.forward(&z).clamp(-1.0, 1.0);
    let labels = Vec::<i64>::try_from(segmenter.segment(&images).unwrap().reshape([-1])).unwrap();
    let nl = world_labels().len();
    for layer in ["layer2", "layer4"] {
        let act = Cut::new(&g, layer).unwrap().prefix(&z);
        let c = act.size()[1] as usize;
        let maxima =
            Vec::<f32>::try_from(act.amax([2i64, 3].as_slice(), false).reshape([-1])).unwrap();
        let up = Vec::<f32>::try_from(upsample(&act, 16).unwrap().reshape([-1])).unwrap();
        let lr = result.layer(layer).unwrap();
        let level: Vec<f32> = lr.units.iter().map(|u| u.level).collect();
        let (mut isect, mut active, mut labelled) =
            (vec![0i64; nl * c], vec![0i64; c], vec![0i64; nl]);
        for img in 0..12 {
            for p in 0..256 {
                let lab = labels[img * 256 + p] as usize;
                labelled[lab] += 1;
                for u in 0..c {
                    if up[(img * c + u) * 256 + p] > level[u] {
                        active[u] += 1;
                        isect[lab * c + u] += 1;
                    }
                }
            }
        }
        let tally = result.tally(layer).unwrap();
        assert_eq!(
            Vec::<i64>::try_from(tally.active_pixels().unwrap()).unwrap(),
            active
        );
        assert_eq!(
            Vec::<i64>::try_from(tally.label_pixels()).unwrap(),
            labelled
        );
        let table = result.iou_table(layer).unwrap();
        let mut some_positive = false;
        for lab in 1..nl {
            let ranking = result
                .unit_ranking(layer, &world_labels()[lab].name)
                .unwrap();
            for u in 0..c {
                let i = isect[lab * c + u] as f64;
                let union = (active[u] + labelled[lab]) as f64 - i;
                let want = if union > 0.0 { i / union } else { 0.0 };
                let got = table.double_value(&[lab as i64, u as i64]);
                assert!(
                    (got - want).abs() < 1e-6,
                    "{layer} label {lab} unit {u}: {got} vs {want}"
                );
                let ranked = ranking.iter().find(|r| r.0 == u).unwrap().1;
                assert!((f64::from(ranked) - want).abs() < 1e-6);
                some_positive |= want > 0.0;
            }
            assert!(
                ranking.windows(2).all(|w| w[0].1 >= w[1].1),
                "ranking is not sorted"
            );
        }
        assert!(
            some_positive,
            "{layer}: every IoU is zero, the check is vacuous"
        );
        // The best label and the top images follow from the same numbers.
        for u in &lr.units {
            let best = (1..nl)
                .max_by(|&a, &b| {
                    let (ia, ib) = (
                        table.double_value(&[a as i64, u.unit as i64]),
                        table.double_value(&[b as i64, u.unit as i64]),
                    );
                    ia.total_cmp(&ib).then(b.cmp(&a))
                })
                .unwrap();
            assert_eq!(u.label, world_labels()[best].name);
            let mut per_image: Vec<(f32, u64)> = (0..12)
                .map(|i| (maxima[i * c + u.unit], i as u64))
                .collect();
            per_image.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let want: Vec<u64> = per_image.iter().take(4).map(|p| p.1).collect();
            let got: Vec<u64> = u.top.iter().map(|t| t.image).collect();
            assert_eq!(got, want, "unit {} top images", u.unit);
            assert_eq!(u.top[0].maxact, per_image[0].0);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resume_after_interruption_and_a_failed_save_equals_one_run() {
    let dir = scratch("resume");
    let model = tiny_generator(&dir, "g2.safetensors", 2);
    let seg = tiny_segmenter(&dir, None);
    // A sketch that compacts and samples, so its random state must survive the restarts.
    let sketch = Sketch {
        resolution: 256,
        sample_floor: Some(512),
    };
    let mut whole = options(&model, &seg, &dir.join("whole"));
    whole.sketch = sketch;
    let one = finished(run(&whole).unwrap());

    let mut part = options(&model, &seg, &dir.join("part"));
    part.sketch = sketch;
    part.save_every = 1;
    part.max_batches = Some(2);
    match run(&part).unwrap() {
        Outcome::Interrupted {
            pass: 1,
            images: 10,
            of: 12,
        } => {}
        other => panic!("expected an interruption in pass 1, got {other:?}"),
    }
    // A failed save (the temporary file cannot be created) leaves the last good file.
    let p1 = part.out.join("stats/pass1.shard-0-of-1.safetensors");
    let tmp = PathBuf::from(format!("{}.{}.tmp", p1.display(), std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    part.max_batches = None;
    let err = format!("{:#}", run(&part).unwrap_err());
    assert!(err.contains("cannot write"), "{err}");
    std::fs::remove_dir_all(&tmp).unwrap();
    let file = StatsFile::load_any(&p1).unwrap();
    let progress: gandissect::dissect::passes::Progress =
        file.get("progress", Device::Cpu).unwrap();
    assert_eq!(progress.images, 10);
    // Resume into pass 2, stop there, then finish.
    part.max_batches = Some(2);
    match run(&part).unwrap() {
        Outcome::Interrupted {
            pass: 2,
            images: 5,
            of: 12,
        } => {}
        other => panic!("expected an interruption in pass 2, got {other:?}"),
    }
    part.max_batches = None;
    let resumed = finished(run(&part).unwrap());
    assert_same_stats(
        &whole.out.join("stats/pass1.safetensors"),
        &part.out.join("stats/pass1.safetensors"),
        &["layer2", "layer4"],
        1,
    );
    assert_same_stats(
        &whole.out.join("stats/pass2-q0.99.safetensors"),
        &part.out.join("stats/pass2-q0.99.safetensors"),
        &["layer2", "layer4"],
        2,
    );
    assert_eq!(one.layers, resumed.layers);
    // A second run of a finished dissection changes nothing.
    let again = finished(run(&part).unwrap());
    assert_eq!(again.layers, resumed.layers);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two runs of the same dissection into one directory at once (two users of one cache): the
/// second waits for the first, then finds its statistics and finishes with the same result.
/// A dissection of models loaded by the caller equals one that loads them by name, bit for bit,
/// and hands the models back; settings it cannot honour are refused.
#[test]
fn loaded_models_dissect_like_named_ones() {
    let dir = scratch("loaded");
    let model = tiny_generator(&dir, "g3.safetensors", 3);
    let seg = tiny_segmenter(&dir, None);
    let (by_name, loaded) = (dir.join("by-name"), dir.join("loaded"));
    let a = finished(run(&options(&model, &seg, &by_name)).unwrap());
    let opts = options(&model, &seg, &loaded);
    let mut m = Model::load(&model, opts.stream, Device::Cpu).unwrap();
    let mut l = Labeller::load(&seg, &m, Device::Cpu).unwrap();
    let b = finished(run_with(&opts, &mut m, &mut l).unwrap());
    assert_eq!(a.layers, b.layers);
    assert_eq!(a.settings, b.settings);
    use gandissect::dissect::stats_paths::{pass1_merged, pass2_merged};
    let layers = ["layer2", "layer4"];
    assert_same_stats(&pass1_merged(&by_name), &pass1_merged(&loaded), &layers, 1);
    let q = opts.quantile;
    assert_same_stats(
        &pass2_merged(&by_name, q),
        &pass2_merged(&loaded, q),
        &layers,
        2,
    );
    // the models come back, and a second run reads the finished statistics
    let again = finished(run_with(&opts, &mut m, &mut l).unwrap());
    assert_eq!(again.layers, b.layers);
    assert!(m.into_generator().is_some());

    let mut m = Model::load(&model, 2, Device::Cpu).unwrap();
    let e = run_with(&opts, &mut m, &mut l).unwrap_err().to_string();
    assert!(e.contains("latent stream 2"), "{e}");
}

#[test]
fn concurrent_runs_into_one_directory_wait_for_each_other() {
    let dir = scratch("concurrent");
    let model = tiny_generator(&dir, "g4.safetensors", 4);
    let seg = tiny_segmenter(&dir, None);
    // saving after every batch, so that unguarded runs would write the same files at once
    let opts = |out: &str| {
        let mut o = options(&model, &seg, &dir.join(out));
        o.samples = 60;
        o.save_every = 1;
        o
    };
    let one = finished(run(&opts("one")).unwrap());
    let shared = opts("shared");
    let results: Vec<DissectResult> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2).map(|_| s.spawn(|| run(&shared))).collect();
        handles
            .into_iter()
            .map(|h| finished(h.join().unwrap().unwrap()))
            .collect()
    });
    for r in &results {
        assert_eq!(r.layers, one.layers);
    }
    assert_same_stats(
        &dir.join("one/stats/pass2-q0.99.safetensors"),
        &dir.join("shared/stats/pass2-q0.99.safetensors"),
        &["layer2", "layer4"],
        2,
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shards_merged_equal_one_run() {
    let dir = scratch("shards");
    let model = tiny_generator(&dir, "g3.safetensors", 3);
    let seg = tiny_segmenter(&dir, None);
    let single = finished(run(&options(&model, &seg, &dir.join("single"))).unwrap());
    let out = dir.join("sharded");
    let shard_opts = |i| {
        let mut o = options(&model, &seg, &out);
        o.shard = Shard { index: i, count: 3 };
        o
    };
    let merge_opts = MergeOptions {
        dirs: vec![out.clone()],
        out: None,
        miniou: 0.04,
        report_images: 3,
        device: Device::Cpu,
    };
    for i in 0..2 {
        assert!(matches!(
            run(&shard_opts(i)).unwrap(),
            Outcome::ShardDone { pass: 1 }
        ));
    }
    let err = merge(&merge_opts).unwrap_err().to_string();
    assert!(err.contains("shards 2/3 are missing"), "{err}");
    assert!(matches!(
        run(&shard_opts(2)).unwrap(),
        Outcome::ShardDone { pass: 1 }
    ));
    assert!(matches!(merge(&merge_opts).unwrap(), Outcome::Pass1Merged));
    for i in 0..3 {
        assert!(matches!(
            run(&shard_opts(i)).unwrap(),
            Outcome::ShardDone { pass: 2 }
        ));
    }
    let merged = finished(merge(&merge_opts).unwrap());
    assert_same_stats(
        &dir.join("single/stats/pass2-q0.99.safetensors"),
        &out.join("stats/pass2-q0.99.safetensors"),
        &["layer2", "layer4"],
        2,
    );
    assert_eq!(single.layers, merged.layers);
    assert!(out.join("report.html").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn classifier_report_references_existing_images() {
    let dir = scratch("report");
    let model = tiny_classifier(&dir);
    let out = dir.join("out");
    let mut opts = DissectOptions::new(&model, &["conv4_3"], "truth", 10, &out);
    opts.seg_size = 16;
    opts.batch = 4;
    opts.topk = 5;
    let result = finished(run(&opts).unwrap());
    let loaded = DissectResult::load(&out).unwrap();
    assert_eq!(loaded.layers, result.layers);
    let layer = &loaded.layers[0];
    assert_eq!(layer.layer, "features.21");
    assert_eq!(layer.units.len(), 32);
    // Levels at 0.99 are the units' thresholds; 0.995 is at least as high.
    let l99 = loaded.levels("features.21", 0.99).unwrap();
    let l995 = loaded.levels("features.21", 0.995).unwrap();
    for (u, (a, b)) in layer.units.iter().zip(l99.iter().zip(&l995)) {
        assert_eq!(u.level, *a);
        assert!(b >= a);
    }
    let counted: usize = layer.counts.values().sum();
    assert_eq!(counted, layer.interpretable);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") || html.contains("No interpretable units"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    let srcs: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(srcs.len(), 32);
    for src in srcs {
        let img = image::open(out.join(src)).unwrap_or_else(|e| panic!("{src}: {e}"));
        // Five highlighted 128-pixel thumbnails with 2-pixel gaps.
        assert_eq!((img.width(), img.height()), (5 * 130 + 2, 132), "{src}");
    }
    // Comparing labels: a dissection agrees with itself; a relabelled unit is reported.
    let same = label_agreement(&loaded, &result, "features.21").unwrap();
    assert_eq!((same.same_label, same.units), (32, 32));
    assert_eq!(same.interpretable_in_both, layer.interpretable);
    let mut other = loaded.clone();
    let unit = &mut other.layers[0].units[7];
    unit.label = if unit.label == "sky" {
        "tree".into()
    } else {
        "sky".into()
    };
    let diff = label_agreement(&loaded, &other, "features.21").unwrap();
    assert_eq!(diff.same_label, 31);
    assert_eq!(diff.differing.len(), 1);
    assert_eq!(diff.differing[0].0, 7);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let dir = scratch("bad");
    let model = tiny_generator(&dir, "g4.safetensors", 4);
    let seg = tiny_segmenter(&dir, None);
    let err = |o: &DissectOptions| format!("{:#}", run(o).unwrap_err());
    let base = options(&model, &seg, &dir.join("out"));

    let mut o = base.clone();
    o.layers = vec!["layer99".into()];
    assert!(err(&o).contains("unknown layer 'layer99'"));
    let mut o = base.clone();
    o.segmenter = "no-such-seg".into();
    assert!(err(&o).contains("unknown segmenter 'no-such-seg'"));
    let mut o = base.clone();
    o.samples = 0;
    assert!(err(&o).contains("--samples must be at least 1"));
    let mut o = base.clone();
    o.seg_size = 0;
    assert!(
        err(&o).contains("--seg-size must be between 1 and 4096"),
        "{}",
        err(&o)
    );
    let mut o = base.clone();
    o.segmenter = "truth".into();
    assert!(err(&o).contains("only for world images"));
    let mut o = base.clone();
    o.segmenter = tiny_segmenter(&dir.join("few"), Some(5));
    assert!(err(&o).contains("outputs but 5 labels"), "{}", err(&o));
    let mut o = base.clone();
    assert!("5/4".parse::<Shard>().is_err());
    o.shard = Shard { index: 3, count: 4 };
    o.samples = 3;
    assert!(err(&o).contains("has no images"));

    // Statistics of other settings or another model are refused on resume.
    let mut o = base.clone();
    o.max_batches = Some(1);
    assert!(matches!(run(&o).unwrap(), Outcome::Interrupted { .. }));
    o.batch = 4;
    let e = err(&o);
    assert!(e.contains("batch") && e.contains("delete"), "{e}");
    let mut other = base.clone();
    std::fs::create_dir_all(dir.join("other")).unwrap();
    other.model = tiny_generator(&dir.join("other"), "g9.safetensors", 9);
    std::fs::copy(&other.model, &model).unwrap();
    let e = err(&base);
    assert!(e.contains("weights"), "{e}");
    // A damaged statistics file is refused, not trusted.
    let p1 = base.out.join("stats/pass1.shard-0-of-1.safetensors");
    std::fs::write(&p1, b"not statistics").unwrap();
    let e = err(&base);
    assert!(e.contains("not a safetensors file"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The semantic check on the shipped models: world-proggan's layer4 has interpretable units for
/// at least five concepts, among them at least three tree units and a door or window unit. The
/// dissection is the one the painting tests share (1000 images, world-seg).
#[test]
fn shipped_generator_has_tree_and_door_units_in_layer4() {
    let result = common::shipped_dissection();
    assert_eq!(result.settings.common.samples, 1000);
    assert_eq!(result.settings.segmenter, "world-seg");
    let counts = &result.layer("layer4").unwrap().counts;
    let count = |c: &str| counts.get(c).copied().unwrap_or(0);
    assert!(count("tree") >= 3, "too few tree units: {counts:?}");
    assert!(
        count("door") + count("window") >= 1,
        "no door or window unit: {counts:?}"
    );
    assert!(counts.len() >= 5, "too few concepts: {counts:?}");
}
