//! Tests of the feature-visualisation methods on networks whose answer is known.

use super::maximize::{MaximizeOptions, maximize};
use super::model::Model;
use super::objective::{Objective, Position};
use super::param::{ColourBasis, ImageParam, Space};
use super::saliency::{self, Explain, Method, SaliencyOptions};
use super::transform::Transforms;
use super::truth;
use super::tsne::{TsneOptions, tsne};
use super::{filters, saliency::gaussian};
use crate::classify::model::testnet::{tiny, uniform};
use crate::nets::layered::LayeredNet;
use tch::{Device, Kind, Tensor};

/// Side of the corner network's images, and of its corner.
const SIDE: i64 = 32;
const CORNER: i64 = 8;

/// A network whose one unit looks only at the top-left corner: `unit = relu(Σ_c x + 1)` inside
/// the `CORNER × CORNER` top-left square and 0 elsewhere; the logits are ten times its mean and
/// minus that.
struct CornerNet {
    names: Vec<String>,
}

impl CornerNet {
    fn new() -> Self {
        Self {
            names: vec!["unit".into(), "head".into()],
        }
    }
}

fn corner_mask() -> Tensor {
    let m = Tensor::zeros([SIDE, SIDE], (Kind::Float, Device::Cpu));
    let _ = m.narrow(0, 0, CORNER).narrow(1, 0, CORNER).fill_(1.0);
    m
}

impl LayeredNet for CornerNet {
    fn layer_names(&self) -> &[String] {
        &self.names
    }

    fn forward_range(&self, x: &Tensor, from: usize, to: usize) -> Tensor {
        let mut x = x.shallow_clone();
        for layer in from..to {
            x = if layer == 0 {
                (x.sum_dim_intlist(1, true, Kind::Float) + 1.0).relu() * corner_mask()
            } else {
                let m = x.mean_dim([1, 2, 3].as_slice(), false, Kind::Float) * 10.0;
                Tensor::stack(&[m.shallow_clone(), -m], 1)
            };
        }
        x
    }

    fn device(&self) -> Device {
        Device::Cpu
    }
}

fn corner_model(net: &CornerNet) -> Model<'_> {
    Model::new(
        net,
        |x: &Tensor| x.shallow_clone(),
        vec!["corner".into(), "not".into()],
    )
}

fn in_corner((y, x): (i64, i64)) -> bool {
    y < CORNER && x < CORNER
}

#[test]
fn grad_cam_occlusion_and_gradients_peak_where_the_unit_looks() {
    let net = CornerNet::new();
    let model = corner_model(&net);
    let images = uniform(&[3, 3, SIDE, SIDE], 5, 0.0, 1.0);
    let explain = Explain::class(0, 3);
    let opts = SaliencyOptions {
        cam_layer: "unit".into(),
        patch: 8,
        stride: 4,
        ..SaliencyOptions::default()
    };
    for method in [
        Method::GradCam,
        Method::Occlusion,
        Method::Gradient,
        Method::SmoothGrad,
        Method::IntegratedGradients,
    ] {
        let maps = saliency::map(method, &model, &images, &explain, &opts).unwrap();
        assert_eq!(maps.size(), [3, SIDE, SIDE], "{method:?}");
        for i in 0..3 {
            let peak = truth::peak(&maps.get(i));
            assert!(in_corner(peak), "{method:?} peaks at {peak:?}");
            assert!(truth::pointing_hit(&maps.get(i), &corner_mask(), 0));
        }
        if matches!(
            method,
            Method::GradCam | Method::Occlusion | Method::Gradient
        ) {
            // nothing outside the corner reaches the score
            let outside = maps
                .narrow(1, CORNER, SIDE - CORNER)
                .abs()
                .max()
                .double_value(&[]);
            let inside = maps
                .narrow(1, 0, CORNER)
                .narrow(2, 0, CORNER)
                .min()
                .double_value(&[]);
            assert!(
                outside < 1e-6 || method == Method::Occlusion,
                "{method:?}: {outside}"
            );
            assert!(inside > 0.0, "{method:?}: {inside}");
        }
    }
    // the random control does not know where to look
    let random = saliency::map(Method::Random, &model, &images, &explain, &opts).unwrap();
    let hits = (0..3)
        .filter(|&i| in_corner(truth::peak(&random.get(i))))
        .count();
    assert!(hits < 3);
}

