//! Segmenters: images in [−1, 1] → per-pixel concept labels, with the label list.
//!
//! A segmenter returns label maps `[N, K, h, w]` (K ≥ 1 channels, 0 = no label), so that
//! segmenters giving several labels per pixel (an object and its part) fit the same tally.
//! What a TorchScript segmenter may return is described in [`torchscript`].

pub mod torchscript;
pub mod worldseg;

use crate::nets::checkpoint::StateDict;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};
use worldseg::WorldSegNet;

/// The segmenter used when none is named.
pub const DEFAULT_SEGMENTER: &str = "world-seg";

/// One label of a segmenter: its name and category (`object`, `part`, `material`, `color` …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Concept name.
    pub name: String,
    /// Concept category.
    pub category: String,
}

/// The world's concepts as segmenter labels (id 0 is "none", category "-"): the label list of
/// the world segmenter and of the world's own label maps.
pub fn world_labels() -> Vec<Label> {
    crate::world::CONCEPTS
        .iter()
        .enumerate()
        .map(|(i, n)| Label {
            name: n.to_string(),
            category: crate::world::concept_category(i as u8).to_string(),
        })
        .collect()
}

/// Anything that labels pixels.
pub trait Segmenter: Send {
    /// A short name for summaries.
    fn name(&self) -> &str;
    /// Labels by id; id 0 is "none".
    fn labels(&self) -> &[Label];
    /// Label maps `[N, K, h, w]` (i64) for images `[N, 3, H, W]` in [−1, 1].
    fn segment(&self, images: &Tensor) -> Result<Tensor>;
    /// The image side the segmenter expects, if it needs one.
    fn input_size(&self) -> Option<i64> {
        None
    }
    /// The id of a label by name; an unknown name is an error listing the known ones.
    fn label_id(&self, name: &str) -> Result<usize> {
        match self.labels().iter().position(|l| l.name == name) {
            Some(i) if i > 0 => Ok(i),
            _ => bail!(
                "unknown concept '{name}'; {} knows: {}",
                self.name(),
                self.labels()
                    .iter()
                    .skip(1)
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// A segmenter card (`segmenter.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SegmenterCard {
    /// `world-seg` or `torchscript`.
    pub architecture: String,
    /// The weights (or TorchScript module) file, relative to the card.
    pub weights: String,
    /// Labels by id, id 0 being "none".
    pub labels: Vec<Label>,
    /// The image side it expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<i64>,
    /// Everything else (training, measured quality ...; for a TorchScript segmenter, `output`:
    /// the entry of a dict or tuple output that holds its label maps or scores).
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// The shipped world segmenter (or any network of its architecture).
pub struct WorldSeg {
    net: WorldSegNet,
    labels: Vec<Label>,
    name: String,
    input_size: Option<i64>,
}

impl WorldSeg {
    /// Wraps a network with its labels.
    pub fn new(
        net: WorldSegNet,
        labels: Vec<Label>,
        name: &str,
        input_size: Option<i64>,
    ) -> Result<Self> {
        if labels.len() as i64 != net.num_labels() {
            bail!(
                "the segmenter has {} outputs but {} labels are listed",
                net.num_labels(),
                labels.len()
            );
        }
        Ok(Self {
            net,
            labels,
            name: name.to_string(),
            input_size,
        })
    }

    /// The network.
    pub fn net(&self) -> &WorldSegNet {
        &self.net
    }
}

impl Segmenter for WorldSeg {
    fn name(&self) -> &str {
        &self.name
    }
    fn labels(&self) -> &[Label] {
        &self.labels
    }
    fn input_size(&self) -> Option<i64> {
        self.input_size
    }
    fn segment(&self, images: &Tensor) -> Result<Tensor> {
        let s = images.size();
        if s.len() != 4 || s[1] != 3 || s[2] % 4 != 0 || s[3] % 4 != 0 {
            bail!(
                "{} segments [N, 3, H, W] images with H and W divisible by 4, not {s:?}",
                self.name
            );
        }
        let _g = tch::no_grad_guard();
        Ok(self.net.predict(images).unsqueeze(1))
    }
}

fn shipped(name: &str) -> PathBuf {
    crate::zoo::home().join("segmenters").join(name)
}

/// Checks a label list and keeps duplicate names apart: at least one label besides id 0
/// ("none"), no empty name, no label listed twice; a name that several categories share
/// (carpet as an object and as a material) becomes `name-category` for each of them.
/// `source` names the list in errors.
pub fn check_labels(mut labels: Vec<Label>, source: &str) -> Result<Vec<Label>> {
    if labels.len() < 2 {
        bail!(
            "{source} lists {} labels; a segmenter needs id 0 (none) and at least one concept",
            labels.len()
        );
    }
    if let Some(i) = labels.iter().skip(1).position(|l| l.name.trim().is_empty()) {
        bail!("{source}: label {} has an empty name", i + 1);
    }
    let count = |name: &str, labels: &[Label]| labels.iter().filter(|l| l.name == name).count();
    let shared: Vec<bool> = labels.iter().map(|l| count(&l.name, &labels) > 1).collect();
    for (i, l) in labels.iter().enumerate() {
        if let Some(j) = labels[..i].iter().position(|m| m == l) {
            bail!(
                "{source} lists {} ({}) twice, as labels {j} and {i}; each label once",
                l.name,
                l.category
            );
        }
    }
    for (l, shared) in labels.iter_mut().zip(shared) {
        if shared {
            l.name = format!("{}-{}", l.name, l.category);
        }
    }
    for (i, l) in labels.iter().enumerate() {
        if let Some(j) = labels[..i].iter().position(|m| m.name == l.name) {
            bail!(
                "{source}: labels {j} and {i} are both called {} once duplicate names take \
                 their category; rename one",
                l.name
            );
        }
    }
    Ok(labels)
}

/// Loads a segmenter: a shipped name (under `segmenters/`), a directory with
/// `segmenter.json`, or a TorchScript file with a `labels.json` beside it.
pub fn load_segmenter(spec: &str, device: Device) -> Result<Box<dyn Segmenter>> {
    load_segmenter_output(spec, None, device)
}

/// Loads a segmenter as [`load_segmenter`] does; `output` names the entry of a TorchScript
/// segmenter's dict or tuple output that holds its label maps or scores (over the card's
/// `output`).
pub fn load_segmenter_output(
    spec: &str,
    output: Option<&str>,
    device: Device,
) -> Result<Box<dyn Segmenter>> {
    let path = Path::new(spec);
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else if path.is_file() {
        return Ok(Box::new(torchscript::TorchScriptSegmenter::load(
            path, output, device,
        )?));
    } else if !spec.contains('/') && shipped(spec).is_dir() {
        shipped(spec)
    } else {
        let installed = crate::zoo::installed("segmenters");
        bail!(
            "unknown segmenter '{spec}': not a file or directory, and not a shipped segmenter in {} ({}); \
             give a segmenter directory or TorchScript file, or --models-dir DIR",
            crate::zoo::home().join("segmenters").display(),
            if installed.is_empty() {
                "none installed".to_string()
            } else {
                installed.join(", ")
            }
        );
    };
    let card_path = dir.join("segmenter.json");
    let text = std::fs::read_to_string(&card_path)
        .with_context(|| format!("{} has no readable segmenter.json", dir.display()))?;
    let card: SegmenterCard = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid segmenter card", card_path.display()))?;
    let name = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    match card.architecture.as_str() {
        "world-seg" => {
            if let Some(o) = output {
                bail!("{name} returns label maps directly; it has no output '{o}' to choose");
            }
            let sd = StateDict::load(&dir.join(&card.weights))?;
            let net = WorldSegNet::from_state_dict(&sd, device)?;
            Ok(Box::new(WorldSeg::new(
                net,
                card.labels,
                &name,
                card.input_size,
            )?))
        }
        "torchscript" => Ok(Box::new(
            torchscript::TorchScriptSegmenter::with_labels(
                &dir.join(&card.weights),
                card.labels,
                output.or(card.rest.get("output").and_then(|v| v.as_str())),
                device,
            )?
            .with_input_size(card.input_size),
        )),
        other => bail!(
            "{}: unknown segmenter architecture '{other}'",
            card_path.display()
        ),
    }
}
