//! Mergeable, serialisable running statistics on tensors.
//!
//! Every accumulator takes batches as tch tensors on its own device (CPU or CUDA), never loops
//! over elements on the host, can `merge` with another accumulator of the same kind (shards
//! computed on many machines), and converts to and from named tensors ([`Statistic`]) so that a
//! [`StatsFile`] can save it and a killed run can resume where it stopped.
//!
//! - [`RunningQuantile`]: per-column quantile sketch with a stated rank-error bound.
//! - [`RunningTopK`]: per-column k largest values with their sample indices.
//! - [`IouTally`]: exact unit × concept intersection and union counts.
//! - [`ConditionalMean`] and [`RunningMean`]: running means and variances of vectors.

mod check;
pub mod conditional;
pub mod iou;
pub mod quantile;
pub mod store;
pub mod topk;

pub use conditional::{ConditionalMean, RunningMean};
pub use iou::IouTally;
pub use quantile::RunningQuantile;
pub use store::{NamedTensors, Statistic, StatsFile};
pub use topk::RunningTopK;
