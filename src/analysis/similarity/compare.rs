//! The comparisons: every layer of A against every layer of B (or of A itself) over one probe
//! set ([`compare`]), and every layer at every kept checkpoint of a training run against its
//! final state ([`dynamics`]).

use super::accumulate::Accumulator;
use super::grid::Resize;
use super::measures::{DEFAULT_KEEP, Method, PairCovariance, Similarity, measure};
use super::memory::{DEFAULT_BUDGET, MemoryPlan, Shape, plan};
use super::probe::{Layer, Probe, Subject};
use crate::progress;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Device;

/// Probe inputs per batch by default.
pub const DEFAULT_BATCH: usize = 25;
/// Fewer data points than this many per unit make canonical correlations optimistic; the
/// report says so.
pub const POINTS_PER_UNIT: f64 = 10.0;
/// A layer has settled once its similarity to the final state stays at least this.
pub const DEFAULT_SETTLED: f64 = 0.9;

/// How a comparison is made.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The measure.
    pub method: Method,
    /// The share of variance SVCCA keeps.
    pub keep: f64,
    /// How a finer grid is brought to a coarser one.
    pub resize: Resize,
    /// Probe inputs per batch.
    pub batch: usize,
    /// Where the networks run and the moments are kept.
    pub device: Device,
    /// The memory budget in bytes ([`super::memory::plan`] fits the run to it).
    pub budget: u64,
    /// At most this many positions per input and grid (`None`: every position, unless the
    /// budget calls for fewer).
    pub max_positions: Option<u64>,
    /// The seed of a position sample.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            method: Method::Svcca,
            keep: DEFAULT_KEEP,
            resize: Resize::Pool,
            batch: DEFAULT_BATCH,
            device: Device::Cpu,
            budget: DEFAULT_BUDGET,
            max_positions: None,
            seed: 0,
        }
    }
}

impl Options {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if !(self.keep > 0.0 && self.keep <= 1.0) {
            bail!(
                "--keep is a share of the variance in (0, 1], not {}",
                self.keep
            );
        }
        if self.batch == 0 {
            bail!("the batch must hold at least one probe input");
        }
        Ok(())
    }
}

/// A compared layer: name, units and grid.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The name the layer was asked by.
    pub name: String,
    /// Units (channels).
    pub units: i64,
    /// Spatial grid `[H, W]` (`[1, 1]` for a flat layer).
    pub grid: [i64; 2],
}

/// One pair of layers compared.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PairResult {
    /// A's layer.
    pub a: String,
    /// B's layer.
    pub b: String,
    /// The grid they were compared on.
    pub grid: [i64; 2],
    /// Data points (probe inputs × positions of the grid).
    pub data_points: u64,
    /// The similarity, canonical correlations and dimensions kept.
    #[serde(flatten)]
    pub similarity: Similarity,
}

/// The result of [`compare`] (`similarity.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimilarityReport {
    /// The measure.
    pub method: Method,
    /// The share of variance SVCCA keeps.
    pub keep: f64,
    /// How finer grids were brought to coarser ones.
    pub resize: Resize,
    /// What the probe set was.
    pub probe: String,
    /// Model A.
    pub model_a: String,
    /// Model B (A itself for a layer × layer comparison within one model).
    pub model_b: String,
    /// A's layers (rows of the matrix).
    pub layers_a: Vec<LayerInfo>,
    /// B's layers (columns).
    pub layers_b: Vec<LayerInfo>,
    /// `matrix[i][j]`: similarity of A's layer `i` and B's layer `j`.
    pub matrix: Vec<Vec<f64>>,
    /// Every pair with its canonical correlations.
    pub pairs: Vec<PairResult>,
    /// Warnings about the measurement (few data points per unit).
    pub notes: Vec<String>,
    /// Bytes the streamed moments took.
    pub moment_bytes: u64,
    /// The memory estimate, the batch and the positions as run.
    pub memory: MemoryPlan,
    /// Wall time in seconds.
    pub seconds: f64,
}

fn info(acc: &Accumulator, source: usize, layer: &Layer) -> Result<LayerInfo> {
    let (units, grid) = acc.shape(source).context("no probe batch was added")?;
    Ok(LayerInfo {
        name: layer.name.clone(),
        units,
        grid: [grid.0, grid.1],
    })
}

/// A subject with the layers taken from it.
type Side<'a> = (&'a Subject, &'a [Layer]);

fn capture(subjects: &[(&Subject, &[Layer])], input: &tch::Tensor) -> Vec<tch::Tensor> {
    let mut outputs = Vec::new();
    for (s, layers) in subjects {
        outputs.extend(s.capture(input, layers));
    }
    outputs
}

