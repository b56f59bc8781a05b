//! The painter of one project: a thread that owns the project's models and a cache of open
//! scenes (their cut-layer features, image and segmentation), taking jobs from a bounded queue.
//!
//! A stroke stack therefore costs its compositing, the suffix forward, one segmentation and the
//! encoding, never the prefix. Jobs that arrive together are painted as one batch. A job whose
//! client has gone is skipped; a full queue is refused at once (503), so no client waits on
//! another's backlog without bound.

use super::error::ApiError;
use super::export::painting_zip;
use super::project::{ProjectInfo, ProjectModels};
use super::request::{PaintRequest, StrokeRequest};
use crate::edit::paint::{SceneBase, SceneOutcome, StrokeOutcome};
use crate::edit::plan::{PlanOptions, PlannedStroke, Stroke, plan_stroke};
use crate::edit::{Painter, ScenePlan};
use crate::imageio::to_rgb_images;
use anyhow::Result;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{RgbImage, RgbaImage};
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use tch::{Kind, Tensor};
use tokio::sync::{mpsc, oneshot};

/// Jobs painted together at most.
pub const MAX_BATCH: usize = 8;

/// Limits of a worker.
#[derive(Clone, Debug)]
pub struct WorkerLimits {
    /// Open scenes kept (least recently used ones are dropped).
    pub scenes: usize,
    /// Jobs waiting at most.
    pub queue: usize,
    /// Image ids are `0..max_id`.
    pub max_id: u64,
}

impl Default for WorkerLimits {
    fn default() -> Self {
        Self {
            scenes: 256,
            queue: 64,
            max_id: super::request::DEFAULT_MAX_ID,
        }
    }
}

/// A scene's original picture and segmentation, PNG-encoded.
#[derive(Clone, Debug)]
pub struct ScenePngs {
    /// The image.
    pub image: Arc<Vec<u8>>,
    /// Its segmentation: label colours, transparent where unlabelled.
    pub segmentation: Arc<Vec<u8>>,
}

/// A painted stack.
#[derive(Clone, Debug)]
pub struct Painted {
    /// The layer painted.
    pub layer: String,
    /// The final image and its segmentation.
    pub pngs: ScenePngs,
    /// Whether any stroke is in the final image.
    pub changed: bool,
    /// Per stroke: plan, measured effect, verdict.
    pub strokes: Vec<StrokeOutcome>,
}

type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// Work for a project's painter.
pub enum Job {
    /// The original scene at a layer.
    Scene {
        /// Layer (the project's default when `None`).
        layer: Option<String>,
        /// Image id.
        seed: u64,
        /// Where the answer goes.
        reply: Reply<ScenePngs>,
    },
    /// A stack painted.
    Paint {
        /// The request.
        req: PaintRequest,
        /// Where the answer goes.
        reply: Reply<Painted>,
    },
    /// A stack painted and packed as a zip that replays with `gandissect batch`.
    Export {
        /// The request.
        req: PaintRequest,
        /// Where the answer goes.
        reply: Reply<Vec<u8>>,
    },
}

impl Job {
    fn abandoned(&self) -> bool {
        match self {
            Job::Scene { reply, .. } => reply.is_closed(),
            Job::Paint { reply, .. } => reply.is_closed(),
            Job::Export { reply, .. } => reply.is_closed(),
        }
    }
}

/// The sending side of a project's painter; dropping it (and every clone) ends the thread.
#[derive(Clone)]
pub struct Worker {
    tx: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the painter thread of a project.
    pub fn spawn(
        info: Arc<ProjectInfo>,
        models: ProjectModels,
        limits: WorkerLimits,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(limits.queue.max(1));
        let name = format!("paint-{}", info.project);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || State::new(info, models, limits).run(rx))
            .expect("a thread starts");
        (Self { tx }, thread)
    }

    /// Queues a job made by `job` around a fresh reply channel and waits for the answer.
    pub async fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.tx.try_send(job(reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                ApiError::busy("the painter is busy (its queue is full); try again in a moment")
            }
            mpsc::error::TrySendError::Closed(_) => ApiError::internal("the painter has stopped"),
        })?;
        answer
            .await
            .map_err(|_| ApiError::internal("the painter stopped before answering"))?
    }
}

struct Cached {
    base: SceneBase,
    pngs: ScenePngs,
    used: u64,
}

struct State {
    info: Arc<ProjectInfo>,
    models: ProjectModels,
    limits: WorkerLimits,
    colors: Vec<[u8; 3]>,
    cache: HashMap<(String, u64), Cached>,
    clock: u64,
}

/// A paint or export job planned.
struct Planned {
    layer: String,
    plan: ScenePlan,
}

