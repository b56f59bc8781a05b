//! Exact unit × concept intersection and union counts for binary activation masks.

use anyhow::{Result, bail};
use tch::{Device, Kind, Tensor};

use super::check;
use super::store::{NamedTensors, Statistic, check_counts, damaged, fetch_i64s, fetch_shaped};

/// Largest number of f32 elements one chunk of the tally may allocate (128 MiB).
const CHUNK_ELEMENTS: i64 = 1 << 25;
/// Largest image (in pixels) whose per-image f32 sums are exact.
const EXACT_PIXELS: i64 = 1 << 24;

/// Exact pooled counts of an activation indicator `a: [B, C, H, W]` (bool) against a label map
/// `l: [B, K, H, W]` (integers in `0..L`, 0 = none, K channels that may overlap):
///
/// - `intersection[c, u]`: pixels where unit `u` is active and some channel carries label `c`
///   (a pixel counts once per label even when two channels carry it);
/// - `label_pixels[c]`: pixels carrying label `c`;
/// - `active_pixels[u]`, `total_pixels`.
///
/// Row 0 counts *unlabelled* pixels (every channel 0). Counts are computed per image chunk with
/// one batched matmul of the indicator against one-hot label masks, exact in f32 for images
/// below 2^24 pixels, and accumulated in i64.
pub struct IouTally {
    labels: i64,
    device: Device,
    columns: Option<i64>,
    intersection: Option<Tensor>,
    active: Option<Tensor>,
    label_pixels: Tensor,
    total: i64,
}

impl IouTally {
    /// An empty tally for labels `0..num_labels`, with its counts on `device`.
    pub fn new(num_labels: usize, device: Device) -> Result<Self> {
        if num_labels < 2 {
            bail!(
                "an IoU tally needs at least 2 labels (0 = none and one concept), got {num_labels}"
            );
        }
        let labels = num_labels as i64;
        Ok(Self {
            labels,
            device,
            columns: None,
            intersection: None,
            active: None,
            label_pixels: Tensor::zeros([labels], (Kind::Int64, device)),
            total: 0,
        })
    }

    /// Number of labels `L` (including 0).
    pub fn num_labels(&self) -> i64 {
        self.labels
    }

    /// Number of units, once data has been added.
    pub fn columns(&self) -> Option<i64> {
        self.columns
    }

    /// Tallies one batch: `active` `[B, C, H, W]` bool, `labels` `[B, K, H, W]` integers.
    pub fn add(&mut self, active: &Tensor, labels: &Tensor) -> Result<()> {
        let (a, l) = (active.size(), labels.size());
        if a.len() != 4 || active.kind() != Kind::Bool {
            bail!(
                "the activation indicator must be a [B, C, H, W] bool tensor, got {:?} {a:?}; threshold activations with gt()",
                active.kind()
            );
        }
        if l.len() != 4 || !check::is_integer(labels.kind()) {
            bail!(
                "the label map must be a [B, K, H, W] integer tensor, got {:?} {l:?}",
                labels.kind()
            );
        }
        if a[0] != l[0] || a[2..] != l[2..] {
            bail!(
                "the activation indicator {a:?} and the label map {l:?} must share batch size and height × width; resample one to the other"
            );
        }
        check::same_columns(self.columns, a[1], "the activation indicator")?;
        let (b, c, pixels) = (a[0], a[1], a[2] * a[3]);
        if pixels >= EXACT_PIXELS {
            bail!(
                "images of {pixels} pixels are too large for exact f32 tallies; tally tiles below 2^24 pixels"
            );
        }
        if l[1] == 0 || c == 0 {
            bail!("the label map needs at least one channel and the indicator at least one unit");
        }
        if b == 0 || pixels == 0 {
            return Ok(());
        }
        let labels = labels.to_device(self.device).to_kind(Kind::Int64);
        let (lo, hi) = (labels.min().int64_value(&[]), labels.max().int64_value(&[]));
        if lo < 0 || hi >= self.labels {
            bail!(
                "label values must lie in 0..{} (the tally's label count), found {lo}..={hi}; create the tally with the segmenter's full label count",
                self.labels
            );
        }
        let active = active.to_device(self.device);
        let count = self.labels;
        let per_image = pixels * (c + count);
        let chunk = (CHUNK_ELEMENTS / per_image).clamp(1, b);
        let mut isect = Tensor::zeros([count, c], (Kind::Int64, self.device));
        let mut start = 0;
        while start < b {
            let len = chunk.min(b - start);
            let a_chunk = active
                .narrow(0, start, len)
                .reshape([len, c, pixels])
                .to_kind(Kind::Float);
            let masks = label_masks(&labels.narrow(0, start, len), count);
            self.label_pixels += masks.sum_dim_intlist([0i64, 1].as_slice(), false, Kind::Int64);
            let counts =
                a_chunk
                    .bmm(&masks)
                    .to_kind(Kind::Int64)
                    .sum_dim_intlist(0, false, Kind::Int64);
            isect += counts.transpose(0, 1);
            start += len;
        }
        let act = active.sum_dim_intlist([0i64, 2, 3].as_slice(), false, Kind::Int64);
        self.intersection = Some(match self.intersection.take() {
            None => isect,
            Some(old) => old + isect,
        });
        self.active = Some(match self.active.take() {
            None => act,
            Some(old) => old + act,
        });
        self.columns = Some(c);
        self.total += b * pixels;
        Ok(())
    }

