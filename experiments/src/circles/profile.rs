//! Run sizes. `paper` is the released code's setup; the others shrink it to fit this 2-core machine.

use super::data::Scene;
use super::model::SET_SIZE;
use clap::ValueEnum;
use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize)]
pub enum Profile {
    /// Seconds: a complete run on tiny widths and data, for CI.
    Smoke,
    /// The default: the first 6,000 steps of `small` for both models (about 15 minutes on 2 cores), then the
    /// committed `small` run's Table 1.
    #[default]
    Quick,
    /// The run whose numbers stand beside the paper's (about two hours for both models, resumable).
    Standard,
    /// 32 x 32 images with 0 to 5 circles, 8 set elements, narrow layers: the released code's step count
    /// (100,000 steps of each model) in about four hours of this machine, resumable.
    Small,
    /// The released code's widths and data sizes, for bigger machines.
    Paper,
}

/// What a profile sets.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Settings {
    /// Image side and circle bounds.
    pub scene: Scene,
    /// Set elements n (paper 16).
    pub set_size: usize,
    pub train_images: usize,
    pub test_images: usize,
    pub batch: usize,
    pub epochs: usize,
    /// Encoder base width (paper 64).
    pub encoder_width: usize,
    /// Decoder input width (paper 1024).
    pub decoder_width: usize,
    /// H_agg hidden width (paper 512).
    pub hagg_width: usize,
    /// Inner steps r, and from which epoch r doubles (the released code: 10, then 20 from epoch 20).
    pub inner_steps: usize,
    pub double_steps_from_epoch: Option<usize>,
    pub lr: f64,
    /// Learning-curve evaluation every this many steps, on this many test images.
    pub eval_every: usize,
    pub eval_images: usize,
    /// Figure 3's grid: one-circle images at `tsne_grid x tsne_grid` positions per colour.
    pub tsne_grid: usize,
}

impl Profile {
    pub fn settings(self) -> Settings {
        match self {
            Profile::Smoke => Settings {
                scene: Scene::PAPER,
                set_size: SET_SIZE,
                train_images: 48,
                test_images: 24,
                batch: 8,
                epochs: 1,
                encoder_width: 8,
                decoder_width: 16,
                hagg_width: 16,
                inner_steps: 2,
                double_steps_from_epoch: None,
                lr: 3e-4,
                eval_every: 3,
                eval_images: 16,
                tsne_grid: 4,
            },
            // The first 6,000 steps of `small`, its curve drawn twice as often: the same data, widths and seed,
            // so the same models up to rounding.
            Profile::Quick => Settings { epochs: 6, eval_every: 500, ..Profile::Small.settings() },
            Profile::Standard => Settings {
                scene: Scene::PAPER,
                set_size: SET_SIZE,
                train_images: 16_000,
                test_images: 1_000,
                batch: 64,
                epochs: 3,
                encoder_width: 32,
                decoder_width: 256,
                hagg_width: 512,
                inner_steps: 10,
                double_steps_from_epoch: None,
                lr: 3e-4,
                eval_every: 50,
                eval_images: 256,
                tsne_grid: 12,
            },
            Profile::Small => Settings {
                scene: Scene::SMALL,
                set_size: 8,
                train_images: 32_000,
                test_images: 2_000,
                batch: 32,
                epochs: 100,
                encoder_width: 16,
                decoder_width: 64,
                hagg_width: 128,
                inner_steps: 10,
                double_steps_from_epoch: Some(20),
                lr: 3e-4,
                eval_every: 1_000,
                eval_images: 1_000,
                tsne_grid: 12,
            },
            Profile::Paper => Settings {
                scene: Scene::PAPER,
                set_size: SET_SIZE,
                train_images: 64_000,
                test_images: 4_000,
                batch: 64,
                epochs: 100,
                encoder_width: 64,
                decoder_width: 1024,
                hagg_width: 512,
                inner_steps: 10,
                double_steps_from_epoch: Some(20),
                lr: 3e-4,
                eval_every: 500,
                eval_images: 512,
                tsne_grid: 15,
            },
        }
    }
}

impl Settings {
    pub fn steps_per_epoch(&self) -> usize {
        self.train_images / self.batch
    }

    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.epochs
    }

    /// r at `epoch`.
    pub fn inner_steps_at(&self, epoch: usize) -> usize {
        match self.double_steps_from_epoch {
            Some(e) if epoch >= e => 2 * self.inner_steps,
            _ => self.inner_steps,
        }
    }
}
