//! Training one Circles model on the shared harness: batches of images, the squared reconstruction error
//! (a sum over the batch, as the released code), the learning curve on a fixed test subset, and r doubled from
//! the profile's epoch on. The data and every epoch's order are functions of the seeds, so a resumed run is
//! exact.

use super::data::Circles;
use super::metrics::{objects_in, Decomposition, OBJECT_THRESHOLD};
use super::model::{CirclesModel, ModelConfig};
use super::profile::Settings;
use crate::harness::{Clock, Run, Schedule, Step, Task, Validation};
use crate::report::csv::Cell;
use autograd::Float;
use models::{AdamConfig, Scope};
use ndarray::ArrayD;
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One Circles model's run on `train`, its curve drawn on the first `settings.eval_images` of `test`.
pub struct CirclesTask<'d> {
    pub run: Run,
    pub settings: Settings,
    pub model: ModelConfig,
    pub train: &'d Circles,
    pub test: &'d Circles,
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
    #[serde(deserialize_with = "crate::harness::progress::nan_if_null_vec")]
    pub decomposed: Vec<f64>,
    /// % decomposed over all subset images.
    pub decomposed_all: f64,
    /// The SRN's inner loss (per image) at the first and last inner step of the last training batch (NaN for
    /// the baseline).
    #[serde(deserialize_with = "crate::harness::progress::nan_if_null")]
    pub inner_first: f64,
    #[serde(deserialize_with = "crate::harness::progress::nan_if_null")]
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

/// Evaluate `model` (eval mode, no outer graph) on `indices` of `data`, an element holding an object above
/// `threshold`; `keep` asks for every image's reconstruction and elements (for figures).
pub fn evaluate(
    model: &CirclesModel,
    data: &Circles,
    indices: &[usize],
    batch_size: usize,
    threshold: f32,
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
            let objects = objects_in(els, len, threshold);
            stats.add(data.circles[i].len(), objects, err);
            if keep {
                kept.push(Evaluated { reconstruction: rec.to_vec(), elements: els.to_vec(), objects });
            }
        }
    }
    (stats, kept)
}

/// The training loss per image summed since the last curve point, and over how many steps.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct LossWindow(f64, usize);

impl crate::harness::report::CurveRow for CurvePoint {
    fn header() -> Vec<String> {
        let mut h: Vec<String> =
            ["step", "seconds", "train_error", "test_error", "decomposed_all", "inner_first", "inner_last"]
                .map(String::from)
                .to_vec();
        h.extend((0..=10).map(|c| format!("decomposed_{c}")));
        h
    }

    fn cells(&self) -> Vec<Cell> {
        let mut row: Vec<Cell> = [
            self.step as f64,
            self.seconds,
            self.train_error,
            self.test_error,
            self.decomposed_all,
            self.inner_first,
            self.inner_last,
        ]
        .map(Cell::from)
        .to_vec();
        row.extend(self.decomposed.iter().map(|&d| Cell::from(d)));
        row
    }
}

impl Task for CirclesTask<'_> {
    type Model = CirclesModel;
    type Point = CurvePoint;
    type Window = LossWindow;

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
            validate_at_epoch_end: false,
            progress_every: 10,
            keep_best: false,
            snapshots: false,
            clip_grad_norm: None,
            split_validation: true,
            mean_loss: false,
        }
    }

    fn model(&self) -> CirclesModel {
        CirclesModel::new(&self.model, &mut StdRng::seed_from_u64(self.run.seed))
    }

    fn optimizer(&self) -> AdamConfig {
        AdamConfig { lr: self.settings.lr, ..AdamConfig::default() }
    }

    /// r as it is at step `step`: doubled from the profile's epoch on, if it says so.
    fn before_step(&self, model: &mut CirclesModel, step: usize) {
        if let Some(srn) = &mut model.srn {
            srn.config.steps = self.settings.inner_steps_at(step / self.settings.steps_per_epoch());
        }
    }

    fn step<'t>(
        &self,
        model: &CirclesModel,
        scope: &Scope<'t, f32>,
        indices: &[usize],
        _step: usize,
        window: &mut LossWindow,
    ) -> Step<'t> {
        let x = scope.tape().constant(batch(self.train, indices));
        let out = model.forward(scope, x);
        let loss = (out.decoded.image - x).square().sum();
        let images = indices.len() as f64;
        let per_image = loss.item().to_f64() / images;
        window.0 += per_image;
        window.1 += 1;
        let inner = match (out.inner_losses.first(), out.inner_losses.last()) {
            (Some(first), Some(last)) => Some((first.to_f64() / images, last.to_f64() / images)),
            _ => None,
        };
        Step { loss, message: format!("loss {per_image:.1} per image"), inner }
    }

    fn validate(&self, model: &CirclesModel, window: &LossWindow, clock: Clock) -> Validation<CurvePoint> {
        let subset: Vec<usize> = (0..self.settings.eval_images.min(self.test.len())).collect();
        let (mut stats, _) =
            evaluate(model, self.test, clock.world.shard(&subset), self.settings.batch, OBJECT_THRESHOLD, false);
        stats.sum_over(clock.world);
        let (inner_first, inner_last) = clock.inner.unwrap_or((f64::NAN, f64::NAN));
        let point = CurvePoint {
            step: clock.step,
            seconds: clock.seconds,
            train_error: window.0 / window.1.max(1) as f64,
            test_error: stats.error_per_image(),
            decomposed: (0..stats.images.len()).map(|c| stats.rate(c).unwrap_or(f64::NAN)).collect(),
            decomposed_all: 100.0 * stats.decomposed.iter().sum::<usize>() as f64 / stats.total_images().max(1) as f64,
            inner_first,
            inner_last,
        };
        Validation { point, score: None }
    }

    fn summary(&self, point: &CurvePoint, clock: Clock) -> String {
        point.summary(&self.run.name, clock.total_steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::resume::meta_json;
    use models::Checkpoint;

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