/// Runs the probe through the subjects and streams their outputs into `acc` (whose sources are
/// the subjects' layers, in order), in batches and with the positions the memory plan allows.
fn stream(
    subjects: &[(&Subject, &[Layer])],
    probe: &Probe,
    acc: &mut Accumulator,
    opts: &Options,
    what: &str,
) -> Result<MemoryPlan> {
    if probe.is_empty() {
        bail!("the probe set is empty; give at least one image");
    }
    for (s, _) in subjects {
        probe.check(s)?;
    }
    let _guard = tch::no_grad_guard();
    let shapes: Vec<Shape> = capture(subjects, &probe.batch(0, 1, opts.device)?)
        .iter()
        .map(|x| Shape {
            units: x.size()[1],
            grid: super::grid::grid_of(x),
        })
        .collect();
    let memory = plan(
        &shapes,
        acc.pairs(),
        opts.batch,
        opts.max_positions,
        opts.budget,
        opts.seed,
    )?;
    acc.sample_positions(memory.positions, memory.seed);
    let n = probe.len();
    let step = memory.batch as u64;
    let batches = n.div_ceil(step);
    let bar = progress::bar(batches, what);
    for b in 0..batches {
        let from = b * step;
        let input = probe.batch(from, (from + step).min(n), opts.device)?;
        acc.add(&capture(subjects, &input))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(memory)
}

fn data_points(probe: &Probe, acc: &Accumulator, grid: (i64, i64)) -> u64 {
    probe.len() * acc.positions_on(grid)
}

fn few_points_note(notes: &mut Vec<String>, a: &str, b: &str, points: u64, units: i64) {
    if (points as f64) < POINTS_PER_UNIT * units as f64 {
        notes.push(format!(
            "{a} × {b}: {points} data points for up to {units} units (under {POINTS_PER_UNIT} per \
             unit): canonical correlations read high; use a larger probe set"
        ));
    }
}

/// Compares every layer of `a` with every layer of `b`, or — without `b` — every pair of
/// `a`'s layers, over `probe`.
pub fn compare(
    a: (&Subject, &[Layer]),
    b: Option<(&Subject, &[Layer])>,
    probe: &Probe,
    opts: &Options,
) -> Result<SimilarityReport> {
    opts.validate()?;
    let start = Instant::now();
    let na = a.1.len();
    if na == 0 || b.is_some_and(|b| b.1.is_empty()) {
        bail!("no layer to compare");
    }
    let (subjects, pairs): (Vec<Side>, Vec<(usize, usize)>) = match b {
        None => (
            vec![a],
            (0..na).flat_map(|i| (i..na).map(move |j| (i, j))).collect(),
        ),
        Some(b) => (
            vec![a, b],
            (0..na)
                .flat_map(|i| (0..b.1.len()).map(move |j| (i, na + j)))
                .collect(),
        ),
    };
    let mut acc = Accumulator::new(
        subjects.iter().map(|s| s.1.len()).sum(),
        pairs.clone(),
        opts.resize,
        opts.device,
    );
    let memory = stream(&subjects, probe, &mut acc, opts, "similarity")?;
    let (b_subject, b_layers, offset) = match b {
        None => (a.0, a.1, 0),
        Some(b) => (b.0, b.1, na),
    };
    let nb = b_layers.len();
    let mut matrix = vec![vec![f64::NAN; nb]; na];
    let mut results = Vec::new();
    let mut notes = Vec::new();
    let layers_a = (0..na)
        .map(|i| info(&acc, i, &a.1[i]))
        .collect::<Result<Vec<_>>>()?;
    let layers_b = (0..nb)
        .map(|j| info(&acc, offset + j, &b_layers[j]))
        .collect::<Result<Vec<_>>>()?;
    let mut record = |i: usize, j: usize, pair: &PairCovariance| -> Result<()> {
        let grid = acc
            .grid(i, offset + j)
            .context("no probe batch was added")?;
        let sim = measure(pair, opts.method, opts.keep)
            .with_context(|| format!("{} × {}", layers_a[i].name, layers_b[j].name))?;
        matrix[i][j] = sim.value;
        let points = data_points(probe, &acc, grid);
        few_points_note(
            &mut notes,
            &layers_a[i].name,
            &layers_b[j].name,
            points,
            layers_a[i].units.max(layers_b[j].units),
        );
        results.push(PairResult {
            a: layers_a[i].name.clone(),
            b: layers_b[j].name.clone(),
            grid: [grid.0, grid.1],
            data_points: points,
            similarity: sim,
        });
        Ok(())
    };
    for &(i, j) in &pairs {
        let pair = acc.covariance(i, j)?;
        match b {
            Some(_) => record(i, j - na, &pair)?,
            None => {
                record(i, j, &pair)?;
                if i != j {
                    record(j, i, &pair.swapped())?;
                }
            }
        }
    }
    notes.dedup();
    Ok(SimilarityReport {
        method: opts.method,
        keep: opts.keep,
        resize: opts.resize,
        probe: probe.describe(),
        model_a: a.0.name().to_string(),
        model_b: b_subject.name().to_string(),
        layers_a,
        layers_b,
        matrix,
        pairs: results,
        notes,
        moment_bytes: acc.bytes(),
        memory,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// One layer's similarity to its final state over training.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerCurve {
    /// The layer.
    pub layer: String,
    /// Similarity at each kept step.
    pub values: Vec<f64>,
    /// The first kept step from which the similarity stays at least the settling level.
    pub settled_at: Option<i64>,
}

/// The result of [`dynamics`] (`dynamics.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DynamicsReport {
    /// The training run's directory.
    pub run: String,
    /// The measure.
    pub method: Method,
    /// The share of variance SVCCA keeps.
    pub keep: f64,
    /// How finer grids were brought to coarser ones (unused: a layer meets itself).
    pub resize: Resize,
    /// What the probe set was.
    pub probe: String,
    /// The kept steps, ascending.
    pub steps: Vec<i64>,
    /// One curve per layer, input side first.
    pub layers: Vec<LayerCurve>,
    /// The settling level.
    pub settled: f64,
    /// Layers in the order they settled (earliest first; ties keep network order).
    pub settling_order: Vec<String>,
    /// Warnings about the measurement.
    pub notes: Vec<String>,
    /// The memory estimate, the batch and the positions as run.
    pub memory: MemoryPlan,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// The kept checkpoints of a training run (`checkpoints/step_NNNNNN.safetensors`), by step.
pub fn kept_checkpoints(run: &Path) -> Result<Vec<(i64, PathBuf)>> {
    let dir = crate::train::checkpoints_dir(run);
    let entries = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "{} has no kept checkpoints ({} is missing); train with --keep-checkpoints",
            run.display(),
            dir.display()
        )
    })?;
    let mut found = Vec::new();
    for e in entries {
        let path = e?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let step = name
            .strip_prefix("step_")
            .and_then(|s| s.strip_suffix(".safetensors"))
            .and_then(|s| s.parse::<i64>().ok());
        if let Some(step) = step {
            found.push((step, path));
        }
    }
    found.sort();
    if found.is_empty() {
        bail!(
            "{} holds no step_NNNNNN.safetensors; train with --keep-checkpoints",
            dir.display()
        );
    }
    Ok(found)
}

