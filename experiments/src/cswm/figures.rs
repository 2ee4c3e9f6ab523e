//! `masks.png`, per trained model: what each of the K slots attends to (the C-SWM paper's figure of the object
//! masks). One row per observation: the observation's current frame, then the object extractor's K masks
//! (its sigmoid outputs, `K x 10 x 10` on Atari, `K x 5 x 5` on the 2-D shapes), each upsampled by nearest
//! neighbour to the observation's side, in grey (0 black, 1 white). Tiles are scaled by [`SCALE`] and
//! separated by a coloured gap, so that a white mask edge stays visible.
//!
//! The observations are fixed: the first observation (t = 0) of [`OBSERVATIONS`] evaluation episodes spread
//! evenly over the evaluation set, the same for every model and seed. The masks are computed in evaluation
//! mode (batch norm's running statistics) without recording gradients, as the rest of the evaluation.

use super::data::Episodes;
use super::model::Cswm;
use crate::report::colour::PALETTE;
use crate::report::image::{grid, Canvas, GridStyle};
use crate::Result;
use models::evaluate;
use ndarray::{s, ArrayD, ArrayView2, ArrayView3, Ix3, Ix4};
use std::path::Path;

/// Observations in the figure (rows), at most the evaluation episodes.
pub const OBSERVATIONS: usize = 4;
/// Nearest-neighbour upscaling of every tile.
pub const SCALE: usize = 2;
/// The gap between tiles and around them, in pixels after upscaling.
pub const SPACING: usize = 2;

/// The figure's layout: a blue gap, which no grey value of a mask or frame pixel can be confused with.
pub fn style() -> GridStyle {
    GridStyle { spacing: SPACING, scale: SCALE, background: PALETTE[0] }
}

/// The evaluation observations the figure shows: `(episode, 0)` for `count` episodes spread evenly over
/// `eval` (all of them when it has fewer).
pub fn observations(eval: &Episodes, count: usize) -> Vec<(usize, usize)> {
    let n = eval.num_episodes();
    let count = count.min(n);
    (0..count).map(|i| (i * n / count, 0)).collect()
}

/// The object masks `[N, K, m, m]` of observations `[N, C, side, side]`, in evaluation mode, no gradients.
pub fn masks(model: &Cswm, obs: &ArrayD<f32>) -> ArrayD<f32> {
    evaluate(model, |scope| {
        let masks = model.extractor.forward(scope, scope.tape().constant(obs.clone()));
        (*masks.value()).clone()
    })
}

/// One `[m, m]` mask in `[0, 1]` as a grey `side x side` tile, by nearest neighbour: pixel `(x, y)` shows
/// `mask[y m / side, x m / side]` (for a side `m` divides, each mask value fills a `side / m` square).
pub fn mask_tile(mask: ArrayView2<f32>, side: usize) -> Canvas {
    let (h, w) = mask.dim();
    assert!(h > 0 && w > 0 && side > 0, "mask_tile: a {h}x{w} mask on a side of {side}");
    let up = ndarray::Array3::from_shape_fn((1, side, side), |(_, y, x)| mask[[y * h / side, x * w / side]]);
    Canvas::from_array(up.view())
}

/// An observation `[C, side, side]` as its current frame: the first 3 channels, since the observations stack
/// their frames newest first (`super::data`; the shapes' observations are that one frame).
pub fn frame_tile(obs: ArrayView3<f32>) -> Canvas {
    assert!(obs.dim().0 >= 3, "frame_tile: an observation of {} channels has no RGB frame", obs.dim().0);
    Canvas::from_array(obs.slice(s![0..3, .., ..]))
}

/// The figure from observations `[N, C, side, side]` and their masks `[N, K, m, m]`: row `i` is observation
/// `i`'s frame, then its K masks.
pub fn mask_figure(obs: &ArrayD<f32>, masks: &ArrayD<f32>) -> Canvas {
    let obs = obs.view().into_dimensionality::<Ix4>().expect("observations are [N, C, side, side]");
    let masks = masks.view().into_dimensionality::<Ix4>().expect("masks are [N, K, m, m]");
    assert_eq!(obs.dim().0, masks.dim().0, "mask_figure: observations and masks differ in number");
    let side = obs.dim().2;
    let rows: Vec<Vec<Canvas>> = obs
        .outer_iter()
        .zip(masks.outer_iter())
        .map(|(o, m)| {
            let m = m.into_dimensionality::<Ix3>().expect("[K, m, m]");
            let mut row = vec![frame_tile(o)];
            row.extend(m.outer_iter().map(|k| mask_tile(k, side)));
            row
        })
        .collect();
    grid(&rows, style())
}

