//! Training one Sort-of-CLEVR model for one seed: Adam on the cross-entropy, validation every few steps (the
//! learning curve), the best model kept by validation accuracy, a snapshot at every validation (for the
//! early-epoch robustness check), a checkpoint at every validation (so every epoch's end) and on Ctrl-C, exact
//! resumption.

use super::data::SortOfClevr;
use super::evaluate::{accuracy, argmax_rows, Accuracy};
use super::model::{RnConfig, RnModel};
use super::profile::Settings;
use crate::resume::{check_loss, checkpoint_to_resume, meta_json, RunConfig};
use crate::training::{epoch_order, interrupted as ctrl_c, Progress};
use crate::Result;
use autograd::ops::loss::cross_entropy;
use autograd::Tape;
use models::{Adam, AdamConfig, Checkpoint, Module, Optimizer, Scope};
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One model and seed.
pub struct RunSpec {
    /// "rn" or "rn-srn" (or an ablation's name).
    pub name: String,
    pub config: RnConfig,
    pub settings: Settings,
    pub seed: u64,
    /// This run's folder: checkpoints, snapshots, curve.
    pub dir: PathBuf,
    /// What defines the run, stored in its checkpoints and checked on a resume.
    pub config_fields: RunConfig,
}

/// One validation point.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: usize,
    /// Seconds of training steps so far (validation excluded).
    pub train_seconds: f64,
    /// Mean training cross-entropy and accuracy since the previous point.
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val: Accuracy,
    /// The SRN's inner loss (per question) at its first and last inner step on the last training batch.
    #[serde(deserialize_with = "crate::training::nan_if_null")]
    pub inner_first: f64,
    #[serde(deserialize_with = "crate::training::nan_if_null")]
    pub inner_last: f64,
}

/// How a run ended: the best model by validation accuracy (loaded), and what led there.
pub struct Outcome {
    pub model: RnModel,
    pub curve: Vec<CurvePoint>,
    pub best_step: usize,
    pub steps: usize,
    pub train_seconds: f64,
    pub interrupted: bool,
}

impl Outcome {
    /// Mean seconds per training step.
    pub fn seconds_per_step(&self) -> f64 {
        self.train_seconds / self.steps.max(1) as f64
    }
}

const CHECKPOINT: &str = "checkpoint.safetensors";
const BEST: &str = "best.safetensors";

/// The model snapshot taken at validation `step`.
pub fn snapshot_path(dir: &Path, step: usize) -> PathBuf {
    dir.join("snapshots").join(format!("step-{step:07}.safetensors"))
}

/// A model with `config` and the weights saved at `path`.
pub fn load_model(config: &RnConfig, path: &Path) -> Result<RnModel> {
    let model = RnModel::new(config, &mut StdRng::seed_from_u64(0));
    let mut ck = Checkpoint::load(path)?;
    ck.load_module("model", &model)?;
    ck.finish()?;
    Ok(model)
}

fn save_model(model: &RnModel, path: &Path) -> Result<()> {
    let mut ck = Checkpoint::new();
    ck.put_module("model", model);
    ck.save(path)?;
    Ok(())
}

