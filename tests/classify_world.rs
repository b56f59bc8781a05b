//! The paper's finding on the shipped world classifier: removing a class's most important
//! conv5_3 units hurts that class more than the other classes. On world-vgg16 the top-4 units
//! move balanced accuracy by under a point and the class's log-probability inconsistently (the
//! README has the numbers), so the direction is asserted at k = 32: on balanced accuracy (on
//! average over classes, by at least 3 points more) and on the true class's mean
//! log-probability (for most classes).
//! Skipped (with a message) when `models/world-vgg16` is not present.

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
    opts.ks = vec![32];
    let report = importance(&clf, &opts).unwrap();
    let (mut own, mut others, mut own_lp, mut others_lp) = (vec![], vec![], vec![], vec![]);
    for c in &report.curves {
        let q = c.removed(32).unwrap();
        own.push(c.baseline.class_accuracy - q.class_accuracy);
        others.push(c.baseline.others_mean - q.others_mean);
        own_lp.push(c.baseline.class_log_prob - q.class_log_prob);
        others_lp.push(c.baseline.others_log_prob - q.others_log_prob);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&own) > mean(&others) + 0.03,
        "balanced accuracy at k = 32: own drops {own:?} vs others' drops {others:?}"
    );
    let wins = own_lp.iter().zip(&others_lp).filter(|(a, b)| a > b).count();
    assert!(
        wins >= 4,
        "log-probability at k = 32: own drops {own_lp:?} vs others' drops {others_lp:?}"
    );
}
