//! `cargo run --release -p experiments -- <command>`: the paper's experiments. With no command it runs the
//! Circles experiment on its quick profile.

use autograd::Tape;
use clap::{Parser, Subcommand};
use ndarray::ArrayD;

#[derive(Parser)]
#[command(about = "Better Set Representations for Relational Reasoning: experiments on a from-scratch engine")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The Circles decomposition experiment (Sec. 2.2, Table 1, Figures 2 and 3).
    Circles(experiments::circles::Args),
    /// Sort-of-CLEVR: the RN against RN + SRN (Sec. 3.1, Table 2, Figure 4).
    SortOfClevr(experiments::sort_of_clevr::Args),
    /// CLUTRR kinship reasoning: RN, RN + SRN, RN + GRN (Sec. 3.3).
    Clutrr(experiments::clutrr::run::Args),
    /// C-SWM world models with and without the SRN (Sec. 3.2, Table 3).
    Cswm(experiments::cswm::run::Args),
    /// A Hessian-vector product through a small tanh network, checked against finite differences.
    Demo {
        /// Seed of the random network and vectors.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn main() {
    // Before any thread starts: every thread allocates from one retained heap (see kernels::alloc).
    kernels::alloc::retain_freed_memory();
    // MPI, when started under mpirun and built with the feature `mpi` (docs/mpi.md); else one process. On
    // this thread, before the pool, and kept to the end of main, where dropping it finalises MPI.
    let world = experiments::distributed::World::init();
    let size = world.size();
    let _world = experiments::distributed::install(world);
    let cli = Cli::parse();
    let command = cli.command.unwrap_or_else(|| {
        // No command: the quick Circles run, as `circles` with its defaults.
        Command::Circles(<CirclesCli as Parser>::parse_from(["circles"]).args)
    });
    // Ctrl-C, and SIGTERM or SIGHUP (ctrlc's `termination` feature), ask the run to stop with a checkpoint.
    ctrlc::set_handler(|| {
        if experiments::harness::INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupted: stopping after this step with a checkpoint saved, or, once training is over, before \
             the rest of the report (Ctrl-C again to quit at once)"
        );
    })
    .expect("Ctrl-C handler");
    // The whole command runs on one of rayon's threads (see `kernels::on_pool`), whose stacks are made as
    // roomy as the main thread's.
    rayon::ThreadPoolBuilder::new().stack_size(8 << 20).build_global().expect("rayon's global pool, built once");
    let result = kernels::on_pool(|| {
        match command {
            Command::Circles(args) => experiments::circles::run(&args),
            Command::SortOfClevr(args) => experiments::sort_of_clevr::run(&args),
            Command::Clutrr(args) => experiments::clutrr::run::run(&args),
            Command::Cswm(args) => experiments::cswm::run::run(&args),
            Command::Demo { seed } => {
                demo(seed);
                Ok(())
            }
        }
        .map_err(|e| e.to_string())
    });
    if let Err(e) = result {
        if size > 1 {
            // The other ranks would wait in their next collective: end the job.
            experiments::distributed::world().abort(1, &format!("error: {e}"));
        }
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The `circles` arguments alone, to build their defaults.
#[derive(Parser)]
struct CirclesCli {
    #[command(flatten)]
    args: experiments::circles::Args,
}

/// f(x) = sum(tanh(W2 tanh(W1 x))^2): prints grad f, the Hessian-vector product H v from a recorded backward
/// pass, and the same product by central differences of the gradient.
fn demo(seed: u64) {
    use autograd::check::uniform;
    let w1 = uniform(&[8, 4], -1.0, 1.0, seed);
    let w2 = uniform(&[3, 8], -1.0, 1.0, seed + 1);
    let x0 = uniform(&[4, 1], -1.0, 1.0, seed + 2);
    let v = uniform(&[4, 1], -1.0, 1.0, seed + 3);
    let grad_at = |x: &ArrayD<f64>, create_graph: bool| {
        let tape = Tape::<f64>::new();
        let x = tape.leaf(x.clone());
        let f = tape.constant(w2.clone()).matmul(tape.constant(w1.clone()).matmul(x).tanh()).tanh().square().sum();
        let g = tape.grad(&[f], &[x], create_graph)[0];
        let hv =
            create_graph.then(|| (*tape.grad(&[(g * tape.constant(v.clone())).sum()], &[x], false)[0].value()).clone());
        ((*g.value()).clone(), hv, f.item())
    };
    let (g, hv, f) = grad_at(&x0, true);
    let hv = hv.expect("recorded");
    let eps = 1e-5;
    let (gp, _, _) = grad_at(&(&x0 + &(&v * eps)), false);
    let (gm, _, _) = grad_at(&(&x0 - &(&v * eps)), false);
    let fd = (&gp - &gm) / (2.0 * eps);
    let fmt = |a: &ArrayD<f64>| a.iter().map(|x| format!("{x:+.6}")).collect::<Vec<_>>().join(" ");
    println!("f(x) = sum(tanh(W2 tanh(W1 x))^2), x in R^4, seed {seed}");
    println!("f(x)                       = {f:.6}");
    println!("grad f(x)                   = {}", fmt(&g));
    println!("H v (backward of backward) = {}", fmt(&hv));
    println!("H v (finite differences)   = {}", fmt(&fd));
    let err = (&hv - &fd).iter().fold(0.0f64, |m, d| m.max(d.abs()));
    println!("max |difference|           = {err:.2e}");
}
