//! Dissection: which unit of a layer draws (generators) or detects (classifiers) which concept.
//!
//! The default mode follows the PNAS method (SPEC §2.1, §13):
//!
//! 1. **Pass 1.** For every image, the layer's activations are upsampled to the segmentation
//!    resolution (bilinear, pixel-centre aligned, border-clamped: [`upsample`]). Per unit, a
//!    quantile sketch collects every upsampled pixel of every image, and a top-k keeps the
//!    images with the largest spatial maximum of the raw feature map.
//! 2. **Threshold.** `level_u` = the unit's quantile at `q` (default 0.99, the top 1% of pixels).
//! 3. **Pass 2.** The indicator `upsampled > level_u` is tallied against the segmentation; the
//!    IoU of unit `u` and concept `c` is pooled over all pixels of all images:
//!    `|a ∧ c| / |a ∨ c|`.
//! 4. **Labels.** Each unit gets its best concept by IoU and is interpretable when that IoU
//!    exceeds the cut-off (default 0.04); each concept ranks every unit by IoU (the ranking
//!    interventions take their top k from).
//!
//! Both passes stream through [`pipeline`] (draw inputs → forward → segment → tally, on
//! separate threads), save their statistics atomically every few batches and resume where they
//! stopped. A run can be split into shards (image `j` belongs to shard `j mod N`) in two phases:
//!
//! 1. every shard runs pass 1 (`dissect --shard i/N`), then stops;
//! 2. `gandissect merge DIR` merges the pass-1 statistics (the levels come from the merged
//!    quantile sketches);
//! 3. every shard runs again with the same command and tallies pass 2 at the merged levels;
//! 4. `gandissect merge DIR` merges the tallies and writes the results.
//!
//! Counts merge exactly; the quantile sketches merge within their stated bound (exactly while
//! they hold every value), so a sharded dissection gives the same IoU table as one run whenever
//! the merged levels agree.

pub mod compare;
pub mod estimate;
mod finish;
pub mod images;
mod merge;
pub mod options;
pub mod passes;
pub mod pipeline;
pub mod report;
pub mod result;
mod run;
pub mod settings;
pub mod source;
pub mod stats_paths;
pub mod upsample;

pub use estimate::Plan;
pub use merge::merge;
pub use options::{
    DEFAULT_BATCH, DEFAULT_MINIOU, DEFAULT_QUANTILE, DEFAULT_REPORT_IMAGES, DEFAULT_SAMPLES,
    DEFAULT_SAVE_EVERY, DEFAULT_SEG_SIZE, DEFAULT_TOPK, DissectOptions, MergeOptions,
};
pub use passes::{Shard, Sketch};
pub use result::{
    ConceptUnits, DissectResult, LayerResult, Ranking, TopImage, UnitIou, UnitResult,
};
pub use run::{dry_run, run, run_with};
pub use settings::{ResultSettings, Settings};
pub use source::{ImageSource, Labeller, Model, TRUTH, weights_digest};

/// Wall time of one stage of this invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct PassTiming {
    /// `pass 1`, `pass 2` or `report`.
    pub pass: String,
    /// Images processed.
    pub images: u64,
    /// Seconds taken.
    pub seconds: f64,
}

/// How a run or a merge ended.
#[derive(Debug)]
pub enum Outcome {
    /// The dissection is complete and written.
    Finished(Box<DissectResult>),
    /// Stopped early (batch limit); running the same command again resumes.
    Interrupted {
        /// The pass that was running.
        pass: u8,
        /// Images of this shard done in that pass.
        images: u64,
        /// Images of this shard.
        of: u64,
    },
    /// This shard finished a pass; the shards' statistics must be merged next.
    ShardDone {
        /// The pass finished.
        pass: u8,
    },
    /// Merged pass 1; the shards must run again for pass 2.
    Pass1Merged,
}

impl Outcome {
    /// The result of a finished dissection; any other outcome is an error saying what is left
    /// to do.
    pub fn finished(self) -> anyhow::Result<DissectResult> {
        match self {
            Outcome::Finished(r) => Ok(*r),
            Outcome::Interrupted { pass, images, of } => anyhow::bail!(
                "the dissection stopped in pass {pass} after {images} of {of} images; run it again to resume"
            ),
            Outcome::ShardDone { pass } => anyhow::bail!(
                "this shard finished pass {pass}; the shards must be merged (gandissect merge) before the results exist"
            ),
            Outcome::Pass1Merged => anyhow::bail!(
                "pass 1 is merged; the shards must run pass 2 and be merged again before the results exist"
            ),
        }
    }
}
