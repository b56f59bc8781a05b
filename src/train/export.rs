//! Training a default model end to end: run (resumably), write the weights, measure the model
//! against the world, and write its card.

use super::classifier::{self, ClassifierTrainer};
use super::gan::{self, GanTrainer};
use super::label_noise::{LabelNoise, training_fit};
use super::quality::{classifier_quality, generator_quality, segmenter_quality};
use super::seg::{self, SegTrainer};
use super::{RunOptions, RunSummary, run};
use crate::fsutil::{atomic_write_with, write_json};
use crate::imageio::{grid, save_png, to_rgb_images};
use crate::nets::layered::LayeredNet;
use crate::nets::vgg::Normalization;
use crate::segment::world_labels;
use crate::segment::{SegmenterCard, load_segmenter};
use crate::world::SceneClass;
use crate::zoo::{ModelCard, load_classifier, load_generator};
use crate::zsample::z_rows;
use anyhow::Result;
use serde_json::{Value, json};
use std::path::Path;
use tch::Tensor;

/// World seeds the models are measured on (never used in training).
pub const EVAL_SEEDS: u64 = 1000;

/// Writes weights as safetensors on the CPU, atomically.
pub fn write_weights(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.detach().to_device(tch::Device::Cpu).contiguous(),
            )
        })
        .collect();
    atomic_write_with(path, |tmp| Ok(Tensor::write_safetensors(&cpu, tmp)?))
}

fn training_record(name: &str, opts: &RunOptions, summary: &RunSummary) -> Value {
    json!({
        "command": format!("gandissect train {name} --steps {} --batch {} --seed {}", summary.steps, opts.batch, opts.seed),
        "data": format!("procedural world scenes, seeds from 2^40 + seed·2^32 on (never the evaluation seeds 0..{EVAL_SEEDS})"),
        "steps": summary.steps,
        "batch": opts.batch,
        "seed": opts.seed,
        "wall_seconds": (summary.wall_seconds * 10.0).round() / 10.0,
        "device": crate::device::device_name(opts.device),
        "last_losses": summary.last_losses,
    })
}

