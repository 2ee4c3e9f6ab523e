//! The progress of a long run (a bar with ETA on a terminal, plain lines with ETA in a log file), the epoch
//! order, and the Ctrl-C flag that asks the training loop to save a checkpoint and stop.

use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Set by the Ctrl-C (and SIGTERM) handler: training loops save a checkpoint after the current step and stop.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C was pressed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// After a model finished training, a Ctrl-C (or SIGTERM) stops the remaining work (the next model's
/// training, the figures, the tables) instead of being ignored: an error saying what is saved and how to
/// finish.
pub fn stop_if_interrupted(after: &str) -> crate::Result<()> {
    if interrupted() {
        return Err(format!(
            "interrupted after {after} finished training: its checkpoint is saved; rerun with --resume to write \
             the rest (finished models are not trained again)"
        )
        .into());
    }
    Ok(())
}

/// A run's progress over `total` steps, resumed at `start`.
pub struct Progress {
    bar: ProgressBar,
    name: String,
    total: usize,
    start: usize,
    started: Instant,
    /// Without a terminal, a plain line every this many steps.
    every: usize,
    /// Print nothing (the ranks other than 0 of a data-parallel run).
    silent: bool,
}

impl Progress {
    pub fn new(name: &str, start: usize, total: usize, every: usize) -> Self {
        let bar = ProgressBar::new(total as u64).with_position(start as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_prefix(name.to_string());
        Progress {
            bar,
            name: name.to_string(),
            total,
            start,
            started: Instant::now(),
            every: every.max(1),
            silent: false,
        }
    }

    /// A progress that prints nothing but keeps the clock (the ranks other than 0 of a data-parallel run).
    pub fn hidden(start: usize, total: usize) -> Self {
        let bar = ProgressBar::hidden();
        Progress { bar, name: String::new(), total, start, started: Instant::now(), every: usize::MAX, silent: true }
    }

    /// Seconds since this process started the run.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// `step` steps are done; `message` is a short status such as the loss.
    pub fn set(&self, step: usize, message: &str) {
        self.bar.set_position(step as u64);
        self.bar.set_message(message.to_string());
        if self.bar.is_hidden() && !self.silent && step.is_multiple_of(self.every) && step > self.start {
            let per_step = self.elapsed() / (step - self.start) as f64;
            eprintln!(
                "{} step {step}/{}: {message}, {per_step:.2} s/step, ETA {:.0} s",
                self.name,
                self.total,
                per_step * (self.total - step) as f64
            );
        }
    }

    /// Print a line without breaking the bar.
    pub fn println(&self, line: &str) {
        if self.silent {
            return;
        }
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// The run stopped early: leave the bar with a message.
    pub fn abandon(&self, message: String) {
        self.bar.abandon_with_message(message);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The training order of `epoch`: a permutation drawn from the seed and the epoch alone.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(epoch as u64)));
    order
}

// JSON has no NaN: serde_json writes it as null, and these read null back as NaN.
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

pub fn nan_if_null_vec<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_orders_are_permutations_fixed_by_seed_and_epoch() {
        let a = epoch_order(50, 1, 0);
        assert_eq!(a, epoch_order(50, 1, 0));
        assert_ne!(a, epoch_order(50, 1, 1));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    }
}
