//! The Sort-of-CLEVR experiment (paper Sec. 3.1, Table 2, Figure 4): the relation network (RN) against the
//! RN with the SRN between its CNN and its relation module, on the reference's generator.
//!
//! `run` trains both models with the same data, seeds and budget; each keeps its best validation point; then
//! test accuracy by question type, the two robustness tasks, the inner-step ablation (RN + SRN tested with 0
//! inner steps), the early-epoch check, Figure 4 and the speed, printed beside the paper's Table 2.

pub mod data;
pub mod evaluate;
pub mod figure4;
pub mod model;
pub mod profile;
pub mod robustness;
pub mod synthetic;
pub mod table;
pub mod train;

use crate::distributed::World;
use crate::harness::{self, stop_if_interrupted, RunArgs, RunConfig, Which};
use crate::Result;
use data::SortOfClevr;
use evaluate::{accuracy_on, robustness, Robustness};
use model::{RnConfig, RnModel};
use profile::Profile;
use robustness::{angles, easy_dataset, synthetic_dataset};
use table::{EarlyCheck, ModelReport, SeedResult, Table2};
use train::SortOfClevrTask;

/// The command line of `experiments sort-of-clevr`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub run: RunArgs<Profile, Which>,
    /// Number of seeds, at least 1 (default: the profile's); seeds are `--seed`, `--seed + 1`, ...
    #[arg(long, value_parser = harness::args::at_least_one)]
    pub seeds: Option<usize>,
}

impl Args {
    /// RN + SRN with the command line's settings: r = 5 and alpha = 1.0 by default (at 0.1, the Circles value,
    /// the 5 inner steps removed 0.06% of the inner loss after 125 training steps, at 1.0 0.45%, at 10 1.6%;
    /// see RESULTS.md).
    fn srn_config(&self) -> RnConfig {
        let mut c = RnConfig::rn_srn();
        c.srn = c.srn.map(|srn| self.run.srn.apply(srn));
        c
    }

    /// The RN + SRN run's name, with its settings that differ from the defaults.
    fn srn_name(&self) -> String {
        format!("rn-srn{}", self.run.srn.suffix())
    }
}

/// The evaluation sets of the robustness tasks.
struct RobustnessSets {
    synthetic: Vec<(Vec<data::Object>, data::Question)>,
    dataset: Vec<(Vec<data::Object>, data::Question)>,
    angles: Vec<f32>,
    batch: usize,
}

impl RobustnessSets {
    /// Both tasks, each rank of `world` taking its shard of the items.
    fn evaluate(&self, model: &RnModel, world: &World) -> (Robustness, Robustness) {
        let mut r = [&self.synthetic, &self.dataset]
            .map(|items| robustness(model, world.shard(items), &self.angles, self.batch));
        r.iter_mut().for_each(|r| r.sum_over(world));
        (r[0], r[1])
    }
}

