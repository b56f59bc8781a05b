//! Per-class metrics from a multiclass argmax (SPEC §5): one-vs-all counts and balanced accuracy
//! `(recall + TNR) / 2`, computed with tensor ops so that many ablation conditions are counted at
//! once.

use anyhow::{Result, bail};
use tch::{Kind, Tensor};

/// One-vs-all counts per condition and class, accumulated over batches.
///
/// Every tensor is `[conditions, classes]` (i64): `truth` counts images of the class,
/// `predicted` images predicted as it, `correct` images of the class predicted as it.
#[derive(Debug)]
pub struct ClassCounts {
    /// Images whose truth is the class.
    pub truth: Tensor,
    /// Images predicted as the class.
    pub predicted: Tensor,
    /// Images of the class predicted as it.
    pub correct: Tensor,
    /// Images counted (per condition; the same for every condition).
    pub total: i64,
}

impl ClassCounts {
    /// Counts predictions `[conditions, N]` (or `[N]`, one condition) against truths `[N]`
    /// for `classes` classes.
    pub fn from_predictions(predictions: &Tensor, truths: &Tensor, classes: i64) -> Result<Self> {
        let pred = if predictions.dim() == 1 {
            predictions.unsqueeze(0)
        } else {
            predictions.shallow_clone()
        };
        let ps = pred.size();
        if pred.dim() != 2 || truths.dim() != 1 || ps[1] != truths.size()[0] {
            bail!(
                "predictions {:?} and truths {:?} do not match: give [conditions, N] and [N]",
                predictions.size(),
                truths.size()
            );
        }
        if classes <= 0 {
            bail!("the number of classes must be positive, not {classes}");
        }
        let check = |t: &Tensor, what: &str| -> Result<()> {
            if t.numel() > 0 {
                let lo = i64::try_from(t.min())?;
                let hi = i64::try_from(t.max())?;
                if lo < 0 || hi >= classes {
                    bail!("{what} hold class ids {lo}..={hi}, outside 0..{classes}");
                }
            }
            Ok(())
        };
        check(&pred, "predictions")?;
        check(truths, "truths")?;
        let pred = pred.to_kind(Kind::Int64);
        let truths = truths.to_kind(Kind::Int64).to_device(pred.device());
        let p1 = pred.one_hot(classes); // [C, N, K]
        let t1 = truths.one_hot(classes).unsqueeze(0); // [1, N, K]
        let truth = t1.sum_dim_intlist([1i64].as_slice(), false, Kind::Int64);
        let truth = truth.expand([ps[0], classes], false).contiguous();
        let predicted = p1.sum_dim_intlist([1i64].as_slice(), false, Kind::Int64);
        let correct = (&p1 * &t1).sum_dim_intlist([1i64].as_slice(), false, Kind::Int64);
        Ok(Self {
            truth,
            predicted,
            correct,
            total: ps[1],
        })
    }

    /// Adds another batch's counts (same conditions and classes).
    pub fn add(&mut self, other: &ClassCounts) -> Result<()> {
        if self.truth.size() != other.truth.size() {
            bail!(
                "cannot add counts of shape {:?} to counts of shape {:?}",
                other.truth.size(),
                self.truth.size()
            );
        }
        self.truth += &other.truth;
        self.predicted += &other.predicted;
        self.correct += &other.correct;
        self.total += other.total;
        Ok(())
    }

    /// Balanced one-vs-all accuracy `[conditions, classes]` (f64): `(recall + TNR) / 2` with
    /// `recall = correct / truth`, `TN = (N − truth) − (predicted − correct)`,
    /// `TNR = TN / (N − truth)`. A class with no images (or no negatives) counts that half as 0.
    pub fn balanced_accuracy(&self) -> Tensor {
        let truth = self.truth.to_kind(Kind::Double);
        let pred = self.predicted.to_kind(Kind::Double);
        let correct = self.correct.to_kind(Kind::Double);
        let negatives = truth.ones_like() * self.total as f64 - &truth;
        let tn = &negatives - (&pred - &correct);
        let recall = &correct / truth.clamp_min(1.0);
        let tnr = tn / negatives.clamp_min(1.0);
        (recall + tnr) / 2.0
    }

    /// Overall (multiclass) accuracy per condition `[conditions]` (f64).
    pub fn accuracy(&self) -> Tensor {
        self.correct
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Double)
            / (self.total.max(1) as f64)
    }
}

/// Converts a 2-D f64 tensor to rows of host values.
pub fn to_rows(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    let t = t.to_kind(Kind::Double).to_device(tch::Device::Cpu);
    let s = t.size();
    if s.len() != 2 {
        bail!("expected a matrix, got shape {s:?}");
    }
    let flat = Vec::<f64>::try_from(t.flatten(0, -1))?;
    Ok(flat
        .chunks(s[1].max(1) as usize)
        .map(<[f64]>::to_vec)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_accuracy_matches_a_hand_computation() {
        // 3 classes, 8 images
        let truth = Tensor::from_slice(&[0i64, 0, 0, 1, 1, 2, 2, 2]);
        let pred = Tensor::from_slice(&[0i64, 0, 1, 1, 2, 2, 2, 0]);
        let c = ClassCounts::from_predictions(&pred, &truth, 3).unwrap();
        let got = to_rows(&c.balanced_accuracy()).unwrap().remove(0);
        // class 0: recall 2/3; negatives 5, predicted-0 among them 1 → TN 4 → TNR 4/5
        // class 1: recall 1/2; negatives 6, false positives 1 → TNR 5/6
        // class 2: recall 2/3; negatives 5, false positives 1 → TNR 4/5
        let want = [
            (2.0 / 3.0 + 0.8) / 2.0,
            (0.5 + 5.0 / 6.0) / 2.0,
            (2.0 / 3.0 + 0.8) / 2.0,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
        assert!((f64::try_from(c.accuracy().get(0)).unwrap() - 5.0 / 8.0).abs() < 1e-12);
    }

    #[test]
    fn batches_add_up_and_conditions_are_counted_separately() {
        let truth = Tensor::from_slice(&[0i64, 1, 1, 0]);
        let preds = Tensor::from_slice(&[0i64, 1, 1, 0, 1, 1, 0, 0]).view([2, 4]);
        let whole = ClassCounts::from_predictions(&preds, &truth, 2).unwrap();
        let mut parts =
            ClassCounts::from_predictions(&preds.narrow(1, 0, 2), &truth.narrow(0, 0, 2), 2)
                .unwrap();
        parts
            .add(
                &ClassCounts::from_predictions(&preds.narrow(1, 2, 2), &truth.narrow(0, 2, 2), 2)
                    .unwrap(),
            )
            .unwrap();
        assert!(whole.balanced_accuracy().equal(&parts.balanced_accuracy()));
        let rows = to_rows(&whole.balanced_accuracy()).unwrap();
        assert_eq!(rows[0], vec![1.0, 1.0]);
        // condition 1: predictions 1,1,0,0 vs truths 0,1,1,0 → recall 1/2, TNR 1/2 for both
        assert_eq!(rows[1], vec![0.5, 0.5]);
    }

    #[test]
    fn out_of_range_ids_and_mismatched_shapes_are_refused() {
        let truth = Tensor::from_slice(&[0i64, 3]);
        let pred = Tensor::from_slice(&[0i64, 1]);
        let err = ClassCounts::from_predictions(&pred, &truth, 3)
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside 0..3"), "{err}");
        let err = ClassCounts::from_predictions(&Tensor::from_slice(&[0i64]), &truth, 3)
            .unwrap_err()
            .to_string();
        assert!(err.contains("do not match"), "{err}");
    }
}
