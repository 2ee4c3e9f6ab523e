//! sgemm at square sizes: `cargo bench --bench gemm`. Throughput is reported in elements (read as FLOP: each
//! product does 2 n^3 of them).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::gemm::gemm;
use ndarray::Array2;

fn sgemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm");
    group.sample_size(20);
    for n in [256usize, 512, 1024] {
        let a = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 13) as f32 / 13.0);
        let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 5 + j * 11) % 17) as f32 / 17.0);
        group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| bench.iter(|| gemm(a.view(), b.view())));
    }
    group.finish();
}

criterion_group!(benches, sgemm);
criterion_main!(benches);
