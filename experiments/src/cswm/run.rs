//! `experiments cswm`: C-SWM against C-SWM + SRN (paper Sec. 3.2, Table 3) on the shared training harness.
//!
//! Each model and seed trains for the profile's epochs on the contrastive loss; the negatives of a step are a
//! permutation of the batch drawn from a generator seeded by (seed, step), so a resumed run draws the same
//! ones. Validation (the learning curve) is the ranking metrics, Hits@1 and MRR after 1, 5 and 10 prediction
//! steps, on the evaluation episodes. As in the reference, which trains a fixed number of epochs and then
//! evaluates on the evaluation set, there is no model selection: the evaluation episodes are the test set, so
//! keeping the best point by them would select on the test set. The table reports the last step's model.
//!
//! The SRN's `S0` is the object encoder's state vectors and nothing else comes out of the encoder. With the
//! shared default `--s0 detached` (the released SRN code's) the refinement starts from a fresh leaf, so the
//! object encoder's MLP gets no gradient and stays at its initialisation (the extractor still learns through
//! `z`); pass `--s0 learned` for the encoder to learn through the refinement (Algorithm 1 as it reads).

use super::data::{load_atari, AtariGame, Episodes};
use super::figures;
use super::metrics::{evaluate_ranking, StepMetrics};
use super::model::{Cswm, CswmConfig};
use super::profile::{self, Profile, Settings};
use super::shapes;
use crate::harness::report::{CurveRow, Report};
use crate::harness::{
    self, stop_if_interrupted, Clock, Run, RunArgs, RunConfig, Schedule, Step, Task, Validation, Which,
};
use crate::report::csv::Cell;
use crate::Result;
use models::{AdamConfig, Scope};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::{Deserialize, Serialize};

/// The prediction horizons of Table 3.
pub const HORIZONS: [usize; 3] = [1, 5, 10];

/// The environment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Env {
    /// The 2-D shapes block-pushing environment, generated here (5 objects).
    #[default]
    Shapes,
    /// Atari Pong, from `tools/atari/collect.sh pong`.
    Pong,
    /// Atari Space Invaders, from `tools/atari/collect.sh spaceinvaders`.
    SpaceInvaders,
}

impl Env {
    fn game(self) -> Option<AtariGame> {
        match self {
            Env::Shapes => None,
            Env::Pong => Some(AtariGame::Pong),
            Env::SpaceInvaders => Some(AtariGame::SpaceInvaders),
        }
    }

    fn id(self) -> &'static str {
        match self {
            Env::Shapes => "shapes",
            Env::Pong => "pong",
            Env::SpaceInvaders => "spaceinvaders",
        }
    }
}

/// The command line of `experiments cswm`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub run: RunArgs<Profile, Which>,
    /// The environment.
    #[arg(long, value_enum, default_value_t)]
    pub env: Env,
    /// K, the object slots, at least 1 (shapes: 5, its number of objects).
    #[arg(long, default_value_t = 5, value_parser = harness::args::at_least_one)]
    pub objects: usize,
    /// Number of seeds, at least 1 (default: the profile's); seeds are `--seed`, `--seed + 1`, ...
    #[arg(long, value_parser = harness::args::at_least_one)]
    pub seeds: Option<usize>,
}

/// One model and seed, trained on `train` and validated on `eval`.
pub struct CswmTask<'d> {
    pub run: Run,
    pub config: CswmConfig,
    pub settings: Settings,
    pub train: &'d Episodes,
    pub eval: &'d Episodes,
}

/// One validation point.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: usize,
    /// Seconds of training steps so far (validation excluded).
    pub train_seconds: f64,
    /// Mean loss, positive and negative energy terms since the previous point.
    pub train_loss: f64,
    pub positive: f64,
    pub negative: f64,
    /// Hits@1 and MRR (in %) at each of [`HORIZONS`].
    pub hits_at_1: Vec<f64>,
    pub mrr: Vec<f64>,
    #[serde(deserialize_with = "crate::harness::progress::nan_if_null")]
    pub inner_first: f64,
    #[serde(deserialize_with = "crate::harness::progress::nan_if_null")]
    pub inner_last: f64,
}

/// Loss, positive and negative terms summed since the last validation, and over how many steps.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct LossWindow(f64, f64, f64, usize);

impl CurveRow for CurvePoint {
    fn header() -> Vec<String> {
        let mut h: Vec<String> =
            ["step", "train_seconds", "train_loss", "positive", "negative"].map(String::from).to_vec();
        for k in HORIZONS {
            h.push(format!("hits_at_1_{k}"));
            h.push(format!("mrr_{k}"));
        }
        h.extend(["inner_first", "inner_last"].map(String::from));
        h
    }

