//! The context check: what an edit did to its concept, measured on segmentations before and
//! after, inside the painted region.
//!
//! The region is the set of layer cells the stroke touches (its mask pooled to the layer's
//! grid, any strength > 0), drawn at the segmentation's resolution; "near" adds one cell all
//! round. An insertion is accepted when the concept gained more than 2 pixels per touched cell
//! in and near the region (PNAS notebook criterion at 64×64 with 8×8 cells, scaled by the
//! cell's pixel area otherwise); a rejection names the labels the region had before. A removal
//! reports the fraction of the concept's pixels in the region that are gone.

use crate::segment::Label;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Pixels a concept must gain per touched cell, at 64 pixels per cell (8×8 at 64×64).
pub const GAIN_PER_CELL: f64 = 2.0;

/// Share of the region a label needs to be named as its context (the largest is always named).
pub const CONTEXT_SHARE: f64 = 0.2;

/// The painted region of one stroke at the segmentation's resolution.
#[derive(Debug)]
pub struct Region {
    /// `[h, w]` bool: pixels of the touched cells.
    pub inside: Tensor,
    /// `[h, w]` bool: the touched cells and their neighbours.
    pub near: Tensor,
    /// Number of layer cells touched.
    pub cells: i64,
    /// Segmentation pixels per layer cell.
    pub cell_pixels: f64,
}

impl Region {
    /// The region of a mask pooled to the layer's grid (`[1, 1, lh, lw]` or `[lh, lw]`), drawn
    /// at a `seg_h × seg_w` segmentation.
    pub fn from_pooled(pooled: &Tensor, seg_h: i64, seg_w: i64) -> Result<Self> {
        let size = pooled.size();
        let (lh, lw) = (size[size.len() - 2], size[size.len() - 1]);
        if seg_h % lh != 0 || seg_w % lw != 0 {
            bail!("a {seg_h}×{seg_w} segmentation does not tile the layer's {lh}×{lw} grid");
        }
        let cells = pooled.reshape([1, 1, lh, lw]).gt(0.0).to_kind(Kind::Float);
        let grown = cells.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false);
        let up = |t: &Tensor| {
            t.upsample_nearest2d([seg_h, seg_w], None, None)
                .reshape([seg_h, seg_w])
                .gt(0.5)
        };
        Ok(Self {
            inside: up(&cells),
            near: up(&grown),
            cells: i64::try_from(cells.sum(Kind::Int64))?,
            cell_pixels: ((seg_h / lh) * (seg_w / lw)) as f64,
        })
    }

    /// The gain an insertion needs: more than this many pixels.
    pub fn gain_threshold(&self) -> f64 {
        GAIN_PER_CELL * self.cells as f64 * self.cell_pixels / 64.0
    }
}

/// Per image, each label's share of the segmentation `[N, K, h, w]` (all K channels counted,
/// divided by `h·w`): `[N, labels]` float64.
pub fn label_fractions(seg: &Tensor, labels: i64) -> Tensor {
    let s = seg.size();
    let (n, pixels) = (s[0], s[2] * s[3]);
    let offsets = Tensor::arange(n, (Kind::Int64, seg.device())).view([n, 1, 1, 1]) * labels;
    (seg + offsets)
        .flatten(0, -1)
        .bincount(None::<Tensor>, n * labels)
        .view([n, labels])
        .to_kind(Kind::Double)
        / pixels as f64
}

/// Pixels of `seg` (`[K, h, w]` label ids) within `within` (`[h, w]` bool) where any channel
/// is `concept`.
pub fn concept_pixels(seg: &Tensor, concept: i64, within: &Tensor) -> Result<i64> {
    let hit = seg.eq(concept).any_dim(0, false).logical_and(within);
    Ok(i64::try_from(hit.sum(Kind::Int64))?)
}

