//! A 2-D map of a layer's codes over world scenes: each scene's features at the layer,
//! averaged over positions, embedded by [`tsne`], coloured by the scene's class. Written as a
//! chart (SVG and PNG) and as a self-contained page where hovering a point shows its scene.

use super::model::Model;
use super::tsne::{TsneOptions, tsne};
use crate::chart::{self, Axis, Point, Scatter};
use crate::fsutil::atomic_write;
use crate::imageio;
use crate::progress;
use crate::sample::world_batch;
use crate::world::SceneClass;
use anyhow::{Result, bail};
use base64::Engine;
use serde::Serialize;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Scenes per forward pass.
const BATCH: usize = 32;

/// Most scenes one map may hold (exact t-SNE keeps `n²` affinities).
pub const MAX_SCENES: usize = 4000;

/// The pooled codes `[N, C]` of `images` (`[N, 3, H, W]` in [−1, 1]) at `layer`: features
/// averaged over positions (flat layers as they are).
pub fn pooled_codes(model: &Model, layer: &str, images: &Tensor) -> Result<Tensor> {
    let cut = model.cut(layer)?;
    let _guard = tch::no_grad_guard();
    let n = images.size()[0];
    let mut parts = Vec::new();
    for s in (0..n).step_by(BATCH) {
        let e = (s + BATCH as i64).min(n);
        let f = model.features(&cut, &images.narrow(0, s, e - s));
        let pooled = if f.dim() == 4 {
            f.mean_dim([2, 3].as_slice(), false, Kind::Float)
        } else {
            f.flatten(1, -1)
        };
        parts.push(pooled.to_device(Device::Cpu));
    }
    Ok(Tensor::cat(&parts, 0))
}

/// One embedded scene.
#[derive(Clone, Debug, Serialize)]
pub struct EmbeddedScene {
    /// The world seed.
    pub seed: u64,
    /// Its class.
    pub class: String,
    /// Its place in the map.
    pub x: f64,
    /// Its place in the map.
    pub y: f64,
}

/// The map of a layer's codes.
pub struct Embedding {
    /// The layer.
    pub layer: String,
    /// The scenes with their places.
    pub scenes: Vec<EmbeddedScene>,
    /// The scenes' images, `[N, 3, 64, 64]` in [−1, 1].
    pub images: Tensor,
    /// The t-SNE divergence reached.
    pub kl: f64,
}

/// Embeds `n` world scenes (classes cycling, seeds from `first_seed`) by their codes at
/// `layer`.
pub fn embed_world(
    model: &Model,
    layer: &str,
    n: usize,
    first_seed: u64,
    opts: &TsneOptions,
) -> Result<Embedding> {
    if !(8..=MAX_SCENES).contains(&n) {
        bail!("an embedding needs 8 to {MAX_SCENES} scenes, not {n}");
    }
    let seeds: Vec<u64> = (first_seed..first_seed + n as u64).collect();
    let batch = world_batch(&seeds, true, Device::Cpu);
    let codes = pooled_codes(model, layer, &batch.images.to_device(model.net().device()))?;
    let bar = progress::bar(1, "t-SNE");
    let result = tsne(&codes, opts)?;
    bar.finish_and_clear();
    let pts = Vec::<f32>::try_from(result.points.flatten(0, -1))?;
    let classes = Vec::<i64>::try_from(batch.classes)?;
    let scenes = seeds
        .iter()
        .zip(&classes)
        .enumerate()
        .map(|(i, (&seed, &c))| EmbeddedScene {
            seed,
            class: SceneClass::ALL[c as usize].name().into(),
            x: pts[2 * i] as f64,
            y: pts[2 * i + 1] as f64,
        })
        .collect();
    Ok(Embedding {
        layer: layer.into(),
        scenes,
        images: batch.images,
        kl: result.kl,
    })
}