    fn cells(&self) -> Vec<Cell> {
        let mut row: Vec<Cell> = vec![
            self.step.into(),
            self.train_seconds.into(),
            self.train_loss.into(),
            self.positive.into(),
            self.negative.into(),
        ];
        for i in 0..HORIZONS.len() {
            row.push(self.hits_at_1.get(i).copied().unwrap_or(f64::NAN).into());
            row.push(self.mrr.get(i).copied().unwrap_or(f64::NAN).into());
        }
        row.extend([self.inner_first.into(), self.inner_last.into()]);
        row
    }
}

/// The batch permutation giving step `step`'s negatives (from the run's seed and the step alone).
pub fn negatives(seed: u64, step: usize, batch: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..batch).collect();
    let s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(step as u64);
    p.shuffle(&mut StdRng::seed_from_u64(s));
    p
}

impl CswmTask<'_> {
    fn horizons(&self) -> Vec<usize> {
        HORIZONS.into_iter().filter(|&h| h <= self.eval.steps()).collect()
    }
}

impl Task for CswmTask<'_> {
    type Model = Cswm;
    type Point = CurvePoint;
    type Window = LossWindow;

    fn run(&self) -> &Run {
        &self.run
    }

    fn schedule(&self) -> Schedule {
        let s = &self.settings;
        let steps_per_epoch = s.steps_per_epoch(self.train.len());
        Schedule {
            examples: self.train.len(),
            batch: s.batch.min(self.train.len()),
            steps_per_epoch,
            total_steps: steps_per_epoch * s.epochs,
            validate_every: s.eval_every,
            validate_at_epoch_end: true,
            progress_every: 20,
            keep_best: false,
            snapshots: false,
            clip_grad_norm: None,
            split_validation: false,
            // The hinge loss is a mean over the batch. (Data-parallel, each rank draws its negatives from its own
            // shard, so a run on several ranks is not the 1-rank run exactly, as for PyTorch's DDP.)
            mean_loss: true,
        }
    }

    fn model(&self) -> Cswm {
        Cswm::new(self.config, &mut StdRng::seed_from_u64(self.run.seed))
    }

    fn optimizer(&self) -> AdamConfig {
        AdamConfig { lr: self.settings.lr, ..AdamConfig::default() }
    }

    fn step<'t>(
        &self,
        model: &Cswm,
        scope: &Scope<'t, f32>,
        indices: &[usize],
        step: usize,
        window: &mut LossWindow,
    ) -> Step<'t> {
        let batch = self.train.batch(indices);
        let out = model.loss(scope, &batch, &negatives(self.run.seed, step, indices.len()));
        let loss = out.loss.item() as f64;
        window.0 += loss;
        window.1 += out.positive as f64;
        window.2 += out.negative as f64;
        window.3 += 1;
        let inner = match (out.inner_losses.first(), out.inner_losses.last()) {
            (Some(&first), Some(&last)) => Some((first as f64, last as f64)),
            _ => None,
        };
        Step { loss: out.loss, message: format!("loss {loss:.4}"), inner }
    }

    fn validate(&self, model: &Cswm, window: &LossWindow, clock: Clock) -> Validation<CurvePoint> {
        let metrics = evaluate_ranking(model, self.eval, &self.horizons(), self.settings.eval_batch);
        let (inner_first, inner_last) = clock.inner.unwrap_or((f64::NAN, f64::NAN));
        let n = window.3.max(1) as f64;
        let point = CurvePoint {
            step: clock.step,
            train_seconds: clock.train_seconds,
            train_loss: window.0 / n,
            positive: window.1 / n,
            negative: window.2 / n,
            hits_at_1: metrics.iter().map(|m| 100.0 * m.hits_at_1).collect(),
            mrr: metrics.iter().map(|m| 100.0 * m.mrr).collect(),
            inner_first,
            inner_last,
        };
        Validation { point, score: None }
    }

    fn summary(&self, p: &CurvePoint, clock: Clock) -> String {
        let at = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(f64::NAN);
        format!(
            "{} step {}/{}: loss {:.4}; H@1 / MRR at 1, 5, 10 steps: {:.1}/{:.1}, {:.1}/{:.1}, {:.1}/{:.1}; inner {:.3} -> {:.3}; {:.0} s",
            self.run.name,
            p.step,
            clock.total_steps,
            p.train_loss,
            at(&p.hits_at_1, 0),
            at(&p.mrr, 0),
            at(&p.hits_at_1, 1),
            at(&p.mrr, 1),
            at(&p.hits_at_1, 2),
            at(&p.mrr, 2),
            p.inner_first,
            p.inner_last,
            p.train_seconds
        )
    }
}

