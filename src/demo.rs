//! The demonstration on the default models: world scenes, generated scenes, and a dissection of
//! the generator's layer4 with its report.

use crate::dissect::{self, DissectOptions, Outcome};
use crate::generate::{Latents, generate};
use crate::zoo;
use crate::zsample::DEFAULT_STREAM_SEED;
use anyhow::{Result, bail};
use std::path::Path;
use tch::Device;

/// Runs the demonstration into `out` and returns a short summary for the terminal.
pub fn run(out: &Path, samples: u64, device: Device) -> Result<String> {
    let mut lines = Vec::new();
    let world = crate::world::write_samples(0..32, &out.join("world"))?;
    lines.push(format!(
        "world: {} scenes with label maps → {}",
        world.scenes,
        out.join("world/contact_sheet.png").display()
    ));

    let (g, source) = zoo::load_generator(zoo::DEFAULT_GENERATOR, device)?;
    let latents = Latents::Ids {
        stream: DEFAULT_STREAM_SEED,
        ids: (0..32).collect(),
    };
    let written = generate(&g, &latents, &out.join("generated"), 8, Some(8))?;
    lines.push(format!(
        "generated: 32 scenes from {} → {}",
        source.name,
        written.last().unwrap().display()
    ));

    let mut opts = DissectOptions::new(
        &source.name,
        &["layer4"],
        crate::segment::DEFAULT_SEGMENTER,
        samples,
        &out.join("dissect"),
    );
    opts.device = device;
    if source.dir.is_none() {
        opts.model = "random:0".into();
    }
    let result = match dissect::run(&opts)? {
        Outcome::Finished(r) => r,
        _ => bail!("the demo dissection did not finish; run the demo again to resume it"),
    };
    let layer = result.layer("layer4")?;
    let mut counts: Vec<(&String, &usize)> = layer.counts.iter().filter(|(_, n)| **n > 0).collect();
    counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let list: Vec<String> = counts.iter().map(|(c, n)| format!("{c} {n}")).collect();
    lines.push(format!(
        "dissection of layer4 over {samples} images: {} of {} units interpretable ({}) → {}",
        layer.interpretable,
        layer.units.len(),
        if list.is_empty() {
            "none".to_string()
        } else {
            list.join(", ")
        },
        out.join("dissect/report.html").display()
    ));
    Ok(lines.join("\n"))
}
