//! Targeted Carlini–Wagner L2: minimise `‖x' − x‖² + c·max(max_{i≠t} Z_i − Z_t, −κ)` over
//! `x' = (tanh w + 1)/2` with Adam, and binary-search the constant `c` per image (halving
//! towards success, ×10 while there is none). The smallest successful perturbation seen is kept.
//! Pixel values are measured on the [0, 1] scale.

use crate::classify::Classifier;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// CW settings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct CwOptions {
    /// Binary-search steps over the constant.
    pub search_steps: usize,
    /// Adam iterations per search step.
    pub iterations: usize,
    /// Adam learning rate (in tanh space).
    pub lr: f64,
    /// Starting constant.
    pub initial_const: f64,
    /// Required logit margin κ of the target over the runner-up.
    pub confidence: f64,
}

impl Default for CwOptions {
    fn default() -> Self {
        Self {
            search_steps: 4,
            iterations: 60,
            lr: 0.01,
            initial_const: 1.0,
            confidence: 0.0,
        }
    }
}

impl CwOptions {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.search_steps == 0 || self.iterations == 0 {
            bail!("CW needs at least one search step and one iteration");
        }
        if !(self.lr > 0.0 && self.initial_const > 0.0 && self.confidence >= 0.0) {
            bail!("CW needs a positive learning rate and constant and a non-negative confidence");
        }
        Ok(())
    }
}

/// What the search found.
#[derive(Debug)]
pub struct CwOutcome {
    /// The best adversarial image per input in [−1, 1] (the original where none was found).
    pub adversarial: Tensor,
    /// Whether a successful perturbation was found.
    pub success: Vec<bool>,
    /// L2 norm (on [0, 1] pixels) of the first successful perturbation found.
    pub first_l2: Vec<Option<f64>>,
    /// L2 norm of the best (smallest) successful perturbation.
    pub best_l2: Vec<Option<f64>>,
    /// The constant of each image when the search ended.
    pub constants: Vec<f64>,
}

/// Attacks images in [−1, 1] towards `targets` (`[N]` class ids).
pub fn carlini_wagner(
    clf: &Classifier,
    images: &Tensor,
    targets: &Tensor,
    opts: &CwOptions,
) -> Result<CwOutcome> {
    opts.validate()?;
    clf.check_images(images)?;
    let n = images.size()[0] as usize;
    let k = clf.classes.len() as i64;
    let u = ((images.detach() + 1.0) / 2.0).to_kind(Kind::Float);
    let w0 = (&u * 2.0 - 1.0).clamp(-0.999_999, 0.999_999).arctanh();
    let onehot = targets.one_hot(k).to_kind(Kind::Float);
    let mut consts = vec![opts.initial_const; n];
    let mut lower = vec![0.0f64; n];
    let mut upper = vec![f64::INFINITY; n];
    let mut best_l2 = vec![f64::INFINITY; n];
    let mut first_l2: Vec<Option<f64>> = vec![None; n];
    let best = u.copy();
    let (b1, b2, eps) = (0.9, 0.999, 1e-8);
    for _ in 0..opts.search_steps {
        let c = Tensor::from_slice(&consts)
            .to_kind(Kind::Float)
            .to_device(u.device());
        let mut w = w0.copy();
        let mut m = w.zeros_like();
        let mut v = w.zeros_like();
        let mut found = vec![false; n];
        for it in 1..=opts.iterations {
            let wv = w.detach().set_requires_grad(true);
            let adv = (wv.tanh() + 1.0) / 2.0;
            let l2sq =
                (&adv - &u)
                    .square()
                    .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float);
            let z = clf.logits(&(&adv * 2.0 - 1.0));
            let real = (&z * &onehot).sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
            let other = (&z - &onehot * 1e9).amax([1i64].as_slice(), false);
            let f = (&other - &real + opts.confidence).clamp_min(0.0);
            let loss = (&l2sq + &c * &f).sum(Kind::Float);
            let grad = Tensor::run_backward(&[loss], &[&wv], false, false).remove(0);
            let _guard = tch::no_grad_guard();
            // record successes before the step (they belong to the current w)
            let margin = &real - &other;
            let ok =
                Vec::<bool>::try_from(margin.ge(opts.confidence).logical_and(&margin.gt(0.0)))?;
            let norms = Vec::<f32>::try_from(l2sq.sqrt())?;
            for i in 0..n {
                if ok[i] {
                    found[i] = true;
                    let l2 = norms[i] as f64;
                    first_l2[i].get_or_insert(l2);
                    if l2 < best_l2[i] {
                        best_l2[i] = l2;
                        best.get(i as i64).copy_(&adv.get(i as i64));
                    }
                }
            }
            m = &m * b1 + &grad * (1.0 - b1);
            v = &v * b2 + grad.square() * (1.0 - b2);
            let mh = &m / (1.0 - b1.powi(it as i32));
            let vh = &v / (1.0 - b2.powi(it as i32));
            w = wv.detach() - mh * opts.lr / (vh.sqrt() + eps);
        }
        for i in 0..n {
            if found[i] {
                upper[i] = upper[i].min(consts[i]);
                consts[i] = (lower[i] + upper[i]) / 2.0;
            } else {
                lower[i] = lower[i].max(consts[i]);
                consts[i] = if upper[i].is_finite() {
                    (lower[i] + upper[i]) / 2.0
                } else {
                    consts[i] * 10.0
                };
            }
        }
    }
    let success: Vec<bool> = best_l2.iter().map(|l| l.is_finite()).collect();
    Ok(CwOutcome {
        adversarial: best * 2.0 - 1.0,
        best_l2: best_l2
            .iter()
            .map(|&l| l.is_finite().then_some(l))
            .collect(),
        first_l2,
        success,
        constants: consts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::model::testnet::{tiny, uniform};

    #[test]
    fn the_search_lowers_the_l2_norm_of_successful_perturbations() {
        let (_vs, clf) = tiny(12);
        let images = uniform(&[4, 3, 32, 32], 7, -0.9, 0.9);
        let pred = clf.logits(&images).argmax(1, false);
        let targets = (pred + 1).remainder(6);
        let opts = CwOptions {
            search_steps: 3,
            iterations: 100,
            lr: 0.05,
            initial_const: 10.0,
            confidence: 0.0,
        };
        let out = carlini_wagner(&clf, &images, &targets, &opts).unwrap();
        let wins = out.success.iter().filter(|s| **s).count();
        assert!(wins >= 2, "only {wins} of 4 succeeded");
        let (mut first, mut best) = (0.0, 0.0);
        for i in 0..4 {
            if let (Some(f), Some(b)) = (out.first_l2[i], out.best_l2[i]) {
                assert!(b <= f + 1e-9, "image {i}: best {b} > first {f}");
                first += f;
                best += b;
            }
        }
        assert!(
            best < first,
            "the search did not lower the norm: {best} vs {first}"
        );
        // the kept adversarials really reach the target, with the reported norms
        let adv_pred = Vec::<i64>::try_from(clf.logits(&out.adversarial).argmax(1, false)).unwrap();
        let t = Vec::<i64>::try_from(&targets).unwrap();
        for i in 0..4 {
            if out.success[i] {
                assert_eq!(adv_pred[i], t[i]);
                let l2 = f64::try_from(
                    ((out.adversarial.get(i as i64) - images.get(i as i64)) / 2.0)
                        .square()
                        .sum(Kind::Float)
                        .sqrt(),
                )
                .unwrap();
                assert!((l2 - out.best_l2[i].unwrap()).abs() < 1e-3, "{l2}");
            }
        }
    }
}
