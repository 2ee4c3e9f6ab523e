//! Exact t-SNE to two dimensions (van der Maaten & Hinton, 2008), for up to a thousand or so points.
//!
//! It follows the authors' reference implementation (`tsne.py`): Gaussian affinities whose bandwidths are
//! found per point by binary search to a target perplexity, symmetrised to joint probabilities `P`; a Student-t
//! kernel in the embedding; `P` exaggerated four-fold for the first 100 iterations; gradient descent with
//! momentum 0.5 then 0.8 (after 20 iterations), learning rate 500 and per-coordinate adaptive gains (+0.2 when
//! the gradient changes sign against the step, x0.8 otherwise, at least 0.01). Two departures: no PCA to 50
//! dimensions first (distances are exact in the input space), and the start is Gaussian with standard
//! deviation 1e-4, as in the paper, rather than 1. All arithmetic is f64, and the result depends only on the
//! input and the seed. The cost is O(n^2) memory and time per iteration.

use ndarray::{Array2, ArrayView2};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Inputs that t-SNE accepts: rows of equal length, as vectors or an ndarray matrix of f32 or f64.
pub trait Points {
    /// The points as an `n x d` f64 matrix. Panics if rows differ in length.
    fn to_matrix(&self) -> Array2<f64>;
}

impl<T: Copy + Into<f64>> Points for [Vec<T>] {
    fn to_matrix(&self) -> Array2<f64> {
        let d = self.first().map_or(0, Vec::len);
        Array2::from_shape_fn((self.len(), d), |(i, j)| {
            assert_eq!(self[i].len(), d, "tsne: point {i} has {} coordinates, point 0 has {d}", self[i].len());
            self[i][j].into()
        })
    }
}

impl<T: Copy + Into<f64>> Points for Vec<Vec<T>> {
    fn to_matrix(&self) -> Array2<f64> {
        self.as_slice().to_matrix()
    }
}

impl<T: Copy + Into<f64>> Points for ArrayView2<'_, T> {
    fn to_matrix(&self) -> Array2<f64> {
        self.mapv(Into::into)
    }
}

impl<T: Copy + Into<f64>> Points for Array2<T> {
    fn to_matrix(&self) -> Array2<f64> {
        self.view().to_matrix()
    }
}

/// Every setting of the optimisation; [`TsneOptions::new`] gives the reference implementation's values.
#[derive(Clone, Debug)]
pub struct TsneOptions {
    pub perplexity: f64,
    pub iterations: usize,
    pub seed: u64,
    pub learning_rate: f64,
    /// `P` is multiplied by this for the first `exaggeration_iters` iterations.
    pub exaggeration: f64,
    pub exaggeration_iters: usize,
    pub initial_momentum: f64,
    pub final_momentum: f64,
    /// The iteration from which `final_momentum` applies.
    pub momentum_switch: usize,
    pub min_gain: f64,
    /// Standard deviation of the Gaussian start.
    pub init_std: f64,
}

impl TsneOptions {
    pub fn new(perplexity: f64, iterations: usize, seed: u64) -> Self {
        TsneOptions {
            perplexity,
            iterations,
            seed,
            learning_rate: 500.0,
            exaggeration: 4.0,
            exaggeration_iters: 100,
            initial_momentum: 0.5,
            final_momentum: 0.8,
            momentum_switch: 20,
            min_gain: 0.01,
            init_std: 1e-4,
        }
    }
}

/// The `n x 2` t-SNE embedding of `points` with the reference settings. A perplexity of 5 to 50 suits most
/// data; it should be well below `n`.
pub fn tsne<P: Points + ?Sized>(points: &P, perplexity: f64, iterations: usize, seed: u64) -> Array2<f64> {
    tsne_with(points, &TsneOptions::new(perplexity, iterations, seed))
}

