//! Cumulative ablation curves on a generator, on the tiny random generator and segmenter:
//! nothing removed is the intact generator, everything removed is the generator with the
//! layer's features all zero (computed here through the cut), seeded orders reproduce, and bad
//! input is refused clearly.

mod common;

use common::{gandissect, scratch, tiny_generator, tiny_segmenter};
use gandissect::analysis::ablation_curve::Order;
use gandissect::analysis::generator_curve::{
    GeneratorCurveOptions, GeneratorCurveReport, HELDOUT_FIRST_ID, generator_curves,
};
use gandissect::cut::Cut;
use gandissect::edit::verdict::label_fractions;
use gandissect::nets::proggan::ProGan;
use gandissect::segment::{Segmenter, load_segmenter};
use gandissect::zsample::z_rows;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Tensor};

const IMAGES: u64 = 12;
const BATCH: usize = 4;

struct Models {
    _dir: common::Scratch,
    model: String,
    seg: String,
    generator: ProGan,
    segmenter: Box<dyn Segmenter>,
}

fn models(name: &str, seed: i64) -> Models {
    let dir = scratch(name);
    let model = tiny_generator(&dir, "g.safetensors", seed);
    let seg = tiny_segmenter(&dir, None);
    Models {
        generator: ProGan::load(Path::new(&model), Device::Cpu).unwrap(),
        segmenter: load_segmenter(&seg, Device::Cpu).unwrap(),
        model,
        seg,
        _dir: dir,
    }
}

fn options(seed: u64) -> GeneratorCurveOptions {
    let mut o = GeneratorCurveOptions::new("layer4", 8, IMAGES, Device::Cpu);
    o.fractions = vec![0.0, 0.25, 0.5, 0.75, 1.0];
    o.draws = 3;
    o.seed = seed;
    o.noise = vec![0.0, 1.0];
    o.batch = BATCH;
    o.copies = 3;
    o
}

fn run(m: &Models, o: &GeneratorCurveOptions) -> GeneratorCurveReport {
    generator_curves(&m.generator, "tiny", m.segmenter.as_ref(), o).unwrap()
}

/// Per-image label distributions of the scenes the rest of the generator draws from `edit`ed
/// layer4 features, image ids `ids`, batch by batch as the analysis takes them.
fn distributions(m: &Models, edit: impl Fn(&Tensor) -> Tensor) -> Vec<Vec<f64>> {
    let _guard = tch::no_grad_guard();
    let cut = Cut::new(&m.generator, "layer4").unwrap();
    let labels = m.segmenter.labels().len() as i64;
    let ids: Vec<u64> = (HELDOUT_FIRST_ID..HELDOUT_FIRST_ID + IMAGES).collect();
    let mut rows = Vec::new();
    for chunk in ids.chunks(BATCH) {
        let z = z_rows(1, chunk, m.generator.z_dim() as usize, Device::Cpu).unwrap();
        let images = cut.suffix(&edit(&cut.prefix(&z))).clamp(-1.0, 1.0);
        let seg = m.segmenter.segment(&images).unwrap();
        let f: Vec<Vec<f64>> = Vec::try_from(&label_fractions(&seg, labels)).unwrap();
        for row in f {
            let total: f64 = row.iter().sum();
            rows.push(row.into_iter().map(|x| x / total).collect());
        }
    }
    rows
}

fn mean_by_label(m: &Models, rows: &[Vec<f64>]) -> BTreeMap<String, f64> {
    m.segmenter
        .labels()
        .iter()
        .enumerate()
        .skip(1)
        .map(|(l, label)| {
            let mean = rows.iter().map(|r| r[l]).sum::<f64>() / rows.len() as f64;
            (label.name.clone(), mean)
        })
        .collect()
}

fn assert_close(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>, what: &str) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, x) in a {
        assert!((x - b[k]).abs() < 1e-12, "{what}: {k} {x} against {}", b[k]);
    }
}

