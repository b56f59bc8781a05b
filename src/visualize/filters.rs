//! A conv layer's filters as an image grid. A filter on a 3-channel input is drawn directly as
//! an RGB patch; a deeper filter has one kernel per input channel, so it is drawn through its
//! three strongest input channels (largest kernel norm) as red, green and blue, and the
//! channels are listed. Each filter is scaled by its own largest absolute weight: grey is 0.

use crate::imageio;
use anyhow::{Result, bail};
use image::RgbImage;
use image::imageops::FilterType;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// One filter as drawn.
#[derive(Clone, Debug, Serialize)]
pub struct FilterTile {
    /// The output channel (unit).
    pub unit: i64,
    /// The input channels drawn as red, green and blue.
    pub channels: [i64; 3],
    /// The L2 norm of the whole filter.
    pub norm: f64,
}

/// A layer's filters drawn.
pub struct Filters {
    /// The weight tensor's name.
    pub weight: String,
    /// Input channels of the layer.
    pub inputs: i64,
    /// Whether filters are drawn directly (3 inputs) or through their strongest channels.
    pub direct: bool,
    /// One tile per filter, in unit order.
    pub tiles: Vec<FilterTile>,
    /// The tiles' pictures, `scale` pixels per weight.
    pub pictures: Vec<RgbImage>,
}

/// The conv weight of the layer at `index` of a network whose layers are `names` and whose
/// weights are `tensors`: the nearest layer at or before it with a 4-D `NAME.weight` or
/// `NAME.conv.weight` (a ReLU or pool is drawn through the conv before it).
pub fn conv_weight(
    names: &[String],
    index: usize,
    tensors: &[(String, Tensor)],
) -> Result<(String, Tensor)> {
    for name in names[..=index].iter().rev() {
        for key in [format!("{name}.weight"), format!("{name}.conv.weight")] {
            if let Some((k, t)) = tensors.iter().find(|(k, _)| *k == key) {
                if t.dim() == 4 {
                    return Ok((k.clone(), t.shallow_clone()));
                }
                bail!(
                    "layer {name} is not a conv layer (its weight has shape {:?}); filters need a conv layer",
                    t.size()
                );
            }
        }
    }
    bail!(
        "no conv layer at or before {}; filters need a conv layer",
        names[index]
    )
}

/// Draws every filter of `weight` (`[out, in, k, k]`), each `k·scale` pixels a side.
pub fn draw(name: &str, weight: &Tensor, scale: u32) -> Result<Filters> {
    let s = weight.size();
    if s.len() != 4 {
        bail!("{name} has shape {s:?}, not a conv weight [out, in, kh, kw]");
    }
    if !(1..=64).contains(&scale) {
        bail!("the filter scale must be 1 to 64 pixels per weight, not {scale}");
    }
    let w = weight.detach().to_device(Device::Cpu).to_kind(Kind::Float);
    let (out, inputs) = (s[0], s[1]);
    let direct = inputs == 3;
    let mut tiles = Vec::new();
    let mut rgb = Vec::new();
    for unit in 0..out {
        let f = w.get(unit);
        let channels: [i64; 3] = if direct {
            [0, 1, 2]
        } else {
            let norms = f
                .flatten(1, -1)
                .norm_scalaropt_dim(2.0, [1].as_slice(), false);
            let (_, top) = norms.topk(3.min(inputs), 0, true, true);
            let top = Vec::<i64>::try_from(top)?;
            std::array::from_fn(|i| top[i.min(top.len() - 1)])
        };
        let picked = f.index_select(0, &Tensor::from_slice(&channels));
        let m = picked.abs().max().double_value(&[]).max(1e-12);
        rgb.push(&picked / m);
        tiles.push(FilterTile {
            unit,
            channels,
            norm: f.norm().double_value(&[]),
        });
    }
    let stacked = Tensor::stack(&rgb, 0);
    let pictures = imageio::to_rgb_images(&stacked)?
        .into_iter()
        .map(|p| {
            image::imageops::resize(
                &p,
                p.width() * scale,
                p.height() * scale,
                FilterType::Nearest,
            )
        })
        .collect();
    Ok(Filters {
        weight: name.to_string(),
        inputs,
        direct,
        tiles,
        pictures,
    })
}
