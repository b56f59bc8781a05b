//! `gandissect analyze ablation-curve` on a generator: the layer's units removed cumulatively
//! (random orders, mean activation, IoU from a dissection) and Gaussian noise, against the
//! label shares the segmenter sees in held-out scenes.

use super::ablation_curve::{AblationCurveArgs, SplitArg};
use crate::cli::Context;
use anyhow::{Result, bail};
use gandissect::analysis::ablation_curve::Order;
use gandissect::analysis::generator_curve::{
    DEFAULT_IMAGES, GeneratorCurveOptions, GeneratorCurveReport, LabelCurve, dissection_iou,
    generator_curves, main_concepts, write_generator_curves,
};
use gandissect::analysis::selectivity::read_unit_iou;
use gandissect::cut::Cut;
use gandissect::dissect::DissectResult;
use gandissect::nets::proggan::ProGan;
use gandissect::segment::load_segmenter;

/// Runs the generator side for `args` on `generator` (known as `name`).
pub fn run(args: &AblationCurveArgs, generator: ProGan, name: &str, ctx: &Context) -> Result<()> {
    if args.split == SplitArg::Training {
        bail!(
            "--split training belongs to a label-noise classifier run; a generator has no training labels"
        );
    }
    let layer = args
        .layer
        .clone()
        .unwrap_or_else(|| gandissect::edit::DEFAULT_LAYER.into());
    let layer = Cut::new(&generator, &layer)?.layer_name().to_string();
    let mut opts = GeneratorCurveOptions::new(
        &layer,
        args.samples.unwrap_or(DEFAULT_IMAGES),
        args.heldout.unwrap_or(DEFAULT_IMAGES),
        ctx.device,
    );
    opts.fractions = args.fractions.clone();
    opts.draws = args.draws;
    opts.seed = args.seed;
    opts.noise = args.noise.clone();
    opts.progress = true;
    // the cheap checks before the segmenter loads
    opts.validate()?;
    let mut iou_units = None;
    if let Some(dir) = &args.dissection {
        let d = DissectResult::load(dir)?;
        let (iou, named) = dissection_iou(&d, &generator, &layer, &opts)?;
        opts.iou = Some(iou);
        iou_units = Some(named);
    } else if let Some(p) = &args.iou {
        let units = generator.channels(Cut::new(&generator, &layer)?.layer_index()) as usize;
        opts.iou = Some(read_unit_iou(p, units, &layer)?);
    }
    let segmenter = load_segmenter(&args.segmenter, ctx.device)?;
    let mut report = generator_curves(&generator, name, segmenter.as_ref(), &opts)?;
    report.iou_units = iou_units;
    write_generator_curves(&report, &args.out)?;
    print_summary(&report);
    println!("→ {}", args.out.display());
    Ok(())
}

fn print_summary(r: &GeneratorCurveReport) {
    println!(
        "{} {}: {} units, {} held-out images; distance with every unit removed {:.3}",
        r.model, r.layer, r.units, r.images, r.all_removed_distance
    );
    let head: Vec<String> = r.curves[0]
        .points
        .iter()
        .map(|p| format!("{:>6.3}", p.x))
        .collect();
    println!("  {:<12} {}  mean distance", "removed", head.join(" "));
    let row = |c: &LabelCurve| -> String {
        let v: Vec<String> = c
            .points
            .iter()
            .map(|p| format!("{:>6.3}", p.distance))
            .collect();
        v.join(" ")
    };
    for c in &r.curves {
        println!("  {:<12} {}  {:>13.3}", c.order, row(c), c.mean_distance);
    }
    if let Some(noise) = &r.noise {
        let head: Vec<String> = noise
            .points
            .iter()
            .map(|p| format!("{:>6.2}", p.x))
            .collect();
        println!("  {:<12} {}", "noise σ", head.join(" "));
        println!(
            "  {:<12} {}  {:>13.3}",
            "noise",
            row(noise),
            noise.mean_distance
        );
    }
    println!("  concept halved at (fraction removed; '-': never):");
    let concepts = main_concepts(r, 8);
    println!(
        "  {:<12} {}",
        "",
        concepts
            .iter()
            .map(|c| format!("{c:>10}"))
            .collect::<Vec<_>>()
            .join("")
    );
    for c in &r.curves {
        let row: Vec<String> = concepts
            .iter()
            .map(|n| match c.vanished.get(n) {
                Some(Some(x)) => format!("{x:>10.2}"),
                _ => format!("{:>10}", "-"),
            })
            .collect();
        println!("  {:<12} {}", c.order, row.join(""));
    }
    if r.curve(Order::Iou).is_none() {
        println!("  (no IoU order: give --dissection DIR of this layer)");
    }
}