#[test]
fn nothing_removed_is_the_intact_generator_and_everything_removed_a_zero_layer() {
    let m = models("gencurve-ends", 1);
    let mut o = options(3);
    o.iou = Some((0..8).map(|u| f64::from(u % 3)).collect());
    let r = run(&m, &o);
    assert_eq!((r.units, r.images, r.layer.as_str()), (8, IMAGES, "layer4"));

    // the intact scenes, generated here
    let intact = distributions(&m, |h| h.shallow_clone());
    assert_close(&r.intact, &mean_by_label(&m, &intact), "intact");
    assert!(r.intact.values().any(|&f| f > 0.0));
    assert_eq!(r.curves.len(), 3, "random, activation, iou");
    for c in r.curves.iter().chain(r.noise.iter()) {
        let p = &c.points[0];
        assert_eq!((p.x, p.units), (0.0, 0));
        assert_eq!(p.distance, 0.0, "{}", c.order);
        assert_eq!(p.fractions, r.intact, "{}", c.order);
    }

    // every unit zeroed: the rest of the generator on all-zero features
    let zeroed = distributions(&m, |h| h.zeros_like());
    let want = mean_by_label(&m, &zeroed);
    assert_close(&r.all_removed, &want, "all removed");
    let tv: f64 = zeroed
        .iter()
        .zip(&intact)
        .map(|(a, b)| 0.5 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>())
        .sum::<f64>()
        / IMAGES as f64;
    assert!(tv > 0.0, "zeroing the layer changes the scenes");
    assert!((r.all_removed_distance - tv).abs() < 1e-12);
    for c in &r.curves {
        let last = c.points.last().unwrap();
        assert_eq!((last.x, last.units), (1.0, 8));
        assert!((last.distance - tv).abs() < 1e-12, "{}", c.order);
        assert_close(&last.fractions, &want, &c.order);
        if let Some((lo, hi)) = last.range {
            assert_eq!(lo, hi);
        }
    }

    // the scored orders rank the units by their scores
    let iou = r.curve(Order::Iou).unwrap();
    assert_eq!(&iou.ranking[..3], &[2, 5, 1]);
    let mut ranked = r.curve(Order::Activation).unwrap().ranking.clone();
    ranked.sort_unstable();
    assert_eq!(ranked, (0..8).collect::<Vec<i64>>());

    // an intermediate level: the first two IoU units zeroed, through the cut
    let half = distributions(&m, |h| {
        h.index_fill(1, &Tensor::from_slice(&[2i64, 5]), 0.0)
    });
    let point = &iou.points[1];
    assert_eq!(point.units, 2);
    assert_close(
        &point.fractions,
        &mean_by_label(&m, &half),
        "2 units zeroed",
    );
}

#[test]
fn seeded_random_orders_reproduce_and_other_seeds_differ() {
    let m = models("gencurve-seeds", 2);
    let a = run(&m, &options(11));
    let b = run(&m, &options(11));
    let c = run(&m, &options(12));
    let random = |r: &GeneratorCurveReport| r.curve(Order::Random).unwrap().clone();
    let (ra, rb, rc) = (random(&a), random(&b), random(&c));
    assert_eq!(ra.ranking, rb.ranking);
    for (p, q) in ra.points.iter().zip(&rb.points) {
        assert_eq!(
            (p.distance, p.range, &p.fractions),
            (q.distance, q.range, &q.fractions)
        );
    }
    let (na, nb) = (a.noise.unwrap(), b.noise.unwrap());
    assert_eq!(na.points[1].distance, nb.points[1].distance);
    assert!(na.points[1].distance > 0.0);
    assert_ne!(ra.ranking, rc.ranking);
    assert!(
        ra.points
            .iter()
            .zip(&rc.points)
            .any(|(p, q)| p.distance != q.distance),
        "another seed removes other units"
    );
    // the draws differ from one another: a spread at the middle levels
    let mid = &ra.points[2];
    let (lo, hi) = mid.range.unwrap();
    assert!(lo < hi && mid.sd.unwrap() > 0.0, "{mid:?}");
}

