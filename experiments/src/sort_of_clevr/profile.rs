//! Run sizes of the Sort-of-CLEVR experiment. `paper` is the paper's setup (Sec. 3.1); the others shrink it
//! to fit this 2-core machine. The models are always the reference's: only data, budget and the evaluation
//! sets shrink.

use clap::ValueEnum;
use serde::Serialize;

/// The Sort-of-CLEVR run sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize)]
pub enum Profile {
    /// Seconds: a complete run on tiny data, for CI.
    Smoke,
    /// The default: one epoch of 2,000 images.
    #[default]
    Quick,
    /// 3 epochs of 8,000 images (about two hours for both models).
    Standard,
    /// The paper's sizes.
    Paper,
}

/// What a profile sets.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Settings {
    /// Images per split; every image carries 10 relational and 10 non-relational questions.
    pub train_images: usize,
    pub val_images: usize,
    pub test_images: usize,
    /// Questions per step (the reference: 64).
    pub batch: usize,
    pub epochs: usize,
    /// Adam's learning rate (the reference: 1e-4).
    pub lr: f64,
    /// Validation (learning curve, best-model selection) every this many steps and at every epoch's end.
    pub eval_every: usize,
    /// How many seeds `--seeds` defaults to (the paper: 5).
    pub seeds: usize,
    /// Robustness: translated copies of the synthetic configuration, new easy images, rotations of each.
    pub synthetic_positions: usize,
    /// The most candidate configurations scored when choosing the synthetic one (see `synthetic::choose`).
    pub synthetic_candidates: usize,
    pub easy_images: usize,
    pub rotations: usize,
    /// Figure 4: images the decoder is fitted on, its epochs, width and batch.
    pub figure4_images: usize,
    pub figure4_epochs: usize,
    pub figure4_width: usize,
    pub figure4_batch: usize,
}

/// The settings of `profile`.
pub fn settings(profile: Profile) -> Settings {
    match profile {
        Profile::Smoke => Settings {
            train_images: 4,
            val_images: 2,
            test_images: 2,
            batch: 16,
            epochs: 1,
            lr: 1e-4,
            eval_every: 2,
            seeds: 2,
            synthetic_positions: 2,
            synthetic_candidates: 3,
            easy_images: 2,
            rotations: 8,
            figure4_images: 4,
            figure4_epochs: 2,
            figure4_width: 8,
            figure4_batch: 2,
        },
        Profile::Quick => Settings {
            train_images: 2_000,
            val_images: 100,
            test_images: 200,
            batch: 64,
            epochs: 1,
            lr: 1e-4,
            eval_every: 125,
            seeds: 1,
            synthetic_positions: 20,
            synthetic_candidates: 100,
            easy_images: 50,
            rotations: 72,
            figure4_images: 500,
            figure4_epochs: 2,
            figure4_width: 32,
            figure4_batch: 16,
        },
        Profile::Standard => Settings {
            train_images: 8_000,
            val_images: 500,
            test_images: 1_000,
            batch: 64,
            epochs: 3,
            lr: 1e-4,
            eval_every: 500,
            seeds: 1,
            synthetic_positions: 100,
            synthetic_candidates: 1_000,
            easy_images: 100,
            rotations: 720,
            figure4_images: 2_000,
            figure4_epochs: 20,
            figure4_width: 64,
            figure4_batch: 32,
        },
        Profile::Paper => Settings {
            train_images: 100_000,
            val_images: 1_000,
            test_images: 1_000,
            batch: 64,
            epochs: 50,
            lr: 1e-4,
            eval_every: 31_250,
            seeds: 5,
            synthetic_positions: 200,
            synthetic_candidates: 1_000,
            easy_images: 1_000,
            rotations: 720,
            figure4_images: 10_000,
            figure4_epochs: 50,
            figure4_width: 256,
            figure4_batch: 64,
        },
    }
}

impl Settings {
    /// Questions per image in every split.
    pub const QUESTIONS_PER_IMAGE: usize = 20;

    pub fn steps_per_epoch(&self) -> usize {
        (self.train_images * Self::QUESTIONS_PER_IMAGE / self.batch).max(1)
    }

    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.epochs
    }

    /// Whether validation runs after `step` steps.
    pub fn evaluates_at(&self, step: usize) -> bool {
        step.is_multiple_of(self.eval_every)
            || step.is_multiple_of(self.steps_per_epoch())
            || step == self.total_steps()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_evaluates_at_its_last_step_and_epochs_are_whole() {
        for p in [Profile::Smoke, Profile::Quick, Profile::Standard, Profile::Paper] {
            let s = settings(p);
            assert!(s.evaluates_at(s.total_steps()), "{p:?}");
            assert!(s.steps_per_epoch() * s.batch <= s.train_images * Settings::QUESTIONS_PER_IMAGE, "{p:?}");
            assert!(s.rotations > 0 && s.seeds > 0, "{p:?}");
        }
    }
}
