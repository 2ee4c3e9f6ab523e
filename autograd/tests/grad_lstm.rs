//! LSTM: gradient checks of the cell and of a bidirectional sequence LSTM (first and second order), the
//! packed-sequence semantics of variable lengths, and values against the formulas in plain ndarray.

use autograd::check::uniform;
use autograd::ops::lstm::{lstm, lstm_cell, LstmWeights};
use autograd::{concat, grad_tests, Tape, Var};
use ndarray::{s, Array2, ArrayD, Axis, Ix1, Ix2};

const B: usize = 2;
const I: usize = 3;
const H: usize = 2;

/// Weights from four consecutive inputs: w_ih, w_hh, b_ih, b_hh.
fn weights<'t>(x: &[Var<'t, f64>]) -> LstmWeights<'t, f64> {
    LstmWeights::new(x[0], x[1], x[2], x[3])
}

/// Random weights for one direction, seeds from `seed` on.
fn weight_arrays(seed: u64) -> Vec<ArrayD<f64>> {
    vec![
        uniform(&[4 * H, I], -0.8, 0.8, seed),
        uniform(&[4 * H, H], -0.8, 0.8, seed + 1),
        uniform(&[4 * H], -0.5, 0.5, seed + 2),
        uniform(&[4 * H], -0.5, 0.5, seed + 3),
    ]
}

/// Outputs and final states flattened into one vector, so one check covers all of them.
fn flat<'t>((out, (h, c)): (Var<'t, f64>, (Var<'t, f64>, Var<'t, f64>))) -> Var<'t, f64> {
    concat(&[out.reshape(&[out.len()]), h.reshape(&[h.len()]), c.reshape(&[c.len()])], 0)
}

fn cell_inputs() -> Vec<ArrayD<f64>> {
    let mut v = vec![uniform(&[B, I], -1.0, 1.0, 1), uniform(&[B, H], -1.0, 1.0, 2), uniform(&[B, H], -1.0, 1.0, 3)];
    v.extend(weight_arrays(4));
    v
}

/// x [B, 3, I], forward weights, backward weights, h_0 and c_0 [2, B, H].
fn bidir_inputs() -> Vec<ArrayD<f64>> {
    let mut v = vec![uniform(&[B, 3, I], -1.0, 1.0, 10)];
    v.extend(weight_arrays(11));
    v.extend(weight_arrays(21));
    v.push(uniform(&[2, B, H], -1.0, 1.0, 31));
    v.push(uniform(&[2, B, H], -1.0, 1.0, 32));
    v
}

/// Input `i` of the cell check.
fn ci(i: usize) -> ArrayD<f64> {
    cell_inputs().swap_remove(i)
}

/// Input `i` of the sequence checks (with the initial state at 9 and 10).
fn si(i: usize) -> ArrayD<f64> {
    bidir_inputs().swap_remove(i)
}

grad_tests! {
    cell: |t, x| {
        let (h, c) = lstm_cell(x[0], (x[1], x[2]), &weights(&x[3..7]));
        concat(&[h, c], 1)
    }, [ci(0), ci(1), ci(2), ci(3), ci(4), ci(5), ci(6)];
    cell_without_bias: |t, x| {
        let (h, c) = lstm_cell(x[0], (x[1], x[2]), &LstmWeights::without_bias(x[3], x[4]));
        h * c
    }, [ci(0), ci(1), ci(2), ci(3), ci(4)];
    bidirectional_3_steps: |t, x| flat(lstm(x[0], &weights(&x[1..5]), Some(&weights(&x[5..9])), None, None)),
        [si(0), si(1), si(2), si(3), si(4), si(5), si(6), si(7), si(8)];
    bidirectional_lengths_and_state: |t, x| {
        let state = Some((x[9], x[10]));
        flat(lstm(x[0], &weights(&x[1..5]), Some(&weights(&x[5..9])), state, Some(&[3, 1])))
    }, [si(0), si(1), si(2), si(3), si(4), si(5), si(6), si(7), si(8), si(9), si(10)];
    unidirectional_lengths_with_empty: |t, x| flat(lstm(x[0], &weights(&x[1..5]), None, None, Some(&[0, 2]))),
        [si(0), si(1), si(2), si(3), si(4)];
}

fn assert_close(a: &ArrayD<f64>, b: &ArrayD<f64>, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12, "{what}: {a} vs {b}");
    }
}

