//! Images in and out: tensors in [−1, 1] ↔ 8-bit RGB, PNG files, grids and masks.

use crate::fsutil::atomic_write_with;
use anyhow::{Context, Result, bail};
use image::{DynamicImage, GenericImageView, RgbImage, imageops::FilterType};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Converts `[N, 3, H, W]` images in [−1, 1] to 8-bit RGB as `((x + 1)/2·255)` clamped to
/// [0, 255] and truncated.
pub fn to_rgb_images(x: &Tensor) -> Result<Vec<RgbImage>> {
    let size = x.size();
    if size.len() != 4 || size[1] != 3 {
        bail!("expected images as [N, 3, H, W], got {size:?}");
    }
    let (n, h, w) = (size[0] as usize, size[2] as u32, size[3] as u32);
    let bytes = ((x.detach().to_kind(Kind::Float) + 1.0) / 2.0 * 255.0)
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
        .permute([0, 2, 3, 1])
        .contiguous()
        .to_device(Device::Cpu);
    let flat = Vec::<u8>::try_from(bytes.flatten(0, -1))?;
    let per = (h * w * 3) as usize;
    Ok((0..n)
        .map(|i| RgbImage::from_raw(w, h, flat[i * per..(i + 1) * per].to_vec()).expect("size"))
        .collect())
}

/// Converts RGB images of one size to a `[N, 3, H, W]` tensor in [−1, 1].
pub fn from_rgb_images(images: &[RgbImage], device: Device) -> Result<Tensor> {
    let Some(first) = images.first() else {
        bail!("no images given")
    };
    let (w, h) = first.dimensions();
    if let Some(other) = images.iter().find(|i| i.dimensions() != (w, h)) {
        bail!(
            "images differ in size: {:?} and {:?}",
            (w, h),
            other.dimensions()
        );
    }
    let mut flat = Vec::with_capacity(images.len() * (w * h * 3) as usize);
    for img in images {
        flat.extend_from_slice(img.as_raw());
    }
    let t = Tensor::from_slice(&flat)
        .view([images.len() as i64, h as i64, w as i64, 3])
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float);
    Ok((t / 127.5 - 1.0).to_device(device))
}

/// Resizes `[N, 3, h, w]` images to `size × size` (bilinear), the input side a classifier
/// expects; images already of that size are returned as they are.
pub fn to_input_size(images: &Tensor, size: i64) -> Tensor {
    let s = images.size();
    if s[2] == size && s[3] == size {
        return images.shallow_clone();
    }
    images.upsample_bilinear2d([size, size], false, None, None)
}

/// Writes a PNG atomically.
pub fn save_png(path: &Path, img: &RgbImage) -> Result<()> {
    atomic_write_with(path, |tmp| {
        img.save_with_format(tmp, image::ImageFormat::Png)?;
        Ok(())
    })
}

/// Tiles images (all of one size) into a grid of `cols` columns with `pad` white pixels
/// between them.
pub fn grid(images: &[RgbImage], cols: usize, pad: u32) -> RgbImage {
    let Some(first) = images.first() else {
        return RgbImage::new(1, 1);
    };
    let (w, h) = first.dimensions();
    let cols = cols.clamp(1, images.len());
    let rows = images.len().div_ceil(cols);
    let gw = cols as u32 * (w + pad) + pad;
    let gh = rows as u32 * (h + pad) + pad;
    let mut out = RgbImage::from_pixel(gw, gh, image::Rgb([255, 255, 255]));
    for (i, img) in images.iter().enumerate() {
        let x = pad + (i % cols) as u32 * (w + pad);
        let y = pad + (i / cols) as u32 * (h + pad);
        image::imageops::replace(&mut out, img, x as i64, y as i64);
    }
    out
}

/// Opens an image file with an error that names the file and the reason.
pub fn open_image(path: &Path) -> Result<DynamicImage> {
    if !path.exists() {
        bail!("image {} does not exist; check the path", path.display());
    }
    image::open(path).with_context(|| {
        format!(
            "cannot read {} as an image (PNG or JPEG); the file may be corrupted",
            path.display()
        )
    })
}

/// Reads an RGB image, resized to `size` (width, height) with a bilinear filter if given.
pub fn read_rgb(path: &Path, size: Option<(u32, u32)>) -> Result<RgbImage> {
    let img = open_image(path)?;
    let img = match size {
        Some((w, h)) if img.dimensions() != (w, h) => img.resize_exact(w, h, FilterType::Triangle),
        _ => img,
    };
    Ok(img.to_rgb8())
}

