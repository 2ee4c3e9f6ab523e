//! `experiments clutrr`: the RN, RN + SRN and RN + GRN on CLUTRR (the paper's Sec. 3.3), each model and seed a
//! run on the shared harness ([`ClutrrTask`]): Adam with the paper's L2 penalty ([`Variant::weight_decay`]),
//! gradients clipped to norm 1, test accuracy for every k = 2..10 at every epoch's end (the learning curve), and
//! the model of the best mean accuracy over k = 2, 3, 4 kept, as the paper reports "the best average accuracy
//! across epochs". The table gives that best mean beside the paper's (mean ± std over seeds) and the accuracy per
//! k at the same epoch.
//!
//! Data: the released archive (`--data`, by default `../shared/data/clutrr/data_db9b8f04.zip` when it exists),
//! or stories from [`generate`](super::generate) (`--data generated`, the smoke profile's default, and the
//! fallback when the archive is absent), with test stories generated for each k = 2..10.

use super::model::{correct, loss, ClutrrConfig, ClutrrModel, Variant};
use super::profile::{self, Profile, Settings, EVAL_BATCH};
use super::table::{self, ClutrrReport, ModelResult, SeedResult};
use super::{batch, generate, load_released, Batch, GeneratorConfig, RelationVocab, Story, Vocabulary};
use crate::distributed::World;
use crate::harness::{self, stop_if_interrupted, Clock, Run, RunArgs, RunConfig, Schedule, Step, Task, Validation};
use crate::report::csv::Cell;
use crate::Result;
use autograd::Float;
use clap::ValueEnum;
use models::{AdamConfig, Scope, SrnConfig};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The released archive read when `--data` is not given (relative to the repository).
pub const DEFAULT_DATA: &str = "../shared/data/clutrr/data_db9b8f04.zip";
/// The test splits: k = 2..10 edges.
pub const TEST_KS: [usize; 9] = [2, 3, 4, 5, 6, 7, 8, 9, 10];
/// The ks whose mean accuracy the paper reports (the training ks).
pub const REPORTED_KS: [usize; 3] = [2, 3, 4];

/// Which models to train.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Models {
    Rn,
    Srn,
    Grn,
    #[default]
    All,
}

impl Models {
    pub fn variants(self) -> Vec<Variant> {
        match self {
            Models::Rn => vec![Variant::Rn],
            Models::Srn => vec![Variant::Srn],
            Models::Grn => vec![Variant::Grn],
            Models::All => Variant::ALL.to_vec(),
        }
    }
}

/// The command line of `experiments clutrr`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub run: RunArgs<Profile, Models>,
    /// The released CLUTRR data: its zip archive or a folder of its CSV files, or `generated` for generated
    /// stories (default: ../shared/data/clutrr/data_db9b8f04.zip if it exists, else generated; smoke: generated).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Number of seeds, at least 1 (default: the profile's); seeds are `--seed`, `--seed + 1`, ...
    #[arg(long, value_parser = harness::args::at_least_one)]
    pub seeds: Option<usize>,
}

/// Where the stories come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Released(PathBuf),
    Generated,
}

