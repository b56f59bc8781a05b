//! Targeted adversarial attacks on a classifier and what they do to its units (SPEC §6).
//!
//! - [`pgd`]: L∞ projected gradient descent;
//! - [`cw`]: Carlini–Wagner L2 with a binary search over the constant;
//! - [`trace`]: |Δ peak activation| per unit, grouped by class importance, with 99% intervals;
//! - [`run`]: image selection, the attack end to end, its JSON and pictures.
//!
//! Perturbations are measured on the [0, 1] pixel scale at the images' own resolution (the
//! classifier's resize to its input size is part of the attacked function).

pub mod cw;
pub mod pgd;
pub mod run;
pub mod trace;

pub use run::{AttackOptions, AttackReport, Method, attack, write_attack};
