//! A streaming, mergeable per-column quantile sketch.

use anyhow::{Result, bail};
use tch::{Device, Kind, Tensor};

use super::check;
use super::store::{NamedTensors, Statistic, fetch, fetch_shaped};
use crate::prng::SplitMix64;

/// Default number of values each compactor level holds per column.
pub const DEFAULT_RESOLUTION: usize = 2048;
/// Default sampling floor, as a multiple of the resolution (see [`RunningQuantile`]).
pub const DEFAULT_SAMPLE_FLOOR_PER_RESOLUTION: i64 = 16;
/// Version of the serialised layout.
const LAYOUT: i64 = 1;
/// Fixed entries at the head of the serialised state vector.
const STATE_HEAD: usize = 10;

/// One compactor level: `[columns, n]` values, all of weight `2^level`.
struct Level {
    data: Tensor,
    sorted: bool,
}

/// Per-column streaming quantiles of a stream of `[rows, columns]` batches (rows are samples,
/// columns are units), after the KLL family of sketches.
///
/// **How it works.** Incoming rows enter a hierarchy of compactor levels; values at level `h`
/// carry weight `2^h`. A level holding `resolution` or more values per column is compacted:
/// each column is sorted and every other value is kept, starting at offset 0 or 1 drawn from the
/// sketch's own seeded generator (one draw per compaction, shared by all columns), and the kept
/// values move up one level. Exact per-column minimum and maximum are tracked. Once more than
/// twice the *sampling floor* `S` of rows has been seen, later rows are Bernoulli-sampled at rate
/// `2^-s` (the largest `s` with `count ≥ S·2^(s+1)`) and enter level `s`; this keeps the sort work
/// bounded (about `S·log2(n/S)` sorted rows for `n` rows), so sketching is dominated by one pass
/// over the data. The retained values grow by at most one level of `resolution` values per
/// doubling of the stream. Results are deterministic for a fixed seed and the same sequence of
/// batches.
///
/// **Error bound.** Let `n` be the number of rows, `k` the resolution, `S` the sampling floor,
/// and measure the rank error of a returned quantile `x̂` at level `q` as the distance from `q`
/// to `[#{x < x̂}/n, #{x ≤ x̂}/n]`. Then, with probability at least `1 − 1e-5` for each query,
///
/// `ε(q) ≤ 1/(2n) + 8/k + 5·sqrt(q(1−q)/S)`,
///
/// where the `8/k` term is dropped while nothing has been compacted and the sampling term while
/// nothing has been sampled ([`RunningQuantile::rank_error_bound`] evaluates it). Reasoning: the
/// mid-point interpolation is off by at most half the largest weight, `≤ 1/k` of `n`; each
/// compaction at level `h` shifts any rank by 0 or `±2^h` with equal odds, and a level is compacted
/// at most `n/(k·2^h)` times, so the compaction error has standard deviation `≤ √2·n/k`
/// (sub-Gaussian, five deviations are used); sampling adds a ratio-estimator error of standard
/// deviation `≤ sqrt(q(1−q)/S)`. The same holds for merged sketches. With the defaults
/// (`k = 2048`, `S = 16k`) the bound is 0.0039 + 0.0276·sqrt(q(1−q)): 0.0066 at q = 0.99 and
/// 0.0177 at the median, while typical errors are several times smaller. While
/// [`RunningQuantile::is_exact`] holds, results are exact mid-point quantiles. On a GPU, where
/// sorting is cheap, a larger floor or none ([`RunningQuantile::with_sample_floor`]) tightens the
/// bound.
pub struct RunningQuantile {
    resolution: i64,
    sample_floor: Option<i64>,
    device: Device,
    columns: Option<i64>,
    count: i64,
    extremes: Option<(Tensor, Tensor)>,
    levels: Vec<Option<Level>>,
    sample_exp: i64,
    skip: i64,
    compactions: i64,
    rng: SplitMix64,
}

impl RunningQuantile {
    /// An empty sketch keeping `resolution` values per column and level (default
    /// [`DEFAULT_RESOLUTION`]), drawing its random choices from `seed`, with its state on `device`.
    /// The sampling floor defaults to 16 × `resolution` rows. For exact quantiles of data that
    /// fit in memory, choose `resolution` above the row count and no floor.
    pub fn new(resolution: usize, seed: u64, device: Device) -> Result<Self> {
        if !(4..=1 << 30).contains(&resolution) {
            bail!(
                "quantile resolution must be between 4 and 2^30, got {resolution}; 2048 is the usual choice"
            );
        }
        let resolution = resolution as i64;
        Ok(Self {
            resolution,
            sample_floor: Some(resolution * DEFAULT_SAMPLE_FLOOR_PER_RESOLUTION),
            device,
            columns: None,
            count: 0,
            extremes: None,
            levels: Vec::new(),
            sample_exp: 0,
            skip: 0,
            compactions: 0,
            rng: SplitMix64::new(seed),
        })
    }

