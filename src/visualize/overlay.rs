//! Saliency maps drawn over their images: the map, scaled by its own largest value, in the
//! viridis scale, blended over a dimmed copy of the image where the map is strong.

use crate::chart::ColourScale;
use anyhow::{Result, bail};
use image::RgbImage;
use tch::{Device, Kind, Tensor};

/// `[N, H, W]` maps over `[N, 3, H, W]` images in [−1, 1], as pictures `scale` times larger.
pub fn overlays(images: &Tensor, maps: &Tensor, scale: u32) -> Result<Vec<RgbImage>> {
    let (is, ms) = (images.size(), maps.size());
    if ms.len() != 3 || is.len() != 4 || ms[0] != is[0] || ms[1..] != is[2..] {
        bail!("maps {ms:?} do not match images {is:?}");
    }
    let pictures = crate::imageio::to_rgb_images(images)?;
    let maps = maps.detach().to_device(Device::Cpu).to_kind(Kind::Float);
    let mut out = Vec::new();
    for (i, picture) in pictures.iter().enumerate() {
        let m = maps.get(i as i64);
        let top = m.max().double_value(&[]);
        let low = m.min().double_value(&[]).min(0.0);
        let values = Vec::<f32>::try_from(m.flatten(0, -1))?;
        let mut o = picture.clone();
        for (p, &v) in o.pixels_mut().zip(&values) {
            let t = if top > low {
                ((v as f64 - low) / (top - low)).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let c = ColourScale::Sequential.at(t);
            let a = 0.25 + 0.6 * t;
            for (v, c) in p.0.iter_mut().zip(c) {
                *v = (*v as f64 * 0.6 * (1.0 - a) + c as f64 * a).round() as u8;
            }
        }
        out.push(image::imageops::resize(
            &o,
            o.width() * scale,
            o.height() * scale,
            image::imageops::FilterType::Nearest,
        ));
    }
    Ok(out)
}
