//! Semantic painting end to end: the planner against a real dissection, stroke compositing,
//! no-op masks, the context check inside the painter, batch scripts (resume, bad lines), the
//! command line on `random:0` with bad input, and the direction of the effects on the shipped
//! models.

mod common;

use common::{Scratch, gandissect, scratch, shipped_session, tiny_generator, tiny_segmenter};
use gandissect::cut::Cut;
use gandissect::dissect::{DissectOptions, DissectResult, Outcome, Shard, Sketch, run};
use gandissect::edit::ablation::{AblationOptions, UnitRanking, run_ablation};
use gandissect::edit::insertion_context::{ContextOptions, run_context};
use gandissect::edit::plan::edits_of;
use gandissect::edit::script::{BatchOptions, run_batch};
use gandissect::edit::unit_effect::EffectOptions;
use gandissect::edit::{
    Action, DissectionSource, Effect, PlanOptions, ScenePlan, Session, SessionOptions,
};
use gandissect::segment::world_labels;
use gandissect::segment::{Label, Segmenter};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use tch::{Kind, Tensor};

/// Dissects `model` at layer4 over `samples` images (IoU cut-off 0, so every concept the
/// segmenter ever draws has units).
fn dissect(model: &str, seg: &str, samples: u64, seg_size: i64, out: &Path) -> DissectResult {
    let mut o = DissectOptions::new(model, &["layer4"], seg, samples, out);
    o.seg_size = seg_size;
    o.batch = 8;
    o.topk = 4;
    o.miniou = 0.0;
    o.report_images = 1;
    o.shard = Shard::default();
    o.sketch = Sketch {
        resolution: 1 << 14,
        sample_floor: None,
    };
    match run(&o).unwrap() {
        Outcome::Finished(_) => DissectResult::load(out).unwrap(),
        other => panic!("dissection did not finish: {other:?}"),
    }
}

/// The concepts of a layer that have a unit with IoU > 0, best first.
fn detected(d: &DissectResult) -> Vec<String> {
    let mut c: Vec<(String, f32)> = d
        .layer("layer4")
        .unwrap()
        .concepts
        .iter()
        .map(|c| (c.concept.clone(), c.units[0].iou))
        .filter(|c| c.1 > 0.0)
        .collect();
    c.sort_by(|a, b| b.1.total_cmp(&a.1));
    c.into_iter().map(|c| c.0).collect()
}

struct Fixture {
    dir: Scratch,
    model: String,
    seg: String,
    dissection: PathBuf,
    concepts: Vec<String>,
}

/// A tiny generator and segmenter with a dissection of them.
fn fixture(name: &str) -> Fixture {
    let dir = scratch(name);
    let model = tiny_generator(&dir, "g.safetensors", 1);
    let seg = tiny_segmenter(&dir, None);
    let dissection = dir.join("dissection");
    let d = dissect(&model, &seg, 12, 16, &dissection);
    let concepts = detected(&d);
    assert!(
        concepts.len() >= 2,
        "the fixture needs two detected concepts"
    );
    write_masks(&dir, 16);
    Fixture {
        dir,
        model,
        seg,
        dissection,
        concepts,
    }
}

fn session(f: &Fixture, q: f64) -> Session {
    let mut o = SessionOptions::new(&f.model);
    o.segmenter = f.seg.clone();
    o.value_quantile = q;
    o.dissection = DissectionSource {
        dir: Some(f.dissection.clone()),
        ..Default::default()
    };
    Session::open(&o).unwrap()
}

/// Masks of a `side`-pixel image: left half, top-left quarter, empty, and a 2:1 one.
fn write_masks(dir: &Path, side: u32) {
    let m = |w: u32, h: u32, f: &dyn Fn(u32, u32) -> bool, name: &str| {
        image::GrayImage::from_fn(w, h, |x, y| image::Luma([if f(x, y) { 255 } else { 0 }]))
            .save(dir.join(name))
            .unwrap();
    };
    m(side, side, &|x, _| x < side / 2, "left.png");
    m(
        side,
        side,
        &|x, y| x < side / 2 && y < side / 2,
        "quarter.png",
    );
    m(side, side, &|_, _| false, "empty.png");
    m(2 * side, side, &|x, _| x < side, "wide.png");
}

fn plan_opts(k: usize) -> PlanOptions {
    PlanOptions {
        k,
        ..Default::default()
    }
}

