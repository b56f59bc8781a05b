//! The painting server under load: strokes sent over loopback HTTP to a server in this process.
//!
//! - **Stroke to image**: one client sends a stack of one to three strokes (a new region each
//!   time, on eight scenes whose features the server keeps) and waits for the answer with its
//!   image decoded; timed in interleaved rounds with the bare suffix forward at batch 1 on
//!   cached features, so their ratio (the server's overhead) holds on a busy machine.
//! - **Sustained**: several clients send strokes back to back for a fixed time; strokes per
//!   second and the latency each client saw.

use super::timing::{Percentiles, interleaved};
use crate::cut::Cut;
use crate::edit::DissectionSource;
use crate::serve::mask::MaskBits;
use crate::serve::{ProjectSource, ServeOptions, Server};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tch::Device;

/// p50 stroke-to-image at most this many milliseconds.
pub const MAX_P50_MS: f64 = 25.0;
/// p99 stroke-to-image at most this many milliseconds.
pub const MAX_P99_MS: f64 = 60.0;
/// Sustained strokes per second at least this with [`ServeSettings::clients`] clients.
pub const MIN_STROKES_PER_S: f64 = 20.0;
/// Stroke p50 over bare suffix p50 at most this.
pub const MAX_OVERHEAD: f64 = 1.5;

/// How much of the server to measure.
#[derive(Clone, Debug, Serialize)]
pub struct ServeSettings {
    /// Untimed rounds first (they also fill the server's scene cache).
    pub warmup: usize,
    /// Timed strokes of the single client, at least.
    pub strokes: usize,
    /// Rounds go on until the timed ones took this many seconds.
    pub min_seconds: f64,
    /// Concurrent clients of the sustained run.
    pub clients: usize,
    /// Length of the sustained run in seconds.
    pub sustained_seconds: f64,
}

impl ServeSettings {
    /// The quick or the recorded settings.
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                warmup: 8,
                strokes: 20,
                min_seconds: 0.5,
                clients: 4,
                sustained_seconds: 1.0,
            }
        } else {
            Self {
                warmup: 16,
                strokes: 200,
                min_seconds: 10.0,
                clients: 4,
                sustained_seconds: 15.0,
            }
        }
    }
}

/// What the server workload measured.
#[derive(Clone, Debug, Serialize)]
pub struct ServeBench {
    /// The generator.
    pub model: String,
    /// The painted layer.
    pub layer: String,
    /// The concept painted.
    pub concept: String,
    /// The settings.
    pub settings: ServeSettings,
    /// One client: sending a stroke stack to holding the decoded image.
    pub stroke: Percentiles,
    /// The bare suffix forward at batch 1 on cached features, in the same rounds.
    pub suffix: Percentiles,
    /// The segmenter's forward at batch 1 on a generated image, in the same rounds: every
    /// stroke answer segments the edited scene to report the stroke's effect.
    pub segmentation: Percentiles,
    /// `stroke.p50 / suffix.p50`.
    pub overhead_ratio: f64,
    /// `stroke.p50 / (suffix.p50 + segmentation.p50)`: what the server adds over the two
    /// forwards every answer needs.
    pub overhead_over_forwards: f64,
    /// Strokes answered per second with `settings.clients` clients.
    pub sustained_strokes_per_s: f64,
    /// The latency those clients saw.
    pub sustained: Percentiles,
    /// Requests refused or failed during the sustained run (should be none).
    pub failed: usize,
}

/// A square region of side `size` at `(x, y)` of a `side × side` image.
fn square(side: u32, x: u32, y: u32, size: u32) -> MaskBits {
    let on: Vec<bool> = (0..side * side)
        .map(|i| {
            let (px, py) = (i % side, i / side);
            px >= x && px < x + size && py >= y && py < y + size
        })
        .collect();
    MaskBits::pack(side, side, &on)
}

