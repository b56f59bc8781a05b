//! The paper's findings on the shipped world classifier, on the README's samples (100 scenes per
//! class for the ranking, 100 others per class for the curves):
//! - removing a class's top-4 conv5_3 units costs at least three classes 10 points of balanced
//!   accuracy, while the other classes lose under a fifth of that on average;
//! - keeping only a class's top-20 units keeps that class within 10 points of its baseline while
//!   overall accuracy falls by at least 20 points, for at least four classes.

use gandissect::classify::{Classifier, ImportanceOptions, importance};
use gandissect::world::SceneClass;
use tch::Device;

#[test]
fn a_class_rests_on_its_top_units() {
    let dir = gandissect::zoo::home().join("models/world-vgg16");
    assert!(
        dir.join("model.json").exists(),
        "{} is missing: the shipped models belong to the repository",
        dir.display()
    );
    let clf = Classifier::load(dir.to_str().unwrap(), Device::Cpu).unwrap();
    let n = 100 * SceneClass::ALL.len() as u64;
    let mut opts = ImportanceOptions::new("conv5_3", n, n, Device::Cpu);
    opts.ks = vec![4, 20];
    let report = importance(&clf, &opts).unwrap();
    let (mut hit, mut collapse) = (vec![], vec![]);
    for c in &report.curves {
        let r = c.removed(4).unwrap();
        let own = c.baseline.class_accuracy - r.class_accuracy;
        let others = c.baseline.others_mean - r.others_mean;
        if own >= 0.10 && others < own / 5.0 {
            hit.push((c.class.clone(), own, others));
        }
        let k = c.kept(20).unwrap();
        let (class_drop, overall_drop) = (
            c.baseline.class_accuracy - k.class_accuracy,
            c.baseline.accuracy - k.accuracy,
        );
        eprintln!(
            "{}: top-4 removed: own {own:.3}, others {others:.3}; top-20 kept: class {class_drop:.3}, overall {overall_drop:.3}",
            c.class
        );
        if class_drop <= 0.10 && overall_drop >= 0.20 {
            collapse.push((c.class.clone(), class_drop, overall_drop));
        }
    }
    assert!(
        hit.len() >= 3,
        "classes losing ≥ 10 points to their top 4 (the others under a fifth of it): {hit:?}"
    );
    assert!(
        collapse.len() >= 4,
        "classes kept within 10 points by their top 20 while overall accuracy falls ≥ 20: {collapse:?}"
    );
}