#[test]
fn deletion_in_the_map_order_falls_faster_than_in_the_reverse_order() {
    let net = CornerNet::new();
    let model = corner_model(&net);
    // a bright corner on a dark image: blurring dims the corner, so insertion has a slope
    let image = uniform(&[1, 3, SIDE, SIDE], 9, 0.0, 0.2);
    let _ = image.narrow(2, 0, CORNER).narrow(3, 0, CORNER).fill_(1.0);
    let good = corner_mask() + uniform(&[SIDE, SIDE], 3, 0.0, 0.01);
    let bad = -&good;
    let g = truth::deletion_insertion(&model, &image, &good, 0, 16).unwrap();
    let b = truth::deletion_insertion(&model, &image, &bad, 0, 16).unwrap();
    let area = |c: &truth::Curves, ys: &[f64]| truth::auc(&c.fractions, ys);
    assert!(area(&g, &g.deletion) < area(&b, &b.deletion) - 0.05);
    assert!(area(&g, &g.insertion) > area(&b, &b.insertion) + 0.01);
    // the first point is the untouched image, the last the fully replaced one
    assert!((g.deletion[0] - b.deletion[0]).abs() < 1e-9);
    assert_eq!(g.fractions.len(), 17);
    assert!(truth::deletion_insertion(&model, &image, &good.narrow(0, 0, 4), 0, 16).is_err());
}

#[test]
fn integrated_gradients_sum_to_the_score_difference() {
    let (_vs, clf) = tiny(3);
    let model = Model::classifier(&clf);
    let images = uniform(&[2, 3, 32, 32], 4, -0.9, 0.9);
    let baseline = images.zeros_like();
    let explain = Explain::margin(1, 2, 2);
    let attr =
        saliency::integrated_attributions(&model, &images, &baseline, &explain, 128).unwrap();
    let w = explain.weights(6, Device::Cpu).unwrap();
    let diff = saliency::scores(&model, &images, &w) - saliency::scores(&model, &baseline, &w);
    let total = attr.sum_dim_intlist([1, 2, 3].as_slice(), false, Kind::Float);
    for i in 0..2 {
        let (d, t) = (diff.double_value(&[i]), total.double_value(&[i]));
        assert!(d.abs() > 1e-3, "the test needs a score that moves: {d}");
        assert!(
            (d - t).abs() <= 0.02 * d.abs() + 1e-4,
            "completeness: {t} vs {d}"
        );
    }
    // a wrong baseline shape and zero steps are refused
    assert!(
        saliency::integrated_attributions(&model, &images, &baseline.narrow(0, 0, 1), &explain, 8)
            .is_err()
    );
    assert!(saliency::integrated_attributions(&model, &images, &baseline, &explain, 0).is_err());
    // a class out of range and a class count that does not match are refused
    assert!(saliency::gradient(&model, &images, &Explain::class(6, 2)).is_err());
    assert!(saliency::gradient(&model, &images, &Explain::class(0, 3)).is_err());
}

/// Two 32×32 images, no transforms (so the first step's objective is the start's).
fn small_options(seed: u64) -> MaximizeOptions {
    MaximizeOptions {
        steps: 24,
        lr: 0.02,
        images: 2,
        size: 32,
        transforms: Transforms::none(),
        seed,
        ..MaximizeOptions::default()
    }
}