    /// Sets the sampling floor: the number of rows `S` below which every row is sketched
    /// (`None`: never sample, every row is sorted at least once). Must be set before adding data.
    pub fn with_sample_floor(mut self, floor: Option<i64>) -> Result<Self> {
        if self.count > 0 {
            bail!("the sampling floor of a quantile sketch must be set before any data is added");
        }
        if let Some(f) = floor
            && f < self.resolution
        {
            bail!(
                "the sampling floor ({f} rows) must be at least the resolution ({}); use None to disable sampling",
                self.resolution
            );
        }
        self.sample_floor = floor;
        Ok(self)
    }

    /// Number of rows added (including rows skipped by sampling).
    pub fn count(&self) -> i64 {
        self.count
    }

    /// Number of columns, once data has been added.
    pub fn columns(&self) -> Option<i64> {
        self.columns
    }

    /// Values kept per column and level.
    pub fn resolution(&self) -> i64 {
        self.resolution
    }

    /// The sampling floor in rows, `None` when sampling is disabled.
    pub fn sample_floor(&self) -> Option<i64> {
        self.sample_floor
    }

    /// The device holding the sketch's state.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Whether nothing has been compacted or sampled yet, so that results are exact.
    pub fn is_exact(&self) -> bool {
        self.compactions == 0 && self.sample_exp == 0
    }

    /// Values retained per column (the sketch's memory, in values).
    pub fn retained(&self) -> i64 {
        self.levels.iter().flatten().map(|l| l.data.size()[1]).sum()
    }

    /// The stated bound on the rank error at level `q` for this sketch's settings and history
    /// (see the type's documentation).
    pub fn rank_error_bound(&self, q: f64) -> f64 {
        let mut bound = 0.5 / self.count.max(1) as f64;
        if self.compactions > 0 {
            bound += 8.0 / self.resolution as f64;
        }
        if let Some(floor) = self.sample_floor
            && self.sample_exp > 0
        {
            bound += 5.0 * (q * (1.0 - q) / floor as f64).sqrt();
        }
        bound
    }

    /// Adds a batch of `[rows, columns]` values (any floating-point kind, any device; it is
    /// moved to the sketch's device). NaN values are refused.
    pub fn add(&mut self, x: &Tensor) -> Result<()> {
        let (n, c) = check::float_matrix(x, "quantile sketch input")?;
        check::same_columns(self.columns, c, "quantile sketch input")?;
        if c == 0 {
            bail!("quantile sketch input has no columns");
        }
        if n == 0 {
            return Ok(());
        }
        let x = x.to_device(self.device).to_kind(Kind::Float);
        let (lo, hi) = (x.amin(0, false), x.amax(0, false));
        self.absorb(n, c, lo, hi, |rows| {
            x.index_select(0, rows).transpose(0, 1).contiguous()
        })
    }

    /// Adds the pixels of `[batch, columns, height, width]` maps as rows, in batch, then
    /// row-major pixel order: the same as [`RunningQuantile::add`] of
    /// `maps.permute([0, 2, 3, 1]).reshape([-1, columns])`, bit for bit, without making that
    /// transposed copy (only the rows the sketch keeps are gathered).
    pub fn add_maps(&mut self, maps: &Tensor) -> Result<()> {
        let size = maps.size();
        if size.len() != 4 || !check::is_float(maps.kind()) {
            bail!(
                "quantile sketch maps must be a [batch, columns, height, width] floating-point tensor, got {:?} {size:?}",
                maps.kind()
            );
        }
        let (b, c, pixels) = (size[0], size[1], size[2] * size[3]);
        check::same_columns(self.columns, c, "quantile sketch maps")?;
        if c == 0 {
            bail!("quantile sketch maps have no columns");
        }
        if b * pixels == 0 {
            return Ok(());
        }
        let maps = maps
            .to_device(self.device)
            .to_kind(Kind::Float)
            .reshape([b, c, pixels]);
        let dims = [0i64, 2].as_slice();
        let (lo, hi) = (maps.amin(dims, false), maps.amax(dims, false));
        self.absorb(b * pixels, c, lo, hi, |rows| {
            let image = rows.divide_scalar_mode(pixels, "floor");
            let pixel = rows.remainder(pixels);
            maps.index(&[Some(image), None, Some(pixel)])
                .transpose(0, 1)
                .contiguous()
        })
    }

