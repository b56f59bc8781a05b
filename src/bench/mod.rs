//! Benchmarks: edit latency and throughput against the device's limit and against PyTorch.
//!
//! For each model, in one run: the single edit at batch 1 on cached prefix features (mask
//! pooling + compositing + suffix forward) against the bare suffix forward (ratio (a), the
//! overhead of the editing machinery) and the suffix's achieved FLOP/s against a large
//! convolution's (ratio (b)), PNG encoding separately, edited scenes per second at several
//! batch sizes, and the dissection pipeline's images per second. With the baseline, the same
//! workloads run in PyTorch ([`baseline`]) right after ours, and our time over theirs is
//! reported. Workloads whose ratio is reported are timed in interleaved rounds.

pub mod baseline;
pub mod flops;
pub mod measure;
pub mod models;
pub mod paths;
pub mod peer;
pub mod report;
pub mod serve;
pub mod timing;

pub use measure::{EditSpec, Settings};
pub use report::{BenchReport, ModelReport, Target, render_table};

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use tch::Device;

/// Everything a benchmark run needs.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Models: `world`, `random256`, or generators `zoo::load_generator` accepts.
    pub models: Vec<String>,
    /// Where tensors live.
    pub device: Device,
    /// Also run the PyTorch baseline and compare.
    pub baseline: bool,
    /// How much to measure.
    pub settings: Settings,
    /// Whether `settings` are the quick ones (recorded in the report).
    pub quick: bool,
    /// The edited (and dissected) layer.
    pub layer: String,
    /// The segmenter of the dissection.
    pub segmenter: String,
    /// Scratch directory: random weights, dissection statistics, baseline job files.
    pub work: PathBuf,
    /// Also measure the painting server on the world generator ([`serve`]).
    pub serve: bool,
}

impl BenchOptions {
    /// The defaults: both models (`world`, `random256`), CPU, layer4, world-seg, no baseline,
    /// scratch under `out/bench`; `quick` picks tiny settings.
    pub fn new(quick: bool) -> Self {
        Self {
            models: vec![models::WORLD.into(), models::RANDOM256.into()],
            device: Device::Cpu,
            baseline: false,
            settings: if quick {
                Settings::quick()
            } else {
                Settings::full()
            },
            quick,
            layer: "layer4".into(),
            segmenter: crate::segment::DEFAULT_SEGMENTER.into(),
            work: PathBuf::from("out/bench"),
            serve: false,
        }
    }
}

/// Models drawing images of at most this side are dissected (larger ones take too long on a CPU).
pub const DISSECT_MAX_RESOLUTION: i64 = 64;

fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let v: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() == 3).then(|| [v[0], v[1], v[2]])
}

/// The threading variables of the environment that change libtorch's speed.
pub const THREAD_ENV: [&str; 3] = ["OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS"];

