//! `gandissect analyze ablation-curve`: a layer's units removed cumulatively in several orders,
//! and Gaussian noise of growing size, against held-out accuracy; one or several classifiers
//! (a run's saved training states too), compared on one chart. Given a generator, the same
//! against the segmenter's label shares of its scenes ([`super::generator_curve`]).

use crate::cli::{Context, Run};
use anyhow::{Result, bail};
use clap::Args;
use gandissect::analysis::ablation_curve::{
    AblationCurveReport, CurveOptions, DEFAULT_DRAWS, DEFAULT_FRACTIONS, DEFAULT_NOISE, Split,
    ablation_curves, comparison_chart, write_curves,
};
use gandissect::analysis::selectivity::read_unit_iou;
use gandissect::classify::Classifier;
use gandissect::fsutil::write_json;
use gandissect::train::classifier::{
    is_kept_checkpoint, is_training_state, load_kept_checkpoint, load_training_state,
};
use gandissect::train::label_noise::TrainingSet;
use gandissect::zoo;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct AblationCurveArgs {
    /// Classifiers: shipped names, model directories, VGG-16 checkpoints, a world-vgg16 run's
    /// saved training states or the weights it kept in checkpoints/ (repeat to compare several);
    /// or one generator (world-proggan, a model directory or a ProGAN checkpoint), measured by
    /// the label shares --segmenter sees in its scenes.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    pub(super) model: Vec<String>,
    /// A label per --model for the comparison (default: the model as given).
    #[arg(long)]
    pub(super) label: Vec<String>,
    /// The conv layer whose units are removed (default: conv5_3; a generator's: layer4).
    #[arg(long)]
    pub(super) layer: Option<String>,
    /// Which scenes the curves are on: held-out world scenes, or a label-noise run's own
    /// training set scored against the labels it was trained with (scores and curves both;
    /// --model must then be the run's folder, its training state or one of its checkpoints/,
    /// and --samples / --heldout are not used).
    #[arg(long, value_enum, default_value_t = SplitArg::Heldout)]
    pub(super) split: SplitArg,
    /// Training-split scenes the unit scores are measured on (world seeds from 100000; default
    /// 1000); a generator's: images the mean activations are measured on (ids 0..N; default
    /// 200).
    #[arg(long)]
    pub(super) samples: Option<u64>,
    /// Held-out scenes the curves are measured on (world seeds from 200000; default 1000); a
    /// generator's: image ids from 200000 (default 200).
    #[arg(long)]
    pub(super) heldout: Option<u64>,
    /// Fractions of the units removed.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_FRACTIONS)]
    pub(super) fractions: Vec<f64>,
    /// Random orders drawn.
    #[arg(long, default_value_t = DEFAULT_DRAWS)]
    pub(super) draws: usize,
    /// Seed of the random orders and the noise.
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// Noise levels: standard deviation in units of each unit's own (0 alone: no noise curve).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_NOISE)]
    pub(super) noise: Vec<f64>,
    /// Per-unit IoU to order by: a dissect.json of this layer, a JSON array, or
    /// {"units": [{"unit", "iou"}]} (one model only).
    #[arg(long)]
    pub(super) iou: Option<PathBuf>,
    /// Generator only: a dissection directory of the generator at --layer whose IoU orders
    /// the units (`gandissect dissect --model M --layer L --out DIR`).
    #[arg(long, conflicts_with = "iou")]
    pub(super) dissection: Option<PathBuf>,
    /// Generator only: the segmenter (name, directory or TorchScript file) whose label shares
    /// measure the scenes.
    #[arg(long, default_value = gandissect::segment::DEFAULT_SEGMENTER)]
    pub(super) segmenter: String,
    /// Output directory (one folder per model when several are given).
    #[arg(long, default_value = "out/ablation-curve")]
    pub(super) out: PathBuf,
}

/// The `--split` values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    /// Held-out world scenes (seeds from 200000).
    Heldout,
    /// The label-noise run's own training set.
    Training,
}

/// The generator the first of `models` names, if it names one (a generator among several models
/// is refused); `None` otherwise, and the classifier path loads the models and reports their
/// errors.
fn generator_of(
    models: &[String],
    device: tch::Device,
) -> Result<Option<(gandissect::nets::proggan::ProGan, zoo::ModelSource)>> {
    let Some(first) = models.first() else {
        return Ok(None);
    };
    let Ok(g) = zoo::load_generator(first, device) else {
        return Ok(None);
    };
    if models.len() > 1 {
        bail!(
            "{first} is a generator: the generator side measures one model at a time; give it as \
             the only --model"
        );
    }
    Ok(Some(g))
}

