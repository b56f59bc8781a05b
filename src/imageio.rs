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

/// How large an image file may decode, for a picture that will be used at a given size: a
/// side may be up to 64 times the side it is used at (at least 4096 pixels, at most 8192),
/// and the decoder may allocate at most 600 MB. A file larger than that is refused from its
/// header, before any pixel is decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeLimits {
    /// Largest width or height accepted.
    pub max_side: u32,
    /// Largest allocation the decoder may make, in bytes.
    pub max_alloc: u64,
}

impl DecodeLimits {
    /// The limits for an image used at `width` × `height` pixels (after resizing).
    pub fn for_use(width: u32, height: u32) -> Self {
        let used = width.max(height).max(1);
        Self {
            max_side: used.saturating_mul(64).clamp(4096, 8192),
            max_alloc: 600_000_000,
        }
    }

    fn image_limits(&self) -> image::Limits {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.max_side);
        limits.max_image_height = Some(self.max_side);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }
}

/// Largest image file read: a PNG or JPEG within [`DecodeLimits`] is far smaller.
const MAX_IMAGE_FILE: u64 = 256 << 20;

/// Decodes a PNG or JPEG held in memory within `limits`; `name` and `what` ("mask",
/// "picture") name it in errors. The size is checked from the header first, so an image too
/// large is refused with its size before anything is decoded.
pub fn decode_image(
    bytes: &[u8],
    name: &str,
    what: &str,
    limits: DecodeLimits,
) -> Result<DynamicImage> {
    let why = || {
        format!("cannot read {what} {name} as an image (PNG or JPEG); the file may be corrupted")
    };
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .with_context(why)
    };
    let (w, h) = reader()?.into_dimensions().with_context(why)?;
    if w.max(h) > limits.max_side {
        bail!(
            "{what} {name} is {w}×{h} pixels, larger than the {m}×{m} accepted for what it is used \
             at; scale it down",
            m = limits.max_side
        );
    }
    check_png_chunks(bytes).with_context(why)?;
    let mut reader = reader()?;
    reader.limits(limits.image_limits());
    // a decoder's own bug on a crafted file ends as this file's error, not the process's
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.decode()));
    match decoded {
        Ok(result) => result.with_context(why),
        Err(_) => Err(anyhow::anyhow!("the image decoder failed on it")).with_context(why),
    }
}

/// Refuses PNG chunks that decoders mishandle: a palette whose length is not a whole number
/// of RGB entries (at most 256). Files that are not PNG pass unchecked.
fn check_png_chunks(bytes: &[u8]) -> Result<()> {
    let Some(mut rest) = bytes.strip_prefix(b"\x89PNG\r\n\x1a\n".as_slice()) else {
        return Ok(());
    };
    while rest.len() >= 12 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let kind = &rest[4..8];
        if kind == b"PLTE" && (!len.is_multiple_of(3) || len == 0 || len > 768) {
            bail!("its palette has {len} bytes, not 1 to 256 RGB entries");
        }
        if kind == b"IDAT" || kind == b"IEND" {
            break;
        }
        let Some(next) = rest.get(12usize.saturating_add(len)..) else {
            break;
        };
        rest = next;
    }
    Ok(())
}

/// Opens an image file (a regular file: FIFOs and devices are refused) within `limits`, with an
/// error that names the file and the reason.
pub fn open_image_limited(path: &Path, what: &str, limits: DecodeLimits) -> Result<DynamicImage> {
    let bytes = crate::fsutil::read_regular(path, what, MAX_IMAGE_FILE)?;
    decode_image(&bytes, &path.display().to_string(), what, limits)
}

/// Opens an image file with an error that names the file and the reason, within the limits of
/// an image used at up to 1024 pixels per side.
pub fn open_image(path: &Path) -> Result<DynamicImage> {
    open_image_limited(path, "image", DecodeLimits::for_use(1024, 1024))
}

