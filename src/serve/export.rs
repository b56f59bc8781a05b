//! A painting as a download: a zip with the pictures and the record `gandissect edit` writes,
//! the stroke masks, and a one-line script that replays the painting with `gandissect batch`.

use super::project::{LayerInfo, ProjectInfo};
use super::request::PaintRequest;
use super::worker::png_rgb;
use crate::edit::paint::SceneOutcome;
use crate::edit::plan::PlannedStroke;
use crate::edit::scene::{ScenePaths, scene_pictures, scene_record};
use anyhow::Result;
use image::GrayImage;
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// The name of a painting's zip.
pub fn zip_name(project: &str, seed: u64) -> String {
    let safe: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("painting-{safe}-{seed}.zip")
}

/// The command that replays `script.jsonl` of a painting of `info` at `layer`.
pub fn replay_command(info: &ProjectInfo, layer: &LayerInfo) -> String {
    let dissection = std::fs::canonicalize(&layer.dissection).unwrap_or(layer.dissection.clone());
    let mut cmd = format!(
        "gandissect batch script.jsonl --out replay --model {} --segmenter {} --layer {} \
         --dissection {}",
        info.model,
        info.segmenter,
        layer.layer,
        dissection.display()
    );
    if info.value_quantile != crate::edit::plan::DEFAULT_VALUE_QUANTILE {
        cmd.push_str(&format!(" --value-quantile {}", info.value_quantile));
    }
    cmd
}

/// Packs a painted scene: `sceneN.png`, `sceneN-original.png`, `sceneN-compare.png`,
/// `sceneN.json` (the record), `masks/strokeNN.png`, `script.jsonl` and `README.txt`.
pub fn painting_zip(
    outcome: &SceneOutcome,
    strokes: &[PlannedStroke],
    req: &PaintRequest,
    info: &ProjectInfo,
    layer: &LayerInfo,
) -> Result<Vec<u8>> {
    let seed = outcome.seed;
    let paths = ScenePaths::for_image(Path::new(&format!("scene{seed}.png")))?;
    let pictures = scene_pictures(outcome, strokes)?;
    let record = scene_record(outcome, &paths, &info.model, &layer.layer);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (name(&paths.image), png_rgb(&pictures.edited)?),
        (name(&paths.original), png_rgb(&pictures.original)?),
        (name(&paths.compare), png_rgb(&pictures.compare)?),
        (name(&paths.record), serde_json::to_vec_pretty(&record)?),
    ];
    let side = info.image_size;
    let mut edits = Vec::new();
    for (j, (stroke, asked)) in strokes.iter().zip(&req.strokes).enumerate() {
        let on = asked.mask.unpack(side).map_err(anyhow::Error::msg)?;
        let img = GrayImage::from_fn(side, side, |x, y| {
            image::Luma([if on[(y * side + x) as usize] { 255 } else { 0 }])
        });
        let mask = format!("masks/stroke{:02}.png", j + 1);
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Png)?;
        files.push((mask.clone(), buf.into_inner()));
        edits.push(json!({
            "op": stroke.action,
            "concept": stroke.concept,
            "mask": mask,
            "units": stroke.units,
            "force": stroke.force,
        }));
    }
    let line = json!({ "seed": seed, "edits": edits, "out": name(&paths.image) });
    files.push(("script.jsonl".into(), format!("{line}\n").into_bytes()));
    let readme = format!(
        "Scene {seed} of {} painted at {} ({} strokes).\n\nReplay it from this directory:\n\n  \
         {}\n",
        info.project,
        layer.layer,
        strokes.len(),
        replay_command(info, layer)
    );
    files.push(("README.txt".into(), readme.into_bytes()));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::FileOptions::default();
    for (path, bytes) in files {
        zip.start_file(path, options)?;
        zip.write_all(&bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

fn name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}
