//! The similarity measures, computed from streamed second moments: SVCCA (SVD, then CCA),
//! PWCCA (CCA with projection weights) and linear CKA.
//!
//! Activations come as rows (data points) × columns (units). Everything a measure needs is
//! in the moments of the concatenated rows — the count, the column sums, `XᵀX`, `YᵀY` and
//! `XᵀY` — accumulated batch by batch in f64 ([`Moments`], [`Cross`]), so the memory is
//! `8·(p² + q² + p·q)` bytes for `p` and `q` units whatever the number of rows.
//!
//! CCA whitens each side with the eigendecomposition of its covariance (directions with an
//! eigenvalue under [`RANK_TOLERANCE`] of the largest are dropped as numerically absent) and
//! takes the singular values of the whitened cross-covariance: the canonical correlations.

use anyhow::{Result, bail};
use tch::{Kind, Tensor};

/// Eigenvalues below this fraction of the largest count as zero (a unit that never varies,
/// or one that is a linear combination of others).
pub const RANK_TOLERANCE: f64 = 1e-10;

/// The share of the variance SVCCA keeps by default (the smallest number of principal
/// directions whose variance reaches it).
pub const DEFAULT_KEEP: f64 = 0.99;

/// The measure of similarity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Mean canonical correlation after reducing each side to the principal directions that
    /// hold a share of its variance (Raghu et al., 2017).
    Svcca,
    /// Canonical correlations weighted by how much of the first side's units each canonical
    /// variate accounts for (Morcos et al., 2018); not symmetric: the weights come from A.
    Pwcca,
    /// Linear centred kernel alignment `‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)` (Kornblith et al., 2019).
    Cka,
}

impl Method {
    /// The method's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Svcca => "svcca",
            Self::Pwcca => "pwcca",
            Self::Cka => "cka",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "svcca" => Ok(Self::Svcca),
            "pwcca" => Ok(Self::Pwcca),
            "cka" => Ok(Self::Cka),
            _ => bail!("unknown similarity method '{s}': svcca, pwcca or cka"),
        }
    }
}

/// Running first and second moments of one side's rows: count, column sums and `XᵀX`.
pub struct Moments {
    /// Rows seen.
    pub n: f64,
    /// Column sums `[p]`.
    pub sum: Tensor,
    /// `XᵀX` `[p, p]`.
    pub gram: Tensor,
}

impl Moments {
    /// Empty moments of `units` columns on `device`.
    pub fn new(units: i64, device: tch::Device) -> Self {
        Self {
            n: 0.0,
            sum: Tensor::zeros([units], (Kind::Double, device)),
            gram: Tensor::zeros([units, units], (Kind::Double, device)),
        }
    }

    /// Adds rows `x` (`[n, p]`, any float kind).
    pub fn add(&mut self, x: &Tensor) {
        let x = x.to_kind(Kind::Double);
        self.n += x.size()[0] as f64;
        self.sum += x.sum_dim_intlist(0, false, Kind::Double);
        self.gram += x.tr().matmul(&x);
    }

    /// Units (columns).
    pub fn units(&self) -> i64 {
        self.sum.size()[0]
    }

    /// The column means.
    pub fn mean(&self) -> Tensor {
        &self.sum / self.n.max(1.0)
    }

    /// The covariance `[p, p]` (divided by the row count).
    pub fn covariance(&self) -> Tensor {
        let m = self.mean();
        &self.gram / self.n.max(1.0) - m.unsqueeze(1).matmul(&m.unsqueeze(0))
    }
}

/// The running cross product `XᵀY` of two sides' rows.
pub struct Cross {
    /// `XᵀY` `[p, q]`.
    pub xy: Tensor,
}

impl Cross {
    /// Empty cross product of `p` and `q` columns.
    pub fn new(p: i64, q: i64, device: tch::Device) -> Self {
        Self {
            xy: Tensor::zeros([p, q], (Kind::Double, device)),
        }
    }

    /// Adds rows `x` `[n, p]` and `y` `[n, q]` (the same data points, in the same order).
    pub fn add(&mut self, x: &Tensor, y: &Tensor) {
        self.xy += x
            .to_kind(Kind::Double)
            .tr()
            .matmul(&y.to_kind(Kind::Double));
    }

    /// The cross-covariance given both sides' moments.
    pub fn covariance(&self, a: &Moments, b: &Moments) -> Tensor {
        let n = a.n.max(1.0);
        &self.xy / n - a.mean().unsqueeze(1).matmul(&b.mean().unsqueeze(0))
    }
}