impl Source {
    /// The source `args` ask for: an explicit path must exist (the error names it).
    pub fn of(args: &Args) -> Result<Source> {
        match &args.data {
            Some(p) if p.as_os_str() == "generated" => Ok(Source::Generated),
            Some(p) if !p.exists() => Err(format!(
                "--data {}: no such file or folder (give the released CLUTRR zip, a folder of its CSV files, or \
                 `generated`)",
                p.display()
            )
            .into()),
            Some(p) => Ok(Source::Released(p.clone())),
            None if args.run.profile == Profile::Smoke => Ok(Source::Generated),
            None if Path::new(DEFAULT_DATA).exists() => Ok(Source::Released(DEFAULT_DATA.into())),
            None => {
                eprintln!("note: {DEFAULT_DATA} is absent: training on generated stories (give --data to use the released ones)");
                Ok(Source::Generated)
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Released(p) => format!("released {}", p.display()),
            Source::Generated => "generated".into(),
        }
    }
}

/// One test split as padded batches.
pub struct TestSet {
    pub k: usize,
    pub batches: Vec<Batch>,
    /// Stories in the split (the denominator), those whose target is no training class (always wrong) included.
    pub stories: usize,
    pub unanswerable: usize,
}

/// Everything the runs share: training stories, test batches, the vocabulary and the classes.
pub struct Data {
    pub source: String,
    pub train: Vec<Story>,
    pub tests: Vec<TestSet>,
    pub vocab: Vocabulary,
    pub relations: RelationVocab,
    /// Sentence slots of every batch (the SRN's set size).
    pub slots: usize,
}

fn sample(mut stories: Vec<Story>, n: Option<usize>, seed: u64) -> Vec<Story> {
    stories.shuffle(&mut StdRng::seed_from_u64(seed));
    if let Some(n) = n {
        stories.truncate(n);
    }
    stories
}

impl Data {
    /// The data of `settings` from `source` (generated stories and released subsets drawn from `data_seed`).
    pub fn load(source: &Source, settings: &Settings, data_seed: u64, slots: usize) -> Result<Data> {
        let d = data_seed.wrapping_mul(16);
        let (train, tests, relations) = match source {
            Source::Generated => {
                let n = settings.train_stories.unwrap_or(15_083);
                let train = generate(n, &GeneratorConfig::default(), d + 1)?;
                let m = settings.test_stories.unwrap_or(1_000);
                let mut tests = Vec::new();
                for k in TEST_KS {
                    let config = GeneratorConfig { ks: vec![k], ..GeneratorConfig::default() };
                    tests.push((k, generate(m, &config, d + k as u64)?));
                }
                (train, tests, RelationVocab::all())
            }
            Source::Released(path) => {
                let released = load_released(path)?;
                let train = sample(released.train, settings.train_stories, d + 1);
                let tests = released
                    .tests
                    .into_iter()
                    .filter(|t| TEST_KS.contains(&t.k))
                    .map(|t| (t.k, sample(t.stories, settings.test_stories, d + t.k as u64)))
                    .collect();
                let relations = RelationVocab::from_stories(&train);
                (train, tests, relations)
            }
        };
        if train.is_empty() {
            return Err(format!("{}: no training stories", source.describe()).into());
        }
        let vocab = Vocabulary::build(&train, super::DEFAULT_ENTITY_SLOTS);
        let tests = tests
            .into_iter()
            .map(|(k, stories)| {
                let answerable: Vec<&Story> = stories.iter().filter(|s| relations.class(s.target).is_some()).collect();
                let batches = answerable
                    .chunks(EVAL_BATCH)
                    .map(|c| batch(c, &vocab, &relations, slots))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(TestSet { k, batches, stories: stories.len(), unanswerable: stories.len() - answerable.len() })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Data { source: source.describe(), train, tests, vocab, relations, slots })
    }
}

/// The model of `variant` for `settings`: the paper's widths, or tiny ones for the smoke profile.
pub fn model_config(variant: Variant, settings: &Settings, data: &Data) -> ClutrrConfig {
    let paper = ClutrrConfig { classes: data.relations.len(), set_size: data.slots, ..ClutrrConfig::paper(variant) };
    if !settings.tiny_model {
        return paper;
    }
    ClutrrConfig {
        embedding: 8,
        hidden: 6,
        g_width: 8,
        g_layers: 2,
        f_widths: [16, 8],
        refiner: SrnConfig { steps: 2, alpha: 0.5, ..paper.refiner },
        hagg_width: 8,
        fspool_pieces: 4,
        ..paper
    }
}

/// One model and seed.
pub struct ClutrrTask<'d> {
    pub run: Run,
    pub config: ClutrrConfig,
    pub settings: Settings,
    pub data: &'d Data,
}

/// One learning-curve point: the training since the last point and the test accuracy per k.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: usize,
    pub epoch: f64,
    /// Seconds of training steps so far (validation excluded).
    pub train_seconds: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// Test accuracy (%) for k = 2..10 ([`TEST_KS`]), NaN where there is no split.
    #[serde(deserialize_with = "crate::harness::progress::nan_if_null_vec")]
    pub test: Vec<f64>,
    /// The mean over k = 2, 3, 4: the score of the best model.
    pub mean_234: f64,
    /// The refinement's inner loss (per story) at its first and last step on the last training batch.
    pub inner: Option<(f64, f64)>,
}

