//! Generating images from a generator for image ids or latent vectors read from a file.

use crate::imageio::{grid, save_png, to_rgb_images};
use crate::nets::layered::LayeredNet;
use crate::nets::proggan::ProGan;
use crate::progress;
use crate::zsample::z_rows;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Which latent vectors to draw.
pub enum Latents {
    /// Rows `ids` of the sample stream with seed `stream` (see [`crate::zsample`]).
    Ids {
        /// Stream seed.
        stream: u32,
        /// Image ids.
        ids: Vec<u64>,
    },
    /// Explicit vectors `[N, z]`.
    Vectors(Tensor),
}

impl Latents {
    /// Number of images.
    pub fn len(&self) -> usize {
        match self {
            Self::Ids { ids, .. } => ids.len(),
            Self::Vectors(z) => z.size()[0] as usize,
        }
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file stem of image `i`.
    pub fn name(&self, i: usize) -> String {
        match self {
            Self::Ids { ids, .. } => format!("{:06}", ids[i]),
            Self::Vectors(_) => format!("z{i:06}"),
        }
    }

    /// Vectors `start..start + n` as `[n, dim]` on `device`.
    pub fn batch(&self, start: usize, n: usize, dim: i64, device: Device) -> Result<Tensor> {
        match self {
            Self::Ids { stream, ids } => {
                z_rows(*stream, &ids[start..start + n], dim as usize, device)
            }
            Self::Vectors(z) => Ok(z.narrow(0, start as i64, n as i64).to_device(device)),
        }
    }
}

/// Reads latent vectors from `.npy` (float32/float64, `[N, z]` or `[z]`) or `.safetensors` (a
/// tensor named `z`, or the only tensor), checking the latent size.
pub fn read_z_file(path: &Path, dim: i64) -> Result<Tensor> {
    // a FIFO or a device would make the readers below wait or read without end
    drop(crate::fsutil::open_regular(path, "latent file")?);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let z = match ext {
        "npy" => Tensor::read_npy(path)
            .map_err(|e| anyhow::anyhow!("cannot read {} as .npy: {e}", path.display()))?,
        "safetensors" => {
            let mut all = Tensor::read_safetensors(path).map_err(|e| {
                anyhow::anyhow!("cannot read {} as safetensors: {e}", path.display())
            })?;
            match all.iter().position(|(k, _)| k == "z") {
                Some(i) => all.swap_remove(i).1,
                None if all.len() == 1 => all.remove(0).1,
                None => bail!(
                    "{} holds several tensors and none is named 'z'",
                    path.display()
                ),
            }
        }
        _ => bail!(
            "latent file {} must be .npy or .safetensors",
            path.display()
        ),
    };
    let z = if z.dim() == 1 { z.unsqueeze(0) } else { z };
    if z.dim() != 2 || z.size()[1] != dim {
        bail!(
            "{} holds latents of shape {:?}; this generator needs [N, {dim}]",
            path.display(),
            z.size()
        );
    }
    let z = z.to_kind(Kind::Float);
    if !bool::try_from(z.isfinite().all())? {
        bail!("{} holds NaN or infinite values", path.display());
    }
    Ok(z)
}

/// Generates the images, writes `<out>/<name>.png` for each (and `grid.png` if `grid_cols` is
/// set), and returns the written paths. A batch or grid of 0 is refused.
pub fn generate(
    g: &ProGan,
    latents: &Latents,
    out: &Path,
    batch: usize,
    grid_cols: Option<usize>,
) -> Result<Vec<PathBuf>> {
    generate_with(g, latents, out, batch, grid_cols, None)
}

/// Generates as [`generate`] does and, when `raw` is given, also writes the generator's
/// outputs as float32 `[N, 3, R, R]` exactly as the network gives them (not clamped) to that
/// `.npy` or `.safetensors` file (tensor `images`, with the image ids as `ids` when the images
/// are ids; [`crate::tensorfile`]).
pub fn generate_with(
    g: &ProGan,
    latents: &Latents,
    out: &Path,
    batch: usize,
    grid_cols: Option<usize>,
    raw: Option<&Path>,
) -> Result<Vec<PathBuf>> {
    if let Some(path) = raw {
        crate::tensorfile::TensorFormat::of(path)?;
        let r = g.resolution();
        let bytes = latents.len() as i64 * 3 * r * r * 4;
        if bytes > crate::features::MAX_FEATURE_BYTES {
            bail!(
                "{} images of {r}×{r} take {:.1} GiB as floats, more than the {} GiB one --raw \
                 file may hold; generate fewer images per run",
                latents.len(),
                bytes as f64 / (1u64 << 30) as f64,
                crate::features::MAX_FEATURE_BYTES >> 30
            );
        }
    }
    if latents.is_empty() {
        bail!("no images to generate");
    }
    if batch == 0 {
        bail!("--batch must be at least 1 image per forward pass");
    }
    if grid_cols == Some(0) {
        bail!("--grid must be at least 1 column");
    }
    let bar = progress::bar(latents.len() as u64, "generating");
    let mut written = Vec::new();
    let mut all = Vec::new();
    let mut floats = Vec::new();
    let _guard = tch::no_grad_guard();
    for start in (0..latents.len()).step_by(batch) {
        let n = batch.min(latents.len() - start);
        let z = latents.batch(start, n, g.z_dim(), g.device())?;
        let output = g.forward(&z);
        if raw.is_some() {
            floats.push(output.to_kind(Kind::Float).to_device(Device::Cpu));
        }
        let images = to_rgb_images(&output)?;
        for (k, img) in images.into_iter().enumerate() {
            let path = out.join(format!("{}.png", latents.name(start + k)));
            save_png(&path, &img)?;
            written.push(path);
            if grid_cols.is_some() {
                all.push(img);
            }
        }
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if let Some(cols) = grid_cols {
        let path = out.join("grid.png");
        save_png(&path, &grid(&all, cols, 2))?;
        written.push(path);
    }
    if let Some(path) = raw {
        let mut tensors = vec![("images", Tensor::cat(&floats, 0))];
        if let Latents::Ids { ids, .. } = latents {
            tensors.push(("ids", crate::tensorfile::ids_tensor(ids)));
        }
        crate::tensorfile::write(path, &tensors)?;
        written.push(path.to_path_buf());
    }
    Ok(written)
}
