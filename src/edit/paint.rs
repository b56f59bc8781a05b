//! Painting scenes: generate, edit at the cut layer, re-segment and judge every stroke.
//!
//! Scenes are processed as a batch: one prefix forward for all latents, each scene's strokes
//! composited on its own features, then one suffix forward for the originals and the edited
//! features together, and one segmentation. An insertion that fails the context check is
//! dropped (unless forced) and its scene rendered again without it.

use super::plan::{Action, PlannedStroke, StrokeRecord};
use super::verdict::{InsertionVerdict, Region, RemovalEffect, judge_insertion, measure_removal};
use crate::cut::Cut;
use crate::nets::proggan::ProGan;
use crate::segment::Segmenter;
use crate::zsample::z_rows;
use anyhow::{Result, bail};
use serde::Serialize;
use tch::{Device, Tensor};

/// What one stroke did.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Effect {
    /// Nothing was done (an empty mask).
    Skipped {
        /// Why.
        reason: String,
    },
    /// A removal and its measured effect.
    Removal(RemovalEffect),
    /// An insertion and its context check.
    Insertion(InsertionVerdict),
}

/// A stroke's plan, effect and fate.
#[derive(Clone, Debug, Serialize)]
pub struct StrokeOutcome {
    /// The plan (units, values, layer).
    #[serde(flatten)]
    pub plan: StrokeRecord,
    /// What it did, measured on the segmentation of the image it was painted in.
    pub effect: Effect,
    /// Whether the stroke is in the final image.
    pub kept: bool,
    /// A one-line account.
    pub summary: String,
}

/// One scene to paint.
#[derive(Debug)]
pub struct ScenePlan {
    /// Image id (row of the latent stream).
    pub seed: u64,
    /// Strokes in painting order.
    pub strokes: Vec<PlannedStroke>,
    /// Keep insertions that fail the context check.
    pub force: bool,
}

/// A painted scene.
#[derive(Debug)]
pub struct SceneOutcome {
    /// Image id.
    pub seed: u64,
    /// The unedited image `[3, H, W]` in [−1, 1].
    pub original: Tensor,
    /// The final image `[3, H, W]` in [−1, 1].
    pub edited: Tensor,
    /// The final image's label maps `[K, h, w]`, on the CPU.
    pub segmentation: Tensor,
    /// Per stroke, in order.
    pub strokes: Vec<StrokeOutcome>,
}

impl SceneOutcome {
    /// Whether any stroke is in the final image.
    pub fn changed(&self) -> bool {
        self.strokes
            .iter()
            .any(|s| s.kept && !matches!(s.effect, Effect::Skipped { .. }))
    }
}

/// A scene's unedited state, kept by an interactive painter so that painting it again costs
/// only the edit, the suffix forward and one segmentation.
#[derive(Debug)]
pub struct SceneBase {
    /// Image id.
    pub seed: u64,
    /// The cut layer's features `[1, C, h, w]`.
    pub features: Tensor,
    /// The unedited image `[3, H, W]` in [−1, 1].
    pub image: Tensor,
    /// Its label maps `[K, h, w]`, on the CPU.
    pub segmentation: Tensor,
}

/// A generator cut at a layer, a segmenter and the latent stream image ids index.
pub struct Painter<'a> {
    cut: Cut<'a, ProGan>,
    segmenter: &'a dyn Segmenter,
    stream: u32,
    z_dim: usize,
    device: Device,
}

impl<'a> Painter<'a> {
    /// A painter editing `layer` of `generator`, images ids indexing latent stream `stream`.
    pub fn new(
        generator: &'a ProGan,
        layer: &str,
        segmenter: &'a dyn Segmenter,
        stream: u32,
        device: Device,
    ) -> Result<Self> {
        Ok(Self {
            cut: Cut::new(generator, layer)?,
            segmenter,
            stream,
            z_dim: generator.z_dim() as usize,
            device,
        })
    }

    /// The canonical name of the edited layer.
    pub fn layer(&self) -> &str {
        self.cut.layer_name()
    }

    /// The seed of the latent stream image ids index.
    pub fn stream(&self) -> u32 {
        self.stream
    }

