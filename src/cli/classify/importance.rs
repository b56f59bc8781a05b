//! `gandissect classify importance`: per-class unit importance by single-unit ablation, and the
//! remove/keep-top-k curves.

use crate::cli::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::classify::importance::DEFAULT_KS;
use gandissect::classify::sweep::SweepOptions;
use gandissect::classify::{Classifier, ImportanceOptions, importance, write_importance};
use gandissect::zoo;
use std::path::PathBuf;

#[derive(Args)]
pub struct ImportanceArgs {
    /// A shipped classifier name, a model directory or a VGG-16 checkpoint.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// Input side of a classifier checkpoint without a model card (a card's size wins).
    #[arg(long, value_name = "PIXELS")]
    input_size: Option<i64>,
    /// The conv layer whose units are ablated.
    #[arg(long, default_value = "conv5_3")]
    layer: String,
    /// Training-split scenes the units are ranked on (world seeds from 100000).
    #[arg(long, default_value_t = 3000)]
    samples: u64,
    /// Held-out scenes the curves are measured on (world seeds from 200000).
    #[arg(long, default_value_t = 3000)]
    heldout: u64,
    /// k values of the remove/keep curves (comma-separated; those below the unit count are used).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_KS)]
    ks: Vec<usize>,
    /// Images per prefix forward.
    #[arg(long, default_value_t = SweepOptions::default().batch)]
    batch: usize,
    /// Ablated copies per suffix forward.
    #[arg(long, default_value_t = SweepOptions::default().copies)]
    copies: usize,
    /// Output directory.
    #[arg(long, default_value = "out/importance")]
    out: PathBuf,
}

impl Run for ImportanceArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let clf = Classifier::load_sized(&self.model, self.input_size, ctx.device)?;
        let mut opts = ImportanceOptions::new(&self.layer, self.samples, self.heldout, ctx.device);
        opts.ks = self.ks;
        opts.sweep = SweepOptions {
            batch: self.batch,
            copies: self.copies,
        };
        opts.progress = true;
        let report = importance(&clf, &opts)?;
        write_importance(&report, &self.out)?;
        for n in &report.notes {
            println!("note: {n}");
        }
        println!(
            "{} {}: {} units ablated one at a time on {} scenes in {:.1} s (prefix {:.1} s, stacked suffixes {:.1} s); curves on {} scenes in {:.1} s",
            report.model,
            report.layer,
            report.units,
            report.sweep.images,
            report.sweep.seconds,
            report.sweep.timing.prefix,
            report.sweep.timing.suffix,
            self.heldout,
            report.curves_seconds
        );
        for line in report.summary_lines() {
            println!("{line}");
        }
        println!("→ {}", self.out.display());
        Ok(())
    }
}
