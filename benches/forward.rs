//! Plain forward passes of the generators (the baseline every edit is measured against) and the
//! device's convolution peak (512→512 3×3 at 16×16, batch 8) that ratio (b) divides by.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gandissect::bench::flops::{PEAK_BATCH, PEAK_CONV};
use gandissect::bench::models;
use gandissect::nets::layered::LayeredNet;
use gandissect::nets::proggan::ProGan;
use std::time::Duration;
use tch::{Device, Kind, Tensor};

fn proggan_forward(c: &mut Criterion) {
    let _g = tch::no_grad_guard();
    let mut group = c.benchmark_group("proggan256_forward");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));
    let g = ProGan::random(&[512, 512, 512, 512, 512, 256, 128, 64], 0, Device::Cpu).unwrap();
    for batch in [1i64, 8] {
        let z = Tensor::randn([batch, 512], (Kind::Float, Device::Cpu));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &z, |b, z| {
            b.iter(|| g.forward(z))
        });
    }
    group.finish();
}

fn world_forward(c: &mut Criterion) {
    let _g = tch::no_grad_guard();
    let work = std::env::temp_dir().join("gandissect-bench");
    let m = models::load(models::WORLD, &work, Device::Cpu).expect("benchmark model");
    let mut group = c.benchmark_group("world_forward");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    for batch in [1i64, 8, 32] {
        let z = Tensor::randn([batch, m.generator.z_dim()], (Kind::Float, Device::Cpu));
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &z, |b, z| {
            b.iter(|| m.generator.forward(z))
        });
    }
    group.finish();
}

fn peak_conv(c: &mut Criterion) {
    let _g = tch::no_grad_guard();
    let k = PEAK_CONV;
    let x = Tensor::randn(
        [PEAK_BATCH, k.cin, k.out_h, k.out_w],
        (Kind::Float, Device::Cpu),
    );
    let w = Tensor::randn(
        [k.cout, k.cin, k.kernel, k.kernel],
        (Kind::Float, Device::Cpu),
    ) * 0.02;
    let mut group = c.benchmark_group("peak_conv");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        // criterion reports "elements" per second: here, FLOP/s
        .throughput(Throughput::Elements((k.flops() * PEAK_BATCH as f64) as u64));
    group.bench_function("512x512_3x3_16x16_b8", |b| {
        b.iter(|| x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1))
    });
    group.finish();
}

criterion_group!(benches, proggan_forward, world_forward, peak_conv);
criterion_main!(benches);
