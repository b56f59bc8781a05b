//! The seeds of each training step, drawn deterministically from the step number so that a
//! resumed run sees exactly the data an uninterrupted one would (the scenes themselves come
//! from [`crate::sample::world_batch`]).

/// Training scenes use seeds from here on; seeds below it are never trained on, so evaluation
/// on seeds `0..N` is on unseen scenes.
pub const TRAIN_SEED_BASE: u64 = 1 << 40;

/// The world seeds of one training step.
pub fn step_seeds(run_seed: u64, step: i64, batch: usize) -> Vec<u64> {
    let start = TRAIN_SEED_BASE + (run_seed << 32) + step as u64 * batch as u64;
    (start..start + batch as u64).collect()
}
