//! The cost of one C-SWM training step, without and with the SRN, to size the `cswm` profiles by measurement:
//! the models the `cswm` command would train (by default Pong's, K = 5, at the `standard` profile's widths and
//! batch, which are the paper's), on random observations in [0, 1] with random actions. Each model takes one
//! warm-up step, then N timed steps; a step is what the training loop times: the batch read from the episodes,
//! the forward pass and contrastive loss (`CswmTask::step`), the backward pass and Adam's update. Printed: the
//! median seconds per step of each model and what that implies for an epoch of 10,000 transitions (the Atari
//! training set; with `--env shapes`, the profile's shapes data) and for the profile's epochs (a last partial
//! batch dropped, as in training; validation not included).
//!
//! `cargo run --release -p experiments --example cswm_step_cost -- [--batch B] [--steps N] [CSWM FLAGS]`
//!
//! `--batch` defaults to the profile's (1024) and `--steps` to 5; every other flag is the `cswm` command's
//! (`--objects K`, `--env shapes|pong|space-invaders`, `--profile`, `--model`, `--s0`, `--inner-steps`, ...),
//! with `--env pong` (the Atari model; `--atari` is accepted and changes nothing) and `--profile standard`
//! unless given. Run it on a quiet machine.

use autograd::Tape;
use experiments::cswm::data::{Episodes, Frames};
use experiments::cswm::profile::Settings;
use experiments::cswm::run::{self, Args, CswmTask, Env, LossWindow};
use experiments::harness::{self, Run, RunConfig, Task};
use models::{Adam, Module, Optimizer, Scope};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::time::Instant;

/// Transitions in an epoch of the Atari training set (1,000 episodes of 10 steps).
const ATARI_TRANSITIONS: usize = 10_000;

/// `--batch`, `--steps`, and the rest of the command line for the `cswm` arguments.
fn parse() -> (Option<usize>, usize, Args) {
    let (mut batch, mut steps, mut rest) = (None, 5, Vec::new());
    let mut argv = std::env::args().skip(1);
    let number = |flag: &str, v: Option<String>| -> usize {
        match v.as_deref().map(str::parse::<usize>) {
            Some(Ok(n)) if n > 0 => n,
            _ => panic!("{flag}: a whole number above 0"),
        }
    };
    while let Some(a) = argv.next() {
        match a.as_str() {
            "--batch" => batch = Some(number("--batch", argv.next())),
            "--steps" => steps = number("--steps", argv.next()),
            // The default (Pong's model); kept for the command lines that name it.
            "--atari" => {}
            _ => rest.push(a),
        }
    }
    for (flag, default) in [("--env", "pong"), ("--profile", "standard")] {
        if !rest.iter().any(|a| a == flag || a.starts_with(&format!("{flag}="))) {
            rest.extend([flag.to_string(), default.to_string()]);
        }
    }
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let args = harness::args::parse::<Args>(&rest).unwrap_or_else(|e| e.exit());
    (batch, steps, args)
}

/// `transitions` random transitions (episodes of one step) for a model of `channels` x `side` x `side`
/// observations and `actions` actions: frames of random bytes (values in [0, 1]), random actions.
fn random_episodes(transitions: usize, channels: usize, side: usize, actions: usize, rng: &mut StdRng) -> Episodes {
    let stack = channels / 3;
    let frames: Vec<u8> = (0..transitions * (1 + stack) * 3 * side * side).map(|_| rng.gen()).collect();
    let acts: Vec<usize> = (0..transitions).map(|_| rng.gen_range(0..actions)).collect();
    Episodes::new("random".into(), transitions, 1, stack, actions, side, acts, Frames::Pixels(frames))
        .expect("random episodes")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    kernels::alloc::retain_freed_memory();
    let (batch, steps, args) = parse();
    let mut settings: Settings = run::settings(&args);
    settings.batch = batch.unwrap_or(settings.batch);
    let specs = run::model_specs(&args, &settings);
    let transitions = match args.env {
        Env::Shapes => settings.train_episodes * settings.train_steps,
        _ => ATARI_TRANSITIONS,
    };
    let per_epoch = settings.steps_per_epoch(transitions);
    println!(
        "cswm step cost: {:?}, K = {}, profile {:?}, batch {}, {} timed steps after 1 warm-up",
        args.env, args.objects, args.run.profile, settings.batch, steps
    );
    let mut rng = StdRng::seed_from_u64(0);
    let c = specs[0].1;
    let data = random_episodes(settings.batch, c.in_channels, c.side, c.num_actions(), &mut rng);
    let indices: Vec<usize> = (0..settings.batch).collect();
    kernels::on_pool(|| {
        println!(
            "| model | median s / step | epoch of {transitions} ({per_epoch} steps) | {} epochs |",
            settings.epochs
        );
        println!("|---|---:|---:|---:|");
        for (name, config) in &specs {
            let task = CswmTask {
                run: Run {
                    name: name.clone(),
                    dir: std::env::temp_dir().join("cswm-step-cost-unused"),
                    seed: 0,
                    config: RunConfig::new(),
                },
                config: *config,
                settings,
                train: &data,
                eval: &data,
            };
            let model = task.model();
            let mut adam = Adam::new(model.params(), task.optimizer());
            let mut window = LossWindow::default();
            // The body of the training loop (`harness::train_on`) on one rank, timed as it times a step.
            let mut times = Vec::with_capacity(steps);
            for step in 0..=steps {
                let started = Instant::now();
                {
                    let tape = Tape::new();
                    let scope = Scope::new(&tape);
                    let out = task.step(&model, &scope, &indices, step, &mut window);
                    assert!(out.loss.item().is_finite(), "{name}: a non-finite loss at step {step}");
                    let grads = model.grads(&scope, &[out.loss]);
                    adam.step(&grads);
                }
                if step > 0 {
                    times.push(started.elapsed().as_secs_f64());
                }
            }
            let s = median(times);
            let epoch = s * per_epoch as f64;
            println!("| {name} | {s:.3} | {epoch:.1} s | {:.2} h |", epoch * settings.epochs as f64 / 3600.0);
        }
    });
}
