//! Editing: a single edit on cached prefix features (against the bare suffix forward), mask
//! pooling and compositing alone, PNG encoding, and edited scenes per second by batch size.
//!
//! Models: the world generator (its trained weights when installed, else random weights of its
//! geometry) and a random-weight 256×256 ProGAN.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gandissect::bench::EditSpec;
use gandissect::bench::models::{self, BenchModel};
use gandissect::cut::{Cut, EditPlanes};
use gandissect::imageio::to_rgb_images;
use std::time::Duration;
use tch::{Device, Kind, Tensor};

fn load(spec: &str) -> BenchModel {
    let work = std::env::temp_dir().join("gandissect-bench");
    models::load(spec, &work, Device::Cpu).expect("benchmark model")
}

fn single_edit(c: &mut Criterion) {
    let _g = tch::no_grad_guard();
    for spec in [models::WORLD, models::RANDOM256] {
        let m = load(spec);
        let g = &m.generator;
        let cut = Cut::new(g, "layer4").unwrap();
        let edit = EditSpec::standard(cut.layer_name(), g.channels(cut.layer_index()));
        let side = g.resolution();
        let z = Tensor::randn([1, g.z_dim()], (Kind::Float, Device::Cpu));
        let h = cut.prefix(&z);
        let image = cut.suffix(&h);
        let mut group = c.benchmark_group(format!("edit_single/{spec}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(if side > 64 { 15 } else { 5 }))
            .warm_up_time(Duration::from_secs(1));
        group.bench_function("bare_suffix", |b| b.iter(|| cut.suffix(&h)));
        group.bench_function("edit_and_suffix", |b| {
            b.iter(|| {
                let e = edit.edits(side, Device::Cpu);
                cut.suffix(&cut.edit(&h, &e).unwrap())
            })
        });
        group.bench_function("pool_and_composite", |b| {
            b.iter(|| {
                let e = edit.edits(side, Device::Cpu);
                EditPlanes::composite(&e, cut.layer_name(), &h.size(), Device::Cpu)
                    .unwrap()
                    .unwrap()
                    .apply(&h)
            })
        });
        group.bench_function("png_encode", |b| {
            b.iter(|| {
                let rgb = to_rgb_images(&image).unwrap();
                let mut buf = Vec::new();
                image::ImageEncoder::write_image(
                    image::codecs::png::PngEncoder::new(&mut buf),
                    rgb[0].as_raw(),
                    rgb[0].width(),
                    rgb[0].height(),
                    image::ExtendedColorType::Rgb8,
                )
                .unwrap();
                buf
            })
        });
        group.finish();
    }
}

fn batch_throughput(c: &mut Criterion) {
    let _g = tch::no_grad_guard();
    for (spec, batches) in [
        (models::WORLD, &[1i64, 8, 32][..]),
        (models::RANDOM256, &[1i64, 8][..]),
    ] {
        let m = load(spec);
        let g = &m.generator;
        let cut = Cut::new(g, "layer4").unwrap();
        let edit = EditSpec::standard(cut.layer_name(), g.channels(cut.layer_index()));
        let side = g.resolution();
        let mut group = c.benchmark_group(format!("edit_batch/{spec}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(if side > 64 { 30 } else { 5 }))
            .warm_up_time(Duration::from_secs(1));
        for &batch in batches {
            let z = Tensor::randn([batch, g.z_dim()], (Kind::Float, Device::Cpu));
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::from_parameter(batch), &z, |b, z| {
                b.iter(|| {
                    let e = edit.edits(side, Device::Cpu);
                    cut.forward_edited(z, &e).unwrap()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, single_edit, batch_throughput);
criterion_main!(benches);
