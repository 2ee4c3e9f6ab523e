//! What data parallelism costs on this machine: one experiment's real training step (the task's own `step`)
//! run for a few global steps, each rank on its shard, timing the forward and backward (compute) apart from the
//! gradients' all-reduce. Run it as one process with 2 threads and as 2 ranks of 1 thread each:
//!
//! ```sh
//! cargo build --release -p experiments --features mpi --example data_parallel_cost
//! RAYON_NUM_THREADS=2 target/release/examples/data_parallel_cost circles-standard 20
//! mpirun --allow-run-as-root --oversubscribe -np 2 -x RAYON_NUM_THREADS=1 \
//!     target/release/examples/data_parallel_cost circles-standard 20
//! ```
//!
//! Rows: `circles-standard`, `circles-small`, `circles-paper` (the SRN at r = 10), `sort-of-clevr` (RN + SRN, the reference's
//! model at batch 64). Rank 0 prints one line: ranks x threads, the median time of a global step, of its compute
//! and of its all-reduce, the all-reduce's share, and the gradient's size in bytes.
//!
//! `data_parallel_cost model SECONDS BYTES STEPS` models N ranks on paper from a measured one-core step time
//! (SECONDS), the gradient's size and a run's length: compute `SECONDS / N` (each rank a 1/N shard; measured on
//! 2 ranks within 4 % of that), plus a ring all-reduce, `2 (N - 1) / N x BYTES / bandwidth + 2 (N - 1) x 10 us`,
//! over 10 and 100 Gbit/s; it prints the step time at N = 1, 2, 4, ..., 64 and the fewest ranks that finish the
//! run in a day.

use experiments::circles::{data::Circles, model::ModelConfig, profile::Profile, train::CirclesTask};
use experiments::distributed::{all_reduce_grads, broadcast_module, World};
use experiments::harness::{Run, RunConfig, Step, Task};
use experiments::sort_of_clevr::{data::SortOfClevr, model::RnConfig, profile, train::SortOfClevrTask};
use models::{Adam, Module, Optimizer, Scope, SrnConfig};
use std::time::Instant;

fn run(name: &str) -> Run {
    Run { name: name.into(), dir: std::env::temp_dir(), seed: 0, config: RunConfig::new() }
}

/// Median of `v`.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Time `steps` global steps of `task` (after one warm-up step) on `world`; rank 0 prints the line.
fn measure<T: Task>(world: &World, task: &T, row: &str, steps: usize) {
    let model = task.model();
    broadcast_module(world, &model);
    let mut adam = Adam::new(model.params(), task.optimizer());
    let batch = task.schedule().batch;
    let global: Vec<usize> = (0..batch).collect();
    let mut window = T::Window::default();
    let (mut total, mut compute, mut reduce) = (Vec::new(), Vec::new(), Vec::new());
    for step in 0..=steps {
        world.barrier();
        let started = Instant::now();
        let tape = autograd::Tape::new();
        let scope = Scope::new(&tape);
        let Step { loss, .. } = task.step(&model, &scope, world.shard(&global), step, &mut window);
        let mut grads = model.grads(&scope, &[loss]);
        let computed = Instant::now();
        all_reduce_grads(world, &mut grads);
        let reduced = Instant::now();
        adam.step(&grads);
        if step > 0 {
            total.push(started.elapsed().as_secs_f64());
            compute.push((computed - started).as_secs_f64());
            reduce.push((reduced - computed).as_secs_f64());
        }
    }
    // Every rank's compute: the slowest sets the pace.
    let mut slowest = [median(compute)];
    world.all_reduce_max(&mut slowest);
    let bytes: usize = model.params().iter().map(|(_, p)| p.value().len() * 4).sum();
    if world.is_root() {
        let threads = rayon::current_num_threads();
        let (t, r) = (median(total), median(reduce));
        println!(
            "{row}: {} rank(s) x {threads} thread(s), batch {batch}: step {:.1} ms, compute {:.1} ms, all-reduce {:.2} ms ({:.1} %), gradient {bytes} bytes",
            world.size(),
            1e3 * t,
            1e3 * slowest[0],
            1e3 * r,
            100.0 * r / t
        );
    }
}

fn main() {
    // As the experiments' binary: one retained heap, then the global pool, the work on one of its threads.
    kernels::alloc::retain_freed_memory();
    let world = World::init();
    let mut args = std::env::args().skip(1);
    let row = args.next().unwrap_or_else(|| "circles-standard".into());
    if row == "model" {
        let mut number = || -> f64 { args.next().and_then(|a| a.parse().ok()).expect("model SECONDS BYTES STEPS") };
        let (seconds, bytes, steps) = (number(), number(), number());
        model(seconds, bytes, steps);
        return;
    }
    let steps: usize = args.next().map_or(10, |s| s.parse().expect("a number of steps"));
    rayon::ThreadPoolBuilder::new().stack_size(8 << 20).build_global().expect("the global pool");
    kernels::on_pool(|| match row.as_str() {
        "circles-standard" | "circles-paper" | "circles-small" => {
            let profile = match row.as_str() {
                "circles-paper" => Profile::Paper,
                "circles-small" => Profile::Small,
                _ => Profile::Standard,
            };
            let settings = profile.settings();
            let data = Circles::generate(settings.scene, settings.batch, 1);
            let srn = SrnConfig { steps: settings.inner_steps, alpha: 0.1, momentum: 0.5, ..SrnConfig::default() };
            let model = ModelConfig {
                encoder_width: settings.encoder_width,
                decoder_width: settings.decoder_width,
                hagg_width: settings.hagg_width,
                srn: Some(srn),
                set_size: settings.set_size,
                image_side: settings.scene.side,
            };
            let task = CirclesTask { run: run(&row), settings, model, train: &data, test: &data };
            measure(&world, &task, &row, steps);
        }
        "sort-of-clevr" => {
            let settings = profile::settings(profile::Profile::Standard);
            let data = SortOfClevr::generate(settings.batch / 20 + 1, 1);
            let task =
                SortOfClevrTask { run: run(&row), config: RnConfig::rn_srn(), settings, train: &data, val: &data };
            measure(&world, &task, &row, steps);
        }
        other => panic!("unknown row {other:?}: circles-standard, circles-small, circles-paper or sort-of-clevr"),
    });
}

/// The N-rank step time on paper (see the module documentation), and the fewest ranks for a day's run.
fn model(seconds: f64, bytes: f64, steps: f64) {
    let step =
        |n: f64, gbit: f64| seconds / n + 2.0 * (n - 1.0) / n * bytes / (gbit * 1e9 / 8.0) + 2.0 * (n - 1.0) * 10e-6;
    println!(
        "one-core step {seconds} s, gradient {bytes} bytes, {steps} steps: {:.0} h on one core",
        steps * seconds / 3600.0
    );
    for gbit in [10.0, 100.0] {
        let times: Vec<String> =
            [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0].iter().map(|&n| format!("N={n}: {:.3} s", step(n, gbit))).collect();
        let day = (1..=100_000).find(|&n| steps * step(n as f64, gbit) <= 86_400.0);
        println!("{gbit} Gbit/s: {}; a day's run from N = {day:?}", times.join(", "));
    }
}
