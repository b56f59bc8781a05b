//! Running means and variances of vectors, overall and per integer key.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use tch::{Device, Kind, Tensor};

use super::check;
use super::store::{NamedTensors, Statistic, fetch_i64s, fetch_shaped};

/// Running mean and variance of `D`-vectors, merged batch-wise (Chan et al.): the count, the
/// mean and the centred second moment, all in f64 on the accumulator's device.
pub struct RunningMean {
    device: Device,
    count: i64,
    /// `(mean, centred second moment)`, each `[D]` f64, once data has been added.
    moments: Option<(Tensor, Tensor)>,
}

impl RunningMean {
    /// An empty accumulator with its state on `device`.
    pub fn new(device: Device) -> Self {
        Self {
            device,
            count: 0,
            moments: None,
        }
    }

    /// Number of vectors added.
    pub fn count(&self) -> i64 {
        self.count
    }

    /// Vector length `D`, once data has been added.
    pub fn dim(&self) -> Option<i64> {
        self.moments.as_ref().map(|(m, _)| m.size()[0])
    }

    /// Adds a batch of `[N, D]` vectors.
    pub fn add(&mut self, x: &Tensor) -> Result<()> {
        let (n, d) = check::float_matrix(x, "mean input")?;
        check::same_columns(self.dim(), d, "mean input")?;
        if n == 0 {
            return Ok(());
        }
        let x = x.to_device(self.device).to_kind(Kind::Double);
        let mean = x.mean_dim(0, false, Kind::Double);
        let m2 = (&x - &mean)
            .square()
            .sum_dim_intlist(0, false, Kind::Double);
        self.combine(n, mean, m2);
        Ok(())
    }

    /// Merges another accumulator of the same vector length.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        let Some((mean, m2)) = &other.moments else {
            return Ok(());
        };
        check::same_columns(self.dim(), mean.size()[0], "the merged mean")?;
        self.combine(
            other.count,
            mean.to_device(self.device),
            m2.to_device(self.device),
        );
        Ok(())
    }

    /// The `[D]` f64 mean, `None` before any data.
    pub fn mean(&self) -> Option<Tensor> {
        self.moments.as_ref().map(|(m, _)| m.shallow_clone())
    }

    /// The `[D]` f64 unbiased variance (divisor `n − 1`), `None` below two vectors.
    pub fn variance(&self) -> Option<Tensor> {
        let (_, m2) = self.moments.as_ref()?;
        (self.count >= 2).then(|| m2 / (self.count - 1) as f64)
    }

    fn combine(&mut self, n: i64, mean: Tensor, m2: Tensor) {
        self.moments = Some(match self.moments.take() {
            None => (mean, m2),
            Some((old_mean, old_m2)) => {
                let total = (self.count + n) as f64;
                let delta = &mean - &old_mean;
                let new_mean = &old_mean + &delta * (n as f64 / total);
                let new_m2 = old_m2 + m2 + delta.square() * (self.count as f64 * n as f64 / total);
                (new_mean, new_m2)
            }
        });
        self.count += n;
    }
}

/// A [`RunningMean`] per integer key (for example per concept label), all of one vector length.
pub struct ConditionalMean {
    device: Device,
    dim: Option<i64>,
    by_key: BTreeMap<i64, RunningMean>,
}

impl ConditionalMean {
    /// An empty accumulator with its state on `device`.
    pub fn new(device: Device) -> Self {
        Self {
            device,
            dim: None,
            by_key: BTreeMap::new(),
        }
    }

    /// Adds a batch of `[N, D]` vectors under `key`.
    pub fn add(&mut self, key: i64, x: &Tensor) -> Result<()> {
        let (n, d) = check::float_matrix(x, "conditional mean input")?;
        check::same_columns(self.dim, d, "conditional mean input")?;
        if n == 0 {
            return Ok(());
        }
        self.dim = Some(d);
        let device = self.device;
        self.by_key
            .entry(key)
            .or_insert_with(|| RunningMean::new(device))
            .add(x)
    }

