//! Targeted projected gradient descent in L∞ (Madry et al.): signed gradient steps on the
//! target's cross-entropy, projected onto the ε-ball around the image and the valid pixel range.
//! Pixel values are measured on the [0, 1] scale (ε = 8/255 is 8 grey levels).

use crate::classify::Classifier;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

/// PGD settings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct PgdOptions {
    /// Radius of the L∞ ball on the [0, 1] pixel scale.
    pub epsilon: f64,
    /// Step size on the [0, 1] pixel scale.
    pub step: f64,
    /// Number of steps.
    pub iterations: usize,
}

impl Default for PgdOptions {
    fn default() -> Self {
        Self {
            epsilon: 8.0 / 255.0,
            step: 2.0 / 255.0,
            iterations: 40,
        }
    }
}

impl PgdOptions {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if !(self.epsilon > 0.0 && self.epsilon <= 1.0) {
            bail!(
                "PGD epsilon must be in (0, 1] on the [0, 1] pixel scale, not {}",
                self.epsilon
            );
        }
        if self.step.is_nan() || self.step <= 0.0 || self.iterations == 0 {
            bail!("PGD needs a positive step and at least one iteration");
        }
        Ok(())
    }
}

/// Attacks images in [−1, 1] towards `targets` (`[N]` class ids); returns the adversarial
/// images in [−1, 1] (same size as the input).
pub fn pgd(
    clf: &Classifier,
    images: &Tensor,
    targets: &Tensor,
    opts: &PgdOptions,
) -> Result<Tensor> {
    opts.validate()?;
    clf.check_images(images)?;
    let u = ((images.detach() + 1.0) / 2.0).to_kind(Kind::Float);
    let lo = (&u - opts.epsilon).clamp_min(0.0);
    let hi = (&u + opts.epsilon).clamp_max(1.0);
    let mut adv = u.shallow_clone();
    for _ in 0..opts.iterations {
        let x = adv.detach().set_requires_grad(true);
        let logits = clf.logits(&(&x * 2.0 - 1.0));
        let loss = logits.cross_entropy_loss::<Tensor>(targets, None, Reduction::Sum, -100, 0.0);
        let grad = Tensor::run_backward(&[loss], &[&x], false, false).remove(0);
        let _guard = tch::no_grad_guard();
        adv = (x.detach() - grad.sign() * opts.step).clamp_tensor(Some(&lo), Some(&hi));
    }
    Ok(adv.detach() * 2.0 - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::model::testnet::{tiny, uniform};

    #[test]
    fn stays_in_the_ball_and_raises_the_target() {
        let (_vs, clf) = tiny(11);
        let images = uniform(&[4, 3, 32, 32], 8, -0.9, 0.9);
        let before = clf.logits(&images).log_softmax(1, Kind::Float).detach();
        let targets = (before.argmax(1, false) + 1).remainder(6);
        let opts = PgdOptions {
            epsilon: 4.0 / 255.0,
            step: 1.0 / 255.0,
            iterations: 10,
        };
        let adv = pgd(&clf, &images, &targets, &opts).unwrap();
        let linf = f64::try_from(((&adv - &images) / 2.0).abs().max()).unwrap();
        assert!(linf <= opts.epsilon + 1e-6, "{linf}");
        assert!(f64::try_from(adv.abs().max()).unwrap() <= 1.0 + 1e-6);
        let after = clf.logits(&adv).log_softmax(1, Kind::Float);
        let idx = targets.unsqueeze(1);
        let gain = after.gather(1, &idx, false) - before.gather(1, &idx, false);
        let gains = Vec::<f32>::try_from(gain.flatten(0, -1)).unwrap();
        assert!(gains.iter().all(|g| *g > 0.0), "{gains:?}");
        assert!(
            PgdOptions {
                epsilon: 0.0,
                ..opts
            }
            .validate()
            .is_err()
        );
    }
}
