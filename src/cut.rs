//! The one place a network is cut at a layer: run to it, capture its output, edit it, run on.
//!
//! An edit sets units of the cut layer's output towards a value:
//! `x' = x·(1 − α) + v·α`, with `α` per unit and optionally modulated by a spatial mask (any
//! resolution, pooled to the layer's grid by max or mean). Several edits composite alpha-over in
//! order: `a' = 1 − (1 − a_new)(1 − a_acc)`, `v' = (v_acc·a_acc·(1 − a_new) + v_new·a_new) / a'`.
//! Ablation is `v = 0`; insertion sets a unit to a high level such as its 0.99 quantile.

use crate::nets::layered::LayeredNet;
use anyhow::{Result, bail};
use tch::{Kind, Tensor};

/// How a mask is reduced to the layer's grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pooling {
    /// A layer cell is as strong as the strongest mask pixel in it (the default).
    #[default]
    Max,
    /// A layer cell takes the mean of the mask pixels in it.
    Mean,
}

impl std::str::FromStr for Pooling {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "max" => Ok(Self::Max),
            "mean" => Ok(Self::Mean),
            _ => bail!("unknown mask pooling '{s}': use max or mean"),
        }
    }
}

/// One stroke: set `units` towards `values` with strength `alpha`, where `mask` allows.
#[derive(Debug)]
pub struct Edit {
    /// Unit (channel) indices of the cut layer.
    pub units: Vec<i64>,
    /// Target value per unit (same length as `units`).
    pub values: Vec<f32>,
    /// Strength per unit in [0, 1] (same length as `units`).
    pub alpha: Vec<f32>,
    /// Where the edit applies: `[H, W]`, `[1, 1, H, W]` or `[N, 1, H, W]` in [0, 1], at any
    /// resolution; `None` means everywhere.
    pub mask: Option<Tensor>,
    /// How the mask is pooled to the layer's grid.
    pub pooling: Pooling,
}

impl Edit {
    /// Sets `units` to zero everywhere (`mask = None`) or inside `mask`.
    pub fn ablate(units: &[i64], mask: Option<Tensor>) -> Self {
        Self::set(units, &vec![0.0; units.len()], mask)
    }

    /// Sets each unit to its value, fully, everywhere or inside `mask`.
    pub fn set(units: &[i64], values: &[f32], mask: Option<Tensor>) -> Self {
        Self {
            units: units.to_vec(),
            values: values.to_vec(),
            alpha: vec![1.0; units.len()],
            mask,
            pooling: Pooling::Max,
        }
    }

    /// Uses `pooling` for the mask.
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }

    /// Checks the edit against a layer of `channels` units.
    pub fn validate(&self, layer: &str, channels: i64) -> Result<()> {
        if self.values.len() != self.units.len() || self.alpha.len() != self.units.len() {
            bail!(
                "an edit lists {} units but {} values and {} strengths; give one of each per unit",
                self.units.len(),
                self.values.len(),
                self.alpha.len()
            );
        }
        if let Some(&u) = self.units.iter().find(|&&u| u < 0 || u >= channels) {
            bail!(
                "unit {u} is out of range: {layer} has {channels} units (0..{})",
                channels - 1
            );
        }
        if let Some(a) = self.alpha.iter().find(|a| !(0.0..=1.0).contains(*a)) {
            bail!("edit strength {a} is outside [0, 1]");
        }
        if let Some(v) = self.values.iter().find(|v| !v.is_finite()) {
            bail!("edit value {v} is not finite");
        }
        if let Some(m) = &self.mask {
            let d = m.dim();
            if !(d == 2 || (d == 4 && m.size()[1] == 1)) {
                bail!(
                    "an edit mask must be [H, W] or [N, 1, H, W], not {:?}",
                    m.size()
                );
            }
        }
        Ok(())
    }

    /// The mask pooled to an `h × w` grid as `[N or 1, 1, h, w]`, or `None` for everywhere.
    pub fn pooled_mask(&self, h: i64, w: i64) -> Option<Tensor> {
        self.mask.as_ref().map(|m| {
            let m = if m.dim() == 2 {
                m.view([1, 1, m.size()[0], m.size()[1]])
            } else {
                m.shallow_clone()
            };
            let m = m.to_kind(Kind::Float);
            if m.size()[2..] == [h, w] {
                return m;
            }
            match self.pooling {
                Pooling::Max => m.adaptive_max_pool2d([h, w]).0,
                Pooling::Mean => m.adaptive_avg_pool2d([h, w]),
            }
        })
    }
}

