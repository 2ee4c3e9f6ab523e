//! The fused LSTM backward (taken when the backward pass is not recorded) against the composite one (taken
//! when it is, `create_graph = true`): the same gradients for every input, bidirectional, with initial states,
//! with and without padded sequences.

use autograd::check::uniform;
use autograd::ops::lstm::{lstm, LstmWeights};
use autograd::Tape;

#[test]
fn fused_and_recorded_backward_passes_agree() {
    let (b, t, i, h) = (3, 5, 4, 6);
    for lengths in [None, Some(vec![5, 2, 0]), Some(vec![1, 5, 3])] {
        let run = |create_graph: bool| {
            let tape = Tape::<f64>::new();
            let x = tape.leaf(uniform(&[b, t, i], -1.0, 1.0, 1));
            let w: Vec<_> = (0..8)
                .map(|k| {
                    let shape: &[usize] = match k % 4 {
                        0 => &[4 * h, i],
                        1 => &[4 * h, h],
                        _ => &[4 * h],
                    };
                    tape.leaf(uniform(shape, -0.5, 0.5, 10 + k as u64))
                })
                .collect();
            let h0 = tape.leaf(uniform(&[2, b, h], -1.0, 1.0, 30));
            let c0 = tape.leaf(uniform(&[2, b, h], -1.0, 1.0, 31));
            let fwd = LstmWeights::new(w[0], w[1], w[2], w[3]);
            let bwd = LstmWeights::new(w[4], w[5], w[6], w[7]);
            let (out, (hn, cn)) = lstm(x, &fwd, Some(&bwd), Some((h0, c0)), lengths.as_deref());
            let r = tape.constant(uniform(&out.shape(), -1.0, 1.0, 40));
            let loss = (out * r).sum() + (hn * hn).sum() + cn.tanh().sum();
            let mut wrt = vec![x, h0, c0];
            wrt.extend(&w);
            tape.grad(&[loss], &wrt, create_graph).iter().map(|g| (*g.value()).clone()).collect::<Vec<_>>()
        };
        let (fused, composite) = (run(false), run(true));
        for (k, (a, e)) in fused.iter().zip(&composite).enumerate() {
            let worst = a.iter().zip(e).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-12, "lengths {lengths:?}, input {k}: differs by {worst}");
        }
    }
}
