//! Projects: the generators served, each with its dissected layers, concept palette and unit
//! pictures. One generator with `--model`, or every dissection found under `--data DIR`.

use crate::cut::Cut;
use crate::dissect::DissectResult;
use crate::dissect::images::unit_file;
use crate::edit::{DissectionSource, Session, SessionOptions, UnitCatalog};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Device;

/// Where the served projects come from.
#[derive(Clone, Debug)]
pub enum ProjectSource {
    /// One generator, painted at `layers` (the first is the default).
    Model {
        /// Shipped name, model directory, checkpoint or `random[:SEED]`.
        model: String,
        /// The segmenter.
        segmenter: String,
        /// Layers (served in natural order; the first given is the default).
        layers: Vec<String>,
        /// Where their dissection comes from.
        dissection: DissectionSource,
    },
    /// Every directory at most two levels below this one holding a generator's `dissect.json`
    /// (named after the directory, with the model, segmenter and layers that dissection used;
    /// its first layer is the default).
    Data(PathBuf),
}

/// One project to load.
#[derive(Clone, Debug)]
pub struct ProjectSpec {
    /// Its name in the page and the API.
    pub name: String,
    /// The generator as given.
    pub model: String,
    /// The segmenter.
    pub segmenter: String,
    /// Layers, the default first.
    pub layers: Vec<String>,
    /// Where the dissection comes from.
    pub dissection: DissectionSource,
}

/// Compares names with their digit runs as numbers: `layer2` before `layer10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let o = match (x, y) {
            ((true, p), (true, q)) => {
                let (p, q) = (p.trim_start_matches('0'), q.trim_start_matches('0'));
                p.len().cmp(&q.len()).then_with(|| p.cmp(q))
            }
            ((_, p), (_, q)) => p.cmp(q),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

/// Sorts names in natural order and drops repeats.
pub fn natural_sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort_by(|a, b| natural_cmp(a, b));
    names.dedup();
    names
}

/// The projects of `source`. A `--data` directory's dissections that are not a generator's
/// (a classifier's, or against the world's truth) are skipped with a note on stderr.
pub fn find_projects(source: &ProjectSource) -> Result<Vec<ProjectSpec>> {
    match source {
        ProjectSource::Model {
            model,
            segmenter,
            layers,
            dissection,
        } => {
            if layers.is_empty() {
                bail!("no layer to paint; give --layer, e.g. --layer layer4");
            }
            let name = Path::new(model)
                .file_stem()
                .map_or(model.clone(), |s| s.to_string_lossy().into_owned());
            Ok(vec![ProjectSpec {
                name,
                model: model.clone(),
                segmenter: segmenter.clone(),
                layers: layers.clone(),
                dissection: dissection.clone(),
            }])
        }
        ProjectSource::Data(root) => {
            if !root.is_dir() {
                bail!(
                    "--data {} is not a directory; give a directory holding dissections",
                    root.display()
                );
            }
            let mut dirs = Vec::new();
            collect_dissections(root, 0, &mut dirs)?;
            let mut specs: Vec<ProjectSpec> = Vec::new();
            for dir in dirs {
                match data_project(&dir) {
                    Ok(spec) => {
                        if let Some(other) = specs.iter().find(|s| s.name == spec.name) {
                            bail!(
                                "two dissections are both named {}: {} and {}; rename one \
                                 directory",
                                spec.name,
                                other
                                    .dissection
                                    .dir
                                    .as_deref()
                                    .unwrap_or(Path::new(""))
                                    .display(),
                                dir.display()
                            );
                        }
                        specs.push(spec);
                    }
                    Err(e) => eprintln!("skipping {}: {e:#}", dir.display()),
                }
            }
            if specs.is_empty() {
                bail!(
                    "no generator dissection under {} (a directory with dissect.json, at most \
                     two levels down); run gandissect dissect --out {}/NAME first",
                    root.display(),
                    root.display()
                );
            }
            specs.sort_by(|a, b| natural_cmp(&a.name, &b.name));
            Ok(specs)
        }
    }
}

