//! `gandissect analyze selectivity`: the class selectivity index per unit against importance
//! (and IoU).

use crate::cli::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::analysis::selectivity::{read_unit_iou, selectivity_analysis, write_selectivity};
use gandissect::classify::importance::HELDOUT_SPLIT_START;
use gandissect::classify::sweep::{ImportanceMeasure, world_batches};
use gandissect::classify::{Classifier, ImportanceSource};
use gandissect::zoo;
use std::path::PathBuf;

#[derive(Args)]
pub struct SelectivityArgs {
    /// A shipped classifier name, a model directory or a VGG-16 checkpoint.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// Input side of a classifier checkpoint without a model card (a card's size wins).
    #[arg(long, value_name = "PIXELS")]
    input_size: Option<i64>,
    /// The conv layer (activations are taken post-ReLU).
    #[arg(long, default_value = "conv5_3")]
    layer: String,
    /// Held-out scenes the class means are measured on (world seeds from 200000).
    #[arg(long, default_value_t = 3000)]
    samples: u64,
    /// importance.json from `classify importance` for the same layer; without it the
    /// single-unit sweep is run here on the training split.
    #[arg(long)]
    importance: Option<PathBuf>,
    /// Training-split scenes for the sweep when no --importance is given.
    #[arg(long, default_value_t = 3000)]
    importance_samples: u64,
    /// Per-unit IoU: a dissect.json of this layer, a JSON array, or {"units": [{"unit", "iou"}]}.
    #[arg(long)]
    iou: Option<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "out/selectivity")]
    out: PathBuf,
}

impl Run for SelectivityArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let device = ctx.device;
        let clf = Classifier::load_sized(&self.model, self.input_size, device)?;
        let imp = ImportanceSource::new(self.importance.clone(), self.importance_samples).report(
            &clf,
            &self.layer,
            device,
            true,
        )?;
        let iou = match &self.iou {
            Some(p) => {
                let layer = clf.conv_cut(&self.layer)?.layer_name().to_string();
                Some(read_unit_iou(p, imp.units as usize, &layer)?)
            }
            None => None,
        };
        let seeds = HELDOUT_SPLIT_START..HELDOUT_SPLIT_START + self.samples;
        let label = format!("{}..{}", seeds.start, seeds.end);
        let report = selectivity_analysis(
            &clf,
            &self.layer,
            &label,
            world_batches(&clf, seeds, 50, device)?,
            &imp,
            iou,
        )?;
        write_selectivity(&report, &self.out)?;
        let rho = |r: Option<f64>| r.map_or("n/a (constant)".to_string(), |r| format!("{r:.3}"));
        let mean_sel =
            report.selectivity.iter().sum::<f64>() / report.selectivity.len().max(1) as f64;
        if report.importance_measure == ImportanceMeasure::LogProbDrop {
            println!(
                "note: no single unit changes accuracy, so importance is the drop of the true \
                 class's log-probability"
            );
        }
        println!(
            "{} {}: mean selectivity {:.3}; Spearman(selectivity, importance) = {}",
            report.model,
            report.layer,
            mean_sel,
            rho(report.spearman_selectivity_importance)
        );
        if report.iou.is_some() {
            println!(
                "Spearman(IoU, importance) = {}; Spearman(IoU, selectivity) = {}",
                rho(report.spearman_iou_importance),
                rho(report.spearman_iou_selectivity)
            );
        }
        println!("→ {}", self.out.display());
        Ok(())
    }
}
