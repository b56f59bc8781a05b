//! Arguments the painting commands share: the models and dissection a session opens, how
//! strokes are planned, and how units are ranked.

use anyhow::Result;
use clap::Args;
use gandissect::edit::plan::{DEFAULT_K, DEFAULT_VALUE_QUANTILE};
use gandissect::edit::ranking::{
    DEFAULT_EFFECT_FIRST_ID, DEFAULT_EFFECT_POOL, DEFAULT_EFFECT_SAMPLES, DEFAULT_EFFECT_STEP,
};
use gandissect::edit::units_source::{DEFAULT_CACHE_DIR, DEFAULT_CACHE_SAMPLES};
use gandissect::edit::{
    DissectionSource, EffectOptions, PlanOptions, Session, SessionOptions, UnitRanking,
};
use gandissect::zoo;
use std::path::PathBuf;
use tch::Device;

/// Models, layer and dissection shared by the painting commands.
#[derive(Args)]
pub struct PaintModelArgs {
    /// The generator: shipped name, model directory, checkpoint, or random[:SEED].
    #[arg(long, default_value = zoo::DEFAULT_GENERATOR)]
    pub model: String,
    /// Segmenter (name, directory or TorchScript file) for unit rankings and the effect.
    #[arg(long, default_value = gandissect::segment::DEFAULT_SEGMENTER)]
    pub segmenter: String,
    /// The layer edited.
    #[arg(long, default_value = gandissect::edit::DEFAULT_LAYER)]
    pub layer: String,
    /// A dissection directory of the model at the layer (default: one run once and cached).
    #[arg(long)]
    pub dissection: Option<PathBuf>,
    /// Where dissections run on the fly, and effect rankings, are saved.
    #[arg(long, default_value = DEFAULT_CACHE_DIR)]
    pub dissect_cache: PathBuf,
    /// Images a dissection run on the fly covers.
    #[arg(long, default_value_t = DEFAULT_CACHE_SAMPLES)]
    pub dissect_samples: u64,
}

impl PaintModelArgs {
    /// Opens a session on these models, inserting units at their `value_quantile` level.
    pub fn session(&self, value_quantile: f64, device: Device) -> Result<Session> {
        let mut o = SessionOptions::new(&self.model);
        o.segmenter = self.segmenter.clone();
        o.layer = self.layer.clone();
        o.value_quantile = value_quantile;
        o.device = device;
        o.dissection = DissectionSource {
            dir: self.dissection.clone(),
            cache_root: self.dissect_cache.clone(),
            samples: self.dissect_samples,
        };
        Session::open(&o)
    }
}

/// How the units are chosen.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum RankArg {
    /// Top units by IoU with the concept.
    Iou,
    /// Units chosen greedily by their ablation effect on the concept.
    Effect,
}

/// How units are ranked, shared by `edit`, `batch` and `ablate`.
#[derive(Args)]
pub struct RankArgs {
    /// How the units are chosen: by IoU from the dissection, or by how much of the concept
    /// their removal takes, chosen round by round on other images (edit and batch: removals
    /// without --units only; the ranking is saved beside the cached dissections and reused).
    #[arg(long, value_enum, default_value = "iou")]
    pub rank: RankArg,
    /// Images the effects are measured on (`--rank effect`).
    #[arg(long, default_value_t = DEFAULT_EFFECT_SAMPLES)]
    pub rank_samples: u64,
    /// First image id of the effect measurement (`--rank effect`); keep the ids clear of those
    /// an analysis measures.
    #[arg(long, default_value_t = DEFAULT_EFFECT_FIRST_ID)]
    pub rank_first_id: u64,
    /// Units chosen per round (`--rank effect`; 1 is plain greedy selection).
    #[arg(long, default_value_t = DEFAULT_EFFECT_STEP)]
    pub rank_step: usize,
    /// Candidates after the first round: the units with the largest single effects
    /// (`--rank effect`).
    #[arg(long, default_value_t = DEFAULT_EFFECT_POOL)]
    pub rank_pool: usize,
}

impl RankArgs {
    /// The ranking for `concept` (the effect options' concept is replaced by each use's own).
    pub fn ranking(&self, concept: &str) -> UnitRanking {
        match self.rank {
            RankArg::Iou => UnitRanking::Iou,
            RankArg::Effect => UnitRanking::Effect(EffectOptions {
                first_id: self.rank_first_id,
                samples: self.rank_samples,
                step: self.rank_step,
                pool: self.rank_pool,
                progress: true,
                ..EffectOptions::new(concept)
            }),
        }
    }
}

/// How strokes are planned, shared by `edit` and `batch`.
#[derive(Args)]
pub struct StrokeArgs {
    /// Units to set instead of the concept's top k, e.g. 12,55,301.
    #[arg(long)]
    pub units: Option<String>,
    /// Units per stroke: the concept's top k.
    #[arg(long, default_value_t = DEFAULT_K)]
    pub k: usize,
    /// Quantile of each unit's activation that insertion sets it to.
    #[arg(long, default_value_t = DEFAULT_VALUE_QUANTILE)]
    pub value_quantile: f64,
    /// How a mask is pooled to the layer's grid: max or mean.
    #[arg(long, default_value = "max")]
    pub pooling: gandissect::cut::Pooling,
    /// Resize masks of another aspect ratio instead of refusing them.
    #[arg(long)]
    pub stretch: bool,
    /// Keep insertions that fail the context check.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub rank: RankArgs,
}

impl StrokeArgs {
    /// The planner's options.
    pub fn plan_options(&self) -> Result<PlanOptions> {
        let units = match &self.units {
            None => None,
            Some(spec) => Some(super::parse_list(
                spec,
                "--units",
                "give unit numbers separated by commas, e.g. 12,55,301",
            )?),
        };
        Ok(PlanOptions {
            k: self.k,
            units,
            pooling: self.pooling,
            ranking: self.rank.ranking(""),
        })
    }
}
