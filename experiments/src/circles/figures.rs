//! Figures 2 and 3 and the interpolation strip, per model, as PNG.
//!
//! - Figure 2 (`decomposition.png`): one row per test image: the input, the reconstruction, then each set
//!   element's decoded image (its contribution `softmax_i * sigmoid(I_i)`), elements sorted by L-inf norm.
//! - Figure 3 (`tsne-x.png`, `tsne-y.png`, `tsne-colour.png`): images holding one red or green circle (radius 6)
//!   on a grid of positions; for each, the set element whose decoded image holds the most of the circle; a 2-D
//!   t-SNE of those elements, coloured by the circle's x, its y and its colour.
//! - `interpolation.png`: a red circle moving from left to right beside a fixed green one; one row per frame.

use super::data::{Circle, Circles, Scene};
use super::metrics::OBJECT_THRESHOLD;
use super::model::{CirclesModel, ELEMENT_DIM};
use super::train::evaluate;
use crate::report::image::{grid, Canvas, GridStyle};
use crate::report::scatter::ScatterPlot;
use crate::report::tsne::tsne;
use crate::Result;

use std::path::Path;

/// `[3, side, side]` planar values as a canvas.
fn tile(image: &[f32], scene: Scene) -> Canvas {
    Canvas::from_planar(image, scene.side, scene.side)
}

/// L-inf norm of each of a set's decoded element images.
fn norms(elements: &[f32], scene: Scene) -> Vec<f32> {
    elements.chunks(scene.image_len()).map(|e| e.iter().fold(0.0f32, |m, v| m.max(v.abs()))).collect()
}

/// Input, reconstruction and elements (strongest first) of every image of `data`.
fn rows(model: &CirclesModel, data: &Circles, batch: usize) -> Vec<Vec<Canvas>> {
    let all: Vec<usize> = (0..data.len()).collect();
    let (_, kept) = evaluate(model, data, &all, batch, OBJECT_THRESHOLD, true);
    let (scene, len) = (data.scene, data.scene.image_len());
    kept.iter()
        .enumerate()
        .map(|(i, e)| {
            let mut order: Vec<(usize, f32)> = norms(&e.elements, scene).into_iter().enumerate().collect();
            order.sort_by(|a, b| b.1.total_cmp(&a.1));
            let mut row = vec![tile(data.image(i), scene), tile(&e.reconstruction, scene)];
            row.extend(order.iter().map(|&(j, _)| tile(&e.elements[j * len..(j + 1) * len], scene)));
            row
        })
        .collect()
}

/// Figure 2 on the first `count` images of `test`.
pub fn decomposition(model: &CirclesModel, test: &Circles, count: usize, path: &Path) -> Result<()> {
    let mut sample = Circles::empty(test.scene);
    for circles in test.circles.iter().take(count) {
        sample.push(circles);
    }
    let style = GridStyle { scale: 2, ..GridStyle::default() };
    grid(&rows(model, &sample, count.max(1)), style).save_png(path)?;
    Ok(())
}

/// The interpolation strip: `frames` positions of a red circle moving across, a green one fixed below
/// (radius 8 on the paper's 64 x 64 images, scaled with the side).
pub fn interpolation(model: &CirclesModel, scene: Scene, frames: usize, path: &Path) -> Result<()> {
    let mut data = Circles::empty(scene);
    let at = |v: usize| v * scene.side / 64;
    for f in 0..frames {
        let x = at(10) + (scene.side - at(20)) * f / (frames - 1).max(1);
        let (red, green) =
            (Circle { x, y: at(22), r: at(8), colour: 0 }, Circle { x: at(32), y: at(48), r: at(8), colour: 1 });
        data.push(&[red, green]);
    }
    let style = GridStyle { scale: 2, ..GridStyle::default() };
    grid(&rows(model, &data, frames.max(1)), style).save_png(path)?;
    Ok(())
}

/// Figure 3: t-SNE of the circle-holding element over one-circle images on a `side x side` grid, both colours.
pub fn tsne_plots(model: &CirclesModel, scene: Scene, side: usize, seed: u64, dir: &Path, name: &str) -> Result<()> {
    // Radius 6 on the paper's 64 x 64 images, scaled with the side.
    let r = 6 * scene.side / 64;
    let mut data = Circles::empty(scene);
    let mut coords = Vec::new();
    for colour in 0..2 {
        for gy in 0..side {
            for gx in 0..side {
                let at = |g: usize| r + (scene.side - 2 * r - 1) * g / (side - 1).max(1);
                data.push(&[Circle { x: at(gx), y: at(gy), r, colour }]);
                coords.push((at(gx) as f64, at(gy) as f64));
            }
        }
    }
    // The set each image is decoded from, and which element holds the circle.
    let mut points: Vec<Vec<f32>> = Vec::new();
    for chunk in (0..data.len()).collect::<Vec<_>>().chunks(64) {
        let (set, elements) = models::evaluate(model, |scope| {
            let out = model.forward(scope, scope.tape().constant(super::train::batch(&data, chunk)));
            (out.set.value(), out.decoded.elements.value())
        });
        let n = set.shape()[1];
        let (set, elements) = (set.as_slice().expect("contiguous"), elements.as_slice().expect("contiguous"));
        for j in 0..chunk.len() {
            let len = scene.image_len();
            let els = &elements[j * n * len..(j + 1) * n * len];
            let holder = norms(els, scene).iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(k, _)| k);
            let at = (j * n + holder) * ELEMENT_DIM;
            points.push(set[at..at + ELEMENT_DIM].to_vec());
        }
    }
    let embedding = tsne(&points, 30.0, 1000, seed);
    let xy: Vec<(f64, f64)> = embedding.rows().into_iter().map(|r| (r[0], r[1])).collect();
    // Images are pushed red first, then green: the first half of the points are red circles.
    let colours: Vec<usize> = (0..xy.len()).map(|i| usize::from(i >= xy.len() / 2)).collect();
    ScatterPlot::new(&format!("{name}: t-SNE, circle colour"), xy.clone())
        .classes(colours, &["red", "green"])
        .save(dir.join("tsne-colour.png"))?;
    for (axis, values) in
        [("x", coords.iter().map(|c| c.0).collect::<Vec<_>>()), ("y", coords.iter().map(|c| c.1).collect())]
    {
        ScatterPlot::new(&format!("{name}: t-SNE, circle {axis}"), xy.clone())
            .continuous(values, &format!("circle {axis}"))
            .save(dir.join(format!("tsne-{axis}.png")))?;
    }
    Ok(())
}

/// Learning curves of every model: test error and % decomposed (1, 2 and 3 circles, and all) against steps.
pub fn learning_curves(curves: &[(String, Vec<super::train::CurvePoint>)], dir: &Path, suffix: &str) -> Result<()> {
    use crate::report::plot::LineChart;
    let mut error =
        LineChart::new("Circles: test squared error per image").labels("training step", "squared error").log_y(true);
    let mut decomposed = LineChart::new("Circles: % of test images decomposed").labels("training step", "% decomposed");
    for (name, curve) in curves {
        error.add_series(name, curve.iter().map(|p| (p.step as f64, p.test_error)));
        decomposed.add_series(&format!("{name}, all"), curve.iter().map(|p| (p.step as f64, p.decomposed_all)));
        for c in 1..=3 {
            decomposed
                .add_series(&format!("{name}, {c} circle(s)"), curve.iter().map(|p| (p.step as f64, p.decomposed[c])));
        }
    }
    error.save(dir.join(format!("curve-error{suffix}.png")))?;
    decomposed.save(dir.join(format!("curve-decomposed{suffix}.png")))?;
    Ok(())
}
