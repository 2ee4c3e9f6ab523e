//! A new experiment on the shared harness, whole: its data (points of a circle's inside or outside), its model
//! (an MLP), one training step, one validation and its report. The harness trains it, stops it on Ctrl-C with
//! a checkpoint, resumes it exactly, and writes its table.

use experiments::harness::report::{write_report, Report};
use experiments::harness::{self, Clock, Run, RunConfig, Schedule, Step, Task, Validation, INTERRUPTED};
use experiments::report::csv::Cell;
use models::{AdamConfig, Mlp, Scope};
use ndarray::ArrayD;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// Is a point of [-1, 1]^2 inside the circle of radius 0.7? `(points, labels)` from a seed.
fn data(n: usize, seed: u64) -> (Vec<[f32; 2]>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let points: Vec<[f32; 2]> = (0..n).map(|_| [rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0)]).collect();
    let labels = points.iter().map(|p| usize::from(p[0] * p[0] + p[1] * p[1] < 0.49)).collect();
    (points, labels)
}

fn inputs(points: &[[f32; 2]], indices: &[usize]) -> ArrayD<f32> {
    ArrayD::from_shape_vec(vec![indices.len(), 2], indices.iter().flat_map(|&i| points[i]).collect()).unwrap()
}

struct Disc {
    run: Run,
    train: (Vec<[f32; 2]>, Vec<usize>),
    test: (Vec<[f32; 2]>, Vec<usize>),
    /// Press Ctrl-C during this step (to test the interruption).
    interrupt_at: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Point {
    step: usize,
    train_loss: f64,
    test_accuracy: f64,
}

impl Task for Disc {
    type Model = Mlp;
    type Point = Point;
    type Window = (f64, usize);

    fn run(&self) -> &Run {
        &self.run
    }
    fn schedule(&self) -> Schedule {
        Schedule {
            examples: self.train.0.len(),
            batch: 32,
            steps_per_epoch: 8,
            total_steps: 160,
            validate_every: 20,
            validate_at_epoch_end: false,
            progress_every: 20,
            keep_best: true,
            snapshots: false,
            clip_grad_norm: Some(1.0),
            split_validation: false,
            mean_loss: true,
        }
    }
    fn model(&self) -> Mlp {
        Mlp::new(&[2, 32, 2], &mut StdRng::seed_from_u64(self.run.seed))
    }
    fn optimizer(&self) -> AdamConfig {
        AdamConfig { lr: 3e-2, ..AdamConfig::default() }
    }
    fn step<'t>(&self, mlp: &Mlp, scope: &Scope<'t>, batch: &[usize], step: usize, w: &mut (f64, usize)) -> Step<'t> {
        if self.interrupt_at == Some(step) {
            INTERRUPTED.store(true, Ordering::SeqCst);
        }
        let logits = mlp.forward(scope, scope.tape().constant(inputs(&self.train.0, batch)));
        let targets: Vec<usize> = batch.iter().map(|&i| self.train.1[i]).collect();
        let loss = autograd::ops::loss::cross_entropy(logits, &targets);
        (w.0, w.1) = (w.0 + loss.item() as f64, w.1 + 1);
        Step { loss, message: format!("loss {:.3}", loss.item()), inner: None }
    }
    fn validate(&self, mlp: &Mlp, w: &(f64, usize), clock: Clock) -> Validation<Point> {
        let all: Vec<usize> = (0..self.test.0.len()).collect();
        let logits = models::evaluate(mlp, |s| mlp.forward(s, s.tape().constant(inputs(&self.test.0, &all))).value());
        let right = logits.rows().into_iter().zip(&self.test.1).filter(|(r, &y)| usize::from(r[1] > r[0]) == y);
        let test_accuracy = 100.0 * right.count() as f64 / all.len() as f64;
        let point = Point { step: clock.step, train_loss: w.0 / w.1 as f64, test_accuracy };
        Validation { point, score: Some(test_accuracy) }
    }
    fn summary(&self, p: &Point, _: Clock) -> String {
        format!("step {}: loss {:.3}, test {:.1}%", p.step, p.train_loss, p.test_accuracy)
    }
}

#[derive(Serialize)]
struct Table(Vec<(String, f64)>);

impl Report for Table {
    fn markdown(&self) -> String {
        self.0.iter().map(|(run, acc)| format!("| {run} | {acc:.1} |\n")).collect()
    }
    fn csv(&self) -> (Vec<String>, Vec<Vec<Cell>>) {
        let rows = self.0.iter().map(|(run, acc)| vec![run.as_str().into(), (*acc).into()]).collect();
        (vec!["run".into(), "test_accuracy".into()], rows)
    }
}

fn disc(dir: &std::path::Path, interrupt_at: Option<usize>) -> Disc {
    let config = RunConfig::new().with("experiment", "disc").with("seed", 3);
    let run = Run { name: "mlp".into(), dir: dir.to_path_buf(), seed: 3, config };
    Disc { run, train: data(256, 1), test: data(200, 2), interrupt_at }
}

#[test]
fn an_experiment_on_the_harness_trains_stops_resumes_exactly_and_reports() {
    let root = std::env::temp_dir().join(format!("srn-harness-example-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let straight = harness::train(&disc(&root.join("straight"), None), false).unwrap();
    assert!(!straight.interrupted && straight.steps == 160 && straight.curve.len() == 8);
    let best = straight.curve.iter().map(|p| p.test_accuracy).fold(0.0, f64::max);
    assert!(best > 90.0, "the MLP learns the disc: {:?}", straight.curve);
    assert!(straight.curve.iter().any(|p| p.step == straight.best_step.unwrap() && p.test_accuracy == best));

    // Ctrl-C during step 25: the harness saves step 26 and stops; --resume finishes the same run.
    let stopped = harness::train(&disc(&root.join("resumed"), Some(25)), false).unwrap();
    INTERRUPTED.store(false, Ordering::SeqCst);
    assert!(stopped.interrupted && stopped.steps == 26 && stopped.curve.len() == 1);
    let resumed = harness::train(&disc(&root.join("resumed"), None), true).unwrap();
    assert_eq!((resumed.curve.clone(), resumed.best_step), (straight.curve.clone(), straight.best_step));
    let weights = |o: &harness::Outcome<Mlp, Point>| -> Vec<Vec<f32>> {
        models::Module::params(&o.model).iter().map(|(_, p)| p.value().iter().copied().collect()).collect()
    };
    assert_eq!(weights(&resumed), weights(&straight), "the best model, bit for bit");

    write_report(&root, "table", &Table(vec![("mlp".into(), best)])).unwrap();
    let csv = std::fs::read_to_string(root.join("table.csv")).unwrap();
    assert_eq!(csv, format!("run,test_accuracy\nmlp,{best}\n"));
    assert!(root.join("table.md").exists() && root.join("table.json").exists());
    std::fs::remove_dir_all(&root).unwrap();
}
