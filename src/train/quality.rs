//! Measuring the default models against the world's ground truth on seeds never trained on.

use crate::imageio::to_input_size;
use crate::nets::layered::LayeredNet;
use crate::nets::proggan::ProGan;
use crate::nets::vgg::Vgg;
use crate::sample::world_batch;
use crate::segment::Segmenter;
use crate::world::{self, SceneClass};
use crate::zsample::z_rows;
use anyhow::Result;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// Per-concept segmentation quality.
#[derive(Clone, Debug, Serialize)]
pub struct ConceptScore {
    /// Concept name.
    pub concept: String,
    /// Intersection over union with the true map.
    pub iou: f64,
    /// Fraction of all pixels that truly have this concept.
    pub true_fraction: f64,
}

/// A segmenter measured against the world's true maps.
#[derive(Clone, Debug, Serialize)]
pub struct SegQuality {
    /// World seeds measured on.
    pub seeds: String,
    /// Fraction of pixels labelled correctly.
    pub pixel_accuracy: f64,
    /// Mean IoU over the concepts that occur.
    pub mean_iou: f64,
    /// Per concept.
    pub concepts: Vec<ConceptScore>,
}

/// Measures `seg` on world seeds `start..start + n`.
pub fn segmenter_quality(
    seg: &dyn Segmenter,
    start: u64,
    n: u64,
    device: Device,
) -> Result<SegQuality> {
    let l = world::CONCEPTS.len() as i64;
    let mut confusion = Tensor::zeros([l * l], (Kind::Int64, device));
    let seeds: Vec<u64> = (start..start + n).collect();
    for chunk in seeds.chunks(64) {
        let b = world_batch(chunk, false, device);
        let pred = seg.segment(&b.images)?.select(1, 0);
        let idx = (&b.labels * l + pred).flatten(0, -1);
        confusion += idx.bincount::<Tensor>(None, l * l);
    }
    let c = Vec::<i64>::try_from(confusion)?;
    let total: i64 = c.iter().sum();
    let correct: i64 = (0..l as usize).map(|i| c[i * l as usize + i]).sum();
    let mut concepts = Vec::new();
    for k in 1..l as usize {
        let truth: i64 = (0..l as usize).map(|j| c[k * l as usize + j]).sum();
        let predicted: i64 = (0..l as usize).map(|i| c[i * l as usize + k]).sum();
        let inter = c[k * l as usize + k];
        let union = truth + predicted - inter;
        if truth == 0 && predicted == 0 {
            continue;
        }
        concepts.push(ConceptScore {
            concept: world::CONCEPTS[k].to_string(),
            iou: inter as f64 / union.max(1) as f64,
            true_fraction: truth as f64 / total as f64,
        });
    }
    let present: Vec<&ConceptScore> = concepts.iter().filter(|c| c.true_fraction > 0.0).collect();
    let mean_iou = present.iter().map(|c| c.iou).sum::<f64>() / present.len().max(1) as f64;
    Ok(SegQuality {
        seeds: format!("{start}..{}", start + n),
        pixel_accuracy: correct as f64 / total as f64,
        mean_iou,
        concepts,
    })
}

/// One concept's share of pixels in generated and in real images.
#[derive(Clone, Debug, Serialize)]
pub struct ConceptShare {
    /// Concept name.
    pub concept: String,
    /// Mean pixel fraction in real world images (segmented by the same segmenter).
    pub real: f64,
    /// Mean pixel fraction in generated images.
    pub generated: f64,
    /// generated / real.
    pub ratio: f64,
}

/// A generator measured against the world.
#[derive(Clone, Debug, Serialize)]
pub struct GeneratorQuality {
    /// Images compared on each side.
    pub images: u64,
    /// Concept shares, most frequent real concepts first.
    pub concepts: Vec<ConceptShare>,
    /// Whether the 8 most frequent real concepts are each within a factor of 2.
    pub top8_within_factor_2: bool,
    /// Fréchet distance between Gaussian fits of segmenter label histograms per image
    /// (a cheap FID-like score on the segmenter's view; 0 = same distribution).
    pub label_frechet_distance: f64,
}

fn label_histograms(labels: &Tensor, l: i64) -> Tensor {
    // labels [N, 1, H, W] → per-image label fractions [N, l]
    let n = labels.size()[0];
    let flat = labels.view([n, -1]);
    let one_hot = flat.one_hot(l).to_kind(Kind::Float);
    one_hot.mean_dim(1, false, Kind::Float)
}