#[test]
fn jitter_moves_content_by_whole_pixels() {
    let img = Tensor::zeros([1, 3, 32, 32], (Kind::Float, Device::Cpu));
    let _ = img.narrow(2, 10, 1).narrow(3, 10, 1).fill_(1.0);
    let moved = super::transform::warp(&img, &[super::transform::jitter(2.0, 3.0, 32, 32)]);
    assert!((moved.double_value(&[0, 1, 12, 13]) - 1.0).abs() < 1e-5);
    assert!(moved.sum(Kind::Float).double_value(&[]) - 3.0 < 1e-4);
    let spun = Transforms::default().apply(&img, &mut crate::prng::SplitMix64::new(1));
    assert_eq!(spun.size(), img.size());
}

#[test]
fn maximisation_raises_its_objective_and_is_reproducible() {
    let (_vs, clf) = tiny(7);
    let model = Model::classifier(&clf);
    let objective = Objective::Units {
        layer: "conv3_3".into(),
        units: vec![3],
        position: Position::Mean,
    };
    let a = maximize(&model, &objective, &small_options(1)).unwrap();
    let first = a.trace[0].objective.iter().sum::<f64>();
    let last = a.trace.last().unwrap().objective.iter().sum::<f64>();
    assert!(last > first + 0.01, "{first} → {last}");
    let start: f64 = a.trace[0].objective.iter().sum();
    let trace: Vec<f64> = a.trace.iter().map(|s| s.objective.iter().sum()).collect();
    assert!(
        a.objective.iter().sum::<f64>() > start,
        "the final images beat the start: {:?} after {trace:?}",
        a.objective
    );
    assert_eq!(a.images.size(), [2, 3, 32, 32]);
    assert!(a.images.abs().max().double_value(&[]) <= 1.0);
    let b = maximize(&model, &objective, &small_options(1)).unwrap();
    assert_eq!(
        (&a.images - &b.images).abs().max().double_value(&[]),
        0.0,
        "same seed, same images"
    );
    let c = maximize(&model, &objective, &small_options(2)).unwrap();
    assert!((&a.images - &c.images).abs().max().double_value(&[]) > 1e-3);
    // a class logit rises too, on plain pixels without transforms
    let class = Objective::Class {
        class: 4,
        name: "lakeside".into(),
    };
    let opts = MaximizeOptions {
        space: Space::Pixel,
        decorrelate: false,
        ..small_options(3)
    };
    let r = maximize(&model, &class, &opts).unwrap();
    assert!(r.trace.last().unwrap().objective[0] > r.trace[0].objective[0]);
    // bad targets are refused with the range
    let bad = Objective::Units {
        layer: "relu3_3".into(),
        units: vec![999],
        position: Position::Centre,
    };
    let err = maximize(&model, &bad, &small_options(1)).err().unwrap();
    assert!(err.to_string().contains("out of range"), "{err}");
}

#[test]
fn fourier_images_start_grey_and_colours_follow_the_covariance() {
    let p = ImageParam::new(
        Space::Fourier { decay: 1.0 },
        ColourBasis::identity(),
        16,
        16,
        Device::Cpu,
    )
    .unwrap();
    let img = p.image(&p.init(2, 0, Device::Cpu));
    assert_eq!(img.size(), [2, 3, 16, 16]);
    assert!(img.abs().max().double_value(&[]) < 0.2);
    // channels made from one source: the basis squared is proportional to their covariance
    let src = gaussian(&[4, 1, 8, 8], 1);
    let images = Tensor::cat(
        &[
            &src * 1.0,
            &src * 0.5,
            &src * 0.1 + gaussian(&[4, 1, 8, 8], 2) * 0.1,
        ],
        1,
    );
    let b = ColourBasis::of_images(&images).0.to_kind(Kind::Double);
    let bb = b.matmul(&b.tr());
    let ratio = bb.double_value(&[0, 1]) / bb.double_value(&[0, 0]);
    assert!((ratio - 0.5).abs() < 0.05, "{ratio}");
    assert!(ImageParam::new(Space::Pixel, ColourBasis::identity(), 4, 4, Device::Cpu).is_err());
}

