//! gandissect: find out what the units of a convolutional network do, and use them.
//!
//! Data flows one way: sample → generate → segment → tally → report. See `ARCHITECTURE.md`.

pub mod allocator;
pub mod analysis;
pub mod attack;
pub mod bench;
pub mod chart;
pub mod classify;
pub mod cut;
pub mod demo;
pub mod device;
pub mod dissect;
pub mod edit;
pub mod features;
pub mod fsutil;
pub mod generate;
pub mod imageio;
pub mod nets;
pub mod prng;
pub mod progress;
pub mod sample;
pub mod scratch;
pub mod segment;
pub mod serve;
pub mod stats;
pub mod tensorfile;
pub mod train;
pub mod visualize;
pub mod world;
pub mod zoo;
pub mod zsample;
