//! How much memory a comparison takes, and the rule that makes it fit a budget.
//!
//! The moments do not grow with the probe size `N` (see [`super::accumulate`]); what a probe
//! batch of `B` inputs adds does. In bytes, for sources of `p_s` units on grids of `|g_s|`
//! positions, the distinct (source, common grid) views `V` the pairs need, and at most `K`
//! positions per input and grid:
//!
//! ```text
//! moments      8 · Σ_V p(p + 1)  +  8 · Σ_pairs p·q                  (independent of N and B)
//! captured     4 · B · Σ_s p_s·|g_s|                                 (the layer outputs, f32)
//! rows         4 · B · Σ_V p·min(|g|, K)                             (each view's rows, f32)
//! transient   16 · B · max_V p·min(|g|, K)                           (a pair's rows in f64)
//! ```
//!
//! plus the networks' weights and one forward pass. The same for SVCCA, PWCCA and CKA: all
//! three are computed from these moments (the measure itself adds a few `p × p` matrices).
//!
//! The rule ([`plan`]), applied when the estimate at the asked batch exceeds the budget:
//! first the batch is lowered (the result does not change, only the number of passes); if a
//! single input is still too large, each input keeps `K` of its positions on every grid larger
//! than `K`, drawn uniformly without replacement from a seed and the input's place in the probe
//! set — the same positions for every layer compared on that grid, whatever the batching — with
//! `K` the largest that fits. Moments larger than the budget on their own are refused: fewer
//! layers or pairs are the only cure.

use crate::prng::SplitMix64;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// The memory budget by default: 16 GiB, leaving a 24 GiB machine room for the networks'
/// weights, a forward pass and the system.
pub const DEFAULT_BUDGET: u64 = 16 << 30;

type Grid = (i64, i64);

/// A layer output as the estimate sees it: units and grid.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Units (channels).
    pub units: i64,
    /// Spatial grid (`(1, 1)` for a flat layer).
    pub grid: Grid,
}

/// The estimate's parts, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    /// Moments of every view and pair (independent of the probe size and batch).
    pub moments: u64,
    /// One batch of captured layer outputs.
    pub captured: u64,
    /// One batch of rows on the common grids, and a pair's rows in f64.
    pub rows: u64,
    /// The sum.
    pub total: u64,
}

/// The distinct (source, common grid) views the pairs need.
fn views(shapes: &[Shape], pairs: &[(usize, usize)]) -> BTreeMap<(usize, Grid), i64> {
    let mut v = BTreeMap::new();
    for &(i, j) in pairs {
        let g = super::grid::common_grid(shapes[i].grid, shapes[j].grid);
        v.insert((i, g), shapes[i].units);
        v.insert((j, g), shapes[j].units);
    }
    v
}

fn area(g: Grid) -> u64 {
    (g.0 * g.1) as u64
}

/// The memory of streaming `pairs` of `shapes` in batches of `batch`, keeping at most
/// `positions` positions per input and grid.
pub fn estimate(
    shapes: &[Shape],
    pairs: &[(usize, usize)],
    batch: usize,
    positions: Option<u64>,
) -> Estimate {
    let views = views(shapes, pairs);
    let b = batch as u64;
    let kept = |g: Grid| positions.map_or(area(g), |k| area(g).min(k));
    let moments = views
        .values()
        .map(|&p| 8 * (p * (p + 1)) as u64)
        .sum::<u64>()
        + pairs
            .iter()
            .map(|&(i, j)| 8 * (shapes[i].units * shapes[j].units) as u64)
            .sum::<u64>();
    let captured = 4
        * b
        * shapes
            .iter()
            .map(|s| s.units as u64 * area(s.grid))
            .sum::<u64>();
    let per_view = views.iter().map(|(&(_, g), &p)| p as u64 * kept(g));
    let rows = 4 * b * per_view.clone().sum::<u64>() + 16 * b * per_view.max().unwrap_or(0);
    Estimate {
        moments,
        captured,
        rows,
        total: moments + captured + rows,
    }
}

