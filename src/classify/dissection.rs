//! Dissection of a classifier's conv layers through the one dissection pipeline
//! ([`crate::dissect::run`], all layers sharing each forward), over world scenes or a folder of
//! pictures, followed by a per-layer summary of interpretable units by concept category
//! (`summary.json`, `summary.png`, `summary.html`) and, when pictures carry class labels, the
//! classifier's accuracy on them.

use super::Classifier;
use super::folder::{ImageFolder, read_labels};
use super::metrics::{ClassCounts, to_rows};
use crate::chart::{Axis, Figure, GREY, Line, LineChart, page_font_css};
use crate::dissect::{DissectOptions, DissectResult, ImageSource, Outcome};
use crate::fsutil::{atomic_write, write_json};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::{Device, Tensor};

/// The thirteen conv layers of a VGG-16, input to output.
pub const CONV_LAYERS: [&str; 13] = [
    "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv4_1",
    "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3",
];

/// Concept categories in the order summaries list them.
pub const CATEGORY_ORDER: [&str; 3] = ["object", "part", "material"];

/// What [`dissect_classifier`] runs.
#[derive(Clone, Debug)]
pub struct ClassifierDissectOptions {
    /// The classifier (shipped name, model directory or checkpoint).
    pub model: String,
    /// Conv layers, or the single entry `all` for every conv layer.
    pub layers: Vec<String>,
    /// The segmenter (or `truth` for world scenes).
    pub segmenter: String,
    /// Images dissected over (world seeds `0..samples`, or the first pictures of the folder;
    /// `None` = 1000 world scenes or every picture).
    pub samples: Option<u64>,
    /// A folder of pictures instead of world scenes.
    pub images: Option<PathBuf>,
    /// Class labels of the pictures (`filename,class` lines).
    pub labels: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Images per batch.
    pub batch: usize,
    /// Quantile level of the unit thresholds.
    pub quantile: f64,
    /// IoU above which a unit is interpretable.
    pub miniou: f64,
    /// Where tensors live.
    pub device: Device,
    /// Whether to draw progress bars.
    pub progress: bool,
    /// Input side of a classifier checkpoint without a card (a card's size wins).
    pub input_size: Option<i64>,
    /// Side of the segmentation and of the upsampled activations.
    pub seg_size: i64,
    /// The entry of a TorchScript segmenter's dict or tuple output holding its label maps.
    pub segmenter_output: Option<String>,
}

impl ClassifierDissectOptions {
    /// Options with the dissection defaults (quantile 0.99, IoU cut-off 0.04, batch 32).
    pub fn new(model: &str, layers: &[&str], segmenter: &str, out: &Path) -> Self {
        Self {
            model: model.to_string(),
            layers: layers.iter().map(|s| s.to_string()).collect(),
            segmenter: segmenter.to_string(),
            samples: None,
            images: None,
            labels: None,
            out: out.to_path_buf(),
            batch: crate::dissect::DEFAULT_BATCH,
            quantile: crate::dissect::DEFAULT_QUANTILE,
            miniou: crate::dissect::DEFAULT_MINIOU,
            device: Device::Cpu,
            progress: false,
            input_size: None,
            seg_size: crate::dissect::DEFAULT_SEG_SIZE,
            segmenter_output: None,
        }
    }
}

/// Interpretable units of one concept at a layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConceptCount {
    /// Concept name.
    pub concept: String,
    /// Its category.
    pub category: String,
    /// Interpretable units whose best concept it is.
    pub units: usize,
}

/// One layer's interpretable units by category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerSummary {
    /// Layer name as given (e.g. `conv5_3`).
    pub layer: String,
    /// The network's own name of the layer (as in `dissect.json`, e.g. `features.28`).
    pub canonical: String,
    /// Units of the layer.
    pub units: usize,
    /// Interpretable units.
    pub interpretable: usize,
    /// Interpretable units per category (every category of the segmenter, zeros included).
    pub by_category: BTreeMap<String, usize>,
    /// Concepts with interpretable units, most units first.
    pub concepts: Vec<ConceptCount>,
    /// Mean best IoU of the interpretable units (0 when none).
    pub mean_iou: f64,
}

