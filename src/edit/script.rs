//! Edit scripts: JSONL, one scene per line, painted in batches and resumable.
//!
//! A line is `{"seed": 7, "edits": [{"op": "remove", "concept": "tree", "mask":
//! "masks/left.png"}], "out": "scene7.png"}` (optionally `"force": true` per scene, and
//! `"units": [..]` and `"force": true` per edit); mask paths are relative to the script, `out`
//! to the output directory. Blank lines and lines starting with `#` are skipped. A scene is complete when its
//! record (`<stem>.json`, written last and atomically) exists; a re-run skips complete scenes.
//! A bad line is reported with its number and the other lines go on.

use super::Session;
use super::paint::ScenePlan;
use super::plan::{Action, PlanOptions};
use super::scene::{ScenePaths, write_scene};
use crate::fsutil::{atomic_write, write_json};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Scenes per forward pass by default.
pub const DEFAULT_BATCH: usize = 16;

/// One scene of a script.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptScene {
    /// Image id.
    pub seed: u64,
    /// Strokes in order.
    pub edits: Vec<ScriptEdit>,
    /// Output PNG, relative to the output directory.
    pub out: String,
    /// Keep insertions that fail the context check.
    #[serde(default)]
    pub force: bool,
}

/// One stroke of a script scene.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptEdit {
    /// `remove` or `add`.
    pub op: Action,
    /// The concept.
    pub concept: String,
    /// Mask file, relative to the script.
    pub mask: String,
    /// Units to use instead of the concept's top k.
    #[serde(default)]
    pub units: Option<Vec<usize>>,
    /// Keep this insertion even when the context check rejects it.
    #[serde(default)]
    pub force: bool,
}

/// Reads one script line.
pub fn parse_line(text: &str) -> Result<ScriptScene> {
    let scene: ScriptScene = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "{e}; a line is {{\"seed\": 7, \"edits\": [{{\"op\": \"remove\", \"concept\": \
             \"tree\", \"mask\": \"m.png\"}}], \"out\": \"scene7.png\"}}"
        )
    })?;
    let out = Path::new(&scene.out);
    if out.is_absolute() || out.components().any(|c| !matches!(c, Component::Normal(_))) {
        bail!(
            "out '{}' must be a relative path inside the output directory",
            scene.out
        );
    }
    if out.extension().and_then(|e| e.to_str()) != Some("png") {
        bail!("out '{}' must end in .png", scene.out);
    }
    Ok(scene)
}

/// The script's scenes by line number (from 1), each parsed or with its error.
pub fn read_script(path: &Path) -> Result<Vec<(usize, Result<ScriptScene>)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the edit script {}", path.display()))?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, parse_line(l)))
        .collect())
}

/// How to run a script.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// The JSONL script.
    pub script: PathBuf,
    /// Output directory.
    pub out: PathBuf,
    /// Scenes per forward pass.
    pub batch: usize,
    /// Units per stroke and mask pooling.
    pub plan: PlanOptions,
    /// Resize masks of another aspect ratio instead of refusing them.
    pub stretch: bool,
    /// Keep insertions that fail the context check in every scene.
    pub force: bool,
    /// Show a progress bar.
    pub progress: bool,
}

/// A line that could not be painted.
#[derive(Clone, Debug, Serialize)]
pub struct LineError {
    /// Line number in the script (from 1).
    pub line: usize,
    /// Why.
    pub error: String,
}

/// What a script run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BatchSummary {
    /// Scene lines in the script.
    pub scenes: usize,
    /// Scenes painted by this run.
    pub painted: usize,
    /// Scenes complete from an earlier run and skipped.
    pub already_done: usize,
    /// Lines that failed.
    pub failed: Vec<LineError>,
    /// Warnings by line (e.g. an empty mask: that stroke does nothing).
    pub warnings: Vec<LineError>,
    /// Removal strokes measured (over all complete scenes).
    pub removals: usize,
    /// Mean fraction of the concept removed in the region, over removals that had any.
    pub mean_removed_fraction: Option<f64>,
    /// Insertions accepted by the context check.
    pub insertions_accepted: usize,
    /// Insertions rejected by the context check.
    pub insertions_rejected: usize,
    /// Strokes with an empty mask.
    pub empty_strokes: usize,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Runs a script with `session`: paints the scenes not yet complete, writes their files and the
