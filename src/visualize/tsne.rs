//! t-SNE (van der Maaten and Hinton, 2008), exact: every pair of points is used, which suits
//! the few thousand codes of a layer map (memory and time grow with the square of the count).
//!
//! Input affinities are Gaussian, each point's bandwidth set by bisection so that its
//! conditional distribution has the asked perplexity, then symmetrised. The 2-D points are
//! moved by gradient descent on the Kullback–Leibler divergence to Student-t affinities, with
//! early exaggeration, momentum and per-coordinate gains (the original paper's schedule), from
//! a small Gaussian start drawn from the seed.

use anyhow::{Result, bail};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// Settings.
#[derive(Clone, Debug, Serialize)]
pub struct TsneOptions {
    /// Effective number of neighbours per point.
    pub perplexity: f64,
    /// Gradient steps.
    pub iterations: usize,
    /// Steps with exaggerated input affinities at the start.
    pub exaggeration_steps: usize,
    /// The exaggeration factor.
    pub exaggeration: f64,
    /// Learning rate; `None` for `max(n / exaggeration / 4, 50)`.
    pub learning_rate: Option<f64>,
    /// Seed of the starting points.
    pub seed: u64,
}

impl Default for TsneOptions {
    fn default() -> Self {
        Self {
            perplexity: 30.0,
            iterations: 1000,
            exaggeration_steps: 250,
            exaggeration: 12.0,
            learning_rate: None,
            seed: 0,
        }
    }
}

/// Points in 2-D and the divergence reached.
pub struct TsneResult {
    /// `[N, 2]` points.
    pub points: Tensor,
    /// The Kullback–Leibler divergence of the final map.
    pub kl: f64,
}

/// Squared Euclidean distances between the rows of `x`: `[N, N]`.
fn squared_distances(x: &Tensor) -> Tensor {
    let sq = x.square().sum_dim_intlist(1, true, Kind::Double);
    (&sq + sq.tr() - x.matmul(&x.tr()) * 2.0).clamp_min(0.0)
}

/// Row-conditional Gaussian affinities whose entropy is `ln(perplexity)`, by bisection on the
/// log-precision of each row (all rows at once).
fn conditional_affinities(d: &Tensor, perplexity: f64) -> Tensor {
    let n = d.size()[0];
    let eye = Tensor::eye(n, (Kind::Bool, d.device()));
    // shift each row by its smallest off-diagonal distance: the exponentials stay in range
    let big = d.max().double_value(&[]) + 1.0;
    let off = d.masked_fill(&eye, big);
    let shifted = (&off - off.amin([1].as_slice(), true)).masked_fill(&eye, 0.0);
    let scale = shifted
        .masked_select(&eye.logical_not())
        .mean(Kind::Double)
        .double_value(&[])
        .max(1e-12);
    let shifted = shifted / scale;
    let target = perplexity.ln();
    let mut lo = Tensor::full([n, 1], -30.0, (Kind::Double, d.device()));
    let mut hi = Tensor::full([n, 1], 30.0, (Kind::Double, d.device()));
    let rows = |log_beta: &Tensor| {
        let beta = log_beta.exp();
        let p = (-(&shifted * &beta)).exp().masked_fill(&eye, 0.0);
        let sum = p.sum_dim_intlist(1, true, Kind::Double).clamp_min(1e-300);
        let entropy =
            sum.log() + &beta * (&p * &shifted).sum_dim_intlist(1, true, Kind::Double) / &sum;
        (p / sum, entropy)
    };
    for _ in 0..64 {
        let mid = (&lo + &hi) / 2.0;
        let (_, h) = rows(&mid);
        // too flat (entropy too high): sharpen, i.e. raise the precision
        let up = h.gt(target);
        lo = mid.where_self(&up, &lo);
        hi = hi.where_self(&up, &mid);
    }
    rows(&((lo + hi) / 2.0)).0
}

/// Embeds the rows of `x` (`[N, D]`) in 2-D.
pub fn tsne(x: &Tensor, opts: &TsneOptions) -> Result<TsneResult> {
    let s = x.size();
    if s.len() != 2 {
        bail!("t-SNE needs points as [N, D], not {s:?}");
    }
    let n = s[0];
    if n < 4 {
        bail!("t-SNE needs at least 4 points, not {n}");
    }
    if !(opts.perplexity >= 1.0 && opts.perplexity < (n - 1) as f64) {
        bail!(
            "the perplexity must be at least 1 and below the number of points minus one ({}), not {}",
            n - 1,
            opts.perplexity
        );
    }
    if opts.iterations == 0 || opts.exaggeration.is_nan() || opts.exaggeration < 1.0 {
        bail!("t-SNE needs at least one iteration and an exaggeration ≥ 1");
    }
    let _guard = tch::no_grad_guard();
    let x = x.to_device(Device::Cpu).to_kind(Kind::Double);
    if i64::try_from(x.isfinite().logical_not().sum(Kind::Int64)).unwrap_or(1) != 0 {
        bail!("t-SNE input holds values that are not finite");
    }
    let cond = conditional_affinities(&squared_distances(&x), opts.perplexity);
    let p = ((&cond + cond.tr()) / (2 * n) as f64).clamp_min(1e-12);
    let eye = Tensor::eye(n, (Kind::Bool, Device::Cpu));
    let lr = opts
        .learning_rate
        .unwrap_or_else(|| (n as f64 / opts.exaggeration / 4.0).max(50.0));
    let mut y = super::saliency::gaussian(&[n, 2], opts.seed).to_kind(Kind::Double) * 1e-4;
    let mut velocity = y.zeros_like();
    let mut gains = y.ones_like();
    let affinities = |y: &Tensor| {
        let num = (squared_distances(y) + 1.0)
            .reciprocal()
            .masked_fill(&eye, 0.0);
        let q = (&num / num.sum(Kind::Double)).clamp_min(1e-12);
        (num, q)
    };
    for it in 0..opts.iterations {
        let exaggerate = it < opts.exaggeration_steps;
        let pe = if exaggerate {
            &p * opts.exaggeration
        } else {
            p.shallow_clone()
        };
        let (num, q) = affinities(&y);
        let w = (pe - q) * num;
        let grad = (w.sum_dim_intlist(1, true, Kind::Double) * &y - w.matmul(&y)) * 4.0;
        let same = grad.sign().eq_tensor(&velocity.sign());
        gains = (&gains * 0.8)
            .where_self(&same, &(&gains + 0.2))
            .clamp_min(0.01);
        let momentum = if exaggerate { 0.5 } else { 0.8 };
        velocity = &velocity * momentum - &gains * grad * lr;
        y = &y + &velocity;
        y = &y - y.mean_dim(0, true, Kind::Double);
    }
    let (_, q) = affinities(&y);
    let kl = (&p * (&p / &q).log())
        .masked_fill(&eye, 0.0)
        .sum(Kind::Double)
        .double_value(&[]);
    Ok(TsneResult {
        points: y.to_kind(Kind::Float),
        kl,
    })
}
