//! The paper's finding on the shipped world classifier: removing a class's most important
//! conv5_3 units hurts that class more than the other classes. Skipped (with a message) when
//! `models/world-vgg16` is not present.

use gandissect::classify::{Classifier, ImportanceOptions, importance};
use tch::Device;

#[test]
fn removing_a_class_top_units_hurts_that_class_most() {
    let dir = gandissect::zoo::home().join("models/world-vgg16");
    if !dir.join("model.json").exists() {
        eprintln!("skipped: {} is not present", dir.display());
        return;
    }
    let clf = Classifier::load(dir.to_str().unwrap(), Device::Cpu).unwrap();
    let mut opts = ImportanceOptions::new("conv5_3", 240, 240, Device::Cpu);
    opts.ks = vec![4];
    let report = importance(&clf, &opts).unwrap();
    let mut own = Vec::new();
    let mut others = Vec::new();
    for c in &report.curves {
        let p = c.removed(4).unwrap();
        own.push(c.baseline.class_accuracy - p.class_accuracy);
        others.push(c.baseline.others_mean - p.others_mean);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let wins = own.iter().zip(&others).filter(|(a, b)| a > b).count();
    assert!(
        mean(&own) > mean(&others) && wins >= 4,
        "own drops {own:?} vs others' drops {others:?}"
    );
}