/// How a comparison is run within the budget (recorded in the JSON reports).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryPlan {
    /// The budget in bytes.
    pub budget: u64,
    /// The estimate at the asked batch with every position (or the asked `--max-positions`).
    pub asked: Estimate,
    /// The estimate as run.
    pub planned: Estimate,
    /// Probe inputs per batch as run.
    pub batch: usize,
    /// Positions kept per input and grid (`None`: every position).
    pub positions: Option<u64>,
    /// The seed of the position sample.
    pub seed: u64,
    /// What the rule did, in words (`None`: nothing).
    pub rule: Option<String>,
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Chooses the batch and the positions per input so that the estimate fits `budget` (see the
/// module's rule); `max_positions` is a cap the user asked for, kept in any case.
pub fn plan(
    shapes: &[Shape],
    pairs: &[(usize, usize)],
    batch: usize,
    max_positions: Option<u64>,
    budget: u64,
    seed: u64,
) -> Result<MemoryPlan> {
    if batch == 0 {
        bail!("the batch must hold at least one probe input");
    }
    if max_positions == Some(0) {
        bail!("--max-positions must keep at least one position per input");
    }
    let asked = estimate(shapes, pairs, batch, max_positions);
    let done = |batch, positions, planned, rule| MemoryPlan {
        budget,
        asked,
        planned,
        batch,
        positions,
        seed,
        rule,
    };
    if asked.total <= budget {
        return Ok(done(batch, max_positions, asked, None));
    }
    if asked.moments >= budget {
        bail!(
            "the moments of these layer pairs alone need {} (budget {}); compare fewer layers or \
             pairs, or raise --memory-budget",
            gib(asked.moments),
            gib(budget)
        );
    }
    // Everything but the moments is linear in the batch.
    let per_input = (asked.total - asked.moments).div_ceil(batch as u64);
    let fits = ((budget - asked.moments) / per_input.max(1)) as usize;
    if fits >= 1 {
        let planned = estimate(shapes, pairs, fits, max_positions);
        let rule = format!(
            "estimated {} at batch {batch} exceeds the budget {}: batch lowered to {fits} \
             ({}; every position kept)",
            gib(asked.total),
            gib(budget),
            gib(planned.total)
        );
        return Ok(done(fits, max_positions, planned, Some(rule)));
    }
    let largest = shapes.iter().map(|s| area(s.grid)).max().unwrap_or(1);
    let upper = max_positions.unwrap_or(largest).min(largest);
    let over = |k: u64| estimate(shapes, pairs, 1, Some(k)).total > budget;
    if over(1) {
        bail!(
            "one probe input needs {} even with one position per grid (budget {}): its layer \
             outputs alone are too large; compare fewer layers or raise --memory-budget",
            gib(estimate(shapes, pairs, 1, Some(1)).total),
            gib(budget)
        );
    }
    let (mut lo, mut hi) = (1, upper);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if over(mid) { hi = mid - 1 } else { lo = mid }
    }
    let planned = estimate(shapes, pairs, 1, Some(lo));
    let rule = format!(
        "estimated {} at batch {batch} exceeds the budget {}, and one input with every position \
         still does: batch 1 and {lo} positions per input on every larger grid, sampled \
         uniformly without replacement (seed {seed}) ({})",
        gib(asked.total),
        gib(budget),
        gib(planned.total)
    );
    Ok(done(1, Some(lo), planned, Some(rule)))
}

