//! Run sizes of the C-SWM experiment. `paper` is the reference's setup (C-SWM's `train.py` as its README runs
//! it: batch 1024, Adam 5e-4, hidden 512; 100 epochs on the 2-D shapes, 200 on Atari; shapes data 1,000
//! training episodes of 100 steps and 10,000 evaluation episodes of 10 steps). The others shrink the data,
//! the budget and (smoke, quick) the MLP widths to fit a 2-core machine. The Atari games always use the
//! episodes their files hold (`tools/atari/collect.sh`); the profile's episode counts apply to shapes only.

use clap::ValueEnum;
use serde::Serialize;

/// The C-SWM run sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize)]
pub enum Profile {
    /// Seconds: a complete run on a handful of shapes episodes with tiny widths, for CI.
    Smoke,
    /// The default: 100 shapes episodes, 2 epochs, width 64 (not timed yet).
    #[default]
    Quick,
    /// The paper's data and widths: on shapes 10 epochs (about 35 minutes for both models); on Atari batch
    /// 256 and 25 epochs (both models at K = 3 and 5 in about two hours a game).
    Standard,
    /// The reference's sizes.
    Paper,
}

/// What a profile sets.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Settings {
    /// Shapes only: training episodes and their transitions each.
    pub train_episodes: usize,
    pub train_steps: usize,
    /// Shapes only: evaluation episodes and their length (at least 10, the longest horizon).
    pub eval_episodes: usize,
    pub eval_steps: usize,
    /// Transitions per step (the reference: 1024).
    pub batch: usize,
    pub epochs: usize,
    /// Adam's learning rate (the reference: 5e-4).
    pub lr: f64,
    /// H, the width of the encoder and transition MLPs (the reference: 512).
    pub hidden: usize,
    /// The extractor's hidden channels (the reference: 32).
    pub extractor_width: usize,
    /// SRN only: |z| and H_agg's width (ours: 64 and 128).
    pub z_dim: usize,
    pub hagg_width: usize,
    /// Validation (the ranking metrics) every this many steps and at every epoch's end.
    pub eval_every: usize,
    /// How many seeds `--seeds` defaults to.
    pub seeds: usize,
    /// Episodes encoded at once in evaluation.
    pub eval_batch: usize,
}

/// The settings of `profile`; `atari` selects the reference's Atari budget (200 epochs) for `paper`.
pub fn settings(profile: Profile, atari: bool) -> Settings {
    let paper = Settings {
        train_episodes: 1_000,
        train_steps: 100,
        eval_episodes: 10_000,
        eval_steps: 10,
        batch: 1024,
        epochs: if atari { 200 } else { 100 },
        lr: 5e-4,
        hidden: 512,
        extractor_width: 32,
        z_dim: 64,
        hagg_width: 128,
        eval_every: 10_000,
        seeds: 5,
        eval_batch: 100,
    };
    match profile {
        Profile::Smoke => Settings {
            train_episodes: 4,
            train_steps: 4,
            eval_episodes: 6,
            eval_steps: 10,
            batch: 8,
            epochs: 1,
            hidden: 8,
            extractor_width: 4,
            z_dim: 4,
            hagg_width: 8,
            eval_every: 1,
            seeds: 2,
            eval_batch: 6,
            ..paper
        },
        Profile::Quick => Settings {
            train_episodes: 100,
            train_steps: 100,
            eval_episodes: 200,
            batch: 256,
            epochs: 2,
            hidden: 64,
            z_dim: 32,
            hagg_width: 64,
            eval_every: 20,
            seeds: 1,
            ..paper
        },
        // Sized by `examples/cswm_step_cost` (BENCHMARKS.md): on Atari both models at K = 3 and 5 fit about two
        // hours of 2 cores for one game; on shapes both models take about 35 minutes.
        Profile::Standard if atari => Settings { batch: 256, epochs: 25, eval_every: 10_000, seeds: 1, ..paper },
        Profile::Standard => Settings { eval_episodes: 1_000, epochs: 10, eval_every: 50, seeds: 1, ..paper },
        Profile::Paper => paper,
    }
}

impl Settings {
    /// Steps per epoch over `transitions` training transitions (a last partial batch is dropped).
    pub fn steps_per_epoch(&self, transitions: usize) -> usize {
        (transitions / self.batch).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_reaches_the_longest_horizon() {
        for p in [Profile::Smoke, Profile::Quick, Profile::Standard, Profile::Paper] {
            for atari in [false, true] {
                let s = settings(p, atari);
                assert!(s.eval_steps >= 10 && s.seeds > 0 && s.batch > 0, "{p:?}");
            }
        }
        assert_eq!(settings(Profile::Paper, true).epochs, 200);
        assert_eq!(settings(Profile::Paper, false).epochs, 100);
    }
}