/// The `n x 2` t-SNE embedding of `points` with the given settings.
pub fn tsne_with<P: Points + ?Sized>(points: &P, options: &TsneOptions) -> Array2<f64> {
    let x = points.to_matrix();
    let n = x.nrows();
    let mut y = Array2::zeros((n, 2));
    if n < 2 {
        return y;
    }
    // Row-major n x n matrices as flat vectors, for a tight inner loop.
    let p: Vec<f64> = joint_probabilities(&x, options.perplexity).iter().map(|v| v.max(1e-12)).collect();
    let mut rng = StdRng::seed_from_u64(options.seed);
    y.mapv_inplace(|_: f64| options.init_std * standard_normal(&mut rng));
    let mut step: Array2<f64> = Array2::zeros((n, 2));
    let mut gains: Array2<f64> = Array2::ones((n, 2));
    let mut kernel = vec![0.0; n * n];
    for iter in 0..options.iterations {
        let exaggeration = if iter < options.exaggeration_iters { options.exaggeration } else { 1.0 };
        let momentum = if iter < options.momentum_switch { options.initial_momentum } else { options.final_momentum };
        let total = student_kernel(&y, &mut kernel);
        let coords = y.as_slice().expect("standard layout");
        for i in 0..n {
            let mut grad = [0.0; 2];
            let (p_row, k_row) = (&p[i * n..(i + 1) * n], &kernel[i * n..(i + 1) * n]);
            for ((&pij, &kij), yj) in p_row.iter().zip(k_row).zip(coords.chunks_exact(2)) {
                let q = (kij / total).max(1e-12);
                let strength = (exaggeration * pij - q) * kij;
                grad[0] += strength * (coords[2 * i] - yj[0]);
                grad[1] += strength * (coords[2 * i + 1] - yj[1]);
            }
            for (d, g) in grad.into_iter().enumerate() {
                let same_sign = (g > 0.0) == (step[[i, d]] > 0.0);
                let gain = if same_sign { gains[[i, d]] * 0.8 } else { gains[[i, d]] + 0.2 };
                gains[[i, d]] = gain.max(options.min_gain);
                step[[i, d]] = momentum * step[[i, d]] - options.learning_rate * gains[[i, d]] * g;
            }
        }
        y += &step;
        let mean = y.mean_axis(ndarray::Axis(0)).expect("n > 0");
        y -= &mean;
    }
    y
}

/// Fills the row-major `n x n` `kernel` with `1 / (1 + |y_i - y_j|^2)` (zero on the diagonal) and returns
/// its sum.
fn student_kernel(y: &Array2<f64>, kernel: &mut [f64]) -> f64 {
    let n = y.nrows();
    let coords = y.as_standard_layout();
    let coords = coords.as_slice().expect("standard layout");
    let mut total = 0.0;
    for i in 0..n {
        kernel[i * n + i] = 0.0;
        let (xi, yi) = (coords[2 * i], coords[2 * i + 1]);
        for j in i + 1..n {
            let (dx, dy) = (xi - coords[2 * j], yi - coords[2 * j + 1]);
            let k = 1.0 / (1.0 + dx * dx + dy * dy);
            kernel[i * n + j] = k;
            kernel[j * n + i] = k;
            total += 2.0 * k;
        }
    }
    total
}

/// The t-SNE cost, KL(P || Q), of embedding `y` for joint probabilities `p`.
pub fn kl_divergence(p: &Array2<f64>, y: &Array2<f64>) -> f64 {
    let n = y.nrows();
    let mut kernel = vec![0.0; n * n];
    let total = student_kernel(y, &mut kernel);
    let mut cost = 0.0;
    for i in 0..n {
        for j in 0..n {
            if i != j && p[[i, j]] > 0.0 {
                cost += p[[i, j]] * (p[[i, j]] / (kernel[i * n + j] / total).max(1e-300)).ln();
            }
        }
    }
    cost
}

/// Squared Euclidean distances between the rows of `x`.
pub fn squared_distances(x: &Array2<f64>) -> Array2<f64> {
    let n = x.nrows();
    let mut d = Array2::zeros((n, n));
    for i in 0..n {
        for j in i + 1..n {
            let dist: f64 = x.row(i).iter().zip(x.row(j)).map(|(a, b)| (a - b) * (a - b)).sum();
            d[[i, j]] = dist;
            d[[j, i]] = dist;
        }
    }
    d
}

