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
#[derive(Clone)]
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
#[derive(Clone)]
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

/// The largest image id: rows beyond it would take minutes to reach; use `--z FILE` instead.
pub const MAX_ID: u64 = 50_000_000;

/// Rows between two saved positions of a [`ZStream`].
const SNAPSHOT_EVERY: u64 = 4096;

/// One latent stream (seed and row length) drawn in order, with its generator's state saved
/// every few thousand rows: drawing any rows costs time linear in the largest id drawn so far
/// once, plus at most a few thousand rows per call, whatever order the calls come in.
pub struct ZStream {
    dim: usize,
    /// The generator positioned at the start of row `row`.
    rng: LegacyNormal,
    row: u64,
    /// The generator at the start of rows 0, SNAPSHOT_EVERY, 2·SNAPSHOT_EVERY, … reached so far.
    snapshots: Vec<LegacyNormal>,
    /// Rows generated since the stream was made (skipped or kept), for tests and timings.
    pub rows_generated: u64,
}

impl ZStream {
    /// The stream with seed `seed` cut into rows of `dim` values.
    pub fn new(seed: u32, dim: usize) -> Self {
        let rng = LegacyNormal::new(seed);
        Self {
            dim,
            snapshots: vec![rng.clone()],
            rng,
            row: 0,
            rows_generated: 0,
        }
    }

    /// Moves to the start of row `id`, from the nearest saved position at or before it.
    fn seek(&mut self, id: u64) {
        if id < self.row {
            let k = (id / SNAPSHOT_EVERY) as usize;
            self.rng = self.snapshots[k].clone();
            self.row = k as u64 * SNAPSHOT_EVERY;
        }
        while self.row < id {
            self.next_row(None);
        }
    }

    /// Draws the current row into `dst` (or skips it) and saves a snapshot at its boundary.
    fn next_row(&mut self, dst: Option<&mut [f32]>) {
        match dst {
            Some(dst) => {
                for v in dst.iter_mut() {
                    *v = self.rng.next_normal() as f32;
                }
            }
            None => {
                for _ in 0..self.dim {
                    self.rng.next_normal();
                }
            }
        }
        self.row += 1;
        self.rows_generated += 1;
        if self.row.is_multiple_of(SNAPSHOT_EVERY)
            && self.snapshots.len() as u64 == self.row / SNAPSHOT_EVERY
        {
            self.snapshots.push(self.rng.clone());
        }
    }

    /// Rows `ids` as `[ids.len() · dim]` values, row after row.
    pub fn rows(&mut self, ids: &[u64]) -> Result<Vec<f32>> {
        if let Some(&big) = ids.iter().find(|&&i| i > MAX_ID) {
            bail!("image id {big} is too large (at most {MAX_ID}); use a smaller id or --z FILE");
        }
        let dim = self.dim;
        let mut order: Vec<(u64, usize)> = ids.iter().copied().zip(0..).collect();
        order.sort_unstable();
        let mut out = vec![0f32; ids.len() * dim];
        let mut previous: Option<(u64, usize)> = None;
        for (id, pos) in order {
            if let Some((prev_id, prev_pos)) = previous.filter(|p| p.0 == id) {
                // a repeated id: copy the row already drawn
                out.copy_within(prev_pos * dim..(prev_pos + 1) * dim, pos * dim);
                previous = Some((prev_id, prev_pos));
                continue;
            }
            self.seek(id);
            self.next_row(Some(&mut out[pos * dim..(pos + 1) * dim]));
            previous = Some((id, pos));
        }
        Ok(out)
    }
}

/// The streams drawn from in this process, by seed and row length.
static STREAMS: std::sync::Mutex<Vec<((u32, usize), ZStream)>> = std::sync::Mutex::new(Vec::new());

/// The first `n` latent vectors of the stream with seed `seed`, as a `[n, dim]` float32 tensor.
pub fn z_dataset(seed: u32, n: usize, dim: usize, device: Device) -> Result<Tensor> {
    z_rows(seed, &(0..n as u64).collect::<Vec<_>>(), dim, device)
}

