//! Synchronous data parallelism on a small regression (docs/mpi.md): an MLP trained with Adam for a few steps,
//! each rank taking its shard of every global batch and the gradients summed over the ranks before every
//! step. Rank 0 writes the first step's summed gradients and the final parameters (flattened, in the
//! module's parameter order) as JSON to OUT.
//!
//! ```text
//! cargo build --release -p experiments --features mpi --example data_parallel
//! RAYON_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe -np 2 \
//!     target/release/examples/data_parallel OUT [--steps N] [--batch B] [--seed S] [--panic-on-rank R]
//!     [--checkpoint FILE --stop-after K] [--resume FILE]
//! ```
//!
//! As one process (no `mpirun`, or built without the feature) it trains the same model on the whole batches:
//! the 1-rank reference a multi-rank run is compared with (experiments/tests/data_parallel.rs).
//! `--panic-on-rank R` makes rank R panic at the second step, to see the job end instead of hanging.
//! `--checkpoint FILE --stop-after K` stops after K steps with rank 0 saving model and Adam state to FILE;
//! `--resume FILE` continues from it (rank 0 reads the file, every rank parses the same bytes, and the
//! parameters are broadcast from rank 0 and checked to agree), to the parameters of an uninterrupted run.

use autograd::Tape;
use experiments::distributed::{all_reduce_grads, broadcast_module, check_in_sync, zero_grads, World};
use experiments::harness::epoch_order;
use models::{Activation, Adam, AdamConfig, Checkpoint, Mlp, Module, Optimizer, Scope};
use ndarray::{Array2, ArrayD, Axis};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Examples in the data set; the global batches are drawn from its epoch orders.
const EXAMPLES: usize = 32;
const INPUTS: usize = 4;
const OUTPUTS: usize = 2;

struct Options {
    out: String,
    steps: usize,
    batch: usize,
    seed: u64,
    panic_on_rank: Option<usize>,
    checkpoint: Option<String>,
    stop_after: Option<usize>,
    resume: Option<String>,
}

fn options() -> Options {
    let usage = "usage: data_parallel OUT [--steps N] [--batch B] [--seed S] [--panic-on-rank R] \
                 [--checkpoint FILE --stop-after K] [--resume FILE]";
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        out: String::new(),
        steps: 5,
        batch: 8,
        seed: 0,
        panic_on_rank: None,
        checkpoint: None,
        stop_after: None,
        resume: None,
    };
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> usize {
            args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} needs a number; {usage}"))
        };
        match a.as_str() {
            "--steps" => o.steps = value("--steps"),
            "--batch" => o.batch = value("--batch"),
            "--seed" => o.seed = value("--seed") as u64,
            "--panic-on-rank" => o.panic_on_rank = Some(value("--panic-on-rank")),
            "--stop-after" => o.stop_after = Some(value("--stop-after")),
            "--checkpoint" => o.checkpoint = Some(args.next().unwrap_or_else(|| panic!("--checkpoint FILE; {usage}"))),
            "--resume" => o.resume = Some(args.next().unwrap_or_else(|| panic!("--resume FILE; {usage}"))),
            _ if o.out.is_empty() && !a.starts_with('-') => o.out = a,
            _ => panic!("unexpected argument {a:?}; {usage}"),
        }
    }
    assert!(!o.out.is_empty(), "{usage}");
    assert!((1..=EXAMPLES).contains(&o.batch), "--batch must be 1 to {EXAMPLES}");
    assert_eq!(o.checkpoint.is_some(), o.stop_after.is_some(), "--checkpoint and --stop-after go together");
    o
}

/// A fixed synthetic regression: inputs uniform in [-1, 1], targets a smooth function of them.
fn data(seed: u64) -> (Array2<f32>, Array2<f32>) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xda7a);
    let x = Array2::from_shape_fn((EXAMPLES, INPUTS), |_| rng.gen_range(-1.0f32..1.0));
    let y = Array2::from_shape_fn((EXAMPLES, OUTPUTS), |(i, j)| {
        let r = x.row(i);
        if j == 0 {
            r[0].sin() + r[1] * r[2]
        } else {
            r[3] * r[3] - 0.5 * r[0]
        }
    });
    (x, y)
}

fn rows(a: &Array2<f32>, indices: &[usize]) -> ArrayD<f32> {
    a.select(Axis(0), indices).into_dyn()
}

fn flatten(arrays: impl Iterator<Item = ArrayD<f32>>) -> Vec<f32> {
    arrays.flat_map(|a| a.iter().copied().collect::<Vec<_>>()).collect()
}