/// The first step from which every later value stays at least `level`.
pub fn settled_at(steps: &[i64], values: &[f64], level: f64) -> Option<i64> {
    let mut at = None;
    for (s, v) in steps.iter().zip(values).rev() {
        if *v >= level {
            at = Some(*s);
        } else {
            break;
        }
    }
    at
}

/// Compares every layer of `run`'s final model (`last`, loaded from the run's directory) at
/// each kept checkpoint with its final state over `probe`: one curve per layer.
pub fn dynamics(
    run: &Path,
    last: &Subject,
    layers: &[Layer],
    probe: &Probe,
    opts: &Options,
    level: f64,
) -> Result<DynamicsReport> {
    opts.validate()?;
    let start = Instant::now();
    let kept = kept_checkpoints(run)?;
    let models = kept
        .iter()
        .map(|(step, path)| last.with_weights(path, &format!("step {step}"), opts.device))
        .collect::<Result<Vec<_>>>()?;
    let nl = layers.len();
    let mut subjects: Vec<(&Subject, &[Layer])> = vec![(last, layers)];
    subjects.extend(models.iter().map(|m| (m, layers)));
    let pairs: Vec<(usize, usize)> = (0..kept.len())
        .flat_map(|c| (0..nl).map(move |l| (l, (c + 1) * nl + l)))
        .collect();
    let mut acc = Accumulator::new(nl * (kept.len() + 1), pairs, opts.resize, opts.device);
    let memory = stream(&subjects, probe, &mut acc, opts, "dynamics")?;
    let steps: Vec<i64> = kept.iter().map(|(s, _)| *s).collect();
    let mut notes = Vec::new();
    let mut curves = Vec::with_capacity(nl);
    for (l, layer) in layers.iter().enumerate() {
        let (units, grid) = acc.shape(l).context("no probe batch was added")?;
        few_points_note(
            &mut notes,
            &layer.name,
            &layer.name,
            data_points(probe, &acc, grid),
            units,
        );
        let mut values = Vec::with_capacity(kept.len());
        for (c, step) in steps.iter().enumerate() {
            let pair = acc.covariance(l, (c + 1) * nl + l)?;
            let sim = measure(&pair, opts.method, opts.keep)
                .with_context(|| format!("{} at step {step}", layer.name))?;
            values.push(sim.value);
        }
        curves.push(LayerCurve {
            layer: layer.name.clone(),
            settled_at: settled_at(&steps, &values, level),
            values,
        });
    }
    let mut order: Vec<&LayerCurve> = curves.iter().collect();
    order.sort_by_key(|c| c.settled_at.unwrap_or(i64::MAX));
    Ok(DynamicsReport {
        run: run.display().to_string(),
        method: opts.method,
        keep: opts.keep,
        resize: opts.resize,
        probe: probe.describe(),
        steps,
        settling_order: order.iter().map(|c| c.layer.clone()).collect(),
        layers: curves,
        settled: level,
        notes,
        memory,
        seconds: start.elapsed().as_secs_f64(),
    })
}
