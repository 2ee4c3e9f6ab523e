//! The training loop ([`train`]) and loading a finished run for evaluation ([`load`]).

use super::progress::{epoch_order, interrupted as ctrl_c, Progress};
use super::resume::{check_loss, checkpoint_to_resume};
use super::state::State;
use super::{Clock, Step, Task};
use crate::distributed::{all_reduce_grads, broadcast_module, world, World};
use crate::Result;
use autograd::Tape;
use models::{clip_grad_norm, Adam, Checkpoint, Module, Optimizer, Scope};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The run's checkpoint in its folder: model, optimiser and [`State`], rewritten at every validation, epoch
/// end, the last step and Ctrl-C.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The model of the best validation score, for runs that keep it.
pub const BEST: &str = "best.safetensors";

/// The model snapshot taken at validation `step` (for runs that keep snapshots).
pub fn snapshot_path(dir: &Path, step: usize) -> PathBuf {
    dir.join("snapshots").join(format!("step-{step:07}.safetensors"))
}

/// How a run ended.
pub struct Outcome<M, P> {
    /// The trained model: the best validation point's for runs that keep it, else the last step's.
    pub model: M,
    pub curve: Vec<P>,
    pub steps: usize,
    /// Wall-clock seconds of the run (across resumes), validation included.
    pub seconds: f64,
    /// Seconds of training steps alone.
    pub train_seconds: f64,
    /// The step of the best validation score, for runs that keep it.
    pub best_step: Option<usize>,
    /// Stopped by Ctrl-C (or SIGTERM) with a checkpoint saved.
    pub interrupted: bool,
}

impl<M, P> Outcome<M, P> {
    /// Mean seconds per training step.
    pub fn seconds_per_step(&self) -> f64 {
        self.train_seconds / self.steps.max(1) as f64
    }
}

fn save_model(model: &impl Module<f32>, path: &Path) -> Result<()> {
    let mut ck = Checkpoint::new();
    ck.put_module("model", model);
    ck.save(path)?;
    Ok(())
}

/// The model of `task` with the weights saved at `path` (a snapshot or the best model).
pub fn load_model<T: Task>(task: &T, path: &Path) -> Result<T::Model> {
    let model = task.model();
    let mut ck = Checkpoint::load(path)?;
    ck.load_module("model", &model)?;
    ck.finish()?;
    Ok(model)
}

/// Train `task`'s model, or continue its run from the checkpoint in its folder when `resume`: data-parallel
/// over the process's [`world`] when it has several ranks (see [`train_on`]).
pub fn train<T: Task>(task: &T, resume: bool) -> Result<Outcome<T::Model, T::Point>> {
    train_on(&world(), task, resume)
}

