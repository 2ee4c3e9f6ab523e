//! Initialisations: fan computation as PyTorch does it, bounds and moments from large samples, determinism.

use models::init::{self, fan_in_fan_out, Nonlinearity};
use models::{Linear, Module};
use ndarray::ArrayD;
use rand::{rngs::StdRng, SeedableRng};

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn mean_var(a: &ArrayD<f64>) -> (f64, f64) {
    let n = a.len() as f64;
    let mean = a.sum() / n;
    (mean, a.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n)
}

fn max_abs(a: &ArrayD<f64>) -> f64 {
    a.iter().fold(0.0, |m, x| m.max(x.abs()))
}

#[test]
fn fans_follow_pytorch() {
    assert_eq!(fan_in_fan_out(&[10, 3]), (3, 10)); // Linear [out, in]
    assert_eq!(fan_in_fan_out(&[8, 3, 4, 4]), (48, 128)); // Conv2d [out, in, kh, kw]
                                                          // ConvTranspose2d weights are [in, out, kh, kw]; PyTorch still takes fan_in from dim 1.
    assert_eq!(fan_in_fan_out(&[16, 8, 4, 4]), (128, 256));
    assert_eq!(fan_in_fan_out(&[5, 2, 3]), (6, 15)); // Conv1d
}

#[test]
#[should_panic(expected = "at least 2 axes")]
fn fans_need_two_axes() {
    fan_in_fan_out(&[7]);
}

#[test]
fn gains() {
    assert_eq!(Nonlinearity::Relu.gain(), 2f64.sqrt());
    assert_eq!(Nonlinearity::Tanh.gain(), 5.0 / 3.0);
    assert!((Nonlinearity::LeakyRelu(5f64.sqrt()).gain() - (1.0f64 / 3.0).sqrt()).abs() < 1e-15);
}

#[test]
fn kaiming_uniform_default_has_the_right_bound_and_moments() {
    // Default layer init: kaiming_uniform(a = sqrt 5) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    let shape = [1000, 250];
    let w: ArrayD<f64> = init::default_weight(&shape, &mut rng(1));
    let bound = 1.0 / 250f64.sqrt();
    let (mean, var) = mean_var(&w);
    assert!(max_abs(&w) <= bound, "{} > {bound}", max_abs(&w));
    assert!(max_abs(&w) > 0.999 * bound, "the whole range is used");
    // Mean: sd bound/sqrt(3 n) ~ 3.7e-5; allow 5 sd. Variance bound^2/3, sd of the estimate ~0.2% of it.
    assert!(mean.abs() < 5.0 * bound / (3.0 * w.len() as f64).sqrt(), "mean {mean}");
    assert!((var / (bound * bound / 3.0) - 1.0).abs() < 0.01, "variance {var}");
    // The same draw as kaiming_uniform with a = sqrt(5).
    let k: ArrayD<f64> = init::kaiming_uniform(&shape, 5f64.sqrt(), &mut rng(1));
    assert_eq!(w, k);
}

#[test]
fn kaiming_uniform_with_a_zero_slope_has_the_relu_bound() {
    let w: ArrayD<f64> = init::kaiming_uniform(&[400, 16, 3, 3], 0.0, &mut rng(2));
    let bound = 3f64.sqrt() * 2f64.sqrt() / 144f64.sqrt(); // sqrt(3) * gain / sqrt(fan_in)
    assert!(max_abs(&w) <= bound && max_abs(&w) > 0.999 * bound);
    assert!((mean_var(&w).1 / (bound * bound / 3.0) - 1.0).abs() < 0.01);
}

#[test]
fn conv_transpose_weights_use_dim_1_for_the_bound() {
    let w: ArrayD<f64> = init::default_weight(&[64, 2, 4, 4], &mut rng(3)); // [in, out, kh, kw]
    let bound = 1.0 / 32f64.sqrt(); // fan_in = 2 * 16, not 64 * 16
    assert!(max_abs(&w) <= bound && max_abs(&w) > 0.99 * bound);
}

#[test]
fn default_bias_bound_comes_from_the_weight() {
    let b: ArrayD<f64> = init::default_bias(&[100000, 3, 2, 2], 100000, &mut rng(4));
    let bound = 1.0 / 12f64.sqrt();
    assert_eq!(b.shape(), &[100000]);
    assert!(max_abs(&b) <= bound && max_abs(&b) > 0.999 * bound);
    assert!((mean_var(&b).1 / (bound * bound / 3.0) - 1.0).abs() < 0.02);
    let empty: ArrayD<f64> = init::default_bias(&[4, 0], 4, &mut rng(4));
    assert_eq!(empty, ArrayD::<f64>::zeros(vec![4]), "zero fan_in gives a zero bound");
}

#[test]
fn xavier_bounds_and_variances() {
    let shape = [300, 500];
    let u: ArrayD<f64> = init::xavier_uniform(&shape, 2.0, &mut rng(5));
    let bound = 2.0 * (6.0f64 / 800.0).sqrt();
    assert!(max_abs(&u) <= bound && max_abs(&u) > 0.999 * bound);
    assert!((mean_var(&u).1 / (bound * bound / 3.0) - 1.0).abs() < 0.01);
    let n: ArrayD<f64> = init::xavier_normal(&shape, 2.0, &mut rng(6));
    let (mean, var) = mean_var(&n);
    assert!(mean.abs() < 0.01 * var.sqrt());
    assert!((var / (4.0 * 2.0 / 800.0) - 1.0).abs() < 0.01);
}

#[test]
fn normal_and_kaiming_normal_moments() {
    let n: ArrayD<f64> = init::normal(&[200000], 1.5, 0.5, &mut rng(7));
    let (mean, var) = mean_var(&n);
    assert!((mean - 1.5).abs() < 5.0 * 0.5 / (200000f64).sqrt(), "mean {mean}");
    assert!((var.sqrt() - 0.5).abs() < 0.005, "std {}", var.sqrt());
    let k: ArrayD<f64> = init::kaiming_normal(&[1000, 200], 0.0, &mut rng(8));
    assert!((mean_var(&k).1.sqrt() / (2f64.sqrt() / 200f64.sqrt()) - 1.0).abs() < 0.01);
}

#[test]
fn constants() {
    assert_eq!(init::zeros::<f32>(&[2, 3]), ArrayD::<f32>::zeros(vec![2, 3]));
    assert_eq!(init::ones::<f64>(&[4]), ArrayD::from_elem(vec![4], 1.0));
}

#[test]
fn draws_are_deterministic_per_seed() {
    let a: ArrayD<f64> = init::default_weight(&[20, 10], &mut rng(9));
    let b: ArrayD<f64> = init::default_weight(&[20, 10], &mut rng(9));
    let c: ArrayD<f64> = init::default_weight(&[20, 10], &mut rng(10));
    assert_eq!(a, b);
    assert_ne!(a, c);
    // f32 draws are the f64 draws rounded.
    let f: ArrayD<f32> = init::default_weight(&[20, 10], &mut rng(9));
    assert_eq!(f, a.mapv(|x| x as f32));
    // A layer from a seed is reproducible, with both tensors within 1/sqrt(in).
    let l1 = Linear::<f32>::new(16, 8, &mut rng(11));
    let l2 = Linear::<f32>::new(16, 8, &mut rng(11));
    for ((n1, p1), (_, p2)) in l1.params().iter().zip(l2.params()) {
        assert_eq!(*p1.value(), *p2.value(), "{n1}");
        assert!(p1.value().iter().all(|x| x.abs() <= 0.25), "{n1}");
    }
}
