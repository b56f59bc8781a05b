//! The PyTorch baseline: `benches/baseline.py`, run by the project's Python on the same weights
//! files, doing the same workloads the straightforward PyTorch way. gandissect writes a job
//! file, the script writes raw durations, and the comparison is made here.
//!
//! The script runs as it is (glibc's allocator defaults) or with the allocator setting this
//! binary applies to itself (`MALLOC_MMAP_MAX_=0`, `MALLOC_TRIM_THRESHOLD_` at its maximum, the
//! environment's equivalent of [`crate::allocator::keep_freed_memory`]), so that a comparison
//! can be made both ways.

use super::measure::{Dissection, EditSpec, Settings, SingleEdit, Throughput};
use super::models::BenchModel;
use super::timing::Percentiles;
use crate::segment::SegmenterCard;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The baseline script, relative to the project root.
pub const SCRIPT: &str = "benches/baseline.py";

/// The project's Python: `.venv/bin/python` of the project, else `$VIRTUAL_ENV/bin/python`.
pub fn python() -> Result<PathBuf> {
    let local = crate::zoo::source_dir().join(".venv/bin/python");
    if local.exists() {
        return Ok(local);
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        let p = PathBuf::from(venv).join("bin/python");
        if p.exists() {
            return Ok(p);
        }
    }
    bail!(
        "the PyTorch baseline needs the project's Python with torch: run scripts/bootstrap.sh to create .venv, or leave out --baseline"
    )
}

/// The weights file of a world-seg segmenter directory (or shipped name).
pub fn segmenter_weights(spec: &str) -> Result<PathBuf> {
    let dir = if Path::new(spec).is_dir() {
        PathBuf::from(spec)
    } else {
        crate::zoo::home().join("segmenters").join(spec)
    };
    let card_path = dir.join("segmenter.json");
    let text = std::fs::read_to_string(&card_path).with_context(|| {
        format!(
            "the baseline needs a world-seg segmenter directory; cannot read {}",
            card_path.display()
        )
    })?;
    let card: SegmenterCard = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid segmenter card", card_path.display()))?;
    if card.architecture != "world-seg" {
        bail!(
            "the baseline re-implements only the world-seg architecture, not {}",
            card.architecture
        );
    }
    Ok(dir.join(card.weights))
}

/// What the baseline measures for one model.
pub struct BaselineModelJob<'a> {
    /// The model (its weights file and sizes).
    pub model: &'a BenchModel,
    /// The edit.
    pub spec: &'a EditSpec,
    /// Whether to dissect it, with the segmenter's weights.
    pub dissect: Option<PathBuf>,
}

/// The baseline's raw results for one model.
#[derive(Clone, Debug, Deserialize)]
struct RawModel {
    name: String,
    suffix_s: Vec<f64>,
    edit_s: Vec<f64>,
    #[serde(default)]
    generate: Vec<RawThroughput>,
    throughput: Vec<RawThroughput>,
    dissection: Option<RawDissection>,
    #[serde(default)]
    streaming: Option<RawStreaming>,
}

#[derive(Clone, Debug, Deserialize)]
struct RawStreaming {
    seconds: f64,
    pass1_s: f64,
    pass2_s: f64,
    unit_label_ids: Vec<usize>,
}

#[derive(Clone, Debug, Deserialize)]
struct RawThroughput {
    batch: i64,
    times_s: Vec<f64>,
}

#[derive(Clone, Debug, Deserialize)]
struct RawDissection {
    seconds: f64,
    forward_s: f64,
    quantile_s: f64,
    iou_s: f64,
    unit_label_ids: Vec<usize>,
}

#[derive(Clone, Debug, Deserialize)]
struct RawResult {
    torch: String,
    threads: i64,
    models: Vec<RawModel>,
}

/// The baseline's measurements of one model.
#[derive(Clone, Debug, Serialize)]
pub struct BaselineModel {
    /// Bare suffix forward on cached features.
    pub suffix: Percentiles,
    /// The edit on cached features + suffix forward.
    pub edit: Percentiles,
    /// Whole scenes from latents (no edit) per batch size.
    pub generate: Vec<Throughput>,
    /// Whole edited scenes (forward hook) per batch size.
    pub throughput: Vec<Throughput>,
    /// The dissection with `torch.quantile`, when run.
    pub dissection: Option<BaselineDissection>,
    /// The streaming dissection (quantile sketch, top-k, conditional means), when run.
    pub streaming: Option<StreamingDissection>,
}

