//! `gandissect analyze …`: analyses of units.

mod selectivity;
mod similarity;

use super::commands;

commands! {
    /// The unit analyses.
    pub enum AnalyzeCommand {
        /// Class selectivity index per unit, and its rank correlation with importance (and IoU).
        Selectivity(selectivity::SelectivityArgs),
        /// SVCCA, PWCCA or CKA between layers, models and training checkpoints.
        Similarity(similarity::SimilarityArgs),
    }
}
