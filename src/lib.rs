//! gandissect: find out what the units of a convolutional network do, and use them.
//!
//! Data flows one way: sample → generate → segment → tally → report. See `ARCHITECTURE.md`.

pub mod fsutil;
pub mod stats;
