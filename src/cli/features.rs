//! `gandissect features`: a layer's activations for ids, latent vectors or pictures, written as
//! `.npy` or `.safetensors`.

use super::{Context, Run, parse_list};
use anyhow::{Result, bail};
use clap::Args;
use gandissect::classify::folder::ImageFolder;
use gandissect::dissect::Model;
use gandissect::features::{FeatureInputs, FeatureOptions, Pool, features};
use gandissect::generate::read_z_file;
use gandissect::tensorfile::{ids_tensor, write};
use gandissect::zoo;
use gandissect::zsample::{DEFAULT_STREAM_SEED, parse_ids};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct FeaturesArgs {
    /// A generator or classifier: shipped name, model directory, checkpoint, or random[:SEED].
    #[arg(long, default_value = zoo::DEFAULT_GENERATOR)]
    model: String,
    /// The layer (e.g. layer4, conv5_3).
    #[arg(long)]
    layer: String,
    /// Image ids: latent rows of a generator, world seeds of a classifier, or the indices of the
    /// --images pictures (N, A..B, A..=B or a comma-separated list).
    #[arg(long, default_value = "0..16", conflicts_with = "z")]
    seeds: String,
    /// Latent vectors from a file (.npy or .safetensors, [N, z]) instead of ids (generators).
    #[arg(long, conflicts_with = "images")]
    z: Option<PathBuf>,
    /// A folder of PNG/JPEG pictures for a classifier (name order; --seeds picks among them,
    /// all by default).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Seed of the latent stream the ids index (generators).
    #[arg(long, default_value_t = DEFAULT_STREAM_SEED)]
    stream: u32,
    /// Units to keep, in this order (comma-separated; default all).
    #[arg(long)]
    units: Option<String>,
    /// none ([N, U, H, W]), max or mean over space ([N, U]).
    #[arg(long, default_value = "none")]
    pool: Pool,
    /// Input side of a classifier checkpoint without a model card (a card's size wins).
    #[arg(long, value_name = "PIXELS")]
    input_size: Option<i64>,
    /// Images per forward.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Output file: FILE.npy (the features) or FILE.safetensors (features, units, and ids when
    /// the images are ids).
    #[arg(long)]
    out: PathBuf,
}

impl Run for FeaturesArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        gandissect::tensorfile::TensorFormat::of(&self.out)?;
        let mut model = Model::load_sized(&self.model, self.stream, self.input_size, ctx.device)?;
        let seeds_given = ctx
            .matches
            .subcommand()
            .and_then(|(_, m)| m.value_source("seeds"))
            == Some(clap::parser::ValueSource::CommandLine);
        let inputs = match (&self.z, &self.images) {
            (Some(path), _) => {
                let Model::Generator { net, .. } = &model else {
                    bail!("--z gives latent vectors, which only a generator takes");
                };
                FeatureInputs::Latents(read_z_file(path, net.z_dim())?)
            }
            (None, Some(dir)) => {
                let side = model.input_size().ok_or_else(|| {
                    anyhow::anyhow!(
                        "--images gives pictures to a classifier; a generator draws its own"
                    )
                })?;
                let folder = Arc::new(ImageFolder::open(dir, side as u32)?);
                for note in &folder.notes {
                    eprintln!("note: {note}");
                }
                let n = folder.files.len() as u64;
                model.attach_images(folder)?;
                let ids = if seeds_given {
                    parse_ids(&self.seeds)?
                } else {
                    (0..n).collect()
                };
                if let Some(bad) = ids.iter().find(|&&i| i >= n) {
                    bail!(
                        "picture {bad} is out of range: {} holds {n} pictures (0..{n})",
                        dir.display()
                    );
                }
                FeatureInputs::Ids(ids)
            }
            (None, None) => FeatureInputs::Ids(parse_ids(&self.seeds)?),
        };
        let mut opts = FeatureOptions::new(&self.layer);
        opts.units = match &self.units {
            Some(spec) => Some(parse_list(
                spec,
                "--units",
                "give unit numbers such as 3,17,42",
            )?),
            None => None,
        };
        opts.pool = self.pool;
        opts.batch = self.batch;
        opts.device = ctx.device;
        opts.progress = true;
        let f = features(&model, &inputs, &opts)?;
        let mut tensors = vec![
            ("features", f.values.shallow_clone()),
            (
                "units",
                gandissect::tensorfile::ids_tensor(
                    &f.units.iter().map(|&u| u as u64).collect::<Vec<_>>(),
                ),
            ),
        ];
        if let FeatureInputs::Ids(ids) = &inputs {
            tensors.push(("ids", ids_tensor(ids)));
        }
        write(&self.out, &tensors)?;
        println!(
            "{} features {:?} (float32) of {} units of {} → {}",
            f.layer,
            f.values.size(),
            f.units.len(),
            self.model,
            self.out.display()
        );
        Ok(())
    }
}
