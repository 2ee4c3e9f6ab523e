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
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(if quick { 100 } else { 1000 }))
        .measurement_time(Duration::from_secs(if quick { 1 } else { 5 }))
        .without_plots()
}
