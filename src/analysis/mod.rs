//! Analyses beside dissection (SPEC §12): [`selectivity`] (class selectivity against
//! single-unit importance and IoU) with its rank correlation ([`spearman`]).

pub mod selectivity;
pub mod spearman;