/// A padded, length-masked batch gives each sequence the outputs and final states of running it alone,
/// unpadded; padded outputs are zero and padded inputs get no gradient.
#[test]
fn masked_sequences_match_unpadded_runs() {
    let (steps, lengths) = (4, [4usize, 2]);
    let mut x = uniform(&[B, steps, I], -1.0, 1.0, 40);
    x.slice_mut(s![1, 2.., ..]).fill(1e3); // padding
    let (fw, bw) = (weight_arrays(41), weight_arrays(45));
    let (h0, c0) = (uniform(&[2, B, H], -1.0, 1.0, 49), uniform(&[2, B, H], -1.0, 1.0, 50));
    let run = |x: ArrayD<f64>, h0: ArrayD<f64>, c0: ArrayD<f64>, lengths: Option<&[usize]>| {
        let tape = Tape::<f64>::new();
        let xv = tape.leaf(x);
        let f: Vec<_> = fw.iter().cloned().map(|a| tape.leaf(a)).collect();
        let b: Vec<_> = bw.iter().cloned().map(|a| tape.leaf(a)).collect();
        let state = Some((tape.constant(h0), tape.constant(c0)));
        let (out, (h, c)) = lstm(xv, &weights(&f), Some(&weights(&b)), state, lengths);
        let gx = tape.grad(&[out.sum() + h.sum() + c.sum()], &[xv], false)[0];
        ((*out.value()).clone(), (*h.value()).clone(), (*c.value()).clone(), (*gx.value()).clone())
    };
    let (out, h, c, gx) = run(x.clone(), h0.clone(), c0.clone(), Some(&lengths));
    assert_eq!(out.shape(), [B, steps, 2 * H]);
    for (b, &len) in lengths.iter().enumerate() {
        let alone = x.slice(s![b..b + 1, ..len, ..]).to_owned().into_dyn();
        let state = |s: &ArrayD<f64>| s.slice(s![.., b..b + 1, ..]).to_owned().into_dyn();
        let (o1, h1, c1, g1) = run(alone, state(&h0), state(&c0), None);
        assert_close(&out.slice(s![b..b + 1, ..len, ..]).to_owned().into_dyn(), &o1, "outputs");
        assert!(out.slice(s![b, len.., ..]).iter().all(|&v| v == 0.0), "padded outputs are zero");
        assert_close(&h.slice(s![.., b..b + 1, ..]).to_owned().into_dyn(), &h1, "h_n");
        assert_close(&c.slice(s![.., b..b + 1, ..]).to_owned().into_dyn(), &c1, "c_n");
        assert_close(&gx.slice(s![b..b + 1, ..len, ..]).to_owned().into_dyn(), &g1, "input gradient");
        assert!(gx.slice(s![b, len.., ..]).iter().all(|&v| v == 0.0), "padded inputs get no gradient");
    }
}

/// The unidirectional LSTM is the cell applied step by step; the backward direction is the forward
/// recurrence run over the reversed sequence.
#[test]
fn sequence_is_repeated_cell_and_backward_is_reversed_forward() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(uniform(&[B, 3, I], -1.0, 1.0, 60));
    let wf: Vec<_> = weight_arrays(61).into_iter().map(|a| tape.leaf(a)).collect();
    let wb: Vec<_> = weight_arrays(65).into_iter().map(|a| tape.leaf(a)).collect();
    let (wf, wb) = (weights(&wf), weights(&wb));
    let (out, (h_n, c_n)) = lstm(x, &wf, Some(&wb), None, None);
    let mut state = (x.constant(ArrayD::zeros(vec![B, H])), x.constant(ArrayD::zeros(vec![B, H])));
    for t in 0..3 {
        state = lstm_cell(x.narrow(1, t, 1).reshape(&[B, I]), state, &wf);
        assert_close(&out.value().slice(s![.., t, ..H]).to_owned().into_dyn(), &state.0.value(), "forward step");
    }
    assert_close(&h_n.value().index_axis(Axis(0), 0).to_owned().into_dyn(), &state.0.value(), "forward h_n");
    assert_close(&c_n.value().index_axis(Axis(0), 0).to_owned().into_dyn(), &state.1.value(), "forward c_n");
    let reversed = x.index_select(1, &[2, 1, 0]);
    let (rev_out, (rev_h, rev_c)) = lstm(reversed, &wb, None, None, None);
    for t in 0..3 {
        let want = rev_out.value().slice(s![.., 2 - t, ..]).to_owned().into_dyn();
        assert_close(&out.value().slice(s![.., t, H..]).to_owned().into_dyn(), &want, "backward step");
    }
    assert_close(&h_n.value().slice(s![1..2, .., ..]).to_owned().into_dyn(), &rev_h.value(), "backward h_n");
    assert_close(&c_n.value().slice(s![1..2, .., ..]).to_owned().into_dyn(), &rev_c.value(), "backward c_n");
}

/// One cell step against PyTorch's formulas evaluated by hand.
#[test]
fn cell_matches_hand_formulas() {
    let inputs = cell_inputs();
    let two = |a: &ArrayD<f64>| a.clone().into_dimensionality::<Ix2>().unwrap();
    let (x, h, c, w_ih, w_hh) = (two(&inputs[0]), two(&inputs[1]), two(&inputs[2]), two(&inputs[3]), two(&inputs[4]));
    let bias = (&inputs[5] + &inputs[6]).into_dimensionality::<Ix1>().unwrap();
    let gates: Array2<f64> = x.dot(&w_ih.t()) + h.dot(&w_hh.t()) + &bias;
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    let mut want_h = Array2::zeros((B, H));
    let mut want_c = Array2::zeros((B, H));
    for b in 0..B {
        for j in 0..H {
            let i = sigmoid(gates[[b, j]]);
            let f = sigmoid(gates[[b, H + j]]);
            let g = gates[[b, 2 * H + j]].tanh();
            let o = sigmoid(gates[[b, 3 * H + j]]);
            want_c[[b, j]] = f * c[[b, j]] + i * g;
            want_h[[b, j]] = o * want_c[[b, j]].tanh();
        }
    }
    let tape = Tape::<f64>::new();
    let v: Vec<_> = inputs.into_iter().map(|a| tape.leaf(a)).collect();
    let (h1, c1) = lstm_cell(v[0], (v[1], v[2]), &weights(&v[3..7]));
    assert_close(&h1.value(), &want_h.into_dyn(), "h'");
    assert_close(&c1.value(), &want_c.into_dyn(), "c'");
}

#[test]
#[should_panic(expected = "lstm: lengths")]
fn lengths_longer_than_the_sequence_are_rejected() {
    let tape = Tape::<f64>::new();
    let w: Vec<_> = weight_arrays(70).into_iter().map(|a| tape.leaf(a)).collect();
    let x = tape.leaf(uniform(&[B, 2, I], -1.0, 1.0, 71));
    lstm(x, &weights(&w), None, None, Some(&[2, 3]));
}
