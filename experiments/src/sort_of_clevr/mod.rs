//! The Sort-of-CLEVR experiment (paper Sec. 3.1, Table 2, Figure 4): the relation network (RN) against the
//! RN with the SRN between its CNN and its relation module, on the reference's generator.
//!
//! `run` trains both models with the same data, seeds and budget (or, with `--evaluate DIR`, loads the
//! checkpoints a run left in DIR); each keeps its best validation point. Once both models of a seed are ready,
//! the Robustness (Synthetic) configuration is chosen on them, unrotated ([`synthetic`]); then test accuracy by
//! question type, the two robustness tasks, the inner-step ablation (RN + SRN tested with 0 inner steps), the
//! early-epoch check, Figure 4 and the speed, printed beside the paper's Table 2.

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
use evaluate::{accuracy_on, right_answer_probabilities, robustness, Accuracy, Robustness};
use model::{RnConfig, RnModel};
use profile::Profile;
use robustness::{angles, easy_dataset};
use std::path::PathBuf;
use synthetic::{candidates, Item, CONFIDENCE};
use table::{EarlyCheck, ModelConfidence, ModelReport, SeedResult, SyntheticChoice, SyntheticReport, Table2};
use train::SortOfClevrTask;

/// The command line of `experiments sort-of-clevr`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub run: RunArgs<Profile, Which>,
    /// Number of seeds, at least 1 (default: the profile's); seeds are `--seed`, `--seed + 1`, ...
    #[arg(long, value_parser = harness::args::at_least_one)]
    pub seeds: Option<usize>,
    /// Evaluate the checkpoints in DIR (as written by a run of the same profile and flags) without training:
    /// Table 2 recomputed and written into DIR (every row, the Synthetic configuration chosen again on the
    /// loaded models, the 0-inner-step ablation, the early-snapshot check from the saved snapshots). Figure 4
    /// is redrawn from the decoder fit the run saved (figure4-<model>/); without a finished one, its error is
    /// left out of the table with a note (no decoder is trained).
    #[arg(long, value_name = "DIR")]
    pub evaluate: Option<PathBuf>,
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

/// One Sort-of-CLEVR command's data, evaluation sets and models, as its flags define them.
struct Experiment {
    settings: profile::Settings,
    seeds: Vec<u64>,
    dir: PathBuf,
    train: SortOfClevr,
    val: SortOfClevr,
    test: SortOfClevr,
    /// Robustness (Dataset)'s items, the angles of both tasks, and the seed of the Synthetic candidates.
    dataset: Vec<Item>,
    angles: Vec<f32>,
    candidate_seed: u64,
    /// The requested models (name, configuration), the RN first.
    specs: Vec<(String, RnConfig)>,
}

impl Experiment {
    fn new(args: &Args) -> Result<Experiment> {
        let a = &args.run;
        let mut settings = profile::settings(a.profile);
        a.override_budget(&mut settings.epochs, &mut settings.lr);
        harness::args::total_steps(settings.epochs, settings.steps_per_epoch())?;
        let seeds = a.seeds(args.seeds.unwrap_or(settings.seeds))?;
        // `--evaluate DIR` reads and writes DIR.
        let out = RunArgs { out: args.evaluate.clone().or_else(|| a.out.clone()), ..a.clone() };
        let dir = out.out_dir("sort-of-clevr")?;
        let mut specs: Vec<(String, RnConfig)> = Vec::new();
        if a.model.baseline() {
            specs.push(("rn".into(), RnConfig::rn()));
        }
        if a.model.srn() {
            specs.push((args.srn_name(), args.srn_config()));
        }
        let d = a.data_seed.wrapping_mul(8);
        Ok(Experiment {
            seeds,
            dir,
            train: SortOfClevr::generate(settings.train_images, d + 1),
            val: SortOfClevr::generate(settings.val_images, d + 2),
            test: SortOfClevr::generate(settings.test_images, d + 3),
            candidate_seed: d + 4,
            dataset: easy_dataset(settings.easy_images, d + 5),
            angles: angles(settings.rotations),
            specs,
            settings,
        })
    }

