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
        let grid = (features.size()[2], features.size()[3]);
        let all: Vec<Vec<bool>> = scenes
            .iter()
            .map(|s| s.strokes.iter().map(|st| !st.empty).collect())
            .collect();
        let (originals, edited) = self.render(scenes, &features, &all, true)?;
        let originals = originals.expect("originals were asked for");
        let n = scenes.len() as i64;
        let segs = self.segment(&Tensor::cat(&[&originals, &edited], 0))?;
        let (seg_before, seg_after) = (segs.narrow(0, 0, n), segs.narrow(0, n, n));
        let mut outcomes = Vec::with_capacity(scenes.len());
        let mut keep = all.clone();
        for (i, scene) in scenes.iter().enumerate() {
            let (b, a) = (seg_before.get(i as i64), seg_after.get(i as i64));
            let mut strokes = Vec::with_capacity(scene.strokes.len());
            for (j, stroke) in scene.strokes.iter().enumerate() {
                let effect = self.measure(stroke, &b, &a, grid)?;
                let rejected = matches!(&effect, Effect::Insertion(v) if !v.accepted);
                if rejected && !scene.force {
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
                original: originals.get(i as i64),
                edited: edited.get(i as i64),
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
                }
                left
            })
            .collect();
        if !redo.is_empty() {
            let idx = Tensor::from_slice(&redo.iter().map(|&i| i as i64).collect::<Vec<_>>())
                .to_device(features.device());
            let sub_scenes: Vec<&ScenePlan> = redo.iter().map(|&i| scenes[i]).collect();
            let sub_keep: Vec<Vec<bool>> = redo.iter().map(|&i| keep[i].clone()).collect();
            let (_, again) = self.render(
                &sub_scenes,
                &features.index_select(0, &idx),
                &sub_keep,
                false,
            )?;
            let seg_again = self.segment(&again)?;
            for (r, &i) in redo.iter().enumerate() {
                let out = &mut outcomes[i];
                out.edited = again.get(r as i64);
                let a = seg_again.get(r as i64);
                let b = seg_before.get(i as i64);
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

    /// Runs the suffix once for the unedited features (when asked for, or needed by a scene
    /// without edits) and every scene with an edit left; returns `(originals, edited)`, each
    /// `[N, 3, H, W]` clamped to [−1, 1]; a scene without edits repeats its original.
    fn render(
        &self,
        scenes: &[&ScenePlan],
        features: &Tensor,
        keep: &[Vec<bool>],
        with_originals: bool,
    ) -> Result<(Option<Tensor>, Tensor)> {
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
        let need_originals = with_originals || which.len() < scenes.len();
        if need_originals {
            parts.insert(0, features.shallow_clone());
        }
        let out = self.cut.suffix(&Tensor::cat(&parts, 0)).clamp(-1.0, 1.0);
        let originals = need_originals.then(|| out.narrow(0, 0, n));
        let offset = if need_originals { n } else { 0 };
        let mut rows = Vec::with_capacity(scenes.len());
        for i in 0..scenes.len() {
            rows.push(match (which.iter().position(|&w| w == i), &originals) {
                (Some(r), _) => out.narrow(0, offset + r as i64, 1),
                (None, Some(o)) => o.narrow(0, i as i64, 1),
                (None, None) => unreachable!("originals are rendered when a scene has no edit"),
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
                    "; kept (--force)"
                } else {
                    "; dropped (--force keeps it)"
                });
            }
            s
        }
    }
}
