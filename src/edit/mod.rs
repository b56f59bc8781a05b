//! Semantic painting: remove and add concepts in painted regions of generated scenes.
//!
//! A stroke (concept, remove | add, mask) is planned into a [`cut::Edit`](crate::cut::Edit)
//! on the concept's top units by IoU ([`plan`]); scenes are generated, edited, re-segmented and
//! each stroke measured ([`paint`], [`verdict`]): a removal reports the share of the concept's
//! pixels gone from the region, an insertion passes a context check or is dropped. [`scene`]
//! writes one scene's pictures and record, [`script`] runs JSONL edit scripts, and
//! [`ablation`] and [`insertion_context`] are the PNAS analyses (SPEC §3.2); [`unit_effect`]
//! chooses units by their ablation effect instead of their IoU.

pub mod ablation;
pub mod insertion_context;
pub mod paint;
pub mod pairing;
pub mod picture;
pub mod plan;
pub mod ranking;
pub mod scene;
pub mod script;
pub mod unit_effect;
pub mod units_source;
pub mod verdict;

pub use paint::{Effect, Painter, SceneOutcome, ScenePlan, StrokeOutcome};
pub use plan::{Action, PlanOptions, PlannedStroke, Stroke, UnitCatalog};
pub use ranking::{EffectOptions, UnitRanking};
pub use unit_effect::UnitEffects;
pub use units_source::DissectionSource;

use crate::nets::proggan::ProGan;
use crate::segment::{Segmenter, load_segmenter};
use crate::zoo::load_generator;
use anyhow::Result;
use std::path::Path;
use tch::Device;

/// The layer edited by default: layer4 of a netdissect ProGAN (8×8 in a 64×64 generator).
pub const DEFAULT_LAYER: &str = "layer4";

/// Everything needed to paint: where the models and the dissection come from.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// The generator: shipped name, model directory, checkpoint or `random[:SEED]`.
    pub model: String,
    /// The segmenter: shipped name, directory or TorchScript file.
    pub segmenter: String,
    /// The layer edited.
    pub layer: String,
    /// Quantile of each unit's activation used as its insertion value.
    pub value_quantile: f64,
    /// Where the rankings and levels come from.
    pub dissection: DissectionSource,
    /// Seed of the latent stream image ids index.
    pub stream: u32,
    /// Where tensors live.
    pub device: Device,
}

impl SessionOptions {
    /// Options for `model` with the defaults: the world segmenter, layer4, value quantile
    /// 0.99, a cached dissection, latent stream 1, CPU.
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_string(),
            segmenter: crate::segment::DEFAULT_SEGMENTER.to_string(),
            layer: DEFAULT_LAYER.into(),
            value_quantile: plan::DEFAULT_VALUE_QUANTILE,
            dissection: DissectionSource::default(),
            stream: crate::zsample::DEFAULT_STREAM_SEED,
            device: Device::Cpu,
        }
    }
}

/// A loaded generator, segmenter and unit catalog.
pub struct Session {
    /// The generator.
    pub generator: ProGan,
    /// Its name as loaded.
    pub model: String,
    /// The segmenter.
    pub segmenter: Box<dyn Segmenter>,
    /// Rankings and levels of the edited layer.
    pub catalog: UnitCatalog,
    /// The digest of the generator's weights, which dissections and saved rankings are keyed by.
    pub weights_digest: String,
    /// The options it was opened with.
    pub options: SessionOptions,
}

impl Session {
    /// Loads the generator and the segmenter named in `options`, then opens a session on them
    /// ([`Session::new`]).
    pub fn open(options: &SessionOptions) -> Result<Self> {
        let (generator, source) = load_generator(&options.model, options.device)?;
        let segmenter = load_segmenter(&options.segmenter, options.device)?;
        Self::new(options, generator, &source.name, segmenter)
    }

    /// A session on models already loaded: `generator` (known in summaries as `name`; the
    /// dissection records it as `options.model`) and `segmenter` (`options.segmenter`). Loads
    /// the dissection, or runs it on these models when none is cached.
    pub fn new(
        options: &SessionOptions,
        generator: ProGan,
        name: &str,
        segmenter: Box<dyn Segmenter>,
    ) -> Result<Self> {
        let layer = crate::cut::Cut::new(&generator, &options.layer)?
            .layer_name()
            .to_string();
        let weights_digest = units_source::weights_digest(&generator)?;
        let (generator, segmenter, dissection) =
            dissect_loaded(options, &layer, &weights_digest, generator, segmenter);
        let catalog = UnitCatalog::from_dissection(&dissection?, &layer, options.value_quantile)?;
        Ok(Self {
            generator,
            model: name.to_string(),
            segmenter,
            catalog,
            weights_digest,
            options: options.clone(),
        })
    }

    /// The dissection of another `layer` of the session's generator: the named one, the cached
    /// one, or one run now on the session's models (the session lends them and gets them back).
    pub fn dissection_at(mut self, layer: &str) -> Result<(Self, crate::dissect::DissectResult)> {
        let layer = crate::cut::Cut::new(&self.generator, layer)?
            .layer_name()
            .to_string();
        let (generator, segmenter, dissection) = dissect_loaded(
            &self.options,
            &layer,
            &self.weights_digest,
            self.generator,
            self.segmenter,
        );
        self.generator = generator;
        self.segmenter = segmenter;
        Ok((self, dissection?))
    }

