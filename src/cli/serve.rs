//! `gandissect serve`: the painting page, over one generator or every dissection under a folder.

use super::{Context, Run};
use anyhow::Result;
use clap::Args;
use gandissect::edit::DissectionSource;
use gandissect::edit::units_source::{DEFAULT_CACHE_DIR, DEFAULT_CACHE_SAMPLES};
use gandissect::serve::request::{DEFAULT_MAX_ID, DEFAULT_MAX_STROKES};
use gandissect::serve::{DEFAULT_ADDR, ProjectSource, ServeOptions, run};
use gandissect::zoo;
use std::path::PathBuf;

#[derive(Args)]
pub struct ServeArgs {
    /// The generator: shipped name, model directory, checkpoint, or random[:SEED].
    #[arg(long, default_value = zoo::DEFAULT_GENERATOR)]
    model: String,
    /// Segmenter (name, directory or TorchScript file) for the unit rankings and the verdicts.
    #[arg(long, default_value = gandissect::segment::DEFAULT_SEGMENTER)]
    segmenter: String,
    /// Layers painted (comma-separated or repeated; listed in natural order, the first given
    /// is the default).
    #[arg(long, value_delimiter = ',', default_value = gandissect::edit::DEFAULT_LAYER)]
    layer: Vec<String>,
    /// A dissection directory of the model covering the layers (default: one run once per
    /// layer and cached).
    #[arg(long)]
    dissection: Option<PathBuf>,
    /// Serve every generator dissection found up to two levels below DIR as a project, instead
    /// of --model.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["model", "dissection", "layer"])]
    data: Option<PathBuf>,
    /// Where dissections run on the fly are cached.
    #[arg(long, default_value = DEFAULT_CACHE_DIR)]
    dissect_cache: PathBuf,
    /// Images a dissection run on the fly covers.
    #[arg(long, default_value_t = DEFAULT_CACHE_SAMPLES)]
    dissect_samples: u64,
    /// Address to listen on; anything but a loopback address lets other machines in.
    #[arg(long, default_value = DEFAULT_ADDR)]
    addr: std::net::SocketAddr,
    /// Open the page in the desktop's browser.
    #[arg(long)]
    open: bool,
    /// Quantile of each unit's activation that drawing sets it to.
    #[arg(long, default_value_t = gandissect::edit::plan::DEFAULT_VALUE_QUANTILE)]
    value_quantile: f64,
    /// Image ids served: 0..N.
    #[arg(long, default_value_t = DEFAULT_MAX_ID)]
    max_id: u64,
    /// Strokes one painting may hold.
    #[arg(long, default_value_t = DEFAULT_MAX_STROKES)]
    max_strokes: usize,
}

impl Run for ServeArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let projects = match self.data {
            Some(dir) => ProjectSource::Data(dir),
            None => ProjectSource::Model {
                model: self.model,
                segmenter: self.segmenter,
                layers: self.layer,
                dissection: DissectionSource {
                    dir: self.dissection,
                    cache_root: self.dissect_cache,
                    samples: self.dissect_samples,
                },
            },
        };
        let mut o = ServeOptions::new(projects);
        o.addr = self.addr;
        o.value_quantile = self.value_quantile;
        o.device = ctx.device;
        o.max_strokes = self.max_strokes;
        o.limits.max_id = self.max_id;
        run(&o, self.open)
    }
}
