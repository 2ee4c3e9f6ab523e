//! Training one Circles model: batches, Adam, a learning curve, checkpoints every epoch (and on Ctrl-C), and
//! exact resumption (the data and every epoch's order are functions of the seed).

use super::data::Circles;
use super::metrics::{objects_in, Decomposition};
use super::model::{CirclesModel, ModelConfig};
use super::profile::Settings;
use crate::resume::{check_loss, checkpoint_to_resume, meta_json, RunConfig};
use crate::training::{epoch_order, interrupted as ctrl_c, Progress};
use crate::Result;
use autograd::Tape;
use models::{Adam, AdamConfig, Checkpoint, Module, Optimizer, Scope};
use ndarray::ArrayD;
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One model's run.
pub struct RunSpec {
    /// "baseline" or "srn" (or an ablation's name): also the run's folder name.
    pub name: String,
    pub settings: Settings,
    pub model: ModelConfig,
    pub seed: u64,
    pub dir: PathBuf,
    /// What defines the run, stored in its checkpoints and checked on a resume.
    pub config: RunConfig,
}

/// One point of the learning curve.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: usize,
    pub seconds: f64,
    /// Mean training loss (squared error per image) since the previous point.
    pub train_error: f64,
    /// Squared error per image on the fixed evaluation subset.
    pub test_error: f64,
    /// % decomposed on the subset by number of circles 0..=10 (NaN where the subset has none).
    #[serde(deserialize_with = "crate::training::nan_if_null_vec")]
    pub decomposed: Vec<f64>,
    /// % decomposed over all subset images.
    pub decomposed_all: f64,
    /// The SRN's inner loss (per image) at the first and last inner step of the last training batch (NaN for
    /// the baseline).
    #[serde(deserialize_with = "crate::training::nan_if_null")]
    pub inner_first: f64,
    #[serde(deserialize_with = "crate::training::nan_if_null")]
    pub inner_last: f64,
}

impl CurvePoint {
    /// One progress line: errors, % decomposed at 1 to 3 circles and, for a model with an inner loop, the
    /// inner loss at its first and last step.
    pub fn summary(&self, name: &str, total: usize) -> String {
        let inner = if self.inner_first.is_nan() {
            String::new()
        } else {
            format!(", inner {:.2} -> {:.2}", self.inner_first, self.inner_last)
        };
        let rate = |c: usize| self.decomposed.get(c).copied().unwrap_or(f64::NAN);
        format!(
            "{name} step {}/{total}: train {:.1}, test {:.1} per image, decomposed 1/2/3 circles {:.0}/{:.0}/{:.0}%{inner}, {:.0}s",
            self.step,
            self.train_error,
            self.test_error,
            rate(1),
            rate(2),
            rate(3),
            self.seconds
        )
    }
}

/// How a run ended.
pub struct Outcome {
    pub model: CirclesModel,
    pub curve: Vec<CurvePoint>,
    pub steps: usize,
    pub seconds: f64,
    pub interrupted: bool,
}

const CHECKPOINT: &str = "checkpoint.safetensors";

/// Images `indices` of `data` as a `[len, 3, side, side]` array.
pub fn batch(data: &Circles, indices: &[usize]) -> ArrayD<f32> {
    let side = data.scene.side;
    let mut v = Vec::with_capacity(indices.len() * data.scene.image_len());
    for &i in indices {
        v.extend_from_slice(data.image(i));
    }
    ArrayD::from_shape_vec(vec![indices.len(), 3, side, side], v).expect("image batch")
}

/// What one evaluated image gave: its reconstruction, the decoded elements and the counts.
pub struct Evaluated {
    pub reconstruction: Vec<f32>,
    pub elements: Vec<f32>,
    pub objects: usize,
}