fn collect_dissections(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join("dissect.json").is_file() {
        out.push(dir.to_path_buf());
    }
    if depth == 2 {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for e in entries {
        collect_dissections(&e, depth + 1, out)?;
    }
    Ok(())
}

fn data_project(dir: &Path) -> Result<ProjectSpec> {
    let d = DissectResult::load(dir)?;
    let model = d.settings.common.model.clone();
    let segmenter = d.settings.segmenter.clone();
    if segmenter == "truth" {
        bail!("it was dissected against the world's truth, which cannot judge painted scenes");
    }
    let name = dir
        .file_name()
        .map_or("project".into(), |n| n.to_string_lossy().into_owned());
    Ok(ProjectSpec {
        name,
        model,
        segmenter,
        layers: d.layers.iter().map(|l| l.layer.clone()).collect(),
        dissection: DissectionSource {
            dir: Some(dir.to_path_buf()),
            ..DissectionSource::default()
        },
    })
}

/// A concept of the palette.
#[derive(Clone, Debug, Serialize)]
pub struct ConceptInfo {
    /// Its name.
    pub concept: String,
    /// Its category.
    pub category: String,
    /// Its display colour, `#rrggbb`.
    pub color: String,
    /// Interpretable units labelled with it at the layer.
    pub units: usize,
}

/// A unit of a layer as the dissection labelled it.
#[derive(Clone, Debug, Serialize)]
pub struct UnitInfo {
    /// Unit index.
    pub unit: usize,
    /// Its best concept.
    pub label: String,
    /// The IoU with it.
    pub iou: f32,
    /// Whether the IoU passes the cut-off.
    pub interpretable: bool,
}

/// A layer of a project.
#[derive(Clone, Debug, Serialize)]
pub struct LayerInfo {
    /// Canonical name.
    pub layer: String,
    /// Units.
    pub channels: usize,
    /// The grid `[h, w]` of its output.
    pub shape: [i64; 2],
    /// Concepts with interpretable units, most units first.
    pub concepts: Vec<ConceptInfo>,
    /// Every unit.
    pub units: Vec<UnitInfo>,
    /// The dissection it comes from (not sent).
    #[serde(skip)]
    pub dissection: PathBuf,
}

impl LayerInfo {
    /// The picture of unit `unit`'s top images, when the dissection wrote it.
    pub fn unit_picture(&self, unit: usize) -> Option<PathBuf> {
        (unit < self.channels)
            .then(|| {
                self.dissection
                    .join(&self.layer)
                    .join("units")
                    .join(unit_file(unit))
            })
            .filter(|p| p.is_file())
    }
}

/// A label of the segmenter with its display colour.
#[derive(Clone, Debug, Serialize)]
pub struct LabelInfo {
    /// Name (`-` for none).
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
}

/// What the page and the API know of a project (plain data, shared by every request).
#[derive(Clone, Debug, Serialize)]
pub struct ProjectInfo {
    /// Its name.
    pub project: String,
    /// The generator as given (`--model`, or the dissection's setting).
    pub model: String,
    /// The segmenter.
    pub segmenter: String,
    /// Image side in pixels.
    pub image_size: u32,
    /// Quantile of the insertion values.
    pub value_quantile: f64,
    /// The layer painted unless a request names another: the first given.
    pub default_layer: String,
    /// Layers in natural order.
    pub layers: Vec<LayerInfo>,
    /// The segmenter's labels by id.
    pub labels: Vec<LabelInfo>,
}

impl ProjectInfo {
    /// A layer by its canonical name.
    pub fn layer(&self, layer: &str) -> Option<&LayerInfo> {
        self.layers.iter().find(|l| l.layer == layer)
    }
}

/// The models of a project: its session and a unit catalog per layer.
pub struct ProjectModels {
    /// The generator, segmenter and the first layer's catalog.
    pub session: Session,
    /// Per layer (canonical name).
    pub catalogs: BTreeMap<String, UnitCatalog>,
}

/// The display colour of label `name` (id `id`): the world's palette for its concepts, a
/// spread of hues for others, black for none.
pub fn label_color(name: &str, id: usize) -> [u8; 3] {
    if id == 0 {
        return [0, 0, 0];
    }
    if let Some(c) = crate::world::concept_id(name) {
        return crate::world::palette(c);
    }
    // golden-angle hues at full saturation, value 0.9
    let h = (id as f64 * 137.508).rem_euclid(360.0) / 60.0;
    let x = 1.0 - (h % 2.0 - 1.0).abs();
    let (r, g, b) = match h as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    [r, g, b].map(|v: f64| (v * 0.9 * 255.0).round() as u8)
}

/// `#rrggbb`.
pub fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// Loads a project: the session at its first layer, then every layer's dissection (run once
/// and cached when none is named) and catalog.
pub fn load_project(
    spec: &ProjectSpec,
    value_quantile: f64,
    stream: u32,
    device: Device,
) -> Result<(ProjectInfo, ProjectModels)> {
    let Some(first) = spec.layers.first() else {
        bail!("project {} has no layer", spec.name);
    };
    let mut opts = SessionOptions::new(&spec.model);
    opts.segmenter = spec.segmenter.clone();
    opts.layer = first.clone();
    opts.value_quantile = value_quantile;
    opts.dissection = spec.dissection.clone();
    opts.stream = stream;
    opts.device = device;
    let mut session = Session::open(&opts).with_context(|| format!("project {}", spec.name))?;
    let labels: Vec<LabelInfo> = session
        .segmenter
        .labels()
        .iter()
        .enumerate()
        .map(|(i, l)| LabelInfo {
            name: l.name.clone(),
            color: hex(label_color(&l.name, i)),
        })
        .collect();
    let z = session.painter()?.latents(&[0])?;
    let mut layers = Vec::new();
    let mut catalogs = BTreeMap::new();
    let mut seen = Vec::new();
    for name in &spec.layers {
        let layer = Cut::new(&session.generator, name)?.layer_name().to_string();
        if seen.contains(&layer) {
            continue;
        }
        seen.push(layer.clone());
        let (back, d) = session.dissection_at(&layer)?;
        session = back;
        let catalog = UnitCatalog::from_dissection(&d, &layer, value_quantile)?;
        let shape = {
            let _guard = tch::no_grad_guard();
            Cut::new(&session.generator, &layer)?.prefix(&z).size()
        };
        let l = d.layer(&layer)?;
        let mut concepts: Vec<ConceptInfo> = l
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| {
                let id = session.segmenter.label_id(c).unwrap_or(0);
                ConceptInfo {
                    concept: c.clone(),
                    category: l
                        .concepts
                        .iter()
                        .find(|x| &x.concept == c)
                        .map_or(String::new(), |x| x.category.clone()),
                    color: hex(label_color(c, id)),
                    units: *n,
                }
            })
            .collect();
        concepts.sort_by(|a, b| b.units.cmp(&a.units).then(a.concept.cmp(&b.concept)));
        layers.push(LayerInfo {
            layer: layer.clone(),
            channels: catalog.channels(),
            shape: [shape[2], shape[3]],
            concepts,
            units: l
                .units
                .iter()
                .map(|u| UnitInfo {
                    unit: u.unit,
                    label: u.label.clone(),
                    iou: u.iou,
                    interpretable: u.interpretable,
                })
                .collect(),
            dissection: d.dir.clone(),
        });
        catalogs.insert(layer, catalog);
    }
    let default_layer = layers[0].layer.clone();
    layers.sort_by(|a, b| natural_cmp(&a.layer, &b.layer));
    let info = ProjectInfo {
        project: spec.name.clone(),
        default_layer,
        model: spec.model.clone(),
        segmenter: spec.segmenter.clone(),
        image_size: session.image_side() as u32,
        value_quantile,
        layers,
        labels,
    };
    Ok((info, ProjectModels { session, catalogs }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_sort_in_natural_order() {
        let names = [
            "layer10",
            "layer2",
            "layer1",
            "output_64x64",
            "layer2",
            "conv5_3",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            natural_sorted(names),
            ["conv5_3", "layer1", "layer2", "layer10", "output_64x64"]
        );
        // equal numbers fall back to the plain order
        assert_eq!(natural_cmp("a02", "a2"), Ordering::Less);
        assert_eq!(natural_cmp("a9b", "a10"), Ordering::Less);
    }

    #[test]
    fn world_concepts_keep_their_palette_and_others_get_distinct_colours() {
        let tree = crate::world::concept_id("tree").unwrap();
        assert_eq!(label_color("tree", 5), crate::world::palette(tree));
        assert_eq!(label_color("-", 0), [0, 0, 0]);
        let others: Vec<[u8; 3]> = (1..20).map(|i| label_color("thing", i)).collect();
        for (i, a) in others.iter().enumerate() {
            for b in &others[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(hex([255, 0, 16]), "#ff0010");
    }
}