#[test]
fn planner_takes_the_dissections_top_k_and_its_levels() {
    let f = fixture("plan");
    let d = DissectResult::load(&f.dissection).unwrap();
    let concept = &f.concepts[0];
    let ranking = d.unit_ranking("layer4", concept).unwrap();
    for q in [0.99, 0.995] {
        let s = session(&f, q);
        let levels = d.levels("layer4", q).unwrap();
        let add = s
            .plan_from_file(
                Action::Add,
                concept,
                &f.dir.join("left.png"),
                false,
                &plan_opts(3),
            )
            .unwrap();
        let want: Vec<usize> = ranking[..3].iter().map(|r| r.0).collect();
        assert_eq!(add.units, want);
        let want_values: Vec<f32> = want.iter().map(|&u| levels[u]).collect();
        assert_eq!(add.values, want_values);
        assert!(add.values.iter().all(|v| *v > 0.0));
        let rm = s
            .plan_from_file(
                Action::Remove,
                concept,
                &f.dir.join("left.png"),
                false,
                &plan_opts(3),
            )
            .unwrap();
        assert_eq!(rm.units, want);
        assert_eq!(rm.values, [0.0; 3]);
    }
    // 0.995 levels are at least the 0.99 ones
    let (a, b) = (
        d.levels("layer4", 0.99).unwrap(),
        d.levels("layer4", 0.995).unwrap(),
    );
    assert!(a.iter().zip(&b).all(|(x, y)| x <= y));
}

#[test]
fn strokes_composite_in_order_and_empty_masks_change_nothing() {
    let f = fixture("order");
    let s = session(&f, 0.99);
    let painter = s.painter().unwrap();
    let cut = Cut::new(&s.generator, "layer4").unwrap();
    let h = cut.prefix(&painter.latents(&[3]).unwrap());
    let c = &f.concepts[0];
    let named = PlanOptions {
        units: Some(vec![0, 1, 2]),
        ..Default::default()
    };
    let add = s
        .plan_from_file(Action::Add, c, &f.dir.join("left.png"), false, &named)
        .unwrap();
    let rm = s
        .plan_from_file(Action::Remove, c, &f.dir.join("quarter.png"), false, &named)
        .unwrap();
    let strokes = vec![add, rm];
    let both = cut.edit(&h, &edits_of(&strokes)).unwrap();
    let one_by_one = cut
        .edit(
            &cut.edit(&h, &[strokes[0].edit()]).unwrap(),
            &[strokes[1].edit()],
        )
        .unwrap();
    assert!(both.allclose(&one_by_one, 1e-6, 1e-6, false));
    // the later stroke wins where they overlap: the quarter is zero, the rest of the left half
    // is at the levels
    let q = both.narrow(2, 0, 4).narrow(3, 0, 4).narrow(1, 0, 3);
    assert_eq!(f64::try_from(q.abs().sum(Kind::Float)).unwrap(), 0.0);
    let lower = both.get(0).get(1).get(6).get(1);
    assert_eq!(f64::try_from(lower).unwrap() as f32, strokes[0].values[1]);
    let swapped = cut
        .edit(&h, &[strokes[1].edit(), strokes[0].edit()])
        .unwrap();
    assert!(!swapped.equal(&both));

    // an all-zero mask: skipped by the painter, and a no-op through the cut as well
    let empty = s
        .plan_from_file(Action::Add, c, &f.dir.join("empty.png"), false, &named)
        .unwrap();
    assert!(empty.empty);
    assert!(cut.edit(&h, &[empty.edit()]).unwrap().equal(&h));
    let scene = ScenePlan {
        seed: 3,
        strokes: vec![empty],
        force: false,
    };
    let out = painter.paint(&[&scene]).unwrap().remove(0);
    assert!(out.edited.equal(&out.original));
    assert!(!out.changed());
    assert!(matches!(out.strokes[0].effect, Effect::Skipped { .. }));
}

/// Labels every pixel `sky`: no insertion can ever gain its concept.
struct AllSky(Vec<Label>);

impl Segmenter for AllSky {
    fn name(&self) -> &str {
        "all-sky"
    }
    fn labels(&self) -> &[Label] {
        &self.0
    }
    fn segment(&self, images: &Tensor) -> anyhow::Result<Tensor> {
        let s = images.size();
        Ok(Tensor::ones(
            [s[0], 1, s[2], s[3]],
            (Kind::Int64, images.device()),
        ))
    }
}