/// Evaluate `model` (eval mode, no outer graph) on `indices` of `data`; `keep` asks for every image's
/// reconstruction and elements (for figures).
pub fn evaluate(
    model: &CirclesModel,
    data: &Circles,
    indices: &[usize],
    batch_size: usize,
    keep: bool,
) -> (Decomposition, Vec<Evaluated>) {
    let mut stats = Decomposition::default();
    let mut kept = Vec::new();
    let len = data.scene.image_len();
    for chunk in indices.chunks(batch_size) {
        let (image, elements) = models::evaluate(model, |scope| {
            let out = model.forward(scope, scope.tape().constant(batch(data, chunk)));
            (out.decoded.image.value(), out.decoded.elements.value())
        });
        let n = elements.shape()[1];
        for (j, &i) in chunk.iter().enumerate() {
            let rec = &image.as_slice().expect("contiguous")[j * len..(j + 1) * len];
            let els = &elements.as_slice().expect("contiguous")[j * n * len..(j + 1) * n * len];
            let err: f64 = rec.iter().zip(data.image(i)).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
            let objects = objects_in(els, len);
            stats.add(data.circles[i].len(), objects, err);
            if keep {
                kept.push(Evaluated { reconstruction: rec.to_vec(), elements: els.to_vec(), objects });
            }
        }
    }
    (stats, kept)
}

/// r as it is at training step `step` (counted from 0): doubled from the profile's epoch on, if it says so.
fn set_inner_steps(model: &mut CirclesModel, settings: &Settings, step: usize) {
    if let Some(srn) = &mut model.srn {
        srn.config.steps = settings.inner_steps_at(step / settings.steps_per_epoch());
    }
}

/// What a checkpoint holds besides the weights and the optimiser state it loads into `model` and `adam`.
struct Saved {
    step: usize,
    seconds: f64,
    curve: Vec<CurvePoint>,
    /// The training loss summed since the last curve point, and over how many steps.
    window: (f64, usize),
}

/// Load `ck` (made by `spec`'s run: its configuration is checked) into `model` and `adam`.
fn restore(spec: &RunSpec, mut ck: Checkpoint, model: &CirclesModel, adam: &mut Adam<f32>) -> Result<Saved> {
    spec.config.check(&ck)?;
    ck.load_module("model", model)?;
    ck.load_optimizer("adam", adam)?;
    let saved = Saved {
        step: ck.take_count("step")? as usize,
        seconds: ck.meta_parsed("seconds")?.unwrap_or(0.0),
        curve: meta_json(&ck, "curve")?.unwrap_or_default(),
        window: meta_json(&ck, "window")?.unwrap_or((0.0, 0)),
    };
    ck.finish()?;
    Ok(saved)
}

/// The model saved in `spec`'s folder, with its curve, steps and seconds, for evaluation without training.
pub fn load(spec: &RunSpec) -> Result<Outcome> {
    let mut model = CirclesModel::new(&spec.model, &mut StdRng::seed_from_u64(spec.seed));
    let mut adam = Adam::new(model.params(), AdamConfig { lr: spec.settings.lr, ..AdamConfig::default() });
    let path = spec.dir.join(CHECKPOINT);
    if !path.exists() {
        return Err(format!("{}: no checkpoint to evaluate ({} missing)", spec.name, path.display()).into());
    }
    let saved = restore(spec, Checkpoint::load(&path)?, &model, &mut adam)?;
    let (steps, seconds, curve) = (saved.step, saved.seconds, saved.curve);
    set_inner_steps(&mut model, &spec.settings, steps.saturating_sub(1));
    eprintln!("{}: evaluating {} (step {steps})", spec.name, path.display());
    Ok(Outcome { model, curve, steps, seconds, interrupted: false })
}

