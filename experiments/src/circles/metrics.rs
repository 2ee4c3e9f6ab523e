//! The decomposition metric of Table 1 and the reconstruction error.
//!
//! An element "contains an object" when its decoded image has an L-infinity norm above 0.1; an image is
//! decomposed when the number of such elements equals its number of circles. The decoded image of element
//! `i` is taken to be its contribution to the output, `softmax_i(I) * sigmoid(I_i)` (the reference does not
//! say which image it thresholds; this is the one that adds up to the reconstruction).

use super::data::MAX_CIRCLES;
use serde::Serialize;

/// The paper's threshold on an element's L-infinity norm. The learning curve always uses it; a final
/// evaluation can be asked for another (`circles --threshold`) to see how much the table depends on it.
pub const OBJECT_THRESHOLD: f32 = 0.1;

/// How many of a set's decoded element images (`elements`, `n` images of `len` values each) hold an object:
/// an L-infinity norm above `threshold`.
pub fn objects_in(elements: &[f32], len: usize, threshold: f32) -> usize {
    elements.chunks(len).filter(|img| img.iter().any(|&v| v.abs() > threshold)).count()
}

/// Images seen and images decomposed, by number of circles (0 to 10), and the summed squared error.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Decomposition {
    pub images: [usize; MAX_CIRCLES + 1],
    pub decomposed: [usize; MAX_CIRCLES + 1],
    pub squared_error: f64,
}

impl Decomposition {
    /// Sum the counts and errors of every rank of `world` (a no-op on one process): for an evaluation split
    /// across the ranks of a data-parallel run.
    pub fn sum_over(&mut self, world: &crate::distributed::World) {
        let n = self.images.len();
        let mut v: Vec<f64> = self.images.iter().chain(&self.decomposed).map(|&c| c as f64).collect();
        v.push(self.squared_error);
        world.all_reduce_sum(&mut v);
        for i in 0..n {
            (self.images[i], self.decomposed[i]) = (v[i] as usize, v[n + i] as usize);
        }
        self.squared_error = v[2 * n];
    }

    /// Record one image with `circles` circles whose set had `objects` elements holding an object.
    pub fn add(&mut self, circles: usize, objects: usize, squared_error: f64) {
        self.images[circles] += 1;
        self.decomposed[circles] += usize::from(objects == circles);
        self.squared_error += squared_error;
    }

    /// % of images with `circles` circles that were decomposed (`None` if there were none).
    pub fn rate(&self, circles: usize) -> Option<f64> {
        (self.images[circles] > 0).then(|| 100.0 * self.decomposed[circles] as f64 / self.images[circles] as f64)
    }

    /// Mean squared error per image.
    pub fn error_per_image(&self) -> f64 {
        self.squared_error / self.images.iter().sum::<usize>().max(1) as f64
    }

    pub fn total_images(&self) -> usize {
        self.images.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_holds_an_object_above_the_threshold() {
        let mut elems = vec![0.0f32; 3 * 4];
        elems[1] = 0.11; // element 0
        elems[4 + 2] = 0.1; // element 1: not above
        elems[8] = -0.5; // element 2 (norm, so the sign does not matter)
        assert_eq!(objects_in(&elems, 4, OBJECT_THRESHOLD), 2);
        assert_eq!(objects_in(&elems, 4, 0.05), 3);
        assert_eq!(objects_in(&elems, 4, 0.2), 1);
    }

    #[test]
    fn rates_by_number_of_circles() {
        let mut d = Decomposition::default();
        d.add(2, 2, 1.0);
        d.add(2, 3, 3.0);
        d.add(0, 0, 2.0);
        assert_eq!(d.rate(2), Some(50.0));
        assert_eq!(d.rate(0), Some(100.0));
        assert_eq!(d.rate(5), None);
        assert_eq!(d.error_per_image(), 2.0);
    }
}