/// The symmetric joint probabilities `P = (P_{j|i} + P_{i|j}) / 2n` of the rows of `x`, each conditional
/// distribution calibrated to `perplexity`. Panics unless the perplexity is positive and finite.
pub fn joint_probabilities(x: &Array2<f64>, perplexity: f64) -> Array2<f64> {
    assert!(perplexity.is_finite() && perplexity > 0.0, "tsne: perplexity must be positive, got {perplexity}");
    let n = x.nrows();
    let d = squared_distances(x);
    let mut p = Array2::zeros((n, n));
    for i in 0..n {
        let others: Vec<f64> = (0..n).filter(|&j| j != i).map(|j| d[[i, j]]).collect();
        let (row, _) = calibrate(&others, perplexity);
        for (k, j) in (0..n).filter(|&j| j != i).enumerate() {
            p[[i, j]] = row[k];
        }
    }
    let sym = &p + &p.t();
    let total = sym.sum();
    if total > 0.0 {
        sym / total
    } else {
        sym
    }
}

/// The conditional distribution `p_j ∝ exp(-beta * d_j)` over squared distances `d` (to the other points),
/// with `beta` found by binary search so that its perplexity `exp(H)` matches `perplexity`. Returns the
/// probabilities and `beta`. A perplexity beyond what `d` allows (at most its length) gives the nearest.
pub fn calibrate(distances: &[f64], perplexity: f64) -> (Vec<f64>, f64) {
    let target = perplexity.ln();
    let nearest = distances.iter().copied().fold(f64::INFINITY, f64::min);
    // Distances relative to the nearest: the normalised distribution is the same and never underflows.
    let shifted: Vec<f64> = distances.iter().map(|d| d - nearest).collect();
    let (mut beta, mut lo, mut hi) = (1.0, 0.0, f64::INFINITY);
    let mut probs = vec![0.0; distances.len()];
    for _ in 0..200 {
        let entropy = gaussian_row(&shifted, beta, &mut probs);
        let error = entropy - target;
        if error.abs() < 1e-10 {
            break;
        }
        // Entropy falls as beta rises: too spread out means beta must grow.
        if error > 0.0 {
            lo = beta;
            beta = if hi.is_finite() { (beta + hi) / 2.0 } else { beta * 2.0 };
        } else {
            hi = beta;
            beta = (beta + lo) / 2.0;
        }
    }
    gaussian_row(&shifted, beta, &mut probs);
    (probs, beta)
}

/// Writes the normalised `exp(-beta * d)` to `probs` and returns its entropy in nats.
fn gaussian_row(shifted: &[f64], beta: f64, probs: &mut [f64]) -> f64 {
    let mut sum = 0.0;
    let mut weighted = 0.0;
    for (p, d) in probs.iter_mut().zip(shifted) {
        *p = (-beta * d).exp();
        sum += *p;
        weighted += d * *p;
    }
    probs.iter_mut().for_each(|p| *p /= sum);
    sum.ln() + beta * weighted / sum
}