impl CurvePoint {
    /// Test accuracy at `k` (NaN without a split).
    pub fn at(&self, k: usize) -> f64 {
        TEST_KS.iter().position(|&j| j == k).and_then(|i| self.test.get(i).copied()).unwrap_or(f64::NAN)
    }
}

/// Mean of the finite values (NaN if none).
pub fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

impl crate::harness::report::CurveRow for CurvePoint {
    fn header() -> Vec<String> {
        let mut h: Vec<String> =
            ["step", "epoch", "train_seconds", "train_loss", "train_accuracy"].map(String::from).to_vec();
        h.extend(TEST_KS.iter().map(|k| format!("test_k{k}")));
        h.extend(["test_mean_k234", "inner_first", "inner_last"].map(String::from));
        h
    }

    fn cells(&self) -> Vec<Cell> {
        let mut row: Vec<Cell> = vec![
            self.step.into(),
            self.epoch.into(),
            self.train_seconds.into(),
            self.train_loss.into(),
            self.train_accuracy.into(),
        ];
        row.extend(TEST_KS.iter().map(|&k| Cell::from(self.at(k))));
        let (first, last) = self.inner.unwrap_or((f64::NAN, f64::NAN));
        row.extend([self.mean_234.into(), first.into(), last.into()]);
        row
    }
}

/// Training loss and right answers since the last point: (loss sum, right, stories, steps).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Window(f64, usize, usize, usize);

impl ClutrrTask<'_> {
    /// Test accuracy (%) per k of [`TEST_KS`] (NaN without a split), on `world`'s ranks together.
    pub fn test(&self, model: &ClutrrModel, world: &World) -> Vec<f64> {
        let splits: Vec<Option<&TestSet>> =
            TEST_KS.iter().map(|&k| self.data.tests.iter().find(|t| t.k == k && t.stories > 0)).collect();
        // Each rank of a data-parallel run answers its shard of every split's batches; the counts are summed.
        let mut right: Vec<u64> = splits
            .iter()
            .map(|t| {
                let batches = t.map_or(&[][..], |t| world.shard(&t.batches));
                let answer = |b: &Batch| {
                    let logits = models::evaluate(model, |s| model.forward(s, b, 0).0.value());
                    correct(&logits, &b.targets) as u64
                };
                batches.iter().map(answer).sum()
            })
            .collect();
        world.all_reduce_sum(&mut right);
        splits.iter().zip(right).map(|(t, r)| t.map_or(f64::NAN, |t| 100.0 * r as f64 / t.stories as f64)).collect()
    }
}