/// Writes `masks.png` for `model` on the fixed evaluation observations of `eval` (see the module docs).
pub fn write_masks(model: &Cswm, eval: &Episodes, path: &Path) -> Result<()> {
    let obs = eval.observations(&observations(eval, OBSERVATIONS));
    mask_figure(&obs, &masks(model, &obs)).save_png(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cswm::model::CswmConfig;
    use crate::cswm::shapes;
    use ndarray::{Array2, Array4};
    use rand::{rngs::StdRng, SeedableRng};

    fn grey(v: f32) -> [u8; 3] {
        [(v * 255.0).round() as u8; 3]
    }

    #[test]
    fn the_figure_is_a_frame_and_k_masks_per_row_with_gaps() {
        // 2 observations of Atari's 6 x 50 x 50, K = 3 masks of 10 x 10: 4 tiles of 100 pixels across.
        let obs = ArrayD::from_elem(vec![2, 6, 50, 50], 0.5f32);
        let masks = ArrayD::from_elem(vec![2, 3, 10, 10], 0.25f32);
        let f = mask_figure(&obs, &masks);
        let tile = 50 * SCALE;
        assert_eq!((f.width(), f.height()), (4 * (tile + SPACING) + SPACING, 2 * (tile + SPACING) + SPACING));
        assert_eq!(f.get(0, 0), PALETTE[0], "the gap");
        assert_eq!(f.get(SPACING, SPACING), grey(0.5), "the frame");
        assert_eq!(f.get(2 * (tile + SPACING) + SPACING, tile + 2 * SPACING), grey(0.25), "a mask");
    }

    #[test]
    fn a_mask_tile_repeats_each_mask_value_nearest_neighbour() {
        // A 5 x 5 mask (the shapes' extractor) on a 50-pixel side: each value fills a 10 x 10 square.
        let mask = Array2::from_shape_fn((5, 5), |(i, j)| (5 * i + j) as f32 / 24.0);
        let t = mask_tile(mask.view(), 50);
        assert_eq!((t.width(), t.height()), (50, 50));
        for y in 0..50 {
            for x in 0..50 {
                assert_eq!(t.get(x, y), grey(mask[[y / 10, x / 10]]), "pixel ({x}, {y})");
            }
        }
        assert_eq!((t.get(0, 0), t.get(49, 49)), (grey(0.0), grey(1.0)));
    }

    #[test]
    fn the_frame_is_the_newest_one_the_first_three_channels() {
        let mut obs = Array4::<f32>::zeros((1, 6, 4, 4));
        obs.slice_mut(s![0, 0, .., ..]).fill(1.0); // the newest frame's red
        obs.slice_mut(s![0, 4, .., ..]).fill(1.0); // the previous frame's green
        assert_eq!(frame_tile(obs.index_axis(ndarray::Axis(0), 0)).get(2, 3), [255, 0, 0]);
    }

    #[test]
    fn a_small_model_writes_its_masks() {
        let eval = shapes::generate(6, 10, 1);
        let c = CswmConfig { hidden: 8, extractor_width: 4, ..CswmConfig::shapes() };
        let model = Cswm::new(c, &mut StdRng::seed_from_u64(0));
        assert_eq!(observations(&eval, OBSERVATIONS), vec![(0, 0), (1, 0), (3, 0), (4, 0)]);
        let obs = eval.observations(&observations(&eval, OBSERVATIONS));
        let m = masks(&model, &obs);
        assert_eq!(m.shape(), &[4, 5, 5, 5]);
        assert!(m.iter().all(|&v| (0.0..=1.0).contains(&v)), "sigmoid outputs");
        let path = std::env::temp_dir().join(format!("cswm-masks-{}.png", std::process::id()));
        write_masks(&model, &eval, &path).unwrap();
        let png = Canvas::load_png(&path).unwrap();
        assert_eq!(png, mask_figure(&obs, &m));
        assert_eq!(png.width(), 6 * (50 * SCALE + SPACING) + SPACING);
        std::fs::remove_file(path).unwrap();
    }
}
