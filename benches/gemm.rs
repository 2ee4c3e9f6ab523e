//! sgemm at square sizes: `cargo bench --bench gemm`. Throughput is reported in elements (read as FLOP: each
//! product does 2 n^3 of them). The same on one thread, a strided product (a transposed operand) and a batched
//! one, at 512.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::gemm::{gemm, matmul};

fn sgemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm");
    for n in [256usize, 512, 1024] {
        let a = common::uniform(&[n, n], 1.0, 1).into_dimensionality().unwrap();
        let b = common::uniform(&[n, n], 1.0, 2).into_dimensionality().unwrap();
        group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            common::iter_on_pool(bench, || gemm(a.view(), b.view()))
        });
    }
    group.finish();

    // The same on one thread: the kernel's efficiency against one core's peak, whatever the other core does.
    // (PyTorch's side calls its product on the timing thread with one intra-op thread.)
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a one-thread pool");
    let mut group = c.benchmark_group("sgemm_1thread");
    for n in [256usize, 512, 1024] {
        let a = common::uniform(&[n, n], 1.0, 1).into_dimensionality().unwrap();
        let b = common::uniform(&[n, n], 1.0, 2).into_dimensionality().unwrap();
        group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            // The timing loop itself runs on the pool's thread: each product stays on it (no hand-over per call).
            one.install(|| bench.iter(|| gemm(a.view(), b.view())))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("sgemm_variants");
    let n = 512;
    let a: ndarray::Array2<f32> = common::uniform(&[n, n], 1.0, 1).into_dimensionality().unwrap();
    let b: ndarray::Array2<f32> = common::uniform(&[n, n], 1.0, 2).into_dimensionality().unwrap();
    group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
    group.bench_function("at_b_512", |bench| common::iter_on_pool(bench, || gemm(a.t(), b.view())));
    group.bench_function("a_bt_512", |bench| common::iter_on_pool(bench, || gemm(a.view(), b.t())));
    let (batch, m) = (64usize, 64usize);
    let x = common::uniform(&[batch, m, m], 1.0, 3);
    let y = common::uniform(&[batch, m, m], 1.0, 4);
    group.throughput(Throughput::Elements(2 * (batch * m * m * m) as u64));
    group.bench_function("batched_64x64x64x64", |bench| common::iter_on_pool(bench, || matmul(x.view(), y.view())));
    group.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = sgemm }
criterion_main!(benches);