/// Covariances of a pair of sides: `cxx [p, p]`, `cyy [q, q]`, `cxy [p, q]`.
pub struct PairCovariance {
    /// Covariance of A.
    pub cxx: Tensor,
    /// Covariance of B.
    pub cyy: Tensor,
    /// Cross-covariance of A and B.
    pub cxy: Tensor,
    /// Data points.
    pub n: f64,
}

impl PairCovariance {
    /// From streamed moments.
    pub fn from_moments(a: &Moments, b: &Moments, cross: &Cross) -> Self {
        Self {
            cxx: a.covariance(),
            cyy: b.covariance(),
            cxy: cross.covariance(a, b),
            n: a.n,
        }
    }

    /// From whole activation matrices `x [n, p]` and `y [n, q]`.
    pub fn from_rows(x: &Tensor, y: &Tensor) -> Self {
        let dev = x.device();
        let (mut a, mut b) = (
            Moments::new(x.size()[1], dev),
            Moments::new(y.size()[1], dev),
        );
        let mut c = Cross::new(x.size()[1], y.size()[1], dev);
        a.add(x);
        b.add(y);
        c.add(x, y);
        Self::from_moments(&a, &b, &c)
    }

    /// The same pair seen from B.
    pub fn swapped(&self) -> Self {
        Self {
            cxx: self.cyy.shallow_clone(),
            cyy: self.cxx.shallow_clone(),
            cxy: self.cxy.tr().contiguous(),
            n: self.n,
        }
    }
}

/// Principal directions of a covariance: eigenvalues (descending) and eigenvectors as columns,
/// without the numerically absent ones, and — with `keep` — only the fewest that hold that
/// share of the variance.
pub fn principal(cov: &Tensor, keep: Option<f64>) -> Result<(Vec<f64>, Tensor)> {
    let sym = (cov + cov.tr()) / 2.0;
    let (vals, vecs) = sym.f_linalg_eigh("L")?;
    let vals: Vec<f64> = Vec::<f64>::try_from(vals.to_kind(Kind::Double))?;
    let mut order: Vec<usize> = (0..vals.len()).collect();
    order.sort_by(|&i, &j| vals[j].total_cmp(&vals[i]));
    let top = order.first().map_or(0.0, |&i| vals[i]).max(0.0);
    order.retain(|&i| vals[i] > RANK_TOLERANCE * top && vals[i] > 0.0);
    if let Some(share) = keep {
        let total: f64 = order.iter().map(|&i| vals[i]).sum();
        let mut acc = 0.0;
        let mut k = 0;
        for &i in &order {
            acc += vals[i];
            k += 1;
            if acc >= share * total * (1.0 - 1e-12) {
                break;
            }
        }
        order.truncate(k);
    }
    let index = Tensor::from_slice(&order.iter().map(|&i| i as i64).collect::<Vec<_>>())
        .to_device(cov.device());
    let kept: Vec<f64> = order.iter().map(|&i| vals[i]).collect();
    Ok((kept, vecs.index_select(1, &index)))
}

/// What CCA found between two sides.
pub struct Cca {
    /// Canonical correlations, descending, in [0, 1].
    pub rho: Vec<f64>,
    /// Directions kept on each side (after the SVD reduction, if any).
    pub dims: (usize, usize),
    /// A's canonical weights `[p, k]`: column `i` maps A's centred rows to its `i`-th
    /// canonical variate (of unit variance).
    pub weights_a: Tensor,
}

/// Canonical correlation analysis of a pair, each side first reduced to the principal
/// directions that hold `keep` of its variance (`None`: every direction above the tolerance).
pub fn cca(pair: &PairCovariance, keep: Option<f64>) -> Result<Cca> {
    let (lx, vx) = principal(&pair.cxx, keep)?;
    let (ly, vy) = principal(&pair.cyy, keep)?;
    if lx.is_empty() || ly.is_empty() {
        bail!(
            "a layer's activations do not vary over the probe set (every unit constant); \
             use more or other probe images"
        );
    }
    let dev = pair.cxx.device();
    let inv_sqrt = |l: &[f64]| {
        Tensor::from_slice(&l.iter().map(|v| 1.0 / v.sqrt()).collect::<Vec<_>>()).to_device(dev)
    };
    let wx = vx * inv_sqrt(&lx).unsqueeze(0);
    let wy = vy * inv_sqrt(&ly).unsqueeze(0);
    let m = wx.tr().matmul(&pair.cxy).matmul(&wy);
    let (u, s, _v) = m.f_svd(true, true)?;
    let rho: Vec<f64> = Vec::<f64>::try_from(s.clamp(0.0, 1.0).to_kind(Kind::Double))?;
    Ok(Cca {
        rho,
        dims: (lx.len(), ly.len()),
        weights_a: wx.matmul(&u),
    })
}