/// The `i`-th request: scene `i % 8`, a stack of 1–3 strokes in regions that move with `i`.
fn request(project: &str, concept: &str, side: u32, i: usize) -> String {
    let size = side * 3 / 8;
    let strokes: Vec<Value> = (0..=i % 3)
        .map(|j| {
            let (x, y) = (((i + 3 * j) * 7) as u32, ((i + 5 * j) * 11) as u32);
            let (x, y) = (x % (side - size), y % (side - size));
            json!({"op": "remove", "concept": concept, "mask": square(side, x, y, size), "k": 20})
        })
        .collect();
    json!({"project": project, "seed": 100 + i % 8, "strokes": strokes}).to_string()
}

fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Sends one paint request and decodes the image of the answer.
fn stroke(agent: &ureq::Agent, url: &str, body: &str) -> Result<()> {
    use base64::Engine;
    let mut r = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body)?;
    let status = r.status().as_u16();
    let bytes = r.body_mut().read_to_vec()?;
    if status != 200 {
        bail!(
            "the server answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    let v: Value = serde_json::from_slice(&bytes)?;
    let src = v["image"].as_str().context("no image in the answer")?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(src.trim_start_matches("data:image/png;base64,"))?;
    image::load_from_memory(&png)?;
    Ok(())
}

/// Measures the server on `model` (painting `layer`; dissection cached under
/// `out/dissect-cache`).
pub fn measure(
    model: &str,
    segmenter: &str,
    layer: &str,
    settings: &ServeSettings,
    device: Device,
) -> Result<ServeBench> {
    let mut opts = ServeOptions::new(ProjectSource::Model {
        model: model.into(),
        segmenter: segmenter.into(),
        layers: vec![layer.into()],
        dissection: DissectionSource::default(),
    });
    opts.addr = "127.0.0.1:0".parse()?;
    opts.device = device;
    let server = Server::start(&opts)?;
    let info = std::sync::Arc::clone(&server.projects()[0]);
    let l = &info.layers[0];
    let concept = l
        .concepts
        .iter()
        .find(|c| c.concept == "tree")
        .or(l.concepts.first())
        .context("no concept has interpretable units at the layer")?
        .concept
        .clone();
    let url = format!("{}api/paint", server.url());
    let side = info.image_size;

    // the bare suffix on cached features, as the server's painter runs it
    let (g, _) = crate::zoo::load_generator(model, device)?;
    let cut = Cut::new(&g, layer)?;
    let seg = crate::segment::load_segmenter(segmenter, device)?;
    let (features, image) = {
        let _guard = tch::no_grad_guard();
        let z = crate::zsample::z_rows(opts.stream, &[100], g.z_dim() as usize, device)?;
        let features = cut.prefix(&z);
        let image = cut.suffix(&features).clamp(-1.0, 1.0);
        let image = match seg.input_size() {
            Some(s) if image.size()[2..] != [s, s] => {
                image.upsample_bilinear2d([s, s], false, None, None)
            }
            _ => image,
        };
        (features, image)
    };
    let agent = client();
    let mut i = 0usize;
    let mut error = None;
    let mut http = || {
        if let Err(e) = stroke(&agent, &url, &request(&info.project, &concept, side, i)) {
            error.get_or_insert(e);
        }
        i += 1;
    };
    let mut bare = || {
        let _guard = tch::no_grad_guard();
        let _ = cut.suffix(&features).clamp(-1.0, 1.0);
    };
    let mut segment = || {
        let _guard = tch::no_grad_guard();
        let _ = seg.segment(&image);
    };
    let times = interleaved(
        &mut [&mut http, &mut bare, &mut segment],
        settings.warmup,
        settings.strokes,
        settings.min_seconds,
        device,
    );
    if let Some(e) = error {
        return Err(e.context("a stroke failed"));
    }
    let stroke_p = Percentiles::from_seconds(&times[0]);
    let suffix_p = Percentiles::from_seconds(&times[1]);
    let seg_p = Percentiles::from_seconds(&times[2]);

    // several clients at once
    let deadline = Instant::now() + Duration::from_secs_f64(settings.sustained_seconds);
    let started = Instant::now();
    let results: Vec<(Vec<f64>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..settings.clients)
            .map(|c| {
                let (url, info, concept) = (&url, &info, &concept);
                s.spawn(move || {
                    let agent = client();
                    let (mut times, mut failed) = (Vec::new(), 0);
                    let mut n = c * 1000;
                    while Instant::now() < deadline {
                        let body = request(&info.project, concept, side, n);
                        let t = Instant::now();
                        match stroke(&agent, url, &body) {
                            Ok(()) => times.push(t.elapsed().as_secs_f64()),
                            Err(_) => failed += 1,
                        }
                        n += 1;
                    }
                    (times, failed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client"))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let all: Vec<f64> = results
        .iter()
        .flat_map(|(t, _)| t.iter().copied())
        .collect();
    let failed = results.iter().map(|(_, f)| f).sum();
    server.stop();
    Ok(ServeBench {
        model: model.into(),
        layer: l.layer.clone(),
        concept,
        settings: settings.clone(),
        overhead_ratio: stroke_p.p50_ms / suffix_p.p50_ms,
        overhead_over_forwards: stroke_p.p50_ms / (suffix_p.p50_ms + seg_p.p50_ms),
        stroke: stroke_p,
        suffix: suffix_p,
        segmentation: seg_p,
        sustained_strokes_per_s: all.len() as f64 / elapsed,
        sustained: Percentiles::from_seconds(&all),
        failed,
    })
}

/// The server's targets.
pub fn targets(s: &ServeBench) -> Vec<super::Target> {
    let t = |name: &str, goal: String, value: f64, met: bool| super::Target {
        name: name.into(),
        goal,
        value: Some(value),
        met: Some(met),
    };
    vec![
        t(
            "serve: stroke to image p50, ms",
            format!("≤ {MAX_P50_MS}"),
            s.stroke.p50_ms,
            s.stroke.p50_ms <= MAX_P50_MS,
        ),
        t(
            "serve: stroke to image p99, ms",
            format!("≤ {MAX_P99_MS}"),
            s.stroke.p99_ms,
            s.stroke.p99_ms <= MAX_P99_MS,
        ),
        t(
            &format!("serve: strokes/s, {} clients", s.settings.clients),
            format!("≥ {MIN_STROKES_PER_S}"),
            s.sustained_strokes_per_s,
            s.sustained_strokes_per_s >= MIN_STROKES_PER_S && s.failed == 0,
        ),
        t(
            "serve: stroke / bare suffix (p50)",
            format!("≤ {MAX_OVERHEAD}"),
            s.overhead_ratio,
            s.overhead_ratio <= MAX_OVERHEAD,
        ),
    ]
}

/// The server's lines of the printed table.
pub fn render(s: &ServeBench) -> String {
    let mut out = format!(
        "\nserve ({} at {}, removing {} over loopback HTTP)\n  {:<34} {:>10} {:>10} {:>10}\n",
        s.model, s.layer, s.concept, "ms", "p50", "p95", "p99"
    );
    for (what, p) in [
        ("stroke to image, 1 client", &s.stroke),
        ("bare suffix forward", &s.suffix),
        ("segmenter forward", &s.segmentation),
        (
            &*format!("stroke to image, {} clients", s.settings.clients),
            &s.sustained,
        ),
    ] {
        out.push_str(&format!(
            "  {what:<34} {:>10.2} {:>10.2} {:>10.2}\n",
            p.p50_ms, p.p95_ms, p.p99_ms
        ));
    }
    out.push_str(&format!(
        "  stroke / bare suffix (p50)         {:.3}\n  stroke / (suffix + segmenter)      {:.3}\n  sustained, {} clients              {:.1} strokes/s ({} failed)\n",
        s.overhead_ratio,
        s.overhead_over_forwards,
        s.settings.clients,
        s.sustained_strokes_per_s,
        s.failed
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_stack_one_to_three_strokes_inside_the_image() {
        for i in 0..12 {
            let v: Value = serde_json::from_str(&request("p", "tree", 64, i)).unwrap();
            let strokes = v["strokes"].as_array().unwrap();
            assert_eq!(strokes.len(), i % 3 + 1);
            assert_eq!(v["seed"], 100 + (i % 8) as u64);
            for s in strokes {
                let m: MaskBits = serde_json::from_value(s["mask"].clone()).unwrap();
                let on = m.unpack(64).unwrap();
                assert_eq!(on.iter().filter(|b| **b).count(), 24 * 24);
            }
        }
    }
}