/// The classifier's accuracy on labelled pictures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelledAccuracy {
    /// Pictures with a label.
    pub labelled: usize,
    /// Multiclass accuracy.
    pub accuracy: f64,
    /// Per class: (class, labelled pictures, balanced one-vs-all accuracy).
    pub per_class: Vec<(String, i64, f64)>,
}

/// `summary.json`: the per-layer summary of a classifier dissection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DissectSummary {
    /// The classifier.
    pub model: String,
    /// What the images were.
    pub images: String,
    /// Images dissected over.
    pub samples: u64,
    /// The segmenter.
    pub segmenter: String,
    /// Quantile level and IoU cut-off.
    pub quantile: f64,
    /// IoU cut-off.
    pub miniou: f64,
    /// Categories of the segmenter's concepts, in summary order.
    pub categories: Vec<String>,
    /// Per layer, input to output.
    pub layers: Vec<LayerSummary>,
    /// What was done to the pictures (resizing, conversion).
    pub notes: Vec<String>,
    /// Accuracy on labelled pictures, when labels were given.
    pub accuracy: Option<LabelledAccuracy>,
    /// Seconds the dissection took.
    pub seconds: f64,
}

/// Expands `all` to [`CONV_LAYERS`] and checks every layer is a conv layer of `clf`.
pub fn resolve_conv_layers(clf: &Classifier, layers: &[String]) -> Result<Vec<String>> {
    let names: Vec<String> = if layers.len() == 1 && layers[0] == "all" {
        CONV_LAYERS.iter().map(|s| s.to_string()).collect()
    } else if layers.iter().any(|l| l == "all") {
        bail!("--layer all stands alone; give either all or a list of conv layers")
    } else {
        layers.to_vec()
    };
    if names.is_empty() {
        bail!("no layer given; use --layer conv5_3 (or all)");
    }
    for n in &names {
        clf.conv_cut(n)?;
    }
    Ok(names)
}

/// Categories present among `labels` (id 0, `none`, excluded): the known ones in
/// [`CATEGORY_ORDER`], then any others by name.
pub fn categories(labels: &[crate::segment::Label]) -> Vec<String> {
    let mut cats: Vec<String> = Vec::new();
    for l in labels.iter().skip(1) {
        if !cats.contains(&l.category) {
            cats.push(l.category.clone());
        }
    }
    let rank = |c: &String| {
        CATEGORY_ORDER
            .iter()
            .position(|k| k == c)
            .unwrap_or(CATEGORY_ORDER.len())
    };
    cats.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    cats
}

/// Counts each layer's interpretable units by category and concept (layers named as in the
/// result; [`dissect_classifier`] renames them to the names given).
pub fn summarize_layers(result: &DissectResult) -> Vec<LayerSummary> {
    let cats = categories(&result.labels);
    result
        .layers
        .iter()
        .map(|layer| {
            let mut by_category: BTreeMap<String, usize> =
                cats.iter().map(|c| (c.clone(), 0)).collect();
            let mut by_concept: BTreeMap<(String, String), usize> = BTreeMap::new();
            let mut iou_sum = 0.0;
            let interp: Vec<_> = layer.units.iter().filter(|u| u.interpretable).collect();
            for u in &interp {
                *by_category.entry(u.category.clone()).or_insert(0) += 1;
                *by_concept
                    .entry((u.label.clone(), u.category.clone()))
                    .or_insert(0) += 1;
                iou_sum += u.iou as f64;
            }
            let mut concepts: Vec<ConceptCount> = by_concept
                .into_iter()
                .map(|((concept, category), units)| ConceptCount {
                    concept,
                    category,
                    units,
                })
                .collect();
            concepts.sort_by(|a, b| b.units.cmp(&a.units).then(a.concept.cmp(&b.concept)));
            LayerSummary {
                layer: layer.layer.clone(),
                canonical: layer.layer.clone(),
                units: layer.units.len(),
                interpretable: interp.len(),
                by_category,
                concepts,
                mean_iou: if interp.is_empty() {
                    0.0
                } else {
                    iou_sum / interp.len() as f64
                },
            }
        })
        .collect()
}

