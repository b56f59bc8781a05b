//! A layer's activations for image ids, latent vectors or pictures, as float tensors that can
//! leave the tool exactly (see [`crate::tensorfile`]): a subset of units, pooled over space or
//! not.
//!
//! The activations are the ones a dissection sees: a generator's layer output for its latent
//! vectors, a classifier's layer output for the image resized to its input size.

use crate::dissect::source::{Inputs, Model};
use anyhow::{Result, bail};
use tch::{Device, Kind, Tensor};

/// The most bytes a features file may hold; more is refused with what to do instead.
pub const MAX_FEATURE_BYTES: i64 = 8 << 30;

/// How a unit's feature map is reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// Kept whole: `[N, C, H, W]`.
    None,
    /// Its maximum over space: `[N, C]`.
    Max,
    /// Its mean over space: `[N, C]`.
    Mean,
}

impl std::str::FromStr for Pool {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Self::None),
            "max" => Ok(Self::Max),
            "mean" => Ok(Self::Mean),
            _ => bail!("unknown pooling '{s}': none, max or mean"),
        }
    }
}

/// Which images to take the features of.
pub enum FeatureInputs {
    /// Image ids: rows of the generator's latent stream, world seeds, or a classifier's
    /// attached pictures (see [`Model::sampler`]).
    Ids(Vec<u64>),
    /// Explicit latent vectors `[N, z]` (generators).
    Latents(Tensor),
}

impl FeatureInputs {
    /// Number of images.
    pub fn len(&self) -> usize {
        match self {
            Self::Ids(ids) => ids.len(),
            Self::Latents(z) => z.size()[0] as usize,
        }
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn batch(&self, model: &Model, start: usize, n: usize, device: Device) -> Result<Inputs> {
        match self {
            Self::Ids(ids) => model.sampler().inputs(&ids[start..start + n], device),
            Self::Latents(z) => {
                if model.kind() != "generator" {
                    bail!("latent vectors are a generator's input; give a classifier images");
                }
                Ok(Inputs {
                    z: Some(z.narrow(0, start as i64, n as i64).to_device(device)),
                    images: None,
                    truth: None,
                })
            }
        }
    }
}

/// What [`features`] takes.
#[derive(Clone, Debug)]
pub struct FeatureOptions {
    /// The layer (canonical name or alias).
    pub layer: String,
    /// Units to keep, in this order (`None`: all).
    pub units: Option<Vec<i64>>,
    /// How each unit's map is reduced.
    pub pool: Pool,
    /// Images per forward.
    pub batch: usize,
    /// Where tensors live.
    pub device: Device,
    /// Whether to draw a progress bar.
    pub progress: bool,
}

impl FeatureOptions {
    /// All units of `layer`, unpooled, 16 images a batch, on the CPU.
    pub fn new(layer: &str) -> Self {
        Self {
            layer: layer.to_string(),
            units: None,
            pool: Pool::None,
            batch: 16,
            device: Device::Cpu,
            progress: false,
        }
    }
}

/// A layer's features.
pub struct Features {
    /// The layer's canonical name.
    pub layer: String,
    /// `[N, U, H, W]` (unpooled) or `[N, U]` float32 on the CPU.
    pub values: Tensor,
    /// The units kept, in column order.
    pub units: Vec<i64>,
}

/// The features of `opts.layer` for `inputs`.
pub fn features(model: &Model, inputs: &FeatureInputs, opts: &FeatureOptions) -> Result<Features> {
    if inputs.is_empty() {
        bail!("no images to take features of");
    }
    if opts.batch == 0 {
        bail!("--batch must be at least 1 image per forward");
    }
    let (index, name) = model
        .resolve_layers(std::slice::from_ref(&opts.layer))?
        .remove(0);
    let first = model.forward(&inputs.batch(model, 0, 1, opts.device)?, &[index], false)?;
    let shape = first.0[0].size();
    let channels = shape[1];
    let units = match &opts.units {
        Some(u) => {
            if u.is_empty() {
                bail!("--units names no unit");
            }
            if let Some(bad) = u.iter().find(|&&x| x < 0 || x >= channels) {
                bail!("unit {bad} is out of range: layer {name} has units 0..{channels}");
            }
            u.clone()
        }
        None => (0..channels).collect(),
    };
    let spatial: i64 = match (opts.pool, shape.len()) {
        (Pool::None, _) => shape[2..].iter().product(),
        (_, 4) => 1,
        _ => bail!("layer {name} gives {shape:?} with no spatial extent to pool; use --pool none"),
    };
    let bytes = inputs.len() as i64 * units.len() as i64 * spatial * 4;
    if bytes > MAX_FEATURE_BYTES {
        bail!(
            "{} images × {} units × {spatial} values take {:.1} GiB, more than the {} GiB a \
             features file may hold; give fewer images, --units, or --pool max|mean",
            inputs.len(),
            units.len(),
            bytes as f64 / (1u64 << 30) as f64,
            MAX_FEATURE_BYTES >> 30
        );
    }
    let select = Tensor::from_slice(&units).to_device(opts.device);
    let bar = crate::progress::bar(inputs.len() as u64, "features");
    if !opts.progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut parts = Vec::new();
    for start in (0..inputs.len()).step_by(opts.batch) {
        let n = opts.batch.min(inputs.len() - start);
        let (acts, _) = model.forward(
            &inputs.batch(model, start, n, opts.device)?,
            &[index],
            false,
        )?;
        let a = acts[0].index_select(1, &select).to_kind(Kind::Float);
        let a = match opts.pool {
            Pool::None => a,
            Pool::Max => a.amax([2, 3], false),
            Pool::Mean => a.mean_dim([2i64, 3].as_slice(), false, Kind::Float),
        };
        parts.push(a.to_device(Device::Cpu));
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(Features {
        layer: name,
        values: Tensor::cat(&parts, 0),
        units,
    })
}
