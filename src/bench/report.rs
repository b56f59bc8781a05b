//! The benchmark report: JSON fields, the targets it is judged against, and the printed table.

use super::baseline::{BaselineModel, Comparison};
use super::measure::{Dissection, EditSpec, Settings, SingleEdit, Throughput};
use super::models::RANDOM256;
use super::paths::Paths;
use super::timing::Percentiles;
use serde::Serialize;
use std::fmt::Write;
use std::path::PathBuf;

/// Everything measured on one model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelReport {
    /// The model's name.
    pub name: String,
    /// Where its weights come from.
    pub origin: String,
    /// The weights file both sides loaded.
    pub weights: PathBuf,
    /// Channel sizes.
    pub sizes: Vec<i64>,
    /// Image side in pixels.
    pub resolution: i64,
    /// The cut layer.
    pub layer: String,
    /// The edit applied.
    pub edit: EditSpec,
    /// How our generator computes the convolutions after an upsampling (`fused` or `plain`).
    pub upsample_conv: String,
    /// Our generator's memory layout (`channels-last` or `nchw`).
    pub layout: String,
    /// The fused path against the plain one and against the other layout.
    pub paths: Paths,
    /// Batch-1 latency on cached features, with ratios (a) and (b).
    pub single: SingleEdit,
    /// Edited scenes per second by batch size.
    pub throughput: Vec<Throughput>,
    /// The dissection pipeline (small models only).
    pub dissection: Option<Dissection>,
    /// The PyTorch baseline's measurements.
    pub baseline: Option<BaselineModel>,
    /// Our time over the baseline's.
    pub vs_baseline: Option<Comparison>,
    /// The baseline's measurements with the allocator setting (no dissection).
    pub baseline_allocator: Option<BaselineModel>,
    /// Our time over those.
    pub vs_baseline_allocator: Option<Comparison>,
}

/// A target the measurements are judged against.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// What is measured.
    pub name: String,
    /// The goal, in words.
    pub goal: String,
    /// The measured value, when this run measured it.
    pub value: Option<f64>,
    /// Whether the goal is met, when measured.
    pub met: Option<bool>,
}

/// A benchmark run.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// libtorch intra-op threads (the baseline uses as many).
    pub threads: i64,
    /// Threading variables of the environment (`OMP_NUM_THREADS`, `OMP_WAIT_POLICY`) as set
    /// for this run; the baseline inherits them.
    pub thread_env: Vec<(String, String)>,
    /// Whether the quick settings were used.
    pub quick: bool,
    /// The settings.
    pub settings: Settings,
    /// Start time, seconds since the Unix epoch.
    pub started_unix: u64,
    /// The machine's 1, 5 and 15 minute load averages at the start (Linux).
    pub load_average_before: Option<[f64; 3]>,
    /// The same at the end.
    pub load_average_after: Option<[f64; 3]>,
    /// PyTorch version of the baseline, when run.
    pub baseline_torch: Option<String>,
    /// Per model.
    pub models: Vec<ModelReport>,
    /// The painting server, when measured.
    pub serve: Option<super::serve::ServeBench>,
    /// The targets.
    pub targets: Vec<Target>,
}

/// Ratio (a) at most this on the 256×256 model at batch 1.
pub const MAX_EDIT_OVERHEAD: f64 = 1.05;
/// Dissection throughput at least this multiple of the baseline's.
pub const MIN_DISSECT_SPEEDUP: f64 = 1.5;
/// Dissection throughput at least this multiple of the streaming baseline's.
pub const MIN_STREAMING_SPEEDUP: f64 = 2.0;
/// 256×256 generation at least this many times as fast as PyTorch's.
pub const MIN_GENERATION_SPEEDUP: f64 = 2.0;

