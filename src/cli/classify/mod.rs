//! `gandissect classify …`: classifier analyses.

mod dissect;
mod importance;

use super::commands;

commands! {
    /// The classifier analyses.
    pub enum ClassifyCommand {
        /// Rank a layer's units per class by single-unit ablation; remove/keep-top-k curves.
        Importance(importance::ImportanceArgs),
        /// Dissect conv layers (one, several or all) with a per-layer summary by concept category.
        Dissect(dissect::ClassifyDissectArgs),
    }
}
