//! NaN passes through the piecewise ops (relu, leaky relu, clamp, maximum, minimum, max), as in PyTorch: a
//! model whose values went NaN must not draw a finite image or report a finite loss. Forward values in f32
//! and f64; the gradients away from NaN are checked against finite differences in grad_elementwise.rs.

use autograd::{Tape, Var};
use kernels::Float;
use ndarray::ArrayD;

fn arr<T: Float>(v: &[f64]) -> ArrayD<T> {
    ArrayD::from_shape_vec(vec![v.len()], v.iter().map(|&x| T::of(x)).collect()).unwrap()
}

/// `op` applied to [NaN, -2, -0.5, 0, 0.5, 2, +inf, -inf]: the values as f64.
fn unary<T: Float>(op: impl for<'t> Fn(Var<'t, T>) -> Var<'t, T>) -> Vec<f64> {
    let tape = Tape::<T>::new();
    let x = tape.constant(arr(&[f64::NAN, -2.0, -0.5, 0.0, 0.5, 2.0, f64::INFINITY, f64::NEG_INFINITY]));
    values(op(x))
}

fn values<T: Float>(x: Var<'_, T>) -> Vec<f64> {
    x.value().iter().map(|v| <T as Float>::to_f64(*v)).collect()
}

fn same(found: &[f64], expected: &[f64]) -> bool {
    found.len() == expected.len() && found.iter().zip(expected).all(|(a, b)| a == b || (a.is_nan() && b.is_nan()))
}

fn unary_ops<T: Float>() {
    let (nan, inf) = (f64::NAN, f64::INFINITY);
    let cases: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        ("relu", unary::<T>(|x| x.relu()), vec![nan, 0.0, 0.0, 0.0, 0.5, 2.0, inf, 0.0]),
        ("leaky_relu", unary::<T>(|x| x.leaky_relu(T::of(0.5))), vec![nan, -1.0, -0.25, 0.0, 0.5, 2.0, inf, -inf]),
        ("clamp", unary::<T>(|x| x.clamp(T::of(-1.0), T::of(1.0))), vec![nan, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0, -1.0]),
        ("softplus", unary::<T>(|x| x.softplus()).into_iter().take(1).collect(), vec![nan]),
    ];
    for (name, found, expected) in cases {
        assert!(same(&found, &expected), "{} {name}: {found:?}, expected {expected:?}", T::NAME);
    }
}

fn binary_ops<T: Float>() {
    let nan = f64::NAN;
    let tape = Tape::<T>::new();
    let a = tape.constant(arr(&[nan, 1.0, nan, 3.0, -1.0]));
    let b = tape.constant(arr(&[0.0, nan, nan, 2.0, 4.0]));
    let v = values::<T>;
    for (name, found, expected) in [
        ("maximum(a, b)", v(a.maximum(b)), vec![nan, nan, nan, 3.0, 4.0]),
        ("maximum(b, a)", v(b.maximum(a)), vec![nan, nan, nan, 3.0, 4.0]),
        ("minimum(a, b)", v(a.minimum(b)), vec![nan, nan, nan, 2.0, -1.0]),
        ("minimum(b, a)", v(b.minimum(a)), vec![nan, nan, nan, 2.0, -1.0]),
    ] {
        assert!(same(&found, &expected), "{} {name}: {found:?}, expected {expected:?}", T::NAME);
    }
    // Broadcast (the fast loops for a repeated operand), the NaN in either operand.
    let m =
        tape.constant(ArrayD::from_shape_vec(vec![2, 2], vec![T::of(1.0), T::nan(), T::of(5.0), T::of(-5.0)]).unwrap());
    let row = tape.constant(arr(&[nan, 0.0]));
    assert!(same(&v(m.maximum(row)), &[nan, nan, nan, 0.0]), "{} broadcast maximum", T::NAME);
    assert!(same(&v(row.minimum(m)), &[nan, nan, nan, -5.0]), "{} broadcast minimum", T::NAME);
}

fn reductions<T: Float>() {
    let nan = f64::NAN;
    let tape = Tape::<T>::new();
    let m = tape.constant(
        ArrayD::from_shape_vec(vec![2, 3], [1.0, nan, 3.0, 4.0, 5.0, 6.0].iter().map(|&x| T::of(x)).collect()).unwrap(),
    );
    let rows = values(m.max_axes(&[1], false));
    assert!(same(&rows, &[nan, 6.0]), "{} max over rows: {rows:?}", T::NAME);
    let first_nan = tape.constant(arr(&[nan, 1.0, 2.0]));
    assert!(first_nan.max_axes(&[0], false).value().iter().all(|v| v.is_nan()), "{} max with NaN first", T::NAME);
    assert!(m.logsumexp(&[1], false).value().iter().next().unwrap().is_nan(), "{} logsumexp", T::NAME);
}

#[test]
fn unary_ops_propagate_nan_f32() {
    unary_ops::<f32>();
}

#[test]
fn unary_ops_propagate_nan_f64() {
    unary_ops::<f64>();
}

#[test]
fn maximum_and_minimum_propagate_nan() {
    binary_ops::<f32>();
    binary_ops::<f64>();
}

#[test]
fn max_reductions_propagate_nan() {
    reductions::<f32>();
    reductions::<f64>();
}
