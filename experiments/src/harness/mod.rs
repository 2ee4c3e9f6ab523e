//! The one training loop every experiment runs on, and what they share around it.
//!
//! An experiment supplies a [`Task`] per model and seed: its model, one training step on a batch of example
//! indices, one validation pass giving a learning-curve point, and a line to print. [`train`] does the rest:
//!
//! ```text
//! model, adam <- Task::model(), Task::optimizer()      (or both restored from the checkpoint, with the
//!                                                        curve, the clock and the loss window, on --resume)
//! while step < total:
//!     batch <- epoch_order(seed, epoch)[this step's slice]
//!     loss  <- Task::step(model, batch)               (the loss must be finite, or the run stops)
//!     adam.step(grads of loss, clipped if the task asks)
//!     every validation: Task::validate -> curve point, snapshot, best model by its score
//!     every validation, epoch end, the last step and Ctrl-C: checkpoint
//! ```
//!
//! - [`args`]: the flattened command line ([`RunArgs`]: profile, model, seeds, out, resume, epochs, lr and
//!   the SRN's settings) and checks of its values;
//! - [`progress`]: the progress bar or log lines with ETA, the epoch order, the Ctrl-C flag;
//! - [`resume`]: the run configuration a resume must match, and reading a checkpoint to resume from;
//! - [`report`]: tables as Markdown + JSON + CSV and learning curves as CSV, written atomically.
//!
//! Under `mpirun` (built with the feature `mpi`) the same loop trains data-parallel: see [`train_on`] and
//! [`crate::distributed`].

pub mod args;
pub mod progress;
pub mod report;
pub mod resume;
mod state;
mod train;

pub use args::{GradientMode, RunArgs, SrnArgs, Which, S0};
pub use progress::{epoch_order, interrupted, stop_if_interrupted, Progress, INTERRUPTED};
pub use resume::RunConfig;
pub use train::{load, load_model, snapshot_path, train, train_on, Outcome, BEST, CHECKPOINT};

use autograd::Var;
use models::{AdamConfig, Module, Scope};
use serde::{de::DeserializeOwned, Serialize};
use std::path::PathBuf;

/// One model's run: its name (for messages), folder, seed and the configuration its checkpoints store.
#[derive(Clone, Debug)]
pub struct Run {
    pub name: String,
    pub dir: PathBuf,
    /// The seed of the training order (the model's own initialisation is the task's business).
    pub seed: u64,
    /// What defines the run, stored in its checkpoints and checked on a resume.
    pub config: RunConfig,
}

/// How long a run trains and when it validates.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Training examples: each epoch is a permutation of `0..examples`, drawn from the run's seed.
    pub examples: usize,
    pub batch: usize,
    pub steps_per_epoch: usize,
    pub total_steps: usize,
    /// Validate (a curve point) every this many steps, and after the last.
    pub validate_every: usize,
    /// Also validate at the end of every epoch.
    pub validate_at_epoch_end: bool,
    /// Without a terminal, a progress line every this many steps.
    pub progress_every: usize,
    /// Keep the model of the best validation score (`best.safetensors`) and return it at the end.
    pub keep_best: bool,
    /// Save the model at every validation (`snapshots/step-NNNNNNN.safetensors`).
    pub snapshots: bool,
    /// Clip the gradients' global norm to this before every update.
    pub clip_grad_norm: Option<f64>,
    /// Every rank validates its shard of the validation set (the task sums the results over `Clock::world`);
    /// else rank 0 validates alone while the others wait.
    pub split_validation: bool,
    /// The step's loss is a mean over the batch (else a sum): a data-parallel run scales each rank's mean by
    /// its shard's share of the global batch, so that the summed gradients are the global mean's.
    pub mean_loss: bool,
}

impl Schedule {
    /// Whether the run validates after `step` steps.
    pub fn validates_at(&self, step: usize) -> bool {
        step.is_multiple_of(self.validate_every.max(1))
            || (self.validate_at_epoch_end && step.is_multiple_of(self.steps_per_epoch))
            || step == self.total_steps
    }
}

/// What one training step gives the loop.
pub struct Step<'t> {
    /// The loss to differentiate (a scalar).
    pub loss: Var<'t, f32>,
    /// A short status for the progress line, e.g. the loss.
    pub message: String,
    /// The SRN's inner loss at its first and last inner step, when the model has an inner loop.
    pub inner: Option<(f64, f64)>,
}

/// Where the run is when it validates.
#[derive(Clone, Copy)]
pub struct Clock<'w> {
    pub step: usize,
    pub total_steps: usize,
    /// Wall-clock seconds of the run so far (across resumes), validation included.
    pub seconds: f64,
    /// Seconds spent in training steps alone.
    pub train_seconds: f64,
    /// The inner losses of the last training step that had them.
    pub inner: Option<(f64, f64)>,
    /// The ranks of a data-parallel run: with `Schedule::split_validation`, every rank validates its
    /// [`World::shard`](crate::distributed::World::shard) of the validation set and the results are summed.
    pub world: &'w crate::distributed::World,
}

/// A validation's result: the curve point and, for runs that keep their best model, its score (higher is
/// better).
pub struct Validation<P> {
    pub point: P,
    pub score: Option<f64>,
}

/// What an experiment supplies for one model's run.
pub trait Task {
    type Model: Module<f32>;
    /// One point of the learning curve (stored in checkpoints as JSON).
    type Point: Clone + Serialize + DeserializeOwned;
    /// What the training steps between two curve points add up (stored in checkpoints, so that the first
    /// point after a resume averages the same steps as an uninterrupted run's).
    type Window: Default + Serialize + DeserializeOwned;

    fn run(&self) -> &Run;
    fn schedule(&self) -> Schedule;
    /// A freshly initialised model.
    fn model(&self) -> Self::Model;
    fn optimizer(&self) -> AdamConfig;
    /// Set what changes with the step (e.g. the number of inner steps) before step `step` (from 0) runs.
    fn before_step(&self, _model: &mut Self::Model, _step: usize) {}
    /// One training step's loss on the examples `batch` (step `step`, from 0); adds to `window`.
    fn step<'t>(
        &self,
        model: &Self::Model,
        scope: &Scope<'t, f32>,
        batch: &[usize],
        step: usize,
        window: &mut Self::Window,
    ) -> Step<'t>;
    /// Validate `model`; `window` holds the training steps since the last point.
    fn validate(&self, model: &Self::Model, window: &Self::Window, clock: Clock<'_>) -> Validation<Self::Point>;
    /// The progress line printed for a curve point.
    fn summary(&self, point: &Self::Point, clock: Clock<'_>) -> String;
}
