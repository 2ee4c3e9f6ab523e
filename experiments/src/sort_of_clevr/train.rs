//! Training one Sort-of-CLEVR model for one seed on the shared harness: Adam on the cross-entropy, validation
//! every few steps and at every epoch's end (the learning curve), the best model kept by validation accuracy,
//! and a snapshot at every validation (for the early-epoch robustness check).

use super::data::{Kind, SortOfClevr};
use super::evaluate::{accuracy_on, argmax_rows, Accuracy};
use super::model::{RnConfig, RnModel};
use super::profile::Settings;
use crate::harness::{Clock, Run, Schedule, Step, Task, Validation};
use crate::report::csv::Cell;
use autograd::ops::loss::cross_entropy;
use autograd::Float;
use models::{AdamConfig, Scope};
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One model and seed, trained on `train` and validated on `val`.
pub struct SortOfClevrTask<'d> {
    /// "rn-seed0" or "rn-srn-seed0" (or an ablation's name).
    pub run: Run,
    pub config: RnConfig,
    pub settings: Settings,
    pub train: &'d SortOfClevr,
    pub val: &'d SortOfClevr,
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
    #[serde(deserialize_with = "crate::harness::progress::nan_if_null")]
    pub inner_first: f64,
    #[serde(deserialize_with = "crate::harness::progress::nan_if_null")]
    pub inner_last: f64,
}

/// The training loss and right answers summed since the last validation, and over how many steps.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct AccuracyWindow(f64, usize, usize);

impl crate::harness::report::CurveRow for CurvePoint {
    fn header() -> Vec<String> {
        let mut h: Vec<String> = [
            "step",
            "train_seconds",
            "train_loss",
            "train_accuracy",
            "val_all",
            "val_non_relational",
            "val_relational",
        ]
        .map(String::from)
        .to_vec();
        h.extend(Kind::ALL.iter().map(|k| k.name().to_string()));
        h.extend(["inner_first", "inner_last"].map(String::from));
        h
    }

    fn cells(&self) -> Vec<Cell> {
        let mut row: Vec<Cell> = vec![
            self.step.into(),
            self.train_seconds.into(),
            self.train_loss.into(),
            self.train_accuracy.into(),
            self.val.all().into(),
            self.val.non_relational().into(),
            self.val.relational().into(),
        ];
        row.extend(Kind::ALL.iter().map(|&k| Cell::from(self.val.kind(k))));
        row.extend([self.inner_first.into(), self.inner_last.into()]);
        row
    }
}

impl Task for SortOfClevrTask<'_> {
    type Model = RnModel;
    type Point = CurvePoint;
    type Window = AccuracyWindow;

    fn run(&self) -> &Run {
        &self.run
    }

    fn schedule(&self) -> Schedule {
        let s = &self.settings;
        Schedule {
            examples: self.train.len(),
            batch: s.batch,
            steps_per_epoch: s.steps_per_epoch(),
            total_steps: s.total_steps(),
            validate_every: s.eval_every,
            validate_at_epoch_end: true,
            progress_every: 20,
            keep_best: true,
            snapshots: true,
            clip_grad_norm: None,
            split_validation: true,
            mean_loss: true,
        }
    }

    fn model(&self) -> RnModel {
        RnModel::new(&self.config, &mut StdRng::seed_from_u64(self.run.seed))
    }

    fn optimizer(&self) -> AdamConfig {
        AdamConfig { lr: self.settings.lr, ..AdamConfig::default() }
    }

    fn step<'t>(
        &self,
        model: &RnModel,
        scope: &Scope<'t, f32>,
        indices: &[usize],
        step: usize,
        window: &mut AccuracyWindow,
    ) -> Step<'t> {
        let batch = self.train.batch(indices);
        let tape = scope.tape();
        let (images, questions) = (tape.constant(batch.images.clone()), tape.constant(batch.questions.clone()));
        let dropout_seed = self.run.seed.wrapping_mul(1_000_003).wrapping_add(step as u64);
        let (logits, inner_losses) = model.forward(scope, images, questions, dropout_seed);
        let loss = cross_entropy(logits, &batch.answers);
        window.0 += loss.item().to_f64();
        window.1 += argmax_rows(&logits.value()).iter().zip(&batch.answers).filter(|(p, a)| p == a).count();
        window.2 += 1;
        let questions = indices.len() as f64;
        let inner = match (inner_losses.first(), inner_losses.last()) {
            (Some(first), Some(last)) => Some((first.to_f64() / questions, last.to_f64() / questions)),
            _ => None,
        };
        Step { loss, message: format!("loss {:.3}", loss.item()), inner }
    }

    fn validate(&self, model: &RnModel, window: &AccuracyWindow, clock: Clock) -> Validation<CurvePoint> {
        let questions: Vec<usize> = (0..self.val.len()).collect();
        let mut val = accuracy_on(model, self.val, clock.world.shard(&questions), self.settings.batch);
        val.sum_over(clock.world);
        let (inner_first, inner_last) = clock.inner.unwrap_or((f64::NAN, f64::NAN));
        let point = CurvePoint {
            step: clock.step,
            train_seconds: clock.train_seconds,
            train_loss: window.0 / window.2.max(1) as f64,
            train_accuracy: 100.0 * window.1 as f64 / (window.2 * self.settings.batch).max(1) as f64,
            val,
            inner_first,
            inner_last,
        };
        Validation { score: Some(val.all()), point }
    }

    fn summary(&self, p: &CurvePoint, clock: Clock) -> String {
        format!(
            "{} step {}/{}: train loss {:.3} acc {:.1}%; validation: non-relational {:.1}%, relational {:.1}% (furthest {:.1}, closest {:.1}, count {:.1}); inner {:.3} -> {:.3}; {:.0} s",
            self.run.name,
            p.step,
            clock.total_steps,
            p.train_loss,
            p.train_accuracy,
            p.val.non_relational(),
            p.val.relational(),
            p.val.kind(Kind::Furthest),
            p.val.kind(Kind::Closest),
            p.val.kind(Kind::Count),
            p.inner_first,
            p.inner_last,
            p.train_seconds
        )
    }
}