/// Dissects the classifier's layers in one run and writes the summary next to the dissection's
/// own `dissect.json` and `report.html`.
pub fn dissect_classifier(
    opts: &ClassifierDissectOptions,
) -> Result<(DissectSummary, DissectResult)> {
    let clf = Classifier::load_sized(&opts.model, opts.input_size, opts.device)?;
    let layers = resolve_conv_layers(&clf, &opts.layers)?;
    if opts.labels.is_some() && opts.images.is_none() {
        bail!(
            "--labels names the classes of --images pictures; give --images DIR too (world scenes carry their own classes)"
        );
    }
    let folder = match &opts.images {
        Some(dir) => Some(Arc::new(ImageFolder::open(dir, clf.input_size as u32)?)),
        None => None,
    };
    let samples = match (&folder, opts.samples) {
        (Some(f), None) => f.len(),
        (Some(f), Some(n)) if n > f.len() => bail!(
            "--samples {n} exceeds the {} pictures of {}; give --samples {} or fewer",
            f.len(),
            f.dir.display(),
            f.len()
        ),
        (_, Some(n)) => n,
        (None, None) => 1000,
    };
    let accuracy = match (&folder, &opts.labels) {
        (Some(f), Some(path)) => {
            let labels = read_labels(path, f, &clf.classes)?;
            Some(labelled_accuracy(
                &clf,
                f,
                &labels,
                opts.batch,
                opts.device,
            )?)
        }
        _ => None,
    };
    let names: Vec<&str> = layers.iter().map(String::as_str).collect();
    let mut d = DissectOptions::new(&opts.model, &names, &opts.segmenter, samples, &opts.out);
    d.batch = opts.batch;
    d.quantile = opts.quantile;
    d.miniou = opts.miniou;
    d.device = opts.device;
    d.progress = opts.progress;
    d.input_size = Some(clf.input_size);
    d.seg_size = opts.seg_size;
    d.segmenter_output = opts.segmenter_output.clone();
    d.images = folder.clone().map(|f| f as Arc<dyn ImageSource>);
    let started = std::time::Instant::now();
    let result = match crate::dissect::run(&d)? {
        Outcome::Finished(r) => *r,
        other => {
            bail!("the dissection did not finish ({other:?}); run the same command again to resume")
        }
    };
    let summary = DissectSummary {
        model: clf.name.clone(),
        images: result.settings.common.images.clone(),
        samples,
        segmenter: opts.segmenter.clone(),
        quantile: result.quantile,
        miniou: result.miniou,
        categories: categories(&result.labels),
        layers: summarize_layers(&result)
            .into_iter()
            .zip(&layers)
            .map(|(l, name)| LayerSummary {
                layer: name.clone(),
                ..l
            })
            .collect(),
        notes: folder.map(|f| f.notes.clone()).unwrap_or_default(),
        accuracy,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_summary(&summary, &opts.out)?;
    Ok((summary, result))
}

/// Multiclass and per-class balanced accuracy of `clf` on the labelled pictures of `folder`.
pub fn labelled_accuracy(
    clf: &Classifier,
    folder: &ImageFolder,
    labels: &[Option<usize>],
    batch: usize,
    device: Device,
) -> Result<LabelledAccuracy> {
    let _guard = tch::no_grad_guard();
    let labelled: Vec<(u64, i64)> = labels
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|c| (i as u64, c as i64)))
        .collect();
    let classes = clf.classes.len() as i64;
    let mut counts: Option<ClassCounts> = None;
    for chunk in labelled.chunks(batch.max(1)) {
        let ids: Vec<u64> = chunk.iter().map(|c| c.0).collect();
        let truths = Tensor::from_slice(&chunk.iter().map(|c| c.1).collect::<Vec<_>>());
        let pred = clf.logits(&folder.images(&ids, device)?).argmax(1, false);
        let c = ClassCounts::from_predictions(&pred.to_device(Device::Cpu), &truths, classes)?;
        match counts.as_mut() {
            None => counts = Some(c),
            Some(all) => all.add(&c)?,
        }
    }
    let counts = counts.expect("read_labels refuses a file that labels nothing");
    let balanced = to_rows(&counts.balanced_accuracy())?.remove(0);
    let truth = Vec::<i64>::try_from(counts.truth.get(0))?;
    Ok(LabelledAccuracy {
        labelled: labelled.len(),
        accuracy: f64::try_from(counts.accuracy().get(0))?,
        per_class: clf
            .classes
            .iter()
            .zip(truth)
            .zip(balanced)
            .map(|((c, n), b)| (c.clone(), n, b))
            .collect(),
    })
}

