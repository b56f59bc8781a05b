//! `gandissect analyze …`: analyses of units.

mod selectivity;

use super::commands;

commands! {
    /// The unit analyses.
    pub enum AnalyzeCommand {
        /// Class selectivity index per unit, and its rank correlation with importance (and IoU).
        Selectivity(selectivity::SelectivityArgs),
    }
}
