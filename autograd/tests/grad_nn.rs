//! Softmax family, batch norm, layer norm, dropout and embedding: first- and second-order gradient checks,
//! and values against hand-computed numbers.

use autograd::check::uniform;
use autograd::grad_tests;
use autograd::ops::nn::{batch_norm, embedding, BatchNormState};
use autograd::Tape;
use ndarray::{array, ArrayD, Axis};
use rand::{rngs::StdRng, SeedableRng};

const EPS: f64 = 1e-5;

/// Fixed running statistics for evaluation-mode checks.
fn eval_state(c: usize) -> BatchNormState<f64> {
    let mut s = BatchNormState::new(c);
    s.running_mean = uniform(&[c], -0.5, 0.5, 99);
    s.running_var = uniform(&[c], 0.5, 2.0, 98);
    s
}

fn ids() -> ArrayD<usize> {
    array![[3, 0, 3], [1, 2, 0]].into_dyn()
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

grad_tests! {
    softmax_axis1: |t, x| x[0].softmax(1), [uniform(&[2, 3], -2.0, 2.0, 1)];
    softmax_axis0_3d: |t, x| x[0].softmax(0), [uniform(&[3, 2, 2], -2.0, 2.0, 2)];
    log_softmax_axis1: |t, x| x[0].log_softmax(1), [uniform(&[2, 4], -2.0, 2.0, 3)];
    log_softmax_last_3d: |t, x| x[0].log_softmax(2), [uniform(&[2, 2, 3], -2.0, 2.0, 4)];

    batch_norm_train_2d: |t, x| batch_norm(x[0], None, None, None, true, 0.1, EPS),
        [uniform(&[4, 3], -1.0, 1.0, 5)];
    batch_norm_train_2d_affine: |t, x| batch_norm(x[0], Some(x[1]), Some(x[2]), None, true, 0.1, EPS),
        [uniform(&[4, 3], -1.0, 1.0, 6), uniform(&[3], 0.5, 1.5, 7), uniform(&[3], -0.5, 0.5, 8)];
    batch_norm_train_4d: |t, x| batch_norm(x[0], None, None, None, true, 0.1, EPS),
        [uniform(&[2, 2, 2, 2], -1.0, 1.0, 9)];
    batch_norm_train_4d_affine: |t, x| batch_norm(x[0], Some(x[1]), Some(x[2]), None, true, 0.1, EPS),
        [uniform(&[2, 3, 2, 1], -1.0, 1.0, 10), uniform(&[3], 0.5, 1.5, 11), uniform(&[3], -0.5, 0.5, 12)];
    batch_norm_train_tracking_state: |t, x| {
        let mut s = BatchNormState::new(2);
        batch_norm(x[0], Some(x[1]), None, Some(&mut s), true, 0.1, EPS)
    }, [uniform(&[3, 2], -1.0, 1.0, 13), uniform(&[2], 0.5, 1.5, 14)];
    batch_norm_eval_2d: |t, x| {
        let mut s = eval_state(3);
        batch_norm(x[0], None, None, Some(&mut s), false, 0.1, EPS).square()
    }, [uniform(&[2, 3], -1.0, 1.0, 15)];
    batch_norm_eval_4d_affine: |t, x| {
        let mut s = eval_state(2);
        batch_norm(x[0], Some(x[1]), Some(x[2]), Some(&mut s), false, 0.1, EPS)
    }, [uniform(&[2, 2, 2, 2], -1.0, 1.0, 16), uniform(&[2], 0.5, 1.5, 17), uniform(&[2], -0.5, 0.5, 18)];

    layer_norm_last: |t, x| x[0].layer_norm(1, None, None, EPS), [uniform(&[2, 3, 4], -1.0, 1.0, 19)];
    layer_norm_two_axes_affine: |t, x| x[0].layer_norm(2, Some(x[1]), Some(x[2]), EPS),
        [uniform(&[2, 3, 2], -1.0, 1.0, 20), uniform(&[3, 2], 0.5, 1.5, 21), uniform(&[3, 2], -0.5, 0.5, 22)];

    dropout_train: |t, x| x[0].dropout(0.4, &mut rng(7), true) * x[0], [uniform(&[3, 4], -1.0, 1.0, 23)];
    dropout_eval: |t, x| x[0].dropout(0.4, &mut rng(7), false).square(), [uniform(&[3, 2], -1.0, 1.0, 24)];

    embedding_lookup: |t, x| embedding(x[0], &ids()).square(), [uniform(&[4, 2], -1.0, 1.0, 25)];
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn softmax_rows_sum_to_one_and_match_hand_values() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(array![[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]].into_dyn());
    let y = x.softmax(1).value();
    for row in y.axis_iter(Axis(0)) {
        assert!(close(row.sum(), 1.0, 1e-12), "row sums to {}", row.sum());
    }
    // exp(k) / (e + e^2 + e^3) for k = 1, 2, 3.
    let want = [0.09003057317038046, 0.24472847105479767, 0.6652409557748219];
    for (j, w) in want.iter().enumerate() {
        assert!(close(y[[0, j]], *w, 1e-12), "softmax[0, {j}] = {} not {w}", y[[0, j]]);
    }
    let ls = x.log_softmax(1).value();
    for (a, b) in ls.iter().zip(y.iter()) {
        assert!(close(*a, b.ln(), 1e-12));
    }
}

#[test]
fn softmax_is_stable_for_huge_logits() {
    let tape = Tape::<f32>::new();
    let x = tape.leaf(array![[1000.0f32, 1000.0, -1000.0]].into_dyn());
    let y = x.softmax(1).value();
    assert_eq!(y.as_slice().unwrap(), &[0.5, 0.5, 0.0]);
    let ls = x.log_softmax(1).value();
    assert!(ls.iter().all(|v| v.is_finite()), "{ls:?}");
}

/// Per-channel mean and biased variance of a `[B, C, ..]` array.
fn channel_stats(y: &ArrayD<f64>, c: usize) -> (f64, f64) {
    let v: Vec<f64> = y.index_axis(Axis(1), c).iter().copied().collect();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (mean, v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n)
}

#[test]
fn batch_norm_train_gives_zero_mean_unit_variance_per_channel() {
    for shape in [vec![5, 3], vec![2, 3, 2, 2]] {
        let tape = Tape::<f64>::new();
        let x = tape.leaf(uniform(&shape, -2.0, 3.0, 40));
        let y = batch_norm(x, None, None, None, true, 0.1, 0.0).value();
        for c in 0..3 {
            let (m, v) = channel_stats(&y, c);
            assert!(close(m, 0.0, 1e-12) && close(v, 1.0, 1e-12), "shape {shape:?} channel {c}: mean {m}, var {v}");
        }
        // With affine parameters the channel mean is beta and the standard deviation |gamma|.
        let gamma = tape.leaf(array![2.0, -0.5, 1.0].into_dyn());
        let beta = tape.leaf(array![1.0, 0.0, -3.0].into_dyn());
        let y = batch_norm(x, Some(gamma), Some(beta), None, true, 0.1, 0.0).value();
        for (c, (g, b)) in [(2.0f64, 1.0), (-0.5, 0.0), (1.0, -3.0)].into_iter().enumerate() {
            let (m, v) = channel_stats(&y, c);
            assert!(close(m, b, 1e-12) && close(v, g * g, 1e-12), "affine channel {c}: mean {m}, var {v}");
        }
    }
}

#[test]
fn batch_norm_running_stats_follow_the_pytorch_formula() {
    // Channel 0: 1, 3, 5, 7 (mean 4, unbiased variance 20/3); channel 1: 2, 10, 4, 0 (mean 4, unbiased 56/3).
    let tape = Tape::<f64>::new();
    let x = tape.leaf(array![[1.0, 2.0], [3.0, 10.0], [5.0, 4.0], [7.0, 0.0]].into_dyn());
    let mut s = BatchNormState::new(2);
    batch_norm(x, None, None, Some(&mut s), true, 0.1, 1e-5);
    let want_mean = [0.1 * 4.0, 0.1 * 4.0];
    let want_var = [0.9 + 0.1 * 20.0 / 3.0, 0.9 + 0.1 * 56.0 / 3.0];
    for c in 0..2 {
        assert!(close(s.running_mean[c], want_mean[c], 1e-12), "mean {:?}", s.running_mean);
        assert!(close(s.running_var[c], want_var[c], 1e-12), "var {:?}", s.running_var);
    }
    assert_eq!(s.num_batches_tracked, 1);
    // A second step compounds: running = 0.9 * running + 0.1 * batch.
    batch_norm(x, None, None, Some(&mut s), true, 0.1, 1e-5);
    assert!(close(s.running_mean[0], 0.9 * 0.4 + 0.4, 1e-12));
    assert!(close(s.running_var[1], 0.9 * want_var[1] + 0.1 * 56.0 / 3.0, 1e-12));

    // 4-D: one channel holding 1, 2, 3, 6 (mean 3, unbiased variance 14/3), momentum 0.5.
    let x = tape.leaf(array![1.0, 2.0, 3.0, 6.0].into_dyn().into_shape_with_order(vec![2, 1, 2, 1]).unwrap());
    let mut s = BatchNormState::new(1);
    batch_norm(x, None, None, Some(&mut s), true, 0.5, 1e-5);
    assert!(close(s.running_mean[0], 1.5, 1e-12) && close(s.running_var[0], 0.5 + 0.5 * 14.0 / 3.0, 1e-12));
}

#[test]
fn batch_norm_eval_uses_running_stats_and_leaves_them_alone() {
    let tape = Tape::<f64>::new();
    let mut s = BatchNormState::new(2);
    s.running_mean = array![1.0, -1.0].into_dyn();
    s.running_var = array![4.0, 0.25].into_dyn();
    let before = s.clone();
    let x = tape.leaf(array![[3.0, 0.0], [-1.0, -2.0]].into_dyn());
    let gamma = tape.leaf(array![1.0, 2.0].into_dyn());
    let beta = tape.leaf(array![0.0, 1.0].into_dyn());
    let y = batch_norm(x, Some(gamma), Some(beta), Some(&mut s), false, 0.1, 0.0).value();
    // (3 - 1) / 2 = 1; (0 + 1) / 0.5 * 2 + 1 = 5; (-1 - 1) / 2 = -1; (-2 + 1) / 0.5 * 2 + 1 = -3.
    assert_eq!(y.as_slice().unwrap(), &[1.0, 5.0, -1.0, -3.0]);
    assert_eq!(s, before);
}

#[test]
#[should_panic(expected = "evaluation mode needs running statistics")]
fn batch_norm_eval_without_state_panics() {
    let tape = Tape::<f64>::new();
    batch_norm(tape.leaf(uniform(&[2, 3], -1.0, 1.0, 1)), None, None, None, false, 0.1, EPS);
}

#[test]
#[should_panic(expected = "gamma of shape [2] does not match the expected [3]")]
fn batch_norm_wrong_gamma_panics() {
    let tape = Tape::<f64>::new();
    let gamma = tape.leaf(uniform(&[2], -1.0, 1.0, 2));
    batch_norm(tape.leaf(uniform(&[2, 3], -1.0, 1.0, 1)), Some(gamma), None, None, true, 0.1, EPS);
}

#[test]
#[should_panic(expected = "more than 1 value per channel")]
fn batch_norm_single_value_per_channel_panics() {
    let tape = Tape::<f64>::new();
    batch_norm(tape.leaf(uniform(&[1, 3], -1.0, 1.0, 1)), None, None, None, true, 0.1, EPS);
}

#[test]
fn layer_norm_rows_have_zero_mean_unit_variance() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(uniform(&[2, 3, 4], -3.0, 5.0, 42));
    let y = x.layer_norm(2, None, None, 0.0).value();
    for row in y.axis_iter(Axis(0)) {
        let n = row.len() as f64;
        let m = row.sum() / n;
        let v = row.mapv(|a| (a - m).powi(2)).sum() / n;
        assert!(close(m, 0.0, 1e-12) && close(v, 1.0, 1e-12), "mean {m}, var {v}");
    }
    // Hand example over the last axis: [1, 3] -> [-1, 1], then * gamma + beta.
    let x = tape.leaf(array![[1.0, 3.0]].into_dyn());
    let (g, b) = (tape.leaf(array![2.0, 3.0].into_dyn()), tape.leaf(array![0.5, 0.0].into_dyn()));
    assert_eq!(x.layer_norm(1, Some(g), Some(b), 0.0).value().as_slice().unwrap(), &[-1.5, 3.0]);
}