    /// The run of model `name` for `seed`.
    fn task<'e>(&'e self, args: &Args, name: &str, config: &RnConfig, seed: u64) -> SortOfClevrTask<'e> {
        SortOfClevrTask {
            run: harness::Run {
                name: format!("{name}-seed{seed}"),
                dir: self.dir.join(name).join(format!("seed{seed}")),
                seed,
                config: run_config(args, &self.settings, name, seed, config),
            },
            config: *config,
            settings: self.settings,
            train: &self.train,
            val: &self.val,
        }
    }

    /// Test accuracy: every rank of `world` tests its shard of the questions, and every rank gets the sums.
    fn test_accuracy(&self, model: &RnModel, world: &World) -> Accuracy {
        let questions: Vec<usize> = (0..self.test.len()).collect();
        let mut a = accuracy_on(model, &self.test, world.shard(&questions), self.settings.batch);
        a.sum_over(world);
        a
    }

    /// Both robustness tasks (Synthetic on `synthetic`'s items), each rank of `world` taking its shard of the
    /// items.
    fn robustness(&self, model: &RnModel, synthetic: &[Item], world: &World) -> (Robustness, Robustness) {
        let mut r = [synthetic, &self.dataset]
            .map(|items| robustness(model, world.shard(items), &self.angles, self.settings.batch));
        r.iter_mut().for_each(|r| r.sum_over(world));
        (r[0], r[1])
    }

    /// The Synthetic configuration of one seed: the first candidate that every one of `models` (name, model)
    /// answers right unrotated with probability >= [`CONFIDENCE`] at every position (see [`synthetic::choose`]),
    /// and its items. Every rank scores its shard of each candidate's positions; every rank makes the choice.
    fn choose_synthetic(&self, seed: u64, models: &[(&str, &RnModel)], world: &World) -> (SyntheticChoice, Vec<Item>) {
        let batch = self.settings.batch;
        // Every rank scores its shard, zeros elsewhere: the sum over the ranks is every probability, exactly.
        let scorers: Vec<_> = models
            .iter()
            .map(|&(_, model)| {
                move |items: &[Item]| {
                    let shard = world.shard_range(items.len());
                    let mut p = vec![0.0f64; items.len()];
                    p[shard.clone()].copy_from_slice(&right_answer_probabilities(model, &items[shard], batch));
                    world.all_reduce_sum(&mut p);
                    p
                }
            })
            .collect();
        let scores: Vec<synthetic::Score> = scorers.iter().map(|s| s as synthetic::Score).collect();
        let s = &self.settings;
        let stream = candidates(s.synthetic_positions, self.candidate_seed);
        let choice = synthetic::choose(stream, s.synthetic_candidates, CONFIDENCE, &scores);
        let min_confidence: Vec<ModelConfidence> = models
            .iter()
            .zip(&choice.min_confidence)
            .map(|(&(name, _), &confidence)| ModelConfidence { model: name.to_string(), confidence })
            .collect();
        if world.is_root() {
            let verdict = if choice.passed {
                format!("passed at >= {CONFIDENCE}")
            } else {
                format!("none of {} passed at >= {CONFIDENCE}: the highest minimum", choice.searched)
            };
            eprintln!(
                "seed {seed}: Robustness (Synthetic) configuration: candidate {} ({verdict}; lowest p(right) {}): {}",
                choice.candidate.index,
                min_confidence
                    .iter()
                    .map(|m| format!("{} {:.4}", m.model, m.confidence))
                    .collect::<Vec<_>>()
                    .join(", "),
                choice.candidate.configuration.describe()
            );
        }
        let items = choice.candidate.items();
        let report = SyntheticChoice {
            seed,
            candidate: choice.candidate.index,
            searched: choice.searched,
            passed: choice.passed,
            configuration: choice.candidate.configuration,
            positions: choice.candidate.positions,
            min_confidence,
        };
        (report, items)
    }

    /// Figure 4 for model `name` (its run `source` at its best step): fitted, or with `--evaluate` only the fit
    /// the run saved (None without one).
    fn figure4(&self, args: &Args, model: &RnModel, name: &str, source: &str, seed: u64) -> Result<Option<f64>> {
        let s = &self.settings;
        let f = figure4::Figure4 {
            images: s.figure4_images,
            epochs: s.figure4_epochs,
            width: s.figure4_width,
            batch: s.figure4_batch,
            seed,
        };
        let fit = match args.evaluate {
            Some(_) => figure4::Fit::Saved,
            None => figure4::Fit::Train { resume: args.run.resume },
        };
        let png = self.dir.join(format!("figure4-{name}.png"));
        figure4::figure4(model, source, &self.train, f, name, 6, &png, fit)
    }
}