    /// Takes in `n` rows of `c` columns with per-column extremes `lo`, `hi`; `rows(index)` gives
    /// the rows at `index` (positions in the batch) as `[c, index.len()]`. The sampling rate is
    /// chosen once per batch, from the rows seen before it.
    fn absorb(
        &mut self,
        n: i64,
        c: i64,
        lo: Tensor,
        hi: Tensor,
        rows: impl Fn(&Tensor) -> Tensor,
    ) -> Result<()> {
        // Adding +0 turns -0 into +0, so that equal values are also equal bit patterns.
        let (lo, hi) = (lo + 0.0, hi + 0.0);
        if Tensor::cat(&[&lo, &hi], 0).isnan().any().int64_value(&[]) != 0 {
            bail!(
                "quantile sketch input contains NaN; mask or replace NaN values before adding them"
            );
        }
        self.columns = Some(c);
        self.extremes = Some(match self.extremes.take() {
            None => (lo, hi),
            Some((l, h)) => (l.minimum(&lo), h.maximum(&hi)),
        });
        self.raise_sample_exp();
        let picked: Vec<i64> = if self.sample_exp == 0 {
            (0..n).collect()
        } else {
            self.sample_rows(n)
        };
        self.count += n;
        if !picked.is_empty() {
            let data = rows(&Tensor::from_slice(&picked).to_device(self.device));
            self.push(self.sample_exp as usize, data + 0.0, false);
        }
        Ok(())
    }