    /// Merges another accumulator of the same vector length, key by key.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        let Some(d) = other.dim else {
            return Ok(());
        };
        check::same_columns(self.dim, d, "the merged conditional mean")?;
        self.dim = Some(d);
        for (&key, stat) in &other.by_key {
            let device = self.device;
            self.by_key
                .entry(key)
                .or_insert_with(|| RunningMean::new(device))
                .merge(stat)?;
        }
        Ok(())
    }

    /// The keys seen, ascending.
    pub fn keys(&self) -> Vec<i64> {
        self.by_key.keys().copied().collect()
    }

    /// Number of vectors added under `key` (0 for an unseen key).
    pub fn count(&self, key: i64) -> i64 {
        self.by_key.get(&key).map_or(0, RunningMean::count)
    }

    /// The `[D]` f64 mean under `key`, `None` for an unseen key.
    pub fn mean(&self, key: i64) -> Option<Tensor> {
        self.by_key.get(&key)?.mean()
    }

    /// The `[D]` f64 unbiased variance under `key`, `None` below two vectors.
    pub fn variance(&self, key: i64) -> Option<Tensor> {
        self.by_key.get(&key)?.variance()
    }
}

impl Statistic for RunningMean {
    fn to_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let state = [self.count, self.dim().unwrap_or(-1)];
        let mut out = vec![(format!("{prefix}.state"), Tensor::from_slice(&state))];
        if let Some((mean, m2)) = &self.moments {
            out.push((format!("{prefix}.mean"), mean.shallow_clone()));
            out.push((format!("{prefix}.m2"), m2.shallow_clone()));
        }
        out
    }

    fn from_tensors(tensors: &NamedTensors, prefix: &str, device: Device) -> Result<Self> {
        let state = fetch_i64s(tensors, &format!("{prefix}.state"), 2)?;
        let mut stat = RunningMean::new(device);
        stat.count = state[0];
        if state[1] >= 0 {
            let shape = [state[1]];
            let mean = fetch_shaped(
                tensors,
                &format!("{prefix}.mean"),
                Kind::Double,
                &shape,
                device,
            )?;
            let m2 = fetch_shaped(
                tensors,
                &format!("{prefix}.m2"),
                Kind::Double,
                &shape,
                device,
            )?;
            stat.moments = Some((mean, m2));
        }
        Ok(stat)
    }
}

