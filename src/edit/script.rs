//! Edit scripts: JSONL, one scene per line, painted in batches and resumable.
//!
//! A line is `{"seed": 7, "edits": [{"op": "remove", "concept": "tree", "mask":
//! "masks/left.png"}], "out": "scene7.png"}` (optionally `"force": true` per scene, and
//! `"units": [..]` and `"force": true` per edit); mask paths are relative to the script, `out` to the output
//! directory. Blank lines and lines starting with `#` are skipped, and so is a UTF-8 byte-order
//! mark. A scene is complete when its record (`<stem>.json`, written last and atomically)
//! exists and records the same request (the line and the options); a re-run skips complete
//! scenes and paints a changed line again, with a note. A bad line is reported with its number
//! and the other lines go on.
//!
//! Scripts are written by other programs, so their paths are checked before anything is
//! painted ([`OutputPlan`]): no two files of a run (each scene's four files and the two
//! manifests) may be the same file, and no file may resolve outside the output directory, by
//! `..` or through a symbolic link.

use super::Session;
use super::paint::ScenePlan;
use super::plan::{Action, PlanOptions};
use super::scene::{SCENE_FILE_ROLES, ScenePaths, write_scene_for};
use crate::fsutil::{atomic_write, write_json};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

/// Scenes per forward pass by default.
pub const DEFAULT_BATCH: usize = 16;

/// Largest script read (a line per scene; far beyond any batch).
const MAX_SCRIPT_BYTES: u64 = 256 << 20;

/// The manifests every run writes into the output directory.
pub const MANIFESTS: [&str; 2] = ["manifest.jsonl", "manifest.json"];

/// One scene of a script.
#[derive(Clone, Debug, Deserialize, Serialize)]
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
#[derive(Clone, Debug, Deserialize, Serialize)]
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
    let bytes = crate::fsutil::read_regular(path, "edit script", MAX_SCRIPT_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "the edit script {} is not UTF-8 text (byte {} is not); save it as UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(parse_script(&text))
}

/// [`read_script`] for a script held in memory: a leading byte-order mark is skipped.
pub fn parse_script(text: &str) -> Vec<(usize, Result<ScriptScene>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, parse_line(l)))
        .collect()
}

/// Where a run's files go: every file claimed so far (resolved through symbolic links) with
/// what claimed it, inside one output directory.
pub struct OutputPlan {
    /// The output directory, resolved.
    root: PathBuf,
    claimed: HashMap<PathBuf, String>,
}

impl OutputPlan {
    /// A plan for the existing directory `out`, with its manifests claimed.
    pub fn new(out: &Path) -> Result<Self> {
        let root = out
            .canonicalize()
            .with_context(|| format!("cannot resolve the output directory {}", out.display()))?;
        let mut plan = Self {
            root,
            claimed: HashMap::new(),
        };
        for name in MANIFESTS {
            let file = plan.resolve(Path::new(name))?;
            plan.claimed.insert(file, format!("the batch's {name}"));
        }
        Ok(plan)
    }

    /// Resolves `relative` inside the output directory through the parts that exist, refusing
    /// a path that leaves it or ends in a symbolic link.
    fn resolve(&self, relative: &Path) -> Result<PathBuf> {
        if relative.as_os_str().is_empty()
            || relative
                .components()
                .any(|c| !matches!(c, Component::Normal(_)))
        {
            bail!(
                "'{}' must be a relative path inside the output directory",
                relative.display()
            );
        }
        let mut resolved = self.root.clone();
        let mut parts = relative.iter().peekable();
        while let Some(name) = parts.next() {
            let next = resolved.join(name);
            let meta = match std::fs::symlink_metadata(&next) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // the rest does not exist yet: it is created inside `resolved`
                    resolved = next;
                    resolved.extend(parts);
                    return Ok(resolved);
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot inspect {}", next.display()));
                }
            };
            if meta.file_type().is_symlink() {
                if parts.peek().is_none() {
                    bail!(
                        "{} is a symbolic link; a result is written as a file of its own, so remove \
                         the link or choose another out",
                        next.display()
                    );
                }
                let target = next
                    .canonicalize()
                    .with_context(|| format!("{} is a broken symbolic link", next.display()))?;
                if !target.starts_with(&self.root) {
                    bail!(
                        "{} is a symbolic link to {}, outside the output directory {}; results are \
                         written only inside it",
                        next.display(),
                        target.display(),
                        self.root.display()
                    );
                }
                resolved = target;
            } else {
                resolved = next;
            }
        }
        Ok(resolved)
    }

    /// Claims the four files of the scene `out` (relative to the output directory) for `line`,
    /// refusing them when one leaves the directory (by `..`, as an absolute path or through a
    /// symbolic link) or is already claimed.
    pub fn claim_scene(&mut self, out: &str, line: usize) -> Result<ScenePaths> {
        let paths = ScenePaths::for_image(Path::new(out))?;
        let mut resolved = Vec::with_capacity(4);
        for (file, role) in paths.files().into_iter().zip(SCENE_FILE_ROLES) {
            let target = self.resolve(file)?;
            if let Some(owner) = self.claimed.get(&target) {
                bail!(
                    "out '{out}' would write its {role} {}, which is {owner}; give the scene \
                     another name",
                    file.display()
                );
            }
            if let Some(earlier) = resolved.iter().position(|p| p == &target) {
                bail!(
                    "out '{out}' would write its {role} and its {} to the same file {}",
                    SCENE_FILE_ROLES[earlier],
                    file.display()
                );
            }
            resolved.push(target);
        }
        for (target, role) in resolved.iter().zip(SCENE_FILE_ROLES) {
            let owner = if role == "image" {
                format!("already written by line {line}")
            } else {
                format!("the {role} of line {line}'s scene")
            };
            self.claimed.insert(target.clone(), owner);
        }
        let file = |i: usize| resolved[i].clone();
        Ok(ScenePaths {
            image: file(0),
            original: file(1),
            compare: file(2),
            record: file(3),
        })
    }

    /// The directories the claimed files are in.
    pub fn directories(&self) -> BTreeSet<PathBuf> {
        self.claimed
            .keys()
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect()
    }
}