impl Embedding {
    /// The scatter chart of the map, one colour per class.
    pub fn chart(&self, model_name: &str) -> Scatter {
        Scatter::new(
            &format!("{model_name} {}: t-SNE of pooled codes", self.layer),
            Axis::linear("t-SNE 1"),
            Axis::linear("t-SNE 2"),
        )
        .points(
            self.scenes
                .iter()
                .map(|s| Point::new(s.x, s.y).group(&s.class)),
        )
        .note(&format!("{} scenes, KL {:.2}", self.scenes.len(), self.kl))
    }

    /// Writes `STEM.svg`, `STEM.png` and `STEM.html` (the chart with each scene shown on
    /// hover; scenes inlined as PNG data URIs).
    pub fn write(&self, stem: &Path, model_name: &str) -> Result<()> {
        let (figure, centres) = self.chart(model_name).render_placed()?;
        figure.save(stem)?;
        let pictures = imageio::to_rgb_images(&self.images)?;
        let mut points = Vec::new();
        for ((scene, centre), picture) in self.scenes.iter().zip(&centres).zip(&pictures) {
            let Some((px, py)) = centre else { continue };
            let mut png = Vec::new();
            picture.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            points.push(serde_json::json!({
                "x": px, "y": py, "seed": scene.seed, "class": scene.class,
                "src": format!("data:image/png;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(&png)),
            }));
        }
        let mut page_text = format!("{}{HOVER_NOTE} (seed 0123456789)", figure.title());
        for s in &self.scenes {
            page_text.push_str(&s.class);
        }
        let font = chart::page_font_css(&[&figure], &page_text)?;
        let (w, h) = figure.size();
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{title}</title>{font}<style>{css}</style></head><body>\
             <h1>{title}</h1><p>{HOVER_NOTE}</p>\
             <div id=\"map\" style=\"width:{w}px;height:{h}px\">{svg}</div>\
             <div id=\"scene\" hidden><img id=\"scene-img\" alt=\"\" width=\"192\" height=\"192\">\
             <div id=\"scene-caption\"></div></div>\
             <script>const POINTS = {points};\n{js}</script></body></html>\n",
            title = html_escape(figure.title()),
            svg = figure.inline_svg(),
            points = serde_json::to_string(&points)?,
            css = PAGE_CSS,
            js = PAGE_JS,
        );
        let mut path = stem.as_os_str().to_owned();
        path.push(".html");
        atomic_write(Path::new(&path), html.as_bytes())
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const HOVER_NOTE: &str = "Hover over a point to see its scene.";

const PAGE_CSS: &str = "body{font-family:'DejaVu Sans',sans-serif;margin:24px;color:#262626}\
h1{font-size:18px;font-weight:normal}#map{position:relative;display:inline-block}\
#map svg{display:block}\
#scene{position:fixed;pointer-events:none;background:#fff;border:1px solid #999;padding:6px;\
font-size:13px}#scene img{image-rendering:pixelated;display:block}";

/// Finds the point nearest the pointer (within 10 SVG pixels) and shows its scene beside it.
const PAGE_JS: &str = r#"
const map = document.getElementById('map');
const panel = document.getElementById('scene');
const img = document.getElementById('scene-img');
const caption = document.getElementById('scene-caption');
map.addEventListener('mousemove', (e) => {
  const svg = map.querySelector('svg');
  const box = svg.getBoundingClientRect();
  const vb = svg.viewBox.baseVal;
  const sx = vb && vb.width ? vb.width / box.width : 1;
  const sy = vb && vb.height ? vb.height / box.height : 1;
  const x = (e.clientX - box.left) * sx, y = (e.clientY - box.top) * sy;
  let best = null, bestD = 100;
  for (const p of POINTS) {
    const d = (p.x - x) ** 2 + (p.y - y) ** 2;
    if (d <= bestD) { best = p; bestD = d; }
  }
  if (!best) { panel.hidden = true; return; }
  img.src = best.src;
  caption.textContent = best.class + ' (seed ' + best.seed + ')';
  panel.dataset.seed = best.seed;
  panel.style.left = (e.clientX + 16) + 'px';
  panel.style.top = (e.clientY + 16) + 'px';
  panel.hidden = false;
});
map.addEventListener('mouseleave', () => { panel.hidden = true; });
"#;
