//! The tape's own behaviour: create_graph on and off, no-grad mode, pruning, and derivatives of any order.

use autograd::check::{check_grad_order, test_fn, uniform, Tolerance};
use autograd::Tape;
use ndarray::{array, ArrayD};

fn values(v: &ArrayD<f64>) -> Vec<f64> {
    v.iter().copied().collect()
}

#[test]
fn hessian_vector_product_of_a_cubic() {
    // f(x) = sum(x^3): grad = 3x^2, Hessian = diag(6x), so H v = 6 x v.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(array![1.0, -2.0, 0.5].into_dyn());
    let v = tape.constant(array![1.0, 2.0, -1.0].into_dyn());
    let f = (x * x * x).sum();
    let g = tape.grad(&[f], &[x], true)[0];
    assert_eq!(values(&g.value()), vec![3.0, 12.0, 0.75]);
    let hv = tape.grad(&[(g * v).sum()], &[x], false)[0];
    assert_eq!(values(&hv.value()), vec![6.0, -24.0, -3.0]);
}

#[test]
fn without_create_graph_the_gradient_is_a_constant() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(array![1.0, 2.0].into_dyn());
    let g = tape.grad(&[(x * x).sum()], &[x], false)[0];
    assert!(!g.requires_grad());
    let with = tape.grad(&[(x * x).sum()], &[x], true)[0];
    assert!(with.requires_grad());
}

#[test]
fn no_grad_records_constants_and_restores_recording() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(array![1.0, 2.0].into_dyn());
    let y = tape.no_grad(|| (x * x).exp());
    assert!(!y.requires_grad());
    assert!(tape.is_recording());
    let g = tape.grad(&[y.sum()], &[x], false)[0];
    assert_eq!(values(&g.value()), vec![0.0, 0.0]);
}

#[test]
fn enable_grad_inside_no_grad_records_again() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(array![1.0, 2.0].into_dyn());
    let (outer, inner) = tape.no_grad(|| (x * x, tape.enable_grad(|| x * x)));
    assert!(!outer.requires_grad());
    assert!(inner.requires_grad());
    assert!(!tape.no_grad(|| tape.is_recording()));
    let g = tape.grad(&[inner.sum()], &[x], false)[0];
    assert_eq!(values(&g.value()), vec![2.0, 4.0]);
}

#[test]
fn detach_stops_the_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(array![3.0].into_dyn());
    let y = x * x.detach();
    let g = tape.grad(&[y.sum()], &[x], false)[0];
    assert_eq!(values(&g.value()), vec![3.0]);
}

#[test]
fn gradients_of_several_outputs_add_up_and_unused_inputs_get_zero() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(array![1.0, 2.0].into_dyn());
    let unused = tape.leaf(array![5.0].into_dyn());
    let a = (x * 2.0).sum();
    let b = x.square().sum();
    let g = tape.grad(&[a, b], &[x, unused], false);
    assert_eq!(values(&g[0].value()), vec![4.0, 6.0]);
    assert_eq!(values(&g[1].value()), vec![0.0]);
}

#[test]
fn gradient_with_respect_to_an_intermediate() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(array![1.0, 2.0].into_dyn());
    let h = x * 3.0;
    let y = h.square().sum();
    let g = tape.grad(&[y], &[h], false)[0];
    assert_eq!(values(&g.value()), vec![6.0, 12.0]);
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] cannot be broadcast together")]
fn a_shape_mismatch_names_the_op_and_both_shapes() {
    let tape = Tape::<f64>::new();
    let _ = tape.leaf(ArrayD::zeros(vec![2, 3])) + tape.leaf(ArrayD::zeros(vec![4]));
}

#[test]
#[should_panic(expected = "matmul: shapes [2, 3] and [2, 3] do not match")]
fn a_matmul_mismatch_names_both_shapes() {
    let tape = Tape::<f64>::new();
    let _ = tape.leaf(ArrayD::zeros(vec![2, 3])).matmul(tape.leaf(ArrayD::zeros(vec![2, 3])));
}