/// The targets judged on `models`.
pub fn targets(models: &[ModelReport]) -> Vec<Target> {
    let overhead = models
        .iter()
        .find(|m| m.name == RANDOM256)
        .map(|m| m.single.overhead_ratio);
    let speedup = models
        .iter()
        .find_map(|m| m.vs_baseline.as_ref().and_then(|c| c.dissection_speedup));
    let streaming = models
        .iter()
        .find_map(|m| m.vs_baseline.as_ref().and_then(|c| c.streaming_speedup));
    let mut out = vec![
        Target {
            name: "edit overhead (a), 256×256 model, batch 1".into(),
            goal: format!("≤ {MAX_EDIT_OVERHEAD:.2}"),
            value: overhead,
            met: overhead.map(|v| v <= MAX_EDIT_OVERHEAD),
        },
        Target {
            name: "dissection throughput / PyTorch baseline".into(),
            goal: format!("≥ {MIN_DISSECT_SPEEDUP:.1}"),
            value: speedup,
            met: speedup.map(|v| v >= MIN_DISSECT_SPEEDUP),
        },
        Target {
            name: "dissection throughput / streaming baseline".into(),
            goal: format!("≥ {MIN_STREAMING_SPEEDUP:.1}"),
            value: streaming,
            met: streaming.map(|v| v >= MIN_STREAMING_SPEEDUP),
        },
    ];
    let big = models.iter().find(|m| m.name == RANDOM256);
    for (setting, pick) in [
        (
            "glibc defaults",
            (|m: &ModelReport| m.vs_baseline.clone()) as fn(&ModelReport) -> _,
        ),
        ("allocator setting", |m: &ModelReport| {
            m.vs_baseline_allocator.clone()
        }),
    ] {
        for batch in [1, 8] {
            let value = big.and_then(pick).and_then(|c| {
                c.generation_speedup
                    .iter()
                    .find(|(b, _)| *b == batch)
                    .map(|x| x.1)
            });
            out.push(Target {
                name: format!("256×256 generation b{batch}, PyTorch ({setting}) / ours"),
                goal: format!("≥ {MIN_GENERATION_SPEEDUP:.1}"),
                value,
                met: value.map(|v| v >= MIN_GENERATION_SPEEDUP),
            });
        }
    }
    for batch in [1, 8] {
        let value = big.and_then(|m| {
            m.paths
                .generation
                .iter()
                .find(|g| g.batch == batch)
                .and_then(|g| g.peer_speedup)
        });
        out.push(Target {
            name: format!("256×256 generation b{batch}, PyTorch same rounds / ours"),
            goal: format!("≥ {MIN_GENERATION_SPEEDUP:.1}"),
            value,
            met: value.map(|v| v >= MIN_GENERATION_SPEEDUP),
        });
    }
    out
}

fn row(out: &mut String, what: &str, p: &Percentiles) {
    let _ = writeln!(
        out,
        "  {what:<34} {:>10.2} {:>10.2} {:>10.2}",
        p.p50_ms, p.p95_ms, p.p99_ms
    );
}