/// Writes `summary.json`, `summary.svg` / `summary.png` (interpretable units per layer and
/// category) and `summary.html` (the chart inline above the same numbers as a table) into
/// `dir`.
pub fn write_summary(summary: &DissectSummary, dir: &Path) -> Result<()> {
    write_json(&dir.join("summary.json"), summary)?;
    let chart = summary_chart(summary)?;
    chart.save(&dir.join("summary"))?;
    atomic_write(
        &dir.join("summary.html"),
        summary_html(summary, &chart)?.as_bytes(),
    )?;
    Ok(())
}

/// Interpretable units per layer: one line per category and one for all of them.
pub fn summary_chart(summary: &DissectSummary) -> Result<Figure> {
    let names: Vec<String> = summary.layers.iter().map(|l| l.layer.clone()).collect();
    let mut chart = LineChart::new(
        &format!("{}: interpretable units by concept category", summary.model),
        Axis::categories("conv layer", &names),
        Axis::linear("interpretable units").range(
            0.0,
            summary
                .layers
                .iter()
                .map(|l| l.interpretable)
                .max()
                .unwrap_or(1)
                .max(1) as f64
                * 1.08,
        ),
    );
    for c in &summary.categories {
        let points: Vec<(f64, f64)> = summary
            .layers
            .iter()
            .enumerate()
            .map(|(j, l)| (j as f64, l.by_category.get(c).copied().unwrap_or(0) as f64))
            .collect();
        chart = chart.line(Line::new(c, &points));
    }
    let all: Vec<(f64, f64)> = summary
        .layers
        .iter()
        .enumerate()
        .map(|(j, l)| (j as f64, l.interpretable as f64))
        .collect();
    chart
        .line(Line::new("all categories", &all).colour(GREY).dashed())
        .note(&format!(
            "IoU > {} at the {} quantile",
            summary.miniou, summary.quantile
        ))
        .render()
}

