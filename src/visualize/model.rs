//! The network a visualisation looks into: a layered network, the stage that turns images in
//! [−1, 1] into its input, and the names of its outputs.

use crate::classify::Classifier;
use crate::cut::Cut;
use crate::nets::layered::LayeredNet;
use anyhow::{Result, bail};
use tch::Tensor;

/// A differentiable image model: images in [−1, 1] (any size its input stage accepts) →
/// logits `[N, K]`, cut anywhere through [`crate::cut`].
pub struct Model<'a> {
    net: &'a dyn LayeredNet,
    input: Box<dyn Fn(&Tensor) -> Tensor + 'a>,
    classes: Vec<String>,
}

impl<'a> Model<'a> {
    /// A network whose input stage is `input` (resizing, normalisation) and whose outputs are
    /// named `classes`.
    pub fn new(
        net: &'a dyn LayeredNet,
        input: impl Fn(&Tensor) -> Tensor + 'a,
        classes: Vec<String>,
    ) -> Self {
        Self {
            net,
            input: Box::new(input),
            classes,
        }
    }

    /// A classifier: resized to its input size and normalised as it was trained.
    pub fn classifier(clf: &'a Classifier) -> Self {
        Self::new(
            &clf.net,
            move |x: &Tensor| clf.network_input(x),
            clf.classes.clone(),
        )
    }

    /// The network.
    pub fn net(&self) -> &'a dyn LayeredNet {
        self.net
    }

    /// The output names.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The index of an output by name; an unknown name lists the known ones.
    pub fn class_index(&self, name: &str) -> Result<i64> {
        match self.classes.iter().position(|c| c == name) {
            Some(i) => Ok(i as i64),
            None => bail!(
                "unknown class '{name}'; this model's classes are: {}",
                self.classes.join(", ")
            ),
        }
    }

    /// Images in [−1, 1] as the network's input.
    pub fn input(&self, images: &Tensor) -> Tensor {
        (self.input)(images)
    }

    /// Logits for images in [−1, 1] (differentiable in the images).
    pub fn logits(&self, images: &Tensor) -> Tensor {
        self.net.forward(&self.input(images))
    }

    /// Cuts the network after `layer`.
    pub fn cut(&self, layer: &str) -> Result<Cut<'a, dyn LayeredNet + 'a>> {
        Cut::new(self.net, layer)
    }

    /// The output of the cut layer for images in [−1, 1].
    pub fn features(&self, cut: &Cut<'a, dyn LayeredNet + 'a>, images: &Tensor) -> Tensor {
        cut.prefix(&self.input(images))
    }
}
