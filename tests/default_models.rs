//! The shipped default models: they load, and they do what their cards say on small samples.

use gandissect::segment::load_segmenter;
use gandissect::train::quality::segmenter_quality;
use gandissect::world;
use tch::Device;

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