fn third_order(f: autograd::check::TestFn, inputs: &[ArrayD<f64>]) {
    let tol = Tolerance { eps: 1e-4, atol: 1e-6, rtol: 1e-4 };
    for order in 1..=3 {
        check_grad_order(f.clone(), inputs, order, tol).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn third_order_exp_chain() {
    third_order(test_fn(|_, x| (x[0] * 0.5).exp() * x[0]), &[uniform(&[2, 3], -1.0, 1.0, 2)]);
}

#[test]
fn third_order_tanh_chain() {
    third_order(
        test_fn(|_, x| (x[0] * x[1]).tanh().tanh()),
        &[uniform(&[3], -1.0, 1.0, 3), uniform(&[3], -1.0, 1.0, 4)],
    );
}

#[test]
fn third_order_matmul_chain() {
    third_order(
        test_fn(|_, x| x[0].matmul(x[1]).tanh().matmul(x[1].t())),
        &[uniform(&[2, 3], -1.0, 1.0, 5), uniform(&[3, 3], -1.0, 1.0, 6)],
    );
}

#[test]
fn fifth_derivative_of_x5_is_exact() {
    // Four nested gradients with create_graph, then a fifth without: d^5/dx^5 x^5 = 120 per element.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(array![0.5, -1.0].into_dyn());
    let mut g = x.powf(5.0).sum();
    for _ in 0..4 {
        g = tape.grad(&[g], &[x], true)[0].sum();
    }
    let d4 = tape.grad(&[g], &[x], false)[0];
    assert_eq!(values(&d4.value()), vec![120.0, 120.0]);
}

#[test]
#[should_panic(expected = "grad: input 0 (shape [2]) does not require grad")]
fn differentiating_by_a_constant_is_an_error() {
    let tape = Tape::<f64>::new();
    let c = tape.constant(array![1.0, 2.0].into_dyn());
    let w = tape.leaf(array![3.0, 4.0].into_dyn());
    tape.grad(&[(c.reshape(&[2, 1]) * w).sum()], &[c], false);
}

/// A residual chain with broadcasting, shared inputs and a pass-through (the shapes that make a backward pass
/// keep, pass on and sum gradients), as a function of `x` and the weights.
fn residual_chain<'t>(
    x: autograd::Var<'t, f64>,
    a: autograd::Var<'t, f64>,
    c: autograd::Var<'t, f64>,
) -> autograd::Var<'t, f64> {
    let mut y = x;
    for _ in 0..30 {
        y = y + (y * a + 0.1).tanh() * c;
    }
    (y * y).sum()
}

#[test]
fn a_backward_pass_without_create_graph_keeps_no_intermediate_gradients_and_gives_the_same_values() {
    let (xv, av, cv) = (uniform(&[8, 50], -1.0, 1.0, 1), uniform(&[50], -1.0, 1.0, 2), uniform(&[8, 1], -0.3, 0.3, 3));
    let grads = |create_graph: bool| {
        let tape = Tape::<f64>::new();
        let (x, a, c) = (tape.leaf(xv.clone()), tape.leaf(av.clone()), tape.leaf(cv.clone()));
        let f = residual_chain(x, a, c);
        let forward = tape.live_elements();
        let g = tape.grad(&[f], &[x, a, c], create_graph);
        let held = tape.live_elements() - forward;
        (g.iter().map(|g| values(&g.value())).collect::<Vec<_>>(), held)
    };
    let (dropped, held_without) = grads(false);
    let (kept, held_with) = grads(true);
    assert_eq!(dropped, kept, "the same gradients either way");
    // Without create_graph only the seed and the three results remain (400 + 50 + 8 elements, and the seed's 1);
    // with it, every intermediate gradient of the 30 rounds stays on the tape.
    assert!(held_without <= 400 + 50 + 8 + 1, "{held_without} elements held after the pass");
    assert!(held_with > 30 * 400, "{held_with} elements held with create_graph");
}