/// Runs the benchmark; progress goes to stderr.
pub fn run(opts: &BenchOptions) -> Result<BenchReport> {
    if opts.models.is_empty() && !opts.serve {
        bail!("no model to benchmark; give --model world, random256 or a generator, or --serve");
    }
    if opts.baseline && opts.device != Device::Cpu {
        bail!("the PyTorch baseline runs on the CPU only; use --device cpu with --baseline");
    }
    let s = &opts.settings;
    if s.runs == 0 || s.batch_runs == 0 || s.dissect_samples == 0 || s.dissect_batch == 0 {
        bail!("benchmark settings need at least one run, one image and one image per batch");
    }
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let load_before = load_average();
    let threads = tch::get_num_threads() as i64;
    let mut reports = Vec::new();
    let mut torch = None;
    for spec in &opts.models {
        eprintln!("bench: loading {spec}");
        let model = models::load(spec, &opts.work, opts.device)?;
        let g = &model.generator;
        let cut = crate::cut::Cut::new(g, &opts.layer)?;
        let edit = EditSpec::standard(cut.layer_name(), g.channels(cut.layer_index()));
        eprintln!(
            "bench: {}: single edit (at least {} rounds, {} s)",
            model.name, s.runs, s.min_seconds
        );
        let single = measure::single_edit(&model, &edit, s, opts.device)?;
        let mut peer = if opts.baseline {
            eprintln!("bench: {}: starting the PyTorch peer", model.name);
            Some(peer::Peer::start(&model, threads)?)
        } else {
            None
        };
        eprintln!(
            "bench: {}: fused and plain paths{}",
            model.name,
            if peer.is_some() {
                ", PyTorch in the same rounds"
            } else {
                ""
            }
        );
        let paths = paths::measure(&model, cut.layer_name(), s, opts.device, peer.as_mut())?;
        drop(peer);
        eprintln!(
            "bench: {}: batches {:?}",
            model.name,
            s.batches_for(g.resolution())
        );
        let throughput = measure::throughput(&model, &edit, s, opts.device)?;
        let dissect = g.resolution() <= DISSECT_MAX_RESOLUTION;
        let dissection = if dissect {
            eprintln!(
                "bench: {}: dissection of {} images",
                model.name, s.dissect_samples
            );
            let dir = opts
                .work
                .join(format!("dissect-{}", model.name.replace(':', "-")));
            Some(measure::dissection(
                &model,
                cut.layer_name(),
                &opts.segmenter,
                s,
                &dir,
                opts.device,
            )?)
        } else {
            None
        };
        // our whole-scene times on the generator as loaded (fused unless chosen otherwise)
        let fused = g.upsample_conv() == crate::nets::upconv::UpsampleConv::Fused;
        let generation: Vec<(i64, &timing::Percentiles)> = paths
            .generation
            .iter()
            .map(|p| (p.batch, if fused { &p.fused } else { &p.plain }))
            .collect();
        let mut compared = [(None, None), (None, None)];
        if opts.baseline {
            for (slot, allocator_setting) in compared.iter_mut().zip([false, true]) {
                eprintln!(
                    "bench: {}: PyTorch baseline ({})",
                    model.name,
                    if allocator_setting {
                        "allocator setting"
                    } else {
                        "glibc defaults"
                    }
                );
                // the dissections run once, in the baseline as it is
                let seg_weights = if dissect && !allocator_setting {
                    Some(baseline::segmenter_weights(&opts.segmenter)?)
                } else {
                    None
                };
                let job = baseline::BaselineModelJob {
                    model: &model,
                    spec: &edit,
                    dissect: seg_weights,
                };
                let run = baseline::run(&[job], s, threads, allocator_setting, &opts.work)?;
                torch = Some(run.torch.clone());
                let b = run
                    .models
                    .into_iter()
                    .next()
                    .context("the baseline returned no model")?;
                let vs =
                    baseline::compare(&single, &throughput, &generation, dissection.as_ref(), &b);
                *slot = (Some(b), Some(vs));
            }
        }
        let [(base, vs), (base_alloc, vs_alloc)] = compared;
        reports.push(ModelReport {
            name: model.name.clone(),
            origin: model.origin.clone(),
            weights: model.weights.clone(),
            sizes: g.sizes().to_vec(),
            resolution: g.resolution(),
            layer: cut.layer_name().to_string(),
            edit,
            upsample_conv: g.upsample_conv().to_string(),
            layout: if g.channels_last() {
                "channels-last"
            } else {
                "nchw"
            }
            .to_string(),
            paths,
            single,
            throughput,
            dissection,
            baseline: base,
            vs_baseline: vs,
            baseline_allocator: base_alloc,
            vs_baseline_allocator: vs_alloc,
        });
    }
    let serve = if opts.serve {
        eprintln!("bench: the painting server over loopback HTTP");
        Some(serve::measure(
            crate::zoo::DEFAULT_GENERATOR,
            &opts.segmenter,
            &opts.layer,
            &serve::ServeSettings::new(opts.quick),
            opts.device,
        )?)
    } else {
        None
    };
    let mut targets = report::targets(&reports);
    targets.extend(serve.iter().flat_map(serve::targets));
    Ok(BenchReport {
        device: crate::device::device_name(opts.device),
        threads,
        thread_env: THREAD_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect(),
        quick: opts.quick,
        settings: opts.settings.clone(),
        started_unix: started,
        load_average_before: load_before,
        load_average_after: load_average(),
        baseline_torch: torch,
        models: reports,
        serve,
        targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn tiny() -> Settings {
        Settings {
            warmup: 0,
            runs: 3,
            batch_runs: 2,
            min_seconds: 0.0,
            batches: vec![1, 2],
            big_batches: vec![1],
            dissect_samples: 8,
            dissect_batch: 4,
        }
    }

    #[test]
    fn the_json_report_has_every_field_with_consistent_values() {
        let work = std::env::temp_dir().join(format!("gd-bench-run-{}", std::process::id()));
        let mut opts = BenchOptions::new(true);
        opts.models = vec!["random:0".into()];
        opts.settings = tiny();
        opts.work = work.clone();
        let report = run(&opts).unwrap();
        let path = work.join("bench.json");
        crate::fsutil::write_json(&path, &report).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for key in [
            "device", "threads", "quick", "settings", "models", "targets",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["device"], "cpu");
        let m = &v["models"][0];
        assert_eq!(m["resolution"], 64);
        assert_eq!(m["layer"], "layer4");
        let single = &m["single"];
        for w in ["suffix", "edit", "composite", "png_encode", "peak_conv"] {
            let p = &single[w];
            assert_eq!(p["runs"], 3, "{w}");
            let (p50, p95, p99) = (
                p["p50_ms"].as_f64().unwrap(),
                p["p95_ms"].as_f64().unwrap(),
                p["p99_ms"].as_f64().unwrap(),
            );
            assert!(p50 > 0.0 && p50 <= p95 && p95 <= p99, "{w}: {p}");
        }
        // the ratios are computed from the reported medians
        let ratio = single["edit"]["p50_ms"].as_f64().unwrap()
            / single["suffix"]["p50_ms"].as_f64().unwrap();
        assert!((single["overhead_ratio"].as_f64().unwrap() - ratio).abs() < 1e-9);
        let flop = flops::proggan_suffix_flops(&zoo_sizes(), "layer4").unwrap();
        assert!((single["suffix_gflop"].as_f64().unwrap() - flop / 1e9).abs() < 1e-9);
        let fraction =
            single["suffix_gflops"].as_f64().unwrap() / single["peak_gflops"].as_f64().unwrap();
        assert!((single["peak_fraction"].as_f64().unwrap() - fraction).abs() < 1e-9);
        let batches: Vec<i64> = m["throughput"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["batch"].as_i64().unwrap())
            .collect();
        assert_eq!(batches, [1, 2]);
        let d = &m["dissection"];
        assert_eq!(d["samples"], 8);
        assert!(d["pass1_s"].as_f64().unwrap() > 0.0 && d["pass2_s"].as_f64().unwrap() > 0.0);
        assert!(m["baseline"].is_null() && m["vs_baseline"].is_null());
        // fused and plain, timed in the same rounds, per batch size
        let gen_batches: Vec<i64> = m["paths"]["generation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["batch"].as_i64().unwrap())
            .collect();
        assert_eq!(gen_batches, [1, 2]);
        assert_eq!(m["paths"]["suffix"]["fused"]["runs"], 3);
        assert_eq!(m["upsample_conv"], "fused");
        // without the 256 model and the baseline, every target is reported as not measured
        let targets = v["targets"].as_array().unwrap();
        assert_eq!(targets.len(), 9);
        assert!(targets.iter().all(|t| t["met"].is_null()));
        let table = render_table(&report);
        assert!(table.contains("edit + suffix forward") && table.contains("not measured"));
        std::fs::remove_dir_all(&work).unwrap();
    }

    fn zoo_sizes() -> Vec<i64> {
        crate::zoo::WORLD_GENERATOR_SIZES.to_vec()
    }

    #[test]
    fn bad_options_are_refused_with_the_fix() {
        let mut opts = BenchOptions::new(true);
        opts.models.clear();
        let err = run(&opts).unwrap_err().to_string();
        assert!(err.contains("no model to benchmark"), "{err}");
        let mut opts = BenchOptions::new(true);
        opts.settings.runs = 0;
        let err = run(&opts).unwrap_err().to_string();
        assert!(err.contains("at least one run"), "{err}");
    }
}
