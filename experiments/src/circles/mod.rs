//! The Circles decomposition experiment (paper Sec. 2.2, Table 1, Figures 2 and 3).

pub mod data;
pub mod figures;
mod main_job;
pub mod metrics;
pub mod model;
pub mod profile;
pub mod table;
pub mod train;

use crate::harness::{self, stop_if_interrupted, RunArgs, Which};
use crate::Result;
use data::Circles;
use model::ModelConfig;
use models::SrnConfig;
use profile::Profile;
use std::path::PathBuf;
use train::CirclesTask;

/// The command line of `experiments circles`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub run: RunArgs<Profile, Which>,
    /// Evaluate the checkpoints in DIR (as written by a run of the same profile and flags) without training:
    /// Table 1 and the figures, written into DIR.
    #[arg(long, value_name = "DIR")]
    pub evaluate: Option<PathBuf>,
    /// Table 1's threshold on an element's L-infinity norm for it to hold an object (the paper's 0.1); the
    /// learning curve keeps 0.1. Another value names the table after it.
    #[arg(long, default_value_t = metrics::OBJECT_THRESHOLD, value_parser = threshold, value_name = "T")]
    pub threshold: f32,
}

/// `--threshold`: a number in (0, 1), the range of a decoded pixel.
fn threshold(s: &str) -> std::result::Result<f32, String> {
    match s.parse::<f32>() {
        Ok(t) if t > 0.0 && t < 1.0 => Ok(t),
        _ => Err(format!("`{s}` is not a threshold: a number between 0 and 1 (exclusive) is expected")),
    }
}

impl Args {
    fn out_dir(&self) -> PathBuf {
        let a = &self.run;
        self.evaluate.clone().or_else(|| a.out.clone()).unwrap_or_else(|| {
            let lr = a.lr.map(|lr| format!("-lr{lr}")).unwrap_or_default();
            let data = if a.data_seed == 0 { String::new() } else { format!("-data{}", a.data_seed) };
            PathBuf::from(format!("runs/circles-{:?}-seed{}{data}{lr}", a.profile, a.seed).to_lowercase())
        })
    }

    /// The SRN run's name: "srn", plus its settings that differ from the defaults.
    fn srn_name(&self) -> String {
        format!("srn{}", self.run.srn.suffix())
    }
}

/// One Circles run's data and models, as its flags define them.
struct Experiment {
    settings: profile::Settings,
    dir: PathBuf,
    train: Circles,
    test: Circles,
    base: ModelConfig,
    srn: SrnConfig,
}

impl Experiment {
    fn new(args: &Args) -> Result<Experiment> {
        let a = &args.run;
        let mut settings = a.profile.settings();
        if let Some(r) = a.srn.inner_steps {
            settings.inner_steps = r;
        }
        a.override_budget(&mut settings.epochs, &mut settings.lr);
        harness::args::total_steps(settings.epochs, settings.steps_per_epoch())?;
        let scene = settings.scene;
        // Evaluating saved checkpoints needs no training images.
        let train_images = if args.evaluate.is_some() { 0 } else { settings.train_images };
        let data_seed = a.data_seed.wrapping_mul(2);
        let base = ModelConfig {
            encoder_width: settings.encoder_width,
            decoder_width: settings.decoder_width,
            hagg_width: settings.hagg_width,
            srn: None,
            set_size: settings.set_size,
            image_side: scene.side,
        };
        Ok(Experiment {
            settings,
            dir: args.out_dir(),
            train: Circles::generate(scene, train_images, data_seed.wrapping_add(1)),
            test: Circles::generate(scene, settings.test_images, data_seed.wrapping_add(2)),
            base,
            // The released code's inner loop: alpha 0.1, momentum 0.5, r from the profile.
            srn: a.srn.apply(SrnConfig {
                steps: settings.inner_steps,
                alpha: 0.1,
                momentum: 0.5,
                ..SrnConfig::default()
            }),
        })
    }

