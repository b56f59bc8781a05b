//! The shipped default models: they load, and they do what their cards say on small samples.

use gandissect::imageio::to_input_size;
use gandissect::nets::layered::LayeredNet;
use gandissect::sample::world_batch;
use gandissect::segment::load_segmenter;
use gandissect::train::quality::segmenter_quality;
use gandissect::world::{self, SceneClass};
use gandissect::zoo::{load_classifier, load_generator};
use gandissect::zsample::z_rows;
use tch::{Device, Kind};

#[test]
fn world_seg_labels_unseen_scenes_accurately() {
    let seg = load_segmenter("world-seg", Device::Cpu).unwrap();
    assert_eq!(seg.labels().len(), world::CONCEPTS.len());
    assert_eq!(
        seg.label_id("door").unwrap(),
        world::concept_id("door").unwrap() as usize
    );
    // seeds far from both the training seeds and the card's evaluation seeds
    let q = segmenter_quality(seg.as_ref(), 500_000, 64, Device::Cpu).unwrap();
    assert!(
        q.pixel_accuracy > 0.93,
        "pixel accuracy {}",
        q.pixel_accuracy
    );
    for c in &q.concepts {
        if ["sky", "grass", "tree", "building", "water"].contains(&c.concept.as_str()) {
            assert!(c.iou > 0.8, "{} IoU {}", c.concept, c.iou);
        }
    }
}

#[test]
fn world_vgg16_classifies_unseen_scenes() {
    let (net, src) = load_classifier("world-vgg16", Device::Cpu).unwrap();
    let card = src.card.unwrap();
    let size = card.input_size.unwrap();
    assert_eq!(card.classes.unwrap().len(), SceneClass::ALL.len());
    assert_eq!(net.layer_index("conv5_3").unwrap(), 28);
    let _g = tch::no_grad_guard();
    let seeds: Vec<u64> = (700_000..700_096).collect();
    let b = world_batch(&seeds, false, Device::Cpu);
    let pred = net
        .classify(&to_input_size(&b.images, size))
        .argmax(1, false);
    let acc = f64::try_from(
        pred.eq_tensor(&b.classes)
            .to_kind(Kind::Float)
            .mean(Kind::Float),
    )
    .unwrap();
    assert!(acc > 0.8, "accuracy {acc}");
}

#[test]
fn world_proggan_draws_scenes_with_sky_and_buildings() {
    let (g, _) = load_generator("world-proggan", Device::Cpu).unwrap();
    assert_eq!(g.resolution(), 64);
    assert_eq!(g.layer_names()[3], "layer4");
    let seg = load_segmenter("world-seg", Device::Cpu).unwrap();
    let _guard = tch::no_grad_guard();
    let ids: Vec<u64> = (0..64).collect();
    let z = z_rows(1, &ids, g.z_dim() as usize, Device::Cpu).unwrap();
    let labels = seg
        .segment(&g.forward(&z).clamp(-1.0, 1.0))
        .unwrap()
        .select(1, 0);
    let has = |name: &str| {
        let id = seg.label_id(name).unwrap() as i64;
        let per_image = labels.eq(id).any_dims([1i64, 2].as_slice(), false);
        f64::try_from(per_image.to_kind(Kind::Float).mean(Kind::Float)).unwrap()
    };
    let (sky, building, tree) = (has("sky"), has("building"), has("tree"));
    assert!(sky > 0.8, "sky in {sky} of images");
    assert!(building > 0.3, "buildings in {building} of images");
    assert!(tree > 0.5, "trees in {tree} of images");
}
