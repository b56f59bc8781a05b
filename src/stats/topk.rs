//! Per-column top-k values with the global indices of the samples they came from.

use anyhow::{Result, bail};
use tch::{Device, Kind, Tensor};

use super::check;
use super::store::{NamedTensors, Statistic, fetch_i64s, fetch_shaped};

/// The `k` largest values of every column of a stream of `[rows, columns]` batches, with the
/// global sample index of each. Ties are broken by the smaller index, so results do not depend
/// on batch boundaries, merge order or device.
pub struct RunningTopK {
    k: i64,
    device: Device,
    columns: Option<i64>,
    count: i64,
    /// `[columns, m]` values, `m ≤ k`, in descending order.
    values: Option<Tensor>,
    /// `[columns, m]` sample indices matching `values`.
    indices: Option<Tensor>,
}

impl RunningTopK {
    /// An empty accumulator of the `k` largest values per column, with its state on `device`.
    pub fn new(k: usize, device: Device) -> Result<Self> {
        if k == 0 {
            bail!("top-k needs k ≥ 1");
        }
        Ok(Self {
            k: k as i64,
            device,
            columns: None,
            count: 0,
            values: None,
            indices: None,
        })
    }

    /// How many values per column are kept.
    pub fn k(&self) -> i64 {
        self.k
    }

    /// Number of rows added.
    pub fn count(&self) -> i64 {
        self.count
    }

    /// Number of columns, once data has been added.
    pub fn columns(&self) -> Option<i64> {
        self.columns
    }

    /// Adds `[rows, columns]` values whose rows are samples `first_index, first_index + 1, ...`.
    pub fn add(&mut self, x: &Tensor, first_index: i64) -> Result<()> {
        let (n, _) = check::float_matrix(x, "top-k input")?;
        let index = Tensor::arange_start(first_index, first_index + n, (Kind::Int64, self.device));
        self.add_rows(x, index, true)
    }

    /// Adds `[rows, columns]` values with an explicit `[rows]` integer tensor of sample indices.
    pub fn add_indexed(&mut self, x: &Tensor, index: &Tensor) -> Result<()> {
        let (n, _) = check::float_matrix(x, "top-k input")?;
        if index.size() != [n] || !check::is_integer(index.kind()) {
            bail!(
                "top-k sample indices must be a [{n}] integer tensor matching the rows, got {:?} {:?}",
                index.kind(),
                index.size()
            );
        }
        self.add_rows(x, index.to_device(self.device).to_kind(Kind::Int64), false)
    }

    /// Merges another accumulator over the same columns and `k`.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if other.k != self.k {
            bail!(
                "cannot merge top-k accumulators with k = {} and k = {}",
                self.k,
                other.k
            );
        }
        let (Some(c), Some(v), Some(i)) = (other.columns, &other.values, &other.indices) else {
            return Ok(());
        };
        check::same_columns(self.columns, c, "the merged top-k accumulator")?;
        self.columns = Some(c);
        self.count += other.count;
        self.combine(v.to_device(self.device), i.to_device(self.device));
        Ok(())
    }

    /// The top values `[columns, m]` in descending order and their sample indices `[columns, m]`,
    /// where `m = min(k, rows seen)`.
    pub fn result(&self) -> Result<(Tensor, Tensor)> {
        match (&self.values, &self.indices) {
            (Some(v), Some(i)) => Ok((v.shallow_clone(), i.shallow_clone())),
            _ => bail!(
                "the top-k accumulator has seen no data; add batches before asking for results"
            ),
        }
    }

    fn add_rows(&mut self, x: &Tensor, index: Tensor, ascending: bool) -> Result<()> {
        let (n, c) = check::float_matrix(x, "top-k input")?;
        check::same_columns(self.columns, c, "top-k input")?;
        if c == 0 {
            bail!("top-k input has no columns");
        }
        if n == 0 {
            return Ok(());
        }
        let mut x = x.to_device(self.device).to_kind(Kind::Float);
        if x.max().isnan().int64_value(&[]) != 0 {
            bail!("top-k input contains NaN; mask or replace NaN values before adding them");
        }
        self.columns = Some(c);
        self.count += n;
        let mut index = index;
        // Only values reaching the current k-th largest of their column can enter; after the
        // first batches this leaves few rows, so the selection below runs on a small matrix.
        if let Some(kept) = self.values.as_ref().filter(|v| v.size()[1] == self.k) {
            let cut = kept.select(1, self.k - 1).unsqueeze(0);
            let reach = x.ge_tensor(&cut);
            let rows = reach.any_dim(1, false).nonzero().squeeze_dim(1);
            if rows.size()[0] == 0 {
                return Ok(());
            }
            if rows.size()[0] < n {
                x = x.index_select(0, &rows);
                index = index.index_select(0, &rows);
            }
        }
        if !ascending {
            let (sorted, order) = index.sort_stable(true, 0, false);
            x = x.index_select(0, &order);
            index = sorted;
        }
        let (v, i) = batch_top(&x.transpose(0, 1), &index, self.k);
        self.combine(v, i);
        Ok(())
    }

    /// Folds candidate values and indices `[columns, m]` into the kept set.
    fn combine(&mut self, values: Tensor, indices: Tensor) {
        let (values, indices) = match (self.values.take(), self.indices.take()) {
            (Some(v), Some(i)) => (Tensor::cat(&[v, values], 1), Tensor::cat(&[i, indices], 1)),
            _ => (values, indices),
        };
        let (v, i) = ordered_top(&values, &indices, self.k);
        self.values = Some(v);
        self.indices = Some(i);
    }
}