/// Rows `ids` of the stream with seed `seed` (image ids), as a `[ids.len(), dim]` tensor.
/// The process keeps each stream it draws from ([`ZStream`]), so batch after batch of a long
/// id range costs time linear in the largest id, once per process.
pub fn z_rows(seed: u32, ids: &[u64], dim: usize, device: Device) -> Result<Tensor> {
    if dim == 0 {
        bail!("latent size must be positive");
    }
    let values = {
        let mut streams = STREAMS.lock().unwrap_or_else(|p| p.into_inner());
        let i = match streams.iter().position(|(key, _)| *key == (seed, dim)) {
            Some(i) => i,
            None => {
                streams.push(((seed, dim), ZStream::new(seed, dim)));
                streams.len() - 1
            }
        };
        streams[i].1.rows(ids)?
    };
    Ok(Tensor::from_slice(&values)
        .view([ids.len() as i64, dim as i64])
        .to_kind(Kind::Float)
        .to_device(device))
}

/// Most ids one list may hold: enough for any dissection or batch of images.
pub const MAX_IDS: u64 = 10_000_000;

/// Refuses `count` images starting at id `first` when they are more than [`MAX_IDS`] or reach
/// past [`MAX_ID`]; `option` names the flag to fix.
pub fn check_id_range(option: &str, first: u64, count: u64) -> Result<()> {
    if count > MAX_IDS {
        bail!("{option} {count} is more than can be held (at most {MAX_IDS} images); give fewer");
    }
    if first.saturating_add(count) > MAX_ID + 1 {
        bail!(
            "{option} {count} from id {first} reaches past the largest image id {MAX_ID}; give fewer \
             or start lower"
        );
    }
    Ok(())
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
        let (a, end) = if let Some((a, b)) = part.split_once("..") {
            let a: u64 = a.trim().parse().map_err(|_| bad())?;
            let end = match b.strip_prefix('=') {
                Some(b) => b
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| bad())?
                    .saturating_add(1),
                None => b.trim().parse::<u64>().map_err(|_| bad())?,
            };
            if end <= a {
                bail!("the id range '{part}' is empty");
            }
            (a, end)
        } else {
            let id: u64 = part.parse().map_err(|_| bad())?;
            (id, id.saturating_add(1))
        };
        if end - 1 > MAX_ID {
            bail!(
                "'{part}' reaches image id {}, beyond the largest id {MAX_ID}; use smaller ids or \
                 --z FILE",
                end - 1
            );
        }
        if ids.len() as u64 + (end - a) > MAX_IDS {
            bail!("'{spec}' names more than {MAX_IDS} images; give fewer ids (or several runs)");
        }
        ids.extend(a..end);
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
    fn a_long_id_range_in_batches_draws_each_row_once() {
        let ids: Vec<u64> = (100_000..100_064).collect();
        let mut stream = ZStream::new(1, 4);
        let mut rows = Vec::new();
        for batch in ids.chunks(8) {
            rows.extend(stream.rows(batch).unwrap());
        }
        // every row up to the last id once, not the whole prefix again for every batch
        assert_eq!(stream.rows_generated, 100_064);
        let mut fresh = ZStream::new(1, 4);
        assert_eq!(fresh.rows(&ids).unwrap(), rows);
        // going back costs at most the rows since a saved position
        let before = stream.rows_generated;
        let again = stream.rows(&[100_000]).unwrap();
        assert_eq!(again, rows[..4]);
        assert!(stream.rows_generated - before <= SNAPSHOT_EVERY);
        assert_eq!(
            stream.rows(&[3, 3]).unwrap()[..4],
            fresh.rows(&[3]).unwrap()[..]
        );
    }

    #[test]
    fn impossible_id_lists_are_refused_before_allocating() {
        let err = parse_ids("0..18446744073709551615")
            .unwrap_err()
            .to_string();
        assert!(err.contains("beyond the largest id"), "{err}");
        let err = parse_ids("0..=18446744073709551615")
            .unwrap_err()
            .to_string();
        assert!(err.contains("beyond the largest id"), "{err}");
        let err = parse_ids("0..9000000,0..9000000").unwrap_err().to_string();
        assert!(err.contains("more than 10000000 images"), "{err}");
        assert_eq!(parse_ids("49999999..=50000000").unwrap().len(), 2);
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
