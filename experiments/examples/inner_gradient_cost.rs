//! The cost of the SRN's two inner-gradient modes at the Circles `small` profile: what one training step's tape
//! holds after the forward pass (the memory the outer backward needs; a count, not a timing) and the step time,
//! unrolled against implicit at r = 10 and 20, measured interleaved so that both see the same machine.
//!
//! `cargo run --release -p experiments --example inner_gradient_cost [ROUNDS]`

use autograd::Tape;
use experiments::circles::data::Circles;
use experiments::circles::model::{CirclesModel, ModelConfig};
use experiments::circles::profile::Profile;
use experiments::circles::train::batch;
use models::{InnerGradient, Module, Scope, SrnConfig};
use rand::{rngs::StdRng, SeedableRng};
use std::time::Instant;

/// One training step's forward and backward: (elements on the tape after the forward pass, seconds).
fn step(model: &CirclesModel, data: &Circles, indices: &[usize]) -> (usize, f64) {
    let start = Instant::now();
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let x = tape.constant(batch(data, indices));
    let out = model.forward(&scope, x);
    let loss = (out.decoded.image - x).square().sum();
    let held = tape.live_elements();
    let grads = model.grads(&scope, &[loss]);
    std::hint::black_box(grads);
    (held, start.elapsed().as_secs_f64())
}

fn main() {
    kernels::alloc::retain_freed_memory();
    let rounds: usize = std::env::args().nth(1).map_or(20, |a| a.parse().expect("ROUNDS: a number"));
    let s = Profile::Small.settings();
    let data = Circles::generate(s.scene, s.batch, 1);
    let indices: Vec<usize> = (0..s.batch).collect();
    kernels::on_pool(|| {
        println!("| r | mode | tape elements after forward | step time (median of {rounds}) | vs unrolled |");
        println!("|---|---|---:|---:|---:|");
        for r in [10, 20] {
            let models: Vec<(InnerGradient, CirclesModel)> = [InnerGradient::Unrolled, InnerGradient::Implicit]
                .into_iter()
                .map(|gradient| {
                    let srn = SrnConfig { steps: r, gradient, ..SrnConfig::default() };
                    let config = ModelConfig {
                        set_size: s.set_size,
                        image_side: s.scene.side,
                        ..ModelConfig::paper_shape(s.encoder_width, s.decoder_width, s.hagg_width, Some(srn))
                    };
                    (gradient, CirclesModel::new(&config, &mut StdRng::seed_from_u64(0)))
                })
                .collect();
            let mut times = vec![Vec::new(); models.len()];
            let mut held = vec![0; models.len()];
            for round in 0..rounds + 2 {
                for (k, (_, model)) in models.iter().enumerate() {
                    let (h, t) = step(model, &data, &indices);
                    held[k] = h;
                    if round >= 2 {
                        times[k].push(t); // the first two rounds warm the allocator and caches
                    }
                }
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let medians: Vec<f64> = times.iter_mut().map(median).collect();
            for (k, (gradient, _)) in models.iter().enumerate() {
                println!(
                    "| {r} | {gradient:?} | {} | {:.1} ms | {:.2}x time, {:.2}x memory |",
                    held[k],
                    1e3 * medians[k],
                    medians[k] / medians[0],
                    held[k] as f64 / held[0] as f64
                );
            }
        }
    });
}
