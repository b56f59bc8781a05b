//! Where the planner's rankings and levels come from: a dissection named with
//! `--dissection DIR`, or one run once on the fly and cached.

use crate::dissect::{DissectOptions, DissectResult, Labeller, Model, run_with};
use crate::nets::proggan::ProGan;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Images a cached dissection is run over.
pub const DEFAULT_CACHE_SAMPLES: u64 = 1000;

/// The default directory of cached dissections.
pub const DEFAULT_CACHE_DIR: &str = "out/dissect-cache";

/// The digest of a generator's weights as a dissection records it (`settings.weights`), so that
/// neither a named dissection nor a cache serves another model.
pub fn weights_digest(g: &ProGan) -> Result<String> {
    crate::dissect::weights_digest(&g.named_tensors())
}

pub(crate) fn file_safe(s: &str) -> String {
    let name = Path::new(s)
        .file_name()
        .map_or(s.to_string(), |n| n.to_string_lossy().into_owned());
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Where the cached dissection of `model` (weights `digest`) at `layer` with `segmenter`
/// over `samples` images lives under `root`.
pub fn cache_dir(
    root: &Path,
    model: &str,
    digest: &str,
    layer: &str,
    segmenter: &str,
    samples: u64,
) -> PathBuf {
    root.join(format!(
        "{}-{}-{layer}-{}-{samples}",
        file_safe(model),
        &digest[..digest.len().min(8)],
        file_safe(segmenter)
    ))
}

/// How to find a dissection.
#[derive(Clone, Debug)]
pub struct DissectionSource {
    /// A dissection directory given by the user.
    pub dir: Option<PathBuf>,
    /// Where dissections run on the fly are cached.
    pub cache_root: PathBuf,
    /// Images a dissection run on the fly covers.
    pub samples: u64,
}

impl Default for DissectionSource {
    fn default() -> Self {
        Self {
            dir: None,
            cache_root: PathBuf::from(DEFAULT_CACHE_DIR),
            samples: DEFAULT_CACHE_SAMPLES,
        }
    }
}

/// The models a dissection on the fly runs on, already loaded, with the names it records them
/// by.
pub struct LoadedModels<'a> {
    /// The generator's name (as given to the session).
    pub model: &'a str,
    /// The digest of its weights ([`weights_digest`]).
    pub digest: &'a str,
    /// The generator with its latent stream.
    pub generator: &'a mut Model,
    /// The segmenter's name.
    pub segmenter: &'a str,
    /// The segmenter.
    pub labeller: &'a mut Labeller,
}

/// Loads the named dissection (which must cover `layer` and have been made for the weights of
/// `models.digest`), or the cached one for this model, weights, layer and segmenter, running
/// it first on the loaded `models` (and saying so on stderr) when there is none.
pub fn load_or_dissect(
    source: &DissectionSource,
    layer: &str,
    models: LoadedModels<'_>,
    device: tch::Device,
) -> Result<DissectResult> {
    let (model, digest, segmenter) = (models.model, models.digest, models.segmenter);
    if let Some(dir) = &source.dir {
        let d = DissectResult::load(dir)?;
        if d.settings.common.weights != digest {
            bail!(
                "the dissection in {} was made for other weights ({}) than {model}; dissect \
                 {model} or leave out --dissection",
                dir.display(),
                d.settings.common.model
            );
        }
        d.layer(layer).with_context(|| {
            format!(
                "the dissection in {} does not cover {layer}; dissect it with --layer {layer}",
                dir.display()
            )
        })?;
        return Ok(d);
    }
    if source.samples == 0 {
        bail!("a dissection needs at least 1 image; raise --dissect-samples");
    }
    let dir = cache_dir(
        &source.cache_root,
        model,
        digest,
        layer,
        segmenter,
        source.samples,
    );
    if dir.join("dissect.json").exists() {
        eprintln!("using the cached dissection {}", dir.display());
        return DissectResult::load(&dir);
    }
    eprintln!(
        "no --dissection given: dissecting {model} at {layer} with {segmenter} over {} images \
         into {} (once; later runs reuse it)",
        source.samples,
        dir.display()
    );
    let mut opts = DissectOptions::new(model, &[layer], segmenter, source.samples, &dir);
    opts.device = device;
    opts.progress = true;
    run_with(&opts, models.generator, models.labeller)?
        .finished()
        .with_context(|| format!("the dissection into {} did not finish", dir.display()))?;
    DissectResult::load(&dir)
}
