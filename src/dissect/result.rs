//! The result of a dissection: per unit its best concept, per concept its units ranked by IoU,
//! saved as `dissect.json` and read back by later analyses (the editing planner).

use super::stats_paths;
use crate::segment::Label;
use crate::stats::{IouTally, RunningQuantile, StatsFile};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// One of a unit's top images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopImage {
    /// Image id (latent row or world seed).
    pub image: u64,
    /// The unit's spatial maximum on that image (raw feature map).
    pub maxact: f32,
}

/// What one unit detects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitResult {
    /// Unit (channel) index.
    pub unit: usize,
    /// The concept with the highest IoU.
    pub label: String,
    /// Its category.
    pub category: String,
    /// IoU with that concept.
    pub iou: f32,
    /// The activation threshold (the unit's quantile at the dissection's level).
    pub level: f32,
    /// Whether the IoU exceeds the cut-off.
    pub interpretable: bool,
    /// The images where the unit is strongest, best first.
    pub top: Vec<TopImage>,
}

/// A unit with its IoU for one concept.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitIou {
    /// Unit index.
    pub unit: usize,
    /// IoU with the concept.
    pub iou: f32,
}

/// One concept's units, best first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConceptUnits {
    /// Concept name.
    pub concept: String,
    /// Its category.
    pub category: String,
    /// Interpretable units whose best concept this is.
    pub interpretable_units: usize,
    /// Every unit, by descending IoU (ties: smaller unit first).
    pub units: Vec<UnitIou>,
}

/// A named order of units (best first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    /// `max-iou` (each unit's best IoU) or `<concept>-iou`.
    pub name: String,
    /// Unit indices, best first.
    pub units: Vec<usize>,
}

/// The dissection of one layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerResult {
    /// Canonical layer name.
    pub layer: String,
    /// Number of interpretable units.
    pub interpretable: usize,
    /// Every unit.
    pub units: Vec<UnitResult>,
    /// Every concept with its ranked units.
    pub concepts: Vec<ConceptUnits>,
    /// Named rankings.
    pub rankings: Vec<Ranking>,
    /// Interpretable units per concept (concepts with at least one).
    pub counts: BTreeMap<String, usize>,
}

/// A finished dissection (`dissect.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DissectResult {
    /// The settings the statistics were computed with, plus the quantile level and cut-off.
    pub settings: super::ResultSettings,
    /// Quantile level of the thresholds.
    pub quantile: f64,
    /// IoU cut-off for "interpretable".
    pub miniou: f64,
    /// The segmenter's labels by id (0 = none).
    pub labels: Vec<Label>,
    /// Per dissected layer.
    pub layers: Vec<LayerResult>,
    /// The output directory (not serialised).
    #[serde(skip)]
    pub dir: PathBuf,
    /// Wall times of the stages run by this invocation (not serialised).
    #[serde(skip)]
    pub timings: Vec<super::PassTiming>,
}