/// One seed's final metrics.
#[derive(Clone, Debug, Serialize)]
pub struct SeedResult {
    pub seed: u64,
    pub steps: usize,
    pub train_seconds: f64,
    pub seconds_per_step: f64,
    pub metrics: Vec<StepMetrics>,
}

/// One model's results over the seeds.
#[derive(Clone, Debug, Serialize)]
pub struct ModelReport {
    pub name: String,
    pub results: Vec<SeedResult>,
}

/// The paper's Table 3 row: H@1 / MRR (in %) at 1, 5 and 10 steps.
#[derive(Clone, Debug, Serialize)]
pub struct PaperRow {
    pub model: &'static str,
    pub hits_mrr: [(f64, f64); 3],
}

/// The paper's Table 3 rows for `env` with `objects` slots (none for shapes or another K).
pub fn paper_rows(env: Env, objects: usize) -> Vec<PaperRow> {
    type Row = [(f64, f64); 3];
    let (cswm, srn): (Row, Row) = match (env, objects) {
        (Env::Pong, 5) => ([(63.3, 75.6), (29.8, 46.1), (16.9, 31.5)], [(62.9, 75.4), (30.3, 46.5), (19.8, 35.3)]),
        (Env::SpaceInvaders, 5) => {
            ([(53.8, 70.7), (50.2, 68.1), (28.7, 46.6)], [(63.6, 78.2), (59.9, 75.3), (39.5, 59.3)])
        }
        (Env::Pong, 3) => ([(57.3, 71.6), (28.0, 44.3), (14.8, 29.4)], [(62.7, 75.3), (31.7, 48.2), (17.1, 32.1)]),
        (Env::SpaceInvaders, 3) => {
            ([(69.0, 81.6), (60.9, 75.9), (38.1, 57.5)], [(68.4, 81.3), (65.0, 78.8), (47.8, 66.7)])
        }
        _ => return Vec::new(),
    };
    vec![PaperRow { model: "C-SWM (paper)", hits_mrr: cswm }, PaperRow { model: "C-SWM + SRN (paper)", hits_mrr: srn }]
}

/// Table 3 for one environment and K.
#[derive(Clone, Debug, Serialize)]
pub struct Table3 {
    pub env: Env,
    pub objects: usize,
    pub profile: Profile,
    pub settings: Settings,
    pub models: Vec<ModelReport>,
    pub paper: Vec<PaperRow>,
}

/// Mean and sample standard deviation (0 for one value).
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

impl ModelReport {
    /// Mean and std over the seeds (in %) of H@1 and MRR at horizon index `i`.
    fn stats(&self, i: usize) -> ((f64, f64), (f64, f64)) {
        let get = |f: fn(&StepMetrics) -> f64| -> Vec<f64> {
            self.results.iter().map(|r| r.metrics.get(i).map_or(f64::NAN, |m| 100.0 * f(m))).collect()
        };
        (mean_std(&get(|m| m.hits_at_1)), mean_std(&get(|m| m.mrr)))
    }
}

impl Report for Table3 {
    fn markdown(&self) -> String {
        let mut s = format!(
            "## Table 3: {} (K = {}), profile {:?}\n\nH@1 / MRR in %, mean ± std over seeds; the last step's model on the evaluation episodes.\n\n| Model | Seeds | 1 step H@1 | 1 step MRR | 5 steps H@1 | 5 steps MRR | 10 steps H@1 | 10 steps MRR |\n|---|---|---|---|---|---|---|---|\n",
            self.env.id(),
            self.objects,
            self.profile
        );
        for m in &self.models {
            s.push_str(&format!("| {} | {} |", m.name, m.results.len()));
            for i in 0..HORIZONS.len() {
                let ((h, hs), (r, rs)) = m.stats(i);
                s.push_str(&format!(" {h:.1} ± {hs:.1} | {r:.1} ± {rs:.1} |"));
            }
            s.push('\n');
        }
        for p in &self.paper {
            s.push_str(&format!("| {} | |", p.model));
            for (h, r) in p.hits_mrr {
                s.push_str(&format!(" {h:.1} | {r:.1} |"));
            }
            s.push('\n');
        }
        if self.paper.is_empty() {
            s.push_str("\nThe paper reports Table 3 for Pong and Space Invaders with K = 3 and 5 only.\n");
        }
        s
    }

