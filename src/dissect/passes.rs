//! The two passes of a dissection and their resumable statistics.
//!
//! - **Pass 1**, per layer: a [`RunningQuantile`] over the upsampled activation pixels (each
//!   pixel of each image is one row, one column per unit) and a [`RunningTopK`] of each image's
//!   spatial maximum of the raw feature map.
//! - **Pass 2**, per layer: the indicator `upsampled > level_u` (`level_u` = the unit's quantile
//!   from pass 1) tallied against the label maps in an [`IouTally`].
//!
//! Each pass keeps its statistics with a [`Progress`] record (batches and images done) in one
//! [`StatsFile`] whose settings header names everything the numbers depend on.

use crate::stats::store::{NamedTensors, Statistic, fetch_i64s};
use crate::stats::{IouTally, RunningQuantile, RunningTopK, StatsFile};
use anyhow::{Result, bail};
use serde_json::Value;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// How far a pass has come: whole batches and images tallied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Batches done.
    pub batches: i64,
    /// Images done.
    pub images: i64,
}

impl Statistic for Progress {
    fn to_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        vec![(
            format!("{prefix}.done"),
            Tensor::from_slice(&[self.batches, self.images]),
        )]
    }
    fn from_tensors(tensors: &NamedTensors, prefix: &str, _device: Device) -> Result<Self> {
        let v = fetch_i64s(tensors, &format!("{prefix}.done"), 2)?;
        Ok(Self {
            batches: v[0],
            images: v[1],
        })
    }
}

/// The sketch settings of pass 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sketch {
    /// Values per compactor level and column.
    pub resolution: usize,
    /// Rows below which every row is sketched (`None`: never sample).
    pub sample_floor: Option<i64>,
}

/// Pass-1 statistics of the dissected layers.
pub struct Pass1 {
    /// Per layer: the quantile sketch of upsampled activation pixels.
    pub quantiles: Vec<RunningQuantile>,
    /// Per layer: the top-k of per-image maxima of the raw feature map.
    pub topk: Vec<RunningTopK>,
    /// How far the pass has come.
    pub progress: Progress,
}

impl Pass1 {
    /// Empty statistics for `layers` layers; `seed` makes each sketch's random choices distinct
    /// (per layer and shard) and repeatable.
    pub fn new(
        layers: usize,
        sketch: Sketch,
        topk: usize,
        seed: u64,
        device: Device,
    ) -> Result<Self> {
        let quantiles = (0..layers)
            .map(|l| {
                RunningQuantile::new(
                    sketch.resolution,
                    seed.wrapping_add(l as u64 * 7919),
                    device,
                )?
                .with_sample_floor(sketch.sample_floor)
            })
            .collect::<Result<_>>()?;
        let topk = (0..layers)
            .map(|_| RunningTopK::new(topk, device))
            .collect::<Result<_>>()?;
        Ok(Self {
            quantiles,
            topk,
            progress: Progress::default(),
        })
    }

    /// Tallies one batch: `maxima[l]` `[B, C]` per-image maxima, `up[l]` `[B, C, S, S]`
    /// upsampled activations, `ids` the image ids.
    pub fn add(&mut self, ids: &[u64], maxima: &[Tensor], up: &[Tensor]) -> Result<()> {
        let index = Tensor::from_slice(&ids.iter().map(|&i| i as i64).collect::<Vec<_>>());
        for (l, (m, u)) in maxima.iter().zip(up).enumerate() {
            self.topk[l].add_indexed(m, &index)?;
            self.quantiles[l].add_maps(u)?;
        }
        self.progress.batches += 1;
        self.progress.images += ids.len() as i64;
        Ok(())
    }

