//! The two ways of computing ProGAN's convolutions after an upsampling, timed against each
//! other in interleaved rounds: the fused phase convolutions and the plain upsample-then-3×3
//! path, on the same weights (see [`crate::nets::upconv`]); and the fused path in the default
//! memory layout against channels-last (see [`crate::nets::layout`]). With a PyTorch peer
//! ([`super::peer`]), its whole-scene forward runs in the same rounds.

use super::measure::Settings;
use super::models::BenchModel;
use super::peer::Peer;
use super::timing::{Percentiles, interleaved};
use crate::cut::Cut;
use crate::nets::layered::LayeredNet;
use crate::nets::upconv::UpsampleConv;
use anyhow::Result;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// One workload on both paths.
#[derive(Clone, Debug, Serialize)]
pub struct PathPair {
    /// Images per call.
    pub batch: i64,
    /// The fused path.
    pub fused: Percentiles,
    /// The plain path.
    pub plain: Percentiles,
    /// Plain p50 / fused p50 (above 1: fused is faster).
    pub speedup: f64,
    /// The fused path in the other memory layout (the default NCHW where the generator runs
    /// channels-last).
    pub other_layout: Percentiles,
    /// Other-layout p50 / fused p50 (above 1: the generator's own layout is faster).
    pub layout_speedup: f64,
    /// The PyTorch peer (allocator setting) in the same rounds, as it timed its forward.
    pub peer: Option<Percentiles>,
    /// Peer p50 / fused p50 (above 1: ours is faster by that factor).
    pub peer_speedup: Option<f64>,
}

impl PathPair {
    fn new(batch: i64, times: &[Vec<f64>], peer: Option<&[f64]>) -> Self {
        let fused = Percentiles::from_seconds(&times[0]);
        let plain = Percentiles::from_seconds(&times[1]);
        let other_layout = Percentiles::from_seconds(&times[2]);
        let peer = peer.map(Percentiles::from_seconds);
        Self {
            batch,
            speedup: plain.p50_ms / fused.p50_ms,
            layout_speedup: other_layout.p50_ms / fused.p50_ms,
            peer_speedup: peer.as_ref().map(|p| p.p50_ms / fused.p50_ms),
            peer,
            fused,
            plain,
            other_layout,
        }
    }
}

/// Fused against plain on one model.
#[derive(Clone, Debug, Serialize)]
pub struct Paths {
    /// The suffix forward from the cut layer at batch 1 (the edit's forward).
    pub suffix: PathPair,
    /// Whole scenes from latents, per batch size.
    pub generation: Vec<PathPair>,
}

/// Times the suffix after `layer` and whole generation on both paths of `model`, and the
/// `peer`'s whole-scene forward in the same generation rounds when one is given.
pub fn measure(
    model: &BenchModel,
    layer: &str,
    s: &Settings,
    device: Device,
    mut peer: Option<&mut Peer>,
) -> Result<Paths> {
    let _g = tch::no_grad_guard();
    let fused = model.generator.with_upsample_conv(UpsampleConv::Fused)?;
    let plain = model.generator.with_upsample_conv(UpsampleConv::Plain)?;
    let other = fused.with_channels_last(!fused.channels_last());
    let (cf, cp, co) = (
        Cut::new(&fused, layer)?,
        Cut::new(&plain, layer)?,
        Cut::new(&other, layer)?,
    );
    tch::manual_seed(1);
    let z = Tensor::randn([1, fused.z_dim()], (Kind::Float, device));
    let h = cf.prefix(&z);
    let mut a = || {
        let _ = cf.suffix(&h);
    };
    let mut b = || {
        let _ = cp.suffix(&h);
    };
    let mut c = || {
        let _ = co.suffix(&h);
    };
    let times = interleaved(
        &mut [&mut a, &mut b, &mut c],
        s.warmup,
        s.runs,
        s.min_seconds,
        device,
    );
    let suffix = PathPair::new(1, &times, None);
    let mut generation = Vec::new();
    for &batch in s.batches_for(fused.resolution()) {
        tch::manual_seed(2);
        let z = Tensor::randn([batch, fused.z_dim()], (Kind::Float, device));
        let mut a = || {
            let _ = fused.forward(&z);
        };
        let mut b = || {
            let _ = plain.forward(&z);
        };
        let mut c = || {
            let _ = other.forward(&z);
        };
        // the peer's own timings, warm-up included; its first error ends its part
        let (mut peer_times, mut peer_error) = (Vec::new(), None);
        let mut d = || {
            if let (Some(p), None) = (peer.as_deref_mut(), &peer_error) {
                match p.generate(batch) {
                    Ok(secs) => peer_times.push(secs),
                    Err(e) => peer_error = Some(e),
                }
            }
        };
        let warmup = s.warmup.min(1);
        let times = interleaved(
            &mut [&mut a, &mut b, &mut c, &mut d],
            warmup,
            s.batch_runs,
            s.min_seconds,
            device,
        );
        if let Some(e) = peer_error {
            return Err(e);
        }
        let peer_times = (!peer_times.is_empty()).then(|| peer_times[warmup..].to_vec());
        generation.push(PathPair::new(batch, &times, peer_times.as_deref()));
    }
    Ok(Paths { suffix, generation })
}
