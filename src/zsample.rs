//! Latent vectors from seeds, reproducing numpy's legacy `RandomState(seed).standard_normal`.
//!
//! Image *i* of a sample stream with seed *s* is row *i* of
//! `RandomState(s).standard_normal(n·dim).reshape(n, dim)` cast to float32: the same vectors
//! the reference tools use (image ids of the GAN painting demo are rows of the stream with
//! seed 1). The stream is prefix-stable: the first rows do not depend on `n`.
//!
//! The generator is MT19937 seeded with `init_genrand`, doubles are built from two 32-bit
//! outputs with 53 random bits, and normals come from the Marsaglia polar method, which yields
//! two values per accepted pair and returns the second one first.

use anyhow::{Result, bail};
use tch::{Device, Kind, Tensor};

/// The seed of the default sample stream (image ids are rows of it).
pub const DEFAULT_STREAM_SEED: u32 = 1;

const N: usize = 624;
const M: usize = 397;

/// The Mersenne Twister MT19937.
pub struct Mt19937 {
    state: [u32; N],
    index: usize,
}

impl Mt19937 {
    /// Seeds the generator as `init_genrand(seed)` does.
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; N];
        state[0] = seed;
        for i in 1..N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, index: N }
    }

    fn twist(&mut self) {
        for i in 0..N {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % N] & 0x7fff_ffff);
            let mut next = self.state[(i + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// The next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A double in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }
}

/// numpy's legacy normal sampler: Marsaglia's polar method over [`Mt19937`].
pub struct LegacyNormal {
    mt: Mt19937,
    cached: Option<f64>,
}

impl LegacyNormal {
    /// A stream equal to `numpy.random.RandomState(seed)`'s `standard_normal`.
    pub fn new(seed: u32) -> Self {
        Self {
            mt: Mt19937::new(seed),
            cached: None,
        }
    }

    /// The next standard normal value.
    pub fn next_normal(&mut self) -> f64 {
        if let Some(v) = self.cached.take() {
            return v;
        }
        loop {
            let x1 = 2.0 * self.mt.next_f64() - 1.0;
            let x2 = 2.0 * self.mt.next_f64() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.cached = Some(f * x1);
                return f * x2;
            }
        }
    }
}

/// The first `n` latent vectors of the stream with seed `seed`, as a `[n, dim]` float32 tensor.
pub fn z_dataset(seed: u32, n: usize, dim: usize, device: Device) -> Result<Tensor> {
    z_rows(seed, &(0..n as u64).collect::<Vec<_>>(), dim, device)
}

/// Rows `ids` of the stream with seed `seed` (image ids), as a `[ids.len(), dim]` tensor.
/// Drawing row *i* costs generating the *i* rows before it; ids up to about a million are fine.
pub fn z_rows(seed: u32, ids: &[u64], dim: usize, device: Device) -> Result<Tensor> {
    if dim == 0 {
        bail!("latent size must be positive");
    }
    const MAX_ID: u64 = 50_000_000;
    if let Some(&big) = ids.iter().find(|&&i| i > MAX_ID) {
        bail!("image id {big} is too large (at most {MAX_ID}); use a smaller id or --z FILE");
    }
    let mut order: Vec<(u64, usize)> = ids.iter().copied().zip(0..).collect();
    order.sort_unstable();
    let mut out = vec![0f32; ids.len() * dim];
    let mut rng = LegacyNormal::new(seed);
    let mut row = 0u64;
    for (id, pos) in order {
        while row < id {
            for _ in 0..dim {
                rng.next_normal();
            }
            row += 1;
        }
        if row == id {
            let dst = &mut out[pos * dim..(pos + 1) * dim];
            for v in dst.iter_mut() {
                *v = rng.next_normal() as f32;
            }
            row += 1;
        } else {
            // A repeated id: copy the row already drawn.
            let first = ids.iter().position(|&i| i == id).unwrap();
            let (src, dst) = (first * dim, pos * dim);
            let row_copy: Vec<f32> = out[src..src + dim].to_vec();
            out[dst..dst + dim].copy_from_slice(&row_copy);
        }
    }
    Ok(Tensor::from_slice(&out)
        .view([ids.len() as i64, dim as i64])
        .to_kind(Kind::Float)
        .to_device(device))
}

/// Parses image ids: `7`, `0..16` (end exclusive), `0..=15`, or a comma-separated mix.
pub fn parse_ids(spec: &str) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || {
            anyhow::anyhow!(
                "cannot read '{part}' as ids: use N, A..B, A..=B or a comma-separated list"
            )
        };
        if let Some((a, b)) = part.split_once("..") {
            let a: u64 = a.trim().parse().map_err(|_| bad())?;
            let (b, inclusive) = match b.strip_prefix('=') {
                Some(b) => (b.trim().parse::<u64>().map_err(|_| bad())?, true),
                None => (b.trim().parse::<u64>().map_err(|_| bad())?, false),
            };
            let end = if inclusive { b + 1 } else { b };
            if end <= a {
                bail!("the id range '{part}' is empty");
            }
            ids.extend(a..end);
        } else {
            ids.push(part.parse().map_err(|_| bad())?);
        }
    }
    if ids.is_empty() {
        bail!("no ids given in '{spec}'");
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_sequence() {
        // init_genrand(5489): the 10000th output is 4123659995 (the generator's published check).
        let mut mt = Mt19937::new(5489);
        let mut last = 0;
        for _ in 0..10_000 {
            last = mt.next_u32();
        }
        assert_eq!(last, 4_123_659_995);
    }

    #[test]
    fn rows_are_prefix_stable_and_ids_select_rows() {
        let all = z_dataset(1, 5, 8, Device::Cpu).unwrap();
        let some = z_rows(1, &[3, 0, 3], 8, Device::Cpu).unwrap();
        assert!(some.get(0).equal(&all.get(3)));
        assert!(some.get(1).equal(&all.get(0)));
        assert!(some.get(2).equal(&all.get(3)));
        let first = z_dataset(1, 2, 8, Device::Cpu).unwrap();
        assert!(first.equal(&all.narrow(0, 0, 2)));
        let mean = f64::try_from(
            z_dataset(2, 200, 64, Device::Cpu)
                .unwrap()
                .mean(Kind::Float),
        )
        .unwrap();
        assert!(mean.abs() < 0.02, "mean {mean}");
    }

    #[test]
    fn id_lists_parse() {
        assert_eq!(parse_ids("0..3").unwrap(), [0, 1, 2]);
        assert_eq!(parse_ids("0..=2, 7").unwrap(), [0, 1, 2, 7]);
        assert!(parse_ids("3..3").unwrap_err().to_string().contains("empty"));
        assert!(
            parse_ids("a..b")
                .unwrap_err()
                .to_string()
                .contains("cannot read 'a..b'")
        );
    }
}
