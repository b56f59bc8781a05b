//! The project's one seeded random generator, SplitMix64: a 64-bit state advanced by a constant
//! and mixed on output. Deterministic for a seed on every platform and run, with no dependency
//! on an outside generator's versioning, and its whole state is one `u64`, so it serialises
//! exactly. The world draws its scenes from it, the statistics their random choices.

/// Golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// One SplitMix64 mixing step: a bijective, well-scrambled hash of a 64-bit value.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A SplitMix64 generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose stream is fixed by `seed` (the seed is the starting state).
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// One of many independent streams drawn from one seed: the starting state mixes `seed`
    /// with `stream`.
    pub fn stream(seed: u64, stream: u64) -> Self {
        Self {
            state: mix64(seed ^ mix64(stream.wrapping_add(GAMMA))),
        }
    }

    /// The full state, for serialisation.
    pub fn state(&self) -> u64 {
        self.state
    }

    /// Restores a generator from a state returned by [`SplitMix64::state`].
    pub fn from_state(state: u64) -> Self {
        Self { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix64(self.state)
    }

    /// One fair random bit, 0 or 1.
    pub fn next_bit(&mut self) -> i64 {
        (self.next_u64() >> 63) as i64
    }

    /// A uniform draw from the half-open interval (0, 1].
    pub fn next_open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// The number of failures before the first success in Bernoulli trials of probability `p`
    /// (0 < p ≤ 1), drawn by inversion.
    pub fn geometric(&mut self, p: f64) -> i64 {
        if p >= 1.0 {
            return 0;
        }
        let draw = (self.next_open01().ln() / (-p).ln_1p()).floor();
        if draw >= i64::MAX as f64 {
            i64::MAX
        } else {
            draw as i64
        }
    }

    /// A uniform integer in `0..n` (`n` > 0), by multiply-shift (bias below 2^-32 for small
    /// `n`).
    pub fn below(&mut self, n: u32) -> u32 {
        debug_assert!(n > 0);
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// A uniform integer in `lo..=hi`.
    pub fn range(&mut self, lo: i32, hi: i32) -> i32 {
        debug_assert!(lo <= hi);
        lo + self.below((hi - lo + 1) as u32) as i32
    }

    /// A uniform `f32` in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A uniform `f32` in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }

    /// One element of a non-empty slice, uniformly.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u32) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_draws(seed: u64, stream: u64) -> Vec<u64> {
        let mut rng = SplitMix64::stream(seed, stream);
        (0..8).map(|_| rng.next_u64()).collect()
    }

    #[test]
    fn draws_match_the_reference_splitmix64() {
        // the first outputs of SplitMix64 seeded with 0 (the published reference values)
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        assert_eq!(first_draws(7, 0), first_draws(7, 0));
        assert_ne!(first_draws(7, 0), first_draws(7, 1));
        assert_ne!(first_draws(7, 0), first_draws(8, 0));
    }

    #[test]
    fn ranges_are_inclusive_and_roughly_uniform() {
        let mut rng = SplitMix64::stream(1, 2);
        let mut counts = [0u32; 5];
        for _ in 0..50_000 {
            let v = rng.range(-2, 2);
            assert!((-2..=2).contains(&v));
            counts[(v + 2) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "counts {counts:?}");
        }
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn geometric_mean_matches_its_rate() {
        let mut rng = SplitMix64::new(3);
        let p = 1.0 / 16.0;
        let n = 200_000;
        let total: i64 = (0..n).map(|_| rng.geometric(p)).sum();
        let mean = total as f64 / n as f64;
        // Mean (1-p)/p = 15, standard error about 15.5 / sqrt(n) = 0.035.
        assert!((mean - 15.0).abs() < 0.2, "mean {mean}");
    }

    #[test]
    fn state_round_trip_continues_the_stream() {
        let mut a = SplitMix64::new(11);
        a.next_u64();
        let mut b = SplitMix64::from_state(a.state());
        assert_eq!(a.next_u64(), b.next_u64());
        let bits: i64 = (0..10_000).map(|_| a.next_bit()).sum();
        assert!((4_700..5_300).contains(&bits), "{bits} ones");
    }
}
