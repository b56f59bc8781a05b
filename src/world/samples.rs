//! Looking at the world: colourised label maps, statistics over seed ranges, and sample files
//! (images, label maps, a contact sheet and a JSON summary).

use super::{CONCEPTS, MAX_CONCEPT, SIZE, Scene, SceneClass, concept_category, palette, render};
use crate::chart::text::{draw_text, line_height, width};
use crate::fsutil::{atomic_write_with, write_json};
use anyhow::{Context, Result, bail};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage};
use serde::Serialize;
use std::ops::Range;
use std::path::Path;

/// How many scenes the contact sheet shows at most (the first ones of the range).
pub const SHEET_SCENES: usize = 64;

/// The share of all pixels one concept covers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConceptShare {
    /// Concept id.
    pub id: u8,
    /// Concept name.
    pub name: String,
    /// "object", "part" or "material".
    pub category: String,
    /// Fraction of all pixels of all scenes.
    pub fraction: f64,
    /// Fraction of scenes in which the concept appears.
    pub present_in: f64,
}

/// How many scenes of one class a seed range holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassCount {
    /// Class name.
    pub class: String,
    /// Number of scenes.
    pub count: u64,
}

/// Statistics of the scenes of a seed range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorldSummary {
    /// First seed.
    pub first_seed: u64,
    /// Number of scenes.
    pub scenes: u64,
    /// Per-concept pixel shares, by id (1..=14).
    pub concepts: Vec<ConceptShare>,
    /// Per-class scene counts, in class order.
    pub classes: Vec<ClassCount>,
}

/// Running tallies behind a [`WorldSummary`].
struct Tally {
    first_seed: u64,
    scenes: u64,
    pixels: [u64; 256],
    present: [u64; 256],
    classes: [u64; SceneClass::ALL.len()],
}

impl Tally {
    fn new(first_seed: u64) -> Self {
        Tally {
            first_seed,
            scenes: 0,
            pixels: [0; 256],
            present: [0; 256],
            classes: [0; SceneClass::ALL.len()],
        }
    }

    fn add(&mut self, scene: &Scene) {
        self.scenes += 1;
        self.classes[scene.class.index()] += 1;
        let mut seen = [false; 256];
        for &l in &scene.labels {
            self.pixels[l as usize] += 1;
            seen[l as usize] = true;
        }
        for (p, s) in self.present.iter_mut().zip(seen) {
            *p += u64::from(s);
        }
    }

    fn summary(&self) -> WorldSummary {
        let total = (self.scenes * (SIZE * SIZE) as u64).max(1) as f64;
        let scenes = self.scenes.max(1) as f64;
        WorldSummary {
            first_seed: self.first_seed,
            scenes: self.scenes,
            concepts: (1..=MAX_CONCEPT)
                .map(|id| ConceptShare {
                    id,
                    name: CONCEPTS[id as usize].to_string(),
                    category: concept_category(id).to_string(),
                    fraction: self.pixels[id as usize] as f64 / total,
                    present_in: self.present[id as usize] as f64 / scenes,
                })
                .collect(),
            classes: SceneClass::ALL
                .iter()
                .map(|c| ClassCount {
                    class: c.name().to_string(),
                    count: self.classes[c.index()],
                })
                .collect(),
        }
    }
}

/// Renders every seed of `seeds` and returns the per-concept and per-class statistics.
pub fn summarize(seeds: Range<u64>) -> WorldSummary {
    let mut tally = Tally::new(seeds.start);
    for seed in seeds {
        tally.add(&render(seed));
    }
    tally.summary()
}

/// A label map of `SIZE * SIZE` ids as an image in the display colours of [`palette`].
pub fn colorize(labels: &[u8]) -> Result<RgbImage> {
    if labels.len() != SIZE * SIZE {
        bail!(
            "a label map must hold {}×{} = {} ids, this one holds {}; pass a map rendered by the world",
            SIZE,
            SIZE,
            SIZE * SIZE,
            labels.len()
        );
    }
    let mut img = RgbImage::new(SIZE as u32, SIZE as u32);
    for (px, &l) in img.pixels_mut().zip(labels) {
        *px = Rgb(palette(l));
    }
    Ok(img)
}

/// Writes `img` as a PNG at `path`, atomically, compressed as well as the encoder can.
fn write_png(path: &Path, img: &RgbImage) -> Result<()> {
    atomic_write_with(path, |tmp| {
        let file = std::io::BufWriter::new(std::fs::File::create(tmp)?);
        PngEncoder::new_with_quality(file, CompressionType::Best, FilterType::Adaptive)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                ExtendedColorType::Rgb8,
            )?;
        Ok(())
    })
}