    /// Merges another tally over the same labels and units.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if other.labels != self.labels {
            bail!(
                "cannot merge IoU tallies over {} and {} labels",
                self.labels,
                other.labels
            );
        }
        let (Some(c), Some(isect), Some(act)) = (other.columns, &other.intersection, &other.active)
        else {
            return Ok(());
        };
        check::same_columns(self.columns, c, "the merged IoU tally")?;
        let (isect, act) = (isect.to_device(self.device), act.to_device(self.device));
        self.intersection = Some(match self.intersection.take() {
            None => isect,
            Some(old) => old + isect,
        });
        self.active = Some(match self.active.take() {
            None => act,
            Some(old) => old + act,
        });
        self.label_pixels += other.label_pixels.to_device(self.device);
        self.columns = Some(c);
        self.total += other.total;
        Ok(())
    }

    /// `[L, C]` i64: active pixels carrying each label, per unit.
    pub fn intersection(&self) -> Result<Tensor> {
        self.intersection
            .as_ref()
            .map(Tensor::shallow_clone)
            .ok_or_else(Self::empty)
    }

    /// `[C]` i64: active pixels per unit.
    pub fn active_pixels(&self) -> Result<Tensor> {
        self.active
            .as_ref()
            .map(Tensor::shallow_clone)
            .ok_or_else(Self::empty)
    }

    /// `[L]` i64: pixels carrying each label (row 0: unlabelled pixels).
    pub fn label_pixels(&self) -> Tensor {
        self.label_pixels.shallow_clone()
    }

    /// Total pixels tallied.
    pub fn total_pixels(&self) -> i64 {
        self.total
    }

    /// `[L, C]` f32: `I / (A + P − I)`, 0 where the union is empty.
    pub fn iou(&self) -> Result<Tensor> {
        let isect = self.intersection()?.to_kind(Kind::Double);
        let act = self.active_pixels()?.to_kind(Kind::Double).unsqueeze(0);
        let lab = self.label_pixels.to_kind(Kind::Double).unsqueeze(1);
        let union = act + lab - &isect;
        let iou = isect / union.clamp_min(1.0);
        Ok(iou.to_kind(Kind::Float))
    }

    fn empty() -> anyhow::Error {
        anyhow::anyhow!("the IoU tally has seen no data; add batches before asking for counts")
    }
}