/// The alpha and value planes of composited edits at one layer: `[N or 1, C, h, w]` each.
pub struct EditPlanes {
    /// Combined strength.
    pub alpha: Tensor,
    /// Combined target value.
    pub value: Tensor,
}

impl EditPlanes {
    /// Composites `edits` in order (alpha-over) for a layer output of shape `[_, c, h, w]`
    /// (or `[_, c]` for flat layers, treated as 1×1).
    pub fn composite(
        edits: &[Edit],
        layer: &str,
        shape: &[i64],
        device: tch::Device,
    ) -> Result<Option<Self>> {
        if edits.is_empty() {
            return Ok(None);
        }
        let (c, h, w) = match shape.len() {
            4 => (shape[1], shape[2], shape[3]),
            2 => (shape[1], 1, 1),
            _ => bail!("cannot edit {layer}: its output has shape {shape:?}"),
        };
        let opts = (Kind::Float, device);
        let mut acc: Option<Self> = None;
        for edit in edits {
            edit.validate(layer, c)?;
            let idx = Tensor::from_slice(&edit.units).to_device(device);
            let unit_alpha = Tensor::zeros([c], opts).index_put(
                &[Some(&idx)],
                &Tensor::from_slice(&edit.alpha).to_device(device),
                false,
            );
            let unit_value = Tensor::zeros([c], opts).index_put(
                &[Some(&idx)],
                &Tensor::from_slice(&edit.values).to_device(device),
                false,
            );
            let per_unit = unit_alpha.view([1, c, 1, 1]);
            let v = unit_value.view([1, c, 1, 1]).expand([1, c, h, w], false);
            // a mask broadcasts the per-unit strengths over the grid (and over images)
            let a = match edit.pooled_mask(h, w) {
                Some(m) => per_unit * m.to_device(device),
                None => per_unit.expand([1, c, h, w], false),
            };
            acc = Some(match acc {
                None => Self {
                    alpha: a,
                    value: v.contiguous(),
                },
                Some(prev) => {
                    let keep = 1.0 - &a;
                    let alpha = 1.0 - (&keep) * (1.0 - &prev.alpha);
                    let value = (&prev.value * &prev.alpha * &keep + &v * &a) / (&alpha + 1e-40);
                    Self { alpha, value }
                }
            });
        }
        Ok(acc)
    }

    /// Applies the planes: `x·(1 − α) + v·α`.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        if x.dim() == 2 {
            let a = self.alpha.flatten(1, -1);
            let v = self.value.flatten(1, -1);
            return x * (1.0 - &a) + v * a;
        }
        x * (1.0 - &self.alpha) + &self.value * &self.alpha
    }
}

/// A network cut after one of its layers.
pub struct Cut<'a, N: LayeredNet + ?Sized> {
    net: &'a N,
    layer: usize,
    name: String,
}

impl<'a, N: LayeredNet + ?Sized> Cut<'a, N> {
    /// Cuts `net` after the layer named `layer` (canonical name or alias).
    pub fn new(net: &'a N, layer: &str) -> Result<Self> {
        let index = net.layer_index(layer)?;
        Ok(Self {
            net,
            layer: index,
            name: net.layer_names()[index].clone(),
        })
    }

    /// The canonical name of the cut layer.
    pub fn layer_name(&self) -> &str {
        &self.name
    }

    /// The index of the cut layer.
    pub fn layer_index(&self) -> usize {
        self.layer
    }

    /// Runs the network from its input through the cut layer and returns that layer's output.
    pub fn prefix(&self, input: &Tensor) -> Tensor {
        self.net.forward_range(input, 0, self.layer + 1)
    }

    /// Runs the rest of the network on the cut layer's (possibly edited) output.
    pub fn suffix(&self, features: &Tensor) -> Tensor {
        self.net
            .forward_range(features, self.layer + 1, self.net.num_layers())
    }

    /// Applies `edits` to features of the cut layer; with no edits the features come back as
    /// they are (the same tensor).
    pub fn edit(&self, features: &Tensor, edits: &[Edit]) -> Result<Tensor> {
        match EditPlanes::composite(edits, &self.name, &features.size(), features.device())? {
            None => Ok(features.shallow_clone()),
            Some(planes) => Ok(planes.apply(features)),
        }
    }