/// Geometry of the contact sheet.
const COLUMNS: u32 = 8;
const GAP: u32 = 4;
/// Caption text size in pixels.
const TEXT: f32 = 10.0;
const CAPTION: u32 = 14;
const CELL_W: u32 = 2 * SIZE as u32 + 2;
const CELL_H: u32 = SIZE as u32 + CAPTION;
const BACKGROUND: [u8; 3] = [30, 30, 34];
const INK: [u8; 3] = [220, 220, 220];

/// Copies `src` into `dst` with its top-left corner at `(x, y)`.
fn blit(dst: &mut RgbImage, src: &RgbImage, x: u32, y: u32) {
    for (sx, sy, px) in src.enumerate_pixels() {
        dst.put_pixel(x + sx, y + sy, *px);
    }
}

/// A grid of scenes (image and label map side by side, captioned with seed and class) above a
/// legend strip of concept colours.
fn contact_sheet(scenes: &[(Scene, RgbImage, RgbImage)]) -> RgbImage {
    let n = scenes.len() as u32;
    let cols = n.clamp(1, COLUMNS);
    let rows = n.div_ceil(cols);
    let legend_rows = 2;
    let row_h = line_height(TEXT) + 3;
    let sheet_w = GAP + cols * (CELL_W + GAP);
    let legend_top = GAP + rows * (CELL_H + GAP);
    let height = legend_top + legend_rows * row_h + GAP;
    let mut sheet = RgbImage::from_pixel(sheet_w.max(300), height, Rgb(BACKGROUND));
    for (i, (scene, img, map)) in scenes.iter().enumerate() {
        let (c, r) = (i as u32 % cols, i as u32 / cols);
        let x = GAP + c * (CELL_W + GAP);
        let y = GAP + r * (CELL_H + GAP);
        blit(&mut sheet, img, x, y);
        blit(&mut sheet, map, x + SIZE as u32 + 2, y);
        let caption = format!("{} {}", scene.seed, scene.class.name().replace('_', " "));
        draw_text(
            &mut sheet,
            x as i32,
            (y + SIZE as u32) as i32,
            &caption,
            TEXT,
            INK,
        );
    }
    let per_row = (MAX_CONCEPT as u32).div_ceil(legend_rows);
    let (mut x, mut y) = (GAP, legend_top);
    for id in 1..=MAX_CONCEPT {
        let swatch = row_h - 5;
        for dy in 0..swatch {
            for dx in 0..swatch {
                if x + dx < sheet.width() {
                    sheet.put_pixel(x + dx, y + 2 + dy, Rgb(palette(id)));
                }
            }
        }
        let name = CONCEPTS[id as usize];
        draw_text(
            &mut sheet,
            (x + swatch + 3) as i32,
            y as i32,
            name,
            TEXT,
            INK,
        );
        x += swatch + 3 + width(name, TEXT).max(48) + 10;
        if u32::from(id) % per_row == 0 {
            x = GAP;
            y += row_h;
        }
    }
    sheet
}

/// Renders every seed of `seeds` and writes `out/images/<seed>.png`, `out/labels/<seed>.png`
/// (colourised label maps), `out/contact_sheet.png` (the first [`SHEET_SCENES`] scenes with a
/// legend) and `out/summary.json`; returns the summary.
pub fn write_samples(seeds: Range<u64>, out: &Path) -> Result<WorldSummary> {
    if seeds.is_empty() {
        bail!(
            "the seed range {}..{} is empty; give a range such as 0..64",
            seeds.start,
            seeds.end
        );
    }
    if out.exists() && !out.is_dir() {
        bail!(
            "{} exists and is not a directory; choose another --out",
            out.display()
        );
    }
    let mut tally = Tally::new(seeds.start);
    let mut shown = Vec::new();
    for seed in seeds {
        let scene = render(seed);
        tally.add(&scene);
        let img = scene.image()?;
        let map = colorize(&scene.labels)?;
        write_png(&out.join("images").join(format!("{seed}.png")), &img)?;
        write_png(&out.join("labels").join(format!("{seed}.png")), &map)?;
        if shown.len() < SHEET_SCENES {
            shown.push((scene, img, map));
        }
    }
    write_png(&out.join("contact_sheet.png"), &contact_sheet(&shown))
        .context("writing the contact sheet")?;
    let summary = tally.summary();
    write_json(&out.join("summary.json"), &summary)?;
    Ok(summary)
}