/// `[B, H·W, L]` f32 one-hot masks: 1 where some channel carries the label; column 0 marks
/// pixels where every channel is 0.
fn label_masks(labels: &Tensor, count: i64) -> Tensor {
    let s = labels.size();
    let (b, k, pixels) = (s[0], s[1], s[2] * s[3]);
    let flat = labels.reshape([b, k, pixels]);
    let mut masks = Tensor::zeros([b, pixels, count], (Kind::Float, labels.device()));
    for ch in 0..k {
        let _ = masks.scatter_value_(2, &flat.select(1, ch).unsqueeze(2), 1.0);
    }
    let unlabelled = flat
        .eq(0)
        .all_dim(1, false)
        .to_kind(Kind::Float)
        .unsqueeze(2);
    masks.narrow(2, 0, 1).copy_(&unlabelled);
    masks
}

impl Statistic for IouTally {
    fn to_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let state = [self.labels, self.columns.unwrap_or(-1), self.total];
        let mut out = vec![
            (format!("{prefix}.state"), Tensor::from_slice(&state)),
            (
                format!("{prefix}.label_pixels"),
                self.label_pixels.shallow_clone(),
            ),
        ];
        if let (Some(i), Some(a)) = (&self.intersection, &self.active) {
            out.push((format!("{prefix}.intersection"), i.shallow_clone()));
            out.push((format!("{prefix}.active_pixels"), a.shallow_clone()));
        }
        out
    }

    fn from_tensors(tensors: &NamedTensors, prefix: &str, device: Device) -> Result<Self> {
        let state = fetch_i64s(tensors, &format!("{prefix}.state"), 3)?;
        let name = |part: &str| format!("{prefix}.{part}");
        // the label count is checked against the stored tensor before anything is allocated
        let stored = super::store::fetch(tensors, &name("label_pixels"))?;
        if stored.size() != [state[0]] {
            return Err(damaged(format!(
                "{} holds {:?} label counts but its state says {}",
                name("label_pixels"),
                stored.size(),
                state[0]
            )));
        }
        let mut tally = IouTally::new(state[0].max(0) as usize, device)?;
        let l = tally.labels;
        tally.label_pixels =
            fetch_shaped(tensors, &name("label_pixels"), Kind::Int64, &[l], device)?;
        check_counts(&tally.label_pixels, &name("label_pixels"))?;
        if state[2] < 0 {
            return Err(damaged(format!(
                "{} has a negative pixel total",
                name("state")
            )));
        }
        tally.total = state[2];
        if state[1] >= 0 {
            let c = state[1];
            tally.columns = Some(c);
            let intersection =
                fetch_shaped(tensors, &name("intersection"), Kind::Int64, &[l, c], device)?;
            let active = fetch_shaped(tensors, &name("active_pixels"), Kind::Int64, &[c], device)?;
            check_counts(&intersection, &name("intersection"))?;
            check_counts(&active, &name("active_pixels"))?;
            let over_label = intersection.gt_tensor(&tally.label_pixels.unsqueeze(1));
            let over_active = intersection.gt_tensor(&active.unsqueeze(0));
            if bool::try_from(over_label.logical_or(&over_active).any())? {
                return Err(damaged(format!(
                    "{} counts more pixels for a unit and a label than the unit or the label has \
                     alone",
                    name("intersection")
                )));
            }
            let total = tally.total;
            let beyond = |t: &Tensor| t.numel() > 0 && t.max().int64_value(&[]) > total;
            if beyond(&active) || beyond(&tally.label_pixels) {
                return Err(damaged(format!(
                    "{} counts more pixels than its total of {total}",
                    prefix
                )));
            }
            tally.intersection = Some(intersection);
            tally.active = Some(active);
        }
        Ok(tally)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prng::SplitMix64;

    /// Random `[b, c, h, w]` indicator and `[b, k, h, w]` labels in `0..l`, with channel 1 often
    /// repeating channel 0's label so that duplicates occur.
    fn batch(b: i64, c: i64, k: i64, hw: (i64, i64), l: i64, seed: u64) -> (Tensor, Tensor) {
        let mut rng = SplitMix64::new(seed);
        let (h, w) = hw;
        let act: Vec<bool> = (0..b * c * h * w).map(|_| rng.next_bit() == 1).collect();
        let mut labels: Vec<i64> = (0..b * k * h * w)
            .map(|_| (rng.next_u64() % l as u64) as i64)
            .collect();
        let plane = (h * w) as usize;
        for img in 0..b as usize {
            for p in 0..plane {
                if k > 1 && rng.next_bit() == 1 {
                    labels[(img * k as usize + 1) * plane + p] =
                        labels[img * k as usize * plane + p];
                }
            }
        }
        (
            Tensor::from_slice(&act).view([b, c, h, w]),
            Tensor::from_slice(&labels).view([b, k, h, w]),
        )
    }

    /// Per-pixel host computation of intersection `[l][c]`, label pixels `[l]`, active `[c]`.
    fn naive(a: &Tensor, lab: &Tensor, l: usize) -> (Vec<Vec<i64>>, Vec<i64>, Vec<i64>) {
        let s = a.size();
        let k = lab.size()[1];
        let a = Vec::<bool>::try_from(a.flatten(0, -1)).unwrap();
        let lab = Vec::<i64>::try_from(lab.flatten(0, -1)).unwrap();
        let (b, c, hw) = (s[0] as usize, s[1] as usize, (s[2] * s[3]) as usize);
        let mut isect = vec![vec![0i64; c]; l];
        let mut pix = vec![0i64; l];
        let mut act = vec![0i64; c];
        for img in 0..b {
            for p in 0..hw {
                let mut present = vec![false; l];
                for ch in 0..k as usize {
                    present[lab[(img * k as usize + ch) * hw + p] as usize] = true;
                }
                present[0] = (0..k as usize).all(|ch| lab[(img * k as usize + ch) * hw + p] == 0);
                for (label, &on) in present.iter().enumerate() {
                    pix[label] += on as i64;
                }
                for u in 0..c {
                    if a[(img * c + u) * hw + p] {
                        act[u] += 1;
                        for (label, &on) in present.iter().enumerate() {
                            isect[label][u] += on as i64;
                        }
                    }
                }
            }
        }
        (isect, pix, act)
    }

    #[test]
    fn tally_equals_a_per_pixel_count_with_duplicate_channels() {
        let l = 5;
        let (a, lab) = batch(3, 4, 3, (6, 7), l, 1);
        let mut tally = IouTally::new(l as usize, Device::Cpu).unwrap();
        tally.add(&a.narrow(0, 0, 1), &lab.narrow(0, 0, 1)).unwrap();
        tally.add(&a.narrow(0, 1, 2), &lab.narrow(0, 1, 2)).unwrap();
        let (isect, pix, act) = naive(&a, &lab, l as usize);
        assert_eq!(
            Vec::<Vec<i64>>::try_from(tally.intersection().unwrap()).unwrap(),
            isect
        );
        assert_eq!(Vec::<i64>::try_from(tally.label_pixels()).unwrap(), pix);
        assert_eq!(
            Vec::<i64>::try_from(tally.active_pixels().unwrap()).unwrap(),
            act
        );
        assert_eq!(tally.total_pixels(), 3 * 42);
        let iou = Vec::<Vec<f32>>::try_from(tally.iou().unwrap()).unwrap();
        for (label, row) in iou.iter().enumerate() {
            for (u, &v) in row.iter().enumerate() {
                let union = act[u] + pix[label] - isect[label][u];
                let want = if union == 0 {
                    0.0
                } else {
                    isect[label][u] as f32 / union as f32
                };
                assert!(
                    (v - want).abs() < 1e-6,
                    "label {label} unit {u}: {v} vs {want}"
                );
            }
        }
    }

    #[test]
    fn merged_tallies_equal_the_single_stream_and_chunking_is_exact() {
        let l = 7;
        // 40 images of 64×64 with 300 units exceed one chunk, so several chunks run.
        let (a, lab) = batch(40, 300, 2, (64, 64), l, 2);
        let mut single = IouTally::new(l as usize, Device::Cpu).unwrap();
        single.add(&a, &lab).unwrap();
        let mut x = IouTally::new(l as usize, Device::Cpu).unwrap();
        let mut y = IouTally::new(l as usize, Device::Cpu).unwrap();
        x.add(&a.narrow(0, 0, 15), &lab.narrow(0, 0, 15)).unwrap();
        y.add(&a.narrow(0, 15, 25), &lab.narrow(0, 15, 25)).unwrap();
        x.merge(&y).unwrap();
        assert!(
            single
                .intersection()
                .unwrap()
                .equal(&x.intersection().unwrap())
        );
        assert!(single.label_pixels().equal(&x.label_pixels()));
        assert!(
            single
                .active_pixels()
                .unwrap()
                .equal(&x.active_pixels().unwrap())
        );
        assert_eq!(x.total_pixels(), 40 * 4096);
        // Spot-check the big tally against direct tensor reductions for one unit and label.
        let present = lab.eq(3).any_dim(1, false);
        let direct = a
            .select(1, 17)
            .logical_and(&present)
            .sum(Kind::Int64)
            .int64_value(&[]);
        assert_eq!(single.intersection().unwrap().int64_value(&[3, 17]), direct);
    }

    #[test]
    fn tallies_that_make_no_sense_are_refused_on_load() {
        let l = 4;
        let (a, lab) = batch(2, 3, 1, (5, 5), l, 3);
        let mut tally = IouTally::new(l as usize, Device::Cpu).unwrap();
        tally.add(&a, &lab).unwrap();
        let load = |edit: &dyn Fn(&str, Tensor) -> Tensor| {
            let tensors: NamedTensors = tally
                .to_tensors("iou")
                .into_iter()
                .map(|(n, t)| {
                    let t = edit(&n, t.copy());
                    (n, t)
                })
                .collect();
            IouTally::from_tensors(&tensors, "iou", Device::Cpu)
        };
        assert!(load(&|_, t| t).is_ok());
        let err = |r: Result<IouTally>| match r {
            Ok(_) => panic!("loaded"),
            Err(e) => e.to_string(),
        };
        // an intersection a million times its marginals (an IoU of about a million)
        let e = err(load(&|n, t| {
            if n == "iou.intersection" {
                t * 1_000_000 + 1
            } else {
                t
            }
        }));
        assert!(
            e.contains("more pixels for a unit and a label") && e.contains("delete it"),
            "{e}"
        );
        let e = err(load(&|n, t| {
            if n == "iou.active_pixels" {
                t - 1_000_000
            } else {
                t
            }
        }));
        assert!(
            e.contains("negative count") && e.contains("delete it"),
            "{e}"
        );
        // a label count that disagrees with its tensor is refused before any allocation
        let e = err(load(&|n, t| {
            if n == "iou.state" {
                Tensor::from_slice(&[1i64 << 40, 3, 75])
            } else {
                t
            }
        }));
        assert!(
            e.contains("label counts but its state says 1099511627776"),
            "{e}"
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let mut tally = IouTally::new(4, Device::Cpu).unwrap();
        assert!(tally.iou().is_err());
        let e = |r: Result<()>| r.unwrap_err().to_string();
        let opts = (Kind::Int64, Device::Cpu);
        let a = Tensor::ones([2, 3, 4, 4], (Kind::Bool, Device::Cpu));
        assert!(
            e(tally.add(&a.to_kind(Kind::Float), &Tensor::zeros([2, 1, 4, 4], opts)))
                .contains("bool")
        );
        assert!(e(tally.add(&a, &Tensor::zeros([2, 4, 4], opts))).contains("[B, K, H, W]"));
        assert!(e(tally.add(&a, &Tensor::zeros([2, 1, 5, 4], opts))).contains("height"));
        assert!(e(tally.add(&a, &Tensor::full([2, 1, 4, 4], 4, opts))).contains("0..4"));
        tally.add(&a, &Tensor::zeros([2, 1, 4, 4], opts)).unwrap();
        let a2 = Tensor::ones([2, 5, 4, 4], (Kind::Bool, Device::Cpu));
        assert!(e(tally.add(&a2, &Tensor::zeros([2, 1, 4, 4], opts))).contains("5 columns"));
        assert!(e(tally.merge(&IouTally::new(5, Device::Cpu).unwrap())).contains("4 and 5 labels"));
    }
}