    /// The whole forward with `edits` at the cut: returns `(captured, output)` where `captured`
    /// is the layer's output before the edit.
    pub fn forward_edited(&self, input: &Tensor, edits: &[Edit]) -> Result<(Tensor, Tensor)> {
        let captured = self.prefix(input);
        let edited = self.edit(&captured, edits)?;
        let output = self.suffix(&edited);
        Ok((captured, output))
    }
}

/// Runs `net` from its input once, through the deepest of `layers` (indices), and returns
/// each of those layers' outputs in the order asked (the capture of several cuts in one pass).
pub fn capture_layers<N: LayeredNet + ?Sized>(
    net: &N,
    input: &Tensor,
    layers: &[usize],
) -> Vec<Tensor> {
    let mut order: Vec<usize> = layers.to_vec();
    order.sort_unstable();
    order.dedup();
    let mut x = input.shallow_clone();
    let mut at = 0;
    let mut out: Vec<(usize, Tensor)> = Vec::with_capacity(order.len());
    for &layer in &order {
        x = net.forward_range(&x, at, layer + 1);
        at = layer + 1;
        out.push((layer, x.shallow_clone()));
    }
    layers
        .iter()
        .map(|l| {
            let (_, t) = out.iter().find(|(i, _)| i == l).expect("captured above");
            t.shallow_clone()
        })
        .collect()
}