fn frechet(a: &Tensor, b: &Tensor) -> Result<f64> {
    // Fréchet distance between Gaussians fitted to rows of a and b (host-side, small dims).
    let to_vec = |t: &Tensor| Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1));
    let d = a.size()[1] as usize;
    let stats = |x: &Tensor| -> Result<(Vec<f64>, Vec<f64>)> {
        let mu = x.mean_dim(0, false, Kind::Double);
        let xc = x.to_kind(Kind::Double) - &mu;
        let cov = xc.transpose(0, 1).matmul(&xc) / (x.size()[0] - 1).max(1) as f64;
        Ok((to_vec(&mu)?, to_vec(&cov)?))
    };
    let (m1, c1) = stats(a)?;
    let (m2, c2) = stats(b)?;
    let mean_term: f64 = m1.iter().zip(&m2).map(|(x, y)| (x - y) * (x - y)).sum();
    // tr(C1 + C2 − 2 (C1 C2)^½) via the eigenvalues of C1^½ C2 C1^½ (symmetric).
    let t = |v: &Vec<f64>| Tensor::from_slice(v).view([d as i64, d as i64]);
    let (e1, v1) = t(&c1).linalg_eigh("L");
    let s1 = v1
        .matmul(&e1.clamp_min(0.0).sqrt().diag_embed(0, -2, -1))
        .matmul(&v1.transpose(0, 1));
    let m = s1.matmul(&t(&c2)).matmul(&s1);
    let (em, _) = ((&m + m.transpose(0, 1)) / 2.0).linalg_eigh("L");
    let tr_sqrt = f64::try_from(em.clamp_min(0.0).sqrt().sum(Kind::Double))?;
    let tr = f64::try_from(t(&c1).trace() + t(&c2).trace())?;
    Ok(mean_term + tr - 2.0 * tr_sqrt)
}

/// Compares `n` generated images (ids `0..n` of stream 1) with `n` world images (seeds
/// `0..n`), both segmented by `seg`.
pub fn generator_quality(
    g: &ProGan,
    seg: &dyn Segmenter,
    n: u64,
    device: Device,
) -> Result<GeneratorQuality> {
    let _guard = tch::no_grad_guard();
    let l = seg.labels().len() as i64;
    let mut real_h = Vec::new();
    let mut fake_h = Vec::new();
    let ids: Vec<u64> = (0..n).collect();
    for chunk in ids.chunks(50) {
        let real = world_batch(chunk, false, device).images;
        real_h.push(label_histograms(&seg.segment(&real)?, l));
        let z = z_rows(1, chunk, g.z_dim() as usize, device)?;
        let fake = g.forward(&z).clamp(-1.0, 1.0);
        fake_h.push(label_histograms(&seg.segment(&fake)?, l));
    }
    let real_h = Tensor::cat(&real_h, 0);
    let fake_h = Tensor::cat(&fake_h, 0);
    let real_mean = Vec::<f64>::try_from(real_h.mean_dim(0, false, Kind::Double))?;
    let fake_mean = Vec::<f64>::try_from(fake_h.mean_dim(0, false, Kind::Double))?;
    let mut concepts: Vec<ConceptShare> = (1..l as usize)
        .map(|k| ConceptShare {
            concept: seg.labels()[k].name.clone(),
            real: real_mean[k],
            generated: fake_mean[k],
            ratio: fake_mean[k] / real_mean[k].max(1e-12),
        })
        .collect();
    concepts.sort_by(|a, b| b.real.total_cmp(&a.real));
    let top8 = concepts
        .iter()
        .take(8)
        .all(|c| c.ratio >= 0.5 && c.ratio <= 2.0);
    Ok(GeneratorQuality {
        images: n,
        concepts,
        top8_within_factor_2: top8,
        label_frechet_distance: frechet(&real_h, &fake_h)?,
    })
}

/// A classifier measured on world scenes.
#[derive(Clone, Debug, Serialize)]
pub struct ClassifierQuality {
    /// World seeds measured on.
    pub seeds: String,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// Per class: (name, accuracy).
    pub per_class: Vec<(String, f64)>,
}

/// Measures `net`, whose outputs are named `classes`, on world seeds `start..start + n`
/// (classes drawn from the seed); a world class counts as recognised when the output standing
/// for it ([`SceneClass::outputs_in`]) wins.
pub fn classifier_quality(
    net: &Vgg,
    classes: &[String],
    input_size: i64,
    start: u64,
    n: u64,
    device: Device,
) -> Result<ClassifierQuality> {
    let _guard = tch::no_grad_guard();
    let outputs = SceneClass::outputs_in(classes)?;
    let k = SceneClass::ALL.len();
    let mut hits = vec![0u64; k];
    let mut counts = vec![0u64; k];
    let seeds: Vec<u64> = (start..start + n).collect();
    for chunk in seeds.chunks(64) {
        let b = world_batch(chunk, false, device);
        let pred = Vec::<i64>::try_from(
            net.classify(&to_input_size(&b.images, input_size))
                .argmax(1, false),
        )?;
        let truth = Vec::<i64>::try_from(&b.classes)?;
        for (p, t) in pred.iter().zip(&truth) {
            counts[*t as usize] += 1;
            hits[*t as usize] += (*p == outputs[*t as usize]) as u64;
        }
    }
    let total: u64 = counts.iter().sum();
    Ok(ClassifierQuality {
        seeds: format!("{start}..{}", start + n),
        accuracy: hits.iter().sum::<u64>() as f64 / total.max(1) as f64,
        per_class: SceneClass::ALL
            .iter()
            .map(|c| {
                (
                    c.name().to_string(),
                    hits[c.index()] as f64 / counts[c.index()].max(1) as f64,
                )
            })
            .collect(),
    })
}
