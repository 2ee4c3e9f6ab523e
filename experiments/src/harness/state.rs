//! What a checkpoint holds besides the model and the optimiser: the step, the clock, the learning curve, the
//! loss window and the best validation point. Written by [`State::save`], read back by [`State::restore`],
//! which also reads the checkpoints of the experiments' training loops before the harness (Circles stored the
//! wall clock as `seconds`, Sort-of-CLEVR the training time as `train_seconds`).

use super::resume::meta_json;
use super::Run;
use crate::Result;
use models::{Adam, Checkpoint, Module};
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

pub(super) struct State<P, W> {
    pub step: usize,
    pub seconds: f64,
    pub train_seconds: f64,
    pub curve: Vec<P>,
    pub window: W,
    /// The step and score of the best validation so far.
    pub best: Option<(usize, f64)>,
}

impl<P: Serialize + DeserializeOwned, W: Default + Serialize + DeserializeOwned> State<P, W> {
    pub fn fresh() -> Self {
        State { step: 0, seconds: 0.0, train_seconds: 0.0, curve: Vec::new(), window: W::default(), best: None }
    }

    /// Write `model`, `adam` and this state to `path`, with the run's name and configuration.
    pub fn save(&self, run: &Run, model: &impl Module<f32>, adam: &Adam<f32>, path: &Path) -> Result<()> {
        let mut ck = Checkpoint::new();
        ck.put_module("model", model);
        ck.put_optimizer("adam", adam);
        ck.put_count("step", self.step as u64);
        ck.set_meta("seconds", &self.seconds.to_string());
        ck.set_meta("train_seconds", &self.train_seconds.to_string());
        ck.set_meta("curve", &serde_json::to_string(&self.curve)?);
        ck.set_meta("window", &serde_json::to_string(&self.window)?);
        ck.set_meta("best", &serde_json::to_string(&self.best)?);
        ck.set_meta("run", &run.name);
        run.config.store(&mut ck);
        ck.save(path)?;
        Ok(())
    }

    /// Load `ck` (made by `run`: its configuration is checked) into `model` and `adam`.
    pub fn restore(run: &Run, mut ck: Checkpoint, model: &impl Module<f32>, adam: &mut Adam<f32>) -> Result<Self> {
        run.config.check(&ck)?;
        ck.load_module("model", model)?;
        ck.load_optimizer("adam", adam)?;
        let seconds: Option<f64> = ck.meta_parsed("seconds")?;
        let train_seconds: Option<f64> = ck.meta_parsed("train_seconds")?;
        let state = State {
            step: ck.take_count("step")? as usize,
            seconds: seconds.or(train_seconds).unwrap_or(0.0),
            train_seconds: train_seconds.or(seconds).unwrap_or(0.0),
            curve: meta_json(&ck, "curve")?.unwrap_or_default(),
            window: meta_json(&ck, "window")?.unwrap_or_default(),
            best: meta_json::<Option<(usize, f64)>>(&ck, "best")?.flatten(),
        };
        ck.finish()?;
        Ok(state)
    }
}
