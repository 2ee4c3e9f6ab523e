//! The Circles data set of the paper's Sec. 2.2, with the released code's rules.
//!
//! A 64x64 RGB image in [0, 1] on black holds `n` circles, `n` uniform in 0..=10. Each circle draws a radius
//! uniform in 1..=11, a centre `(floor(U*(64-2r)+r), floor(U*(64-2r)+r))` and a colour, pure red or pure
//! green (a [`Scene`] sets the side and the two bounds: [`Scene::PAPER`] is the paper's, [`Scene::SMALL`] a
//! 32x32 scene with 0 to 5 circles of radius 1 to 6); it is rejected (and all three drawn again) if a disc of radius `r+1` there would touch a circle of
//! the same colour, so same-coloured circles keep a gap while red and green may overlap (the overlap shows
//! both channels). Discs are filled without anti-aliasing: pixel `(y, x)` is inside when
//! `(x-cx)^2 + (y-cy)^2 <= r^2` (the released code rasterises with OpenCV, whose edge pixels differ slightly).
//! Should a layout jam (no place found in `MAX_TRIES` draws), the image is started again: the released code
//! would loop forever there.

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;

/// The most circles any scene holds (the paper's 10): the length of the per-count statistics.
pub const MAX_CIRCLES: usize = 10;
const MAX_TRIES: usize = 10_000;

/// The size of the images and the bounds of their circles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Scene {
    /// Image side in pixels.
    pub side: usize,
    /// Circles per image: uniform in `0..=max_circles`.
    pub max_circles: usize,
    /// Radii: uniform in `1..=max_radius`.
    pub max_radius: usize,
}

impl Scene {
    /// The paper's: 64 x 64, 0 to 10 circles of radius 1 to 11.
    pub const PAPER: Scene = Scene { side: 64, max_circles: 10, max_radius: 11 };
    /// The `small` profile's: 32 x 32, 0 to 5 circles of radius 1 to 6.
    pub const SMALL: Scene = Scene { side: 32, max_circles: 5, max_radius: 6 };

    /// Values in one `[3, side, side]` image.
    pub fn image_len(&self) -> usize {
        3 * self.side * self.side
    }
}

/// One circle: centre column `x`, centre row `y`, radius, colour channel (0 red, 1 green).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Circle {
    pub x: usize,
    pub y: usize,
    pub r: usize,
    pub colour: usize,
}

/// A set of images, `[len, 3, side, side]` row-major, with the circles that made each one.
#[derive(Clone, Debug)]
pub struct Circles {
    pub scene: Scene,
    pub pixels: Vec<f32>,
    pub circles: Vec<Vec<Circle>>,
}

