//! The procedural scene world: a deterministic renderer from a seed to a 64×64 RGB image, a
//! per-pixel concept map and a scene class. Pure Rust; the same seed gives the same bytes on
//! every platform and run.
//!
//! Scenes are painted back to front with real occlusion, so the label map is exactly what the
//! image shows. Rules the later experiments rely on: doors only on building walls with their
//! bottom row on the wall's bottom row; windows only on walls, above door tops; roofs on walls;
//! every pixel labelled with a concept in `1..=14`.

mod buildings;
mod class;
pub mod concepts;
mod light;
mod raster;
mod samples;
mod scene;
mod sky;
mod terrain;
mod trees;

#[cfg(test)]
mod tests;

use crate::prng::SplitMix64;
pub use class::{FINE_MIN_PIXELS, SceneClass};
pub use concepts::{CONCEPTS, MAX_CONCEPT, concept_category, concept_id, palette};
pub use samples::{
    ClassCount, ConceptShare, SHEET_SCENES, WorldSummary, colorize, summarize, write_samples,
};

/// Side length of every rendered scene, in pixels.
pub const SIZE: usize = 64;

/// One rendered scene: the image, its ground-truth concept map and its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scene {
    /// The seed it was rendered from.
    pub seed: u64,
    /// Its scene class.
    pub class: SceneClass,
    /// RGB bytes, row-major, `SIZE * SIZE * 3`.
    pub rgb: Vec<u8>,
    /// Concept ids (`1..=MAX_CONCEPT`), row-major, `SIZE * SIZE`.
    pub labels: Vec<u8>,
}

impl Scene {
    /// The image as an `image` buffer; an error if `rgb` is not `SIZE * SIZE * 3` bytes.
    pub fn image(&self) -> anyhow::Result<image::RgbImage> {
        let len = self.rgb.len();
        image::RgbImage::from_raw(SIZE as u32, SIZE as u32, self.rgb.clone()).ok_or_else(|| {
            anyhow::anyhow!(
                "scene {} holds {len} RGB bytes, expected {}; render it again",
                self.seed,
                SIZE * SIZE * 3
            )
        })
    }
}

/// The random stream that picks the painted kind of [`render`].
const CLASS_STREAM: u64 = 0x0063_6c61_7373;

/// Streams per attempt of [`render_class`]: attempt `a` paints kind `k` from stream
/// `1 + k + a · ATTEMPT_STREAMS`, so attempt 0 is what [`render`] paints.
const ATTEMPT_STREAMS: u64 = 16;

/// Attempts [`render_class`] makes before it gives up on a seed.
const MAX_ATTEMPTS: u64 = 4096;

/// The painted kind [`render`] gives `seed`: uniform over [`SceneClass::PAINTED`].
fn painted_of(seed: u64) -> SceneClass {
    let mut rng = SplitMix64::stream(seed, CLASS_STREAM);
    SceneClass::PAINTED[rng.below(SceneClass::PAINTED.len() as u32) as usize]
}

/// The class [`render`] gives `seed`: its painted kind, drawn uniformly from the seed, refined
/// by what the scene shows ([`SceneClass::of_content`]).
pub fn class_of(seed: u64) -> SceneClass {
    render(seed).class
}

/// Renders the scene of `seed`, its painted kind drawn uniformly from the seed.
pub fn render(seed: u64) -> Scene {
    paint(seed, painted_of(seed), 0)
}

/// Renders a scene of the given class from `seed` (for class-balanced data): the first of the
/// seed's attempts at painting the class's kind that shows that class.
///
/// # Panics
/// If none of [`MAX_ATTEMPTS`] attempts shows the class (every class is far more common).
pub fn render_class(seed: u64, class: SceneClass) -> Scene {
    (0..MAX_ATTEMPTS)
        .map(|attempt| paint(seed, class.painted(), attempt))
        .find(|scene| scene.class == class)
        .unwrap_or_else(|| panic!("no scene of class {class} within {MAX_ATTEMPTS} attempts"))
}

/// Paints kind `painted` from `seed`'s stream for `attempt` and labels it by its content.
fn paint(seed: u64, painted: SceneClass, attempt: u64) -> Scene {
    let stream = 1 + painted.index() as u64 + attempt * ATTEMPT_STREAMS;
    let mut rng = SplitMix64::stream(seed, stream);
    let light = light::Light::sample(&mut rng);
    let mut canvas = raster::Canvas::new();
    scene::compose(&mut canvas, &mut rng, &light, painted);
    let (rgb, labels) = canvas.into_parts();
    Scene {
        seed,
        class: SceneClass::of_content(painted, &labels),
        rgb: light::finish(&rgb, &light, seed),
        labels,
    }
}