/// SVCCA: the mean canonical correlation after keeping `keep` of each side's variance.
pub fn svcca(pair: &PairCovariance, keep: f64) -> Result<Cca> {
    cca(pair, Some(keep))
}

/// The mean of the canonical correlations.
pub fn mean(rho: &[f64]) -> f64 {
    rho.iter().sum::<f64>() / rho.len().max(1) as f64
}

/// PWCCA's projection weights of A's canonical variates: `αᵢ = Σⱼ |⟨hᵢ, xⱼ⟩|` over A's
/// centred units `xⱼ`, normalised to sum to 1.
pub fn projection_weights(pair: &PairCovariance, found: &Cca) -> Result<Vec<f64>> {
    // ⟨hᵢ, xⱼ⟩ = n·(Cxx aᵢ)ⱼ for the variate hᵢ = Xc aᵢ; the factor n cancels
    let k = found.rho.len() as i64;
    let proj = pair.cxx.matmul(&found.weights_a.narrow(1, 0, k)).abs();
    let alpha: Vec<f64> = Vec::<f64>::try_from(proj.sum_dim_intlist(0, false, Kind::Double))?;
    let total: f64 = alpha.iter().sum();
    if total <= 0.0 {
        bail!("PWCCA's weights are all zero: the first layer's units do not vary");
    }
    Ok(alpha.into_iter().map(|a| a / total).collect())
}

/// PWCCA: canonical correlations (every direction above the tolerance) weighted by
/// [`projection_weights`]; returns the similarity with the CCA it weighted.
pub fn pwcca(pair: &PairCovariance) -> Result<(f64, Cca)> {
    let found = cca(pair, None)?;
    let alpha = projection_weights(pair, &found)?;
    let value = alpha.iter().zip(&found.rho).map(|(a, r)| a * r).sum();
    Ok((value, found))
}

/// Linear CKA from the covariances: `‖Cxy‖²_F / (‖Cxx‖_F ‖Cyy‖_F)`.
pub fn linear_cka(pair: &PairCovariance) -> Result<f64> {
    let fro = |t: &Tensor| -> Result<f64> { Ok(f64::try_from(t.square().sum(Kind::Double))?) };
    let (xy, xx, yy) = (fro(&pair.cxy)?, fro(&pair.cxx)?, fro(&pair.cyy)?);
    if xx <= 0.0 || yy <= 0.0 {
        bail!(
            "a layer's activations do not vary over the probe set (every unit constant); \
             use more or other probe images"
        );
    }
    Ok(xy / (xx.sqrt() * yy.sqrt()))
}

/// One pair's result under a method.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Similarity {
    /// The similarity in [0, 1].
    pub value: f64,
    /// The canonical correlations, descending (SVCCA and PWCCA; empty for CKA).
    pub rho: Vec<f64>,
    /// Directions kept on each side (SVCCA: holding `keep` of the variance; PWCCA: every
    /// direction above the tolerance; CKA: the units).
    pub dims: (usize, usize),
}