impl Statistic for ConditionalMean {
    fn to_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let keys = self.keys();
        let counts: Vec<i64> = self.by_key.values().map(RunningMean::count).collect();
        let mut state = vec![self.dim.unwrap_or(-1), keys.len() as i64];
        state.extend(&keys);
        state.extend(&counts);
        let mut out = vec![(format!("{prefix}.state"), Tensor::from_slice(&state))];
        if !keys.is_empty() {
            let (means, m2s): (Vec<Tensor>, Vec<Tensor>) = self
                .by_key
                .values()
                .filter_map(|s| s.moments.as_ref())
                .map(|(m, v)| (m.shallow_clone(), v.shallow_clone()))
                .unzip();
            out.push((format!("{prefix}.mean"), Tensor::stack(&means, 0)));
            out.push((format!("{prefix}.m2"), Tensor::stack(&m2s, 0)));
        }
        out
    }

    fn from_tensors(tensors: &NamedTensors, prefix: &str, device: Device) -> Result<Self> {
        let name = format!("{prefix}.state");
        let head = super::store::fetch(tensors, &name)?;
        let len = head.size().first().copied().unwrap_or(0);
        if head.kind() != Kind::Int64 || head.dim() != 1 || len < 2 {
            bail!("{name} is not a conditional mean state; the file is damaged");
        }
        let n_keys = head.int64_value(&[1]).max(0);
        let state = fetch_i64s(tensors, &name, (2 + 2 * n_keys) as usize)?;
        let mut stat = ConditionalMean::new(device);
        stat.dim = (state[0] >= 0).then_some(state[0]);
        if let (Some(d), true) = (stat.dim, n_keys > 0) {
            let shape = [n_keys, d];
            let means = fetch_shaped(
                tensors,
                &format!("{prefix}.mean"),
                Kind::Double,
                &shape,
                device,
            )?;
            let m2s = fetch_shaped(
                tensors,
                &format!("{prefix}.m2"),
                Kind::Double,
                &shape,
                device,
            )?;
            for i in 0..n_keys {
                let key = state[2 + i as usize];
                let count = state[2 + (n_keys + i) as usize];
                let moments = Some((means.get(i), m2s.get(i)));
                stat.by_key.insert(
                    key,
                    RunningMean {
                        device,
                        count,
                        moments,
                    },
                );
            }
        }
        Ok(stat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(rows: i64, d: i64, seed: i64) -> Tensor {
        // Deterministic, uneven values without the global RNG.
        let i = Tensor::arange(rows * d, (Kind::Double, Device::Cpu));
        ((&i * 0.37 + seed as f64).sin() * 5.0 + (&i * 0.011).cos() * 100.0).view([rows, d])
    }

    fn close(a: &Tensor, b: &Tensor) -> bool {
        (a - b).abs().max().double_value(&[]) <= 1e-9 * (1.0 + b.abs().max().double_value(&[]))
    }

    #[test]
    fn batched_mean_and_variance_match_the_direct_formulas() {
        let x = data(1000, 6, 1);
        let mut m = RunningMean::new(Device::Cpu);
        for (start, len) in [(0, 1), (1, 400), (401, 599)] {
            m.add(&x.narrow(0, start, len)).unwrap();
        }
        assert_eq!(m.count(), 1000);
        assert!(close(
            &m.mean().unwrap(),
            &x.mean_dim(0, false, Kind::Double)
        ));
        assert!(close(&m.variance().unwrap(), &x.var_dim(0, true, false)));
        let mut one = RunningMean::new(Device::Cpu);
        one.add(&x.narrow(0, 0, 1)).unwrap();
        assert!(one.variance().is_none(), "no variance from a single vector");
    }

    #[test]
    fn conditional_merge_equals_the_single_stream() {
        let x = data(900, 4, 2);
        let keys = [3i64, 0, 3, 7, 0, 3, 7, 7, 0];
        let mut single = ConditionalMean::new(Device::Cpu);
        let mut a = ConditionalMean::new(Device::Cpu);
        let mut b = ConditionalMean::new(Device::Cpu);
        for (i, &key) in keys.iter().enumerate() {
            let chunk = x.narrow(0, 100 * i as i64, 100);
            single.add(key, &chunk).unwrap();
            if i < 4 { &mut a } else { &mut b }
                .add(key, &chunk)
                .unwrap();
        }
        a.merge(&b).unwrap();
        assert_eq!(a.keys(), vec![0, 3, 7]);
        for key in [0, 3, 7] {
            assert_eq!(a.count(key), 300);
            let rows: Vec<i64> = keys
                .iter()
                .enumerate()
                .filter(|(_, k)| **k == key)
                .map(|(i, _)| i as i64)
                .collect();
            let direct = Tensor::cat(
                &rows
                    .iter()
                    .map(|&i| x.narrow(0, 100 * i, 100))
                    .collect::<Vec<_>>(),
                0,
            );
            assert!(
                close(
                    &a.mean(key).unwrap(),
                    &direct.mean_dim(0, false, Kind::Double)
                ),
                "key {key}"
            );
            assert!(
                close(&a.variance(key).unwrap(), &direct.var_dim(0, true, false)),
                "key {key}"
            );
            assert!(close(&a.mean(key).unwrap(), &single.mean(key).unwrap()));
        }
        assert!(a.mean(5).is_none());
        assert_eq!(a.count(5), 0);
    }

    #[test]
    fn bad_input_is_refused() {
        let mut c = ConditionalMean::new(Device::Cpu);
        let e = |r: Result<()>| r.unwrap_err().to_string();
        assert!(
            e(c.add(1, &Tensor::zeros([3], (Kind::Float, Device::Cpu))))
                .contains("[rows, columns]")
        );
        c.add(1, &Tensor::zeros([3, 2], (Kind::Float, Device::Cpu)))
            .unwrap();
        assert!(
            e(c.add(2, &Tensor::zeros([3, 4], (Kind::Float, Device::Cpu)))).contains("4 columns")
        );
        let mut other = ConditionalMean::new(Device::Cpu);
        other
            .add(1, &Tensor::zeros([3, 5], (Kind::Float, Device::Cpu)))
            .unwrap();
        assert!(e(c.merge(&other)).contains("5 columns"));
    }
}