    /// Merges another sketch of the same resolution and columns into this one. The result obeys
    /// the same error bound for the combined stream.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if other.resolution != self.resolution {
            bail!(
                "cannot merge quantile sketches of resolution {} and {}; build all shards with the same resolution",
                self.resolution,
                other.resolution
            );
        }
        let Some(c) = other.columns else {
            return Ok(());
        };
        check::same_columns(self.columns, c, "the merged quantile sketch")?;
        let Some((olo, ohi)) = &other.extremes else {
            return Ok(());
        };
        let (olo, ohi) = (olo.to_device(self.device), ohi.to_device(self.device));
        self.columns = Some(c);
        self.extremes = Some(match self.extremes.take() {
            None => (olo, ohi),
            Some((l, h)) => (l.minimum(&olo), h.maximum(&ohi)),
        });
        self.count += other.count;
        self.compactions += other.compactions;
        if other.sample_exp > self.sample_exp {
            self.sample_exp = other.sample_exp;
            self.skip = self.rng.geometric(self.sample_rate());
        }
        for (h, level) in other.levels.iter().enumerate() {
            if let Some(level) = level {
                self.push(h, level.data.to_device(self.device), level.sorted);
            }
        }
        Ok(())
    }

    /// Quantiles at levels `q` (each in [0, 1]) as a `[columns, q.len()]` f32 tensor: linear
    /// interpolation over the mid-point cumulative weights of the retained values, with the exact
    /// minimum at 0 and maximum at 1.
    pub fn quantiles(&self, q: &[f64]) -> Result<Tensor> {
        if let Some(bad) = q.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            bail!("quantile levels must lie in [0, 1], got {bad}");
        }
        let (values, cw) = self.summary()?;
        let c = values.size()[0];
        let last = values.size()[1] - 1;
        let opts = (Kind::Double, self.device);
        let qt = Tensor::from_slice(q)
            .to(self.device)
            .unsqueeze(0)
            .expand([c, q.len() as i64], false)
            .contiguous();
        let pos = qt.searchsorted(&cw, false, false, "left", None::<Tensor>);
        let hi = pos.clamp(1, last);
        let lo = &hi - 1;
        let values = values.to_kind(Kind::Double);
        let (v_lo, v_hi) = (values.gather(1, &lo, false), values.gather(1, &hi, false));
        let (c_lo, c_hi) = (cw.gather(1, &lo, false), cw.gather(1, &hi, false));
        let span = &c_hi - &c_lo;
        let frac = ((&qt - &c_lo) / span.clamp_min(f64::MIN_POSITIVE)).clamp(0.0, 1.0);
        let mid = &v_lo + &frac * (&v_hi - &v_lo);
        let zero = Tensor::zeros([], opts);
        let one = Tensor::ones([], opts);
        let out = v_lo.where_self(
            &frac.eq_tensor(&zero),
            &v_hi.where_self(&frac.eq_tensor(&one), &mid),
        );
        Ok(out.to_kind(Kind::Float))
    }

    /// Maps values `[rows, columns]` to their estimated cumulative distribution per column, in
    /// [0, 1] (the inverse of [`RunningQuantile::quantiles`]; ties get the middle of their run).
    pub fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        let (_, c) = check::float_matrix(x, "values to normalise")?;
        let (values, cw) = self.summary()?;
        if c != values.size()[0] {
            bail!(
                "values to normalise have {c} columns but the sketch has {}",
                values.size()[0]
            );
        }
        let m = values.size()[1];
        let values = values.to_kind(Kind::Double);
        let xt = x
            .to_device(self.device)
            .to_kind(Kind::Double)
            .transpose(0, 1)
            .contiguous();
        let left = xt.searchsorted(&values, false, false, "left", None::<Tensor>);
        let right = xt.searchsorted(&values, false, true, "right", None::<Tensor>);
        let first = left.clamp(0, m - 1);
        let end = (&right - 1).clamp(0, m - 1);
        let hit = (cw.gather(1, &first, false) + cw.gather(1, &end, false)) * 0.5;
        let hi = left.clamp(1, m - 1);
        let lo = &hi - 1;
        let (v_lo, v_hi) = (values.gather(1, &lo, false), values.gather(1, &hi, false));
        let (c_lo, c_hi) = (cw.gather(1, &lo, false), cw.gather(1, &hi, false));
        let frac = ((&xt - &v_lo) / (&v_hi - &v_lo))
            .nan_to_num(0.0, None, None)
            .clamp(0.0, 1.0);
        let between = &c_lo + frac * (&c_hi - &c_lo);
        let opts = (Kind::Double, self.device);
        let below = left.eq(0);
        let above = left.eq(m);
        let miss = Tensor::zeros([], opts)
            .where_self(&below, &Tensor::ones([], opts).where_self(&above, &between));
        let out = hit
            .where_self(&right.gt_tensor(&left), &miss)
            .clamp(0.0, 1.0);
        Ok(out.transpose(0, 1).to_kind(Kind::Float))
    }

    /// Sorted retained values with min and max at the ends (`[columns, m]` f32) and their
    /// normalised mid-point cumulative weights (`[columns, m]` f64, 0 at the min, 1 at the max).
    fn summary(&self) -> Result<(Tensor, Tensor)> {
        let (Some(c), Some((lo, hi))) = (self.columns, &self.extremes) else {
            bail!("the quantile sketch has seen no data; add batches before asking for quantiles");
        };
        let mut parts = Vec::new();
        let mut weights = Vec::new();
        for (h, level) in self.levels.iter().enumerate() {
            if let Some(level) = level {
                let n = level.data.size()[1];
                parts.push(level.data.shallow_clone());
                weights.push(Tensor::full(
                    [n],
                    2f64.powi(h as i32),
                    (Kind::Double, self.device),
                ));
            }
        }
        let values = Tensor::cat(&parts, 1);
        let t = values.size()[1];
        // A stable sort keeps ties of different weights in a fixed order, so results are
        // bit-for-bit repeatable.
        let (sorted, order) = values.sort_stable(true, 1, false);
        let w = Tensor::cat(&weights, 0)
            .unsqueeze(0)
            .expand([c, t], false)
            .gather(1, &order, false);
        let total = w.sum_dim_intlist(1, true, Kind::Double);
        let cw = (w.cumsum(1, Kind::Double) - &w * 0.5) / total;
        let opts = (Kind::Double, self.device);
        let cw = Tensor::cat(
            &[Tensor::zeros([c, 1], opts), cw, Tensor::ones([c, 1], opts)],
            1,
        );
        let values = Tensor::cat(&[lo.unsqueeze(1), sorted, hi.unsqueeze(1)], 1);
        Ok((values, cw))
    }

    /// Current Bernoulli sampling rate.
    fn sample_rate(&self) -> f64 {
        0.5f64.powi(self.sample_exp as i32)
    }

    /// Raises the sampling exponent to the largest `s` with `count ≥ floor·2^(s+1)`.
    fn raise_sample_exp(&mut self) {
        let Some(floor) = self.sample_floor else {
            return;
        };
        let before = self.sample_exp;
        while self.sample_exp < 60 && (self.count / floor) >> (self.sample_exp + 1) >= 1 {
            self.sample_exp += 1;
        }
        if self.sample_exp != before {
            self.skip = self.rng.geometric(self.sample_rate());
        }
    }

    /// Row positions of the next `n` rows picked by Bernoulli sampling (geometric skips that
    /// carry over from batch to batch).
    fn sample_rows(&mut self, n: i64) -> Vec<i64> {
        let p = self.sample_rate();
        let mut picked = Vec::with_capacity((n as f64 * p * 1.2) as usize + 4);
        let mut pos = self.skip;
        while pos < n {
            picked.push(pos);
            pos = pos.saturating_add(1).saturating_add(self.rng.geometric(p));
        }
        self.skip = pos - n;
        picked
    }

    /// Appends `data` (`[columns, n]`) to level `h` and compacts upwards while a level is full.
    fn push(&mut self, mut h: usize, mut data: Tensor, mut sorted: bool) {
        loop {
            if self.levels.len() <= h {
                self.levels.resize_with(h + 1, || None);
            }
            let level = match self.levels[h].take() {
                None => Level { data, sorted },
                Some(old) => Level {
                    data: Tensor::cat(&[&old.data, &data], 1),
                    sorted: false,
                },
            };
            let n = level.data.size()[1];
            if n < self.resolution {
                self.levels[h] = Some(level);
                return;
            }
            let offset = self.rng.next_bit();
            data = halve(&level.data, level.sorted, offset);
            sorted = true;
            self.compactions += 1;
            h += 1;
        }
    }
}

