//! The demonstration on the default models: world scenes, generated scenes, a dissection of
//! the generator's layer4 with its report, and, on a trained generator, trees painted out of
//! one scene and the tree-removal curve.

use crate::dissect::{self, DissectOptions, Labeller, Model};
use crate::edit::ablation::{AblationOptions, UnitRanking, run_ablation, write_ablation};
use crate::edit::scene::{ScenePaths, write_scene};
use crate::edit::{Action, PlanOptions, ScenePlan, Session, SessionOptions};
use crate::generate::{Latents, generate};
use crate::nets::proggan::ProGan;
use crate::segment::{DEFAULT_SEGMENTER, Segmenter, load_segmenter};
use crate::zoo;
use crate::zsample::DEFAULT_STREAM_SEED;
use anyhow::{Context, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Images the demo dissection runs over by default.
pub const DEFAULT_SAMPLES: u64 = 500;

/// The scene the demonstration paints, and the concept it removes from its left half.
const DEMO_SEED: u64 = 129;
const DEMO_CONCEPT: &str = "tree";

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

    // one generator and one segmenter, loaded once, serve the dissection and the painting
    let name = if source.dir.is_none() {
        "random:0".to_string()
    } else {
        source.name.clone()
    };
    let mut opts = DissectOptions::new(
        &name,
        &["layer4"],
        DEFAULT_SEGMENTER,
        samples,
        &out.join("dissect"),
    );
    opts.device = device;
    let mut model = Model::Generator {
        net: g,
        stream: opts.stream,
    };
    let mut labeller = Labeller::Net(load_segmenter(DEFAULT_SEGMENTER, device)?);
    let result = dissect::run_with(&opts, &mut model, &mut labeller)?
        .finished()
        .context("the demo dissection did not finish; run the demo again to resume it")?;
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
    if source.dir.is_some() && layer.counts.get(DEMO_CONCEPT).is_some_and(|n| *n > 0) {
        let (Some(g), Labeller::Net(segmenter)) = (model.into_generator(), labeller) else {
            unreachable!("the demo's models come back as they went in")
        };
        lines.extend(paint(out, &source.name, g, segmenter, device)?);
    }
    Ok(lines.join("\n"))
}

/// Removes the demo concept from the left half of the demo scene and measures its removal
/// curve, with the units ranked by the demonstration's own dissection.
fn paint(
    out: &Path,
    model: &str,
    generator: ProGan,
    segmenter: Box<dyn Segmenter>,
    device: Device,
) -> Result<Vec<String>> {
    let mut o = SessionOptions::new(model);
    o.dissection.dir = Some(out.join("dissect"));
    o.device = device;
    let session = Session::new(&o, generator, model, segmenter)?;
    let side = session.image_side();
    let left = Tensor::arange(side, (Kind::Float, device))
        .lt(side / 2)
        .to_kind(Kind::Float)
        .view([1, side])
        .expand([side, side], false)
        .contiguous();
    let stroke = session.plan(Action::Remove, DEMO_CONCEPT, left, &PlanOptions::default())?;
    let scene = ScenePlan {
        seed: DEMO_SEED,
        strokes: vec![stroke],
        force: false,
    };
    let painter = session.painter()?;
    let outcome = painter.paint(&[&scene])?.remove(0);
    let paths = ScenePaths::for_image(&out.join("edit/edited.png"))?;
    write_scene(&outcome, &scene.strokes, &paths, model, painter.layer())?;
    let mut lines = vec![format!(
        "painting: scene {DEMO_SEED}, {} → {}",
        outcome.strokes[0].summary,
        paths.compare.display()
    )];
    let curve = run_ablation(
        &session,
        &AblationOptions {
            ks: vec![0, 4, 20],
            samples: 200,
            batch: 50,
            ranking: UnitRanking::Iou,
            progress: true,
            ..AblationOptions::new(DEMO_CONCEPT)
        },
    )?;
    let (_, chart) = write_ablation(&curve, &out.join("ablate"))?;
    let points: Vec<String> = curve.points[1..]
        .iter()
        .map(|p| format!("top {}: {:.0}%", p.k, 100.0 * p.removed))
        .collect();
    lines.push(format!(
        "{DEMO_CONCEPT} pixels removed over 200 scenes by zeroing units: {} → {}",
        points.join(", "),
        chart.display()
    ));
    Ok(lines)
}