    /// A painter at the session's layer.
    pub fn painter(&self) -> Result<Painter<'_>> {
        self.painter_at(&self.catalog.layer)
    }

    /// A painter at another `layer` of the session's generator (its strokes are planned with
    /// that layer's own [`UnitCatalog`]).
    pub fn painter_at(&self, layer: &str) -> Result<Painter<'_>> {
        Painter::new(
            &self.generator,
            layer,
            self.segmenter.as_ref(),
            self.options.stream,
            self.options.device,
        )
    }

    /// The side of the generated images in pixels.
    pub fn image_side(&self) -> i64 {
        self.generator.resolution()
    }

    /// Checks that the segmenter knows `concept`, then reads a stroke's mask from `mask` (alpha
    /// or luminance; its aspect must match the image's unless `stretch`) at the image's
    /// resolution.
    pub fn read_stroke_mask(
        &self,
        concept: &str,
        mask: &Path,
        stretch: bool,
    ) -> Result<tch::Tensor> {
        // named before the mask is read, so a bad concept is the error reported first
        self.segmenter.label_id(concept)?;
        let side = self.image_side() as u32;
        crate::imageio::read_mask(mask, side, side, stretch)
    }

    /// Plans a stroke whose mask is read from `mask` ([`Session::read_stroke_mask`]).
    pub fn plan_from_file(
        &self,
        action: Action,
        concept: &str,
        mask: &Path,
        stretch: bool,
        opts: &PlanOptions,
    ) -> Result<PlannedStroke> {
        let mask = self.read_stroke_mask(concept, mask, stretch)?;
        self.plan(action, concept, mask, opts)
    }

    /// Plans a stroke with `mask` given as `[H, W]` in [0, 1] at the image's resolution. A
    /// removal ranked by effect with no units named takes the first `opts.k` units of the
    /// concept's effect ranking ([`Session::rank_by_effect_saved`]).
    pub fn plan(
        &self,
        action: Action,
        concept: &str,
        mask: tch::Tensor,
        opts: &PlanOptions,
    ) -> Result<PlannedStroke> {
        self.segmenter.label_id(concept)?;
        let by_effect = match (&opts.ranking, action, &opts.units) {
            (UnitRanking::Effect(effect), Action::Remove, None) => Some(effect),
            _ => None,
        };
        let ranked;
        let opts = match by_effect {
            Some(effect) => {
                let units = self
                    .rank_by_effect_saved(&effect.for_concept(concept), opts.k)?
                    .top(opts.k)?;
                ranked = PlanOptions {
                    units: Some(units),
                    ..opts.clone()
                };
                &ranked
            }
            None => opts,
        };
        plan::plan_stroke(
            &self.catalog,
            Stroke {
                action,
                concept: concept.to_string(),
                mask,
            },
            opts,
        )
    }

    /// Ranks the first `k` units of the session's layer by their effect on `opts.concept`
    /// ([`unit_effect::rank_by_effect`]).
    pub fn rank_by_effect(&self, opts: &EffectOptions, k: usize) -> Result<UnitEffects> {
        unit_effect::rank_by_effect(&self.painter()?, opts, k)
    }

    /// [`Session::rank_by_effect`], saved beside the cached dissections (keyed by the weights,
    /// the layer, the segmenter, the stream and the options) and read back from there by later
    /// runs.
    pub fn rank_by_effect_saved(&self, opts: &EffectOptions, k: usize) -> Result<UnitEffects> {
        unit_effect::SavedRanking {
            digest: &self.weights_digest,
            segmenter: &self.options.segmenter,
            root: &self.options.dissection.cache_root,
        }
        .rank(&self.painter()?, opts, k)
    }
}

/// The dissection of `layer` for `options` (named, cached, or run now on `generator` and
/// `segmenter`), handing the models back whatever the outcome.
fn dissect_loaded(
    options: &SessionOptions,
    layer: &str,
    weights_digest: &str,
    generator: ProGan,
    segmenter: Box<dyn Segmenter>,
) -> (
    ProGan,
    Box<dyn Segmenter>,
    Result<crate::dissect::DissectResult>,
) {
    let mut model = crate::dissect::Model::Generator {
        net: generator,
        stream: crate::zsample::DEFAULT_STREAM_SEED,
    };
    let mut labeller = crate::dissect::Labeller::Net(segmenter);
    let dissection = units_source::load_or_dissect(
        &options.dissection,
        layer,
        units_source::LoadedModels {
            model: &options.model,
            digest: weights_digest,
            generator: &mut model,
            segmenter: &options.segmenter,
            labeller: &mut labeller,
        },
        options.device,
    );
    let (Some(generator), crate::dissect::Labeller::Net(segmenter)) =
        (model.into_generator(), labeller)
    else {
        unreachable!("the session's models come back as they went in")
    };
    (generator, segmenter, dissection)
}
