//! The machine's f32 peak, measured: `cargo bench --bench peak`. Each thread runs independent chains of fused
//! multiply-adds on registers (12 accumulators, more than the FMA latency times the number of FMA pipes), with
//! 256-bit (AVX2+FMA) and 512-bit (AVX-512F) vectors, on one thread and on every core. A FMA counts 2 FLOP.
//! Threads are spawned per run, so the all-core figure includes their start-up (a few µs in 10 ms). The first
//! line names the instruction set the kernels run with (`SRN_ISA` may force a lower one), whose peak
//! `benches/peer/table.py` compares the GEMM rows with.

use std::time::Instant;

#[cfg(target_arch = "x86_64")]
mod fma {
    use std::arch::x86_64::*;

    /// `iters` rounds of 12 independent 8-lane FMAs; returns a value so the work is not optimised away.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(iters: u64) -> f32 {
        let m = _mm256_set1_ps(0.999_999);
        let a = _mm256_set1_ps(1e-7);
        let mut r = [_mm256_set1_ps(1.0); 12];
        for _ in 0..iters {
            for x in r.iter_mut() {
                *x = _mm256_fmadd_ps(*x, m, a);
            }
        }
        let mut s = _mm256_setzero_ps();
        for x in r {
            s = _mm256_add_ps(s, x);
        }
        let mut out = [0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), s);
        out.iter().sum()
    }

    /// The same with 16-lane AVX-512 vectors.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(iters: u64) -> f32 {
        let m = _mm512_set1_ps(0.999_999);
        let a = _mm512_set1_ps(1e-7);
        let mut r = [_mm512_set1_ps(1.0); 12];
        for _ in 0..iters {
            for x in r.iter_mut() {
                *x = _mm512_fmadd_ps(*x, m, a);
            }
        }
        let mut s = _mm512_setzero_ps();
        for x in r {
            s = _mm512_add_ps(s, x);
        }
        _mm512_reduce_add_ps(s)
    }
}

/// GFLOP/s of `threads` threads each running `f(iters)`: the best of 200 short runs (about 10 ms each), so
/// that a run that other processes did not disturb is among them, and clock ramp-up is over.
fn measure(threads: usize, lanes: u64, f: fn(u64) -> f32) -> f64 {
    let iters = 2_000_000u64;
    let mut best = 0.0f64;
    for _ in 0..200 {
        let t = Instant::now();
        let sink: f32 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads).map(|_| s.spawn(move || f(iters))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        let secs = t.elapsed().as_secs_f64();
        std::hint::black_box(sink);
        best = best.max((threads as u64 * iters * 12 * lanes * 2) as f64 / secs / 1e9);
    }
    best
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Which vectors the kernels run with (the CPU's best, or what SRN_ISA forces): the peak to compare with.
    println!("isa in use: {}", kernels::level().name());
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            let f: fn(u64) -> f32 = |n| unsafe { fma::avx2(n) };
            println!("fma-peak avx2+fma 256-bit: 1 thread {:.1} GFLOP/s", measure(1, 8, f));
            println!("fma-peak avx2+fma 256-bit: {cores} threads {:.1} GFLOP/s", measure(cores, 8, f));
        }
        if is_x86_feature_detected!("avx512f") {
            let f: fn(u64) -> f32 = |n| unsafe { fma::avx512(n) };
            println!("fma-peak avx512f 512-bit: 1 thread {:.1} GFLOP/s", measure(1, 16, f));
            println!("fma-peak avx512f 512-bit: {cores} threads {:.1} GFLOP/s", measure(cores, 16, f));
        }
    }
}