/// Sorts each row of `data` (`[columns, n]`, unless `sorted` already) and keeps every other
/// value starting at `offset` (0 or 1). On the CPU the rows are sorted in Rust (the values carry
/// no NaN and no −0, so the order is libtorch's); elsewhere by libtorch.
fn halve(data: &Tensor, sorted: bool, offset: i64) -> Tensor {
    let n = data.size()[1];
    if sorted || data.device() != Device::Cpu {
        let full = if sorted {
            data.shallow_clone()
        } else {
            data.sort(1, false).0
        };
        return full.slice(1, offset, n, 2).contiguous();
    }
    let c = data.size()[0];
    let mut values = match Vec::<f32>::try_from(data.contiguous().view([-1])) {
        Ok(v) => v,
        Err(_) => return halve(&data.sort(1, false).0, true, offset),
    };
    let kept = (n - offset + 1) / 2;
    let mut out: Vec<f32> = Vec::with_capacity((c * kept) as usize);
    for row in values.chunks_mut(n as usize) {
        row.sort_unstable_by(f32::total_cmp);
        out.extend(row.iter().skip(offset as usize).step_by(2));
    }
    Tensor::from_slice(&out).view([c, kept])
}

impl Statistic for RunningQuantile {
    fn to_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut state = vec![
            LAYOUT,
            self.resolution,
            self.sample_floor.unwrap_or(-1),
            self.columns.unwrap_or(-1),
            self.count,
            self.sample_exp,
            self.skip,
            self.rng.state() as i64,
            self.compactions,
            self.levels.len() as i64,
        ];
        state.extend(
            self.levels
                .iter()
                .map(|l| l.as_ref().map_or(-1, |l| l.data.size()[1])),
        );
        state.extend(
            self.levels
                .iter()
                .map(|l| l.as_ref().is_some_and(|l| l.sorted) as i64),
        );
        let mut out = vec![(format!("{prefix}.state"), Tensor::from_slice(&state))];
        if let Some((lo, hi)) = &self.extremes {
            out.push((format!("{prefix}.min"), lo.shallow_clone()));
            out.push((format!("{prefix}.max"), hi.shallow_clone()));
        }
        for (h, level) in self.levels.iter().enumerate() {
            if let Some(level) = level {
                out.push((format!("{prefix}.level{h}"), level.data.shallow_clone()));
            }
        }
        out
    }

    fn from_tensors(tensors: &NamedTensors, prefix: &str, device: Device) -> Result<Self> {
        let name = format!("{prefix}.state");
        let t = fetch(tensors, &name)?;
        if t.kind() != Kind::Int64 || t.dim() != 1 || t.size()[0] < STATE_HEAD as i64 {
            bail!(
                "{name} is not a quantile sketch state; the file is damaged or holds another statistic"
            );
        }
        let state = Vec::<i64>::try_from(t)?;
        if state[0] != LAYOUT {
            bail!(
                "{name} has layout {} but this build reads layout {LAYOUT}; recompute the statistics",
                state[0]
            );
        }
        let n_levels = state[9].max(0) as usize;
        if state.len() != STATE_HEAD + 2 * n_levels {
            bail!(
                "{name} has {} entries, expected {}; the file is damaged",
                state.len(),
                STATE_HEAD + 2 * n_levels
            );
        }
        let mut sketch = RunningQuantile::new(state[1] as usize, 0, device)?;
        sketch.sample_floor = (state[2] >= 0).then_some(state[2]);
        sketch.columns = (state[3] >= 0).then_some(state[3]);
        sketch.count = state[4];
        sketch.sample_exp = state[5];
        sketch.skip = state[6];
        sketch.rng = SplitMix64::from_state(state[7] as u64);
        sketch.compactions = state[8];
        if let Some(c) = sketch.columns {
            let lo = fetch_shaped(tensors, &format!("{prefix}.min"), Kind::Float, &[c], device)?;
            let hi = fetch_shaped(tensors, &format!("{prefix}.max"), Kind::Float, &[c], device)?;
            sketch.extremes = Some((lo, hi));
            for h in 0..n_levels {
                let size = state[STATE_HEAD + h];
                let level = if size < 0 {
                    None
                } else {
                    let data = fetch_shaped(
                        tensors,
                        &format!("{prefix}.level{h}"),
                        Kind::Float,
                        &[c, size],
                        device,
                    )?;
                    Some(Level {
                        data,
                        sorted: state[STATE_HEAD + n_levels + h] != 0,
                    })
                };
                sketch.levels.push(level);
            }
        }
        Ok(sketch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::StatsFile;

    const LEVELS: [f64; 6] = [0.01, 0.1, 0.5, 0.9, 0.99, 0.999];
    const STREAMS: [&str; 7] = [
        "uniform",
        "sorted",
        "reverse-sorted",
        "constant",
        "ten-values",
        "cauchy",
        "log-normal",
    ];

    #[test]
    fn maps_are_added_exactly_as_their_transposed_rows() {
        // Batches of [4, 7, 16, 16] maps: 1024 rows each, past the sampling floor after a few,
        // so both the unsampled and the sampled gathering are compared.
        let data = streams(40 * 1024, 3);
        let mut rows = RunningQuantile::new(64, 5, Device::Cpu)
            .unwrap()
            .with_sample_floor(Some(1024))
            .unwrap();
        let mut maps = RunningQuantile::new(64, 5, Device::Cpu)
            .unwrap()
            .with_sample_floor(Some(1024))
            .unwrap();
        for batch in 0..40 {
            // rows (b, y, x) of this batch as [4, 16, 16, 7] → maps [4, 7, 16, 16]
            let x = data.narrow(0, batch * 1024, 1024);
            let m = x.view([4, 16, 16, 7]).permute([0, 3, 1, 2]).contiguous();
            rows.add(&x).unwrap();
            maps.add_maps(&m).unwrap();
        }
        assert!(rows.sample_exp > 0 && rows.compactions > 0);
        let q: Vec<f64> = (0..=100).map(|i| i as f64 / 100.0).collect();
        assert!(
            rows.quantiles(&q)
                .unwrap()
                .equal(&maps.quantiles(&q).unwrap())
        );
        assert_eq!(rows.retained(), maps.retained());
        let err = maps
            .add_maps(&Tensor::zeros([2, 3, 4], (Kind::Float, Device::Cpu)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[batch, columns, height, width]"), "{err}");
    }

    /// A `[rows, 7]` stream, one column per kind in `STREAMS`, from a fixed seed.
    fn streams(rows: usize, seed: u64) -> Tensor {
        let mut rng = SplitMix64::new(seed);
        let mut data = Vec::with_capacity(rows * STREAMS.len());
        for i in 0..rows {
            let u = rng.next_open01();
            let (g1, g2) = (rng.next_open01(), rng.next_open01());
            let normal = (-2.0 * g1.ln()).sqrt() * (std::f64::consts::TAU * g2).cos();
            data.extend([
                u as f32,
                i as f32,
                (rows - i) as f32,
                3.5,
                (rng.next_open01() * 10.0).floor() as f32,
                (std::f64::consts::PI * (u - 0.5)).tan() as f32,
                (2.0 * normal).exp() as f32,
            ]);
        }
        Tensor::from_slice(&data).view([rows as i64, STREAMS.len() as i64])
    }

    fn feed(sketch: &mut RunningQuantile, x: &Tensor, batch: i64) {
        let n = x.size()[0];
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            sketch.add(&x.narrow(0, start, len)).unwrap();
            start += len;
        }
    }

    /// Rank error of each estimate `[C, Q]` against the exact data `[N, C]`: the distance from
    /// q to the interval of normalised ranks the estimate occupies.
    fn rank_errors(x: &Tensor, estimates: &Tensor, q: &[f64]) -> Vec<Vec<f64>> {
        let n = x.size()[0] as f64;
        let sorted = x.transpose(0, 1).contiguous().sort(1, false).0;
        let lo = estimates
            .searchsorted(&sorted, false, false, "left", None::<Tensor>)
            .to_kind(Kind::Double)
            / n;
        let hi = estimates
            .searchsorted(&sorted, false, true, "right", None::<Tensor>)
            .to_kind(Kind::Double)
            / n;
        let qt = Tensor::from_slice(q).unsqueeze(0);
        let err = (&lo - &qt)
            .clamp_min(0.0)
            .maximum(&(&qt - &hi).clamp_min(0.0));
        Vec::<Vec<f64>>::try_from(err).unwrap()
    }

    fn assert_within_bound(sketch: &RunningQuantile, x: &Tensor, what: &str) -> f64 {
        let est = sketch.quantiles(&LEVELS).unwrap();
        let errors = rank_errors(x, &est, &LEVELS);
        let mut worst_ratio: f64 = 0.0;
        let worst: Vec<f64> = (0..LEVELS.len())
            .map(|j| errors.iter().map(|r| r[j]).fold(0.0, f64::max))
            .collect();
        eprintln!("{what}: worst rank error per level {LEVELS:?}: {worst:.5?}");
        for (col, row) in errors.iter().enumerate() {
            for (&q, &e) in LEVELS.iter().zip(row) {
                let bound = sketch.rank_error_bound(q);
                assert!(
                    e <= bound,
                    "{what}: {} stream, q = {q}: rank error {e} exceeds bound {bound}",
                    STREAMS[col]
                );
                worst_ratio = worst_ratio.max(e / bound);
            }
        }
        worst_ratio
    }

    #[test]
    fn exact_mid_point_quantiles_while_nothing_is_compacted() {
        let x = streams(1000, 1);
        let mut sketch = RunningQuantile::new(2048, 0, Device::Cpu).unwrap();
        feed(&mut sketch, &x, 300);
        assert!(sketch.is_exact());
        let q = [0.0, 0.0004, 0.25, 0.5, 0.7777, 1.0];
        let est = Vec::<Vec<f32>>::try_from(sketch.quantiles(&q).unwrap()).unwrap();
        let cols = Vec::<Vec<f32>>::try_from(x.transpose(0, 1).contiguous()).unwrap();
        for (c, col) in cols.iter().enumerate() {
            let mut s: Vec<f64> = col.iter().map(|&v| v as f64).collect();
            s.sort_by(f64::total_cmp);
            for (j, &level) in q.iter().enumerate() {
                let pos = (level * s.len() as f64 - 0.5).clamp(0.0, (s.len() - 1) as f64);
                let (i, f) = (pos.floor() as usize, pos.fract());
                let want = s[i] + f * (s[(i + 1).min(s.len() - 1)] - s[i]);
                let got = est[c][j] as f64;
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "column {c} q {level}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn million_row_streams_stay_within_the_stated_bound() {
        for seed in [7u64, 8, 9] {
            let x = streams(1_000_000, seed);
            let mut sketch = RunningQuantile::new(DEFAULT_RESOLUTION, seed, Device::Cpu).unwrap();
            feed(&mut sketch, &x, 50_000);
            assert!(!sketch.is_exact());
            assert_eq!(sketch.count(), 1_000_000);
            let ratio = assert_within_bound(&sketch, &x, "sampled sketch");
            eprintln!("sampled sketch, seed {seed}: worst error / bound = {ratio:.3}");
        }
        let x = streams(1_000_000, 7);
        // Without sampling and with a small resolution, the compaction term is what is tested.
        let mut compact = RunningQuantile::new(256, 9, Device::Cpu)
            .unwrap()
            .with_sample_floor(None)
            .unwrap();
        feed(&mut compact, &x, 30_000);
        let ratio = assert_within_bound(&compact, &x, "compaction-only sketch");
        eprintln!("compaction-only sketch (k = 256): worst error / bound = {ratio:.3}");
    }

    #[test]
    fn merged_shards_stay_within_the_stated_bound() {
        let x = streams(1_200_000, 8);
        let shards: Vec<RunningQuantile> = (0..4)
            .map(|s| {
                let mut sketch = RunningQuantile::new(1024, 100 + s as u64, Device::Cpu).unwrap();
                feed(&mut sketch, &x.narrow(0, s * 300_000, 300_000), 40_000);
                sketch
            })
            .collect();
        let mut merged = RunningQuantile::new(1024, 1, Device::Cpu).unwrap();
        for shard in &shards {
            merged.merge(shard).unwrap();
        }
        assert_eq!(merged.count(), 1_200_000);
        let ratio = assert_within_bound(&merged, &x, "merged shards");
        eprintln!("merged shards: worst error / bound = {ratio:.3}");
        // Exact extremes survive the merge.
        let ends = merged.quantiles(&[0.0, 1.0]).unwrap();
        assert!(ends.select(1, 0).equal(&x.amin(0, false)));
        assert!(ends.select(1, 1).equal(&x.amax(0, false)));
    }

    #[test]
    fn same_seed_and_batches_give_identical_sketches() {
        let x = streams(200_000, 3);
        let run = |seed| {
            let mut s = RunningQuantile::new(512, seed, Device::Cpu).unwrap();
            feed(&mut s, &x, 17_000);
            s
        };
        let (a, b) = (run(4), run(4));
        assert!(!a.is_exact());
        for ((na, ta), (nb, tb)) in a.to_tensors("q").iter().zip(b.to_tensors("q").iter()) {
            assert_eq!(na, nb);
            assert!(ta.equal(tb), "{na} differs");
        }
        assert!(
            a.quantiles(&LEVELS)
                .unwrap()
                .equal(&b.quantiles(&LEVELS).unwrap())
        );
    }

    #[test]
    fn resumed_stream_equals_uninterrupted_bit_for_bit() {
        let x = streams(400_000, 4);
        let (first, second) = (x.narrow(0, 0, 150_000), x.narrow(0, 150_000, 250_000));
        let mut whole = RunningQuantile::new(512, 21, Device::Cpu).unwrap();
        feed(&mut whole, &first, 25_000);
        feed(&mut whole, &second, 25_000);

        let mut part = RunningQuantile::new(512, 21, Device::Cpu).unwrap();
        feed(&mut part, &first, 25_000);
        let dir = std::env::temp_dir().join(format!("gd-quantile-resume-{}", std::process::id()));
        let path = dir.join("stats.safetensors");
        let settings = serde_json::json!({"layer": "layer4", "quantile_resolution": 512});
        let mut file = StatsFile::new(settings.clone()).unwrap();
        file.insert("rq", &part);
        file.save(&path).unwrap();
        drop(part);
        let mut resumed: RunningQuantile = StatsFile::load(&path, &settings)
            .unwrap()
            .get("rq", Device::Cpu)
            .unwrap();
        feed(&mut resumed, &second, 25_000);
        std::fs::remove_dir_all(&dir).unwrap();

        let (a, b) = (whole.to_tensors("q"), resumed.to_tensors("q"));
        assert_eq!(a.len(), b.len());
        for ((na, ta), (nb, tb)) in a.iter().zip(b.iter()) {
            assert_eq!(na, nb);
            assert!(ta.equal(tb), "{na} differs after resuming");
        }
        assert!(
            whole
                .quantiles(&LEVELS)
                .unwrap()
                .equal(&resumed.quantiles(&LEVELS).unwrap())
        );
    }

    #[test]
    fn normalize_inverts_quantiles() {
        let x = streams(300_000, 5);
        let mut sketch = RunningQuantile::new(1024, 2, Device::Cpu).unwrap();
        feed(&mut sketch, &x, 30_000);
        // Columns whose values are distinct: uniform, sorted, reverse, cauchy, log-normal.
        let distinct = Tensor::from_slice(&[0i64, 1, 2, 5, 6]);
        let levels = [0.05, 0.3, 0.5, 0.8, 0.95];
        let est = sketch.quantiles(&levels).unwrap();
        let cdf = sketch
            .normalize(&est.transpose(0, 1))
            .unwrap()
            .index_select(1, &distinct);
        let want = Tensor::from_slice(&levels)
            .to_kind(Kind::Float)
            .unsqueeze(1);
        let gap = (cdf - want).abs().max().double_value(&[]);
        assert!(gap < 1e-4, "normalize(quantiles(q)) is {gap} away from q");
        let outside = Tensor::from_slice(&[-1e30f32; 7]).unsqueeze(0);
        let far = Tensor::cat(&[&outside, &(-&outside)], 0);
        let ends = sketch.normalize(&far).unwrap();
        let expect = Tensor::from_slice(&[0f32; 7]);
        assert!(ends.get(0).equal(&expect), "below the minimum maps to 0");
        assert!(
            ends.get(1).equal(&(expect + 1.0)),
            "above the maximum maps to 1"
        );
        let constant = sketch
            .normalize(&Tensor::full([1, 7], 3.5, (Kind::Float, Device::Cpu)))
            .unwrap();
        assert!(
            (constant.double_value(&[0, 3]) - 0.5).abs() < 1e-6,
            "a constant column's value sits at its middle"
        );
    }

    #[test]
    fn negative_zero_is_kept_as_positive_zero() {
        let x = Tensor::from_slice(&[-0.0f32, 0.0, -0.0, 1.0, -0.0, 2.0]).view([6, 1]);
        let mut sketch = RunningQuantile::new(4, 0, Device::Cpu).unwrap();
        sketch.add(&x).unwrap();
        let q = Vec::<f32>::try_from(sketch.quantiles(&[0.0, 0.2, 0.4]).unwrap().flatten(0, -1))
            .unwrap();
        assert!(
            q.iter().all(|v| v.to_bits() == 0),
            "expected +0 bit patterns, got {q:?}"
        );
    }

    #[test]
    fn bad_input_is_refused_with_clear_errors() {
        let mut sketch = RunningQuantile::new(64, 0, Device::Cpu).unwrap();
        let msg = |r: Result<()>| r.unwrap_err().to_string();
        assert!(
            sketch
                .quantiles(&[0.5])
                .unwrap_err()
                .to_string()
                .contains("no data")
        );
        assert!(
            msg(sketch.add(&Tensor::zeros([2, 3, 4], (Kind::Float, Device::Cpu))))
                .contains("[rows, columns]")
        );
        assert!(
            msg(sketch.add(&Tensor::zeros([2, 3], (Kind::Int64, Device::Cpu))))
                .contains("floating-point")
        );
        sketch
            .add(&Tensor::rand([10, 3], (Kind::Float, Device::Cpu)))
            .unwrap();
        assert!(
            msg(sketch.add(&Tensor::rand([10, 4], (Kind::Float, Device::Cpu))))
                .contains("4 columns but earlier data had 3")
        );
        let nan = Tensor::from_slice(&[1f32, f32::NAN, 2.0]).view([1, 3]);
        assert!(msg(sketch.add(&nan)).contains("NaN"));
        assert!(
            sketch
                .quantiles(&[1.5])
                .unwrap_err()
                .to_string()
                .contains("[0, 1]")
        );
        let mut other = RunningQuantile::new(64, 1, Device::Cpu).unwrap();
        other
            .add(&Tensor::rand([10, 5], (Kind::Float, Device::Cpu)))
            .unwrap();
        assert!(msg(sketch.merge(&other)).contains("5 columns"));
        let other = RunningQuantile::new(128, 1, Device::Cpu).unwrap();
        assert!(msg(sketch.merge(&other)).contains("resolution"));
        assert!(RunningQuantile::new(1, 0, Device::Cpu).is_err());
        assert_eq!(
            sketch.count(),
            10,
            "refused batches leave the sketch unchanged"
        );
    }
}
