//! The input stage for world scenes: rendered scenes as tensor batches (images, label maps and
//! scene classes), the world counterpart of [`crate::zsample`]'s latent rows. Training,
//! dissection, the classifier analyses and the attacks all draw their world images here.

use crate::world::{self, SceneClass};
use tch::{Device, Kind, Tensor};

/// Rendered scenes as tensors: images `[N, 3, 64, 64]` in [−1, 1], labels `[N, 64, 64]`
/// (i64 concept ids) and classes `[N]` (i64).
pub struct WorldBatch {
    /// Images.
    pub images: Tensor,
    /// Concept maps.
    pub labels: Tensor,
    /// Scene classes.
    pub classes: Tensor,
}

/// Renders `seeds` (classes drawn from the seed, or cycling through every class when
/// `balanced`).
pub fn world_batch(seeds: &[u64], balanced: bool, device: Device) -> WorldBatch {
    let n = seeds.len() as i64;
    let s = world::SIZE as i64;
    let mut rgb = Vec::with_capacity(seeds.len() * world::SIZE * world::SIZE * 3);
    let mut labels = Vec::with_capacity(seeds.len() * world::SIZE * world::SIZE);
    let mut classes = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        let scene = if balanced {
            let all = SceneClass::ALL;
            world::render_class(seed, all[(seed % all.len() as u64) as usize])
        } else {
            world::render(seed)
        };
        rgb.extend_from_slice(&scene.rgb);
        labels.extend_from_slice(&scene.labels);
        classes.push(scene.class.index() as i64);
    }
    let images = Tensor::from_slice(&rgb)
        .view([n, s, s, 3])
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float)
        .to_device(device)
        / 127.5
        - 1.0;
    let labels = Tensor::from_slice(&labels)
        .view([n, s, s])
        .to_kind(Kind::Int64)
        .to_device(device);
    let classes = Tensor::from_slice(&classes).to_device(device);
    WorldBatch {
        images,
        labels,
        classes,
    }
}