impl Task for ClutrrTask<'_> {
    type Model = ClutrrModel;
    type Point = CurvePoint;
    type Window = Window;

    fn run(&self) -> &Run {
        &self.run
    }

    fn schedule(&self) -> Schedule {
        let s = &self.settings;
        let steps_per_epoch = s.steps_per_epoch(self.data.train.len());
        Schedule {
            examples: self.data.train.len(),
            batch: s.batch,
            steps_per_epoch,
            total_steps: steps_per_epoch * s.epochs,
            validate_every: if s.validate_every == 0 { steps_per_epoch } else { s.validate_every },
            validate_at_epoch_end: true,
            progress_every: 50,
            keep_best: true,
            snapshots: false,
            clip_grad_norm: Some(1.0),
            split_validation: true,
            // The cross-entropy is a mean over the batch.
            mean_loss: true,
        }
    }

    fn model(&self) -> ClutrrModel {
        ClutrrModel::new(self.config, self.data.vocab.len(), &mut StdRng::seed_from_u64(self.run.seed))
    }

    fn optimizer(&self) -> AdamConfig {
        AdamConfig { lr: self.settings.lr, weight_decay: self.config.variant.weight_decay(), ..AdamConfig::default() }
    }

    fn step<'t>(
        &self,
        model: &ClutrrModel,
        scope: &Scope<'t, f32>,
        indices: &[usize],
        step: usize,
        window: &mut Window,
    ) -> Step<'t> {
        let stories: Vec<&Story> = indices.iter().map(|&i| &self.data.train[i]).collect();
        let b = batch(&stories, &self.data.vocab, &self.data.relations, self.data.slots)
            .expect("training stories fit the batch (checked when the test batches were built)");
        let dropout_seed = self.run.seed.wrapping_mul(1_000_003).wrapping_add(step as u64);
        let (logits, inner_losses) = model.forward(scope, &b, dropout_seed);
        let l = loss(logits, &b.targets);
        window.0 += l.item().to_f64();
        window.1 += correct(&logits.value(), &b.targets);
        window.2 += indices.len();
        window.3 += 1;
        let n = indices.len() as f64;
        let inner = inner_losses.and_then(|v| Some((v.first()?.to_f64() / n, v.last()?.to_f64() / n)));
        Step { loss: l, message: format!("loss {:.3}", l.item()), inner }
    }

    fn validate(&self, model: &ClutrrModel, window: &Window, clock: Clock) -> Validation<CurvePoint> {
        let test = self.test(model, clock.world);
        let point = CurvePoint {
            step: clock.step,
            epoch: clock.step as f64 / self.schedule().steps_per_epoch as f64,
            train_seconds: clock.train_seconds,
            train_loss: window.0 / window.3.max(1) as f64,
            train_accuracy: 100.0 * window.1 as f64 / window.2.max(1) as f64,
            mean_234: mean(REPORTED_KS.iter().map(|&k| test[k - 2])),
            test,
            inner: clock.inner,
        };
        Validation { score: Some(point.mean_234), point }
    }

    fn summary(&self, p: &CurvePoint, clock: Clock) -> String {
        let ks: Vec<String> = TEST_KS.iter().map(|&k| format!("{:.0}", p.at(k))).collect();
        let inner = p.inner.map(|(a, b)| format!("; inner {a:.3} -> {b:.3}")).unwrap_or_default();
        format!(
            "{} step {}/{} (epoch {:.2}): train loss {:.3} acc {:.1}%; test k=2,3,4 {:.1}%, k=2..10: {}{inner}; {:.0} s",
            self.run.name,
            p.step,
            clock.total_steps,
            p.epoch,
            p.train_loss,
            p.train_accuracy,
            p.mean_234,
            ks.join(" "),
            p.train_seconds
        )
    }
}

/// Train the requested models for every seed; print and save the table and the learning curves.
pub fn run(args: &Args) -> Result<()> {
    let a = &args.run;
    let mut settings = profile::settings(a.profile);
    a.override_budget(&mut settings.epochs, &mut settings.lr);
    let source = Source::of(args)?;
    let seeds = a.seeds(args.seeds.unwrap_or(settings.seeds))?;
    let dir = a.out_dir("clutrr")?;
    let slots = if settings.tiny_model { 10 } else { super::SRN_SET_SIZE };
    eprintln!("clutrr: loading the {} stories", source.describe());
    let data = Data::load(&source, &settings, a.data_seed, slots)?;
    harness::args::total_steps(settings.epochs, settings.steps_per_epoch(data.train.len()))?;
    let tests: Vec<String> = data
        .tests
        .iter()
        .map(|t| {
            let u =
                if t.unanswerable > 0 { format!(" ({} of no training class)", t.unanswerable) } else { String::new() };
            format!("k={}: {}{u}", t.k, t.stories)
        })
        .collect();
    eprintln!(
        "clutrr, profile {:?}, data {}: {} training stories, test stories {}; {} words, {} classes; batch {}, {} epochs of {} steps, lr {}, seeds {:?}; output in {}",
        a.profile,
        data.source,
        data.train.len(),
        tests.join(", "),
        data.vocab.len(),
        data.relations.len(),
        settings.batch,
        settings.epochs,
        settings.steps_per_epoch(data.train.len()),
        settings.lr,
        seeds,
        dir.display()
    );

    let specs: Vec<(String, ClutrrConfig)> = a
        .model
        .variants()
        .into_iter()
        .map(|v| {
            let mut config = model_config(v, &settings, &data);
            let name = match v {
                Variant::Rn => "rn".to_string(),
                _ => {
                    config.refiner = a.srn.apply(config.refiner);
                    format!("{}{}", v.name(), a.srn.suffix())
                }
            };
            (name, config)
        })
        .collect();
    let mut models: Vec<ModelResult> = specs
        .iter()
        .map(|(name, c)| ModelResult {
            name: name.clone(),
            variant: c.variant,
            paper: table::paper(c.variant),
            results: Vec::new(),
        })
        .collect();
    let mut first_curves = Vec::new();
    for (i, &seed) in seeds.iter().enumerate() {
        for (m, (name, config)) in specs.iter().enumerate() {
            let run_dir = dir.join(name).join(format!("seed{seed}"));
            let task = ClutrrTask {
                run: Run {
                    name: format!("{name}-seed{seed}"),
                    dir: run_dir.clone(),
                    seed,
                    config: run_config(args, &settings, &data, name, seed, config),
                },
                config: *config,
                settings,
                data: &data,
            };
            let run_name = &task.run.name;
            let outcome = harness::train(&task, a.resume)?;
            if outcome.interrupted {
                return Err(format!("interrupted during {run_name}; rerun with --resume to continue").into());
            }
            stop_if_interrupted(run_name)?;
            if !crate::distributed::world().is_root() {
                // Data-parallel: rank 0 alone evaluates and reports.
                continue;
            }
            harness::report::write_curve(&run_dir.join("curve.csv"), &outcome.curve)?;
            let best_step = outcome.best_step.unwrap_or(outcome.steps);
            let best = outcome
                .curve
                .iter()
                .find(|p| p.step == best_step)
                .or(outcome.curve.last())
                .ok_or_else(|| format!("{run_name}: no validation point"))?;
            models[m].results.push(SeedResult {
                seed,
                steps: outcome.steps,
                best_step,
                best_epoch: best.epoch,
                train_seconds: outcome.train_seconds,
                seconds_per_step: outcome.seconds_per_step(),
                test: best.test.clone(),
                mean_234: best.mean_234,
            });
            if i == 0 {
                first_curves.push((name.clone(), outcome.curve.clone()));
            }
        }
    }
    if !crate::distributed::world().is_root() {
        return Ok(());
    }
    stop_if_interrupted("the last model")?;
    table::learning_curves(&first_curves, &dir)?;
    let report = ClutrrReport { profile: a.profile, data: data.source.clone(), settings, models };
    println!("{}", harness::report::Report::markdown(&report));
    harness::report::write_report(&dir, "table", &report)
}