/// The labels covering `within` in `seg` with their shares, largest first, "none" left out.
pub fn label_shares(seg: &Tensor, within: &Tensor, labels: &[Label]) -> Result<Vec<(String, f64)>> {
    let ids = seg.masked_select(&within.unsqueeze(0).expand_as(seg));
    let counts: Vec<i64> = Vec::try_from(ids.bincount(None::<Tensor>, labels.len() as i64))?;
    let total: i64 = counts.iter().skip(1).sum();
    let mut out: Vec<(String, f64)> = counts
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, n)| **n > 0)
        .map(|(i, &n)| {
            let name = labels
                .get(i)
                .map_or(format!("label{i}"), |l| l.name.clone());
            (name, n as f64 / total as f64)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// The context a region had: the labels with at least [`CONTEXT_SHARE`] of it (at least the
/// largest), or `none` for an unlabelled region.
pub fn context_of(seg: &Tensor, within: &Tensor, labels: &[Label]) -> Result<Vec<String>> {
    let shares = label_shares(seg, within, labels)?;
    let mut named: Vec<String> = shares
        .iter()
        .enumerate()
        .filter(|(i, s)| *i == 0 || s.1 >= CONTEXT_SHARE)
        .map(|(_, s)| s.0.clone())
        .collect();
    if named.is_empty() {
        named.push("none".into());
    }
    Ok(named)
}

/// The outcome of an insertion's context check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InsertionVerdict {
    /// Whether the concept gained enough pixels in and near the region.
    pub accepted: bool,
    /// Concept pixels after minus before, in and near the region.
    pub gained: i64,
    /// The gain needed: more than this.
    pub threshold: f64,
    /// Labels the painted region had before the edit.
    pub context: Vec<String>,
}

impl InsertionVerdict {
    /// A one-line account, e.g. `rejected: door on sky (+0 px)`.
    pub fn describe(&self, concept: &str) -> String {
        format!(
            "{}: {concept} on {} ({:+} px, needs > {})",
            if self.accepted {
                "accepted"
            } else {
                "rejected"
            },
            self.context.join(", "),
            self.gained,
            self.threshold
        )
    }
}

/// Judges an insertion of `concept` in `region` from segmentations `[K, h, w]` before and after.
pub fn judge_insertion(
    before: &Tensor,
    after: &Tensor,
    region: &Region,
    concept: i64,
    labels: &[Label],
) -> Result<InsertionVerdict> {
    let gained = concept_pixels(after, concept, &region.near)?
        - concept_pixels(before, concept, &region.near)?;
    let threshold = region.gain_threshold();
    Ok(InsertionVerdict {
        accepted: region.cells > 0 && gained as f64 > threshold,
        gained,
        threshold,
        context: context_of(before, &region.inside, labels)?,
    })
}

/// What a removal did in its region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemovalEffect {
    /// Concept pixels in the region before.
    pub before: i64,
    /// Concept pixels in the region after.
    pub after: i64,
    /// `(before − after) / before`; `None` when the region had none of the concept.
    pub removed_fraction: Option<f64>,
}

impl RemovalEffect {
    /// A one-line account, e.g. `removed 83% of tree in the region (120 → 20 px)`.
    pub fn describe(&self, concept: &str) -> String {
        match self.removed_fraction {
            Some(f) => format!(
                "removed {:.0}% of {concept} in the region ({} → {} px)",
                100.0 * f,
                self.before,
                self.after
            ),
            None => format!(
                "no {concept} in the region before the edit ({} px after)",
                self.after
            ),
        }
    }
}