impl Circles {
    /// No images yet, of `scene`'s size (fill it with [`Circles::push`]).
    pub fn empty(scene: Scene) -> Circles {
        Circles { scene, pixels: Vec::new(), circles: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.circles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.circles.is_empty()
    }

    /// Image `i` as a `[3, side, side]` slice.
    pub fn image(&self, i: usize) -> &[f32] {
        let len = self.scene.image_len();
        &self.pixels[i * len..(i + 1) * len]
    }

    /// `len` images of `scene` drawn from `seed`, each by the rules above. The same seed gives the same images.
    pub fn generate(scene: Scene, len: usize, seed: u64) -> Circles {
        assert!(
            scene.max_circles <= MAX_CIRCLES && scene.side > 2 * scene.max_radius,
            "Circles: {scene:?} needs at most {MAX_CIRCLES} circles and a side above twice the largest radius"
        );
        let mut rng = StdRng::seed_from_u64(seed);
        let mut out = Circles::empty(scene);
        out.pixels.reserve(len * scene.image_len());
        out.circles.reserve(len);
        for _ in 0..len {
            let n = rng.gen_range(0..=scene.max_circles);
            let circles = loop {
                if let Some(c) = place(&mut rng, scene, n) {
                    break c;
                }
            };
            out.push(&circles);
        }
        out
    }

    /// Append the image made of `circles` (e.g. a hand-placed layout for figures).
    pub fn push(&mut self, circles: &[Circle]) {
        self.pixels.extend(render(self.scene.side, circles));
        self.circles.push(circles.to_vec());
    }
}

/// Draw `n` circles by the rejection rule, or `None` if the layout jams.
fn place(rng: &mut StdRng, scene: Scene, n: usize) -> Option<Vec<Circle>> {
    let size = scene.side;
    let mut occupied = vec![[false; 2]; size * size];
    let mut circles = Vec::with_capacity(n);
    let mut tries = 0;
    while circles.len() < n {
        tries += 1;
        if tries > MAX_TRIES {
            return None;
        }
        let r = rng.gen_range(1..=scene.max_radius);
        let centre = |rng: &mut StdRng| (rng.gen::<f64>() * (size - 2 * r) as f64 + r as f64).floor() as usize;
        let (x, y) = (centre(rng), centre(rng));
        let colour = rng.gen_range(0..2usize);
        let c = Circle { x, y, r, colour };
        if disc(size, x, y, r + 1).any(|p| occupied[p][colour]) {
            continue;
        }
        for p in disc(size, x, y, r) {
            occupied[p][colour] = true;
        }
        circles.push(c);
    }
    Some(circles)
}

/// Flat pixel indices of the filled disc of radius `r` at column `x`, row `y`, clipped to the `size x size`
/// image.
fn disc(size: usize, x: usize, y: usize, r: usize) -> impl Iterator<Item = usize> {
    let (x, y, r) = (x as isize, y as isize, r as isize);
    (y - r..=y + r).flat_map(move |row| {
        (x - r..=x + r).filter_map(move |col| {
            let inside = (col - x).pow(2) + (row - y).pow(2) <= r * r;
            let on_image = (0..size as isize).contains(&row) && (0..size as isize).contains(&col);
            if inside && on_image {
                Some(row as usize * size + col as usize)
            } else {
                None
            }
        })
    })
}

/// The `[3, side, side]` image of a set of circles.
pub fn render(side: usize, circles: &[Circle]) -> Vec<f32> {
    let mut img = vec![0.0; 3 * side * side];
    for c in circles {
        for p in disc(side, c.x, c.y, c.r) {
            img[c.colour * side * side + p] = 1.0;
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_seed() {
        let a = Circles::generate(Scene::PAPER, 20, 7);
        let b = Circles::generate(Scene::PAPER, 20, 7);
        let c = Circles::generate(Scene::PAPER, 20, 8);
        assert_eq!(a.pixels, b.pixels);
        assert_eq!(a.circles, b.circles);
        assert_ne!(a.circles, c.circles);
    }

    #[test]
    fn follows_the_reference_rules() {
        follows_the_rules(Scene::PAPER);
    }

    #[test]
    fn the_small_scene_follows_the_same_rules() {
        follows_the_rules(Scene::SMALL);
    }

    fn follows_the_rules(scene: Scene) {
        let size = scene.side;
        let data = Circles::generate(scene, 300, 1);
        let mut counts = vec![0usize; scene.max_circles + 1];
        for (i, circles) in data.circles.iter().enumerate() {
            counts[circles.len()] += 1;
            for c in circles {
                assert!((1..=scene.max_radius).contains(&c.r) && c.colour < 2);
                assert!(c.x >= c.r && c.x < size - c.r && c.y >= c.r && c.y < size - c.r, "{c:?} leaves the image");
            }
            // Same-coloured circles keep a gap: their (r+1)-disc does not touch the other's r-disc.
            for (a, ca) in circles.iter().enumerate() {
                for cb in &circles[a + 1..] {
                    if ca.colour == cb.colour {
                        let d2 = (ca.x as f64 - cb.x as f64).powi(2) + (ca.y as f64 - cb.y as f64).powi(2);
                        assert!(d2.sqrt() > (ca.r + cb.r) as f64, "image {i}: {ca:?} touches {cb:?}");
                    }
                }
            }
            // Pixels are 0 or 1, blue is empty, and the image is the rendering of its circles.
            let img = data.image(i);
            assert!(img.iter().all(|&v| v == 0.0 || v == 1.0));
            assert!(img[2 * size * size..].iter().all(|&v| v == 0.0));
            assert_eq!(img, render(size, circles).as_slice());
        }
        assert!(counts.iter().all(|&c| c > 10), "every count 0..={} appears: {counts:?}", scene.max_circles);
    }

    #[test]
    fn a_disc_has_the_expected_area() {
        assert_eq!(disc(64, 30, 30, 0).count(), 1);
        assert_eq!(disc(64, 30, 30, 1).count(), 5);
        let area = disc(64, 30, 30, 10).count() as f64;
        assert!((area - std::f64::consts::PI * 100.0).abs() < 15.0);
    }
}
