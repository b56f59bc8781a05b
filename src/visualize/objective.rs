//! What activation maximisation climbs: a unit's activation (its mean over positions or its
//! centre position), a class logit, or the mean of a concept's top-k units; and the penalties
//! that keep images plausible (total variation, L2) or several images apart (diversity).

use super::model::Model;
use anyhow::{Result, bail};
use serde::Serialize;
use tch::{Kind, Tensor};

/// Which positions of a unit's map count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// The mean over all positions.
    #[default]
    Mean,
    /// The centre position only.
    Centre,
}

impl std::str::FromStr for Position {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(Self::Mean),
            "centre" | "center" => Ok(Self::Centre),
            _ => bail!("unknown position '{s}': use mean or centre"),
        }
    }
}

/// A target to excite.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Units of a layer (one, or a concept's top-k), their activations averaged.
    Units {
        /// The layer.
        layer: String,
        /// The units.
        units: Vec<i64>,
        /// Which positions count.
        position: Position,
    },
    /// A class logit.
    Class {
        /// The class index.
        class: i64,
        /// Its name.
        name: String,
    },
    /// A class's log-probability: its logit against all the others, so the image must also
    /// stop looking like the classes it resembles (a forest, not a forest path).
    ClassProbability {
        /// The class index.
        class: i64,
        /// Its name.
        name: String,
    },
}

impl Objective {
    /// The class a class objective climbs.
    pub fn class(&self) -> Option<(i64, &str)> {
        match self {
            Objective::Class { class, name } | Objective::ClassProbability { class, name } => {
                Some((*class, name))
            }
            Objective::Units { .. } => None,
        }
    }
}

/// The activation of `units` of `[N, C, H, W]` (or `[N, C]`) features: `[N]`.
pub fn unit_activation(features: &Tensor, units: &[i64], position: Position) -> Tensor {
    let idx = Tensor::from_slice(units).to_device(features.device());
    let f = features.index_select(1, &idx);
    let per_unit = if f.dim() == 4 {
        match position {
            Position::Mean => f.mean_dim([2, 3].as_slice(), false, Kind::Float),
            Position::Centre => {
                let (h, w) = (f.size()[2], f.size()[3]);
                f.select(3, w / 2).select(2, h / 2)
            }
        }
    } else {
        f.flatten(1, -1)
    };
    per_unit.mean_dim(1, false, Kind::Float)
}

/// Total variation of `[N, 3, H, W]` images: the mean absolute difference of neighbouring
/// pixels, per image: `[N]`.
pub fn total_variation(images: &Tensor) -> Tensor {
    let (h, w) = (images.size()[2], images.size()[3]);
    let dy = (images.narrow(2, 1, h - 1) - images.narrow(2, 0, h - 1)).abs();
    let dx = (images.narrow(3, 1, w - 1) - images.narrow(3, 0, w - 1)).abs();
    dy.mean_dim([1, 2, 3].as_slice(), false, Kind::Float)
        + dx.mean_dim([1, 2, 3].as_slice(), false, Kind::Float)
}

/// The mean squared pixel value of `[N, …]` images (0 is grey): `[N]`.
pub fn l2(images: &Tensor) -> Tensor {
    images
        .square()
        .flatten(1, -1)
        .mean_dim(1, false, Kind::Float)
}

/// How alike a batch's images are to the network at a layer: the mean pairwise cosine
/// similarity of their features' Gram matrices (`[N, C, H, W]`); 0 for one image. Subtracting
/// it pushes the images towards different ways of reaching the objective.
pub fn similarity(features: &Tensor) -> Tensor {
    let n = features.size()[0];
    if n < 2 || features.dim() != 4 {
        return Tensor::zeros([], (Kind::Float, features.device()));
    }
    let c = features.size()[1];
    let f = features.flatten(2, -1);
    let gram = f.matmul(&f.transpose(1, 2)).view([n, c * c]);
    let unit = &gram / (gram.norm_scalaropt_dim(2.0, [1].as_slice(), true) + 1e-8);
    let sims = unit.matmul(&unit.tr());
    (sims.sum(Kind::Float) - sims.diagonal(0, 0, 1).sum(Kind::Float)) / (n * (n - 1)) as f64
}

/// Weights of the penalties.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Default)]
pub struct Penalties {
    /// Total variation.
    pub tv: f64,
    /// Mean squared pixel value.
    pub l2: f64,
    /// Pairwise similarity of the batch's images at the diversity layer.
    pub diversity: f64,
}

impl Penalties {
    /// Checks the weights.
    pub fn validate(&self) -> Result<()> {
        for (name, w) in [
            ("tv", self.tv),
            ("l2", self.l2),
            ("diversity", self.diversity),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                bail!("the {name} penalty weight must be a finite number ≥ 0, not {w}");
            }
        }
        Ok(())
    }
}

/// The objective per image, and the features the diversity term compares, for images in
/// [−1, 1]. `diversity_layer` is used when the objective has no layer of its own (a class).
pub fn evaluate(
    model: &Model,
    objective: &Objective,
    images: &Tensor,
    diversity_layer: Option<&str>,
) -> Result<(Tensor, Option<Tensor>)> {
    match objective {
        Objective::Units {
            layer,
            units,
            position,
        } => {
            let cut = model.cut(layer)?;
            let f = model.features(&cut, images);
            Ok((unit_activation(&f, units, *position), Some(f)))
        }
        Objective::Class { class, .. } | Objective::ClassProbability { class, .. } => {
            let read = |logits: Tensor| {
                if matches!(objective, Objective::ClassProbability { .. }) {
                    logits.log_softmax(1, Kind::Float).select(1, *class)
                } else {
                    logits.select(1, *class)
                }
            };
            match diversity_layer {
                Some(layer) => {
                    let cut = model.cut(layer)?;
                    let f = model.features(&cut, images);
                    let logits = cut.suffix(&f);
                    Ok((read(logits), Some(f)))
                }
                None => Ok((read(model.logits(images)), None)),
            }
        }
    }
}

/// Checks an objective against a model: the layer exists, the units and the class are in
/// range.
pub fn validate(model: &Model, objective: &Objective, probe: &Tensor) -> Result<()> {
    match objective {
        Objective::Units { layer, units, .. } => {
            if units.is_empty() {
                bail!("no units to maximise");
            }
            let cut = model.cut(layer)?;
            let c = tch::no_grad(|| model.features(&cut, probe)).size()[1];
            if let Some(u) = units.iter().find(|&&u| u < 0 || u >= c) {
                bail!(
                    "unit {u} is out of range: {layer} has {c} units (0..{})",
                    c - 1
                );
            }
        }
        Objective::Class { class, .. } | Objective::ClassProbability { class, .. } => {
            let k = model.classes().len() as i64;
            if *class < 0 || *class >= k {
                bail!("class {class} is out of range: the model has {k} classes");
            }
        }
    }
    Ok(())
}
