//! FSPool's ranking of f32 sets of 16 (the per-channel sort), best of many runs at the level in use:
//! `SRN_ISA=avx2 cargo run --release -p kernels --example rank_best` (and `avx512`, `scalar`), to compare the
//! levels' code paths on one machine. 2000 rows: below the threshold where the ranking goes parallel.

use kernels::fspool::sort_desc;
use std::time::Instant;

fn main() {
    let (rows, n) = (2000usize, 16usize);
    let x: Vec<f32> = (0..rows * n).map(|i| ((i * 7919 + 13) % 1009) as f32 / 100.0 - 5.0).collect();
    let mut best = f64::INFINITY;
    for _ in 0..2000 {
        let t = Instant::now();
        std::hint::black_box(sort_desc(&x, n, |_| n));
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("isa {}: ranking {rows} rows of {n}: best {:.1} µs", kernels::level().name(), best * 1e6);
}