/// Measures a removal of `concept` in `region` from segmentations `[K, h, w]` before and after.
pub fn measure_removal(
    before: &Tensor,
    after: &Tensor,
    region: &Region,
    concept: i64,
) -> Result<RemovalEffect> {
    let b = concept_pixels(before, concept, &region.inside)?;
    let a = concept_pixels(after, concept, &region.inside)?;
    Ok(RemovalEffect {
        before: b,
        after: a,
        removed_fraction: (b > 0).then(|| (b - a) as f64 / b as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn fractions_count_every_channel_per_image() {
        // image 0: labels 1,1,2,0 in channel 0 and 3,0,0,0 in channel 1; image 1: all 2
        let seg = Tensor::from_slice(&[1i64, 1, 2, 0, 3, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0])
            .view([2, 2, 2, 2])
            .to_device(Device::Cpu);
        let f: Vec<Vec<f64>> = Vec::try_from(&label_fractions(&seg, 4)).unwrap();
        assert_eq!(f[0], [1.0, 0.5, 0.25, 0.25]);
        assert_eq!(f[1], [1.0, 0.0, 1.0, 0.0]);
    }

    fn labels() -> Vec<Label> {
        ["none", "sky", "tree", "door"]
            .iter()
            .map(|n| Label {
                name: n.to_string(),
                category: "object".into(),
            })
            .collect()
    }

    /// A 64×64 segmentation: sky above row 32, tree below.
    fn scene() -> Tensor {
        let s = Tensor::full([1, 64, 64], 2i64, (Kind::Int64, Device::Cpu));
        let _ = s.narrow(1, 0, 32).fill_(1);
        s
    }

    /// A region of the 8×8 layer grid cells `rows × cols`.
    fn region(rows: std::ops::Range<i64>, cols: std::ops::Range<i64>) -> Region {
        let p = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
        let _ = p
            .narrow(2, rows.start, rows.end - rows.start)
            .narrow(3, cols.start, cols.end - cols.start)
            .fill_(0.3);
        Region::from_pooled(&p, 64, 64).unwrap()
    }

    fn paint(seg: &Tensor, y: i64, x: i64, h: i64, w: i64, id: i64) -> Tensor {
        let s = seg.copy();
        let _ = s.narrow(1, y, h).narrow(2, x, w).fill_(id);
        s
    }

    #[test]
    fn region_covers_touched_cells_and_their_neighbours() {
        let r = region(1..3, 2..3);
        assert_eq!(r.cells, 2);
        assert_eq!(i64::try_from(r.inside.sum(Kind::Int64)).unwrap(), 2 * 64);
        assert_eq!(i64::try_from(r.near.sum(Kind::Int64)).unwrap(), 4 * 3 * 64);
        assert_eq!(r.gain_threshold(), 4.0);
        let s =
            Region::from_pooled(&Tensor::ones([2, 2], (Kind::Float, Device::Cpu)), 32, 32).unwrap();
        assert_eq!(
            (s.cells, s.cell_pixels, s.gain_threshold()),
            (4, 256.0, 32.0)
        );
    }

    #[test]
    fn insertion_is_accepted_only_past_two_pixels_per_cell_in_or_near_the_region() {
        let before = scene();
        let r = region(1..3, 2..3); // sky, 2 cells: needs more than 4 px
        let l = labels();
        let five = paint(&before, 8, 16, 1, 5, 3);
        let v = judge_insertion(&before, &five, &r, 3, &l).unwrap();
        assert!(v.accepted && v.gained == 5, "{v:?}");
        assert_eq!(v.context, ["sky"]);
        let four = paint(&before, 8, 16, 1, 4, 3);
        let v = judge_insertion(&before, &four, &r, 3, &l).unwrap();
        assert!(!v.accepted && v.gained == 4);
        assert_eq!(
            v.describe("door"),
            "rejected: door on sky (+4 px, needs > 4)"
        );
        // a neighbouring cell counts, a far one does not
        let near = paint(&before, 8, 24, 2, 8, 3);
        assert!(judge_insertion(&before, &near, &r, 3, &l).unwrap().accepted);
        let far = paint(&before, 48, 48, 8, 8, 3);
        let v = judge_insertion(&before, &far, &r, 3, &l).unwrap();
        assert!(!v.accepted && v.gained == 0);
        // doors already there are not a gain
        let had = paint(&before, 8, 16, 8, 8, 3);
        assert!(!judge_insertion(&had, &had, &r, 3, &l).unwrap().accepted);
    }

    #[test]
    fn context_names_every_large_label_of_the_region() {
        let seg = scene();
        let l = labels();
        let r = region(3..5, 0..2); // half sky, half tree
        let c = context_of(&seg, &r.inside, &l).unwrap();
        assert_eq!(c, ["sky", "tree"]);
        let r = region(0..4, 0..2);
        let seg2 = paint(&seg, 0, 0, 4, 16, 3); // door over 1/8 of the sky region
        assert_eq!(context_of(&seg2, &r.inside, &l).unwrap(), ["sky"]);
        let none = Tensor::zeros([1, 64, 64], (Kind::Int64, Device::Cpu));
        assert_eq!(context_of(&none, &r.inside, &l).unwrap(), ["none"]);
    }

    #[test]
    fn removal_reports_the_fraction_of_the_concept_gone_from_the_region() {
        let before = scene();
        let r = region(4..6, 0..8); // all tree: 2 rows of 8 cells = 1024 px
        let after = paint(&before, 32, 0, 4, 64, 1); // 256 tree px become sky
        let e = measure_removal(&before, &after, &r, 2).unwrap();
        assert_eq!((e.before, e.after), (1024, 768));
        assert!((e.removed_fraction.unwrap() - 0.25).abs() < 1e-12);
        let sky_region = region(0..2, 0..8);
        let e = measure_removal(&before, &after, &sky_region, 2).unwrap();
        assert_eq!(e.removed_fraction, None);
    }
}