#[test]
fn rejected_insertions_are_dropped_unless_forced() {
    let f = fixture("reject");
    let mut s = session(&f, 0.99);
    s.segmenter = Box::new(AllSky(world_labels()));
    let named = PlanOptions {
        units: Some(vec![0, 1, 2, 3]),
        ..Default::default()
    };
    let painter = s.painter().unwrap();
    let mut outcomes = Vec::new();
    for force in [false, true] {
        let mut stroke = s
            .plan_from_file(Action::Add, "door", &f.dir.join("left.png"), false, &named)
            .unwrap();
        stroke.values = vec![50.0; 4];
        let scene = ScenePlan {
            seed: 5,
            strokes: vec![stroke],
            force,
        };
        outcomes.push(painter.paint(&[&scene]).unwrap().remove(0));
    }
    let (dropped, forced) = (&outcomes[0], &outcomes[1]);
    let Effect::Insertion(v) = &dropped.strokes[0].effect else {
        panic!("an insertion is judged")
    };
    assert!(
        !v.accepted && v.gained == 0 && v.context == ["sky"],
        "{v:?}"
    );
    assert!(
        dropped.strokes[0]
            .summary
            .contains("rejected: door on sky (+0 px")
    );
    assert!(!dropped.strokes[0].kept && dropped.edited.equal(&dropped.original));
    assert!(forced.strokes[0].kept && !forced.edited.equal(&forced.original));
}