    /// Merges another shard's statistics.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        for (a, b) in self.quantiles.iter_mut().zip(&other.quantiles) {
            a.merge(b)?;
        }
        for (a, b) in self.topk.iter_mut().zip(&other.topk) {
            a.merge(b)?;
        }
        self.progress.batches += other.progress.batches;
        self.progress.images += other.progress.images;
        Ok(())
    }

    /// Per layer, the `[C]` levels at quantile `q`.
    pub fn levels(&self, q: f64) -> Result<Vec<Tensor>> {
        self.quantiles
            .iter()
            .map(|s| Ok(s.quantiles(&[q])?.select(1, 0)))
            .collect()
    }

    /// Saves the statistics atomically under `settings`.
    pub fn save(&self, path: &Path, settings: &Value, layers: &[String]) -> Result<()> {
        let mut file = StatsFile::new(settings.clone())?;
        for (l, name) in layers.iter().enumerate() {
            file.insert(&format!("{name}.quantile"), &self.quantiles[l]);
            file.insert(&format!("{name}.topk"), &self.topk[l]);
        }
        file.insert("progress", &self.progress);
        file.save(path)
    }

    /// Reads statistics saved by [`Pass1::save`].
    pub fn from_file(file: &StatsFile, layers: &[String], device: Device) -> Result<Self> {
        let mut quantiles = Vec::new();
        let mut topk = Vec::new();
        for name in layers {
            quantiles.push(file.get(&format!("{name}.quantile"), device)?);
            topk.push(file.get(&format!("{name}.topk"), device)?);
        }
        Ok(Self {
            quantiles,
            topk,
            progress: file.get("progress", device)?,
        })
    }
}

/// Pass-2 statistics of the dissected layers.
pub struct Pass2 {
    /// Per layer: unit × label intersection and union counts.
    pub tallies: Vec<IouTally>,
    /// How far the pass has come.
    pub progress: Progress,
}

impl Pass2 {
    /// Empty tallies over `num_labels` labels for `layers` layers.
    pub fn new(layers: usize, num_labels: usize, device: Device) -> Result<Self> {
        Ok(Self {
            tallies: (0..layers)
                .map(|_| IouTally::new(num_labels, device))
                .collect::<Result<_>>()?,
            progress: Progress::default(),
        })
    }

    /// Tallies one batch: `up[l]` `[B, C, S, S]` upsampled activations, `levels[l]` `[C]`,
    /// `labels` `[B, K, S, S]`.
    pub fn add(&mut self, up: &[Tensor], levels: &[Tensor], labels: &Tensor) -> Result<()> {
        for (l, u) in up.iter().enumerate() {
            let c = u.size()[1];
            let level = levels[l].to_device(u.device()).view([1, c, 1, 1]);
            self.tallies[l].add(&u.gt_tensor(&level), labels)?;
        }
        self.progress.batches += 1;
        self.progress.images += labels.size()[0];
        Ok(())
    }

    /// Merges another shard's tallies.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        for (a, b) in self.tallies.iter_mut().zip(&other.tallies) {
            a.merge(b)?;
        }
        self.progress.batches += other.progress.batches;
        self.progress.images += other.progress.images;
        Ok(())
    }

    /// Saves the tallies atomically under `settings`.
    pub fn save(&self, path: &Path, settings: &Value, layers: &[String]) -> Result<()> {
        let mut file = StatsFile::new(settings.clone())?;
        for (l, name) in layers.iter().enumerate() {
            file.insert(&format!("{name}.iou"), &self.tallies[l]);
        }
        file.insert("progress", &self.progress);
        file.save(path)
    }

    /// Reads tallies saved by [`Pass2::save`].
    pub fn from_file(file: &StatsFile, layers: &[String], device: Device) -> Result<Self> {
        let tallies = layers
            .iter()
            .map(|name| file.get(&format!("{name}.iou"), device))
            .collect::<Result<_>>()?;
        Ok(Self {
            tallies,
            progress: file.get("progress", device)?,
        })
    }
}

/// A stable digest of per-layer levels, recorded with pass-2 statistics so that tallies made at
/// other levels are refused.
pub fn levels_digest(levels: &[Tensor]) -> Result<String> {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for l in levels {
        let values = Vec::<f32>::try_from(l.to_device(Device::Cpu).to_kind(Kind::Float))?;
        for v in values {
            for b in v.to_bits().to_le_bytes() {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }
    Ok(format!("{hash:016x}"))
}

/// The shard `index` of `count`: image `j` of the sample list belongs to shard `j mod count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl std::str::FromStr for Shard {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || anyhow::anyhow!("cannot read shard '{s}': write i/N with 0 ≤ i < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The image ids of this shard among `0..samples`: `index, index + count, …`.
    pub fn ids(&self, samples: u64) -> Vec<u64> {
        (self.index..samples).step_by(self.count as usize).collect()
    }
}

/// Checks that a loaded pass has not seen more images than its shard holds.
pub fn check_progress(progress: Progress, shard_images: usize, path: &Path) -> Result<()> {
    if progress.images < 0 || progress.images as usize > shard_images {
        bail!(
            "{} records {} images done but the shard has {shard_images}; the file is damaged, delete it",
            path.display(),
            progress.images
        );
    }
    Ok(())
}