#[test]
fn dropout_keeps_the_expected_fraction_and_scales_survivors() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(ArrayD::from_elem(vec![100, 100], 1.0));
    let y = x.dropout(0.3, &mut rng(3), true).value();
    let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / y.len() as f64;
    assert!((kept - 0.7).abs() < 0.02, "kept fraction {kept}");
    assert!(y.iter().all(|&v| v == 0.0 || close(v, 1.0 / 0.7, 1e-12)));
    // Seeded: the same seed gives the same mask, another seed another one.
    assert_eq!(x.dropout(0.3, &mut rng(3), true).value(), y);
    assert_ne!(x.dropout(0.3, &mut rng(4), true).value(), y);
    // Evaluation and p = 0 are the identity; p = 1 zeroes everything.
    assert_eq!(x.dropout(0.3, &mut rng(3), false).value(), x.value());
    assert_eq!(x.dropout(0.0, &mut rng(3), true).value(), x.value());
    assert!(x.dropout(1.0, &mut rng(3), true).value().iter().all(|&v| v == 0.0));
}

#[test]
fn embedding_picks_rows() {
    let tape = Tape::<f64>::new();
    let w = tape.leaf(array![[0.0, 1.0], [10.0, 11.0], [20.0, 21.0], [30.0, 31.0]].into_dyn());
    let e = embedding(w, &ids());
    assert_eq!(e.shape(), vec![2, 3, 2]);
    assert_eq!(e.value().as_slice().unwrap(), &[30.0, 31.0, 0.0, 1.0, 30.0, 31.0, 10.0, 11.0, 20.0, 21.0, 0.0, 1.0]);
    // Row 3 is used twice, row 0 twice, rows 1 and 2 once: the gradient of the sum counts the uses.
    let [g] = tape.grad(&[e.sum()], &[w], false)[..] else { unreachable!() };
    assert_eq!(g.value().as_slice().unwrap(), &[2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]);
}

#[test]
#[should_panic(expected = "embedding: id 4 is out of range for a vocabulary of size 4")]
fn embedding_out_of_range_panics() {
    let tape = Tape::<f64>::new();
    embedding(tape.leaf(uniform(&[4, 2], -1.0, 1.0, 1)), &array![1, 4].into_dyn());
}