/// Reads an RGB image, resized to `size` (width, height) with a bilinear filter if given.
pub fn read_rgb(path: &Path, size: Option<(u32, u32)>) -> Result<RgbImage> {
    let img = match size {
        Some((w, h)) => open_image_limited(path, "image", DecodeLimits::for_use(w, h))?,
        None => open_image(path)?,
    };
    let img = match size {
        Some((w, h)) if img.dimensions() != (w, h) => img.resize_exact(w, h, FilterType::Triangle),
        _ => img,
    };
    Ok(img.to_rgb8())
}

/// Reads a mask image as an `[H, W]` float tensor in [0, 1] at the given image size.
///
/// The alpha channel is the mask when the file has one that is not fully opaque; otherwise
/// the luminance is. A mask of any size within [`DecodeLimits::for_use`] of the image is
/// resized to `(height, width)`, but its aspect ratio must match unless `stretch` is set.
/// FIFOs and devices are refused.
pub fn read_mask(path: &Path, height: u32, width: u32, stretch: bool) -> Result<Tensor> {
    let bytes = crate::fsutil::read_regular(path, "mask", MAX_IMAGE_FILE)?;
    mask_from_bytes(&bytes, &path.display().to_string(), height, width, stretch)
}

/// [`read_mask`] for a mask file held in memory (`name` names it in errors).
pub fn mask_from_bytes(
    bytes: &[u8],
    name: &str,
    height: u32,
    width: u32,
    stretch: bool,
) -> Result<Tensor> {
    if height == 0 || width == 0 {
        bail!(
            "a mask is read for an image of {width}×{height} pixels; the image size must be positive"
        );
    }
    let img = decode_image(bytes, name, "mask", DecodeLimits::for_use(width, height))?;
    let (mw, mh) = img.dimensions();
    let aspect = |w: u32, h: u32| w as f64 / h as f64;
    if !stretch && (aspect(mw, mh) / aspect(width, height) - 1.0).abs() > 0.01 {
        bail!(
            "mask {name} is {mw}×{mh} but the image is {width}×{height}: the aspect ratios differ; \
             paint the mask at the image's aspect ratio or pass --stretch"
        );
    }
    let has_alpha = img.color().has_alpha();
    let pixels = img.to_luma_alpha8();
    drop(img);
    let use_alpha = has_alpha && pixels.pixels().any(|p| p[1] < 255);
    let channel: Vec<u8> = pixels
        .pixels()
        .map(|p| if use_alpha { p[1] } else { p[0] })
        .collect();
    drop(pixels);
    let m = Tensor::from_slice(&channel)
        .view([1, 1, mh as i64, mw as i64])
        .to_kind(Kind::Float)
        / 255.0;
    drop(channel);
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

    /// A grayscale PNG of `w` × `h` declared in its header, with a few bytes of pixel data
    /// that stop far short of that size.
    fn png_header_only(w: u32, h: u32) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            let mut body = kind.to_vec();
            body.extend(data);
            png.extend((data.len() as u32).to_be_bytes());
            png.extend(&body);
            png.extend(crc32(&body).to_be_bytes());
        };
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend(h.to_be_bytes());
        ihdr.extend([8, 0, 0, 0, 0]); // 8-bit gray, deflate, no filter, no interlace
        chunk(b"IHDR", &ihdr);
        chunk(b"IDAT", &[0x78, 0x01]);
        chunk(b"IEND", &[]);
        png
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn masks_larger_than_their_use_are_refused_from_the_header() {
        assert_eq!(DecodeLimits::for_use(64, 64).max_side, 4096);
        assert_eq!(DecodeLimits::for_use(256, 256).max_side, 8192);
        let err = mask_from_bytes(&png_header_only(20_000, 20_000), "huge.png", 64, 64, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("20000×20000") && err.contains("4096×4096") && err.contains("huge.png"),
            "{err}"
        );
        // within the limits, the missing pixel data is the error
        let err = mask_from_bytes(&png_header_only(64, 64), "cut.png", 64, 64, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read mask cut.png"), "{err}");
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
