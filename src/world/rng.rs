//! The world's own deterministic random numbers: SplitMix64, so that a seed gives the same scene
//! on every platform and every run, with no dependency on an outside generator's versioning.

/// One SplitMix64 mixing step: a bijective, well-scrambled hash of a 64-bit value.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A SplitMix64 generator: fast, tiny state, and good enough for layout sampling.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// Golden-ratio increment of SplitMix64.
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    /// A generator whose stream is fixed by `seed` (and `stream`, to draw independent streams
    /// from one seed).
    pub fn new(seed: u64, stream: u64) -> Self {
        Rng {
            state: mix64(seed ^ mix64(stream.wrapping_add(Self::GAMMA))),
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(Self::GAMMA);
        mix64(self.state)
    }

    /// A uniform integer in `0..n` (`n` > 0), by multiply-shift (bias below 2^-32 for the small
    /// `n` used here).
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
        let mut rng = Rng::new(seed, stream);
        (0..8).map(|_| rng.next_u64()).collect()
    }

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        assert_eq!(first_draws(7, 0), first_draws(7, 0));
        assert_ne!(first_draws(7, 0), first_draws(7, 1));
        assert_ne!(first_draws(7, 0), first_draws(8, 0));
    }

    #[test]
    fn ranges_are_inclusive_and_roughly_uniform() {
        let mut rng = Rng::new(1, 2);
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
}