/// Stacks `features` (`[B, C, …]`) once per unit set, with that set's units zeroed:
/// returns `[G·B, C, …]`, copy `g` in rows `g·B .. (g + 1)·B`.
///
/// [`Cut::edit`] applies one list of edits to every image of a batch; here each stacked copy
/// needs its own unit set, so the copies are made by multiplying in a 0/1 `[G, C]` unit mask.
/// That is exactly `Edit::ablate(units, None)` (strength 1, value 0: `x·(1 − 1) + 0·1`), which
/// the tests check against one-at-a-time ablation through `Cut`.
pub fn stacked_ablated(features: &Tensor, unit_sets: &[Vec<i64>]) -> Result<Tensor> {
    let s = features.size();
    if s.len() < 2 {
        bail!("features must be [B, C, …], got shape {s:?}");
    }
    let (b, c) = (s[0], s[1]);
    let g = unit_sets.len() as i64;
    let mut mask = vec![1f32; (g * c) as usize];
    for (i, set) in unit_sets.iter().enumerate() {
        for &u in set {
            if u < 0 || u >= c {
                bail!(
                    "unit {u} is out of range: the layer has {c} units (0..{})",
                    c - 1
                );
            }
            mask[i * c as usize + u as usize] = 0.0;
        }
    }
    let mut shape = vec![g, 1, c];
    shape.extend(std::iter::repeat_n(1, s.len() - 2));
    let mask = Tensor::from_slice(&mask)
        .to_device(features.device())
        .to_kind(features.kind())
        .view(shape.as_slice());
    let mut out_shape = vec![g * b];
    out_shape.extend_from_slice(&s[1..]);
    Ok((features.unsqueeze(0) * mask).view(out_shape.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::proggan::ProGan;
    use tch::Device;

    fn small() -> ProGan {
        ProGan::random(&[16, 8, 8, 4], 1, Device::Cpu).unwrap()
    }

    #[test]
    fn no_edit_is_bit_identical_to_the_plain_forward() {
        let g = small();
        let z = Tensor::randn([3, 16], (Kind::Float, Device::Cpu));
        for layer in ["layer1", "layer4", "layer6", "output_16x16"] {
            let cut = Cut::new(&g, layer).unwrap();
            let (_, out) = cut.forward_edited(&z, &[]).unwrap();
            assert!(out.equal(&g.forward(&z)), "{layer}");
        }
    }

    #[test]
    fn capturing_several_layers_in_one_pass_gives_each_cut_s_prefix() {
        let g = small();
        let z = Tensor::randn([2, 16], (Kind::Float, Device::Cpu));
        let names = ["layer4", "layer1", "layer4", "layer6"];
        let idx: Vec<usize> = names.iter().map(|n| g.layer_index(n).unwrap()).collect();
        let got = capture_layers(&g, &z, &idx);
        assert_eq!(got.len(), 4);
        for (name, t) in names.iter().zip(&got) {
            let want = Cut::new(&g, name).unwrap().prefix(&z);
            assert!(t.allclose(&want, 1e-6, 1e-6, false), "{name}");
        }
    }

    #[test]
    fn ablation_in_a_mask_zeroes_only_masked_cells_of_listed_units() {
        let g = small();
        let cut = Cut::new(&g, "layer4").unwrap();
        let z = Tensor::randn([2, 16], (Kind::Float, Device::Cpu));
        let h = cut.prefix(&z);
        let mask = Tensor::zeros([32, 32], (Kind::Float, Device::Cpu));
        let _ = mask.narrow(0, 0, 16).narrow(1, 0, 8).fill_(1.0);
        let edited = cut.edit(&h, &[Edit::ablate(&[1, 5], Some(mask))]).unwrap();
        // layer4 is 8×8: the mask covers rows 0..4, cols 0..2
        let region = edited.narrow(2, 0, 4).narrow(3, 0, 2);
        assert_eq!(
            f64::try_from(region.get(0).get(1).abs().sum(Kind::Float)).unwrap(),
            0.0
        );
        assert_eq!(
            f64::try_from(region.get(1).get(5).abs().sum(Kind::Float)).unwrap(),
            0.0
        );
        let diff = (&edited - &h).abs().gt(0.0);
        // changed entries only in units 1 and 5 and the region
        let changed = diff.sum_dim_intlist([0, 2, 3].as_slice(), false, Kind::Int64);
        let per_unit: Vec<i64> = Vec::try_from(changed).unwrap();
        for (u, n) in per_unit.iter().enumerate() {
            assert!(*n <= 2 * 8, "unit {u} changed {n}");
            if u != 1 && u != 5 {
                assert_eq!(*n, 0, "unit {u}");
            }
        }
        let outside = diff.narrow(2, 4, 4).any();
        assert!(!bool::try_from(outside).unwrap());
    }

    #[test]
    fn strokes_composite_alpha_over_in_order() {
        let g = small();
        let cut = Cut::new(&g, "layer2").unwrap();
        let h = Tensor::ones([1, 8, 4, 4], (Kind::Float, Device::Cpu));
        let first = Edit {
            alpha: vec![0.5],
            ..Edit::set(&[0], &[3.0], None)
        };
        let second = Edit {
            alpha: vec![0.5],
            ..Edit::set(&[0], &[7.0], None)
        };
        let out = cut.edit(&h, &[first, second]).unwrap();
        // a' = 0.75, v' = (3·0.5·0.5 + 7·0.5)/0.75 = 17/3; x' = 1·0.25 + 17/3·0.75 = 4.5
        let v = f64::try_from(out.get(0).get(0).get(0).get(0)).unwrap();
        assert!((v - 4.5).abs() < 1e-6, "{v}");
        // the same as applying the two strokes one after another
        let seq = 0.5 * (0.5 * 1.0 + 0.5 * 3.0) + 0.5 * 7.0;
        assert!((v - seq).abs() < 1e-6);
    }

    #[test]
    fn mean_pooling_gives_partial_strength() {
        let mask = Tensor::zeros([8, 8], (Kind::Float, Device::Cpu));
        let _ = mask.narrow(1, 0, 1).fill_(1.0);
        let e = Edit::ablate(&[0], Some(mask)).with_pooling(Pooling::Mean);
        let m = e.pooled_mask(4, 4).unwrap();
        assert!((f64::try_from(m.get(0).get(0).get(0).get(0)).unwrap() - 0.5).abs() < 1e-6);
        let e = Edit {
            pooling: Pooling::Max,
            ..e
        };
        assert_eq!(
            f64::try_from(e.pooled_mask(4, 4).unwrap().get(0).get(0).get(0).get(0)).unwrap(),
            1.0
        );
    }

    #[test]
    fn out_of_range_units_and_unknown_layers_are_refused() {
        let g = small();
        let err = Cut::new(&g, "layer40").err().unwrap().to_string();
        assert!(
            err.contains("unknown layer 'layer40'") && err.contains("layer4"),
            "{err}"
        );
        let cut = Cut::new(&g, "layer4").unwrap();
        let h = cut.prefix(&Tensor::randn([1, 16], (Kind::Float, Device::Cpu)));
        let err = cut
            .edit(&h, &[Edit::ablate(&[8], None)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unit 8 is out of range: layer4 has 8 units"),
            "{err}"
        );
    }
}
