//! Losses: first- and second-order gradient checks, values against hand-computed numbers, and the panics.

use autograd::check::uniform;
use autograd::grad_tests;
use autograd::ops::loss::{binary_cross_entropy, cross_entropy, mse_loss, nll_loss, Reduction};
use autograd::Tape;
use ndarray::array;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

grad_tests! {
    mse_mean: |t, x| mse_loss(x[0], x[1], Reduction::Mean), [uniform(&[2, 3], -1.0, 1.0, 1), uniform(&[2, 3], -1.0, 1.0, 2)];
    mse_sum: |t, x| mse_loss(x[0], x[1], Reduction::Sum), [uniform(&[4], -1.0, 1.0, 3), uniform(&[4], -1.0, 1.0, 4)];
    cross_entropy_logits: |t, x| cross_entropy(x[0], &[2, 0, 1]), [uniform(&[3, 4], -2.0, 2.0, 5)];
    nll_of_log_softmax: |t, x| nll_loss(x[0].log_softmax(1), &[1, 1]), [uniform(&[2, 3], -2.0, 2.0, 6)];
    nll_squared: |t, x| nll_loss(x[0], &[0, 2, 2]).square(), [uniform(&[3, 3], -2.0, 2.0, 7)];
    bce_mean: |t, x| binary_cross_entropy(x[0], x[1], Reduction::Mean),
        [uniform(&[2, 3], 0.2, 0.8, 8), uniform(&[2, 3], 0.0, 1.0, 9)];
    bce_sum: |t, x| binary_cross_entropy(x[0], x[1], Reduction::Sum),
        [uniform(&[5], 0.2, 0.8, 10), uniform(&[5], 0.0, 1.0, 11)];
    bce_of_sigmoid: |t, x| binary_cross_entropy(x[0].sigmoid(), x[1], Reduction::Mean),
        [uniform(&[4], -1.5, 1.5, 12), uniform(&[4], 0.0, 1.0, 13)];
}

#[test]
fn mse_values() {
    let tape = Tape::<f64>::new();
    let p = tape.leaf(array![1.0, 2.0, 3.0].into_dyn());
    let y = tape.constant(array![0.0, 0.0, 1.0].into_dyn());
    assert_eq!(mse_loss(p, y, Reduction::Sum).item(), 9.0);
    assert_eq!(mse_loss(p, y, Reduction::Mean).item(), 3.0);
}

#[test]
fn cross_entropy_matches_a_hand_computed_2x3_example() {
    // Row 0: logsumexp(1, 2, 3) - 3; row 1: logsumexp(1, 0, -1) - 0. Both logsumexps are
    // shift + log(1 + e^-1 + e^-2) = shift + 0.40760596444438...; the mean is 0.5 * (0.4076.. + 1.4076..).
    let tape = Tape::<f64>::new();
    let logits = tape.leaf(array![[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]].into_dyn());
    let l = cross_entropy(logits, &[2, 1]).item();
    assert!(close(l, 0.9076059644443802, 1e-12), "cross_entropy = {l}");
    // The gradient is (softmax - onehot) / B.
    let [g] = tape.grad(&[cross_entropy(logits, &[2, 1])], &[logits], false)[..] else { unreachable!() };
    let sm = logits.softmax(1).value();
    let onehot = array![[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]].into_dyn();
    for ((a, s), o) in g.value().iter().zip(sm.iter()).zip(onehot.iter()) {
        assert!(close(*a, (s - o) / 2.0, 1e-12));
    }
}

#[test]
fn nll_values() {
    let tape = Tape::<f64>::new();
    let lp = tape.leaf(array![[-0.5, -1.0], [-2.0, -0.25]].into_dyn());
    assert_eq!(nll_loss(lp, &[1, 0]).item(), 1.5);
}