/// The baseline's streaming dissection, the way the reference tool works.
#[derive(Clone, Debug, Serialize)]
pub struct StreamingDissection {
    /// Total seconds.
    pub seconds: f64,
    /// Pass 1: forward to the layer, upsampling, quantile sketch and top-k.
    pub pass1_s: f64,
    /// Pass 2: forward, segmentation, upsampling and the per-label indicator means.
    pub pass2_s: f64,
    /// Images per second.
    pub images_per_s: f64,
    /// Label ids of the units (best IoU).
    #[serde(skip)]
    pub unit_label_ids: Vec<usize>,
}

/// The baseline's dissection.
#[derive(Clone, Debug, Serialize)]
pub struct BaselineDissection {
    /// Total seconds (forward + segmentation, quantiles, IoU).
    pub seconds: f64,
    /// Seconds of the forward and segmentation pass.
    pub forward_s: f64,
    /// Seconds of the quantiles and top images.
    pub quantile_s: f64,
    /// Seconds of the IoU tally.
    pub iou_s: f64,
    /// Images per second.
    pub images_per_s: f64,
    /// Label ids of the units (best IoU).
    #[serde(skip)]
    pub unit_label_ids: Vec<usize>,
}

/// The whole baseline run.
#[derive(Clone, Debug, Serialize)]
pub struct BaselineRun {
    /// PyTorch version.
    pub torch: String,
    /// Intra-op threads.
    pub threads: i64,
    /// Whether the script ran with the allocator setting.
    pub allocator_setting: bool,
    /// Per model, in job order.
    pub models: Vec<BaselineModel>,
}

/// The environment that gives the script this binary's allocator setting.
pub const ALLOCATOR_ENV: [(&str, &str); 2] = [
    ("MALLOC_MMAP_MAX_", "0"),
    ("MALLOC_TRIM_THRESHOLD_", "2147483647"),
];