    fn csv(&self) -> (Vec<String>, Vec<Vec<Cell>>) {
        let mut header: Vec<String> =
            ["model", "seed", "steps", "train_seconds", "seconds_per_step"].map(String::from).to_vec();
        for k in HORIZONS {
            header.push(format!("hits_at_1_{k}"));
            header.push(format!("mrr_{k}"));
        }
        let mut rows = Vec::new();
        for m in &self.models {
            for r in &m.results {
                let mut row: Vec<Cell> = vec![
                    m.name.as_str().into(),
                    (r.seed as usize).into(),
                    r.steps.into(),
                    r.train_seconds.into(),
                    r.seconds_per_step.into(),
                ];
                for i in 0..HORIZONS.len() {
                    let (h, mrr) =
                        r.metrics.get(i).map_or((f64::NAN, f64::NAN), |x| (100.0 * x.hits_at_1, 100.0 * x.mrr));
                    row.extend([h.into(), mrr.into()]);
                }
                rows.push(row);
            }
        }
        (header, rows)
    }
}

/// The training and evaluation episodes of `env`.
fn load(env: Env, settings: &Settings, data_seed: u64) -> Result<(Episodes, Episodes)> {
    match env.game() {
        None => {
            let d = data_seed.wrapping_mul(8);
            Ok((
                shapes::generate(settings.train_episodes, settings.train_steps, d + 1),
                shapes::generate(settings.eval_episodes, settings.eval_steps, d + 2),
            ))
        }
        Some(game) => Ok((load_atari(game.default_path("train"), game)?, load_atari(game.default_path("eval"), game)?)),
    }
}

/// The model for `env` with the profile's widths.
pub fn base_config(env: Env, objects: usize, s: &Settings) -> CswmConfig {
    let c = match env {
        Env::Shapes => CswmConfig { objects, ..CswmConfig::shapes() },
        _ => CswmConfig::atari(objects),
    };
    CswmConfig { hidden: s.hidden, extractor_width: s.extractor_width, z_dim: s.z_dim, hagg_width: s.hagg_width, ..c }
}

/// The profile's settings with `--epochs` and `--lr` applied.
pub fn settings(args: &Args) -> Settings {
    let a = &args.run;
    let mut settings = profile::settings(a.profile, args.env != Env::Shapes);
    a.override_budget(&mut settings.epochs, &mut settings.lr);
    settings
}

/// `base` with the SRN: the module's defaults with the SRN's command-line settings applied.
fn with_srn(args: &Args, base: CswmConfig) -> CswmConfig {
    let srn = base.with_srn();
    CswmConfig { srn: srn.srn.map(|c| args.run.srn.apply(c)), ..srn }
}

/// The name of the C-SWM + SRN runs: `cswm-srn` and the SRN settings that differ from the defaults.
fn srn_name(args: &Args) -> String {
    format!("cswm-srn{}", args.run.srn.suffix())
}

/// The models `--model` asks for, each with its name (its folder): C-SWM, then C-SWM + SRN, at `settings`'
/// widths. The training runs and `examples/cswm_step_cost.rs` build their models from these.
pub fn model_specs(args: &Args, settings: &Settings) -> Vec<(String, CswmConfig)> {
    let base = base_config(args.env, args.objects, settings);
    let mut specs = Vec::new();
    if args.run.model.baseline() {
        specs.push(("cswm".into(), base));
    }
    if args.run.model.srn() {
        specs.push((srn_name(args), with_srn(args, base)));
    }
    specs
}

