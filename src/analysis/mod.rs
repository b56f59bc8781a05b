//! Analyses beside dissection (SPEC §12): [`selectivity`] (class selectivity against
//! single-unit importance and IoU) with its rank correlation ([`spearman`]); [`similarity`]
//! (SVCCA, PWCCA and CKA between layers, models and training checkpoints, SPEC §12.2).

pub mod selectivity;
pub mod similarity;
pub mod spearman;