/// Measures a pair with `method` (`keep` applies to SVCCA).
pub fn measure(pair: &PairCovariance, method: Method, keep: f64) -> Result<Similarity> {
    Ok(match method {
        Method::Svcca => {
            let c = svcca(pair, keep)?;
            Similarity {
                value: mean(&c.rho),
                rho: c.rho,
                dims: c.dims,
            }
        }
        Method::Pwcca => {
            let (value, c) = pwcca(pair)?;
            Similarity {
                value,
                rho: c.rho,
                dims: c.dims,
            }
        }
        Method::Cka => Similarity {
            value: linear_cka(pair)?,
            rho: Vec::new(),
            dims: (pair.cxx.size()[0] as usize, pair.cyy.size()[0] as usize),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn randn(rows: i64, cols: i64, seed: i64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn([rows, cols], (Kind::Double, Device::Cpu))
    }

    /// Data with a decaying spectrum and an offset, as layer activations have.
    fn layer(rows: i64, cols: i64, seed: i64) -> Tensor {
        let scales = Tensor::logspace(0.5, -1.5, cols, 10.0, (Kind::Double, Device::Cpu));
        randn(rows, cols, seed) * scales.unsqueeze(0) + 3.0
    }

    fn value(x: &Tensor, y: &Tensor, m: Method, keep: f64) -> f64 {
        measure(&PairCovariance::from_rows(x, y), m, keep)
            .unwrap()
            .value
    }

    #[test]
    fn a_layer_against_itself_gives_one() {
        let x = layer(400, 12, 1);
        for m in [Method::Svcca, Method::Pwcca, Method::Cka] {
            let v = value(&x, &x, m, DEFAULT_KEEP);
            assert!((v - 1.0).abs() < 1e-9, "{m:?}: {v}");
        }
    }

    #[test]
    fn an_invertible_map_keeps_cca_at_one_and_an_orthogonal_one_keeps_cka_at_one() {
        let x = layer(400, 10, 2);
        let m = randn(10, 10, 3) + Tensor::eye(10, (Kind::Double, Device::Cpu)) * 3.0;
        let mapped = x.matmul(&m) - 7.0;
        for method in [Method::Svcca, Method::Pwcca] {
            // every direction kept: CCA sees the same subspace
            let v = value(&x, &mapped, method, 1.0);
            assert!((v - 1.0).abs() < 1e-8, "{method:?}: {v}");
        }
        let (q, _) = Tensor::linalg_qr(&randn(10, 10, 4), "reduced");
        let rotated = x.matmul(&q) * 2.5 + 1.0;
        let v = value(&x, &rotated, Method::Cka, 1.0);
        assert!((v - 1.0).abs() < 1e-9, "CKA under a scaled rotation: {v}");
        // CKA is not invariant to a general invertible map
        assert!(value(&x, &mapped, Method::Cka, 1.0) < 0.99);
    }

    #[test]
    fn independent_random_layers_give_the_small_values_expected_for_their_size() {
        let (n, p, q) = (4000i64, 10i64, 16i64);
        let x = randn(n, p, 5);
        let y = randn(n, q, 6);
        let pair = PairCovariance::from_rows(&x, &y);
        let c = cca(&pair, None).unwrap();
        // E[Σρ²] = p·q/(n − 1) for independent Gaussian data
        let sum_sq: f64 = c.rho.iter().map(|r| r * r).sum();
        let expected = (p * q) as f64 / (n - 1) as f64;
        assert!(
            (sum_sq / expected - 1.0).abs() < 0.3,
            "Σρ² = {sum_sq}, expected {expected}"
        );
        // linear CKA ≈ √(pq)/n
        let cka = linear_cka(&pair).unwrap();
        let expected = ((p * q) as f64).sqrt() / n as f64;
        assert!(
            (cka / expected - 1.0).abs() < 0.35,
            "CKA = {cka}, expected {expected}"
        );
        assert!(measure(&pair, Method::Svcca, 0.99).unwrap().value < 0.1);
    }

    #[test]
    fn svcca_and_cka_are_symmetric_and_pwcca_weights_come_from_a() {
        let x = layer(300, 8, 7);
        let y = x.narrow(1, 0, 5).matmul(&randn(5, 6, 8)) + randn(300, 6, 9);
        let pair = PairCovariance::from_rows(&x, &y);
        let back = pair.swapped();
        for m in [Method::Svcca, Method::Cka] {
            let (a, b) = (
                measure(&pair, m, 0.99).unwrap(),
                measure(&back, m, 0.99).unwrap(),
            );
            assert!((a.value - b.value).abs() < 1e-10, "{m:?}");
        }
        let (a, b) = (pwcca(&pair).unwrap(), pwcca(&back).unwrap());
        // the same canonical correlations, weighted from each side
        for (r, s) in a.1.rho.iter().zip(&b.1.rho) {
            assert!((r - s).abs() < 1e-9);
        }
        assert!((a.0 - b.0).abs() > 1e-4, "{} {}", a.0, b.0);
    }

    #[test]
    fn constant_layers_and_unknown_methods_are_refused() {
        let x = layer(50, 4, 10);
        let flat = Tensor::ones([50, 3], (Kind::Double, Device::Cpu));
        let pair = PairCovariance::from_rows(&x, &flat);
        for m in [Method::Svcca, Method::Pwcca, Method::Cka] {
            let err = measure(&pair, m, 0.99).unwrap_err().to_string();
            assert!(err.contains("do not vary"), "{m:?}: {err}");
        }
        let err = "cca".parse::<Method>().unwrap_err().to_string();
        assert!(err.contains("svcca, pwcca or cka"));
    }

    #[test]
    fn svcca_keeps_the_fewest_directions_holding_the_share() {
        // variances 100, 1, 0.01: 99% needs the first two, 98% only the first
        let x = randn(2000, 3, 11) * Tensor::from_slice(&[10.0, 1.0, 0.1]).unsqueeze(0);
        let pair = PairCovariance::from_rows(&x, &x);
        let (vals, _) = principal(&pair.cxx, Some(0.98)).unwrap();
        assert_eq!(vals.len(), 1);
        let c = svcca(&pair, 0.995).unwrap();
        assert_eq!(c.dims, (2, 2));
    }
}
