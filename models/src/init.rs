//! PyTorch's initialisations (`torch.nn.init` and the layers' `reset_parameters`), drawn from a seeded RNG.
//!
//! Values are drawn in f64 and rounded to `T`, so one seed gives the same parameters on every platform.
//! Shapes follow PyTorch: a Linear weight is `[out, in]`, a conv weight `[out, in, kh, kw]`, a transposed
//! conv weight `[in, out, kh, kw]`.

use autograd::Float;
use ndarray::ArrayD;
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// `(fan_in, fan_out)` of a weight as PyTorch's `_calculate_fan_in_and_fan_out` computes them:
/// `fan_in = shape[1] * receptive field`, `fan_out = shape[0] * receptive field`, where the receptive field is
/// the product of `shape[2..]`. For a transposed conv weight `[in, out, kh, kw]` this makes `fan_in` come from
/// the *output* channels, as in PyTorch. Panics for fewer than two axes (PyTorch raises).
pub fn fan_in_fan_out(shape: &[usize]) -> (usize, usize) {
    assert!(shape.len() >= 2, "fan_in_fan_out: fan in and fan out need at least 2 axes, got shape {shape:?}");
    let receptive: usize = shape[2..].iter().product();
    (shape[1] * receptive, shape[0] * receptive)
}

/// The gain `calculate_gain` gives a nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    Linear,
    Sigmoid,
    Tanh,
    Relu,
    LeakyRelu(f64),
}

impl Nonlinearity {
    pub fn gain(self) -> f64 {
        match self {
            Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
            Nonlinearity::Tanh => 5.0 / 3.0,
            Nonlinearity::Relu => 2f64.sqrt(),
            Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
        }
    }
}

/// All zeros.
pub fn zeros<T: Float>(shape: &[usize]) -> ArrayD<T> {
    ArrayD::zeros(shape)
}

/// All ones.
pub fn ones<T: Float>(shape: &[usize]) -> ArrayD<T> {
    ArrayD::ones(shape)
}

/// `U(lo, hi)` element-wise (`lo == hi` gives that constant).
pub fn uniform<T: Float, R: Rng + ?Sized>(shape: &[usize], lo: f64, hi: f64, rng: &mut R) -> ArrayD<T> {
    assert!(lo <= hi, "uniform: empty range [{lo}, {hi})");
    ArrayD::from_shape_simple_fn(shape, || T::of(if lo == hi { lo } else { rng.gen_range(lo..hi) }))
}

/// `N(mean, std^2)` element-wise.
pub fn normal<T: Float, R: Rng + ?Sized>(shape: &[usize], mean: f64, std: f64, rng: &mut R) -> ArrayD<T> {
    let dist = Normal::new(mean, std).unwrap_or_else(|e| panic!("normal: invalid std {std}: {e}"));
    ArrayD::from_shape_simple_fn(shape, || T::of(dist.sample(rng)))
}

/// `kaiming_uniform_(w, a, mode='fan_in', nonlinearity='leaky_relu')`: `U(-b, b)` with
/// `b = sqrt(3) * gain / sqrt(fan_in)` and `gain = sqrt(2 / (1 + a^2))`.
pub fn kaiming_uniform<T: Float, R: Rng + ?Sized>(shape: &[usize], a: f64, rng: &mut R) -> ArrayD<T> {
    let (fan_in, _) = fan_in_fan_out(shape);
    let std = Nonlinearity::LeakyRelu(a).gain() / (fan_in as f64).sqrt();
    let bound = 3f64.sqrt() * std;
    uniform(shape, -bound, bound, rng)
}

/// `kaiming_normal_(w, a, mode='fan_in', nonlinearity='leaky_relu')`: `N(0, (gain / sqrt(fan_in))^2)`.
pub fn kaiming_normal<T: Float, R: Rng + ?Sized>(shape: &[usize], a: f64, rng: &mut R) -> ArrayD<T> {
    let (fan_in, _) = fan_in_fan_out(shape);
    normal(shape, 0.0, Nonlinearity::LeakyRelu(a).gain() / (fan_in as f64).sqrt(), rng)
}

/// `xavier_uniform_(w, gain)`: `U(-b, b)` with `b = gain * sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform<T: Float, R: Rng + ?Sized>(shape: &[usize], gain: f64, rng: &mut R) -> ArrayD<T> {
    let (fan_in, fan_out) = fan_in_fan_out(shape);
    let bound = gain * (6.0 / (fan_in + fan_out) as f64).sqrt();
    uniform(shape, -bound, bound, rng)
}

/// `xavier_normal_(w, gain)`: `N(0, gain^2 * 2 / (fan_in + fan_out))`.
pub fn xavier_normal<T: Float, R: Rng + ?Sized>(shape: &[usize], gain: f64, rng: &mut R) -> ArrayD<T> {
    let (fan_in, fan_out) = fan_in_fan_out(shape);
    normal(shape, 0.0, gain * (2.0 / (fan_in + fan_out) as f64).sqrt(), rng)
}

/// The default weight initialisation of `nn.Linear`, `nn.Conv*` and `nn.ConvTranspose*`:
/// `kaiming_uniform(a = sqrt(5))`, which is `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
pub fn default_weight<T: Float, R: Rng + ?Sized>(shape: &[usize], rng: &mut R) -> ArrayD<T> {
    kaiming_uniform(shape, 5f64.sqrt(), rng)
}

/// The default bias initialisation of those layers: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with `fan_in` taken
/// from the weight's shape (zero bound when `fan_in` is 0, as in PyTorch).
pub fn default_bias<T: Float, R: Rng + ?Sized>(weight_shape: &[usize], len: usize, rng: &mut R) -> ArrayD<T> {
    let (fan_in, _) = fan_in_fan_out(weight_shape);
    let bound = if fan_in > 0 { 1.0 / (fan_in as f64).sqrt() } else { 0.0 };
    uniform(&[len], -bound, bound, rng)
}
