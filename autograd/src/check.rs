//! Gradient checks against central finite differences, to any order (PyTorch's gradcheck / gradgradcheck).
//!
//! A function `f(x_1, .., x_m)` with a tensor output is first reduced to the scalar `<r, f(x)>` with fixed
//! random weights `r`, so one gradient checks every output element. Order 1 compares that scalar's gradient
//! with central differences. Order `n + 1` checks order 1 on the function
//! `x -> sum_i <v_i, grad_{x_i} <r, f_n(x)>>` built with `create_graph = true`: the gradient of a gradient's
//! weighted sum, i.e. Hessian-vector products at order 2.

use crate::{Tape, Var};
use ndarray::ArrayD;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::rc::Rc;

/// A function under test: builds its output from the input leaves on the given tape.
pub type TestFn = Rc<dyn for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>>;

/// Step and tolerances of a check: `|analytic - numeric| <= atol + rtol * |numeric|` for every element.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub eps: f64,
    pub atol: f64,
    pub rtol: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { eps: 1e-6, atol: 1e-6, rtol: 1e-4 }
    }
}

/// Uniform values in `[lo, hi)` of the given shape, reproducible from `seed`.
pub fn uniform(shape: &[usize], lo: f64, hi: f64, seed: u64) -> ArrayD<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(shape, || rng.gen_range(lo..hi))
}

/// Values in `[-hi, -lo] ∪ [lo, hi]`: away from zero, where relu, abs and the like have kinks.
pub fn away_from_zero(shape: &[usize], lo: f64, hi: f64, seed: u64) -> ArrayD<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(shape, || {
        let m = rng.gen_range(lo..hi);
        if rng.gen_bool(0.5) {
            m
        } else {
            -m
        }
    })
}

/// Distinct values in random order, at least `gap` apart: no ties for max, sort and the like.
pub fn distinct(shape: &[usize], gap: f64, seed: u64) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut vals: Vec<f64> =
        (0..n).map(|i| (i as f64 - n as f64 / 2.0) * gap + rng.gen_range(0.0..gap * 0.3)).collect();
    for i in (1..n).rev() {
        vals.swap(i, rng.gen_range(0..=i));
    }
    ArrayD::from_shape_vec(shape, vals).expect("shape")
}

/// `<r, f(x)>` with weights fixed by the output's shape.
fn scalarize<'t>(y: Var<'t, f64>, seed: u64) -> Var<'t, f64> {
    let r = uniform(&y.shape(), 0.5, 1.5, seed);
    (y * y.constant(r)).sum()
}

/// The function whose first-order check is an order-`order` check of `f`.
fn lift(f: TestFn, shapes: &[Vec<usize>], order: usize) -> TestFn {
    let mut f = f;
    for level in 1..order {
        let vs: Vec<ArrayD<f64>> =
            shapes.iter().enumerate().map(|(i, s)| uniform(s, -1.0, 1.0, 1000 * level as u64 + i as u64)).collect();
        let inner = f.clone();
        f = Rc::new(move |tape, xs| {
            let l = scalarize(inner(tape, xs), level as u64);
            let gs = tape.grad(&[l], xs, true);
            let terms: Vec<_> = gs.iter().zip(&vs).map(|(g, v)| (*g * g.constant(v.clone())).sum()).collect();
            terms.into_iter().reduce(|a, b| a + b).expect("at least one input")
        });
    }
    f
}

fn eval(f: &TestFn, inputs: &[ArrayD<f64>]) -> f64 {
    let tape = Tape::new();
    let xs: Vec<_> = inputs.iter().map(|x| tape.leaf(x.clone())).collect();
    scalarize(f(&tape, &xs), 0).item()
}