/// Reads a mask image as an `[H, W]` float tensor in [0, 1] at the given image size.
///
/// The alpha channel is the mask when the file has one that is not fully opaque; otherwise
/// the luminance is. A mask of any size is resized to `(height, width)`, but its aspect ratio
/// must match unless `stretch` is set.
pub fn read_mask(path: &Path, height: u32, width: u32, stretch: bool) -> Result<Tensor> {
    let img = open_image(path)?;
    let (mw, mh) = img.dimensions();
    let aspect = |w: u32, h: u32| w as f64 / h as f64;
    if !stretch && (aspect(mw, mh) / aspect(width, height) - 1.0).abs() > 0.01 {
        bail!(
            "mask {} is {mw}×{mh} but the image is {width}×{height}: the aspect ratios differ; \
             paint the mask at the image's aspect ratio or pass --stretch",
            path.display()
        );
    }
    let values: Vec<f32> = if img.color().has_alpha() && img.to_rgba8().pixels().any(|p| p[3] < 255)
    {
        img.to_rgba8()
            .pixels()
            .map(|p| p[3] as f32 / 255.0)
            .collect()
    } else {
        img.to_luma8()
            .pixels()
            .map(|p| p[0] as f32 / 255.0)
            .collect()
    };
    let m = Tensor::from_slice(&values).view([1, 1, mh as i64, mw as i64]);
    let m = if (mw, mh) == (width, height) {
        m
    } else {
        m.upsample_bilinear2d([height as i64, width as i64], false, None, None)
    };
    Ok(m.view([height as i64, width as i64]).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_conversion_truncates_and_round_trips() {
        let x = Tensor::from_slice(&[-1.5f32, -1.0, 0.0, 0.999, 1.0, 3.0]).view([1, 3, 1, 2]);
        let img = &to_rgb_images(&x).unwrap()[0];
        assert_eq!(img.get_pixel(0, 0).0, [0, 127, 255]);
        assert_eq!(img.get_pixel(1, 0).0, [0, 254, 255]);
        let back = from_rgb_images(std::slice::from_ref(img), Device::Cpu).unwrap();
        let again = &to_rgb_images(&back).unwrap()[0];
        assert_eq!(again, img);
    }

    #[test]
    fn masks_use_alpha_or_luminance_and_check_aspect() {
        let dir = std::env::temp_dir().join(format!("gd-imageio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rgba = image::RgbaImage::from_pixel(4, 4, image::Rgba([0, 0, 0, 0]));
        rgba.put_pixel(0, 0, image::Rgba([0, 0, 0, 255]));
        let p = dir.join("alpha.png");
        rgba.save(&p).unwrap();
        let m = read_mask(&p, 4, 4, false).unwrap();
        assert_eq!(f64::try_from(m.sum(Kind::Float)).unwrap(), 1.0);
        let gray =
            image::GrayImage::from_fn(8, 4, |x, _| image::Luma([if x < 4 { 255 } else { 0 }]));
        let p = dir.join("wide.png");
        gray.save(&p).unwrap();
        let err = read_mask(&p, 4, 4, false).unwrap_err().to_string();
        assert!(err.contains("aspect ratios differ"), "{err}");
        let m = read_mask(&p, 4, 4, true).unwrap();
        assert_eq!(m.size(), [4, 4]);
        let p = dir.join("junk.png");
        std::fs::write(&p, b"not an image").unwrap();
        let err = read_mask(&p, 4, 4, false).unwrap_err().to_string();
        assert!(
            err.contains("cannot read") && err.contains("junk.png"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn grid_places_tiles() {
        let a = RgbImage::from_pixel(2, 2, image::Rgb([1, 2, 3]));
        let g = grid(&[a.clone(), a.clone(), a], 2, 1);
        assert_eq!(g.dimensions(), (7, 7));
        assert_eq!(g.get_pixel(4, 1).0, [1, 2, 3]);
        assert_eq!(g.get_pixel(1, 4).0, [1, 2, 3]);
        assert_eq!(g.get_pixel(3, 1).0, [255, 255, 255]);
        assert_eq!(g.get_pixel(4, 4).0, [255, 255, 255]);
    }
}