/// The top `min(k, n)` entries of each row of `xt` (`[columns, n]`, columns of samples in
/// ascending `index` order), ties at the cut-off going to the earlier samples. Unordered.
fn batch_top(xt: &Tensor, index: &Tensor, k: i64) -> (Tensor, Tensor) {
    let (c, n) = (xt.size()[0], xt.size()[1]);
    let all_index = index.unsqueeze(0).expand([c, n], false);
    if n <= k {
        return (xt.contiguous(), all_index.contiguous());
    }
    let cut = xt.topk(k, 1, true, false).0.amin(1, true);
    let above = xt.gt_tensor(&cut);
    let at = xt.eq_tensor(&cut);
    let room = above.sum_dim_intlist(1, true, Kind::Int64).neg() + k;
    let take = above.logical_or(&at.logical_and(&at.cumsum(1, Kind::Int64).le_tensor(&room)));
    (
        xt.masked_select(&take).view([c, k]),
        all_index.masked_select(&take).view([c, k]),
    )
}

/// Sorts candidates per row by value descending, then index ascending, and keeps the first `k`.
fn ordered_top(values: &Tensor, indices: &Tensor, k: i64) -> (Tensor, Tensor) {
    let (by_index, order) = indices.sort_stable(true, 1, false);
    let values = values.gather(1, &order, false);
    let (values, order) = values.sort_stable(true, 1, true);
    let indices = by_index.gather(1, &order, false);
    let m = k.min(values.size()[1]);
    (
        values.narrow(1, 0, m).contiguous(),
        indices.narrow(1, 0, m).contiguous(),
    )
}

