//! The world segmenter: a small U-shaped fully convolutional network that labels every pixel of
//! a 64×64 world image with a concept.
//!
//! Encoder: two 3×3 convs at full resolution, then two more after each of two 2× max-pools;
//! decoder: bilinear 2× upsampling, concatenation with the encoder features of that resolution,
//! two 3×3 convs; a 1×1 conv gives per-pixel logits. ReLU after every conv but the last.

use crate::nets::checkpoint::{Expected, StateDict};
use anyhow::Result;
use tch::{Device, Kind, Tensor, nn};

/// Layer names and (in, out, kernel) of the network with base width `w` and `labels` outputs.
fn plan(w: i64, labels: i64) -> Vec<(&'static str, i64, i64, i64)> {
    vec![
        ("enc1a", 3, w, 3),
        ("enc1b", w, w, 3),
        ("enc2a", w, 2 * w, 3),
        ("enc2b", 2 * w, 2 * w, 3),
        ("enc3a", 2 * w, 4 * w, 3),
        ("enc3b", 4 * w, 4 * w, 3),
        ("dec2a", 6 * w, 2 * w, 3),
        ("dec2b", 2 * w, 2 * w, 3),
        ("dec1a", 3 * w, w, 3),
        ("dec1b", w, w, 3),
        ("head", w, labels, 1),
    ]
}

/// The segmentation network.
pub struct WorldSegNet {
    convs: Vec<(Tensor, Tensor)>,
    width: i64,
    labels: i64,
}

impl WorldSegNet {
    /// The tensors of a network with base width `width` and `labels` outputs.
    pub fn expected_tensors(width: i64, labels: i64) -> Vec<Expected> {
        plan(width, labels)
            .into_iter()
            .flat_map(|(n, i, o, k)| {
                [
                    (format!("{n}.weight"), vec![o, i, k, k]),
                    (format!("{n}.bias"), vec![o]),
                ]
            })
            .collect()
    }

    /// A network whose weights are trainable variables of `vs` (Kaiming-normal, zero biases).
    pub fn trainable(vs: &nn::Path, width: i64, labels: i64) -> Self {
        let convs = plan(width, labels)
            .into_iter()
            .map(|(n, i, o, k)| {
                let p = vs / n;
                let std = (2.0 / (i * k * k) as f64).sqrt();
                (
                    p.randn("weight", &[o, i, k, k], 0.0, std),
                    p.zeros("bias", &[o]),
                )
            })
            .collect();
        Self {
            convs,
            width,
            labels,
        }
    }

    /// Builds the network from a checkpoint (strict), inferring width and label count.
    pub fn from_state_dict(sd: &StateDict, device: Device) -> Result<Self> {
        let width = sd.shape("enc1a.weight").map(|s| s[0]).unwrap_or(0);
        let labels = sd.shape("head.weight").map(|s| s[0]).unwrap_or(0);
        sd.check_strict("world segmenter", &Self::expected_tensors(width, labels))?;
        let convs = plan(width, labels)
            .into_iter()
            .map(|(n, ..)| {
                Ok((
                    sd.tensor(&format!("{n}.weight"), device)?,
                    sd.tensor(&format!("{n}.bias"), device)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            convs,
            width,
            labels,
        })
    }

    /// Base width.
    pub fn width(&self) -> i64 {
        self.width
    }

    /// Number of output labels (including 0, "none").
    pub fn num_labels(&self) -> i64 {
        self.labels
    }

    /// The weights by name, for saving.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        plan(self.width, self.labels)
            .into_iter()
            .zip(&self.convs)
            .flat_map(|((n, ..), (w, b))| {
                [
                    (format!("{n}.weight"), w.detach()),
                    (format!("{n}.bias"), b.detach()),
                ]
            })
            .collect()
    }

    fn conv(&self, i: usize, x: &Tensor, relu: bool) -> Tensor {
        let (w, b) = &self.convs[i];
        let pad = w.size()[2] / 2;
        let y = x.conv2d(w, Some(b), [1, 1], [pad, pad], [1, 1], 1);
        if relu { y.relu() } else { y }
    }

    /// Per-pixel logits `[N, labels, H, W]` for images `[N, 3, H, W]` in [−1, 1] (H, W divisible by 4).
    pub fn logits(&self, x: &Tensor) -> Tensor {
        let e1 = self.conv(1, &self.conv(0, x, true), true);
        let d = e1.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        let e2 = self.conv(3, &self.conv(2, &d, true), true);
        let d = e2.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        let e3 = self.conv(5, &self.conv(4, &d, true), true);
        let up = |t: &Tensor, like: &Tensor| {
            let s = like.size();
            t.upsample_bilinear2d([s[2], s[3]], false, None, None)
        };
        let u2 = Tensor::cat(&[up(&e3, &e2), e2.shallow_clone()], 1);
        let d2 = self.conv(7, &self.conv(6, &u2, true), true);
        let u1 = Tensor::cat(&[up(&d2, &e1), e1.shallow_clone()], 1);
        let d1 = self.conv(9, &self.conv(8, &u1, true), true);
        self.conv(10, &d1, false)
    }

    /// The most likely label per pixel, `[N, H, W]`, never 0 ("none").
    pub fn predict(&self, x: &Tensor) -> Tensor {
        let logits = self.logits(x);
        logits
            .narrow(1, 1, self.labels - 1)
            .argmax(1, false)
            .to_kind(Kind::Int64)
            + 1
    }
}
