//! Figure 4: what the set fed to the relation module holds. The model's perceptual stage (the CNN, and for
//! RN + SRN the refinement) is frozen; the Circles reconstruction decoder of Sec. 2.2 (each element decoded by
//! shared transposed convolutions, a softmax across elements weighting their sigmoids) is fitted on its sets,
//! and the reconstructions and each image's strongest elements (by L1 norm of their contribution) are drawn.

use super::data::{SortOfClevr, IMAGE_LEN, SIZE};
use super::model::{RnModel, CELLS, OBJECT_DIM};
use crate::harness::{epoch_order, Progress};
use crate::report::image::{grid, Canvas, GridStyle};
use crate::Result;
use autograd::Tape;
use models::{evaluate, Adam, AdamConfig, Module, Optimizer, Scope, SetDecoder};
use ndarray::ArrayD;
use rand::{rngs::StdRng, SeedableRng};
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

/// Fit the decoder on `model`'s frozen sets of the first `f.images` training scenes, draw `shown` images with
/// their strongest elements to `path`, and return the final squared error per image on those scenes.
pub fn figure4(model: &RnModel, data: &SortOfClevr, f: Figure4, name: &str, shown: usize, path: &Path) -> Result<f64> {
    let (sets, images) = frozen_sets(model, data, f.images, f.batch.max(16));
    let n = images.len() / IMAGE_LEN;
    let set_len = CELLS * OBJECT_DIM;
    let mut rng = StdRng::seed_from_u64(f.seed);
    let decoder = SetDecoder::with_shape(OBJECT_DIM, f.width, START_SIDE, SIZE, &mut rng);
    let mut adam = Adam::new(decoder.params(), AdamConfig { lr: 3e-4, ..AdamConfig::default() });
    let steps_per_epoch = (n / f.batch).max(1);
    let total = steps_per_epoch * f.epochs;
    let progress = Progress::new(&format!("{name} fig4"), 0, total, 50);
    for step in 0..total {
        let order = epoch_order(n, f.seed, step / steps_per_epoch);
        let within = step % steps_per_epoch;
        let idx = &order[within * f.batch..((within + 1) * f.batch).min(n)];
        let tape = Tape::new();
        let scope = Scope::new(&tape);
        let set = tape.constant(rows_of(&sets, set_len, idx, &[CELLS, OBJECT_DIM]));
        let target = tape.constant(rows_of(&images, IMAGE_LEN, idx, &[3, SIZE, SIZE]));
        let loss = (decoder.forward(&scope, set).image - target).square().sum();
        let grads = decoder.grads(&scope, &[loss]);
        adam.step(&grads);
        progress.set(step + 1, &format!("squared error {:.1} per image", loss.item() / idx.len() as f32));
    }
    progress.finish();

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
    Ok(error / n.max(1) as f64)
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
