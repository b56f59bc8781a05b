//! Exact unit × concept intersection and union counts for binary activation masks.

use anyhow::{Result, bail};
use tch::{Device, Kind, Tensor};

use super::check;
use super::store::{NamedTensors, Statistic, fetch_i64s, fetch_shaped};

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
            bail!("an IoU tally needs at least 2 labels (0 = none and one concept), got {num_labels}");
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
            bail!("the activation indicator must be a [B, C, H, W] bool tensor, got {:?} {a:?}; threshold activations with gt()", active.kind());
        }
        if l.len() != 4 || !check::is_integer(labels.kind()) {
            bail!("the label map must be a [B, K, H, W] integer tensor, got {:?} {l:?}", labels.kind());
        }
        if a[0] != l[0] || a[2..] != l[2..] {
            bail!("the activation indicator {a:?} and the label map {l:?} must share batch size and height × width; resample one to the other");
        }
        check::same_columns(self.columns, a[1], "the activation indicator")?;
        let (b, c, pixels) = (a[0], a[1], a[2] * a[3]);
        if pixels >= EXACT_PIXELS {
            bail!("images of {pixels} pixels are too large for exact f32 tallies; tally tiles below 2^24 pixels");
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
            bail!("label values must lie in 0..{} (the tally's label count), found {lo}..={hi}; create the tally with the segmenter's full label count", self.labels);
        }
        let active = active.to_device(self.device);
        let count = self.labels;
        let per_image = pixels * (c + count);
        let chunk = (CHUNK_ELEMENTS / per_image).clamp(1, b);
        let mut isect = Tensor::zeros([count, c], (Kind::Int64, self.device));
        let mut start = 0;
        while start < b {
            let len = chunk.min(b - start);
            let a_chunk = active.narrow(0, start, len).reshape([len, c, pixels]).to_kind(Kind::Float);
            let masks = label_masks(&labels.narrow(0, start, len), count);
            self.label_pixels += masks.sum_dim_intlist([0i64, 1].as_slice(), false, Kind::Int64);
            let counts = a_chunk.bmm(&masks).to_kind(Kind::Int64).sum_dim_intlist(0, false, Kind::Int64);
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
            bail!("cannot merge IoU tallies over {} and {} labels", self.labels, other.labels);
        }
        let (Some(c), Some(isect), Some(act)) = (other.columns, &other.intersection, &other.active) else {
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
        self.intersection.as_ref().map(Tensor::shallow_clone).ok_or_else(Self::empty)
    }

    /// `[C]` i64: active pixels per unit.
    pub fn active_pixels(&self) -> Result<Tensor> {
        self.active.as_ref().map(Tensor::shallow_clone).ok_or_else(Self::empty)
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
    let unlabelled = flat.eq(0).all_dim(1, false).to_kind(Kind::Float).unsqueeze(2);
    let _ = masks.narrow(2, 0, 1).copy_(&unlabelled);
    masks
}

impl Statistic for IouTally {
    fn to_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let state = [self.labels, self.columns.unwrap_or(-1), self.total];
        let mut out = vec![
            (format!("{prefix}.state"), Tensor::from_slice(&state)),
            (format!("{prefix}.label_pixels"), self.label_pixels.shallow_clone()),
        ];
        if let (Some(i), Some(a)) = (&self.intersection, &self.active) {
            out.push((format!("{prefix}.intersection"), i.shallow_clone()));
            out.push((format!("{prefix}.active_pixels"), a.shallow_clone()));
        }
        out
    }

    fn from_tensors(tensors: &NamedTensors, prefix: &str, device: Device) -> Result<Self> {
        let state = fetch_i64s(tensors, &format!("{prefix}.state"), 3)?;
        let mut tally = IouTally::new(state[0].max(0) as usize, device)?;
        let l = tally.labels;
        tally.label_pixels = fetch_shaped(tensors, &format!("{prefix}.label_pixels"), Kind::Int64, &[l], device)?;
        tally.total = state[2];
        if state[1] >= 0 {
            let c = state[1];
            tally.columns = Some(c);
            tally.intersection = Some(fetch_shaped(tensors, &format!("{prefix}.intersection"), Kind::Int64, &[l, c], device)?);
            tally.active = Some(fetch_shaped(tensors, &format!("{prefix}.active_pixels"), Kind::Int64, &[c], device)?);
        }
        Ok(tally)
    }
}