#[test]
fn tsne_keeps_planted_clusters_apart() {
    let (k, per, dim) = (3i64, 20i64, 8i64);
    let centres = gaussian(&[k, dim], 11) * 20.0;
    let x = (centres.repeat_interleave_self_int(per, 0, None) + gaussian(&[k * per, dim], 12))
        .to_kind(Kind::Float);
    let opts = TsneOptions {
        perplexity: 10.0,
        iterations: 500,
        ..TsneOptions::default()
    };
    let y = tsne(&x, &opts).unwrap().points.to_kind(Kind::Double);
    let d = (y.unsqueeze(1) - y.unsqueeze(0))
        .square()
        .sum_dim_intlist(2, false, Kind::Double);
    let n = k * per;
    let label = |i: i64| i / per;
    let mut worst_within: f64 = 0.0;
    let mut best_between = f64::INFINITY;
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            let v = d.double_value(&[i, j]).sqrt();
            if label(i) == label(j) {
                worst_within = worst_within.max(v);
            } else {
                best_between = best_between.min(v);
            }
        }
    }
    assert!(
        best_between > worst_within,
        "clusters overlap: nearest foreign point {best_between}, farthest own {worst_within}"
    );
    // reproducible for a seed
    let again = tsne(&x, &opts).unwrap().points;
    assert_eq!(
        (again - y.to_kind(Kind::Float))
            .abs()
            .max()
            .double_value(&[]),
        0.0
    );
    assert!(tsne(&x.narrow(0, 0, 3), &opts).is_err());
}

#[test]
fn filters_are_drawn_directly_or_through_their_strongest_channels() {
    let w = Tensor::zeros([2, 5, 3, 3], (Kind::Float, Device::Cpu));
    let _ = w.get(0).get(4).fill_(2.0);
    let _ = w.get(0).get(1).fill_(-1.0);
    let _ = w.get(0).get(2).fill_(0.5);
    let _ = w.get(1).get(0).fill_(1.0);
    let drawn = filters::draw("x.weight", &w, 4).unwrap();
    assert!(!drawn.direct);
    assert_eq!(drawn.tiles[0].channels, [4, 1, 2]);
    assert_eq!(drawn.pictures[0].dimensions(), (12, 12));
    // the strongest channel at full red, a negative one dark in green
    let px = drawn.pictures[0].get_pixel(0, 0).0;
    assert_eq!(px[0], 255);
    assert!(px[1] < 100, "{px:?}");
    let rgb = filters::draw(
        "c.weight",
        &Tensor::ones([4, 3, 3, 3], (Kind::Float, Device::Cpu)),
        1,
    )
    .unwrap();
    assert!(rgb.direct);
    assert_eq!(rgb.tiles[3].channels, [0, 1, 2]);
    let names = vec!["conv".to_string(), "relu".to_string()];
    let tensors = vec![("conv.weight".to_string(), w.shallow_clone())];
    assert_eq!(
        filters::conv_weight(&names, 1, &tensors).unwrap().0,
        "conv.weight"
    );
    assert!(filters::conv_weight(&names, 1, &[]).is_err());
}

#[test]
fn pointing_game_chance_and_areas() {
    let mask = corner_mask();
    let mut map = Tensor::zeros([SIDE, SIDE], (Kind::Float, Device::Cpu));
    let _ = map.get(10).get(10).fill_(1.0);
    assert!(!truth::pointing_hit(&map, &mask, 0));
    assert!(truth::pointing_hit(&map, &mask, 3));
    map = map.zeros_like();
    let _ = map.get(2).get(3).fill_(1.0);
    assert_eq!(truth::peak(&map), (2, 3));
    let share = (CORNER * CORNER) as f64 / (SIDE * SIDE) as f64;
    assert!((truth::chance(&mask, 0) - share).abs() < 1e-9);
    assert!((truth::auc(&[0.0, 0.5, 1.0], &[1.0, 1.0, 0.0]) - 0.75).abs() < 1e-12);
}
