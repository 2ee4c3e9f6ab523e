//! The SRN's inner loop, unrolled on the engine: r = 3 steps of SGD with momentum 0.5 on
//! `L(S) = sum((H_agg(S) - z)^2)`, H_agg a per-element MLP followed by FSPool. The outer gradient with respect
//! to z, S0 and every parameter of H_agg (which reaches them only through the inner gradients, i.e. second
//! order) must match central finite differences of the whole unrolled procedure.

use autograd::check::{check_grad_order, test_fn, uniform, Tolerance};
use autograd::ops::fspool::fspool;
use autograd::{Tape, Var};
use ndarray::ArrayD;

const STEPS: usize = 3;
const ALPHA: f64 = 0.1;
const MOMENTUM: f64 = 0.5;

/// H_agg: `[B, N, d]` -> per-element Linear-ReLU-Linear -> divided by N -> FSPool over the N elements -> `[B, c]`.
fn h_agg<'t>(s: Var<'t, f64>, p: &[Var<'t, f64>]) -> Var<'t, f64> {
    let (w1, b1, w2, b2, pool) = (p[0], p[1], p[2], p[3], p[4]);
    let n = s.shape()[1] as f64;
    let h = (s.matmul(w1.t()) + b1).relu().matmul(w2.t()) + b2;
    fspool(h.permute(&[0, 2, 1]) / n, pool, None).0
}

/// S_r after `STEPS` inner steps; `create_graph` so that the outer loss differentiates through them.
fn refine<'t>(tape: &'t Tape<f64>, s0: Var<'t, f64>, z: Var<'t, f64>, p: &[Var<'t, f64>]) -> Var<'t, f64> {
    let mut s = s0;
    let mut buf: Option<Var<'t, f64>> = None;
    for _ in 0..STEPS {
        let loss = (h_agg(s, p) - z).square().sum();
        let g = tape.grad(&[loss], &[s], true)[0];
        let b = match buf {
            None => g,
            Some(b) => b * MOMENTUM + g,
        };
        buf = Some(b);
        s = s - b * ALPHA;
    }
    s
}

#[test]
fn outer_gradient_through_three_inner_steps_matches_finite_differences() {
    let (b, n, d, hidden, c, k) = (2, 4, 3, 5, 3, 4);
    let inputs: Vec<ArrayD<f64>> = vec![
        uniform(&[b, c], -1.0, 1.0, 1),      // z
        uniform(&[b, n, d], -1.0, 1.0, 2),   // S0
        uniform(&[hidden, d], -1.0, 1.0, 3), // W1
        uniform(&[hidden], -0.5, 0.5, 4),    // b1
        uniform(&[c, hidden], -1.0, 1.0, 5), // W2
        uniform(&[c], -0.5, 0.5, 6),         // b2
        uniform(&[c, k + 1], -1.0, 1.0, 7),  // FSPool weights
    ];
    let f = test_fn(|tape, x| {
        let s = refine(tape, x[1], x[0], &x[2..]);
        // An outer loss that uses the refined set non-trivially.
        (s.tanh() * s).sum_axes(&[2], false)
    });
    let tol = Tolerance { eps: 1e-6, atol: 1e-6, rtol: 1e-4 };
    check_grad_order(f, &inputs, 1, tol).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn h_agg_parameters_get_gradient_only_through_the_inner_steps() {
    // With zero inner steps S_r = S0 and H_agg's parameters get no gradient; with three they do.
    let tape = Tape::<f64>::new();
    let z = tape.leaf(uniform(&[2, 3], -1.0, 1.0, 1));
    let s0 = tape.leaf(uniform(&[2, 4, 3], -1.0, 1.0, 2));
    let p: Vec<_> = [vec![5, 3], vec![5], vec![3, 5], vec![3], vec![3, 5]]
        .iter()
        .enumerate()
        .map(|(i, s)| tape.leaf(uniform(s, -1.0, 1.0, 10 + i as u64)))
        .collect();
    let s = refine(&tape, s0, z, &p);
    let grads = tape.grad(&[s.square().sum()], &p, false);
    for (i, g) in grads.iter().enumerate() {
        let norm: f64 = g.value().iter().map(|v| v * v).sum();
        assert!(norm > 1e-8, "parameter {i} got no gradient through the inner loop");
    }
    let direct = tape.grad(&[s0.square().sum()], &p, false);
    assert!(direct.iter().all(|g| g.value().iter().all(|&v| v == 0.0)));
}
