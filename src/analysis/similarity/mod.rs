//! Representation similarity (SPEC §12.2): when do two layers, two networks or two moments of
//! one training hold the same representation?
//!
//! - [`probe`]: the networks compared ([`Subject`]: a classifier or a generator, its layers)
//!   and the probe set both sides see ([`Probe`]);
//! - [`grid`]: layer outputs as data points (every spatial position one), brought to a
//!   common grid by pooling or the DFT;
//! - [`accumulate`]: the probe activations streamed into second moments per layer and pair;
//! - [`measures`]: SVCCA, PWCCA and linear CKA from those moments;
//! - [`memory`]: the memory a comparison takes and the rule that fits it to a budget;
//! - [`compare`]: layer × layer comparisons and training dynamics;
//! - [`report`]: JSON, heat map, curves and HTML.
//!
//! Memory is independent of the probe size `N`: `8·p²` bytes per layer of `p` units (per grid it
//! is compared on), `8·p·q` per pair, and one batch of activations ([`memory`] has the whole
//! estimate). Above a budget the batch is lowered, and only when one input is still too large
//! are positions sampled.

pub mod accumulate;
pub mod compare;
pub mod grid;
pub mod measures;
pub mod memory;
pub mod probe;
pub mod report;

pub use compare::{
    DynamicsReport, LayerCurve, Options, SimilarityReport, compare, dynamics, kept_checkpoints,
};
pub use grid::Resize;
pub use measures::{Method, PairCovariance, Similarity, measure};
pub use memory::{DEFAULT_BUDGET, MemoryPlan};
pub use probe::{Layer, Probe, Subject};
pub use report::{write_dynamics, write_similarity};