/// Train and evaluate the requested models for every seed; print and save Table 2.
pub fn run(args: &Args) -> Result<()> {
    let a = &args.run;
    let mut settings = profile::settings(a.profile);
    if let Some(e) = a.epochs {
        settings.epochs = e;
    }
    if let Some(lr) = a.lr {
        settings.lr = lr;
    }
    harness::args::total_steps(settings.epochs, settings.steps_per_epoch())?;
    let seeds = a.seeds(args.seeds.unwrap_or(settings.seeds))?;
    let dir = a.out_dir("sort-of-clevr")?;
    let srn_config = args.srn_config();
    eprintln!(
        "sort-of-clevr, profile {:?}: {} / {} / {} train / validation / test images (20 questions each), batch {}, {} epochs ({} steps), seeds {:?}, RN + SRN {:?}; output in {}",
        a.profile,
        settings.train_images,
        settings.val_images,
        settings.test_images,
        settings.batch,
        settings.epochs,
        settings.total_steps(),
        seeds,
        srn_config,
        dir.display()
    );
    let d = a.data_seed.wrapping_mul(8);
    let train_data = SortOfClevr::generate(settings.train_images, d + 1);
    let val_data = SortOfClevr::generate(settings.val_images, d + 2);
    let test_data = SortOfClevr::generate(settings.test_images, d + 3);
    let sets = RobustnessSets {
        synthetic: synthetic_dataset(settings.synthetic_positions, d + 4),
        dataset: easy_dataset(settings.easy_images, d + 5),
        angles: angles(settings.rotations),
        batch: settings.batch,
    };

    let mut specs: Vec<(String, RnConfig)> = Vec::new();
    if a.model.baseline() {
        specs.push(("rn".into(), RnConfig::rn()));
    }
    if a.model.srn() {
        specs.push((args.srn_name(), srn_config));
    }
    let mut reports: Vec<ModelReport> =
        specs.iter().map(|(name, _)| ModelReport { name: name.clone(), results: Vec::new() }).collect();
    let mut first_curves = Vec::new();
    for (i, &seed) in seeds.iter().enumerate() {
        for (m, (name, config)) in specs.iter().enumerate() {
            let run_dir = dir.join(name).join(format!("seed{seed}"));
            let task = SortOfClevrTask {
                run: harness::Run {
                    name: format!("{name}-seed{seed}"),
                    dir: run_dir.clone(),
                    seed,
                    config: run_config(args, &settings, name, seed, config),
                },
                config: *config,
                settings,
                train: &train_data,
                val: &val_data,
            };
            let run_name = &task.run.name;
            let outcome = harness::train(&task, a.resume)?;
            if outcome.interrupted {
                return Err(format!("interrupted during {run_name}; rerun with --resume to continue").into());
            }
            stop_if_interrupted(run_name)?;
            let best_step = outcome.best_step.unwrap_or(outcome.steps);
            let seconds_per_step = outcome.seconds_per_step();
            let mut model = outcome.model;
            // Data-parallel: every rank tests its shard of the questions and items; rank 0 alone reports.
            let world = crate::distributed::world();
            let questions: Vec<usize> = (0..test_data.len()).collect();
            let test_accuracy = |model: &RnModel| {
                let mut a = accuracy_on(model, &test_data, world.shard(&questions), settings.batch);
                a.sum_over(&world);
                a
            };
            if world.is_root() {
                eprintln!("{run_name}: testing the best validation point (step {best_step})");
            }
            let test = test_accuracy(&model);
            let (synthetic, dataset) = sets.evaluate(&model, &world);
            let zero_steps = config.srn.map(|srn| {
                model.set_inner_steps(0);
                let a = test_accuracy(&model);
                model.set_inner_steps(srn.steps);
                a
            });
            if !world.is_root() {
                continue;
            }
            harness::report::write_curve(&run_dir.join("curve.csv"), &outcome.curve)?;
            let figure4_error = if i == 0 {
                let f = figure4::Figure4 {
                    images: settings.figure4_images,
                    epochs: settings.figure4_epochs,
                    width: settings.figure4_width,
                    batch: settings.figure4_batch,
                    seed,
                };
                let source = format!("{run_name} at step {best_step}");
                let png = dir.join(format!("figure4-{name}.png"));
                Some(figure4::figure4(&model, &source, &train_data, f, name, 6, &png, a.resume)?)
            } else {
                None
            };
            if i == 0 {
                first_curves.push((name.clone(), outcome.curve.clone()));
            }
            reports[m].results.push(SeedResult {
                seed,
                steps: outcome.steps,
                best_step,
                train_seconds: outcome.train_seconds,
                seconds_per_step,
                test,
                synthetic,
                dataset,
                zero_steps,
                early: None,
                figure4_error,
            });
            if config.srn.is_some() {
                let rn = reports.iter().find(|r| r.name == "rn").and_then(|r| r.results.last());
                if let Some(rn) = rn.filter(|r| r.seed == seed) {
                    let early = early_check(&task, &outcome.curve, rn.test.relational(), &sets)?;
                    reports[m].results.last_mut().expect("just pushed").early = early;
                }
            }
        }
    }
    if !crate::distributed::world().is_root() {
        return Ok(());
    }
    stop_if_interrupted("the last model")?;
    table::learning_curves(&first_curves, &dir)?;
    let inner_steps = srn_config.srn.map_or(0, |s| s.steps);
    let report = Table2 { profile: a.profile, settings, inner_steps, models: reports };
    println!("{}", harness::report::Report::markdown(&report));
    let stem = match args.srn_name().as_str() {
        "rn-srn" => "table2".to_string(),
        ablation => format!("table2-{ablation}"),
    };
    harness::report::write_report(&dir, &stem, &report)
}

/// What defines one model's run for one seed (stored in its checkpoints; a resume must match it, but for the
/// epochs when --epochs is given).
fn run_config(args: &Args, settings: &profile::Settings, name: &str, seed: u64, model: &RnConfig) -> RunConfig {
    args.run
        .run_config("sort-of-clevr", name, seed)
        .with_all("model", model)
        .with_all("settings", settings)
        .without("settings.seeds")
}

/// The latest RN + SRN snapshot whose validation relational accuracy is below `rn_relational`, and its
/// robustness (None when even the first validation point was above it).
fn early_check(
    task: &SortOfClevrTask,
    curve: &[train::CurvePoint],
    rn_relational: f64,
    sets: &RobustnessSets,
) -> Result<Option<EarlyCheck>> {
    let Some(point) = curve.iter().rfind(|p| p.val.relational() < rn_relational) else {
        return Ok(None);
    };
    let model = harness::load_model(task, &harness::snapshot_path(&task.run.dir, point.step))?;
    eprintln!("early-epoch check: the snapshot at step {}", point.step);
    // (On rank 0 alone: the other ranks of a data-parallel run have gone on.)
    let (synthetic, dataset) = sets.evaluate(&model, &World::single());
    Ok(Some(EarlyCheck { step: point.step, val_relational: point.val.relational(), rn_relational, synthetic, dataset }))
}