/// The report as a plain-text table.
pub fn render_table(r: &BenchReport) -> String {
    let mut out = String::new();
    let load = |l: Option<[f64; 3]>| {
        l.map_or("unknown".to_string(), |l| {
            format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
        })
    };
    let env: Vec<String> = r
        .thread_env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(
        out,
        "device {} · {} threads{}{} · {} settings · load average {} → {}",
        r.device,
        r.threads,
        if env.is_empty() { "" } else { " · " },
        env.join(" "),
        if r.quick { "quick" } else { "full" },
        load(r.load_average_before),
        load(r.load_average_after)
    );
    for m in &r.models {
        let _ = writeln!(
            out,
            "\n{} ({}×{}, sizes {:?}; {})",
            m.name, m.resolution, m.resolution, m.sizes, m.origin
        );
        let _ = writeln!(
            out,
            "  cut at {}; edit: ablate {} units in a mask, {} rounds",
            m.layer,
            m.edit.units.len(),
            m.single.suffix.runs
        );
        let _ = writeln!(
            out,
            "  {:<34} {:>10} {:>10} {:>10}",
            "batch 1, ms", "p50", "p95", "p99"
        );
        let s = &m.single;
        row(&mut out, "bare suffix forward", &s.suffix);
        row(&mut out, "edit + suffix forward", &s.edit);
        row(&mut out, "mask pooling + compositing", &s.composite);
        row(&mut out, "PNG encode (separate)", &s.png_encode);
        row(&mut out, "peak conv 512→512 3×3 16² b8", &s.peak_conv);
        if let Some(b) = &m.baseline {
            row(&mut out, "PyTorch: bare suffix forward", &b.suffix);
            row(&mut out, "PyTorch: edit + suffix forward", &b.edit);
        }
        let _ = writeln!(
            out,
            "  (a) edit / bare suffix          {:.3}",
            s.overhead_ratio
        );
        let _ = writeln!(
            out,
            "  (b) suffix {:.2} GFLOP at {:.1} GFLOP/s / peak {:.1} GFLOP/s = {:.3}",
            s.suffix_gflop, s.suffix_gflops, s.peak_gflops, s.peak_fraction
        );
        let p = &m.paths;
        let _ = writeln!(
            out,
            "  ours: {} path, {}; fused / plain p50 ms: suffix b1 {:.2} / {:.2} ({:.2}×); other layout {:.2} ({:.2}×)",
            m.upsample_conv,
            m.layout,
            p.suffix.fused.p50_ms,
            p.suffix.plain.p50_ms,
            p.suffix.speedup,
            p.suffix.other_layout.p50_ms,
            p.suffix.layout_speedup
        );
        let other = if m.layout == "nchw" { "NHWC" } else { "NCHW" };
        let _ = writeln!(
            out,
            "  {:<12} {:>12} {:>12} {:>8} {:>9} {:>8} {:>14} {:>14}",
            "generation",
            "fused ms",
            "plain ms",
            "plain/f",
            format!("{other} ms"),
            format!("{other}/f"),
            "PyTorch ms",
            "PyT+alloc ms"
        );
        for g in &p.generation {
            let theirs = |b: Option<&BaselineModel>| {
                b.and_then(|b| b.generate.iter().find(|t| t.batch == g.batch))
                    .map_or("-".to_string(), |t| format!("{:.1}", t.time.p50_ms))
            };
            let _ = writeln!(
                out,
                "  b{:<11} {:>12.1} {:>12.1} {:>8.2} {:>9.1} {:>8.2} {:>14} {:>14}",
                g.batch,
                g.fused.p50_ms,
                g.plain.p50_ms,
                g.speedup,
                g.other_layout.p50_ms,
                g.layout_speedup,
                theirs(m.baseline.as_ref()),
                theirs(m.baseline_allocator.as_ref())
            );
        }
        let _ = writeln!(
            out,
            "  {:<12} {:>12} {:>12} {:>14}",
            "edited batch", "p50 ms", "scenes/s", "PyTorch sc/s"
        );
        for t in &m.throughput {
            let theirs = m
                .baseline
                .as_ref()
                .and_then(|b| b.throughput.iter().find(|x| x.batch == t.batch))
                .map_or("-".to_string(), |x| format!("{:.2}", x.scenes_per_s));
            let _ = writeln!(
                out,
                "  {:<12} {:>12.1} {:>12.2} {:>14}",
                t.batch, t.time.p50_ms, t.scenes_per_s, theirs
            );
        }
        if let Some(d) = &m.dissection {
            let _ = writeln!(
                out,
                "  dissection of {} ({} images, batch {}, {}): pass 1 {:.2} s, pass 2 {:.2} s, {:.1} images/s",
                d.layer, d.samples, d.batch, d.segmenter, d.pass1_s, d.pass2_s, d.images_per_s
            );
        }
        if let Some(bd) = m.baseline.as_ref().and_then(|b| b.dissection.as_ref()) {
            let _ = writeln!(
                out,
                "  PyTorch dissection: {:.2} s (forward+segment {:.2}, quantiles {:.2}, IoU {:.2}), {:.1} images/s",
                bd.seconds, bd.forward_s, bd.quantile_s, bd.iou_s, bd.images_per_s
            );
        }
        if let Some(sd) = m.baseline.as_ref().and_then(|b| b.streaming.as_ref()) {
            let _ = writeln!(
                out,
                "  PyTorch streaming dissection: {:.2} s (pass 1 {:.2}, pass 2 {:.2}), {:.1} images/s",
                sd.seconds, sd.pass1_s, sd.pass2_s, sd.images_per_s
            );
        }
        let same: Vec<String> = p
            .generation
            .iter()
            .filter_map(|g| {
                g.peer.as_ref().zip(g.peer_speedup).map(|(t, r)| {
                    format!(
                        "b{} {r:.2}× ({:.1} / {:.1} ms)",
                        g.batch, t.p50_ms, g.fused.p50_ms
                    )
                })
            })
            .collect();
        if !same.is_empty() {
            let _ = writeln!(
                out,
                "  generation, PyTorch (allocator setting) in the same rounds, time / ours: {}",
                same.join(", ")
            );
        }
        for (setting, c) in [
            ("glibc defaults", &m.vs_baseline),
            ("allocator setting", &m.vs_baseline_allocator),
        ] {
            if let Some(c) = c
                && !c.generation_speedup.is_empty()
            {
                let g: Vec<String> = c
                    .generation_speedup
                    .iter()
                    .map(|(b, r)| format!("b{b} {r:.2}×"))
                    .collect();
                let _ = writeln!(
                    out,
                    "  generation, PyTorch ({setting}) time / ours: {}",
                    g.join(", ")
                );
            }
        }
        if let Some(c) = &m.vs_baseline {
            let batch: Vec<String> = c
                .batch
                .iter()
                .map(|(b, r)| format!("b{b} {r:.2}"))
                .collect();
            let _ = writeln!(
                out,
                "  ours / PyTorch time: single edit {:.2}, suffix {:.2}, batch [{}]{}",
                c.single_edit,
                c.suffix,
                batch.join(", "),
                c.dissection
                    .map_or(String::new(), |d| format!(", dissection {d:.2}"))
            );
            if let Some((same, of)) = c.same_unit_labels {
                let _ = writeln!(out, "  unit labels equal to the baseline's: {same} of {of}");
            }
            if let (Some(speedup), Some((same, of))) =
                (c.streaming_speedup, c.same_unit_labels_streaming)
            {
                let _ = writeln!(
                    out,
                    "  dissection throughput / streaming baseline: {speedup:.2}; unit labels equal: {same} of {of}"
                );
            }
        }
    }
    if let Some(s) = &r.serve {
        out.push_str(&super::serve::render(s));
    }
    let _ = writeln!(out, "\ntargets");
    for t in &r.targets {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured in this run",
        };
        let value = t.value.map_or("-".to_string(), |v| format!("{v:.3}"));
        let _ = writeln!(
            out,
            "  {:<56} {:>8} (goal {}) {verdict}",
            t.name, value, t.goal
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::baseline::{BaselineDissection, StreamingDissection, compare};
    use super::super::paths::PathPair;
    use super::*;

    fn p(ms: f64) -> Percentiles {
        Percentiles::from_seconds(&[ms / 1e3])
    }

    fn single(suffix_ms: f64, edit_ms: f64) -> SingleEdit {
        SingleEdit {
            suffix: p(suffix_ms),
            edit: p(edit_ms),
            composite: p(0.1),
            png_encode: p(0.1),
            peak_conv: p(100.0),
            overhead_ratio: edit_ms / suffix_ms,
            suffix_gflop: 1.0,
            suffix_gflops: 1.0,
            peak_gflops: 2.0,
            peak_fraction: 0.5,
        }
    }

    fn throughput(batch: i64, ms: f64) -> Throughput {
        Throughput {
            batch,
            time: p(ms),
            scenes_per_s: batch as f64 / (ms / 1e3),
        }
    }

    fn model(name: &str, single: SingleEdit) -> ModelReport {
        ModelReport {
            name: name.into(),
            origin: "test".into(),
            weights: PathBuf::from("w.safetensors"),
            sizes: vec![8, 4],
            resolution: 8,
            layer: "layer2".into(),
            edit: EditSpec::standard("layer2", 4),
            upsample_conv: "fused".into(),
            layout: "channels-last".into(),
            paths: Paths {
                suffix: pair(1, 10.0, 15.0),
                generation: vec![pair(1, 10.0, 15.0), pair(8, 40.0, 60.0)],
            },
            single,
            throughput: vec![throughput(1, 10.0), throughput(8, 40.0)],
            dissection: None,
            baseline: None,
            vs_baseline: None,
            baseline_allocator: None,
            vs_baseline_allocator: None,
        }
    }

    fn pair(batch: i64, fused: f64, plain: f64) -> PathPair {
        PathPair {
            batch,
            fused: p(fused),
            plain: p(plain),
            speedup: plain / fused,
            other_layout: p(fused * 1.1),
            layout_speedup: 1.1,
            peer: None,
            peer_speedup: None,
        }
    }

    #[test]
    fn comparisons_divide_our_times_by_the_baseline_and_count_equal_labels() {
        let ours = single(100.0, 105.0);
        let dissection = Dissection {
            layer: "layer4".into(),
            segmenter: "world-seg".into(),
            samples: 100,
            batch: 10,
            pass1_s: 3.0,
            pass2_s: 2.0,
            images_per_s: 20.0,
            unit_labels: vec!["sky".into(), "tree".into(), "sky".into()],
            label_names: vec!["-".into(), "sky".into(), "tree".into()],
        };
        let base = BaselineModel {
            suffix: p(50.0),
            edit: p(70.0),
            generate: vec![throughput(1, 25.0), throughput(8, 60.0)],
            throughput: vec![throughput(1, 20.0), throughput(32, 1.0)],
            streaming: Some(StreamingDissection {
                seconds: 20.0,
                pass1_s: 15.0,
                pass2_s: 5.0,
                images_per_s: 5.0,
                unit_label_ids: vec![1, 2, 2],
            }),
            dissection: Some(BaselineDissection {
                seconds: 10.0,
                forward_s: 5.0,
                quantile_s: 4.0,
                iou_s: 1.0,
                images_per_s: 10.0,
                unit_label_ids: vec![1, 1, 1],
            }),
        };
        let through = [throughput(1, 10.0), throughput(8, 40.0)];
        let (g1, g8) = (p(10.0), p(40.0));
        let c = compare(
            &ours,
            &through,
            &[(1, &g1), (8, &g8)],
            Some(&dissection),
            &base,
        );
        // generation: their time over ours, per batch both measured
        assert_eq!(c.generation_speedup, [(1, 2.5), (8, 1.5)]);
        assert!((c.streaming_speedup.unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(c.same_unit_labels_streaming, Some((2, 3)));
        assert!((c.single_edit - 1.5).abs() < 1e-9);
        assert!((c.suffix - 2.0).abs() < 1e-9);
        // only batch sizes both sides measured are compared
        assert_eq!(c.batch.len(), 1);
        assert!((c.batch[0].1 - 0.5).abs() < 1e-9);
        assert!((c.dissection.unwrap() - 0.5).abs() < 1e-9);
        assert!((c.dissection_speedup.unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(c.same_unit_labels, Some((2, 3)));

        let mut world = model("world", single(10.0, 30.0));
        world.vs_baseline = Some(c.clone());
        let mut big = model(RANDOM256, single(100.0, 104.0));
        big.vs_baseline = Some(c);
        let t = targets(&[world, big]);
        // the overhead target is judged on the 256 model only (1.04 ≤ 1.05)
        assert!((t[0].value.unwrap() - 1.04).abs() < 1e-9);
        assert_eq!(t[0].met, Some(true));
        assert_eq!(t[1].met, Some(true));
        assert_eq!(t[2].met, Some(true));
        // generation targets: 2.5× at batch 1 met, 1.5× at batch 8 not; no allocator run
        assert_eq!((t[3].value, t[3].met), (Some(2.5), Some(true)));
        assert_eq!((t[4].value, t[4].met), (Some(1.5), Some(false)));
        assert!(t[5..].iter().all(|t| t.met.is_none()));
        // a peer in the same rounds: its ratio per batch, judged against 2×
        let mut peered = model(RANDOM256, single(100.0, 104.0));
        for (g, theirs) in peered.paths.generation.iter_mut().zip([22.0, 72.0]) {
            g.peer = Some(p(theirs));
            g.peer_speedup = Some(theirs / g.fused.p50_ms);
        }
        let t = targets(&[peered]);
        assert_eq!(
            t[7].name,
            "256×256 generation b1, PyTorch same rounds / ours"
        );
        assert_eq!((t[7].value, t[7].met), (Some(2.2), Some(true)));
        assert_eq!((t[8].value, t[8].met), (Some(1.8), Some(false)));
        let slow = model(RANDOM256, single(100.0, 106.0));
        let t = targets(&[slow]);
        assert_eq!(t[0].met, Some(false));
        assert_eq!(t[1].met, None);
    }
}