#[test]
fn bad_layers_levels_and_unit_counts_are_refused() {
    let m = models("gencurve-bad", 3);
    let err = |o: GeneratorCurveOptions| {
        generator_curves(&m.generator, "tiny", m.segmenter.as_ref(), &o)
            .unwrap_err()
            .to_string()
    };
    let mut o = options(0);
    o.layer = "layer40".into();
    let e = err(o);
    assert!(
        e.contains("unknown layer 'layer40'") && e.contains("layer4"),
        "{e}"
    );
    let mut o = options(0);
    o.layer = "output_16x16".into();
    assert!(err(o).contains("not a layer of units"));
    let mut o = options(0);
    o.iou = Some(vec![0.5; 3]);
    let e = err(o);
    assert!(
        e.contains("IoU is given for 3 units but layer4 has 8"),
        "{e}"
    );
    let mut o = options(0);
    o.fractions = vec![0.0, 1.5];
    assert!(err(o).contains("[0, 1]"));
    let mut o = options(0);
    o.scores = 0..HELDOUT_FIRST_ID + 1;
    assert!(err(o).contains("overlap"));

    // on the command line: the generator is recognised, and a bad layer is one clear line
    let out = scratch("gencurve-cli");
    let o = gandissect(&[
        "analyze",
        "ablation-curve",
        "--model",
        &m.model,
        "--segmenter",
        &m.seg,
        "--layer",
        "layer9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("unknown layer 'layer9'"), "{stderr}");
    assert!(!out.join("ablation_curve.json").exists());
}

#[test]
fn the_command_orders_by_a_dissection_of_the_same_weights_only() {
    let m = models("gencurve-dissection", 4);
    let dir = scratch("gencurve-dissection-out");
    let dissect = |model: &str, out: &Path| {
        let o = gandissect(&[
            "dissect",
            "--model",
            model,
            "--layer",
            "layer4",
            "--segmenter",
            &m.seg,
            "--samples",
            "8",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    dissect(&m.model, &dir.join("d"));
    let curve = |dissection: &Path, out: &Path| {
        gandissect(&[
            "analyze",
            "ablation-curve",
            "--model",
            &m.model,
            "--segmenter",
            &m.seg,
            "--dissection",
            dissection.to_str().unwrap(),
            "--samples",
            "4",
            "--heldout",
            "4",
            "--draws",
            "2",
            "--fractions",
            "0,0.5,1",
            "--noise",
            "0",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let o = curve(&dir.join("d"), &dir.join("c"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: GeneratorCurveReport =
        serde_json::from_str(&std::fs::read_to_string(dir.join("c/ablation_curve.json")).unwrap())
            .unwrap();
    let d = gandissect::dissect::DissectResult::load(&dir.join("d")).unwrap();
    let units = &d.layer("layer4").unwrap().units;
    let best = units.iter().max_by(|a, b| a.iou.total_cmp(&b.iou)).unwrap();
    let named = r.iou_units.as_ref().unwrap();
    assert_eq!(named.len(), 8);
    assert_eq!(named[0].iou, f64::from(best.iou));
    assert!(named.windows(2).all(|w| w[0].iou >= w[1].iou));
    assert_eq!(
        r.curve(Order::Iou).unwrap().ranking[0],
        named[0].unit as i64
    );
    assert!(r.noise.is_none());
    for png in [
        "ablation_curve.png",
        "concepts_random.png",
        "concepts_iou.png",
    ] {
        assert!(dir.join("c").join(png).exists(), "{png}");
    }

    // a dissection of other weights is refused
    let other = tiny_generator(&dir, "other.safetensors", 5);
    dissect(&other, &dir.join("d2"));
    let o = curve(&dir.join("d2"), &dir.join("c2"));
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("made for other weights"), "{stderr}");
}