/// The summary page: `chart` inline, then the numbers as a table.
pub fn summary_html(summary: &DissectSummary, chart: &Figure) -> Result<String> {
    use crate::dissect::report::escape;
    let mut h = String::new();
    h.push_str(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Classifier dissection</title>",
    );
    h.push_str(&page_font_css(&[chart], "")?);
    h.push_str("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}td.l,th.l{text-align:left}</style></head><body>");
    h.push_str(&format!(
        "<h1>{}: interpretable units per conv layer</h1><p>{} images ({}), segmenter {}, threshold quantile {}, IoU cut-off {}. <a href=\"report.html\">Full report</a>.</p>",
        escape(&summary.model),
        summary.samples,
        escape(&summary.images),
        escape(&summary.segmenter),
        summary.quantile,
        summary.miniou
    ));
    for note in &summary.notes {
        h.push_str(&format!("<p><em>{}</em></p>", escape(note)));
    }
    h.push_str(&chart.inline_svg());
    h.push_str("<table><tr><th class=\"l\">layer</th><th>units</th><th>interpretable</th>");
    for c in &summary.categories {
        h.push_str(&format!("<th>{}</th>", escape(c)));
    }
    h.push_str("<th>mean IoU</th><th class=\"l\">concepts (units)</th></tr>");
    for l in &summary.layers {
        h.push_str(&format!(
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td>",
            escape(&l.layer),
            l.units,
            l.interpretable
        ));
        for c in &summary.categories {
            h.push_str(&format!(
                "<td>{}</td>",
                l.by_category.get(c).copied().unwrap_or(0)
            ));
        }
        let concepts: Vec<String> = l
            .concepts
            .iter()
            .map(|c| format!("{} ({})", escape(&c.concept), c.units))
            .collect();
        h.push_str(&format!(
            "<td>{:.3}</td><td class=\"l\">{}</td></tr>",
            l.mean_iou,
            concepts.join(", ")
        ));
    }
    h.push_str("</table>");
    if let Some(a) = &summary.accuracy {
        h.push_str(&format!(
            "<h2>Accuracy on {} labelled pictures: {:.1}%</h2><table><tr><th class=\"l\">class</th><th>pictures</th><th>balanced accuracy</th></tr>",
            a.labelled,
            a.accuracy * 100.0
        ));
        for (c, n, b) in &a.per_class {
            h.push_str(&format!(
                "<tr><td class=\"l\">{}</td><td>{n}</td><td>{:.1}%</td></tr>",
                escape(c),
                b * 100.0
            ));
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::{LayerResult, UnitResult};
    use crate::segment::Label;

    fn unit(unit: usize, label: &str, category: &str, iou: f32, interpretable: bool) -> UnitResult {
        UnitResult {
            unit,
            label: label.into(),
            category: category.into(),
            iou,
            level: 1.0,
            interpretable,
            top: vec![],
        }
    }

    fn label(name: &str, category: &str) -> Label {
        Label {
            name: name.into(),
            category: category.into(),
        }
    }

    #[test]
    fn layers_are_counted_by_category_and_concept() {
        let labels = vec![
            label("none", "-"),
            label("grass", "material"),
            label("sky", "object"),
            label("door", "part"),
        ];
        let layer = LayerResult {
            layer: "conv5_3".into(),
            interpretable: 3,
            units: vec![
                unit(0, "sky", "object", 0.5, true),
                unit(1, "sky", "object", 0.3, true),
                unit(2, "grass", "material", 0.1, true),
                unit(3, "door", "part", 0.02, false),
            ],
            concepts: vec![],
            rankings: vec![],
            counts: BTreeMap::new(),
        };
        let result = DissectResult {
            settings: Default::default(),
            quantile: 0.99,
            miniou: 0.04,
            labels,
            layers: vec![layer],
            dir: PathBuf::new(),
            timings: vec![],
        };
        assert_eq!(categories(&result.labels), ["object", "part", "material"]);
        let s = summarize_layers(&result);
        assert_eq!(s[0].interpretable, 3);
        assert_eq!(s[0].units, 4);
        assert_eq!(s[0].by_category["object"], 2);
        assert_eq!(s[0].by_category["part"], 0);
        assert_eq!(s[0].by_category["material"], 1);
        assert_eq!(s[0].concepts[0].concept, "sky");
        assert_eq!(s[0].concepts[0].units, 2);
        assert!((s[0].mean_iou - 0.3).abs() < 1e-6);
    }

    #[test]
    fn all_expands_to_every_conv_layer_and_other_layers_are_refused() {
        let (_vs, clf) = super::super::model::testnet::tiny(3);
        let all = resolve_conv_layers(&clf, &["all".into()]).unwrap();
        assert_eq!(all.len(), 13);
        assert_eq!(all[0], "conv1_1");
        assert_eq!(all[12], "conv5_3");
        let err = resolve_conv_layers(&clf, &["fc6".into()]).unwrap_err();
        assert!(format!("{err:#}").contains("not a conv layer"), "{err:#}");
        let err = resolve_conv_layers(&clf, &["all".into(), "conv5_3".into()]).unwrap_err();
        assert!(format!("{err:#}").contains("stands alone"), "{err:#}");
    }
}