    /// The segmenter.
    pub fn segmenter(&self) -> &dyn Segmenter {
        self.segmenter
    }

    /// The cut generator.
    pub fn cut(&self) -> &Cut<'a, ProGan> {
        &self.cut
    }

    /// Latents for image ids.
    pub fn latents(&self, seeds: &[u64]) -> Result<Tensor> {
        z_rows(self.stream, seeds, self.z_dim, self.device)
    }

    /// Label maps `[N, K, h, w]` of images `[N, 3, H, W]` (resized to the segmenter's input
    /// side when it has one), on the CPU where they are measured.
    pub fn segment(&self, images: &Tensor) -> Result<Tensor> {
        let images = match self.segmenter.input_size() {
            Some(s) if images.size()[2..] != [s, s] => {
                images.upsample_bilinear2d([s, s], false, None, None)
            }
            _ => images.shallow_clone(),
        };
        Ok(self.segmenter.segment(&images)?.to_device(Device::Cpu))
    }

    /// Paints `scenes` as one batch.
    pub fn paint(&self, scenes: &[&ScenePlan]) -> Result<Vec<SceneOutcome>> {
        if scenes.is_empty() {
            return Ok(Vec::new());
        }
        let _guard = tch::no_grad_guard();
        let seeds: Vec<u64> = scenes.iter().map(|s| s.seed).collect();
        let features = self.cut.prefix(&self.latents(&seeds)?);
        let all = strokes_drawn(scenes);
        let (originals, edited) = self.render(scenes, &features, &all, None)?;
        let n = scenes.len() as i64;
        let segs = self.segment(&Tensor::cat(&[&originals, &edited], 0))?;
        let (seg_before, seg_after) = (segs.narrow(0, 0, n), segs.narrow(0, n, n));
        self.judge(
            scenes,
            Rendered {
                features: &features,
                originals: &originals,
                seg_before: &seg_before,
                edited,
                seg_after: &seg_after,
            },
            all,
        )
    }

    /// The unedited state of scenes `seeds` (one prefix forward, one suffix forward, one
    /// segmentation), for painting them again and again with [`Painter::paint_bases`].
    pub fn bases(&self, seeds: &[u64]) -> Result<Vec<SceneBase>> {
        if seeds.is_empty() {
            return Ok(Vec::new());
        }
        let _guard = tch::no_grad_guard();
        let features = self.cut.prefix(&self.latents(seeds)?);
        let images = self.cut.suffix(&features).clamp(-1.0, 1.0);
        let segs = self.segment(&images)?;
        Ok(seeds
            .iter()
            .enumerate()
            .map(|(i, &seed)| {
                let i = i as i64;
                SceneBase {
                    seed,
                    features: features.narrow(0, i, 1),
                    image: images.get(i),
                    segmentation: segs.get(i),
                }
            })
            .collect())
    }

    /// Paints scenes from their kept unedited state: a stroke costs its compositing, the suffix
    /// forward and one segmentation, not the prefix. Each plan's seed must be its base's.
    pub fn paint_bases(&self, scenes: &[(&SceneBase, &ScenePlan)]) -> Result<Vec<SceneOutcome>> {
        if scenes.is_empty() {
            return Ok(Vec::new());
        }
        if let Some((b, p)) = scenes.iter().find(|(b, p)| b.seed != p.seed) {
            bail!(
                "scene {} was planned on the base of scene {}",
                p.seed,
                b.seed
            );
        }
        let _guard = tch::no_grad_guard();
        let plans: Vec<&ScenePlan> = scenes.iter().map(|(_, p)| *p).collect();
        let features = Tensor::cat(
            &scenes.iter().map(|(b, _)| &b.features).collect::<Vec<_>>(),
            0,
        );
        let originals = Tensor::stack(&scenes.iter().map(|(b, _)| &b.image).collect::<Vec<_>>(), 0);
        let seg_before = Tensor::stack(
            &scenes
                .iter()
                .map(|(b, _)| &b.segmentation)
                .collect::<Vec<_>>(),
            0,
        );
        let all = strokes_drawn(&plans);
        let (_, edited) = self.render(&plans, &features, &all, Some(&originals))?;
        // only the scenes with a stroke drawn are segmented again
        let drawn: Vec<i64> = (0..plans.len())
            .filter(|&i| all[i].iter().any(|d| *d))
            .map(|i| i as i64)
            .collect();
        let seg_after = if drawn.is_empty() {
            seg_before.shallow_clone()
        } else {
            let idx = Tensor::from_slice(&drawn);
            let again = self.segment(&edited.index_select(0, &idx.to_device(edited.device())))?;
            seg_before.index_copy(0, &idx, &again)
        };
        self.judge(
            &plans,
            Rendered {
                features: &features,
                originals: &originals,
                seg_before: &seg_before,
                edited,
                seg_after: &seg_after,
            },
            all,
        )
    }

    /// Measures every drawn stroke, drops the insertions the context check rejects (unless
    /// forced) and renders the scenes that lost a stroke again.
    fn judge(
        &self,
        scenes: &[&ScenePlan],
        r: Rendered<'_>,
        all: Vec<Vec<bool>>,
    ) -> Result<Vec<SceneOutcome>> {
        let grid = (r.features.size()[2], r.features.size()[3]);
        let mut outcomes = Vec::with_capacity(scenes.len());
        let mut keep = all.clone();
        for (i, scene) in scenes.iter().enumerate() {
            let (b, a) = (r.seg_before.get(i as i64), r.seg_after.get(i as i64));
            let mut strokes = Vec::with_capacity(scene.strokes.len());
            for (j, stroke) in scene.strokes.iter().enumerate() {
                let effect = self.measure(stroke, &b, &a, grid)?;
                let rejected = matches!(&effect, Effect::Insertion(v) if !v.accepted);
                if rejected && !scene.force && !stroke.force {
                    keep[i][j] = false;
                }
                strokes.push(StrokeOutcome {
                    plan: stroke.record(),
                    summary: summary(stroke, &effect, keep[i][j]),
                    effect,
                    kept: keep[i][j],
                });
            }
            outcomes.push(SceneOutcome {
                seed: scene.seed,
                original: r.originals.get(i as i64),
                edited: r.edited.get(i as i64),
                segmentation: a,
                strokes,
            });
        }
        // Scenes that lost a stroke are rendered again without it and measured again (a scene
        // left without strokes is its original).
        let redo: Vec<usize> = (0..scenes.len())
            .filter(|&i| keep[i] != all[i])
            .filter(|&i| {
                let left = keep[i].iter().any(|k| *k);
                if !left {
                    outcomes[i].edited = outcomes[i].original.shallow_clone();
                    outcomes[i].segmentation = r.seg_before.get(i as i64);
                }
                left
            })
            .collect();
        if !redo.is_empty() {
            let idx = Tensor::from_slice(&redo.iter().map(|&i| i as i64).collect::<Vec<_>>())
                .to_device(r.features.device());
            let sub_scenes: Vec<&ScenePlan> = redo.iter().map(|&i| scenes[i]).collect();
            let sub_keep: Vec<Vec<bool>> = redo.iter().map(|&i| keep[i].clone()).collect();
            let (_, again) = self.render(
                &sub_scenes,
                &r.features.index_select(0, &idx),
                &sub_keep,
                Some(&r.originals.index_select(0, &idx)),
            )?;
            let seg_again = self.segment(&again)?;
            for (k, &i) in redo.iter().enumerate() {
                let out = &mut outcomes[i];
                out.edited = again.get(k as i64);
                let a = seg_again.get(k as i64);
                out.segmentation = a.shallow_clone();
                let b = r.seg_before.get(i as i64);
                for (j, stroke) in scenes[i].strokes.iter().enumerate() {
                    if keep[i][j] && !stroke.empty {
                        let effect = self.measure(stroke, &b, &a, grid)?;
                        out.strokes[j].summary = summary(stroke, &effect, true);
                        out.strokes[j].effect = effect;
                    }
                }
            }
        }
        Ok(outcomes)
    }

    /// Runs the suffix for every scene with an edit left, and for the unedited features too
    /// when `originals` are not given (in the same forward); returns `(originals, edited)`,
    /// each `[N, 3, H, W]` clamped to [−1, 1]; a scene without edits repeats its original.
    fn render(
        &self,
        scenes: &[&ScenePlan],
        features: &Tensor,
        keep: &[Vec<bool>],
        originals: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let n = scenes.len() as i64;
        let mut parts: Vec<Tensor> = Vec::new();
        let mut which = Vec::new();
        for (i, scene) in scenes.iter().enumerate() {
            let edits: Vec<_> = scene
                .strokes
                .iter()
                .zip(&keep[i])
                .filter(|(s, k)| **k && !s.empty)
                .map(|(s, _)| s.edit())
                .collect();
            if !edits.is_empty() {
                parts.push(self.cut.edit(&features.narrow(0, i as i64, 1), &edits)?);
                which.push(i);
            }
        }
        let (originals, edited) = match originals {
            Some(o) => {
                let edited = (!parts.is_empty())
                    .then(|| self.cut.suffix(&Tensor::cat(&parts, 0)).clamp(-1.0, 1.0));
                (o.shallow_clone(), edited)
            }
            None => {
                parts.insert(0, features.shallow_clone());
                let out = self.cut.suffix(&Tensor::cat(&parts, 0)).clamp(-1.0, 1.0);
                let m = out.size()[0] - n;
                (out.narrow(0, 0, n), Some(out.narrow(0, n, m)))
            }
        };
        let mut rows = Vec::with_capacity(scenes.len());
        for i in 0..scenes.len() {
            rows.push(match (which.iter().position(|&w| w == i), &edited) {
                (Some(r), Some(e)) => e.narrow(0, r as i64, 1),
                _ => originals.narrow(0, i as i64, 1),
            });
        }
        Ok((originals, Tensor::cat(&rows, 0)))
    }

    fn measure(
        &self,
        stroke: &PlannedStroke,
        before: &Tensor,
        after: &Tensor,
        grid: (i64, i64),
    ) -> Result<Effect> {
        if stroke.empty {
            return Ok(Effect::Skipped {
                reason: "empty mask".into(),
            });
        }
        let concept = self.segmenter.label_id(&stroke.concept)? as i64;
        let Some(pooled) = stroke.edit().pooled_mask(grid.0, grid.1) else {
            bail!("a stroke has no mask");
        };
        let (h, w) = (before.size()[1], before.size()[2]);
        let region = Region::from_pooled(&pooled, h, w)?;
        Ok(match stroke.action {
            Action::Remove => Effect::Removal(measure_removal(before, after, &region, concept)?),
            Action::Add => Effect::Insertion(judge_insertion(
                before,
                after,
                &region,
                concept,
                self.segmenter.labels(),
            )?),
        })
    }
}

/// Which strokes of each scene are drawn (not empty).
fn strokes_drawn(scenes: &[&ScenePlan]) -> Vec<Vec<bool>> {
    scenes
        .iter()
        .map(|s| s.strokes.iter().map(|st| !st.empty).collect())
        .collect()
}

/// A batch rendered once with every drawn stroke, with its segmentations.
struct Rendered<'t> {
    features: &'t Tensor,
    originals: &'t Tensor,
    seg_before: &'t Tensor,
    edited: Tensor,
    seg_after: &'t Tensor,
}

fn summary(stroke: &PlannedStroke, effect: &Effect, kept: bool) -> String {
    match effect {
        Effect::Skipped { reason } => format!(
            "{} {}: skipped ({reason}; nothing to paint)",
            stroke.action, stroke.concept
        ),
        Effect::Removal(r) => format!("remove {}: {}", stroke.concept, r.describe(&stroke.concept)),
        Effect::Insertion(v) => {
            let mut s = format!("add {}: {}", stroke.concept, v.describe(&stroke.concept));
            if !v.accepted {
                s.push_str(if kept {
                    "; kept (forced)"
                } else {
                    "; dropped (--force keeps it)"
                });
            }
            s
        }
    }
}
