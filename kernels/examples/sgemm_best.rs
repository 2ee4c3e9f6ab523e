//! sgemm throughput as the best of many runs: `SRN_ISA=avx2 cargo run --release -p kernels --example
//! sgemm_best`. Criterion's medians (`cargo bench --bench gemm`) move by tens of percent when another process
//! takes a core for part of a sample; the best of many short runs is as robust to that as `benches/peak.rs`'s
//! FMA peak, measured the same way, which these figures are compared with. Square products at 256, 512 and
//! 1024, on pools of 1 and 2 threads, the timing loop on the pool's thread (as `common::iter_on_pool`).
//! Arguments `THREADS SIZE...` (e.g. `2 1024`) run only those.

use kernels::gemm::gemm;
use ndarray::Array2;
use std::time::{Duration, Instant};

fn filled(n: usize, seed: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, n), |(i, j)| ((i * 31 + j * 17 + seed * 7) % 23) as f32 / 11.0 - 1.0)
}

fn main() {
    kernels::alloc::retain_freed_memory();
    println!("isa in use: {}", kernels::level().name());
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("THREADS SIZE...")).collect();
    let thread_counts = if args.is_empty() { vec![1, 2] } else { vec![args[0]] };
    let sizes = if args.len() > 1 { args[1..].to_vec() } else { vec![256, 512, 1024] };
    for threads in thread_counts {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a pool");
        for &n in &sizes {
            let (a, b) = (filled(n, 1), filled(n, 2));
            let flop = 2.0 * (n * n * n) as f64;
            let times = pool.install(|| {
                // Warm-up (clocks, page faults of the packing buffers), then at least 30 runs and 3 s.
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(300) {
                    std::hint::black_box(gemm(a.view(), b.view()));
                }
                let (mut times, start) = (Vec::new(), Instant::now());
                while times.len() < 30 || start.elapsed() < Duration::from_secs(3) {
                    let t = Instant::now();
                    std::hint::black_box(gemm(a.view(), b.view()));
                    times.push(t.elapsed().as_secs_f64());
                }
                times
            });
            let mut sorted = times.clone();
            sorted.sort_by(|x, y| x.partial_cmp(y).unwrap());
            let (best, median) = (sorted[0], sorted[sorted.len() / 2]);
            println!(
                "sgemm {n} threads {threads}: best {:.3} ms = {:.1} GFLOP/s, median {:.3} ms = {:.1} GFLOP/s ({} runs)",
                best * 1e3,
                flop / best / 1e9,
                median * 1e3,
                flop / median / 1e9,
                times.len()
            );
        }
    }
}
