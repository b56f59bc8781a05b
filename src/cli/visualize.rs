//! `gandissect visualize filters|maximize|saliency|embed`: feature visualisation.

use super::{Context, Run, commands, parse_list};
use anyhow::{Context as _, Result, bail};
use clap::Args;
use gandissect::classify::Classifier;
use gandissect::classify::importance::HELDOUT_SPLIT_START;
use gandissect::dissect::result::DissectResult;
use gandissect::fsutil::write_json;
use gandissect::imageio::{self, grid, save_png};
use gandissect::nets::layered::LayeredNet;
use gandissect::visualize::latent::{LatentOptions, maximize_latent};
use gandissect::visualize::maximize::{MaximizeOptions, maximize};
use gandissect::visualize::objective::{Objective, Penalties, Position};
use gandissect::visualize::param::Space;
use gandissect::visualize::saliency::{self, Explain, Method, SaliencyOptions};
use gandissect::visualize::transform::Transforms;
use gandissect::visualize::truth::{self, TruthOptions};
use gandissect::visualize::tsne::TsneOptions;
use gandissect::visualize::{Model, embed, filters, overlay};
use gandissect::world::{self, SceneClass};
use gandissect::zoo;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

commands! {
    /// Feature visualisation.
    pub enum VisualizeCommand {
        /// A conv layer's filters as an image grid.
        Filters(FiltersArgs),
        /// Inputs optimised to excite a unit, a class or a concept's units.
        Maximize(MaximizeArgs),
        /// Which pixels drive a class: maps per method, or every method scored on world truth.
        Saliency(SaliencyArgs),
        /// A 2-D map (t-SNE) of a layer's pooled codes over world scenes, with a hover page.
        Embed(EmbedArgs),
    }
}

fn create_out(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))
}

/// CPU seconds this process has used (user + system).
fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a rusage into the pointer it is given
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

#[derive(Args)]
pub struct FiltersArgs {
    /// A shipped classifier name, a model directory or a VGG-16 checkpoint.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// Draw a generator's filters instead (a shipped name or a checkpoint).
    #[arg(long)]
    generator: Option<String>,
    /// The conv layer (a ReLU or pool is drawn through the conv before it).
    #[arg(long, default_value = "conv1_1")]
    layer: String,
    /// Pixels per weight.
    #[arg(long, default_value_t = 8)]
    scale: u32,
    /// Output directory.
    #[arg(long, default_value = "out/filters")]
    out: PathBuf,
}

impl Run for FiltersArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let (names, tensors, index) = match &self.generator {
            Some(g) => {
                let (net, _) = zoo::load_generator(g, ctx.device)?;
                let i = net.layer_index(&self.layer)?;
                (net.layer_names().to_vec(), net.named_tensors(), i)
            }
            None => {
                let clf = Classifier::load(&self.model, ctx.device)?;
                let i = clf.net.layer_index(&self.layer)?;
                (clf.net.layer_names().to_vec(), clf.net.named_tensors(), i)
            }
        };
        let (name, weight) = filters::conv_weight(&names, index, &tensors)?;
        let drawn = filters::draw(&name, &weight, self.scale)?;
        create_out(&self.out)?;
        let cols = (drawn.pictures.len() as f64).sqrt().ceil() as usize;
        save_png(
            &self.out.join("filters.png"),
            &grid(&drawn.pictures, cols, 2),
        )?;
        write_json(
            &self.out.join("filters.json"),
            &json!({
                "layer": self.layer, "weight": drawn.weight, "inputs": drawn.inputs,
                "drawn": if drawn.direct { "directly (RGB input)" }
                         else { "through each filter's three strongest input channels as red, green, blue" },
                "filters": drawn.tiles,
            }),
        )?;
        println!(
            "{} filters of {} ({} inputs, {}) → {}",
            drawn.tiles.len(),
            drawn.weight,
            drawn.inputs,
            if drawn.direct {
                "drawn directly"
            } else {
                "drawn through their three strongest input channels"
            },
            self.out.join("filters.png").display()
        );
        Ok(())
    }
}