impl Statistic for RunningTopK {
    fn to_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let kept = self.values.as_ref().map_or(0, |v| v.size()[1]);
        let state = [self.k, self.columns.unwrap_or(-1), self.count, kept];
        let mut out = vec![(format!("{prefix}.state"), Tensor::from_slice(&state))];
        if let (Some(v), Some(i)) = (&self.values, &self.indices) {
            out.push((format!("{prefix}.values"), v.shallow_clone()));
            out.push((format!("{prefix}.indices"), i.shallow_clone()));
        }
        out
    }

    fn from_tensors(tensors: &NamedTensors, prefix: &str, device: Device) -> Result<Self> {
        let state = fetch_i64s(tensors, &format!("{prefix}.state"), 4)?;
        let mut topk = RunningTopK::new(state[0].max(0) as usize, device)?;
        topk.count = state[2];
        if state[1] >= 0 {
            let shape = [state[1], state[3]];
            topk.columns = Some(state[1]);
            topk.values = Some(fetch_shaped(
                tensors,
                &format!("{prefix}.values"),
                Kind::Float,
                &shape,
                device,
            )?);
            topk.indices = Some(fetch_shaped(
                tensors,
                &format!("{prefix}.indices"),
                Kind::Int64,
                &shape,
                device,
            )?);
        }
        Ok(topk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prng::SplitMix64;

    /// `[rows, columns]` values drawn from a few levels, so ties are common.
    fn tied(rows: usize, columns: usize, seed: u64) -> Tensor {
        let mut rng = SplitMix64::new(seed);
        let v: Vec<f32> = (0..rows * columns)
            .map(|_| (rng.next_open01() * 6.0).floor() as f32)
            .collect();
        Tensor::from_slice(&v).view([rows as i64, columns as i64])
    }

    /// The top k of one column by plain sorting of (value desc, index asc) on the host.
    fn naive(column: &[f32], index: &[i64], k: usize) -> Vec<(f32, i64)> {
        let mut pairs: Vec<(f32, i64)> =
            column.iter().copied().zip(index.iter().copied()).collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        pairs.truncate(k);
        pairs
    }

    fn as_pairs(topk: &RunningTopK) -> Vec<Vec<(f32, i64)>> {
        let (v, i) = topk.result().unwrap();
        let v = Vec::<Vec<f32>>::try_from(v).unwrap();
        let i = Vec::<Vec<i64>>::try_from(i).unwrap();
        v.into_iter()
            .zip(i)
            .map(|(v, i)| v.into_iter().zip(i).collect())
            .collect()
    }

    #[test]
    fn streamed_top_k_equals_a_full_sort_with_ties_to_the_smaller_index() {
        let x = tied(1000, 5, 1);
        let mut topk = RunningTopK::new(37, Device::Cpu).unwrap();
        let mut start = 0;
        for len in [1i64, 30, 200, 69, 300, 400] {
            topk.add(&x.narrow(0, start, len), 500 + start).unwrap();
            start += len;
        }
        let cols = Vec::<Vec<f32>>::try_from(x.transpose(0, 1).contiguous()).unwrap();
        let index: Vec<i64> = (500..1500).collect();
        let got = as_pairs(&topk);
        for (c, col) in cols.iter().enumerate() {
            assert_eq!(got[c], naive(col, &index, 37), "column {c}");
        }
    }

    #[test]
    fn explicit_unordered_indices_and_merge_equal_the_single_stream() {
        let x = tied(600, 4, 2);
        let mut rng = SplitMix64::new(9);
        // A permutation of 0..600 as sample indices.
        let mut index: Vec<i64> = (0..600).collect();
        for i in (1..600).rev() {
            index.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let index_t = Tensor::from_slice(&index);
        let mut single = RunningTopK::new(25, Device::Cpu).unwrap();
        single.add_indexed(&x, &index_t).unwrap();
        let mut a = RunningTopK::new(25, Device::Cpu).unwrap();
        let mut b = RunningTopK::new(25, Device::Cpu).unwrap();
        a.add_indexed(&x.narrow(0, 0, 250), &index_t.narrow(0, 0, 250))
            .unwrap();
        b.add_indexed(&x.narrow(0, 250, 350), &index_t.narrow(0, 250, 350))
            .unwrap();
        b.merge(&a).unwrap();
        assert_eq!(b.count(), 600);
        let cols = Vec::<Vec<f32>>::try_from(x.transpose(0, 1).contiguous()).unwrap();
        let (s, m) = (as_pairs(&single), as_pairs(&b));
        for (c, col) in cols.iter().enumerate() {
            let want = naive(col, &index, 25);
            assert_eq!(s[c], want, "single stream, column {c}");
            assert_eq!(m[c], want, "merged shards, column {c}");
        }
    }

    #[test]
    fn fewer_rows_than_k_returns_them_all_sorted() {
        let x = Tensor::from_slice(&[1f32, 5.0, 3.0, 5.0]).view([4, 1]);
        let mut topk = RunningTopK::new(10, Device::Cpu).unwrap();
        topk.add(&x, 0).unwrap();
        assert_eq!(
            as_pairs(&topk)[0],
            vec![(5.0, 1), (5.0, 3), (3.0, 2), (1.0, 0)]
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let mut topk = RunningTopK::new(3, Device::Cpu).unwrap();
        assert!(topk.result().is_err());
        let e = |r: Result<()>| r.unwrap_err().to_string();
        assert!(
            e(topk.add(&Tensor::zeros([2], (Kind::Float, Device::Cpu)), 0))
                .contains("[rows, columns]")
        );
        topk.add(&Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)), 0)
            .unwrap();
        assert!(
            e(topk.add(&Tensor::zeros([2, 2], (Kind::Float, Device::Cpu)), 2))
                .contains("2 columns")
        );
        let wrong = Tensor::from_slice(&[0i64, 1, 2]);
        assert!(
            e(topk.add_indexed(&Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)), &wrong))
                .contains("[2]")
        );
        let other = RunningTopK::new(4, Device::Cpu).unwrap();
        assert!(e(topk.merge(&other)).contains("k = 3 and k = 4"));
        assert!(RunningTopK::new(0, Device::Cpu).is_err());
    }
}
