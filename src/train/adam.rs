//! Adam with its moments kept as named tensors, so a training run can be saved and resumed
//! exactly.

use anyhow::{Result, bail};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

/// Adam (Kingma & Ba) over a fixed set of named parameters.
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator guard.
    pub eps: f64,
    steps: i64,
    m: BTreeMap<String, Tensor>,
    v: BTreeMap<String, Tensor>,
}

impl Adam {
    /// An optimizer with zero moments.
    pub fn new(lr: f64, beta1: f64, beta2: f64, eps: f64) -> Self {
        Self {
            lr,
            beta1,
            beta2,
            eps,
            steps: 0,
            m: BTreeMap::new(),
            v: BTreeMap::new(),
        }
    }

    /// Updates every parameter that has a gradient, then clears the gradients.
    pub fn step(&mut self, params: &[(String, Tensor)]) {
        self.steps += 1;
        let t = self.steps as f64;
        let c1 = 1.0 - self.beta1.powf(t);
        let c2 = 1.0 - self.beta2.powf(t);
        tch::no_grad(|| {
            for (name, p) in params {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let m = self.m.entry(name.clone()).or_insert_with(|| p.zeros_like());
                let v = self.v.entry(name.clone()).or_insert_with(|| p.zeros_like());
                let _ = m
                    .g_mul_scalar_(self.beta1)
                    .g_add_(&(&g * (1.0 - self.beta1)));
                let _ = v
                    .g_mul_scalar_(self.beta2)
                    .g_add_(&(g.square() * (1.0 - self.beta2)));
                let update = (&*m / c1) / ((&*v / c2).sqrt() + self.eps) * self.lr;
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&update);
            }
        });
        for (_, p) in params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// The state as named tensors under `prefix`.
    pub fn to_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = vec![(format!("{prefix}.steps"), Tensor::from(self.steps))];
        for (k, t) in &self.m {
            out.push((format!("{prefix}.m.{k}"), t.shallow_clone()));
        }
        for (k, t) in &self.v {
            out.push((format!("{prefix}.v.{k}"), t.shallow_clone()));
        }
        out
    }

    /// Restores the state written by [`Self::to_tensors`].
    pub fn load_tensors(&mut self, prefix: &str, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        let Some(steps) = tensors.get(&format!("{prefix}.steps")) else {
            bail!("the training state has no optimizer '{prefix}'");
        };
        self.steps = i64::try_from(steps.to_kind(Kind::Int64))?;
        self.m.clear();
        self.v.clear();
        for (k, t) in tensors {
            if let Some(name) = k.strip_prefix(&format!("{prefix}.m.")) {
                self.m.insert(name.to_string(), t.copy());
            } else if let Some(name) = k.strip_prefix(&format!("{prefix}.v.")) {
                self.v.insert(name.to_string(), t.copy());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn minimises_a_quadratic_and_resumes_exactly() {
        let run = |split: Option<usize>| {
            let x = Tensor::from_slice(&[3.0f32, -2.0]).set_requires_grad(true);
            let params = vec![("x".to_string(), x.shallow_clone())];
            let mut opt = Adam::new(0.1, 0.9, 0.999, 1e-8);
            for i in 0..200 {
                if Some(i) == split {
                    let saved: BTreeMap<String, Tensor> =
                        opt.to_tensors("opt").into_iter().collect();
                    opt = Adam::new(0.1, 0.9, 0.999, 1e-8);
                    opt.load_tensors("opt", &saved).unwrap();
                }
                let loss = (&x - Tensor::from_slice(&[1.0f32, 1.0]))
                    .square()
                    .sum(Kind::Float);
                loss.backward();
                opt.step(&params);
            }
            x.detach().to_device(Device::Cpu)
        };
        let a = run(None);
        let b = run(Some(77));
        assert!(a.equal(&b), "resumed run differs");
        let err = f64::try_from((a - 1.0).abs().max()).unwrap();
        assert!(err < 0.05, "did not converge: {err}");
    }
}