/// Train and evaluate the requested models for every seed; print and save Table 3, and each run's learning
/// curve (`curve.csv`) and object masks (`masks.png`, [`figures`]) in its folder.
pub fn run(args: &Args) -> Result<()> {
    let a = &args.run;
    let settings = settings(args);
    let seeds = a.seeds(args.seeds.unwrap_or(settings.seeds))?;
    let base = base_config(args.env, args.objects, &settings);
    let (train, eval) = load(args.env, &settings, a.data_seed)?;
    if base.num_actions() != train.num_actions() || eval.num_actions() != train.num_actions() {
        return Err(format!(
            "the model with K = {} takes {} actions but {} has {} (shapes needs --objects {})",
            args.objects,
            base.num_actions(),
            train.name(),
            train.num_actions(),
            shapes::OBJECTS
        )
        .into());
    }
    harness::args::total_steps(settings.epochs, settings.steps_per_epoch(train.len()))?;
    let dir = a.out_dir(&format!("cswm-{}-k{}", args.env.id(), args.objects))?;
    let srn = with_srn(args, base);
    let srn_name = srn_name(args);
    let specs = model_specs(args, &settings);
    eprintln!(
        "cswm on {}, K = {}, profile {:?}: {} training transitions, {} evaluation episodes of {} steps, batch {}, {} epochs, seeds {:?}, C-SWM + SRN {:?}; output in {}",
        args.env.id(),
        args.objects,
        a.profile,
        train.len(),
        eval.num_episodes(),
        eval.steps(),
        settings.batch,
        settings.epochs,
        seeds,
        srn.srn,
        dir.display()
    );
    let mut reports: Vec<ModelReport> =
        specs.iter().map(|(name, _)| ModelReport { name: name.clone(), results: Vec::new() }).collect();
    for &seed in &seeds {
        for (m, (name, config)) in specs.iter().enumerate() {
            let run_dir = dir.join(name).join(format!("seed{seed}"));
            let task = CswmTask {
                run: Run {
                    name: format!("{name}-seed{seed}"),
                    dir: run_dir.clone(),
                    seed,
                    config: run_config(args, &settings, name, seed, config),
                },
                config: *config,
                settings,
                train: &train,
                eval: &eval,
            };
            let run_name = task.run.name.clone();
            let outcome = harness::train(&task, a.resume)?;
            if outcome.interrupted {
                return Err(format!("interrupted during {run_name}; rerun with --resume to continue").into());
            }
            stop_if_interrupted(&run_name)?;
            if !crate::distributed::world().is_root() {
                // Data-parallel: rank 0 alone evaluates and reports.
                continue;
            }
            harness::report::write_curve(&run_dir.join("curve.csv"), &outcome.curve)?;
            figures::write_masks(&outcome.model, &eval, &run_dir.join("masks.png"))?;
            let metrics = evaluate_ranking(&outcome.model, &eval, &task.horizons(), settings.eval_batch);
            reports[m].results.push(SeedResult {
                seed,
                steps: outcome.steps,
                train_seconds: outcome.train_seconds,
                seconds_per_step: outcome.seconds_per_step(),
                metrics,
            });
        }
    }
    if !crate::distributed::world().is_root() {
        return Ok(());
    }
    stop_if_interrupted("the last model")?;
    let report = Table3 {
        env: args.env,
        objects: args.objects,
        profile: a.profile,
        settings,
        models: reports,
        paper: paper_rows(args.env, args.objects),
    };
    println!("{}", report.markdown());
    let stem = match srn_name.as_str() {
        "cswm-srn" => "table3".to_string(),
        ablation => format!("table3-{ablation}"),
    };
    harness::report::write_report(&dir, &stem, &report)
}

/// What defines one model's run for one seed (stored in its checkpoints; a resume must match it, but for the
/// epochs when --epochs is given).
fn run_config(args: &Args, settings: &Settings, name: &str, seed: u64, model: &CswmConfig) -> RunConfig {
    let c = args.run.run_config("cswm", name, seed).with("env", args.env.id());
    c.with_all("model", model).with_all("settings", settings).without("settings.seeds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negatives_depend_on_seed_and_step_only() {
        assert_eq!(negatives(3, 7, 16), negatives(3, 7, 16));
        assert_ne!(negatives(3, 7, 16), negatives(3, 8, 16));
        let mut p = negatives(1, 0, 16);
        p.sort_unstable();
        assert_eq!(p, (0..16).collect::<Vec<_>>());
    }

    #[test]
    fn paper_rows_exist_for_atari_with_k_3_and_5() {
        assert_eq!(paper_rows(Env::Pong, 5)[1].hits_mrr[2], (19.8, 35.3));
        assert_eq!(paper_rows(Env::SpaceInvaders, 3)[0].hits_mrr[0], (69.0, 81.6));
        assert!(paper_rows(Env::Shapes, 5).is_empty());
    }

    #[test]
    fn a_missing_atari_file_names_the_command() {
        let absent = std::env::temp_dir().join(format!("srn-cswm-absent-{}.safetensors", std::process::id()));
        let game = Env::Pong.game().expect("an Atari game");
        let Err(err) = load_atari(&absent, game) else { panic!("{} does not exist", absent.display()) };
        let err = err.to_string();
        assert!(err.contains("tools/atari/collect.sh pong") && err.contains(&absent.display().to_string()), "{err}");
    }
}
