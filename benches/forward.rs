//! Plain forward passes of the generators: the baseline every edit is measured against.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
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

criterion_group!(benches, proggan_forward);
criterion_main!(benches);