/// Check the order-`order` derivatives of `f` at `inputs` against central differences. On failure the
/// message names the input, the element and both values.
pub fn check_grad_order(f: TestFn, inputs: &[ArrayD<f64>], order: usize, tol: Tolerance) -> Result<(), String> {
    assert!(order >= 1, "check_grad_order: order must be at least 1");
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|x| x.shape().to_vec()).collect();
    let f = lift(f, &shapes, order);
    let analytic: Vec<ArrayD<f64>> = {
        let tape = Tape::new();
        let xs: Vec<_> = inputs.iter().map(|x| tape.leaf(x.clone())).collect();
        let l = scalarize(f(&tape, &xs), 0);
        tape.grad(&[l], &xs, false).iter().map(|g| (*g.value()).clone()).collect()
    };
    let mut worst: Option<(f64, String)> = None;
    for (i, x) in inputs.iter().enumerate() {
        for j in 0..x.len() {
            let mut probe = inputs.to_vec();
            let at = |p: &mut Vec<ArrayD<f64>>, d: f64| {
                let e = p[i].as_slice_mut().expect("contiguous input");
                e[j] = x.as_slice().expect("contiguous input")[j] + d;
            };
            at(&mut probe, tol.eps);
            let plus = eval(&f, &probe);
            at(&mut probe, -tol.eps);
            let minus = eval(&f, &probe);
            let numeric = (plus - minus) / (2.0 * tol.eps);
            let a = analytic[i].as_slice().expect("contiguous gradient")[j];
            let excess = (a - numeric).abs() - (tol.atol + tol.rtol * numeric.abs());
            if excess > 0.0 && worst.as_ref().is_none_or(|(w, _)| excess > *w) {
                let msg = format!(
                    "order {order}: input {i} (shape {:?}) element {j}: analytic {a:.9e}, numeric {numeric:.9e}",
                    x.shape()
                );
                worst = Some((excess, msg));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((_, msg)) => Err(msg),
    }
}

/// First- and second-order checks with default tolerances; panics with the worst mismatch.
pub fn assert_grads(f: TestFn, inputs: &[ArrayD<f64>], orders: &[usize]) {
    for &order in orders {
        if let Err(e) = check_grad_order(f.clone(), inputs, order, Tolerance::default()) {
            panic!("gradient check failed: {e}");
        }
    }
}

/// Wrap a closure as a [`TestFn`] (the closure's lifetimes are inferred from this signature).
pub fn test_fn<F>(f: F) -> TestFn
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64> + 'static,
{
    Rc::new(f)
}

/// Declare first- and second-order gradient checks, one module per case:
///
/// ```text
/// grad_tests! {
///     exp: |t, x| x[0].exp(), [uniform(&[2, 3], -1.0, 1.0, 1)];
/// }
/// ```
/// expands to `mod exp { #[test] fn first_order() .. #[test] fn second_order() .. }`.
#[macro_export]
macro_rules! grad_tests {
    ($($name:ident: |$t:ident, $x:ident| $body:expr, [$($input:expr),* $(,)?];)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[allow(unused_variables)]
                fn f() -> $crate::check::TestFn {
                    $crate::check::test_fn(|$t, $x| $body)
                }
                fn inputs() -> Vec<ndarray::ArrayD<f64>> {
                    vec![$($input),*]
                }
                #[test]
                fn first_order() {
                    $crate::check::assert_grads(f(), &inputs(), &[1]);
                }
                #[test]
                fn second_order() {
                    $crate::check::assert_grads(f(), &inputs(), &[2]);
                }
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Op;

    /// `x^2` with a deliberately wrong backward (`x` instead of `2x`): the check must catch it.
    struct WrongSquare;
    impl Op<f64> for WrongSquare {
        fn name(&self) -> &'static str {
            "wrong_square"
        }
        fn backward<'t>(
            &self,
            inputs: &[Var<'t, f64>],
            _y: Var<'t, f64>,
            g: Var<'t, f64>,
        ) -> Vec<Option<Var<'t, f64>>> {
            vec![Some(g * inputs[0])]
        }
    }

    fn wrong_square<'t>(x: Var<'t, f64>) -> Var<'t, f64> {
        let v = x.value().mapv(|a| a * a);
        x.tape().record(v, WrongSquare, &[x])
    }

    #[test]
    fn a_wrong_first_derivative_is_caught() {
        let f = test_fn(|_, x| wrong_square(x[0]));
        let err = check_grad_order(f, &[uniform(&[3], 0.5, 1.0, 1)], 1, Tolerance::default()).unwrap_err();
        assert!(err.contains("input 0"), "{err}");
    }

    /// `x^2` whose backward is right in value but built from a constant (`g * const(2x)`): first order passes,
    /// the second-order check must see that the gradient does not differentiate.
    struct DetachedSquare;
    impl Op<f64> for DetachedSquare {
        fn name(&self) -> &'static str {
            "detached_square"
        }
        fn backward<'t>(
            &self,
            inputs: &[Var<'t, f64>],
            _y: Var<'t, f64>,
            g: Var<'t, f64>,
        ) -> Vec<Option<Var<'t, f64>>> {
            vec![Some(g * inputs[0].map_const(|a| 2.0 * a))]
        }
    }

    #[test]
    fn a_backward_that_does_not_differentiate_is_caught_at_second_order() {
        let f = test_fn(|_, x| {
            let v = x[0].value().mapv(|a| a * a);
            x[0].tape().record(v, DetachedSquare, &[x[0]])
        });
        let x = [uniform(&[3], 0.5, 1.0, 2)];
        check_grad_order(f.clone(), &x, 1, Tolerance::default()).unwrap();
        assert!(check_grad_order(f, &x, 2, Tolerance::default()).is_err());
    }

    #[test]
    fn a_correct_op_passes_to_third_order() {
        let f = test_fn(|_, x| (x[0] * x[0] * x[0]).exp());
        for order in 1..=3 {
            check_grad_order(
                f.clone(),
                &[uniform(&[3], -0.5, 0.5, 3)],
                order,
                Tolerance { eps: 1e-4, atol: 1e-5, rtol: 1e-3 },
            )
            .unwrap();
        }
    }
}
