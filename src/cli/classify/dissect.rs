//! `gandissect classify dissect`: dissection of a classifier's conv layers with a per-layer
//! summary by concept category.

use crate::cli::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::classify::dissection::{ClassifierDissectOptions, dissect_classifier};
use gandissect::dissect::{DEFAULT_BATCH, DEFAULT_MINIOU, DEFAULT_QUANTILE, DEFAULT_SEG_SIZE};
use gandissect::zoo;
use std::path::PathBuf;

#[derive(Args)]
pub struct ClassifyDissectArgs {
    /// A shipped classifier name, a model directory or a VGG-16 checkpoint.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// Conv layers (comma-separated, e.g. conv5_3 or conv4_3,conv5_3), or all for conv1_1…conv5_3.
    #[arg(long, value_delimiter = ',', default_value = "conv5_3")]
    layer: Vec<String>,
    /// Segmenter (name, directory or TorchScript file), or truth for world scenes.
    #[arg(long, default_value = gandissect::segment::DEFAULT_SEGMENTER)]
    segmenter: String,
    /// Images dissected over (default: 1000 world scenes, or every picture of --images).
    #[arg(long)]
    samples: Option<u64>,
    /// A folder of PNG/JPEG pictures instead of world scenes (centre-cropped, resized to the
    /// classifier's input and converted to RGB, with a note).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Class labels of the --images pictures: a CSV of filename,class lines.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Images per batch.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: usize,
    /// Quantile level of the unit thresholds.
    #[arg(long, default_value_t = DEFAULT_QUANTILE)]
    quantile: f64,
    /// IoU above which a unit counts as interpretable.
    #[arg(long, default_value_t = DEFAULT_MINIOU)]
    miniou: f64,
    /// Output directory.
    #[arg(long, default_value = "out/classify-dissect")]
    out: PathBuf,
    /// Input side of a classifier checkpoint without a model card (a card's size wins).
    #[arg(long, value_name = "PIXELS")]
    input_size: Option<i64>,
    /// Side of the segmentation and of the upsampled activations (label maps of another size
    /// are resized, nearest neighbour).
    #[arg(long, default_value_t = DEFAULT_SEG_SIZE)]
    seg_size: i64,
    /// The entry of a TorchScript segmenter's dict or tuple output holding its label maps or
    /// scores (a dict key or a tuple index).
    #[arg(long, value_name = "NAME")]
    segmenter_output: Option<String>,
}

impl Run for ClassifyDissectArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let layers: Vec<&str> = self.layer.iter().map(String::as_str).collect();
        let mut o = ClassifierDissectOptions::new(&self.model, &layers, &self.segmenter, &self.out);
        o.samples = self.samples;
        o.images = self.images;
        o.labels = self.labels;
        o.batch = self.batch;
        o.quantile = self.quantile;
        o.miniou = self.miniou;
        o.device = ctx.device;
        o.progress = true;
        o.input_size = self.input_size;
        o.seg_size = self.seg_size;
        o.segmenter_output = self.segmenter_output;
        let (s, _) = dissect_classifier(&o)?;
        for note in &s.notes {
            println!("note: {note}");
        }
        print!("{:<8} {:>5} {:>6}", "layer", "units", "interp");
        for c in &s.categories {
            print!(" {c:>8}");
        }
        println!("  top concepts");
        for l in &s.layers {
            print!("{:<8} {:>5} {:>6}", l.layer, l.units, l.interpretable);
            for c in &s.categories {
                print!(" {:>8}", l.by_category.get(c).copied().unwrap_or(0));
            }
            let top: Vec<String> = l
                .concepts
                .iter()
                .take(4)
                .map(|c| format!("{} {}", c.concept, c.units))
                .collect();
            println!("  {}", top.join(", "));
        }
        if let Some(acc) = &s.accuracy {
            println!(
                "accuracy on {} labelled pictures: {:.1}%",
                acc.labelled,
                acc.accuracy * 100.0
            );
        }
        println!(
            "{} images in {:.1} s → {}/summary.html, report.html",
            s.samples,
            s.seconds,
            self.out.display()
        );
        Ok(())
    }
}
