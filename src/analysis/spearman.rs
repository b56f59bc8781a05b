//! Rank correlation: Spearman's ρ as the Pearson correlation of average ranks (ties share the
//! mean of their ranks).

use anyhow::{Result, bail};

/// Ranks `1..=n` of `values`, ties given their average rank.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            ranks[o] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson correlation; `None` when either side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

/// Spearman's ρ between two equally long series; `None` when either is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> Result<Option<f64>> {
    if a.len() != b.len() || a.len() < 2 {
        bail!(
            "a rank correlation needs two series of the same length (at least 2), got {} and {}",
            a.len(),
            b.len()
        );
    }
    if a.iter().chain(b).any(|v| !v.is_finite()) {
        bail!("a rank correlation needs finite values");
    }
    Ok(pearson(&average_ranks(a), &average_ranks(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_ranks_and_monotone_maps_give_one() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
        let a = [0.1, 0.5, 0.2, 0.9, 0.3];
        let b: Vec<f64> = a.iter().map(|x: &f64| x.powi(3) * 7.0 - 1.0).collect();
        assert!((spearman(&a, &b).unwrap().unwrap() - 1.0).abs() < 1e-12);
        let c: Vec<f64> = a.iter().map(|x| -x).collect();
        assert!((spearman(&a, &c).unwrap().unwrap() + 1.0).abs() < 1e-12);
        // by hand: ranks a = 1 4 2 5 3, d = 2 1 4 3 5 → Σd² = 1+9+4+4+4 = 22, ρ = 1 − 6·22/120
        let d = [0.2, 0.1, 0.4, 0.3, 0.5];
        let rho = spearman(&a, &d).unwrap().unwrap();
        assert!((rho - (1.0 - 6.0 * 22.0 / 120.0)).abs() < 1e-12, "{rho}");
        assert_eq!(spearman(&a, &[1.0; 5]).unwrap(), None);
        assert!(spearman(&a, &d[..3]).is_err());
    }
}
