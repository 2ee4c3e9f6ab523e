//! Figure 4: what the set fed to the relation module holds. The model's perceptual stage (the CNN, and for
//! RN + SRN the refinement) is frozen; the Circles reconstruction decoder of Sec. 2.2 (each element decoded by
//! shared transposed convolutions, a softmax across elements weighting their sigmoids) is fitted on its sets,
//! and the reconstructions and each image's strongest elements (by L1 norm of their contribution) are drawn.

use super::data::{SortOfClevr, IMAGE_LEN, SIZE};
use super::model::{RnModel, CELLS, OBJECT_DIM};
use crate::harness::{Clock, Run, RunConfig, Schedule, Step, Task, Validation};
use crate::report::image::{grid, Canvas, GridStyle};
use crate::Result;
use models::{evaluate, AdamConfig, Scope, SetDecoder};
use ndarray::ArrayD;
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Figure 4's settings.
#[derive(Clone, Copy, Debug)]
pub struct Figure4 {
    pub images: usize,
    pub epochs: usize,
    pub width: usize,
    pub batch: usize,
    pub seed: u64,
}

/// The decoder's start: 5x5, then 10, 20 and 80 pixels, cropped to 75.
const START_SIDE: usize = 5;
/// Elements drawn per image (the paper: the top 9 of 25).
const SHOWN: usize = 9;

/// The frozen sets `[n, 25, 26]` of the first `n` scenes, and their images `[n, 3, 75, 75]`.
fn frozen_sets(model: &RnModel, data: &SortOfClevr, n: usize, batch: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut sets, mut images) = (Vec::new(), Vec::new());
    let scenes: Vec<usize> = (0..n.min(data.scenes.len())).collect();
    for chunk in scenes.chunks(batch) {
        let mut x = Vec::with_capacity(chunk.len() * IMAGE_LEN);
        for &i in chunk {
            x.extend(super::data::render(&data.scenes[i]));
        }
        let input = ArrayD::from_shape_vec(vec![chunk.len(), 3, SIZE, SIZE], x.clone()).expect("image batch");
        let set = evaluate(model, |scope| model.perceive(scope, scope.tape().constant(input)).set.value());
        sets.extend(set.iter().copied());
        images.extend(x);
    }
    (sets, images)
}

/// Rows `indices` of a flat array of `len`-sized items, as an array of `shape` (leading axis = the rows).
fn rows_of(flat: &[f32], len: usize, indices: &[usize], shape: &[usize]) -> ArrayD<f32> {
    let mut v = Vec::with_capacity(indices.len() * len);
    for &i in indices {
        v.extend_from_slice(&flat[i * len..(i + 1) * len]);
    }
    let mut full = vec![indices.len()];
    full.extend_from_slice(shape);
    ArrayD::from_shape_vec(full, v).expect("rows")
}

/// Fitting the decoder on frozen sets, as a run of the shared harness (so a long fit resumes).
struct DecoderFit<'a> {
    run: Run,
    f: Figure4,
    /// The fitted scenes' sets `[n, 25, 26]` and images `[n, 3, 75, 75]`, flat.
    sets: &'a [f32],
    images: &'a [f32],
}

/// A point of the fit's curve: the mean squared error per image over the epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FitPoint {
    step: usize,
    train_error: f64,
}

impl Task for DecoderFit<'_> {
    type Model = SetDecoder;
    type Point = FitPoint;
    type Window = (f64, usize);

    fn run(&self) -> &Run {
        &self.run
    }

    fn schedule(&self) -> Schedule {
        let n = self.images.len() / IMAGE_LEN;
        let steps_per_epoch = (n / self.f.batch).max(1);
        Schedule {
            examples: n,
            batch: self.f.batch,
            steps_per_epoch,
            total_steps: steps_per_epoch * self.f.epochs,
            validate_every: steps_per_epoch,
            validate_at_epoch_end: true,
            progress_every: 50,
            keep_best: false,
            snapshots: false,
            clip_grad_norm: None,
            split_validation: false,
            mean_loss: false,
        }
    }

    fn model(&self) -> SetDecoder {
        SetDecoder::with_shape(OBJECT_DIM, self.f.width, START_SIDE, SIZE, &mut StdRng::seed_from_u64(self.f.seed))
    }

    fn optimizer(&self) -> AdamConfig {
        AdamConfig { lr: 3e-4, ..AdamConfig::default() }
    }

    fn step<'t>(
        &self,
        decoder: &SetDecoder,
        scope: &Scope<'t, f32>,
        idx: &[usize],
        _step: usize,
        window: &mut (f64, usize),
    ) -> Step<'t> {
        let tape = scope.tape();
        let set = tape.constant(rows_of(self.sets, CELLS * OBJECT_DIM, idx, &[CELLS, OBJECT_DIM]));
        let target = tape.constant(rows_of(self.images, IMAGE_LEN, idx, &[3, SIZE, SIZE]));
        let loss = (decoder.forward(scope, set).image - target).square().sum();
        let per_image = loss.item() as f64 / idx.len() as f64;
        (window.0, window.1) = (window.0 + per_image, window.1 + 1);
        Step { loss, message: format!("squared error {per_image:.1} per image"), inner: None }
    }

    fn validate(&self, _: &SetDecoder, window: &(f64, usize), clock: Clock) -> Validation<FitPoint> {
        Validation { point: FitPoint { step: clock.step, train_error: window.0 / window.1.max(1) as f64 }, score: None }
    }

    fn summary(&self, p: &FitPoint, clock: Clock) -> String {
        format!("{} step {}/{}: squared error {:.1} per image", self.run.name, p.step, clock.total_steps, p.train_error)
    }
}

