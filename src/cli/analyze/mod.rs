//! `gandissect analyze …`: analyses of units.

mod ablation_curve;
mod generator_curve;
mod populations;
mod selectivity;
mod similarity;

use super::commands;

commands! {
    /// The unit analyses.
    pub enum AnalyzeCommand {
        /// Class selectivity index per unit, and its rank correlation with importance (and IoU).
        Selectivity(selectivity::SelectivityArgs),
        /// Cumulative ablation of a layer's units in several orders, and Gaussian noise,
        /// against held-out accuracy (a generator: against its scenes' label shares).
        AblationCurve(ablation_curve::AblationCurveArgs),
        /// Units clustered by activation and by ablation profile into populations, each with
        /// its joint ablation effect.
        Populations(populations::PopulationsArgs),
        /// SVCCA, PWCCA or CKA between layers, models and training checkpoints.
        Similarity(similarity::SimilarityArgs),
    }
}