#[derive(Args)]
pub struct MaximizeArgs {
    /// A shipped classifier name, a model directory or a VGG-16 checkpoint.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// Maximise a generator's unit by optimising its latents instead (a shipped name or a
    /// checkpoint); needs --unit or --concept and --layer.
    #[arg(long)]
    generator: Option<String>,
    /// A class to maximise (its logit), or `all` for every class in turn.
    #[arg(long)]
    class: Option<String>,
    /// Maximise the class's log-probability instead of its logit.
    #[arg(long)]
    log_prob: bool,
    /// A unit of --layer to maximise.
    #[arg(long)]
    unit: Option<i64>,
    /// A concept whose top-k units (from --dissection) are maximised together.
    #[arg(long)]
    concept: Option<String>,
    /// The dissection directory ranking units for --concept.
    #[arg(long)]
    dissection: Option<PathBuf>,
    /// How many of the concept's top units.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// The layer of --unit or --concept.
    #[arg(long)]
    layer: Option<String>,
    /// Which positions of a unit count: mean or centre.
    #[arg(long, default_value = "mean")]
    position: Position,
    /// Adam steps.
    #[arg(long, default_value_t = MaximizeOptions::default().steps)]
    steps: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = MaximizeOptions::default().lr)]
    lr: f64,
    /// Images per target (use --diversity to make them differ).
    #[arg(long, default_value_t = 1)]
    images: i64,
    /// Image side in pixels.
    #[arg(long, default_value_t = MaximizeOptions::default().size)]
    size: i64,
    /// Parametrisation: fourier or pixel.
    #[arg(long, default_value = "fourier")]
    param: Space,
    /// Plain RGB channels instead of the world's decorrelated colours.
    #[arg(long)]
    rgb: bool,
    /// Largest random shift in pixels (0 for none).
    #[arg(long, default_value_t = Transforms::default().jitter)]
    jitter: i64,
    /// Random scale range, `lo,hi`.
    #[arg(long, default_value = "0.9,1.1")]
    scale_range: String,
    /// Largest random rotation in degrees.
    #[arg(long, default_value_t = Transforms::default().degrees)]
    degrees: f64,
    /// Total-variation penalty weight.
    #[arg(long, default_value_t = 0.0)]
    tv: f64,
    /// L2 penalty weight.
    #[arg(long, default_value_t = 0.0)]
    l2: f64,
    /// Diversity penalty weight (several images per target pushed apart).
    #[arg(long, default_value_t = 0.0)]
    diversity: f64,
    /// Generator: optimise this earlier layer's features instead of the latent.
    #[arg(long)]
    from: Option<String>,
    /// Generator: image ids to start from.
    #[arg(long, default_value = "0,1,2,3")]
    ids: String,
    /// Generator: weight of the penalty keeping the input's scale.
    #[arg(long, default_value_t = LatentOptions::default().prior)]
    prior: f64,
    /// Seed of the starting noise and the transforms.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory.
    #[arg(long, default_value = "out/maximize")]
    out: PathBuf,
}

impl MaximizeArgs {
    fn units(&self, layer: &str, canonical: &str) -> Result<Vec<i64>> {
        match (self.unit, &self.concept) {
            (Some(u), None) => Ok(vec![u]),
            (None, Some(concept)) => {
                let dir = self.dissection.as_ref().with_context(|| {
                    format!(
                        "--concept {concept} needs --dissection DIR with a dissection of {layer}"
                    )
                })?;
                let result = DissectResult::load(dir)?;
                let ranking = result
                    .unit_ranking(layer, concept)
                    .or_else(|_| result.unit_ranking(canonical, concept))?;
                if self.top_k == 0 {
                    bail!("--top-k must be at least 1");
                }
                Ok(ranking
                    .iter()
                    .take(self.top_k)
                    .map(|&(u, _)| u as i64)
                    .collect())
            }
            _ => bail!("give one of --unit or --concept with --layer"),
        }
    }