/// A standard normal draw (Box-Muller).
fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three Gaussian clusters of `per` points each in 10-D, unit spread, centres 10 apart, with labels.
    fn clusters(per: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut points = Vec::new();
        let mut labels = Vec::new();
        for label in 0..3 {
            for _ in 0..per {
                let point = (0..10)
                    .map(|d| (if d == label { 10.0 } else { 0.0 }) + standard_normal(&mut rng))
                    .collect::<Vec<f64>>();
                points.push(point.into_iter().map(|v| v as f32).collect());
                labels.push(label);
            }
        }
        (points, labels)
    }

    /// The fraction of points whose nearest other point in `y` has the same label.
    fn neighbour_agreement(y: &Array2<f64>, labels: &[usize]) -> f64 {
        let d = squared_distances(y);
        let n = labels.len();
        let agree = (0..n)
            .filter(|&i| {
                let nearest = (0..n).filter(|&j| j != i).min_by(|&a, &b| d[[i, a]].total_cmp(&d[[i, b]])).unwrap();
                labels[nearest] == labels[i]
            })
            .count();
        agree as f64 / n as f64
    }

    #[test]
    fn keeps_separated_clusters_apart() {
        let (points, labels) = clusters(30, 1);
        let y = tsne(&points, 15.0, 300, 7);
        assert_eq!(y.dim(), (90, 2));
        assert!(y.iter().all(|v| v.is_finite()));
        let agreement = neighbour_agreement(&y, &labels);
        assert!(agreement > 0.95, "nearest-neighbour label agreement {agreement}");
        // Clusters are far apart: every point is nearer its own cluster's centroid than any other.
        let centroid = |l: usize| {
            let rows: Vec<usize> = (0..90).filter(|&i| labels[i] == l).collect();
            [0, 1].map(|d| rows.iter().map(|&i| y[[i, d]]).sum::<f64>() / rows.len() as f64)
        };
        let centroids = [centroid(0), centroid(1), centroid(2)];
        for i in 0..90 {
            let dist = |c: [f64; 2]| (y[[i, 0]] - c[0]).hypot(y[[i, 1]] - c[1]);
            let own = dist(centroids[labels[i]]);
            assert!((0..3).all(|l| l == labels[i] || dist(centroids[l]) > own), "point {i}");
        }
    }

    #[test]
    fn deterministic_per_seed() {
        let (points, _) = clusters(10, 2);
        let a = tsne(&points, 5.0, 120, 3);
        let b = tsne(points.as_slice(), 5.0, 120, 3);
        assert_eq!(a, b);
        assert_ne!(a, tsne(&points, 5.0, 120, 4));
        let matrix = Array2::from_shape_fn((30, 10), |(i, j)| points[i][j] as f64);
        assert_eq!(tsne(&matrix, 5.0, 120, 3), a, "f32 rows and an f64 matrix give the same embedding");
    }

    #[test]
    fn optimisation_lowers_the_cost() {
        let (points, _) = clusters(10, 5);
        let p = joint_probabilities(&points.to_matrix(), 8.0);
        let cost = |iterations| kl_divergence(&p, &tsne(&points, 8.0, iterations, 9));
        // The exaggeration phase may raise the true cost; once it is over, descent lowers it.
        let (start, middle, late) = (cost(0), cost(250), cost(400));
        assert!(late < middle, "{middle} -> {late}");
        assert!(late < 0.5 * start, "{start} -> {late}");
    }

    #[test]
    fn calibration_hits_the_perplexity() {
        let mut rng = StdRng::seed_from_u64(11);
        let x = Array2::from_shape_fn((60, 5), |_| rng.gen_range(-3.0..3.0));
        let d = squared_distances(&x);
        for target in [2.0, 10.0, 30.0] {
            for i in 0..60 {
                let others: Vec<f64> = (0..60).filter(|&j| j != i).map(|j| d[[i, j]]).collect();
                let (p, beta) = calibrate(&others, target);
                assert!(beta > 0.0);
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                let entropy: f64 = -p.iter().filter(|&&v| v > 0.0).map(|v| v * v.ln()).sum::<f64>();
                let perplexity = entropy.exp();
                assert!((perplexity - target).abs() < 1e-3, "row {i}: perplexity {perplexity}, target {target}");
            }
        }
    }

    #[test]
    fn joint_probabilities_are_symmetric_and_sum_to_one() {
        let (points, _) = clusters(5, 3);
        let p = joint_probabilities(&points.to_matrix(), 4.0);
        assert!((p.sum() - 1.0).abs() < 1e-12);
        assert!(p.iter().zip(p.t().iter()).all(|(a, b)| (a - b).abs() < 1e-15));
        assert!((0..15).all(|i| p[[i, i]] == 0.0));
    }

    #[test]
    fn tiny_inputs() {
        assert_eq!(tsne(&Vec::<Vec<f32>>::new(), 5.0, 10, 0).dim(), (0, 2));
        assert_eq!(tsne(&vec![vec![1.0f32, 2.0]], 5.0, 10, 0), Array2::<f64>::zeros((1, 2)));
        let same = tsne(&vec![vec![0.5f64; 3]; 4], 30.0, 50, 0);
        assert!(same.iter().all(|v| v.is_finite()));
    }
}