/// What a scene's record must hold for the scene to count as done: its line as parsed, and
/// the options that change how it is painted.
fn request_of(scene: &ScriptScene, opts: &BatchOptions, session: &Session) -> Value {
    json!({
        "line": scene,
        "k": opts.plan.k,
        "units": opts.plan.units,
        "pooling": format!("{:?}", opts.plan.pooling),
        "stretch": opts.stretch,
        "force": opts.force,
        "value_quantile": session.options.value_quantile,
        "model": session.model,
        "layer": session.catalog.layer,
    })
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
    let mut outputs = OutputPlan::new(&opts.out)?;
    let mut pending: Vec<(usize, ScenePaths, ScenePlan, Value)> = Vec::new();
    let painter = session.painter()?;
    for (line, parsed) in lines {
        let result = (|| -> Result<Option<(ScenePaths, ScenePlan, Value)>> {
            let scene = parsed?;
            let paths = outputs.claim_scene(&scene.out, line)?;
            let request = request_of(&scene, opts, session);
            if let Some(record) = finished_record(&paths)? {
                if record.get("request") == Some(&request) {
                    records.insert(line, record);
                    return Ok(None);
                }
                summary.warnings.push(LineError {
                    line,
                    error: format!(
                        "{} was painted for another version of this line or other options; \
                         painting it again",
                        scene.out
                    ),
                });
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
                request,
            )))
        })();
        match result {
            Ok(Some((paths, plan, request))) => pending.push((line, paths, plan, request)),
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
    // what a run killed before its renames left behind
    for dir in outputs.directories() {
        crate::fsutil::remove_stale_temps(&dir)?;
    }
    for chunk in pending.chunks(opts.batch) {
        let scenes: Vec<&ScenePlan> = chunk.iter().map(|(_, _, p, _)| p).collect();
        let outcomes = painter.paint(&scenes)?;
        for ((line, paths, plan, request), outcome) in chunk.iter().zip(outcomes) {
            let record = write_scene_for(
                &outcome,
                &plan.strokes,
                paths,
                &session.model,
                &session.catalog.layer,
                Some(request),
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

/// The record of a scene whose record and image both exist, or `None` (a record that does not
/// parse counts as missing: the scene is painted again).
fn finished_record(paths: &ScenePaths) -> Result<Option<Value>> {
    if !(paths.record.is_file() && paths.image.is_file()) {
        return Ok(None);
    }
    let text = match crate::fsutil::read_regular(&paths.record, "scene record", 64 << 20) {
        Ok(bytes) => bytes,
        Err(_) => return Ok(None),
    };
    Ok(serde_json::from_slice::<Value>(&text).ok())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_claimed_once_and_inside_the_directory() {
        let dir = crate::scratch::ScratchDir::new("script-plan").unwrap();
        let mut plan = OutputPlan::new(&dir).unwrap();
        let root = dir.canonicalize().unwrap();
        let paths = plan.claim_scene("a.png", 1).unwrap();
        assert_eq!(paths.original, root.join("a-original.png"));
        let err = |r: Result<ScenePaths>| r.expect_err("refused").to_string();
        let e = err(plan.claim_scene("a-compare.png", 2));
        assert!(e.contains("-compare picture of line 1's scene"), "{e}");
        let e = err(plan.claim_scene("manifest.png", 3));
        assert!(e.contains("the batch's manifest.json"), "{e}");
        for escape in ["new/../../x.png", "/tmp/x.png", "../x.png"] {
            let e = err(plan.claim_scene(escape, 4));
            assert!(e.contains("inside the output directory"), "{escape}: {e}");
        }
        // a refused scene claims nothing
        assert!(plan.claim_scene("b.png", 5).is_ok());
        assert!(plan.claim_scene("sub/a.png", 6).is_ok());
    }

    #[test]
    fn a_byte_order_mark_and_comments_are_skipped() {
        let lines = parse_script(
            "\u{feff}# scenes\n\n{\"seed\": 1, \"edits\": [], \"out\": \"a.png\"}\nnot json\n",
        );
        let numbers: Vec<usize> = lines.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [3, 4]);
        assert!(lines[0].1.is_ok() && lines[1].1.is_err());
    }
}