fn train(world: &World, o: &Options) {
    let (x, y) = data(o.seed);
    // Every rank starts from a different initialisation; the broadcast makes them all rank 0's, which is
    // what one process starts from.
    let mut rng = StdRng::seed_from_u64(o.seed + world.rank() as u64);
    let model = Mlp::<f32>::with_activations(&[INPUTS, 16, 16, OUTPUTS], Activation::Tanh, Activation::None, &mut rng);
    broadcast_module(world, &model);
    let mut adam = Adam::new(model.params(), AdamConfig { lr: 1e-2, ..Default::default() });
    // The same global batches on every rank: the epoch orders depend on the seed alone.
    let batches: Vec<Vec<usize>> = (0..)
        .flat_map(|epoch| {
            let order = epoch_order(EXAMPLES, o.seed, epoch);
            order.chunks_exact(o.batch).map(<[usize]>::to_vec).collect::<Vec<_>>()
        })
        .take(o.steps)
        .collect();
    let mut start = 0;
    if let Some(file) = &o.resume {
        let bytes = world.read_on_root(file.as_ref()).unwrap_or_else(|e| world.abort(1, &e));
        let mut ck = Checkpoint::from_bytes(&bytes, file.as_ref()).unwrap_or_else(|e| world.abort(1, &e.to_string()));
        ck.load_module("model", &model).unwrap_or_else(|e| world.abort(1, &e.to_string()));
        adam.load_state(&mut ck, "adam").unwrap_or_else(|e| world.abort(1, &e.to_string()));
        start = ck.take_count("step").unwrap_or_else(|e| world.abort(1, &e.to_string())) as usize;
        ck.finish().unwrap_or_else(|e| world.abort(1, &e.to_string()));
        // After a resume, as at the start: rank 0's parameters everywhere (here they already agree).
        broadcast_module(world, &model);
        check_in_sync(world, &model).unwrap_or_else(|e| world.abort(1, &e));
    }
    let stop = o.stop_after.unwrap_or(o.steps).min(o.steps);
    let mut first_grads = Vec::new();
    for (step, global) in batches.iter().enumerate().take(stop).skip(start) {
        if step == 1 && o.panic_on_rank == Some(world.rank()) {
            panic!("a deliberate failure at step {step} (--panic-on-rank)");
        }
        let mine = world.shard(global);
        let tape = Tape::new();
        let scope = Scope::new(&tape);
        let mut grads = if mine.is_empty() {
            zero_grads(&model)
        } else {
            let pred = model.forward(&scope, tape.constant(rows(&x, mine)));
            // The global batch's loss (mean over its examples of the squared error) restricted to this shard:
            // the shard's sum divided by the global batch size, so that the ranks' gradients sum to the
            // 1-rank gradient.
            let loss = (pred - tape.constant(rows(&y, mine))).square().sum().mul_scalar(1.0 / global.len() as f32);
            model.grads(&scope, &[loss])
        };
        all_reduce_grads(world, &mut grads);
        if step == 0 {
            first_grads = flatten(grads.iter().map(|(_, g)| g.clone()));
        }
        adam.step(&grads);
    }
    if let (Some(file), true) = (&o.checkpoint, world.is_root()) {
        let mut ck = Checkpoint::new();
        ck.put_module("model", &model);
        adam.save_state(&mut ck, "adam");
        ck.put_count("step", stop as u64);
        ck.save(file).unwrap_or_else(|e| world.abort(1, &e.to_string()));
    }
    if world.is_root() {
        let params = flatten(model.params().iter().map(|(_, p)| (*p.value()).clone()));
        let json = serde_json::json!({ "ranks": world.size(), "grads": first_grads, "params": params });
        std::fs::write(&o.out, json.to_string()).unwrap_or_else(|e| panic!("writing {}: {e}", o.out));
        println!(
            "{}: steps {start} to {stop} of global batch {}, parameters written to {}",
            world.describe(),
            o.batch,
            o.out
        );
    }
}

fn main() {
    // On the main thread, before the pool: MPI's main thread is the one that initialises it.
    let world = World::init();
    let o = options();
    rayon::ThreadPoolBuilder::new().stack_size(8 << 20).build_global().expect("rayon's global pool, built once");
    // As the experiments binary does: the work on a rayon thread, the MPI calls from it (one at a time).
    kernels::on_pool(|| train(&world, &o));
    // `world` lives to the end of `main`: dropped here, on the main thread, it finalises MPI.
}
