//! Feature visualisation (SPEC §12.4): what a network has learned, looked at, and each method
//! scored against the world's truth.
//!
//! - [`filters`]: a conv layer's filters as an image grid (first layer directly, deeper layers
//!   through their strongest input channels).
//! - [`maximize`]: inputs optimised to excite a unit, a class or a concept's units — built from
//!   small pieces: a parametrisation ([`param`]), random transforms ([`transform`]) and an
//!   objective with penalties ([`objective`]); for a generator, its latent or an earlier
//!   layer's features ([`latent`]).
//! - [`saliency`]: which pixels drive a decision (gradient, SmoothGrad, integrated gradients,
//!   Grad-CAM, occlusion) over one gradient helper; [`truth`] scores the maps against the
//!   world's concept maps (pointing game, deletion and insertion curves).
//! - [`embed`]: a 2-D map of a layer's pooled codes over world scenes ([`tsne`]), as a chart
//!   and as a page where hovering a point shows its scene.
//!
//! Every method works on a [`Model`]: a layered network with its input stage, so a classifier
//! loaded from the zoo and a network built in code are explained the same way.

pub mod embed;
pub mod filters;
pub mod latent;
pub mod maximize;
pub mod model;
pub mod objective;
pub mod overlay;
pub mod param;
pub mod saliency;
pub mod transform;
pub mod truth;
pub mod tsne;

pub use model::Model;

#[cfg(test)]
mod tests;