/// How Figure 4 gets its decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Fit it (continuing a saved fit when `resume`).
    Train { resume: bool },
    /// Only the fit a run saved, finished, without training (`--evaluate`): none gives no figure.
    Saved,
}

/// Fit the decoder on `model`'s frozen sets of the first `f.images` training scenes (a run in the folder
/// beside `path`, as `fit` says; `source` names the frozen model in the run's configuration), draw `shown`
/// images with their strongest elements to `path`, and return the final squared error per image on those
/// scenes. None when `fit` is [`Fit::Saved`] and no finished fit was saved.
#[allow(clippy::too_many_arguments)]
pub fn figure4(
    model: &RnModel,
    source: &str,
    data: &SortOfClevr,
    f: Figure4,
    name: &str,
    shown: usize,
    path: &Path,
    fit: Fit,
) -> Result<Option<f64>> {
    let dir = path.with_extension("");
    if fit == Fit::Saved && !dir.join(crate::harness::CHECKPOINT).exists() {
        eprintln!("{name}: Figure 4: no saved decoder fit in {}", dir.display());
        return Ok(None);
    }
    let (sets, images) = frozen_sets(model, data, f.images, f.batch.max(16));
    let n = images.len() / IMAGE_LEN;
    let config = RunConfig::new()
        .with("experiment", "sort-of-clevr figure 4")
        .with("model", source)
        .with("images", f.images)
        .with("epochs", f.epochs)
        .with("width", f.width)
        .with("batch", f.batch)
        .with("seed", f.seed);
    let run = Run { name: format!("{name} fig4"), dir, seed: f.seed, config };
    let decoder_fit = DecoderFit { run, f, sets: &sets, images: &images };
    let outcome = match fit {
        // On this process alone (rank 0 draws the figures of a data-parallel run).
        Fit::Train { resume } => crate::harness::train_on(&crate::distributed::World::single(), &decoder_fit, resume)?,
        Fit::Saved => {
            let outcome = crate::harness::load(&decoder_fit)?;
            let total = decoder_fit.schedule().total_steps;
            if outcome.steps < total {
                eprintln!("{name}: Figure 4: the saved decoder fit stopped at step {} of {total}", outcome.steps);
                return Ok(None);
            }
            outcome
        }
    };
    if outcome.interrupted {
        return Err(format!("interrupted while fitting Figure 4's decoder for {name}; rerun with --resume").into());
    }
    let decoder = outcome.model;
    let set_len = CELLS * OBJECT_DIM;

    // The final error, in eval mode, over every fitted image; and the figure's rows.
    let (mut error, mut rows) = (0.0f64, Vec::new());
    let all: Vec<usize> = (0..n).collect();
    for chunk in all.chunks(f.batch) {
        let (recon, elements) = evaluate(&decoder, |scope| {
            let set = scope.tape().constant(rows_of(&sets, set_len, chunk, &[CELLS, OBJECT_DIM]));
            let decoded = decoder.forward(scope, set);
            (decoded.image.value(), decoded.elements.value())
        });
        let (recon, elements) = (recon.as_slice().expect("contiguous"), elements.as_slice().expect("contiguous"));
        for (j, &i) in chunk.iter().enumerate() {
            let truth = &images[i * IMAGE_LEN..(i + 1) * IMAGE_LEN];
            let rec = &recon[j * IMAGE_LEN..(j + 1) * IMAGE_LEN];
            error += rec.iter().zip(truth).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>();
            if i < shown {
                let els = &elements[j * CELLS * IMAGE_LEN..(j + 1) * CELLS * IMAGE_LEN];
                rows.push(row(truth, rec, els));
            }
        }
    }
    grid(&rows, GridStyle { scale: 2, ..GridStyle::default() }).save_png(path)?;
    Ok(Some(error / n.max(1) as f64))
}

/// Input, reconstruction, then the `SHOWN` elements with the largest L1 norm.
fn row(truth: &[f32], recon: &[f32], elements: &[f32]) -> Vec<Canvas> {
    let tile = |v: &[f32]| Canvas::from_planar(v, SIZE, SIZE);
    let mut order: Vec<(usize, f32)> =
        elements.chunks(IMAGE_LEN).map(|e| e.iter().map(|v| v.abs()).sum::<f32>()).enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut row = vec![tile(truth), tile(recon)];
    row.extend(order.iter().take(SHOWN).map(|&(k, _)| tile(&elements[k * IMAGE_LEN..(k + 1) * IMAGE_LEN])));
    row
}
