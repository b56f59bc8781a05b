//! Per-class unit rankings from a single-unit sweep, and the unit sets of the remove-top-k and
//! keep-top-k tests.

use super::sweep::SingleUnitSweep;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// One unit's effect on one class when it alone is ablated.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UnitScore {
    /// Unit index.
    pub unit: i64,
    /// The class's balanced accuracy with the unit ablated.
    pub ablated: f64,
    /// Baseline minus ablated balanced accuracy (positive = the unit helps the class).
    pub drop: f64,
    /// Baseline minus ablated mean log-probability of the true class over the class's images.
    pub log_prob_drop: f64,
}

/// Units ordered by damage to one class: ablated balanced accuracy ascending (most damaging
/// first, SPEC §5); ties, common when few predictions flip, are broken by the larger drop of the
/// true class's mean log-probability, then by the smaller unit index.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassRanking {
    /// Class name.
    pub class: String,
    /// Balanced accuracy with nothing ablated.
    pub baseline: f64,
    /// Every unit, most damaging first.
    pub units: Vec<UnitScore>,
}

impl ClassRanking {
    /// The `k` most damaging units.
    pub fn top(&self, k: usize) -> Vec<i64> {
        self.units.iter().take(k).map(|s| s.unit).collect()
    }
}

/// Ranks every unit for every class.
pub fn rank_units(sweep: &SingleUnitSweep, classes: &[String]) -> Result<Vec<ClassRanking>> {
    if sweep.baseline.len() != classes.len() {
        bail!(
            "the sweep measured {} classes but {} class names were given",
            sweep.baseline.len(),
            classes.len()
        );
    }
    Ok(classes
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let mut units: Vec<UnitScore> = sweep
                .ablated
                .iter()
                .enumerate()
                .map(|(u, row)| UnitScore {
                    unit: u as i64,
                    ablated: row[c],
                    drop: sweep.baseline[c] - row[c],
                    log_prob_drop: sweep.baseline_log_prob[c] - sweep.ablated_log_prob[u][c],
                })
                .collect();
            units.sort_by(|a, b| {
                a.ablated
                    .total_cmp(&b.ablated)
                    .then(b.log_prob_drop.total_cmp(&a.log_prob_drop))
                    .then(a.unit.cmp(&b.unit))
            });
            ClassRanking {
                class: name.clone(),
                baseline: sweep.baseline[c],
                units,
            }
        })
        .collect())
}

/// Units ablated by "remove the top k": the class's `k` most damaging units.
pub fn remove_top(ranking: &ClassRanking, k: usize) -> Vec<i64> {
    ranking.top(k)
}

/// Units ablated by "keep only the top k": every other unit of the layer, ascending.
pub fn keep_top(ranking: &ClassRanking, k: usize) -> Vec<i64> {
    let keep = ranking.top(k);
    let mut rest: Vec<i64> = ranking
        .units
        .iter()
        .map(|s| s.unit)
        .filter(|u| !keep.contains(u))
        .collect();
    rest.sort_unstable();
    rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::sweep::ImportanceMeasure;

    fn sweep() -> SingleUnitSweep {
        SingleUnitSweep {
            baseline: vec![0.9, 0.8],
            baseline_accuracy: 0.85,
            // units 0..5; class 0 hurt most by 3 then 1; class 1 by 0 then (2, 4 tied)
            ablated: vec![
                vec![0.9, 0.5],
                vec![0.7, 0.8],
                vec![0.9, 0.7],
                vec![0.6, 0.8],
                vec![0.85, 0.7],
            ],
            accuracy: vec![0.8; 5],
            baseline_log_prob: vec![-0.1, -0.2],
            // breaks the tie of units 2 and 4 for class 1 towards unit 4
            ablated_log_prob: vec![
                vec![-0.1, -0.2],
                vec![-0.1, -0.2],
                vec![-0.1, -0.3],
                vec![-0.1, -0.2],
                vec![-0.1, -0.4],
            ],
            images: 10,
            seconds: 0.0,
            timing: Default::default(),
        }
    }

    #[test]
    fn rankings_sort_by_damage_and_sets_are_complementary() {
        let r = rank_units(&sweep(), &["a".into(), "b".into()]).unwrap();
        assert_eq!(r[0].top(5), vec![3, 1, 4, 0, 2]);
        assert_eq!(r[1].top(3), vec![0, 4, 2]);
        assert!((r[1].units[1].log_prob_drop - 0.2).abs() < 1e-12);
        assert!((r[0].units[0].drop - 0.3).abs() < 1e-12);
        assert_eq!(remove_top(&r[0], 2), vec![3, 1]);
        assert_eq!(keep_top(&r[0], 2), vec![0, 2, 4]);
        // class 0's tie of units 0 and 2 (0.9) stays in unit order: equal log-probabilities
        for k in 0..=5 {
            let mut all = remove_top(&r[1], k);
            let kept = keep_top(&r[1], k);
            assert_eq!(kept.len(), 5 - k);
            assert!(kept.iter().all(|u| !all.contains(u)));
            all.extend(kept);
            all.sort_unstable();
            assert_eq!(all, vec![0, 1, 2, 3, 4]);
        }
        assert!(rank_units(&sweep(), &["a".into()]).is_err());
    }

    #[test]
    fn importance_falls_back_to_log_probability_when_accuracy_is_flat() {
        let mut s = sweep();
        // every unit costs 0.05 of accuracy: no ordering, so the log-probability drops decide
        let (imp, measure) = s.importance();
        assert_eq!(measure, ImportanceMeasure::LogProbDrop);
        let expect = [0.0, 0.0, 0.05, 0.0, 0.1];
        for (a, b) in imp.iter().zip(expect) {
            assert!((a - b).abs() < 1e-12, "{imp:?}");
        }
        s.accuracy[1] = 0.6;
        let (imp, measure) = s.importance();
        assert_eq!(measure, ImportanceMeasure::AccuracyDrop);
        assert!((imp[1] - 0.25).abs() < 1e-12 && (imp[0] - 0.05).abs() < 1e-12);
    }
}