/// Builds one layer's result from its statistics.
pub fn layer_result(
    layer: &str,
    tally: &IouTally,
    levels: &Tensor,
    topk: &crate::stats::RunningTopK,
    labels: &[Label],
    miniou: f64,
) -> Result<LayerResult> {
    let iou = tally.iou()?.to_device(Device::Cpu);
    let (l, c) = (iou.size()[0] as usize, iou.size()[1] as usize);
    if l != labels.len() {
        bail!(
            "the tally of {layer} has {l} labels but the segmenter lists {}",
            labels.len()
        );
    }
    let table: Vec<f32> = Vec::try_from(iou.contiguous().view([-1]))?;
    let at = |label: usize, unit: usize| table[label * c + unit];
    let levels: Vec<f32> = Vec::try_from(levels.to_device(Device::Cpu).to_kind(Kind::Float))?;
    let (values, indices) = topk.result()?;
    let values: Vec<Vec<f32>> = Vec::try_from(values.to_device(Device::Cpu))?;
    let indices: Vec<Vec<i64>> = Vec::try_from(indices.to_device(Device::Cpu))?;
    let mut units = Vec::with_capacity(c);
    for u in 0..c {
        let mut best = 1;
        for lab in 2..l {
            if at(lab, u) > at(best, u) {
                best = lab;
            }
        }
        let value = at(best, u);
        units.push(UnitResult {
            unit: u,
            label: labels[best].name.clone(),
            category: labels[best].category.clone(),
            iou: value,
            level: levels[u],
            interpretable: f64::from(value) > miniou,
            top: values[u]
                .iter()
                .zip(&indices[u])
                .map(|(&maxact, &image)| TopImage {
                    image: image as u64,
                    maxact,
                })
                .collect(),
        });
    }
    let ranked = |score: &dyn Fn(usize) -> f32| {
        let mut order: Vec<usize> = (0..c).collect();
        order.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
        order
    };
    let mut concepts = Vec::with_capacity(l - 1);
    let mut rankings = vec![Ranking {
        name: "max-iou".into(),
        units: ranked(&|u| units[u].iou),
    }];
    let mut counts = BTreeMap::new();
    for (lab, label) in labels.iter().enumerate().skip(1) {
        let order = ranked(&|u| at(lab, u));
        let n = units
            .iter()
            .filter(|u| u.interpretable && u.label == label.name)
            .count();
        if n > 0 {
            counts.insert(label.name.clone(), n);
        }
        concepts.push(ConceptUnits {
            concept: label.name.clone(),
            category: label.category.clone(),
            interpretable_units: n,
            units: order
                .iter()
                .map(|&u| UnitIou {
                    unit: u,
                    iou: at(lab, u),
                })
                .collect(),
        });
        rankings.push(Ranking {
            name: format!("{}-iou", label.name),
            units: order,
        });
    }
    Ok(LayerResult {
        layer: layer.to_string(),
        interpretable: units.iter().filter(|u| u.interpretable).count(),
        units,
        concepts,
        rankings,
        counts,
    })
}

impl DissectResult {
    /// Reads `dir/dissect.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("dissect.json");
        let text = crate::fsutil::read_text(&path, "dissection summary").with_context(|| {
            format!(
                "cannot read {}; run gandissect dissect --out {} first",
                path.display(),
                dir.display()
            )
        })?;
        let mut result: Self = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a dissection result", path.display()))?;
        result.dir = dir.to_path_buf();
        Ok(result)
    }

    /// The result of one layer; an unknown name lists the dissected ones.
    pub fn layer(&self, layer: &str) -> Result<&LayerResult> {
        self.layers
            .iter()
            .find(|l| l.layer == layer)
            .with_context(|| {
                format!(
                    "layer '{layer}' was not dissected here; dissected: {}",
                    self.layers
                        .iter()
                        .map(|l| l.layer.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// Every unit of `layer` with its IoU for `concept`, best first (the ranking interventions
    /// use: take the first k).
    pub fn unit_ranking(&self, layer: &str, concept: &str) -> Result<Vec<(usize, f32)>> {
        let l = self.layer(layer)?;
        let c = l
            .concepts
            .iter()
            .find(|c| c.concept == concept)
            .with_context(|| {
                format!(
                    "unknown concept '{concept}'; the segmenter knows: {}",
                    l.concepts
                        .iter()
                        .map(|c| c.concept.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        Ok(c.units.iter().map(|u| (u.unit, u.iou)).collect())
    }

    /// The per-unit activation levels of `layer` at quantile `q` (e.g. 0.99 or 0.995 for
    /// insertion), read from the merged pass-1 sketch.
    pub fn levels(&self, layer: &str, q: f64) -> Result<Vec<f32>> {
        self.layer(layer)?;
        let path = stats_paths::pass1_merged(&self.dir);
        let file = StatsFile::load_any(&path)?;
        let sketch: RunningQuantile = file.get(&format!("{layer}.quantile"), Device::Cpu)?;
        Ok(Vec::try_from(sketch.quantiles(&[q])?.select(1, 0))?)
    }

    /// The `[labels, units]` IoU table of `layer`, from the merged pass-2 tallies.
    pub fn iou_table(&self, layer: &str) -> Result<Tensor> {
        self.layer(layer)?;
        let path = stats_paths::pass2_merged(&self.dir, self.quantile);
        let file = StatsFile::load_any(&path)?;
        let tally: IouTally = file.get(&format!("{layer}.iou"), Device::Cpu)?;
        tally.iou()
    }

    /// The raw pass-2 tally of `layer` (intersection and union counts).
    pub fn tally(&self, layer: &str) -> Result<IouTally> {
        self.layer(layer)?;
        let file = StatsFile::load_any(&stats_paths::pass2_merged(&self.dir, self.quantile))?;
        file.get(&format!("{layer}.iou"), Device::Cpu)
    }
}
