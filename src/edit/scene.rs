//! One painted scene on disk: the edited image, the original, a side-by-side with the painted
//! region outlined, and a JSON record of the plan and its measured effect (written last, so
//! that its presence means the scene is complete).

use super::paint::SceneOutcome;
use super::picture::{side_by_side, union_mask};
use super::plan::PlannedStroke;
use crate::fsutil::write_json;
use crate::imageio::{save_png, to_rgb_images};
use anyhow::{Result, bail};
use image::RgbImage;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Upscaling of the side-by-side picture.
pub const COMPARE_SCALE: u32 = 4;

/// The files of one scene.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenePaths {
    /// The edited image (the path asked for).
    pub image: PathBuf,
    /// The unedited image: `<stem>-original.png`.
    pub original: PathBuf,
    /// Original and edited side by side: `<stem>-compare.png`.
    pub compare: PathBuf,
    /// The record: `<stem>.json`.
    pub record: PathBuf,
}

/// What each file of a scene is, for messages: the edited image, the original, the
/// side-by-side, the record.
pub const SCENE_FILE_ROLES: [&str; 4] = [
    "image",
    "-original picture",
    "-compare picture",
    ".json record",
];

impl ScenePaths {
    /// The files that go with the edited image `image` (which must end in `.png`).
    pub fn for_image(image: &Path) -> Result<Self> {
        if image.extension().and_then(|e| e.to_str()) != Some("png") {
            bail!(
                "output {} must be a .png file; name it e.g. edited.png",
                image.display()
            );
        }
        let stem = image.file_stem().unwrap_or_default().to_string_lossy();
        let sibling = |suffix: &str| image.with_file_name(format!("{stem}{suffix}"));
        Ok(Self {
            image: image.to_path_buf(),
            original: sibling("-original.png"),
            compare: sibling("-compare.png"),
            record: sibling(".json"),
        })
    }

    /// The four files, in the order of [`SCENE_FILE_ROLES`].
    pub fn files(&self) -> [&Path; 4] {
        [&self.image, &self.original, &self.compare, &self.record]
    }
}

fn name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The JSON record of a painted scene.
pub fn scene_record(outcome: &SceneOutcome, paths: &ScenePaths, model: &str, layer: &str) -> Value {
    json!({
        "seed": outcome.seed,
        "model": model,
        "layer": layer,
        "image": name(&paths.image),
        "original": name(&paths.original),
        "compare": name(&paths.compare),
        "changed": outcome.changed(),
        "strokes": outcome.strokes,
    })
}

/// The pictures of a painted scene: the edited image, the original, and the two side by side
/// with the painted region outlined.
pub struct ScenePictures {
    /// The final image.
    pub edited: RgbImage,
    /// The unedited image.
    pub original: RgbImage,
    /// Original and edited side by side, scaled up [`COMPARE_SCALE`] times.
    pub compare: RgbImage,
}

/// Draws the pictures of `outcome`, outlining the region of its drawn `strokes`.
pub fn scene_pictures(outcome: &SceneOutcome, strokes: &[PlannedStroke]) -> Result<ScenePictures> {
    let pair = tch::Tensor::stack(&[&outcome.original, &outcome.edited], 0);
    let mut images = to_rgb_images(&pair)?;
    let (w, h) = images[0].dimensions();
    let masks: Vec<&tch::Tensor> = strokes
        .iter()
        .filter(|s| !s.empty)
        .map(|s| &s.mask)
        .collect();
    let region = union_mask(&masks, w as usize, h as usize);
    let compare = side_by_side(&images[0], &images[1], &region, COMPARE_SCALE);
    let edited = images.pop().expect("two images");
    let original = images.pop().expect("two images");
    Ok(ScenePictures {
        edited,
        original,
        compare,
    })
}

/// Writes the scene's pictures, then its record (returned).
pub fn write_scene(
    outcome: &SceneOutcome,
    strokes: &[PlannedStroke],
    paths: &ScenePaths,
    model: &str,
    layer: &str,
) -> Result<Value> {
    write_scene_for(outcome, strokes, paths, model, layer, None)
}

/// [`write_scene`], recording under `request` what was asked for (a script line and its
/// options), so that a later run can tell whether the scene on disk still answers it.
pub fn write_scene_for(
    outcome: &SceneOutcome,
    strokes: &[PlannedStroke],
    paths: &ScenePaths,
    model: &str,
    layer: &str,
    request: Option<&Value>,
) -> Result<Value> {
    if let Some(dir) = paths.image.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let pictures = scene_pictures(outcome, strokes)?;
    save_png(&paths.image, &pictures.edited)?;
    save_png(&paths.original, &pictures.original)?;
    save_png(&paths.compare, &pictures.compare)?;
    let mut record = scene_record(outcome, paths, model, layer);
    if let Some(request) = request {
        record["request"] = request.clone();
    }
    write_json(&paths.record, &record)?;
    Ok(record)
}
