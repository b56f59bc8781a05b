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
mod font;
mod light;
mod raster;
mod rng;
mod samples;
mod scene;
mod sky;
mod terrain;
mod trees;

#[cfg(test)]
mod tests;

pub use class::SceneClass;
pub use concepts::{CONCEPTS, MAX_CONCEPT, concept_category, concept_id, palette};
pub use rng::Rng;
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

/// The random stream that picks the class of [`render`].
const CLASS_STREAM: u64 = 0x0063_6c61_7373;

/// The class [`render`] gives `seed`: uniform over [`SceneClass::ALL`].
pub fn class_of(seed: u64) -> SceneClass {
    let mut rng = Rng::new(seed, CLASS_STREAM);
    SceneClass::ALL[rng.below(SceneClass::ALL.len() as u32) as usize]
}

/// Renders the scene of `seed`, its class drawn uniformly from the seed.
pub fn render(seed: u64) -> Scene {
    render_class(seed, class_of(seed))
}

/// Renders a scene of the given class from `seed` (for class-balanced data).
pub fn render_class(seed: u64, class: SceneClass) -> Scene {
    let mut rng = Rng::new(seed, 1 + class.index() as u64);
    let light = light::Light::sample(&mut rng);
    let mut canvas = raster::Canvas::new();
    scene::compose(&mut canvas, &mut rng, &light, class);
    let (rgb, labels) = canvas.into_parts();
    Scene {
        seed,
        class,
        rgb: light::finish(&rgb, &light, seed),
        labels,
    }
}