/// Train (or resume) `spec` on `train`, validating on `val`.
pub fn train(spec: &RunSpec, train: &SortOfClevr, val: &SortOfClevr, resume: bool) -> Result<Outcome> {
    let s = &spec.settings;
    let model = RnModel::new(&spec.config, &mut StdRng::seed_from_u64(spec.seed));
    let mut adam = Adam::new(model.params(), AdamConfig { lr: s.lr, ..AdamConfig::default() });
    let path = spec.dir.join(CHECKPOINT);
    let (mut step, mut train_seconds, mut curve, mut best) = (0usize, 0.0f64, Vec::<CurvePoint>::new(), (0, -1.0));
    // The training loss, right answers and steps since the last validation (saved, so that the first point
    // after a resume averages the same steps as an uninterrupted run's).
    let (mut window_loss, mut window_right, mut window_steps) = (0.0f64, 0usize, 0usize);
    crate::files::clean_orphans(&spec.dir)?;
    crate::files::clean_orphans(&spec.dir.join("snapshots"))?;
    if let Some(mut ck) = checkpoint_to_resume(&path, resume, &spec.name)? {
        spec.config_fields.check(&ck)?;
        ck.load_module("model", &model)?;
        ck.load_optimizer("adam", &mut adam)?;
        step = ck.take_count("step")? as usize;
        train_seconds = ck.meta_parsed("train_seconds")?.unwrap_or(0.0);
        curve = meta_json(&ck, "curve")?.unwrap_or_default();
        best = meta_json(&ck, "best")?.unwrap_or((0, -1.0));
        (window_loss, window_right, window_steps) = meta_json(&ck, "window")?.unwrap_or((0.0, 0, 0));
        ck.finish()?;
        eprintln!("{}: resumed from {} at step {step}", spec.name, path.display());
    }
    let snapshots = spec.dir.join("snapshots");
    std::fs::create_dir_all(&snapshots).map_err(|e| format!("cannot create {}: {e}", snapshots.display()))?;
    let save = |model: &RnModel, adam: &Adam<f32>, step, train_seconds: f64, curve: &[CurvePoint], best, window| {
        let mut ck = Checkpoint::new();
        ck.put_module("model", model);
        ck.put_optimizer("adam", adam);
        ck.put_count("step", step as u64);
        ck.set_meta("train_seconds", &train_seconds.to_string());
        ck.set_meta("curve", &serde_json::to_string(curve)?);
        ck.set_meta("best", &serde_json::to_string(&best)?);
        ck.set_meta("window", &serde_json::to_string::<(f64, usize, usize)>(&window)?);
        ck.set_meta("run", &spec.name);
        spec.config_fields.store(&mut ck);
        ck.save(&path)?;
        Result::Ok(())
    };

    let total = s.total_steps();
    let progress = Progress::new(&spec.name, step, total, 20);
    let mut inner = (f64::NAN, f64::NAN);
    let mut interrupted = false;
    while step < total {
        let epoch = step / s.steps_per_epoch();
        let order = epoch_order(train.len(), spec.seed, epoch);
        let within = step % s.steps_per_epoch();
        let batch = train.batch(&order[within * s.batch..(within + 1) * s.batch]);
        let started = Instant::now();
        let tape = Tape::new();
        let scope = Scope::new(&tape);
        let images = tape.constant(batch.images.clone());
        let questions = tape.constant(batch.questions.clone());
        let dropout_seed = spec.seed.wrapping_mul(1_000_003).wrapping_add(step as u64);
        let (logits, inner_losses) = model.forward(&scope, images, questions, dropout_seed);
        let loss = cross_entropy(logits, &batch.answers);
        if let Err(e) = check_loss(loss.item() as f64, &spec.name, step + 1, &path) {
            progress.abandon(format!("stopped: non-finite loss at step {}", step + 1));
            return Err(e);
        }
        let grads = model.grads(&scope, &[loss]);
        adam.step(&grads);
        drop(scope);
        train_seconds += started.elapsed().as_secs_f64();
        step += 1;
        window_loss += loss.item() as f64;
        window_right += argmax_rows(&logits.value()).iter().zip(&batch.answers).filter(|(p, a)| p == a).count();
        window_steps += 1;
        if let (Some(first), Some(last)) = (inner_losses.first(), inner_losses.last()) {
            inner = (*first as f64 / s.batch as f64, *last as f64 / s.batch as f64);
        }
        progress.set(step, &format!("loss {:.3}", loss.item()));
        if s.evaluates_at(step) {
            let val_acc = accuracy(&model, val, s.batch);
            let point = CurvePoint {
                step,
                train_seconds,
                train_loss: window_loss / window_steps.max(1) as f64,
                train_accuracy: 100.0 * window_right as f64 / (window_steps * s.batch).max(1) as f64,
                val: val_acc,
                inner_first: inner.0,
                inner_last: inner.1,
            };
            progress.println(&format!(
                "{} step {step}/{total}: train loss {:.3} acc {:.1}%; validation: non-relational {:.1}%, relational {:.1}% (furthest {:.1}, closest {:.1}, count {:.1}); inner {:.3} -> {:.3}; {:.0} s",
                spec.name,
                point.train_loss,
                point.train_accuracy,
                val_acc.non_relational(),
                val_acc.relational(),
                val_acc.kind(super::data::Kind::Furthest),
                val_acc.kind(super::data::Kind::Closest),
                val_acc.kind(super::data::Kind::Count),
                point.inner_first,
                point.inner_last,
                train_seconds
            ));
            save_model(&model, &snapshot_path(&spec.dir, step))?;
            if val_acc.all() > best.1 {
                best = (step, val_acc.all());
                save_model(&model, &spec.dir.join(BEST))?;
            }
            curve.push(point);
            (window_loss, window_right, window_steps) = (0.0, 0, 0);
        }
        interrupted = ctrl_c();
        if s.evaluates_at(step) || interrupted {
            save(&model, &adam, step, train_seconds, &curve, best, (window_loss, window_right, window_steps))?;
        }
        if interrupted {
            progress.abandon(format!("interrupted: checkpoint saved at step {step}; rerun with --resume"));
            break;
        }
    }
    if interrupted {
        return Ok(Outcome { model, curve, best_step: best.0, steps: step, train_seconds, interrupted });
    }
    progress.finish();
    let best_model = load_model(&spec.config, &spec.dir.join(BEST))?;
    Ok(Outcome { model: best_model, curve, best_step: best.0, steps: step, train_seconds, interrupted })
}