/// [`train`] on `world`'s ranks. With one rank it is the plain loop. With several, every rank holds the
/// model (broadcast from rank 0 at the start and after a resume) and takes its shard of every global batch;
/// the gradients are summed over the ranks before the update, so every rank takes the 1-rank step when the
/// task's loss is a sum over its examples, or a mean scaled by the shard's share (`Schedule::mean_loss`).
/// Rank 0 alone validates, prints progress and writes checkpoints, snapshots and the best model (the run
/// folder must be one every rank sees, to resume); at the end every rank holds rank 0's returned model (the
/// best validation point's, for runs that keep it); batch normalisation's running statistics are rank 0's,
/// broadcast before every validation and checkpoint, the batch statistics each rank's own shard's. The
/// learning curve's training loss is rank 0's shard's.
pub fn train_on<T: Task>(world: &World, task: &T, resume: bool) -> Result<Outcome<T::Model, T::Point>> {
    let (run, schedule) = (task.run(), task.schedule());
    let (parallel, root) = (world.size() > 1, world.is_root());
    if schedule.batch < world.size() {
        return Err(format!(
            "{}: a batch of {} cannot be divided among {} ranks; use fewer ranks",
            run.name,
            schedule.batch,
            world.size()
        )
        .into());
    }
    let mut model = task.model();
    let mut adam = Adam::new(model.params(), task.optimizer());
    let path = run.dir.join(CHECKPOINT);
    let snapshots = run.dir.join("snapshots");
    if root {
        crate::files::clean_orphans(&run.dir)?;
        crate::files::clean_orphans(&snapshots)?;
    }
    world.barrier();
    let mut state = match checkpoint_to_resume(&path, resume && root, &run.name)? {
        Some(ck) => {
            let state = State::restore(run, ck, &model, &mut adam)?;
            eprintln!("{}: resumed from {} at step {}", run.name, path.display(), state.step);
            state
        }
        None => State::fresh(),
    };
    if parallel {
        // Rank 0 read the checkpoint: every rank continues from its model, optimiser state and step.
        if resume {
            share_resumed_state::<T>(world, &path, run, &model, &mut adam, &mut state)?;
        }
        broadcast_module(world, &model);
    }
    let folder = if schedule.snapshots { &snapshots } else { &run.dir };
    if root {
        std::fs::create_dir_all(folder).map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    }

    let total = schedule.total_steps;
    let progress = if root {
        Progress::new(&run.name, state.step, total, schedule.progress_every)
    } else {
        Progress::hidden(state.step, total)
    };
    let seconds_before = state.seconds;
    let mut inner = None;
    let mut order = (usize::MAX, Vec::new());
    while state.step < total {
        let step = state.step;
        let epoch = step / schedule.steps_per_epoch;
        if order.0 != epoch {
            order = (epoch, epoch_order(schedule.examples, run.seed, epoch));
        }
        let within = step % schedule.steps_per_epoch;
        // (An epoch of fewer examples than a batch is one smaller batch.)
        let global = &order.1[within * schedule.batch..((within + 1) * schedule.batch).min(schedule.examples)];
        let batch = world.shard(global);
        task.before_step(&mut model, step);
        let started = Instant::now();
        let message = {
            let tape = Tape::new();
            let scope = Scope::new(&tape);
            let Step { loss, message, inner: step_inner } = task.step(&model, &scope, batch, step, &mut state.window);
            let finite = !world.any(!loss.item().is_finite());
            let shown = if finite { loss.item() as f64 } else { f64::NAN };
            if let Err(e) = check_loss(shown, &run.name, step + 1, &path) {
                progress.abandon(format!("stopped: non-finite loss at step {}", step + 1));
                return Err(e);
            }
            // A mean over the shard counts as its share of the mean over the global batch.
            let loss =
                if parallel && schedule.mean_loss { loss * world.loss_weight(global.len()) as f32 } else { loss };
            let mut grads = model.grads(&scope, &[loss]);
            all_reduce_grads(world, &mut grads);
            if let Some(max_norm) = schedule.clip_grad_norm {
                clip_grad_norm(&mut grads, max_norm);
            }
            adam.step(&grads);
            inner = step_inner.or(inner);
            message
        };
        state.train_seconds += started.elapsed().as_secs_f64();
        state.step += 1;
        let step = state.step;
        progress.set(step, &message);
        let validates = schedule.validates_at(step);
        let interrupted = world.any(ctrl_c());
        let saves = validates || step.is_multiple_of(schedule.steps_per_epoch) || step == total || interrupted;
        if parallel && (validates || saves) {
            broadcast_module(world, &model);
        }
        if validates && (root || schedule.split_validation) {
            let clock = Clock {
                step,
                total_steps: total,
                seconds: seconds_before + progress.elapsed(),
                train_seconds: state.train_seconds,
                inner,
                world,
            };
            let validation = task.validate(&model, &state.window, clock);
            state.window = T::Window::default();
            if root {
                progress.println(&task.summary(&validation.point, clock));
                if schedule.snapshots {
                    save_model(&model, &snapshot_path(&run.dir, step))?;
                }
                if let Some(score) = validation.score.filter(|_| schedule.keep_best) {
                    if state.best.is_none_or(|(_, best)| score > best) {
                        state.best = Some((step, score));
                        save_model(&model, &run.dir.join(BEST))?;
                    }
                }
                state.curve.push(validation.point);
            }
        }
        if saves && root {
            state.seconds = seconds_before + progress.elapsed();
            state.save(run, &model, &adam, &path)?;
        }
        if interrupted {
            progress.abandon(format!("interrupted: checkpoint saved at step {step}; rerun with --resume"));
            return Ok(outcome(model, state, true));
        }
    }
    progress.finish();
    world.barrier();
    let outcome = finished(task, model, state)?;
    if parallel {
        // Rank 0 alone knows the best validation point (it alone validates into the curve): every rank goes on
        // with rank 0's model, so that an evaluation split across the ranks tests one model.
        broadcast_module(world, &outcome.model);
    }
    Ok(outcome)
}

/// After rank 0 alone restored `path`: every rank parses the same bytes into its model, optimiser and state.
fn share_resumed_state<T: Task>(
    world: &World,
    path: &Path,
    run: &super::Run,
    model: &T::Model,
    adam: &mut Adam<f32>,
    state: &mut State<T::Point, T::Window>,
) -> Result<()> {
    let resumed = world.any(state.step > 0);
    if !resumed {
        return Ok(());
    }
    let bytes = world.read_on_root(path)?;
    if !world.is_root() {
        *state = State::restore(run, Checkpoint::from_bytes(&bytes, path)?, model, adam)?;
    }
    Ok(())
}

/// The run saved in `task`'s folder, for evaluation without training: its model (the best validation
/// point's, for runs that keep it), curve, steps and seconds. Its configuration must match `task`'s.
pub fn load<T: Task>(task: &T) -> Result<Outcome<T::Model, T::Point>> {
    let run = task.run();
    let model = task.model();
    let mut adam = Adam::new(model.params(), task.optimizer());
    let path = run.dir.join(CHECKPOINT);
    if !path.exists() {
        return Err(format!("{}: no checkpoint to evaluate ({} missing)", run.name, path.display()).into());
    }
    let state = State::restore(run, Checkpoint::load(&path)?, &model, &mut adam)?;
    eprintln!("{}: evaluating {} (step {})", run.name, path.display(), state.step);
    finished(task, model, state)
}

/// A run trained to its end: set for its last step, and the best model in its place for runs that keep it.
fn finished<T: Task>(
    task: &T,
    mut model: T::Model,
    state: State<T::Point, T::Window>,
) -> Result<Outcome<T::Model, T::Point>> {
    let last = state.step.saturating_sub(1);
    if task.schedule().keep_best && state.best.is_some() {
        model = load_model(task, &task.run().dir.join(BEST))?;
    }
    task.before_step(&mut model, last);
    Ok(outcome(model, state, false))
}

fn outcome<M, P, W>(model: M, state: State<P, W>, interrupted: bool) -> Outcome<M, P> {
    Outcome {
        model,
        curve: state.curve,
        steps: state.step,
        seconds: state.seconds,
        train_seconds: state.train_seconds,
        best_step: state.best.map(|(step, _)| step),
        interrupted,
    }
}
