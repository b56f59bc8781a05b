//! The dissection pipeline (both passes, world-seg) on the world generator: images per second.
//! Each iteration is a fresh dissection of 64 images of layer4; the report is not counted.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gandissect::bench::models;
use gandissect::bench::{EditSpec, Settings, measure};
use std::time::Duration;
use tch::Device;

const IMAGES: u64 = 64;

fn dissection(c: &mut Criterion) {
    let work = std::env::temp_dir().join("gandissect-bench");
    let model = models::load(models::WORLD, &work, Device::Cpu).expect("benchmark model");
    let settings = Settings {
        dissect_samples: IMAGES,
        dissect_batch: 32,
        ..Settings::quick()
    };
    let layer = EditSpec::standard("layer4", 1).layer;
    let dir = work.join("dissect-criterion");
    let mut group = c.benchmark_group("dissect_pipeline");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(60))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(IMAGES));
    group.bench_function("world_layer4_world_seg", |b| {
        b.iter_custom(|iters| {
            // the passes' own wall time, without model loading, probing and the report
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let d =
                    measure::dissection(&model, &layer, "world-seg", &settings, &dir, Device::Cpu)
                        .expect("dissection");
                total += Duration::from_secs_f64(d.pass1_s + d.pass2_s);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, dissection);
criterion_main!(benches);
