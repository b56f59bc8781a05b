//! Classifier analyses (SPEC §5): per-class balanced accuracy, single-unit ablation importance
//! on a training split, and remove/keep-top-k curves on a held-out split.
//!
//! - [`model`]: the classifier with its input size and class names, and the checks on layers,
//!   class names and image sizes;
//! - [`metrics`]: one-vs-all counts and balanced accuracy from the multiclass argmax;
//! - [`ablation`]: many ablation conditions stacked into one suffix forward;
//! - [`sweep`]: counts under ablation over image batches, the single-unit sweep;
//! - [`ranking`]: per-class unit rankings, remove/keep unit sets;
//! - [`curves`]: remove/keep-top-k curves;
//! - [`importance`](mod@importance): the analysis end to end, its JSON and charts;
//! - [`importance_source`]: a ranking read from `importance.json` or measured on the spot;
//! - [`folder`]: a folder of pictures (and a label file) as classifier input;
//! - [`dissection`]: dissection of conv layers (one or all) with a per-layer category summary.

pub mod ablation;
pub mod curves;
pub mod dissection;
pub mod folder;
pub mod importance;
pub mod importance_source;
pub mod metrics;
pub mod model;
pub mod ranking;
pub mod sweep;

pub use importance::{
    ImportanceOptions, ImportanceReport, importance, read_importance, write_importance,
};
pub use importance_source::ImportanceSource;
pub use model::Classifier;