    /// The requested models' runs, the baseline first.
    fn tasks(&self, args: &Args) -> Vec<CirclesTask<'_>> {
        let a = &args.run;
        // What defines a model's run (its checkpoints store it; a resume must match it, but for the epochs
        // when --epochs is given).
        let task = |name: &str, model: ModelConfig| {
            let config =
                a.run_config("circles", name, a.seed).with_all("model", &model).with_all("settings", &self.settings);
            CirclesTask {
                run: harness::Run { name: name.to_string(), dir: self.dir.join(name), seed: a.seed, config },
                settings: self.settings,
                model,
                train: &self.train,
                test: &self.test,
            }
        };
        let mut tasks = Vec::new();
        if a.model.baseline() {
            tasks.push(task("baseline", self.base));
        }
        if a.model.srn() {
            tasks.push(task(&args.srn_name(), ModelConfig { srn: Some(self.srn), ..self.base }));
        }
        tasks
    }

    /// Table 1's counts for `model` on the whole test set at `threshold`. Data-parallel: every rank evaluates
    /// its shard, and every rank gets the sums.
    fn test_stats(&self, model: &model::CirclesModel, threshold: f32) -> metrics::Decomposition {
        let world = crate::distributed::world();
        let all: Vec<usize> = (0..self.test.len()).collect();
        let (mut stats, _) =
            train::evaluate(model, &self.test, world.shard(&all), self.settings.batch, threshold, false);
        stats.sum_over(&world);
        stats
    }
}

/// Train the requested models with the same data, seed and budget (or load them, with `--evaluate`), then
/// print and save Table 1. The main job (the `quick` profile) ends with what it showed and the committed
/// `small` run's Table 1.
pub fn run(args: &Args) -> Result<()> {
    let a = &args.run;
    let exp = Experiment::new(args)?;
    let (settings, dir) = (exp.settings, &exp.dir);
    crate::files::ensure_writable(dir)?;
    crate::files::clean_orphans(dir)?;
    eprintln!(
        "circles, profile {:?}: {} training and {} test images, batch {}, {} epochs ({} steps), widths encoder {} / decoder {} / H_agg {}, r = {}; output in {}",
        a.profile,
        settings.train_images,
        settings.test_images,
        settings.batch,
        settings.epochs,
        settings.total_steps(),
        settings.encoder_width,
        settings.decoder_width,
        settings.hagg_width,
        settings.inner_steps,
        dir.display()
    );
    let mut results = Vec::new();
    let mut curves = Vec::new();
    for task in &exp.tasks(args) {
        let (name, run_dir) = (&task.run.name, &task.run.dir);
        let outcome = match args.evaluate {
            Some(_) => harness::load(task)?,
            None => harness::train(task, a.resume)?,
        };
        if outcome.interrupted {
            return Err(format!("interrupted during {name}; rerun with --resume to continue").into());
        }
        stop_if_interrupted(name)?;
        let stats = exp.test_stats(&outcome.model, args.threshold);
        if !crate::distributed::world().is_root() {
            continue;
        }
        harness::report::write_curve(&run_dir.join("curve.csv"), &outcome.curve)?;
        figures::decomposition(&outcome.model, &exp.test, 8, &run_dir.join("decomposition.png"))?;
        figures::interpolation(&outcome.model, settings.scene, 9, &run_dir.join("interpolation.png"))?;
        figures::tsne_plots(&outcome.model, settings.scene, settings.tsne_grid, a.seed, run_dir, name)?;
        curves.push((name.clone(), outcome.curve.clone()));
        results.push(table::ModelResult { name: name.clone(), steps: outcome.steps, seconds: outcome.seconds, stats });
    }
    let suffix = match args.srn_name().as_str() {
        "srn" => String::new(),
        ablation => format!("-{ablation}"),
    };
    // The curves keep the paper's threshold; only the table is named after another.
    let table_suffix = match args.threshold {
        t if t == metrics::OBJECT_THRESHOLD => suffix.clone(),
        t => format!("{suffix}-threshold{t}"),
    };
    if !crate::distributed::world().is_root() {
        return Ok(());
    }
    stop_if_interrupted("the last model")?;
    figures::learning_curves(&curves, dir, &suffix)?;
    let report =
        table::Table1 { profile: a.profile, seed: a.seed, settings, threshold: args.threshold, models: results };
    println!("{}", harness::report::Report::markdown(&report));
    // An ablation's table is named after it, so that it sits beside the main one in the same folder.
    harness::report::write_report(dir, &format!("table1{table_suffix}"), &report)?;
    if a.profile == Profile::Quick && args.evaluate.is_none() {
        main_job::closing_lines(&report, args.threshold)?;
    }
    Ok(())
}
