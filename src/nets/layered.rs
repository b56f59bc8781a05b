//! The common shape of every network: an ordered list of named layers that can be run piecewise.

use anyhow::{Result, bail};
use tch::{Device, Tensor};

/// A network seen as a sequence of named layers. Layer `i` maps the output of layer `i − 1`
/// (or the network input, for `i = 0`) to its own output, so any contiguous range can be run
/// alone. Cutting a network at a layer is running `0..=i`, editing, then running `i+1..`; see
/// [`crate::cut`].
pub trait LayeredNet {
    /// The canonical layer names, in order.
    fn layer_names(&self) -> &[String];

    /// Alternative names accepted for layers (`(alias, canonical)`), e.g. `conv5_3` for VGG.
    fn layer_aliases(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Runs layers `from..to` (end exclusive) on `x`, which must be the output of layer
    /// `from − 1` (or the network input when `from == 0`).
    fn forward_range(&self, x: &Tensor, from: usize, to: usize) -> Tensor;

    /// The device holding the weights.
    fn device(&self) -> Device;

    /// Number of layers.
    fn num_layers(&self) -> usize {
        self.layer_names().len()
    }

    /// The whole network.
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_range(x, 0, self.num_layers())
    }

    /// The index of a layer given by canonical name or alias; an unknown name is an error that
    /// lists the available layers.
    fn layer_index(&self, name: &str) -> Result<usize> {
        let names = self.layer_names();
        if let Some(i) = names.iter().position(|n| n == name) {
            return Ok(i);
        }
        let aliases = self.layer_aliases();
        if let Some((_, canonical)) = aliases.iter().find(|(a, _)| a == name)
            && let Some(i) = names.iter().position(|n| n == canonical)
        {
            return Ok(i);
        }
        let mut known: Vec<&str> = names.iter().map(String::as_str).collect();
        known.extend(aliases.iter().map(|(a, _)| a.as_str()));
        bail!(
            "unknown layer '{name}'; this network's layers are: {}",
            known.join(", ")
        )
    }
}