/// manifests (`manifest.jsonl`, one record per complete scene in script order, and
/// `manifest.json` with the summary).
pub fn run_batch(session: &Session, opts: &BatchOptions) -> Result<BatchSummary> {
    if opts.batch == 0 {
        bail!("--batch must be at least 1 scene");
    }
    let start = std::time::Instant::now();
    let lines = read_script(&opts.script)?;
    let base = opts.script.parent().unwrap_or(Path::new("")).to_path_buf();
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let mut summary = BatchSummary {
        scenes: lines.len(),
        ..Default::default()
    };
    let mut records: BTreeMap<usize, Value> = BTreeMap::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut pending: Vec<(usize, ScenePaths, ScenePlan)> = Vec::new();
    let painter = session.painter()?;
    for (line, parsed) in lines {
        let result = (|| -> Result<Option<(ScenePaths, ScenePlan)>> {
            let scene = parsed?;
            if let Some(first) = seen.insert(scene.out.clone(), line) {
                bail!("out '{}' is already written by line {first}", scene.out);
            }
            let paths = ScenePaths::for_image(&opts.out.join(&scene.out))?;
            if paths.record.exists() && paths.image.exists() {
                let text = std::fs::read_to_string(&paths.record)?;
                if let Ok(v) = serde_json::from_str::<Value>(&text) {
                    records.insert(line, v);
                    return Ok(None);
                }
            }
            let mut strokes = Vec::with_capacity(scene.edits.len());
            for (j, e) in scene.edits.iter().enumerate() {
                let plan = PlanOptions {
                    units: e.units.clone().or_else(|| opts.plan.units.clone()),
                    ..opts.plan.clone()
                };
                let mut stroke = session
                    .plan_from_file(e.op, &e.concept, &base.join(&e.mask), opts.stretch, &plan)
                    .with_context(|| format!("edit {}", j + 1))?;
                stroke.force = e.force;
                if stroke.empty {
                    summary.warnings.push(LineError {
                        line,
                        error: format!(
                            "edit {}: mask {} is empty; this stroke does nothing",
                            j + 1,
                            e.mask
                        ),
                    });
                }
                strokes.push(stroke);
            }
            Ok(Some((
                paths,
                ScenePlan {
                    seed: scene.seed,
                    strokes,
                    force: scene.force || opts.force,
                },
            )))
        })();
        match result {
            Ok(Some((paths, plan))) => pending.push((line, paths, plan)),
            Ok(None) => summary.already_done += 1,
            Err(e) => summary.failed.push(LineError {
                line,
                error: format!("{e:#}"),
            }),
        }
    }
    let bar = opts
        .progress
        .then(|| crate::progress::bar(pending.len() as u64, "scenes"));
    for chunk in pending.chunks(opts.batch) {
        let scenes: Vec<&ScenePlan> = chunk.iter().map(|(_, _, p)| p).collect();
        let outcomes = painter.paint(&scenes)?;
        for ((line, paths, plan), outcome) in chunk.iter().zip(outcomes) {
            let record = write_scene(
                &outcome,
                &plan.strokes,
                paths,
                &session.model,
                &session.catalog.layer,
            )?;
            records.insert(*line, record);
            summary.painted += 1;
        }
        if let Some(b) = &bar {
            b.inc(chunk.len() as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    tally_effects(&mut summary, records.values());
    summary.seconds = start.elapsed().as_secs_f64();
    let mut jsonl = String::new();
    for (line, record) in &records {
        let mut r = record.clone();
        r["line"] = json!(line);
        jsonl.push_str(&serde_json::to_string(&r)?);
        jsonl.push('\n');
    }
    atomic_write(&opts.out.join("manifest.jsonl"), jsonl.as_bytes())?;
    write_json(
        &opts.out.join("manifest.json"),
        &json!({
            "script": opts.script,
            "model": session.model,
            "layer": session.catalog.layer,
            "summary": summary,
            "scenes": records.values().collect::<Vec<_>>(),
        }),
    )?;
    Ok(summary)
}

fn tally_effects<'a>(summary: &mut BatchSummary, records: impl Iterator<Item = &'a Value>) {
    let mut fractions = Vec::new();
    for record in records {
        for stroke in record["strokes"].as_array().into_iter().flatten() {
            let effect = &stroke["effect"];
            match effect["kind"].as_str() {
                Some("removal") => {
                    summary.removals += 1;
                    if let Some(f) = effect["removed_fraction"].as_f64() {
                        fractions.push(f);
                    }
                }
                Some("insertion") if effect["accepted"].as_bool() == Some(true) => {
                    summary.insertions_accepted += 1
                }
                Some("insertion") => summary.insertions_rejected += 1,
                Some("skipped") => summary.empty_strokes += 1,
                _ => {}
            }
        }
    }
    summary.mean_removed_fraction =
        (!fractions.is_empty()).then(|| fractions.iter().sum::<f64>() / fractions.len() as f64);
}
