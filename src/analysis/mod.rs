//! Analyses beside dissection (SPEC §12): [`selectivity`] (class selectivity against
//! single-unit importance and IoU) with its rank correlation ([`spearman`]); [`probe`] (held-out
//! features computed once for many ablation conditions); [`ablation_curve`] (cumulative ablation
//! and noise curves on a classifier's accuracy); [`generator_curve`] (the same on a generator,
//! measured by the segmenter's label shares); [`populations`] (units clustered by activation
//! and ablation profiles); [`similarity`] (SVCCA, PWCCA and CKA between layers, models and
//! training checkpoints, SPEC §12.2).

pub mod ablation_curve;
pub mod generator_curve;
pub mod populations;
pub mod probe;
pub mod selectivity;
pub mod similarity;
pub mod spearman;