fn to_map(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// Trains the world segmenter into `opts.out` and measures it.
pub fn train_segmenter(opts: &RunOptions) -> Result<Value> {
    let mut t = SegTrainer::new(opts);
    let summary = run(&mut t, opts)?;
    write_weights(
        &opts.out.join("weights.safetensors"),
        &t.net().named_tensors(),
    )?;
    let mut card = SegmenterCard {
        architecture: "world-seg".into(),
        weights: "weights.safetensors".into(),
        labels: world_labels(),
        input_size: Some(64),
        rest: to_map(json!({
            "description": format!("U-shaped FCN, base width {}, per-pixel labels for the 14 world concepts", seg::WIDTH),
            "training": training_record("world-seg", opts, &summary),
        })),
    };
    write_json(&opts.out.join("segmenter.json"), &card)?;
    let loaded = load_segmenter(opts.out.to_str().unwrap_or_default(), opts.device)?;
    let q = segmenter_quality(loaded.as_ref(), 0, opts.eval_samples, opts.device)?;
    card.rest
        .insert("quality".into(), serde_json::to_value(&q)?);
    card.rest.insert(
        "quality_measured_by".into(),
        json!("gandissect evaluate world-seg"),
    );
    write_json(&opts.out.join("segmenter.json"), &card)?;
    Ok(serde_json::to_value(q)?)
}

/// Trains the world generator into `opts.out` from `start`, measures it with `segmenter`, and
/// writes a contact sheet of its samples. A continued run's card keeps the training record of
/// the generator it continued.
pub fn train_generator(opts: &RunOptions, start: gan::Start, segmenter: &str) -> Result<Value> {
    let earlier = match &start.from {
        Some(dir) if dir.join("model.json").exists() => {
            let card = crate::zoo::read_card(dir)?;
            Some(card.rest.get("training").cloned().unwrap_or(Value::Null))
        }
        Some(dir) => Some(json!({"directory": dir.display().to_string()})),
        None => None,
    };
    let mut t = GanTrainer::starting(opts, start)?;
    let summary = run(&mut t, opts)?;
    let mut training = training_record("world-proggan", opts, &summary);
    let command = format!(
        "{}{}",
        training["command"].as_str().unwrap_or_default(),
        t.start().flags()
    );
    training["command"] = json!(command);
    training["lr"] = json!(t.start().lr);
    if let Some(earlier) = earlier {
        training["continued_from"] = earlier;
    }
    write_weights(&opts.out.join("weights.safetensors"), &t.averaged_weights())?;
    let g = t.averaged_generator(opts.device)?;
    let mut card = ModelCard {
        architecture: "proggan".into(),
        weights: "weights.safetensors".into(),
        normalization: None,
        classes: None,
        input_size: None,
        rest: to_map(json!({
            "description": "netdissect-layout Progressive GAN generator at 64×64 (no progressive growing), weights averaged over training",
            "sizes": t.start().sizes,
            "layers": g.layer_names(),
            "latent": format!("image id i = row i of numpy RandomState(1).standard_normal(n·{})", t.start().sizes[0]),
            "training": training,
            "objective": "non-saturating logistic GAN loss, lazy R1 penalty on reals, Adam(β1=0, β2=0.99), EMA 0.999",
            "samples": "samples.png",
        })),
    };
    write_json(&opts.out.join("model.json"), &card)?;
    write_sample_sheet(&opts.out)?;
    let (g, _) = load_generator(opts.out.to_str().unwrap_or_default(), opts.device)?;
    let seg = load_segmenter(segmenter, opts.device)?;
    let q = generator_quality(&g, seg.as_ref(), opts.eval_samples, opts.device)?;
    card.rest
        .insert("quality".into(), serde_json::to_value(&q)?);
    card.rest.insert(
        "quality_measured_by".into(),
        json!("gandissect evaluate world-proggan"),
    );
    write_json(&opts.out.join("model.json"), &card)?;
    Ok(serde_json::to_value(q)?)
}

/// Writes `samples.png` (images 0..48 of the shipped stream) into a generator's directory.
pub fn write_sample_sheet(dir: &Path) -> Result<()> {
    let (g, _) = load_generator(dir.to_str().unwrap_or_default(), tch::Device::Cpu)?;
    let _guard = tch::no_grad_guard();
    let ids: Vec<u64> = (0..48).collect();
    let z = z_rows(1, &ids, g.z_dim() as usize, tch::Device::Cpu)?;
    let images = to_rgb_images(&g.forward(&z))?;
    save_png(&dir.join("samples.png"), &grid(&images, 12, 2))
}

/// The classifier's training record: the common one plus its loss recipe, which the command
/// names whenever it differs from the shipped one.
fn classifier_training_record(
    opts: &RunOptions,
    summary: &RunSummary,
    recipe: classifier::Recipe,
    noise: Option<LabelNoise>,
) -> Value {
    let mut record = training_record("world-vgg16", opts, summary);
    if let Some(noise) = noise {
        let command = format!(
            "{} --label-noise {} --train-scenes {}",
            record["command"].as_str().unwrap_or_default(),
            noise.fraction,
            noise.scenes
        );
        record["command"] = json!(command);
        record["data"] = json!(format!(
            "a fixed set of {} procedural world scenes (seeds 2^40 + seed·2^32 + 0..{}), {} of them with a random label",
            noise.scenes,
            noise.scenes,
            noise.replaced_count()
        ));
        record["label_noise"] = noise.settings();
    }
    let terms = recipe.terms();
    if recipe != classifier::Recipe::SHIPPED {
        let flags: Vec<String> = terms
            .iter()
            .map(|(name, w)| format!("--{} {w}", name.replace('_', "-")))
            .collect();
        let command = format!(
            "{} {}",
            record["command"].as_str().unwrap_or_default(),
            flags.join(" ")
        );
        record["command"] = json!(command);
    }
    for (name, w) in terms {
        record[name] = json!(w);
    }
    record
}

/// Trains the world scene classifier into `opts.out` with `recipe` (the shipped one is
/// [`classifier::Recipe::SHIPPED`]), on fresh scenes every step or, with `noise`, on a fixed
/// set with a share of random labels, and measures it (with `noise`, on its training set too).
pub fn train_classifier(
    opts: &RunOptions,
    recipe: classifier::Recipe,
    noise: Option<LabelNoise>,
) -> Result<Value> {
    recipe.check()?;
    let mut t = ClassifierTrainer::with_recipe(opts, recipe);
    if let Some(noise) = noise {
        noise.check()?;
        t = t.with_label_noise(noise);
    }
    let summary = run(&mut t, opts)?;
    write_weights(&opts.out.join("weights.safetensors"), &t.weights())?;
    let classes: Vec<String> = SceneClass::ALL
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let mut card = ModelCard {
        architecture: "vgg16".into(),
        weights: "weights.safetensors".into(),
        normalization: Some(Normalization::imagenet()),
        classes: Some(classes.clone()),
        input_size: Some(classifier::INPUT_SIZE),
        rest: to_map(json!({
            "description": format!("torchvision-layout VGG-16, width ×{}, fc {} wide, {}×{} pooled conv5; world images upsampled to {}; trained with {}",
                classifier::WIDTH, classifier::HIDDEN, classifier::POOL, classifier::POOL, classifier::INPUT_SIZE,
                recipe.describe()),
            "config": classifier::config(),
            "training": classifier_training_record(opts, &summary, recipe, noise),
        })),
    };
    write_json(&opts.out.join("model.json"), &card)?;
    let (net, _) = load_classifier(opts.out.to_str().unwrap_or_default(), opts.device)?;
    let q = classifier_quality(
        &net,
        &classes,
        classifier::INPUT_SIZE,
        0,
        opts.eval_samples,
        opts.device,
    )?;
    card.rest
        .insert("quality".into(), serde_json::to_value(&q)?);
    card.rest.insert(
        "quality_measured_by".into(),
        json!("gandissect evaluate world-vgg16"),
    );
    let mut measured = serde_json::to_value(q)?;
    if let Some(noise) = noise {
        let fit = training_fit(&net, classifier::INPUT_SIZE, &noise, opts.seed, opts.device)?;
        measured["training_fit"] = serde_json::to_value(&fit)?;
        card.rest
            .insert("training_fit".into(), serde_json::to_value(&fit)?);
    }
    write_json(&opts.out.join("model.json"), &card)?;
    Ok(measured)
}