#[test]
fn bce_clamps_each_log_at_minus_100() {
    let tape = Tape::<f64>::new();
    // p = 0 with y = 1 and p = 1 with y = 0: each term is -max(log 0, -100) = 100 exactly.
    let p = tape.leaf(array![0.0, 1.0].into_dyn());
    let y = tape.constant(array![1.0, 0.0].into_dyn());
    assert_eq!(binary_cross_entropy(p, y, Reduction::Sum).item(), 200.0);
    assert_eq!(binary_cross_entropy(p, y, Reduction::Mean).item(), 100.0);
    // The clamp is flat, so its gradient is 0 there, not NaN.
    let [g] = tape.grad(&[binary_cross_entropy(p, y, Reduction::Sum)], &[p], false)[..] else { unreachable!() };
    assert_eq!(g.value().as_slice().unwrap(), &[0.0, 0.0]);
    // In f32 as well (where log of the smallest normal, -87.3, is above the clamp).
    let tape = Tape::<f32>::new();
    let p = tape.leaf(array![0.0f32, 1.0, 0.0].into_dyn());
    let y = tape.constant(array![1.0f32, 0.0, 0.0].into_dyn());
    assert_eq!(binary_cross_entropy(p, y, Reduction::Sum).item(), 200.0);
}

#[test]
fn bce_values_and_soft_targets() {
    let tape = Tape::<f64>::new();
    let p = tape.leaf(array![0.25, 0.5].into_dyn());
    let y = tape.constant(array![1.0, 0.25].into_dyn());
    // -ln 0.25 and -(0.25 ln 0.5 + 0.75 ln 0.5) = ln 2.
    let want = [-(0.25f64.ln()), 2f64.ln()];
    let l = binary_cross_entropy(p, y, Reduction::Sum).item();
    assert!(close(l, want[0] + want[1], 1e-12), "{l}");
    let l = binary_cross_entropy(p, y, Reduction::Mean).item();
    assert!(close(l, (want[0] + want[1]) / 2.0, 1e-12), "{l}");
    // d/dp = (p - y) / (p (1 - p)): -4 and 1, summed.
    let [g] = tape.grad(&[binary_cross_entropy(p, y, Reduction::Sum)], &[p], false)[..] else { unreachable!() };
    let g = g.value();
    assert!(close(g[0], -4.0, 1e-12) && close(g[1], 1.0, 1e-12), "{g:?}");
}

#[test]
#[should_panic(expected = "mse_loss: prediction of shape [2, 3] and target of shape [3, 2] differ")]
fn mse_shape_mismatch_panics() {
    let tape = Tape::<f64>::new();
    mse_loss(tape.leaf(uniform(&[2, 3], 0.0, 1.0, 1)), tape.leaf(uniform(&[3, 2], 0.0, 1.0, 2)), Reduction::Mean);
}

#[test]
#[should_panic(expected = "binary_cross_entropy: probabilities of shape [3] and target of shape [3, 1] differ")]
fn bce_shape_mismatch_panics() {
    let tape = Tape::<f64>::new();
    let p = tape.leaf(uniform(&[3], 0.2, 0.8, 1));
    binary_cross_entropy(p, tape.leaf(uniform(&[3, 1], 0.0, 1.0, 2)), Reduction::Sum);
}

#[test]
#[should_panic(expected = "probabilities must lie in [0, 1], got 1.5")]
fn bce_probability_out_of_range_panics() {
    let tape = Tape::<f64>::new();
    let p = tape.leaf(array![0.5, 1.5].into_dyn());
    binary_cross_entropy(p, tape.constant(array![1.0, 0.0].into_dyn()), Reduction::Sum);
}

#[test]
#[should_panic(expected = "cross_entropy: target class 3 (at position 1) is out of range for 3 classes")]
fn cross_entropy_class_out_of_range_panics() {
    let tape = Tape::<f64>::new();
    cross_entropy(tape.leaf(uniform(&[2, 3], -1.0, 1.0, 1)), &[0, 3]);
}

#[test]
#[should_panic(expected = "cross_entropy: 3 targets (shape [3]) for logits of shape [2, 3]")]
fn cross_entropy_target_count_mismatch_panics() {
    let tape = Tape::<f64>::new();
    cross_entropy(tape.leaf(uniform(&[2, 3], -1.0, 1.0, 1)), &[0, 1, 2]);
}

#[test]
#[should_panic(expected = "nll_loss: target class 5 (at position 0) is out of range for 2 classes")]
fn nll_class_out_of_range_panics() {
    let tape = Tape::<f64>::new();
    nll_loss(tape.leaf(uniform(&[1, 2], -1.0, 0.0, 1)), &[5]);
}

#[test]
#[should_panic(expected = "nll_loss: expected log-probabilities of shape [B, C], got [4]")]
fn nll_wrong_rank_panics() {
    let tape = Tape::<f64>::new();
    nll_loss(tape.leaf(uniform(&[4], -1.0, 0.0, 1)), &[0]);
}