/// Train (or resume) the run described by `spec` on `train`, drawing the learning curve on `test`.
pub fn train(spec: &RunSpec, train: &Circles, test: &Circles, resume: bool) -> Result<Outcome> {
    let s = &spec.settings;
    let mut model = CirclesModel::new(&spec.model, &mut StdRng::seed_from_u64(spec.seed));
    let adam_config = AdamConfig { lr: s.lr, ..AdamConfig::default() };
    let mut adam = Adam::new(model.params(), adam_config);
    let path = spec.dir.join(CHECKPOINT);
    let (mut step, mut seconds, mut curve) = (0usize, 0.0f64, Vec::<CurvePoint>::new());
    // The training loss since the last curve point, so that the first point after a resume averages the
    // same steps as an uninterrupted run's.
    let (mut window_loss, mut window_steps) = (0.0f64, 0usize);
    crate::files::clean_orphans(&spec.dir)?;
    if let Some(ck) = checkpoint_to_resume(&path, resume, &spec.name)? {
        let saved = restore(spec, ck, &model, &mut adam)?;
        (step, seconds, curve, (window_loss, window_steps)) = (saved.step, saved.seconds, saved.curve, saved.window);
        eprintln!("{}: resumed from {} at step {step}", spec.name, path.display());
    }
    std::fs::create_dir_all(&spec.dir).map_err(|e| format!("cannot create {}: {e}", spec.dir.display()))?;
    let save = |model: &CirclesModel,
                adam: &Adam<f32>,
                step: usize,
                seconds: f64,
                curve: &[CurvePoint],
                window: (f64, usize)|
     -> Result<()> {
        let mut ck = Checkpoint::new();
        ck.put_module("model", model);
        ck.put_optimizer("adam", adam);
        ck.put_count("step", step as u64);
        ck.set_meta("seconds", &seconds.to_string());
        ck.set_meta("curve", &serde_json::to_string(curve)?);
        ck.set_meta("window", &serde_json::to_string(&window)?);
        ck.set_meta("run", &spec.name);
        spec.config.store(&mut ck);
        ck.save(&path)?;
        Ok(())
    };

    let total = s.total_steps();
    let eval_subset: Vec<usize> = (0..s.eval_images.min(test.len())).collect();
    let progress = Progress::new(&spec.name, step, total, 10);
    let mut inner = (f64::NAN, f64::NAN);
    let mut interrupted = false;
    let seconds_before = seconds;
    while step < total {
        let epoch = step / s.steps_per_epoch();
        set_inner_steps(&mut model, s, step);
        let order = epoch_order(train.len(), spec.seed, epoch);
        let within = step % s.steps_per_epoch();
        let indices = &order[within * s.batch..(within + 1) * s.batch];
        let tape = Tape::new();
        let scope = Scope::new(&tape);
        let x = tape.constant(batch(train, indices));
        let out = model.forward(&scope, x);
        let loss = (out.decoded.image - x).square().sum();
        if let Err(e) = check_loss(loss.item() as f64, &spec.name, step + 1, &path) {
            progress.abandon(format!("stopped: non-finite loss at step {}", step + 1));
            return Err(e);
        }
        let grads = model.grads(&scope, &[loss]);
        adam.step(&grads);
        drop(scope);
        step += 1;
        let per_image = loss.item() as f64 / s.batch as f64;
        window_loss += per_image;
        window_steps += 1;
        if let (Some(first), Some(last)) = (out.inner_losses.first(), out.inner_losses.last()) {
            inner = (*first as f64 / s.batch as f64, *last as f64 / s.batch as f64);
        }
        progress.set(step, &format!("loss {per_image:.1} per image"));
        let epoch_done = step % s.steps_per_epoch() == 0;
        if step % s.eval_every == 0 || step == total {
            let (stats, _) = evaluate(&model, test, &eval_subset, s.batch, false);
            let point = CurvePoint {
                step,
                seconds: seconds_before + progress.elapsed(),
                train_error: window_loss / window_steps.max(1) as f64,
                test_error: stats.error_per_image(),
                decomposed: (0..stats.images.len()).map(|c| stats.rate(c).unwrap_or(f64::NAN)).collect(),
                decomposed_all: 100.0 * stats.decomposed.iter().sum::<usize>() as f64
                    / stats.total_images().max(1) as f64,
                inner_first: inner.0,
                inner_last: inner.1,
            };
            progress.println(&point.summary(&spec.name, total));
            curve.push(point);
            window_loss = 0.0;
            window_steps = 0;
        }
        interrupted = ctrl_c();
        if epoch_done || step == total || interrupted {
            seconds = seconds_before + progress.elapsed();
            save(&model, &adam, step, seconds, &curve, (window_loss, window_steps))?;
        }
        if interrupted {
            progress.abandon(format!("interrupted: checkpoint saved at step {step}; rerun with --resume"));
            return Ok(Outcome { model, curve, steps: step, seconds, interrupted });
        }
    }
    // Evaluated with the r of the last step trained, also when a finished run was only resumed.
    set_inner_steps(&mut model, s, step.saturating_sub(1));
    progress.finish();
    Ok(Outcome { model, curve, steps: step, seconds, interrupted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curve_with_nan_survives_the_checkpoint_round_trip() {
        let p = CurvePoint {
            step: 3,
            seconds: 1.5,
            train_error: 10.0,
            test_error: 9.0,
            decomposed: vec![100.0, f64::NAN, 50.0],
            decomposed_all: 75.0,
            inner_first: f64::NAN,
            inner_last: f64::NAN,
        };
        let back: Vec<CurvePoint> = serde_json::from_str(&serde_json::to_string(&[p]).unwrap()).unwrap();
        assert_eq!(back[0].decomposed[0], 100.0);
        assert!(back[0].decomposed[1].is_nan() && back[0].inner_first.is_nan() && back[0].inner_last.is_nan());
        assert_eq!(back[0].step, 3);
    }

    #[test]
    fn a_learning_curve_survives_the_checkpoint_round_trip_bit_for_bit() {
        use rand::Rng;
        let mut rng = StdRng::seed_from_u64(5);
        // Floats of every magnitude, the ones a parser without exact rounding gets wrong by an ulp.
        let mut x = || f64::from_bits(rng.gen::<u64>() >> 2 | 0x0010_0000_0000_0000);
        let curve: Vec<CurvePoint> = (0..2000)
            .map(|step| CurvePoint {
                step,
                seconds: x(),
                train_error: x(),
                test_error: x(),
                decomposed: vec![x(), f64::NAN, x()],
                decomposed_all: x(),
                inner_first: x(),
                inner_last: f64::NAN,
            })
            .collect();
        let mut ck = Checkpoint::new();
        ck.set_meta("curve", &serde_json::to_string(&curve).unwrap());
        let ck = Checkpoint::from_bytes(&ck.to_bytes().unwrap(), std::path::Path::new("ck")).unwrap();
        let back: Vec<CurvePoint> = meta_json(&ck, "curve").unwrap().unwrap();
        let bits = |c: &[CurvePoint]| -> Vec<u64> {
            c.iter()
                .flat_map(|p| {
                    [p.seconds, p.train_error, p.test_error, p.decomposed_all, p.inner_first, p.inner_last]
                        .into_iter()
                        .chain(p.decomposed.iter().copied())
                        .map(|v| if v.is_nan() { u64::MAX } else { v.to_bits() })
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        assert_eq!(bits(&back), bits(&curve));
    }

    #[test]
    fn a_model_without_an_inner_loop_prints_no_inner_loss() {
        let mut p = CurvePoint {
            step: 3,
            seconds: 1.5,
            train_error: 10.0,
            test_error: 9.0,
            decomposed: vec![100.0, 50.0, 25.0, 0.0],
            decomposed_all: 75.0,
            inner_first: f64::NAN,
            inner_last: f64::NAN,
        };
        let line = p.summary("baseline", 10);
        assert!(!line.contains("inner") && !line.contains("NaN"), "{line}");
        (p.inner_first, p.inner_last) = (2.0, 1.0);
        assert!(p.summary("srn", 10).contains("inner 2.00 -> 1.00"));
    }
}
