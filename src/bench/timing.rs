//! Repeated timing and percentiles.
//!
//! Several workloads can be timed in interleaved rounds (one run of each per round), so that a
//! change in the machine's load during the measurement touches all of them alike and their
//! ratios stay meaningful on a shared machine.

use serde::Serialize;
use std::time::Instant;
use tch::Device;

/// Percentiles of a set of durations, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    /// Number of timed runs.
    pub runs: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// The `q` quantile (0..=1) of sorted values by linear interpolation between closest ranks.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

impl Percentiles {
    /// Summarises durations given in seconds.
    pub fn from_seconds(seconds: &[f64]) -> Self {
        let mut ms: Vec<f64> = seconds.iter().map(|s| s * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let mean = if ms.is_empty() {
            f64::NAN
        } else {
            ms.iter().sum::<f64>() / ms.len() as f64
        };
        Self {
            runs: ms.len(),
            p50_ms: quantile_sorted(&ms, 0.50),
            p95_ms: quantile_sorted(&ms, 0.95),
            p99_ms: quantile_sorted(&ms, 0.99),
            min_ms: ms.first().copied().unwrap_or(f64::NAN),
            mean_ms: mean,
        }
    }
}

/// Waits for queued device work so that a timer sees it finished.
pub fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// The most timed rounds of one measurement.
pub const MAX_RUNS: usize = 2000;

/// Times `jobs` in interleaved rounds (every round runs each job once, in order) after
/// `warmup` untimed rounds: at least `min_runs` rounds, and more until the timed rounds have
/// taken `min_seconds` in all (at most [`MAX_RUNS`]), so that fast workloads get enough
/// samples for their tail percentiles. Returns the durations in seconds per job.
pub fn interleaved(
    jobs: &mut [&mut dyn FnMut()],
    warmup: usize,
    min_runs: usize,
    min_seconds: f64,
    device: Device,
) -> Vec<Vec<f64>> {
    let mut times = vec![Vec::with_capacity(min_runs); jobs.len()];
    let mut spent = 0.0;
    let mut round = 0;
    while round < warmup + min_runs || (spent < min_seconds && round < warmup + MAX_RUNS) {
        for (job, t) in jobs.iter_mut().zip(times.iter_mut()) {
            sync(device);
            let start = Instant::now();
            job();
            sync(device);
            let took = start.elapsed().as_secs_f64();
            if round >= warmup {
                t.push(took);
                spent += took;
            }
        }
        round += 1;
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let s: Vec<f64> = (1..=101).map(|i| i as f64 / 1000.0).collect();
        let p = Percentiles::from_seconds(&s);
        assert_eq!(p.runs, 101);
        assert!((p.p50_ms - 51.0).abs() < 1e-9, "{p:?}");
        assert!((p.p95_ms - 96.0).abs() < 1e-9, "{p:?}");
        assert!((p.p99_ms - 100.0).abs() < 1e-9, "{p:?}");
        assert!((p.min_ms - 1.0).abs() < 1e-9 && (p.mean_ms - 51.0).abs() < 1e-9);
        // unsorted input, two values: the median lies halfway
        let p = Percentiles::from_seconds(&[0.004, 0.002]);
        assert!((p.p50_ms - 3.0).abs() < 1e-9 && (p.p99_ms - 3.98).abs() < 1e-9);
    }

    #[test]
    fn interleaved_rounds_run_every_job_once_per_round() {
        let order = std::cell::RefCell::new(Vec::new());
        let mut a = || order.borrow_mut().push('a');
        let mut b = || order.borrow_mut().push('b');
        let times = interleaved(&mut [&mut a, &mut b], 1, 3, 0.0, Device::Cpu);
        assert_eq!(times.len(), 2);
        assert!(times.iter().all(|t| t.len() == 3));
        assert_eq!(order.borrow().iter().collect::<String>(), "abababab");
    }

    #[test]
    fn fast_jobs_run_more_rounds_until_the_time_is_spent() {
        let mut nap = || std::thread::sleep(std::time::Duration::from_millis(2));
        let mut idle = || {};
        let times = interleaved(&mut [&mut nap, &mut idle], 0, 2, 0.03, Device::Cpu);
        let (n, m) = (times[0].len(), times[1].len());
        assert_eq!(n, m);
        // two rounds of at least 2 ms do not spend 30 ms: more rounds ran, and they stopped
        // with the round that reached it
        assert!(n > 2, "{n} rounds");
        let total: f64 = times.iter().flatten().sum();
        let last = times[0][n - 1] + times[1][n - 1];
        assert!(
            total >= 0.03 && total - last < 0.03,
            "{total} s in {n} rounds"
        );
    }
}
