//! Where a unit ranking by importance comes from for the analyses that need one (attack traces,
//! selectivity): a saved `importance.json`, or a single-unit sweep measured on the spot.

use super::importance::{ImportanceOptions, ImportanceReport, importance, read_importance};
use super::model::Classifier;
use anyhow::Result;
use std::path::PathBuf;
use tch::Device;

/// Training-split scenes a ranking measured on the spot covers by default (attacks).
pub const DEFAULT_RANKING_SAMPLES: u64 = 1200;

/// A unit ranking by importance.
#[derive(Clone, Debug)]
pub enum ImportanceSource {
    /// Read from an `importance.json` written by `classify importance`.
    File(PathBuf),
    /// Measured here: every unit ablated alone on this many training-split scenes (no curves).
    Measure {
        /// Training-split scenes.
        samples: u64,
    },
}

impl ImportanceSource {
    /// A saved ranking when `path` is given, else one measured on `samples` scenes.
    pub fn new(path: Option<PathBuf>, samples: u64) -> Self {
        match path {
            Some(p) => Self::File(p),
            None => Self::Measure { samples },
        }
    }

    /// The ranking of `layer`'s units (measured with a progress bar when `progress`, saying so
    /// on stderr).
    pub fn report(
        &self,
        clf: &Classifier,
        layer: &str,
        device: Device,
        progress: bool,
    ) -> Result<ImportanceReport> {
        match self {
            Self::File(p) => read_importance(p),
            Self::Measure { samples } => {
                eprintln!("ranking the units of {layer} on {samples} training-split scenes");
                let mut opts = ImportanceOptions::new(layer, *samples, 1, device);
                opts.ks.clear();
                opts.progress = progress;
                importance(clf, &opts)
            }
        }
    }
}
