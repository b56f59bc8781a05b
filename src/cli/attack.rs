//! `gandissect attack`: a targeted adversarial attack (PGD or Carlini-Wagner) and the trace of
//! its unit changes.

use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::attack::cw::CwOptions;
use gandissect::attack::pgd::PgdOptions;
use gandissect::attack::run::{DEFAULT_BATCH, DEFAULT_TRACE_LAYER};
use gandissect::attack::{AttackOptions, Method, attack, write_attack};
use gandissect::classify::importance_source::DEFAULT_RANKING_SAMPLES;
use gandissect::classify::{Classifier, ImportanceSource};
use gandissect::zoo;
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
enum AttackMethod {
    /// Targeted L-infinity projected gradient descent.
    Pgd,
    /// Targeted Carlini-Wagner L2.
    Cw,
}

impl AttackMethod {
    fn name(self) -> &'static str {
        match self {
            Self::Pgd => "PGD",
            Self::Cw => "CW-L2",
        }
    }
}

#[derive(Args)]
pub struct AttackArgs {
    /// A shipped classifier name, a model directory or a VGG-16 checkpoint.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// Input side of a classifier checkpoint without a model card (a card's size wins).
    #[arg(long, value_name = "PIXELS")]
    input_size: Option<i64>,
    /// Target class name.
    #[arg(long)]
    target: String,
    /// The attack.
    #[arg(long, value_enum, default_value = "pgd")]
    method: AttackMethod,
    /// Images to attack (held-out world scenes neither of nor predicted as the target).
    #[arg(long, default_value_t = 64)]
    samples: usize,
    /// PGD: L-infinity radius on the [0, 1] pixel scale.
    #[arg(long, default_value_t = PgdOptions::default().epsilon)]
    epsilon: f64,
    /// PGD: step size on the [0, 1] pixel scale.
    #[arg(long, default_value_t = PgdOptions::default().step)]
    step: f64,
    /// PGD: steps (default 40); CW: Adam iterations per search step (default 60).
    #[arg(long)]
    iterations: Option<usize>,
    /// CW: binary-search steps over the constant.
    #[arg(long, default_value_t = CwOptions::default().search_steps)]
    search_steps: usize,
    /// CW: starting constant.
    #[arg(long, default_value_t = CwOptions::default().initial_const)]
    initial_const: f64,
    /// CW: Adam learning rate.
    #[arg(long, default_value_t = CwOptions::default().lr)]
    lr: f64,
    /// CW: required logit margin of the target.
    #[arg(long, default_value_t = CwOptions::default().confidence)]
    confidence: f64,
    /// Layer whose units are traced (post-ReLU).
    #[arg(long, default_value = DEFAULT_TRACE_LAYER)]
    layer: String,
    /// importance.json from `classify importance` ranking the traced layer's units; without it
    /// the ranking is measured here on the training split.
    #[arg(long)]
    importance: Option<PathBuf>,
    /// Training-split scenes for the ranking when no --importance is given.
    #[arg(long, default_value_t = DEFAULT_RANKING_SAMPLES)]
    importance_samples: u64,
    /// Images per attack batch.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: usize,
    /// Output directory.
    #[arg(long, default_value = "out/attack")]
    out: PathBuf,
}

impl AttackArgs {
    fn method(&self) -> Method {
        match self.method {
            AttackMethod::Pgd => Method::Pgd(PgdOptions {
                epsilon: self.epsilon,
                step: self.step,
                iterations: self.iterations.unwrap_or(PgdOptions::default().iterations),
            }),
            AttackMethod::Cw => Method::Cw(CwOptions {
                search_steps: self.search_steps,
                iterations: self.iterations.unwrap_or(CwOptions::default().iterations),
                lr: self.lr,
                initial_const: self.initial_const,
                confidence: self.confidence,
            }),
        }
    }
}

impl Run for AttackArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let clf = Classifier::load_sized(&self.model, self.input_size, ctx.device)?;
        clf.class_index(&self.target)?;
        let mut opts = AttackOptions::new(&self.target, self.method(), self.samples, ctx.device);
        opts.layer = self.layer.clone();
        opts.batch = self.batch;
        let imp = ImportanceSource::new(self.importance.clone(), self.importance_samples).report(
            &clf,
            &opts.ranking_layer(),
            ctx.device,
            true,
        )?;
        let (report, images) = attack(&clf, &opts, &imp)?;
        write_attack(&clf, &report, &images, &self.out)?;
        for n in &report.notes {
            println!("note: {n}");
        }
        let norm = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        println!(
            "{} towards {}: {}/{} succeeded ({:.1}%) in {:.1} s; mean L2 {}, mean Linf {} (on [0,1] pixels)",
            self.method.name(),
            report.target,
            report.successes,
            report.images,
            100.0 * report.success_rate,
            report.seconds,
            norm(report.mean_l2),
            norm(report.mean_linf)
        );
        if let Some(t) = &report.trace {
            println!(
                "|delta peak| at {} over {} images (mean [99% CI]): target top-4 {:.3} [{:.3}, {:.3}], source top-4 {:.3} [{:.3}, {:.3}], others {:.3} [{:.3}, {:.3}]",
                t.layer,
                t.images,
                t.groups.target.mean,
                t.groups.target.lo,
                t.groups.target.hi,
                t.groups.source.mean,
                t.groups.source.lo,
                t.groups.source.hi,
                t.groups.rest.mean,
                t.groups.rest.lo,
                t.groups.rest.hi
            );
        }
        println!("→ {}", self.out.display());
        Ok(())
    }
}
