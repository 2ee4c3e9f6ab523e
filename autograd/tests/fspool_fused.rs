//! The fused FSPool ops against the composition of generic ops they replace: the same values, permutation,
//! first-order gradients and second-order gradients (a Hessian-vector product through both `x` and `W`), with
//! and without per-sample set sizes, and the fused ops' own finite-difference checks to second order.

use autograd::check::{distinct, uniform};
use autograd::ops::fspool::{fspool, fspool_composite};
use autograd::{grad_tests, Tape, Var};
use ndarray::ArrayD;

type PoolFn = for<'t> fn(Var<'t, f64>, Var<'t, f64>, Option<&[usize]>) -> (Var<'t, f64>, ArrayD<usize>);

/// y, perm, dy/dx and dy/dW for a weighted loss, and a second-order term: the gradient of
/// `<dL/dx, v> + <dL/dW, u>` with respect to x and W.
fn run(f: PoolFn, x: &ArrayD<f64>, w: &ArrayD<f64>, sizes: Option<&[usize]>) -> Vec<ArrayD<f64>> {
    let tape = Tape::<f64>::new();
    let (xv, wv) = (tape.leaf(x.clone()), tape.leaf(w.clone()));
    let (y, perm) = f(xv, wv, sizes);
    let c = tape.constant(uniform(&y.shape(), -1.0, 1.0, 77));
    // A loss that is not linear in y, so the second derivative has a non-trivial seed.
    let loss = ((y * c).tanh() * y).sum();
    let g = tape.grad(&[loss], &[xv, wv], true);
    let v = tape.constant(uniform(x.shape(), -1.0, 1.0, 78));
    let u = tape.constant(uniform(w.shape(), -1.0, 1.0, 79));
    let hv = tape.grad(&[(g[0] * v).sum() + (g[1] * u).sum()], &[xv, wv], false);
    let perm = perm.mapv(|p| p as f64);
    vec![
        (*y.value()).clone(),
        perm,
        (*g[0].value()).clone(),
        (*g[1].value()).clone(),
        (*hv[0].value()).clone(),
        (*hv[1].value()).clone(),
    ]
}

#[test]
fn fused_matches_the_composite_to_second_order() {
    for (case, &(b, c, n, k)) in [(3, 4, 16, 20), (2, 5, 7, 3), (4, 1, 1, 2), (3, 6, 25, 20)].iter().enumerate() {
        let x = distinct(&[b, c, n], 0.05, case as u64);
        let w = uniform(&[c, k + 1], -1.0, 1.0, 100 + case as u64);
        let sizes: Vec<usize> = (0..b).map(|i| n - i.min(n)).collect();
        for sz in [None, Some(&sizes[..])] {
            let fused = run(fspool, &x, &w, sz);
            let composite = run(fspool_composite, &x, &w, sz);
            for (i, (a, e)) in fused.iter().zip(&composite).enumerate() {
                assert_eq!(a.shape(), e.shape());
                let worst = a.iter().zip(e).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
                assert!(worst < 1e-10, "case {case} sizes {sz:?} output {i}: differs by {worst}");
            }
        }
    }
}

grad_tests! {
    fused_fspool_uniform: |_t, x| fspool(x[0], x[1], None).0.tanh(),
        [distinct(&[2, 3, 6], 0.1, 1), uniform(&[3, 5], -1.0, 1.0, 2)];
    fused_fspool_sizes: |_t, x| fspool(x[0], x[1], Some(&[6, 3, 0])).0.tanh(),
        [distinct(&[3, 2, 6], 0.1, 3), uniform(&[2, 4], -1.0, 1.0, 4)];
}