    fn options(&self) -> Result<MaximizeOptions> {
        let scale: Vec<f64> = parse_list(&self.scale_range, "--scale-range", "0.9,1.1")?;
        if scale.len() != 2 {
            bail!("--scale-range takes two numbers, lo,hi (e.g. 0.9,1.1)");
        }
        Ok(MaximizeOptions {
            steps: self.steps,
            lr: self.lr,
            images: self.images,
            size: self.size,
            space: self.param,
            decorrelate: !self.rgb,
            transforms: Transforms {
                jitter: self.jitter,
                scale: (scale[0], scale[1]),
                degrees: self.degrees,
            },
            penalties: Penalties {
                tv: self.tv,
                l2: self.l2,
                diversity: self.diversity,
            },
            seed: self.seed,
            progress: true,
            ..MaximizeOptions::default()
        })
    }

    fn run_generator(&self, spec: &str, ctx: &Context) -> Result<()> {
        let (net, _) = zoo::load_generator(spec, ctx.device)?;
        let layer = self
            .layer
            .clone()
            .context("a generator maximisation needs --layer")?;
        let canonical = net.layer_names()[net.layer_index(&layer)?].clone();
        let opts = LatentOptions {
            units: self.units(&layer, &canonical)?,
            layer,
            position: self.position,
            from: self.from.clone(),
            ids: parse_list(&self.ids, "--ids", "0,1,2,3")?,
            steps: self.steps,
            lr: self.lr,
            prior: self.prior,
            progress: true,
            ..LatentOptions::default()
        };
        let result = maximize_latent(&net, &opts)?;
        create_out(&self.out)?;
        let mut pictures = imageio::to_rgb_images(&result.before)?;
        pictures.extend(imageio::to_rgb_images(&result.after)?);
        save_png(
            &self.out.join("maximize.png"),
            &grid(&pictures, opts.ids.len(), 2),
        )?;
        let last = result.trace.last().map(|s| s.objective.clone());
        write_json(
            &self.out.join("maximize.json"),
            &json!({"generator": spec, "options": opts, "start": result.start,
                    "trace": result.trace, "rows": "first row: the start images; second: optimised"}),
        )?;
        println!(
            "{} unit(s) {:?} of {}: mean activation {:.3} at the start → {:.3} ({} steps) → {}",
            opts.units.len(),
            opts.units,
            opts.layer,
            mean(&result.start),
            last.as_deref().map(mean).unwrap_or(f64::NAN),
            opts.steps,
            self.out.join("maximize.png").display()
        );
        Ok(())
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

impl Run for MaximizeArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        if let Some(g) = &self.generator {
            return self.run_generator(g, ctx);
        }
        let clf = Classifier::load(&self.model, ctx.device)?;
        let model = Model::classifier(&clf);
        let opts = self.options()?;
        let targets: Vec<Objective> = match (&self.class, &self.layer) {
            (Some(c), None) if self.unit.is_none() && self.concept.is_none() => {
                let names: Vec<String> = if c == "all" {
                    clf.classes.clone()
                } else {
                    vec![c.clone()]
                };
                names
                    .into_iter()
                    .map(|name| {
                        let class = model.class_index(&name)?;
                        Ok(if self.log_prob {
                            Objective::ClassProbability { class, name }
                        } else {
                            Objective::Class { class, name }
                        })
                    })
                    .collect::<Result<_>>()?
            }
            (None, Some(layer)) => {
                let cut = clf.conv_cut(layer)?;
                vec![Objective::Units {
                    units: self.units(layer, cut.layer_name())?,
                    layer: layer.clone(),
                    position: self.position,
                }]
            }
            _ => bail!("give either --class NAME (or all), or --layer with --unit or --concept"),
        };
        create_out(&self.out)?;
        let mut pictures = Vec::new();
        let mut records = Vec::new();
        for target in &targets {
            let (cpu, wall) = (cpu_seconds(), Instant::now());
            let result = maximize(&model, target, &opts)?;
            let cpu = cpu_seconds() - cpu;
            let wall = wall.elapsed().as_secs_f64();
            let probs = tch::no_grad(|| model.logits(&result.images).softmax(1, Kind::Float));
            let top = Vec::<i64>::try_from(probs.argmax(1, false))?;
            let mut record = json!({
                "target": target, "objective": result.objective, "trace": result.trace,
                "cpu_seconds": cpu, "wall_seconds": wall,
                "predicted": top.iter().map(|&t| clf.classes[t as usize].clone()).collect::<Vec<_>>(),
                "probabilities": class_probabilities(&probs, &clf.classes)?,
            });
            let summary = if let Some((class, name)) = target.class() {
                let p = Vec::<f32>::try_from(probs.select(1, class))?;
                record["probability"] = json!(p);
                format!(
                    "{name}: probability {} after {} steps ({cpu:.1} s CPU, {wall:.1} s wall)",
                    p.iter()
                        .map(|v| format!("{v:.3}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    opts.steps
                )
            } else {
                format!(
                    "objective {} after {} steps ({cpu:.1} s CPU)",
                    result
                        .objective
                        .iter()
                        .map(|v| format!("{v:.3}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    opts.steps
                )
            };
            println!("{summary}");
            pictures.extend(imageio::to_rgb_images(&result.images)?);
            records.push(record);
        }
        save_png(
            &self.out.join("maximize.png"),
            &grid(
                &pictures,
                self.images.max(1) as usize * if targets.len() > 1 { 3 } else { 1 },
                2,
            ),
        )?;
        write_json(
            &self.out.join("maximize.json"),
            &json!({"model": self.model, "options": opts, "targets": records}),
        )?;
        println!("→ {}", self.out.join("maximize.png").display());
        Ok(())
    }
}

#[derive(Args)]
pub struct SaliencyArgs {
    /// A shipped classifier name, a model directory or a VGG-16 checkpoint.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// World scene seeds to explain, e.g. 200000,200001.
    #[arg(long)]
    seeds: Option<String>,
    /// A picture file to explain instead (resized to 64×64).
    #[arg(long)]
    image: Option<PathBuf>,
    /// The class explained (default: the predicted class of each image).
    #[arg(long)]
    class: Option<String>,
    /// Explain the margin of --class over this class instead of its bare logit.
    #[arg(long)]
    against: Option<String>,
    /// Methods, comma-separated (gradient, smoothgrad, integrated_gradients, grad_cam,
    /// occlusion, random), or all.
    #[arg(long, default_value = "all")]
    methods: String,
    /// Grad-CAM's layer.
    #[arg(long, default_value = saliency::DEFAULT_CAM_LAYER)]
    layer: String,
    /// SmoothGrad: noisy copies.
    #[arg(long, default_value_t = SaliencyOptions::default().smooth_samples)]
    smooth_samples: usize,
    /// SmoothGrad: noise as a fraction of the pixel range.
    #[arg(long, default_value_t = SaliencyOptions::default().smooth_sigma)]
    smooth_sigma: f64,
    /// Integrated gradients: steps.
    #[arg(long, default_value_t = SaliencyOptions::default().ig_steps)]
    ig_steps: usize,
    /// Occlusion: square side in pixels.
    #[arg(long, default_value_t = SaliencyOptions::default().patch)]
    patch: i64,
    /// Occlusion: stride in pixels.
    #[arg(long, default_value_t = SaliencyOptions::default().stride)]
    stride: i64,
    /// Score every method on held-out world scenes of the three classes told by one concept.
    #[arg(long)]
    score: bool,
    /// Scoring: scenes per class.
    #[arg(long, default_value_t = TruthOptions::default().scenes)]
    scenes: usize,
    /// Scoring: pointing-game tolerance in pixels.
    #[arg(long, default_value_t = truth::DEFAULT_TOLERANCE)]
    tolerance: i64,
    /// Seed of SmoothGrad's noise and the random control.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory.
    #[arg(long, default_value = "out/saliency")]
    out: PathBuf,
}

impl SaliencyArgs {
    fn options(&self) -> SaliencyOptions {
        SaliencyOptions {
            smooth_samples: self.smooth_samples,
            smooth_sigma: self.smooth_sigma,
            ig_steps: self.ig_steps,
            cam_layer: self.layer.clone(),
            patch: self.patch,
            stride: self.stride,
            seed: self.seed,
        }
    }

    fn methods(&self) -> Result<Vec<Method>> {
        if self.methods == "all" {
            return Ok(Method::ALL.to_vec());
        }
        self.methods.split(',').map(|m| m.trim().parse()).collect()
    }

    fn score(&self, model: &Model) -> Result<()> {
        let opts = TruthOptions {
            scenes: self.scenes,
            methods: self.methods()?,
            tolerance: self.tolerance,
            saliency: self.options(),
            ..TruthOptions::default()
        };
        let start = Instant::now();
        let rows = truth::score_world(model, &opts)?;
        create_out(&self.out)?;
        write_json(
            &self.out.join("scores.json"),
            &json!({"model": self.model, "options": opts, "rows": rows,
                    "seconds": start.elapsed().as_secs_f64()}),
        )?;
        println!(
            "| method | class (concept) | pointing | pointing, margin | chance | deletion AUC ↓ | insertion AUC ↑ |"
        );
        println!("|---|---|---|---|---|---|---|");
        for r in &rows {
            println!(
                "| {} | {} ({}) | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} |",
                r.method.name(),
                r.class,
                r.concept,
                r.pointing,
                r.pointing_margin,
                r.chance,
                r.deletion_auc,
                r.insertion_auc
            );
        }
        println!("→ {}", self.out.join("scores.json").display());
        Ok(())
    }
}

impl Run for SaliencyArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let clf = Classifier::load(&self.model, ctx.device)?;
        let model = Model::classifier(&clf);
        if self.score {
            return self.score(&model);
        }
        let (names, images, truths): (Vec<String>, Tensor, Vec<Option<String>>) =
            match (&self.seeds, &self.image) {
                (Some(spec), None) => {
                    let seeds: Vec<u64> = parse_list(spec, "--seeds", "200000,200001")?;
                    if seeds.is_empty() || seeds.len() > 64 {
                        bail!("give 1 to 64 --seeds");
                    }
                    let batch = gandissect::sample::world_batch(&seeds, false, Device::Cpu);
                    let classes = Vec::<i64>::try_from(&batch.classes)?;
                    (
                        seeds.iter().map(|s| format!("seed {s}")).collect(),
                        batch.images,
                        classes
                            .iter()
                            .map(|&c| Some(SceneClass::ALL[c as usize].name().to_string()))
                            .collect(),
                    )
                }
                (None, Some(path)) => {
                    let side = world::SIZE as u32;
                    let rgb = imageio::read_rgb(path, Some((side, side)))?;
                    (
                        vec![path.display().to_string()],
                        imageio::from_rgb_images(&[rgb], Device::Cpu)?,
                        vec![None],
                    )
                }
                _ => bail!("give either --seeds (world scenes) or --image FILE"),
            };
        let images = images.to_device(ctx.device);
        let n = names.len();
        let probs = tch::no_grad(|| model.logits(&images).softmax(1, Kind::Float));
        let predicted = Vec::<i64>::try_from(probs.argmax(1, false).to_device(Device::Cpu))?;
        let class: Vec<i64> = match &self.class {
            Some(c) => vec![model.class_index(c)?; n],
            None => predicted.clone(),
        };
        let against = match &self.against {
            Some(a) => Some(vec![model.class_index(a)?; n]),
            None => None,
        };
        let explain = Explain { class, against };
        let methods = self.methods()?;
        let opts = self.options();
        create_out(&self.out)?;
        let mut rows = vec![
            imageio::to_rgb_images(&images)?
                .into_iter()
                .map(|p| {
                    image::imageops::resize(
                        &p,
                        p.width() * 3,
                        p.height() * 3,
                        image::imageops::FilterType::Nearest,
                    )
                })
                .collect::<Vec<_>>(),
        ];
        for &m in &methods {
            let maps = saliency::map(m, &model, &images, &explain, &opts)?;
            rows.push(overlay::overlays(&images, &maps, 3)?);
        }
        // one column per image: the image, then one overlay per method
        let tiles: Vec<_> = rows.into_iter().flatten().collect();
        save_png(&self.out.join("saliency.png"), &grid(&tiles, n, 2))?;
        let cls = |i: i64| clf.classes[i as usize].clone();
        write_json(
            &self.out.join("saliency.json"),
            &json!({
                "model": self.model, "images": names, "true_class": truths,
                "predicted": predicted.iter().map(|&p| cls(p)).collect::<Vec<_>>(),
                "probabilities": class_probabilities(&probs, &clf.classes)?,
                "explained": explain.class.iter().map(|&p| cls(p)).collect::<Vec<_>>(),
                "against": explain.against.as_ref().map(|a| a.iter().map(|&p| cls(p)).collect::<Vec<_>>()),
                "rows": std::iter::once("image").chain(methods.iter().map(|m| m.name())).collect::<Vec<_>>(),
                "options": opts,
            }),
        )?;
        println!(
            "{} image(s) × {} methods ({}) → {}",
            n,
            methods.len(),
            methods
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", "),
            self.out.join("saliency.png").display()
        );
        Ok(())
    }
}

#[derive(Args)]
pub struct EmbedArgs {
    /// A shipped classifier name, a model directory or a VGG-16 checkpoint.
    #[arg(long, default_value = zoo::DEFAULT_CLASSIFIER)]
    model: String,
    /// The layer whose codes (averaged over positions) are mapped.
    #[arg(long, default_value = saliency::DEFAULT_CAM_LAYER)]
    layer: String,
    /// Held-out world scenes (classes cycling).
    #[arg(long, default_value_t = 540)]
    scenes: usize,
    /// The first scene's seed.
    #[arg(long, default_value_t = HELDOUT_SPLIT_START)]
    first_seed: u64,
    /// t-SNE perplexity.
    #[arg(long, default_value_t = TsneOptions::default().perplexity)]
    perplexity: f64,
    /// t-SNE iterations.
    #[arg(long, default_value_t = TsneOptions::default().iterations)]
    iterations: usize,
    /// Seed of t-SNE's starting points.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory.
    #[arg(long, default_value = "out/embed")]
    out: PathBuf,
}

impl Run for EmbedArgs {
    fn run(self, ctx: &Context) -> Result<()> {
        let clf = Classifier::load(&self.model, ctx.device)?;
        clf.conv_cut(&self.layer)?;
        let model = Model::classifier(&clf);
        let opts = TsneOptions {
            perplexity: self.perplexity,
            iterations: self.iterations,
            seed: self.seed,
            ..TsneOptions::default()
        };
        let map = embed::embed_world(&model, &self.layer, self.scenes, self.first_seed, &opts)?;
        create_out(&self.out)?;
        let stem = self.out.join("embed");
        map.write(&stem, &clf.name)?;
        write_json(
            &self.out.join("embed.json"),
            &json!({"model": self.model, "layer": self.layer, "options": opts, "kl": map.kl,
                    "scenes": map.scenes}),
        )?;
        println!(
            "{} scenes of {} at {} (KL {:.3}) → {}.png, {}.html",
            map.scenes.len(),
            clf.name,
            self.layer,
            map.kl,
            stem.display(),
            stem.display()
        );
        Ok(())
    }
}

/// Per image, every class's probability (`probs` `[N, classes]`), by class name.
fn class_probabilities(
    probs: &tch::Tensor,
    classes: &[String],
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let rows = Vec::<Vec<f32>>::try_from(probs.to_device(Device::Cpu))?;
    Ok(rows
        .into_iter()
        .map(|row| {
            classes
                .iter()
                .zip(row)
                .map(|(c, p)| (c.clone(), json!(p)))
                .collect()
        })
        .collect())
}
