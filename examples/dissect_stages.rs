//! Where a dissection's time goes: each stage of both passes timed separately on the world
//! generator's layer4 with world-seg, one stage after the other (no pipelining).
//!
//! `cargo run --release --example dissect_stages [images]` (default 320) prints seconds and
//! milliseconds per image for drawing inputs, the forward, the per-image maxima, upsampling,
//! the pass-1 statistics (quantile sketch + top-k), segmentation and the pass-2 IoU tally.
use anyhow::Result;
use gandissect::dissect::passes::{Pass1, Pass2, Sketch};
use gandissect::dissect::source::{Labeller, Model};
use gandissect::dissect::upsample::upsample;
use std::time::Instant;
use tch::Device;

fn main() -> Result<()> {
    gandissect::allocator::keep_freed_memory();
    let _g = tch::no_grad_guard();
    let n: u64 = std::env::args().nth(1).map_or(320, |a| a.parse().unwrap());
    let model = Model::load("world-proggan", 1, Device::Cpu)?;
    let labeller = Labeller::load("world-seg", &model, Device::Cpu)?;
    let layer = model.resolve_layers(&["layer4".to_string()])?[0].0;
    let sampler = model.sampler();
    let sketch = Sketch {
        resolution: 2048,
        sample_floor: Some(2048 * 16),
    };
    let mut p1 = Pass1::new(1, sketch, 100, 0, Device::Cpu)?;
    let mut p2 = Pass2::new(1, labeller.labels().len(), Device::Cpu)?;
    let mut t = [0.0f64; 8];
    let names = [
        "inputs",
        "forward",
        "maxima",
        "upsample",
        "pass1 add",
        "segment",
        "pass2 add",
        "-",
    ];
    let ids: Vec<u64> = (0..n).collect();
    let mut levels: Option<Vec<tch::Tensor>> = None;
    for pass in 0..2 {
        for chunk in ids.chunks(32) {
            let mut clock = Instant::now();
            let mut lap = |i: usize, t: &mut [f64; 8]| {
                t[i] += clock.elapsed().as_secs_f64();
                clock = Instant::now();
            };
            let inputs = sampler.inputs(chunk, Device::Cpu)?;
            lap(0, &mut t);
            let (acts, images) = model.forward(&inputs, &[layer], pass == 1)?;
            lap(1, &mut t);
            let m = acts[0].amax([2i64, 3].as_slice(), false);
            lap(2, &mut t);
            let up = upsample(&acts[0], 64)?;
            lap(3, &mut t);
            if pass == 0 {
                p1.add(chunk, &[m], &[up])?;
                lap(4, &mut t);
            } else {
                let labels = labeller.segment(images.as_ref().unwrap(), None, 64)?;
                lap(5, &mut t);
                p2.add(&[up], levels.as_ref().unwrap(), &labels)?;
                lap(6, &mut t);
            }
        }
        if pass == 0 {
            levels = Some(p1.levels(0.99)?);
        }
    }
    for (name, s) in names.iter().zip(t) {
        println!("{name:<10} {s:8.3} s  {:.2} ms/image", s * 1e3 / n as f64);
    }
    Ok(())
}