impl State {
    fn new(info: Arc<ProjectInfo>, models: ProjectModels, limits: WorkerLimits) -> Self {
        let colors = info
            .labels
            .iter()
            .map(|l| {
                let v = u32::from_str_radix(l.color.trim_start_matches('#'), 16).unwrap_or(0);
                [(v >> 16) as u8, (v >> 8) as u8, v as u8]
            })
            .collect();
        Self {
            info,
            models,
            limits,
            colors,
            cache: HashMap::new(),
            clock: 0,
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            jobs.retain(|j| !j.abandoned());
            self.handle(jobs);
        }
    }

    fn handle(&mut self, jobs: Vec<Job>) {
        let mut paints: Vec<(Planned, Reply<Painted>)> = Vec::new();
        for job in jobs {
            match job {
                Job::Scene { layer, seed, reply } => {
                    let r = self
                        .layer_name(layer.as_deref())
                        .and_then(|l| self.check_seed(seed).map(|_| l))
                        .and_then(|l| {
                            self.base(&l, &[seed])
                                .map(|_| self.cache[&(l, seed)].pngs.clone())
                        });
                    let _ = reply.send(r);
                }
                Job::Paint { req, reply } => match self.plan(&req) {
                    Ok(p) => paints.push((p, reply)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                Job::Export { req, reply } => {
                    let r = self.plan(&req).and_then(|p| self.export(&req, p));
                    let _ = reply.send(r);
                }
            }
        }
        // one batch per layer
        while !paints.is_empty() {
            let layer = paints[0].0.layer.clone();
            let (batch, rest): (Vec<_>, Vec<_>) =
                paints.into_iter().partition(|(p, _)| p.layer == layer);
            paints = rest;
            let plans: Vec<&Planned> = batch.iter().map(|(p, _)| p).collect();
            match self.paint(&plans) {
                Ok(outcomes) => {
                    for ((p, reply), outcome) in batch.into_iter().zip(outcomes) {
                        let _ = reply.send(self.painted(&p.layer, &outcome));
                    }
                }
                Err(e) => {
                    for (_, reply) in batch {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    fn layer_name(&self, layer: Option<&str>) -> Result<String, ApiError> {
        match layer {
            None => Ok(self.info.default_layer.clone()),
            Some(l) if self.info.layer(l).is_some() => Ok(l.to_string()),
            Some(l) => Err(ApiError::not_found(format!(
                "unknown layer '{l}' of project {}; it has: {}",
                self.info.project,
                self.info
                    .layers
                    .iter()
                    .map(|x| x.layer.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn check_seed(&self, seed: u64) -> Result<(), ApiError> {
        if seed >= self.limits.max_id {
            return Err(ApiError::unprocessable(format!(
                "image id {seed} is out of range: this server shows ids 0..{}",
                self.limits.max_id - 1
            )));
        }
        Ok(())
    }

    fn painter(&self, layer: &str) -> Result<Painter<'_>, ApiError> {
        self.models
            .session
            .painter_at(layer)
            .map_err(|e| ApiError::internal(format!("{e:#}")))
    }

    /// Makes sure the scenes `seeds` of `layer` are in the cache (computing the missing ones
    /// as one batch) and marks them used.
    fn base(&mut self, layer: &str, seeds: &[u64]) -> Result<(), ApiError> {
        let mut missing: Vec<u64> = seeds
            .iter()
            .copied()
            .filter(|s| !self.cache.contains_key(&(layer.to_string(), *s)))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let made = (|| -> Result<Vec<(SceneBase, ScenePngs)>> {
                let painter = self.models.session.painter_at(layer)?;
                let bases = painter.bases(&missing)?;
                let images = to_rgb_images(&Tensor::stack(
                    &bases.iter().map(|b| &b.image).collect::<Vec<_>>(),
                    0,
                ))?;
                bases
                    .into_iter()
                    .zip(images)
                    .map(|(b, img)| {
                        let pngs = ScenePngs {
                            image: Arc::new(png_rgb(&img)?),
                            segmentation: Arc::new(self.overlay(&b.segmentation)?),
                        };
                        Ok((b, pngs))
                    })
                    .collect()
            })()
            .map_err(|e| ApiError::internal(format!("cannot draw the scene: {e:#}")))?;
            // the least recently used scenes go, never one this batch needs
            while self.cache.len() + made.len() > self.limits.scenes.max(MAX_BATCH) {
                let oldest = self
                    .cache
                    .iter()
                    .filter(|((l, s), _)| !(l == layer && seeds.contains(s)))
                    .min_by_key(|(_, c)| c.used)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => self.cache.remove(&k),
                    None => break,
                };
            }
            for (base, pngs) in made {
                self.cache.insert(
                    (layer.to_string(), base.seed),
                    Cached {
                        base,
                        pngs,
                        used: 0,
                    },
                );
            }
        }
        for s in seeds {
            self.clock += 1;
            if let Some(c) = self.cache.get_mut(&(layer.to_string(), *s)) {
                c.used = self.clock;
            }
        }
        Ok(())
    }

    fn plan(&self, req: &PaintRequest) -> Result<Planned, ApiError> {
        let layer = self.layer_name(req.layer.as_deref())?;
        self.check_seed(req.seed)?;
        let side = self.info.image_size;
        let catalog = &self.models.catalogs[&layer];
        let strokes = req
            .strokes
            .iter()
            .enumerate()
            .map(|(j, s)| {
                self.plan_stroke(s, side, catalog)
                    .map_err(|e| ApiError::unprocessable(format!("stroke {}: {e}", j + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Planned {
            layer,
            plan: ScenePlan {
                seed: req.seed,
                strokes,
                force: false,
            },
        })
    }

    fn plan_stroke(
        &self,
        s: &StrokeRequest,
        side: u32,
        catalog: &crate::edit::UnitCatalog,
    ) -> Result<PlannedStroke, String> {
        self.models
            .session
            .segmenter
            .label_id(&s.concept)
            .map_err(|e| format!("{e:#}"))?;
        let mask = s.mask.tensor(side)?;
        let opts = PlanOptions {
            k: s.k.unwrap_or(crate::edit::plan::DEFAULT_K),
            units: s.units.clone(),
            ..PlanOptions::default()
        };
        let mut planned = plan_stroke(
            catalog,
            Stroke {
                action: s.op,
                concept: s.concept.clone(),
                mask,
            },
            &opts,
        )
        .map_err(|e| format!("{e:#}"))?;
        planned.force = s.force;
        Ok(planned)
    }

    /// Paints planned stacks of one layer as a batch.
    fn paint(&mut self, plans: &[&Planned]) -> Result<Vec<SceneOutcome>, ApiError> {
        let layer = &plans[0].layer;
        let seeds: Vec<u64> = plans.iter().map(|p| p.plan.seed).collect();
        self.base(layer, &seeds)?;
        let painter = self.painter(layer)?;
        let pairs: Vec<(&SceneBase, &ScenePlan)> = plans
            .iter()
            .map(|p| (&self.cache[&(layer.clone(), p.plan.seed)].base, &p.plan))
            .collect();
        painter
            .paint_bases(&pairs)
            .map_err(|e| ApiError::internal(format!("painting failed: {e:#}")))
    }

    fn painted(&self, layer: &str, outcome: &SceneOutcome) -> Result<Painted, ApiError> {
        let pngs = if outcome.changed() {
            let encode = || -> Result<ScenePngs> {
                let img = to_rgb_images(&outcome.edited.unsqueeze(0))?.remove(0);
                Ok(ScenePngs {
                    image: Arc::new(png_rgb(&img)?),
                    segmentation: Arc::new(self.overlay(&outcome.segmentation)?),
                })
            };
            encode().map_err(|e| ApiError::internal(format!("cannot encode: {e:#}")))?
        } else {
            // the original's own bytes, so that undoing every stroke shows them again exactly
            self.cache[&(layer.to_string(), outcome.seed)].pngs.clone()
        };
        Ok(Painted {
            layer: layer.to_string(),
            pngs,
            changed: outcome.changed(),
            strokes: outcome.strokes.clone(),
        })
    }

    fn export(&mut self, req: &PaintRequest, p: Planned) -> Result<Vec<u8>, ApiError> {
        let outcome = self.paint(&[&p])?.remove(0);
        let layer = self
            .info
            .layer(&p.layer)
            .ok_or_else(|| ApiError::internal("the layer went missing"))?;
        painting_zip(&outcome, &p.plan.strokes, req, &self.info, layer)
            .map_err(|e| ApiError::internal(format!("cannot pack the painting: {e:#}")))
    }

    /// The first label map of `seg` (`[K, h, w]`) in the label colours, transparent where
    /// unlabelled.
    fn overlay(&self, seg: &Tensor) -> Result<Vec<u8>> {
        let first = seg.get(0).to_kind(Kind::Int64);
        let (h, w) = (first.size()[0] as u32, first.size()[1] as u32);
        let ids = Vec::<i64>::try_from(first.flatten(0, -1))?;
        let mut img = RgbaImage::new(w, h);
        for (p, id) in img.pixels_mut().zip(ids) {
            let id = usize::try_from(id).unwrap_or(0);
            if id > 0 {
                let c = self.colors.get(id).copied().unwrap_or([0, 0, 0]);
                *p = image::Rgba([c[0], c[1], c[2], 255]);
            }
        }
        let mut buf = Vec::new();
        img.write_with_encoder(fast_png(&mut buf))?;
        Ok(buf)
    }
}

/// PNG bytes of an RGB image, compressed fast: a stroke's answer crosses loopback once, so
/// encoding time matters more than a few bytes.
pub fn png_rgb(img: &RgbImage) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    img.write_with_encoder(fast_png(&mut buf))?;
    Ok(buf)
}

fn fast_png(buf: &mut Vec<u8>) -> PngEncoder<&mut Vec<u8>> {
    PngEncoder::new_with_quality(buf, CompressionType::Fast, FilterType::Sub)
}
