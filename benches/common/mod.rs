//! Shared set-up for the benches: seeded random tensors and the criterion settings. Every bench times the same
//! computation as the PyTorch peer (`benches/peer/peer.py`) under the same name; `benches/compare.sh` runs both.

#![allow(dead_code)]

use criterion::Criterion;
use ndarray::ArrayD;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::time::Duration;

/// Uniform values in `[-scale, scale)` of the given shape, from a fixed seed.
pub fn uniform(shape: &[usize], scale: f32, seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(shape.to_vec(), || rng.gen_range(-scale..scale))
}

/// PyTorch's default initialisation scale for a layer with `fan_in` inputs.
pub fn fan_in_scale(fan_in: usize) -> f32 {
    1.0 / (fan_in as f32).sqrt()
}

/// Criterion with few samples: the heavy rows take seconds per iteration. `BENCH_QUICK=1` shortens every
/// bench further (a smoke run of the machinery).
pub fn criterion() -> Criterion {
    // Before any thread starts: the allocator as the engine sets it (see kernels::alloc).
    kernels::alloc::retain_freed_memory();
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(if quick { 100 } else { 1000 }))
        .measurement_time(Duration::from_secs(if quick { 1 } else { 5 }))
        .without_plots()
}

/// `bench.iter(routine)` with the timing loop on one of rayon's threads, as the experiments run their work
/// (`kernels::on_pool`): each parallel kernel then splits its work with the other thread directly instead of
/// being handed over from the main thread.
pub fn iter_on_pool<O, R: FnMut() -> O>(bench: &mut criterion::Bencher<'_>, routine: R) {
    struct OneThreadAtATime<T>(T);
    // SAFETY: the bencher and the routine (with the `Rc` values it captures) are used by the one pool thread
    // running the loop while the calling thread waits in `on_pool` until it is done; never by two threads at
    // once, and the hand-over and hand-back are synchronised by rayon's latch.
    unsafe impl<T> Send for OneThreadAtATime<T> {}
    if std::env::var_os("BENCH_ON_MAIN").is_some() {
        let mut routine = routine;
        bench.iter(&mut routine);
        return;
    }
    let job = OneThreadAtATime((bench, routine));
    kernels::on_pool(move || {
        let job = job;
        let (bench, mut routine) = job.0;
        bench.iter(&mut routine);
    });
}