/// Writes the job, runs the script (with the allocator setting when `allocator_setting`) and
/// reads its results.
pub fn run(
    jobs: &[BaselineModelJob<'_>],
    s: &Settings,
    threads: i64,
    allocator_setting: bool,
    work: &Path,
) -> Result<BaselineRun> {
    let script = crate::zoo::source_dir().join(SCRIPT);
    if !script.exists() {
        bail!("the baseline script {} is missing", script.display());
    }
    let models: Vec<_> = jobs
        .iter()
        .map(|j| {
            let g = &j.model.generator;
            json!({
                "name": j.model.name,
                "weights": j.model.weights,
                "sizes": g.sizes(),
                "layer": j.spec.layer,
                "units": j.spec.units,
                "rect": j.spec.rect,
                "batches": s.batches_for(g.resolution()),
                "dissect": j.dissect.as_ref().map(|w| json!({
                    "samples": s.dissect_samples,
                    "batch": s.dissect_batch,
                    "seg_size": 64,
                    "quantile": 0.99,
                    "topk": 100,
                    "stream": crate::zsample::DEFAULT_STREAM_SEED,
                    "segmenter_weights": w,
                })),
            })
        })
        .collect();
    let job = json!({
        "threads": threads,
        "device": "cpu",
        "warmup": s.warmup,
        "runs": s.runs,
        "batch_runs": s.batch_runs,
        "min_seconds": s.min_seconds,
        "models": models,
    });
    std::fs::create_dir_all(work)?;
    let tag = if allocator_setting { "-allocator" } else { "" };
    let job_path = work.join(format!("baseline-job{tag}.json"));
    let out_path = work.join(format!("baseline-result{tag}.json"));
    crate::fsutil::write_json(&job_path, &job)?;
    let _ = std::fs::remove_file(&out_path);
    let python = python()?;
    let mut command = Command::new(&python);
    command.arg(&script).arg(&job_path).arg(&out_path);
    for (key, value) in ALLOCATOR_ENV {
        if allocator_setting {
            command.env(key, value);
        } else {
            command.env_remove(key);
        }
    }
    let status = command
        .status()
        .with_context(|| format!("cannot start {}", python.display()))?;
    if !status.success() {
        bail!(
            "the PyTorch baseline failed ({status}); run {} {} {} to see why",
            python.display(),
            script.display(),
            job_path.display()
        );
    }
    let text = std::fs::read_to_string(&out_path)
        .with_context(|| format!("the baseline wrote no {}", out_path.display()))?;
    let raw: RawResult = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a baseline result", out_path.display()))?;
    if raw.models.len() != jobs.len() {
        bail!(
            "the baseline returned {} models for {} asked",
            raw.models.len(),
            jobs.len()
        );
    }
    let models = raw
        .models
        .into_iter()
        .zip(jobs)
        .map(|(m, j)| {
            if m.name != j.model.name {
                bail!(
                    "the baseline returned {} where {} was asked",
                    m.name,
                    j.model.name
                );
            }
            let per_batch = |raw: Vec<RawThroughput>| -> Vec<Throughput> {
                raw.into_iter()
                    .map(|t| {
                        let time = Percentiles::from_seconds(&t.times_s);
                        Throughput {
                            batch: t.batch,
                            scenes_per_s: t.batch as f64 / (time.p50_ms / 1e3),
                            time,
                        }
                    })
                    .collect()
            };
            Ok(BaselineModel {
                suffix: Percentiles::from_seconds(&m.suffix_s),
                edit: Percentiles::from_seconds(&m.edit_s),
                generate: per_batch(m.generate),
                throughput: per_batch(m.throughput),
                streaming: m.streaming.map(|d| StreamingDissection {
                    images_per_s: s.dissect_samples as f64 / d.seconds,
                    seconds: d.seconds,
                    pass1_s: d.pass1_s,
                    pass2_s: d.pass2_s,
                    unit_label_ids: d.unit_label_ids,
                }),
                dissection: m.dissection.map(|d| BaselineDissection {
                    images_per_s: s.dissect_samples as f64 / d.seconds,
                    seconds: d.seconds,
                    forward_s: d.forward_s,
                    quantile_s: d.quantile_s,
                    iou_s: d.iou_s,
                    unit_label_ids: d.unit_label_ids,
                }),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(BaselineRun {
        torch: raw.torch,
        threads: raw.threads,
        allocator_setting,
        models,
    })
}

/// Our time over the baseline's for the same work (below 1: we are faster).
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Single edit on cached features: our p50 / baseline p50.
    pub single_edit: f64,
    /// Bare suffix forward: our p50 / baseline p50.
    pub suffix: f64,
    /// Per batch size: our p50 / baseline p50 of a batch of edited scenes.
    pub batch: Vec<(i64, f64)>,
    /// Per batch size: baseline p50 / our p50 of whole scenes from latents (above 1: we are
    /// faster by that factor).
    pub generation_speedup: Vec<(i64, f64)>,
    /// Dissection: our seconds / baseline seconds.
    pub dissection: Option<f64>,
    /// Dissection throughput: ours / baseline's (the inverse of the time ratio).
    pub dissection_speedup: Option<f64>,
    /// Units given the same label by both dissections, and the unit count.
    pub same_unit_labels: Option<(usize, usize)>,
    /// Dissection throughput: ours / the streaming baseline's.
    pub streaming_speedup: Option<f64>,
    /// Units given the same label by ours and the streaming baseline, and the unit count.
    pub same_unit_labels_streaming: Option<(usize, usize)>,
}

fn same_labels(ours: &Dissection, theirs: &[usize]) -> (usize, usize) {
    let same = ours
        .unit_labels
        .iter()
        .zip(theirs)
        .filter(|&(a, &b)| ours.label_names.get(b).is_some_and(|l| l == a))
        .count();
    (same, ours.unit_labels.len())
}

/// Compares our measurements with the baseline's for one model (`generation`: our whole-scene
/// times per batch size).
pub fn compare(
    single: &SingleEdit,
    throughput: &[Throughput],
    generation: &[(i64, &Percentiles)],
    dissection: Option<&Dissection>,
    base: &BaselineModel,
) -> Comparison {
    let batch = throughput
        .iter()
        .filter_map(|t| {
            base.throughput
                .iter()
                .find(|b| b.batch == t.batch)
                .map(|b| (t.batch, t.time.p50_ms / b.time.p50_ms))
        })
        .collect();
    let generation_speedup = generation
        .iter()
        .filter_map(|(b, ours)| {
            base.generate
                .iter()
                .find(|t| t.batch == *b)
                .map(|t| (*b, t.time.p50_ms / ours.p50_ms))
        })
        .collect();
    let pair = dissection.zip(base.dissection.as_ref());
    let same = pair.map(|(ours, theirs)| same_labels(ours, &theirs.unit_label_ids));
    let streaming = dissection.zip(base.streaming.as_ref());
    Comparison {
        generation_speedup,
        streaming_speedup: streaming.map(|(o, t)| o.images_per_s / t.images_per_s),
        same_unit_labels_streaming: streaming
            .map(|(ours, theirs)| same_labels(ours, &theirs.unit_label_ids)),
        single_edit: single.edit.p50_ms / base.edit.p50_ms,
        suffix: single.suffix.p50_ms / base.suffix.p50_ms,
        batch,
        dissection: pair.map(|(o, t)| (o.pass1_s + o.pass2_s) / t.seconds),
        dissection_speedup: pair.map(|(o, t)| o.images_per_s / t.images_per_s),
        same_unit_labels: same,
    }
}