#[test]
fn bad_requests_are_refused_with_the_fix() {
    let f = fixture("bad");
    let mut s = session(&f, 0.99);
    let c = f.concepts[0].clone();
    let plan = |s: &Session, concept: &str, mask: &str, stretch: bool, o: &PlanOptions| {
        s.plan_from_file(Action::Remove, concept, &f.dir.join(mask), stretch, o)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    };
    let err = plan(&s, &c, "wide.png", false, &plan_opts(2)).unwrap_err();
    assert!(
        err.contains("aspect ratios differ") && err.contains("--stretch"),
        "{err}"
    );
    plan(&s, &c, "wide.png", true, &plan_opts(2)).unwrap();
    let err = plan(&s, "dragon", "left.png", false, &plan_opts(2)).unwrap_err();
    assert!(
        err.contains("unknown concept 'dragon'") && err.contains("tree, building"),
        "{err}"
    );
    let out_of_range = PlanOptions {
        units: Some(vec![1, 99]),
        ..Default::default()
    };
    let err = plan(&s, &c, "left.png", false, &out_of_range).unwrap_err();
    assert!(
        err.contains("unit 99 is out of range: layer4 has 8 units (0..7)"),
        "{err}"
    );
    let err = plan(&s, &c, "left.png", false, &plan_opts(9)).unwrap_err();
    assert!(err.contains("has only 8 units"), "{err}");
    s.catalog.miniou = 1.0;
    let err = plan(&s, &c, "left.png", false, &plan_opts(2)).unwrap_err();
    assert!(
        err.contains(&format!("no unit of layer4 detects '{c}'")) && err.contains("--units"),
        "{err}"
    );
    // explicit units still work for such a concept
    let named = PlanOptions {
        units: Some(vec![1]),
        ..Default::default()
    };
    plan(&s, &c, "left.png", false, &named).unwrap();
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn batch_resumes_and_reports_bad_lines_by_number() {
    let f = fixture("batch");
    let s = session(&f, 0.99);
    let (a, b) = (&f.concepts[0], &f.concepts[1]);
    let lines = [
        format!(r#"{{"seed": 1, "edits": [{{"op": "remove", "concept": "{a}", "mask": "left.png"}}], "out": "one.png"}}"#),
        format!(r#"{{"seed": 2, "edits": [{{"op": "add", "concept": "{b}", "mask": "quarter.png"}}, {{"op": "remove", "concept": "{a}", "mask": "left.png"}}], "out": "sub/two.png"}}"#),
        r#"{"seed": 3, "edits": [{"op": "paint", "concept": "tree", "mask": "left.png"}], "out": "bad.png"}"#.to_string(),
        String::new(),
        format!(r#"{{"seed": 4, "edits": [{{"op": "remove", "concept": "{a}", "mask": "empty.png"}}], "out": "four.png"}}"#),
        r#"{"seed": 5, "edits": [], "out": "one.png"}"#.to_string(),
    ];
    let out = f.dir.join("batch");
    let script = f.dir.join("script.jsonl");
    let opts = BatchOptions {
        script: script.clone(),
        out: out.clone(),
        batch: 2,
        plan: plan_opts(3),
        stretch: false,
        force: true,
        progress: false,
    };
    // a first run over the first two lines only (as if killed after them)
    std::fs::write(&script, lines[..2].join("\n")).unwrap();
    let first = run_batch(&s, &opts).unwrap();
    assert_eq!(
        (first.painted, first.already_done, first.failed.len()),
        (2, 0, 0)
    );
    let one = std::fs::read(out.join("one.json")).unwrap();
    // a scene killed between its image and its record is painted again
    std::fs::remove_file(out.join("sub/two.json")).unwrap();
    std::fs::write(&script, lines.join("\n")).unwrap();
    let second = run_batch(&s, &opts).unwrap();
    assert_eq!(second.scenes, 5);
    assert_eq!((second.painted, second.already_done), (2, 1));
    let failed: Vec<(usize, &str)> = second
        .failed
        .iter()
        .map(|e| (e.line, e.error.as_str()))
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed[0].0 == 3 && failed[0].1.contains("unknown variant `paint`"),
        "{failed:?}"
    );
    assert!(
        failed[1].0 == 6 && failed[1].1.contains("already written by line 1"),
        "{failed:?}"
    );
    assert_eq!(second.warnings.len(), 1);
    assert_eq!(second.warnings[0].line, 5);
    assert_eq!(std::fs::read(out.join("one.json")).unwrap(), one);
    let manifest = read_lines(&out.join("manifest.jsonl"));
    let order: Vec<(u64, &str)> = manifest
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["image"].as_str().unwrap()))
        .collect();
    assert_eq!(order, [(1, "one.png"), (2, "two.png"), (5, "four.png")]);
    assert_eq!(manifest[1]["strokes"].as_array().unwrap().len(), 2);
    assert_eq!(manifest[2]["changed"], Value::Bool(false));
    assert_eq!(
        std::fs::read(out.join("four.png")).unwrap(),
        std::fs::read(out.join("four-original.png")).unwrap()
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(summary["summary"]["removals"], 2);
    assert_eq!(summary["summary"]["empty_strokes"], 1);
    // a third run has nothing left to paint
    let third = run_batch(&s, &opts).unwrap();
    assert_eq!((third.painted, third.already_done), (0, 3));
}

#[test]
fn analyses_measure_against_the_unedited_images() {
    let f = fixture("analyses");
    let s = session(&f, 0.995);
    let c = &f.concepts[0];
    let r = run_ablation(
        &s,
        &AblationOptions {
            concept: c.clone(),
            ks: vec![0, 3, 8],
            samples: 12,
            batch: 5,
            ranking: UnitRanking::Iou,
            overlap_allowed: false,
            progress: false,
        },
    )
    .unwrap();
    assert_eq!(r.points[0].removed, 0.0);
    assert_eq!(r.points[0].ci99, 0.0);
    assert_eq!(r.points[2].units.len(), 8);
    // fractions after ablation still sum to one over the labels (one channel, none included)
    for p in &r.points {
        let total: f64 = p.fractions.values().sum();
        assert!(total <= 1.0 + 1e-9, "{total}");
    }
    let ctx = run_context(
        &s,
        &ContextOptions {
            concept: c.clone(),
            k: 3,
            samples: 2,
            min_count: 1,
            progress: false,
        },
    )
    .unwrap();
    // every cell of every image has one centre label (one channel), "none" not counted
    let cells: u64 = ctx.rows.iter().map(|r| r.count).sum();
    assert!(cells <= 2 * 64 && cells > 0, "{cells}");
    let d = DissectResult::load(&f.dissection).unwrap();
    assert_eq!(
        ctx.values[0],
        d.levels("layer4", 0.995).unwrap()[ctx.units[0]]
    );
}

/// The stacked sweeps of the effect ranking agree with zeroing the chosen units through the
/// removal curve on the same images, round by round, whatever the batching.
#[test]
fn effect_ranking_matches_the_removal_curve_on_its_images() {
    let f = fixture("effects");
    let s = session(&f, 0.99);
    let c = &f.concepts[0];
    let opts = EffectOptions {
        first_id: 0,
        samples: 6,
        step: 1,
        pool: 8,
        batch: 4,
        copies: 3,
        ..EffectOptions::new(c)
    };
    let e = s.rank_by_effect(&opts, 3).unwrap();
    assert_eq!(e.single.len(), 8);
    assert_eq!(e.order.len(), 3);
    assert_eq!(e.rounds.len(), 3);
    // the first unit is the best single one
    let best = e.single.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(e.single[e.order[0]], best);
    assert_eq!(e.rounds[0], best);
    // batching and copies per forward do not change the ranking
    let other = s
        .rank_by_effect(
            &EffectOptions {
                batch: 6,
                copies: 8,
                ..opts.clone()
            },
            3,
        )
        .unwrap();
    assert_eq!(other.order, e.order);
    for (a, b) in e.single.iter().zip(&other.single) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
    let r = run_ablation(
        &s,
        &AblationOptions {
            concept: c.clone(),
            ks: vec![1, 2, 3],
            samples: 6,
            batch: 6,
            ranking: UnitRanking::Effect(opts.clone()),
            // the curve on the ranking's own images, to compare with its rounds
            overlap_allowed: true,
            progress: false,
        },
    )
    .unwrap();
    assert_eq!(r.ranking, "effect");
    for (i, p) in r.points.iter().enumerate() {
        assert_eq!(p.units, e.order[..i + 1]);
    }
    // two units a round: the first round takes the two best single units
    let two = s
        .rank_by_effect(
            &EffectOptions {
                step: 2,
                ..opts.clone()
            },
            2,
        )
        .unwrap();
    let mut singles: Vec<usize> = (0..8).collect();
    singles.sort_by(|&a, &b| e.single[b].total_cmp(&e.single[a]).then(a.cmp(&b)));
    assert_eq!(two.order, singles[..2]);
    assert_eq!(two.rounds.len(), 1);
    // with one unit a round, each round's measure is the curve on the same images
    for (i, want) in e.rounds.iter().enumerate() {
        let got = r.points[i].removed;
        assert!(
            (got - want).abs() < 1e-9,
            "k={}: curve {got} vs rounds {want}",
            i + 1
        );
    }
    // more units than the layer has are refused with the count
    let err = s.rank_by_effect(&opts, 9).unwrap_err().to_string();
    assert!(err.contains("only 8 units"), "{err}");
}

// ---- the command line on random:0 ----

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn edit_command_end_to_end_on_random_generator() {
    let dir = scratch("cli");
    let seg = tiny_segmenter(&dir, None);
    write_masks(&dir, 64);
    let dis = dir.join("dissection");
    let d = dissect("random:0", &seg, 8, 64, &dis);
    let concepts = detected(&d);
    let (a, b) = (concepts[0].as_str(), concepts[1].as_str());
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let base = [
        "--model",
        "random:0",
        "--segmenter",
        &seg,
        "--dissection",
        &p("dissection"),
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["edit"];
        args.extend_from_slice(&base);
        args.extend_from_slice(extra);
        gandissect(&args)
    };
    let o = run(&[
        "--seed",
        "7",
        "--remove",
        a,
        "--mask",
        &p("left.png"),
        "--add",
        b,
        "--mask",
        &p("quarter.png"),
        "--k",
        "5",
        "--force",
        "--out",
        &p("o/edited.png"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("o/edited.json")).unwrap()).unwrap();
    let units = |concept: &str| -> Vec<u64> {
        d.unit_ranking("layer4", concept).unwrap()[..5]
            .iter()
            .map(|r| r.0 as u64)
            .collect()
    };
    let got = |i: usize, key: &str| -> Vec<f64> {
        record["strokes"][i][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    assert_eq!(record["seed"], 7);
    assert_eq!(record["layer"], "layer4");
    assert_eq!(record["strokes"][0]["op"], "remove");
    assert_eq!(
        got(0, "units"),
        units(a).iter().map(|&u| u as f64).collect::<Vec<_>>()
    );
    assert_eq!(got(0, "values"), [0.0; 5]);
    assert_eq!(record["strokes"][0]["effect"]["kind"], "removal");
    let levels = d.levels("layer4", 0.99).unwrap();
    let want: Vec<f64> = units(b)
        .iter()
        .map(|&u| f64::from(levels[u as usize]))
        .collect();
    assert_eq!(got(1, "values"), want);
    assert_eq!(record["strokes"][1]["effect"]["kind"], "insertion");
    assert_eq!(record["strokes"][1]["kept"], true);
    let compare = image::open(dir.join("o/edited-compare.png")).unwrap();
    assert_eq!((compare.width(), compare.height()), (2 * 256 + 12, 256 + 8));
    assert_ne!(
        std::fs::read(dir.join("o/edited.png")).unwrap(),
        std::fs::read(dir.join("o/edited-original.png")).unwrap()
    );

    // an empty mask: a warning, and the image is the original bit for bit
    let o = run(&[
        "--seed",
        "7",
        "--remove",
        a,
        "--mask",
        &p("empty.png"),
        "--out",
        &p("e/x.png"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: mask") && stderr(&o).contains("is empty"));
    assert_eq!(
        std::fs::read(dir.join("e/x.png")).unwrap(),
        std::fs::read(dir.join("e/x-original.png")).unwrap()
    );

    let (wide, left, jpg) = (p("wide.png"), p("left.png"), p("x.jpg"));
    let cases: [(Vec<&str>, &str); 6] = [
        (vec!["--remove", a, "--mask", &wide], "pass --stretch"),
        (
            vec!["--remove", "dragon", "--mask", &left],
            "unknown concept 'dragon'",
        ),
        (
            vec!["--remove", a, "--mask", &left, "--units", "1,500"],
            "unit 500 is out of range: layer4 has 256 units",
        ),
        (
            vec!["--remove", a, "--mask", &left, "--units", "x"],
            "cannot read --units 'x'",
        ),
        (vec!["--add", a], "got 1 edits and 0 masks"),
        (
            vec!["--remove", a, "--mask", &left, "--out", &jpg],
            "must be a .png",
        ),
    ];
    for (extra, want) in cases {
        let mut args = extra.clone();
        if !args.contains(&"--out") {
            args.extend_from_slice(&["--out", "/nonexistent-dir-never-written/x.png"]);
        }
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let o = run(&[
        "--remove",
        a,
        "--mask",
        &p("wide.png"),
        "--stretch",
        "--out",
        &p("s/w.png"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // removals can take their units from the effect ranking, measured once and then reused
    let cache = p("effects");
    let effect_run = || {
        run(&[
            "--seed",
            "7",
            "--remove",
            a,
            "--mask",
            &p("left.png"),
            "--k",
            "3",
            "--rank",
            "effect",
            "--rank-samples",
            "2",
            "--dissect-cache",
            &cache,
            "--out",
            &p("e/edited.png"),
        ])
    };
    let first = effect_run();
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stderr(&first).contains("ranking the 3 units of layer4"));
    let saved: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert_eq!(saved.len(), 1);
    let ranking: Value =
        serde_json::from_str(&std::fs::read_to_string(saved[0].path()).unwrap()).unwrap();
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("e/edited.json")).unwrap()).unwrap();
    assert_eq!(record["strokes"][0]["units"], ranking["order"]);
    let again = effect_run();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("using the saved effect ranking"));

    // a batch ranks its removals the same way, from the same saved ranking
    std::fs::write(
        dir.join("effect.jsonl"),
        format!(
            "{{\"seed\": 7, \"edits\": [{{\"op\": \"remove\", \"concept\": \"{a}\", \"mask\": \"left.png\"}}], \"out\": \"e.png\"}}\n"
        ),
    )
    .unwrap();
    let mut args = vec!["batch".to_string(), p("effect.jsonl")];
    args.extend(base.iter().map(|s| s.to_string()));
    args.extend(
        [
            "--k",
            "3",
            "--rank",
            "effect",
            "--rank-samples",
            "2",
            "--dissect-cache",
            &cache,
            "--out",
            &p("be"),
        ]
        .map(String::from),
    );
    let o = gandissect(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("using the saved effect ranking"));
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("be/e.json")).unwrap()).unwrap();
    assert_eq!(record["strokes"][0]["units"], ranking["order"]);

    // effect-ranking images that overlap the measured ones are refused
    let mut args = vec!["ablate"];
    args.extend_from_slice(&base);
    let out = p("ab");
    args.extend_from_slice(&[
        "--concept",
        a,
        "--samples",
        "4",
        "--rank",
        "effect",
        "--rank-first-id",
        "2",
        "--out",
        &out,
    ]);
    let o = gandissect(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("overlap the measured ids 0..4") && err.contains("--rank-first-id"),
        "{err}"
    );

    // a dissection of other weights is refused
    let o = gandissect(&[
        "edit",
        "--model",
        "random:1",
        "--segmenter",
        &seg,
        "--dissection",
        &p("dissection"),
        "--remove",
        a,
        "--mask",
        &left,
        "--out",
        &p("m/x.png"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("was made for other weights (random:0) than random:1"),
        "{}",
        stderr(&o)
    );

    // without --dissection: dissected once into the cache, then reused
    let cached = |out: &str| {
        gandissect(&[
            "edit",
            "--model",
            "random:0",
            "--segmenter",
            &seg,
            "--dissect-cache",
            &p("cache"),
            "--dissect-samples",
            "8",
            "--remove",
            a,
            "--mask",
            &p("left.png"),
            "--units",
            "3,4",
            "--out",
            &p(out),
        ])
    };
    let o = cached("c/1.png");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no --dissection given: dissecting random:0"),
        "{}",
        stderr(&o)
    );
    let o = cached("c/2.png");
    assert!(
        stderr(&o).contains("using the cached dissection"),
        "{}",
        stderr(&o)
    );

    // batch: a bad line is named by number, the others are painted
    std::fs::write(
        dir.join("s.jsonl"),
        format!(
            "{{\"seed\": 1, \"edits\": [{{\"op\": \"remove\", \"concept\": \"{a}\", \"mask\": \"left.png\"}}], \"out\": \"a.png\"}}\n{{\"seed\": 2\n"
        ),
    )
    .unwrap();
    let mut args = vec!["batch".to_string(), p("s.jsonl")];
    args.extend(base.iter().map(|s| s.to_string()));
    args.extend(["--out".to_string(), p("b")]);
    let o = gandissect(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("line 2: EOF while parsing"),
        "{}",
        stderr(&o)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 scenes: 1 painted"));
    assert!(dir.join("b/a.png").exists() && dir.join("b/manifest.jsonl").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- direction on the shipped models ----

#[test]
fn removing_tree_units_removes_tree_pixels_on_the_shipped_generator() {
    let s = shipped_session(0.99);
    let r = run_ablation(
        &s,
        &AblationOptions {
            concept: "tree".into(),
            ks: vec![0, 20],
            samples: 256,
            batch: 32,
            ranking: UnitRanking::Iou,
            overlap_allowed: false,
            progress: false,
        },
    )
    .unwrap();
    let p = &r.points[1];
    assert!(
        p.removed > 0.25,
        "top-20 tree units removed only {:.2}",
        p.removed
    );
    assert!(p.removed - p.ci99 > 0.0, "{p:?}");
}

/// On the shipped generator, tree units chosen by their ablation effect on one set of images
/// remove more of the trees of other images than the same number of top units by IoU.
#[test]
fn effect_ranked_tree_units_remove_more_than_iou_ranked_ones_on_the_shipped_generator() {
    let s = shipped_session(0.99);
    let curve = |ranking: UnitRanking| {
        run_ablation(
            &s,
            &AblationOptions {
                concept: "tree".into(),
                ks: vec![8],
                samples: 128,
                batch: 32,
                ranking,
                overlap_allowed: false,
                progress: false,
            },
        )
        .unwrap()
        .points[0]
            .clone()
    };
    let by_effect = curve(UnitRanking::Effect(EffectOptions {
        samples: 32,
        ..EffectOptions::new("tree")
    }));
    let by_iou = curve(UnitRanking::Iou);
    assert!(
        by_effect.removed > by_iou.removed + 0.05,
        "top-8 by effect removed {:.3}, by IoU {:.3}",
        by_effect.removed,
        by_iou.removed
    );
}

/// The shipped generator's door units, ranked by the default dissection the tree test also uses,
/// add door where walls are and not in the sky or on trees.
#[test]
fn door_insertion_adds_more_door_on_walls_than_on_sky_or_trees() {
    let s = shipped_session(0.995);
    let r = run_context(
        &s,
        &ContextOptions {
            concept: "door".into(),
            k: 20,
            samples: 32,
            min_count: 1,
            progress: false,
        },
    )
    .unwrap();
    let mean = |c: &str| {
        r.rows
            .iter()
            .find(|row| row.context == c)
            .map(|row| row.mean)
    };
    let wall = mean("building").expect("building cells among 32 images");
    for other in ["sky", "tree"] {
        let m = mean(other).unwrap_or_else(|| panic!("{other} cells among 32 images"));
        assert!(
            wall > m,
            "door on building {wall:.2} px vs on {other} {m:.2} px"
        );
    }
    assert!(wall > 0.0);
}