/// Train the requested models for every seed (or load them, with `--evaluate`), choose each seed's Synthetic
/// configuration on its trained models, evaluate; print and save Table 2.
pub fn run(args: &Args) -> Result<()> {
    let a = &args.run;
    let exp = Experiment::new(args)?;
    let (settings, dir) = (exp.settings, &exp.dir);
    eprintln!(
        "sort-of-clevr, profile {:?}: {} / {} / {} train / validation / test images (20 questions each), batch {}, {} epochs ({} steps), seeds {:?}, RN + SRN {:?}; {} {}",
        a.profile,
        settings.train_images,
        settings.val_images,
        settings.test_images,
        settings.batch,
        settings.epochs,
        settings.total_steps(),
        exp.seeds,
        args.srn_config(),
        if args.evaluate.is_some() { "evaluating the checkpoints in" } else { "output in" },
        dir.display()
    );
    // Data-parallel: every rank tests its shard of the questions and items; rank 0 alone reports.
    let world = crate::distributed::world();
    let mut reports: Vec<ModelReport> =
        exp.specs.iter().map(|(name, _)| ModelReport { name: name.clone(), results: Vec::new() }).collect();
    let (mut choices, mut notes, mut first_curves) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &seed) in exp.seeds.iter().enumerate() {
        let tasks: Vec<SortOfClevrTask> =
            exp.specs.iter().map(|(name, config)| exp.task(args, name, config, seed)).collect();
        // Every model of the seed first: the Synthetic configuration is chosen on all of them.
        let mut outcomes = Vec::with_capacity(tasks.len());
        for task in &tasks {
            let outcome = match args.evaluate {
                Some(_) => harness::load(task)?,
                None => harness::train(task, a.resume)?,
            };
            let run_name = &task.run.name;
            if outcome.interrupted {
                return Err(format!("interrupted during {run_name}; rerun with --resume to continue").into());
            }
            stop_if_interrupted(run_name)?;
            outcomes.push(outcome);
        }
        let models: Vec<(&str, &RnModel)> =
            exp.specs.iter().zip(&outcomes).map(|((name, _), o)| (name.as_str(), &o.model)).collect();
        let (choice, synthetic_items) = exp.choose_synthetic(seed, &models, &world);
        for (m, (task, outcome)) in tasks.iter().zip(outcomes).enumerate() {
            let (name, config) = &exp.specs[m];
            let (run_name, run_dir) = (&task.run.name, &task.run.dir);
            let (best_step, seconds_per_step) =
                (outcome.best_step.unwrap_or(outcome.steps), outcome.seconds_per_step());
            let mut model = outcome.model;
            if world.is_root() {
                eprintln!("{run_name}: testing the best validation point (step {best_step})");
            }
            let test = exp.test_accuracy(&model, &world);
            let (synthetic, dataset) = exp.robustness(&model, &synthetic_items, &world);
            let zero_steps = config.srn.map(|srn| {
                model.set_inner_steps(0);
                let a = exp.test_accuracy(&model, &world);
                model.set_inner_steps(srn.steps);
                a
            });
            if !world.is_root() {
                continue;
            }
            harness::report::write_curve(&run_dir.join("curve.csv"), &outcome.curve)?;
            let figure4_error = if i == 0 {
                let source = format!("{run_name} at step {best_step}");
                let error = exp.figure4(args, &model, name, &source, seed)?;
                if error.is_none() {
                    notes.push(format!(
                        "Figure 4 of {name} is left out: --evaluate found no finished decoder fit in figure4-{name}/ (it does not train one; a run without --evaluate does)"
                    ));
                }
                error
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
                    let rn_relational = rn.test.relational();
                    let early = early_check(&exp, task, &outcome.curve, rn_relational, &synthetic_items)?;
                    reports[m].results.last_mut().expect("just pushed").early = early;
                }
            }
        }
        choices.push(choice);
    }
    if !world.is_root() {
        return Ok(());
    }
    stop_if_interrupted("the last model")?;
    table::learning_curves(&first_curves, dir)?;
    let inner_steps = args.srn_config().srn.map_or(0, |s| s.steps);
    let synthetic = SyntheticReport { threshold: CONFIDENCE, max_candidates: settings.synthetic_candidates, choices };
    let report = Table2 { profile: a.profile, settings, inner_steps, models: reports, synthetic, notes };
    println!("{}", harness::report::Report::markdown(&report));
    let stem = match args.srn_name().as_str() {
        "rn-srn" => "table2".to_string(),
        ablation => format!("table2-{ablation}"),
    };
    harness::report::write_report(dir, &stem, &report)
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
/// robustness (Synthetic on `synthetic`'s items; None when even the first validation point was above it).
fn early_check(
    exp: &Experiment,
    task: &SortOfClevrTask,
    curve: &[train::CurvePoint],
    rn_relational: f64,
    synthetic: &[Item],
) -> Result<Option<EarlyCheck>> {
    let Some(point) = curve.iter().rfind(|p| p.val.relational() < rn_relational) else {
        return Ok(None);
    };
    let model = harness::load_model(task, &harness::snapshot_path(&task.run.dir, point.step))?;
    eprintln!("early-epoch check: the snapshot at step {}", point.step);
    // (On rank 0 alone: the other ranks of a data-parallel run have gone on.)
    let (synthetic, dataset) = exp.robustness(&model, synthetic, &World::single());
    Ok(Some(EarlyCheck { step: point.step, val_relational: point.val.relational(), rn_relational, synthetic, dataset }))
}
