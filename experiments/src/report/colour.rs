//! Colours for figures: a categorical palette for series and classes, and a viridis-like continuous colormap.

use super::image::Rgb;

/// Ten distinct colours (Tableau 10), cycled by [`category`].
pub const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// The colour of category `i`: the palette in turn, then again darker, and so on.
pub fn category(i: usize) -> Rgb {
    let base = PALETTE[i % PALETTE.len()];
    let shade = 0.7f32.powi((i / PALETTE.len()).min(4) as i32);
    base.map(|c| (c as f32 * shade).round() as u8)
}

/// Viridis sampled at nine evenly spaced points (matplotlib's values), linearly interpolated by [`viridis`].
const VIRIDIS: [Rgb; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

/// Grey for values a colormap cannot place (NaN).
pub const MISSING: Rgb = [160, 160, 160];

/// The viridis colour of `t` in [0, 1] (clamped): dark purple at 0, through teal, to yellow at 1. NaN is grey.
pub fn viridis(t: f64) -> Rgb {
    if t.is_nan() {
        return MISSING;
    }
    let pos = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    let frac = pos - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    std::array::from_fn(|c| (a[c] as f64 + frac * (b[c] as f64 - a[c] as f64)).round() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_and_interpolates() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(-3.0), viridis(0.0));
        assert_eq!(viridis(7.0), viridis(1.0));
        assert_eq!(viridis(0.0625), [70, 23, 103]);
        assert_eq!(viridis(f64::NAN), MISSING);
        // Brightness rises monotonically, as a perceptual colormap's should.
        let luma = |c: Rgb| 0.3 * c[0] as f64 + 0.59 * c[1] as f64 + 0.11 * c[2] as f64;
        let samples: Vec<f64> = (0..=100).map(|i| luma(viridis(i as f64 / 100.0))).collect();
        assert!(samples.windows(2).all(|w| w[1] >= w[0]), "{samples:?}");
    }

    #[test]
    fn categories_are_distinct() {
        let colours: Vec<Rgb> = (0..30).map(category).collect();
        for (i, a) in colours.iter().enumerate() {
            assert!(colours[i + 1..].iter().all(|b| a != b), "category {i} repeats");
        }
    }
}
