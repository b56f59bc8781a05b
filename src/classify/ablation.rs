//! Many ablation conditions in one suffix forward: the cut layer's features are computed once per
//! image batch and stacked, one copy per condition, each with its own units zeroed.

use crate::cut::{Cut, stacked_ablated};
use crate::nets::vgg::Vgg;
use anyhow::{Result, bail};
use tch::{Kind, Tensor};

/// Class log-probabilities `[G, B, K]` under each unit set's ablation, running the suffix on
/// at most `copies` stacked copies at a time.
pub fn log_probs_under_ablation(
    cut: &Cut<'_, Vgg>,
    features: &Tensor,
    unit_sets: &[Vec<i64>],
    copies: usize,
) -> Result<Tensor> {
    if copies == 0 {
        bail!("copies per forward must be at least 1");
    }
    let b = features.size()[0];
    let mut parts = Vec::new();
    for chunk in unit_sets.chunks(copies) {
        let stacked = stacked_ablated(features, chunk)?;
        let logits = cut.suffix(&stacked);
        let k = logits.size()[1];
        parts.push(
            logits
                .view([chunk.len() as i64, b, k])
                .log_softmax(2, Kind::Float),
        );
    }
    if parts.is_empty() {
        bail!("no ablation conditions given");
    }
    Ok(Tensor::cat(&parts, 0))
}

/// Predicted classes `[G, B]` under each unit set's ablation.
pub fn predictions_under_ablation(
    cut: &Cut<'_, Vgg>,
    features: &Tensor,
    unit_sets: &[Vec<i64>],
    copies: usize,
) -> Result<Tensor> {
    Ok(log_probs_under_ablation(cut, features, unit_sets, copies)?.argmax(2, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::model::testnet::{tiny, uniform};
    use crate::cut::Edit;
    use tch::Device;

    #[test]
    fn stacked_copies_equal_one_at_a_time_ablation_through_cut() {
        let (_vs, clf) = tiny(3);
        let cut = clf.conv_cut("conv5_3").unwrap();
        let images = uniform(&[5, 3, 32, 32], 9, -1.0, 1.0);
        let h = clf.features(&cut, &images);
        let sets: Vec<Vec<i64>> = vec![vec![], vec![0], vec![7, 3], (0..64).collect(), vec![63]];
        let stacked = stacked_ablated(&h, &sets).unwrap();
        let logits = cut.suffix(&stacked).view([5, 5, 6]);
        for (g, set) in sets.iter().enumerate() {
            let edited = cut.edit(&h, &[Edit::ablate(set, None)]).unwrap();
            let want = cut.suffix(&edited);
            let got = logits.get(g as i64);
            let diff = f64::try_from((got - &want).abs().max()).unwrap();
            assert!(diff < 1e-5, "set {set:?}: {diff}");
        }
        // copy 3 removes every unit: its features are all zero
        let all = stacked.narrow(0, 15, 5);
        assert_eq!(f64::try_from(all.abs().sum(Kind::Float)).unwrap(), 0.0);
        // chunking does not change predictions
        let p1 = predictions_under_ablation(&cut, &h, &sets, 2).unwrap();
        let p2 = predictions_under_ablation(&cut, &h, &sets, 5).unwrap();
        assert!(p1.equal(&p2));
        assert!(p1.get(0).equal(&cut.suffix(&h).argmax(1, false)));
    }

    #[test]
    fn out_of_range_units_are_refused() {
        let h = Tensor::zeros([1, 4, 2, 2], (Kind::Float, Device::Cpu));
        let err = stacked_ablated(&h, &[vec![4]]).unwrap_err().to_string();
        assert!(err.contains("unit 4 is out of range"), "{err}");
    }
}
