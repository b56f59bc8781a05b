//! `gandissect analyze populations`: a layer's units clustered by activation and by ablation
//! profile, each population's members, preferences and joint ablation effect, and how the
//! single-unit indicators predict it.

use super::ablation_curve::load;
use crate::cli::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::analysis::populations::{
    Clustering, PopulationOptions, populations, write_populations,
};
use gandissect::zoo;
use std::path::PathBuf;

#[derive(Args)]
pub struct PopulationsArgs {
    /// A shipped classifier name, a model directory, a VGG-16 checkpoint or a world-vgg16
    /// run's saved training state.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// The conv layer.
    #[arg(long, default_value = "conv5_3")]
    layer: String,
    /// Training-split scenes the profiles are measured on (world seeds from 100000).
    #[arg(long, default_value_t = 1000)]
    samples: u64,
    /// Held-out scenes the populations are ablated on (world seeds from 200000).
    #[arg(long, default_value_t = 1000)]
    heldout: u64,
    /// Populations per clustering (default: the cut with the largest mean silhouette, 4 to 12).
    #[arg(long)]
    populations: Option<usize>,
    /// Output directory.
    #[arg(long, default_value = "out/populations")]
    out: PathBuf,
}

fn print_clustering(c: &Clustering) {
    println!("by {} profile: {}", c.profile, c.count_rule);
    for (i, p) in c.populations.iter().enumerate() {
        let classes: Vec<&str> = p.top_classes.iter().map(|t| t.0.as_str()).collect();
        println!(
            "  {i:>2}: {:>3} units, responds to {:<40} ablated: accuracy drop {:.3}, {} {:.3}; flagged by {}{}",
            p.units.len(),
            classes.join(", "),
            p.accuracy_drop,
            p.most_hurt.0,
            p.most_hurt.1,
            if p.flagged_by.is_empty() {
                "none".to_string()
            } else {
                p.flagged_by.join(", ")
            },
            if c.unflagged.contains(&i) {
                "  ← no single indicator flags it"
            } else {
                ""
            }
        );
    }
    let rho = |r: &Option<f64>| r.map_or("n/a".to_string(), |r| format!("{r:.3}"));
    for ((n, p), (_, u)) in c.spearman_population.iter().zip(&c.spearman_unit) {
        println!(
            "  Spearman({n}, population effect): over populations {}, over units {}",
            rho(p),
            rho(u)
        );
    }
}

impl Run for PopulationsArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let clf = load(&self.model, ctx.device)?;
        let mut opts = PopulationOptions::new(&self.layer, self.samples, self.heldout, ctx.device);
        opts.populations = self.populations;
        opts.progress = true;
        let report = populations(&clf, &opts)?;
        write_populations(&report, &self.out)?;
        println!(
            "{} {}: {} units, held-out accuracy {:.3} ({:.0} s)",
            report.model, report.layer, report.units, report.baseline_accuracy, report.seconds
        );
        print_clustering(&report.by_activation);
        print_clustering(&report.by_ablation);
        println!("→ {}", self.out.join("populations.html").display());
        Ok(())
    }
}