/// What defines one model's run for one seed (stored in its checkpoints; a resume must match it, but for the
/// epochs when --epochs is given).
fn run_config(args: &Args, settings: &Settings, data: &Data, name: &str, seed: u64, model: &ClutrrConfig) -> RunConfig {
    let c =
        args.run.run_config("clutrr", name, seed).with("data", &data.source).with("train_stories", data.train.len());
    c.with_all("model", model).with_all("settings", settings).without("settings.seeds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_and_data_parse_and_a_missing_path_is_named() {
        let args: Args = harness::args::parse(&["--model", "grn", "--data", "/no/such/clutrr.zip"]).unwrap();
        assert_eq!(args.run.model, Models::Grn);
        assert_eq!(args.run.profile, Profile::Quick);
        let err = Source::of(&args).unwrap_err().to_string();
        assert!(err.contains("/no/such/clutrr.zip") && err.contains("no such file"), "{err}");
        let args: Args = harness::args::parse(&["--data", "generated", "--profile", "paper"]).unwrap();
        assert_eq!(Source::of(&args).unwrap(), Source::Generated);
        assert_eq!(args.run.model, Models::All);
        assert_eq!(args.run.model.variants(), Variant::ALL.to_vec());
        let args: Args = harness::args::parse(&["--profile", "smoke", "--model", "srn"]).unwrap();
        assert_eq!(Source::of(&args).unwrap(), Source::Generated, "smoke defaults to generated stories");
        assert!(harness::args::parse::<Args>(&["--model", "lstm"]).is_err());
        assert!(harness::args::parse::<Args>(&["--seeds", "0"]).is_err());
    }

    #[test]
    fn each_experiment_gets_its_own_defaults_in_one_binary() {
        // RunArgs is generic: a default kept in a static shared by its instantiations gave CLUTRR `--model both`.
        let soc: crate::sort_of_clevr::Args = harness::args::parse(&[]).unwrap();
        assert_eq!(soc.run.model, harness::Which::Both);
        let clutrr: Args = harness::args::parse(&[]).unwrap();
        assert_eq!((clutrr.run.model, clutrr.run.profile), (Models::All, Profile::Quick));
    }

    #[test]
    fn the_mean_skips_missing_splits() {
        assert_eq!(mean([50.0, f64::NAN, 70.0]), 60.0);
        assert!(mean([f64::NAN]).is_nan());
    }
}