/// A classifier by name, directory, checkpoint, training state or a run's kept checkpoint.
pub fn load(spec: &str, device: tch::Device) -> Result<Classifier> {
    let path = Path::new(spec);
    if path.is_file() && is_training_state(path) {
        return load_training_state(path, device);
    }
    if is_kept_checkpoint(path) {
        return load_kept_checkpoint(path, device);
    }
    Classifier::load(spec, device)
}

fn print_summary(label: &str, r: &AblationCurveReport) {
    println!(
        "{label} {}: {} units, {} split, accuracy {:.3} (chance {:.3}); all removed → {}",
        r.layer,
        r.units,
        r.split,
        r.baseline_accuracy,
        r.chance,
        r.all_removed_prediction.as_deref().unwrap_or("-")
    );
    let fmt = |v: f64| format!("{v:.3}");
    let head: Vec<String> = r.curves[0]
        .points
        .iter()
        .map(|p| format!("{:>6}", fmt(p.x)))
        .collect();
    println!(
        "  {:<12} {}  robustness  above chance",
        "removed",
        head.join(" ")
    );
    for c in r.curves.iter().chain(r.noise.iter()) {
        let row: Vec<String> = c
            .points
            .iter()
            .map(|p| format!("{:>6}", fmt(p.accuracy)))
            .collect();
        println!(
            "  {:<12} {}  {:>10.3}  {:>12.3}",
            c.order,
            row.join(" "),
            c.robustness,
            c.robustness_above_chance
        );
    }
}

impl Run for AblationCurveArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        if let Some((generator, source)) = generator_of(&self.model, ctx.device)? {
            return super::generator_curve::run(&self, generator, &source.name, ctx);
        }
        if self.dissection.is_some() {
            bail!(
                "--dissection belongs to a generator; give a classifier's IoU with --iou dissect.json"
            );
        }
        let layer = self.layer.clone().unwrap_or_else(|| "conv5_3".into());
        let (samples, heldout) = (self.samples.unwrap_or(1000), self.heldout.unwrap_or(1000));
        if !self.label.is_empty() && self.label.len() != self.model.len() {
            bail!(
                "give one --label per --model ({} models, {} labels)",
                self.model.len(),
                self.label.len()
            );
        }
        if self.iou.is_some() && self.model.len() > 1 {
            bail!("--iou belongs to one model's layer; give one --model with it");
        }
        let several = self.model.len() > 1;
        let mut reports = Vec::new();
        for (i, spec) in self.model.iter().enumerate() {
            let label = self.label.get(i).cloned().unwrap_or_else(|| spec.clone());
            let clf = load(spec, ctx.device)?;
            let mut opts = CurveOptions::new(&layer, samples, heldout, ctx.device);
            opts.fractions = self.fractions.clone();
            opts.draws = self.draws;
            opts.seed = self.seed;
            opts.noise = self.noise.clone();
            opts.progress = true;
            if self.split == SplitArg::Training {
                let (set, source) = TrainingSet::of_run(Path::new(spec))?;
                eprintln!(
                    "{label}: training set from {} ({} scenes, label noise {})",
                    source.display(),
                    set.len(),
                    set.noise.fraction
                );
                opts.split = Split::Training(set);
            }
            if let Some(p) = &self.iou {
                let cut = clf.conv_cut(&layer)?;
                let units = clf.units(&cut) as usize;
                opts.iou = Some(read_unit_iou(p, units, cut.layer_name())?);
            }
            let report = ablation_curves(&clf, &opts)?;
            let dir = if several {
                self.out.join(format!("model{i}"))
            } else {
                self.out.clone()
            };
            write_curves(&report, &dir)?;
            print_summary(&label, &report);
            reports.push((label, report));
        }
        if several {
            comparison_chart(&reports)?.save(&self.out.join("comparison"))?;
            let summary: Vec<serde_json::Value> = reports
                .iter()
                .enumerate()
                .map(|(i, (label, r))| {
                    serde_json::json!({
                        "label": label, "model": self.model[i], "dir": format!("model{i}"),
                        "split": r.split, "curves_on": r.curves_on, "chance": r.chance,
                        "accuracy": r.baseline_accuracy,
                        "robustness": r.curves.iter().chain(r.noise.iter()).map(|c| (c.order.clone(), serde_json::json!(c.robustness)))
                            .collect::<serde_json::Map<String, serde_json::Value>>(),
                        "robustness_above_chance": r.curves.iter().chain(r.noise.iter())
                            .map(|c| (c.order.clone(), serde_json::json!(c.robustness_above_chance)))
                            .collect::<serde_json::Map<String, serde_json::Value>>(),
                    })
                })
                .collect();
            write_json(&self.out.join("comparison.json"), &summary)?;
        }
        println!("→ {}", self.out.display());
        Ok(())
    }
}
