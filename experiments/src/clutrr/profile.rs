//! Run sizes of the CLUTRR experiment. `paper` is the paper's and the CLUTRR baselines' setup (Sec. 3.3: Adam
//! 1e-3, batch 16, gradient clipping 1, 50 epochs, 5 seeds); the others shrink it to fit this 2-core machine.
//! Only `smoke` shrinks the models; the others train the paper's widths on fewer stories or epochs.

use clap::ValueEnum;
use serde::Serialize;

/// The CLUTRR run sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Seconds in a debug build: tiny models on a few generated stories, for CI.
    Smoke,
    /// The default: a few minutes for the three models, 3,000 training stories, 2 epochs.
    #[default]
    Quick,
    /// About two hours for the three models: all released stories, 15 epochs, 1 seed. Sized by the step times
    /// measured with `quick` on this machine's 2-core Intel Xeon (KVM, AVX-512), release build, another
    /// training on the other core: RN 0.065 s, RN + SRN 0.093 s, RN + GRN 0.28 s per step of 16 stories, so
    /// an epoch (942 steps) of the three takes about 7 minutes; the 1,048 released test stories add seconds.
    Standard,
    /// The paper's: all 15,083 released training stories, 50 epochs, 5 seeds.
    Paper,
}

/// What a profile sets.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Settings {
    /// Training stories: generated, or the first of the released ones after a shuffle by the data seed
    /// (`None`: all of them).
    pub train_stories: Option<usize>,
    /// Test stories per k = 2..10: generated, or the first of each released test file after a shuffle
    /// (`None`: all of them).
    pub test_stories: Option<usize>,
    /// Stories per step (the baselines': 16).
    pub batch: usize,
    pub epochs: usize,
    /// Adam's learning rate (the baselines': 1e-3).
    pub lr: f64,
    /// How many seeds `--seeds` defaults to (the paper: 5).
    pub seeds: usize,
    /// Tiny widths (smoke only) instead of the paper's.
    pub tiny_model: bool,
    /// Also validate every this many steps (besides every epoch's end); 0: only at epoch ends.
    pub validate_every: usize,
}

/// Test stories are evaluated in batches of this many.
pub const EVAL_BATCH: usize = 64;

/// The settings of `profile`.
pub fn settings(profile: Profile) -> Settings {
    match profile {
        Profile::Smoke => Settings {
            train_stories: Some(12),
            test_stories: Some(3),
            batch: 4,
            epochs: 2,
            lr: 1e-3,
            seeds: 2,
            tiny_model: true,
            validate_every: 2,
        },
        Profile::Quick => Settings {
            train_stories: Some(3_000),
            test_stories: Some(200),
            batch: 16,
            epochs: 2,
            lr: 1e-3,
            seeds: 1,
            tiny_model: false,
            validate_every: 0,
        },
        Profile::Standard => Settings {
            train_stories: None,
            test_stories: None,
            batch: 16,
            epochs: 15,
            lr: 1e-3,
            seeds: 1,
            tiny_model: false,
            validate_every: 0,
        },
        Profile::Paper => Settings {
            train_stories: None,
            test_stories: None,
            batch: 16,
            epochs: 50,
            lr: 1e-3,
            seeds: 5,
            tiny_model: false,
            validate_every: 0,
        },
    }
}

impl Settings {
    /// Steps per epoch on `examples` training stories (a last partial batch is dropped, at least one step).
    pub fn steps_per_epoch(&self, examples: usize) -> usize {
        (examples / self.batch).max(1)
    }
}