/// The positions (row indices within a batch's `[B·h·w, C]` rows) kept for inputs
/// `first..first + batch` on a grid of `area` positions: `k` per input, drawn without
/// replacement from the seed, the input's place in the probe set and the grid, in ascending
/// order; `None` when every position is kept.
pub fn sample_positions(
    seed: u64,
    first: u64,
    batch: i64,
    grid: (i64, i64),
    k: Option<u64>,
    device: Device,
) -> Option<Tensor> {
    let area = grid.0 * grid.1;
    let k = k.filter(|&k| (k as i64) < area)? as usize;
    let mut index = Vec::with_capacity(batch as usize * k);
    let mut perm: Vec<i64> = Vec::with_capacity(area as usize);
    for b in 0..batch {
        let input = first + b as u64;
        let stream = crate::prng::mix64(input ^ ((grid.0 as u64) << 40) ^ ((grid.1 as u64) << 20));
        let mut rng = SplitMix64::stream(seed, stream);
        perm.clear();
        perm.extend(0..area);
        for i in 0..k {
            let j = i + (rng.next_u64() % (area as u64 - i as u64)) as usize;
            perm.swap(i, j);
        }
        let mut chosen = perm[..k].to_vec();
        chosen.sort_unstable();
        index.extend(chosen.into_iter().map(|p| b * area + p));
    }
    Some(
        Tensor::from_slice(&index)
            .to_kind(Kind::Int64)
            .to_device(device),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vgg_like() -> Vec<Shape> {
        vec![
            Shape {
                units: 64,
                grid: (224, 224),
            },
            Shape {
                units: 512,
                grid: (28, 28),
            },
            Shape {
                units: 512,
                grid: (14, 14),
            },
        ]
    }

    #[test]
    fn the_estimate_follows_its_formula() {
        let s = vgg_like();
        let pairs = [(1, 2)];
        let e = estimate(&s, &pairs, 10, None);
        // views: layer 1 and 2 on 14×14
        assert_eq!(e.moments, 2 * 8 * 512 * 513 + 8 * 512 * 512);
        assert_eq!(
            e.captured,
            4 * 10 * (64 * 224 * 224 + 512 * 784 + 512 * 196)
        );
        assert_eq!(e.rows, 4 * 10 * 2 * 512 * 196 + 16 * 10 * 512 * 196);
        assert_eq!(e.total, e.moments + e.captured + e.rows);
        let half = estimate(&s, &pairs, 5, None);
        assert_eq!(2 * (half.total - half.moments), e.total - e.moments);
    }

    #[test]
    fn the_rule_lowers_the_batch_first_then_samples_positions() {
        let s = vgg_like();
        let pairs = [(0, 0), (0, 1), (1, 2)];
        let big = plan(&s, &pairs, 25, None, 64 << 30, 0).unwrap();
        assert_eq!(
            (big.batch, big.positions, big.rule.is_none()),
            (25, None, true)
        );
        let one = estimate(&s, &pairs, 1, None).total;
        let lowered = plan(&s, &pairs, 25, None, 3 * one, 0).unwrap();
        assert_eq!((lowered.batch, lowered.positions), (3, None));
        assert!(lowered.planned.total <= 3 * one && lowered.rule.is_some());
        let sampled = plan(&s, &pairs, 25, None, one - 1, 0).unwrap();
        let k = sampled.positions.unwrap();
        assert_eq!(sampled.batch, 1);
        assert!(sampled.planned.total < one);
        assert!(estimate(&s, &pairs, 1, Some(k + 1)).total >= one);
        assert!(plan(&s, &pairs, 25, None, 1 << 20, 0).is_err());
    }

    #[test]
    fn sampled_positions_are_distinct_seeded_and_independent_of_batching() {
        let g = (8, 8);
        let all = sample_positions(3, 10, 4, g, Some(5), Device::Cpu).unwrap();
        let v: Vec<i64> = Vec::try_from(&all).unwrap();
        assert_eq!(v.len(), 20);
        for b in 0..4 {
            let mine = &v[b * 5..b * 5 + 5];
            assert!(mine.windows(2).all(|w| w[0] < w[1]));
            assert!(
                mine.iter()
                    .all(|&p| p >= b as i64 * 64 && p < (b as i64 + 1) * 64)
            );
        }
        let later = sample_positions(3, 12, 2, g, Some(5), Device::Cpu).unwrap();
        let w: Vec<i64> = Vec::try_from(&later).unwrap();
        assert_eq!(
            w.iter().map(|p| p % 64).collect::<Vec<_>>(),
            v[10..].iter().map(|p| p % 64).collect::<Vec<_>>()
        );
        let other: Vec<i64> =
            Vec::try_from(&sample_positions(4, 10, 4, g, Some(5), Device::Cpu).unwrap()).unwrap();
        assert_ne!(v, other);
        assert!(sample_positions(3, 0, 4, g, Some(64), Device::Cpu).is_none());
        assert!(sample_positions(3, 0, 4, g, None, Device::Cpu).is_none());
    }
}
