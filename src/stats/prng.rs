//! The small seeded generator behind the statistics' random choices: deterministic for a seed,
//! its whole state is one `u64`, so it serialises exactly.

/// SplitMix64: a 64-bit state advanced by a constant and mixed on output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
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
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
