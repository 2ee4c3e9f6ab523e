//! LSTM: one cell step and a multi-step, optionally bidirectional, single-layer LSTM over a batch of padded
//! sequences. Both are compositions of differentiable ops (matmul, sigmoid, tanh, narrow, stack, concat), so
//! they differentiate to any order.
//!
//! `lstm` runs each direction as one fused op (`kernels::lstm`): the input projection of all steps is one GEMM,
//! each step one GEMM for the four gates plus one fused point-wise pass, and the backward pass through time is
//! likewise fused, with `d w_hh` as one GEMM over all steps. When the backward pass is itself recorded
//! (`create_graph`), the op's backward instead rebuilds the direction from differentiable ops
//! (`direction_composite`) and takes its vector-Jacobian product on the tape, so higher orders still work.
//!
//! Conventions follow PyTorch's `nn.LSTM` with `batch_first = true`:
//! - gate order `(i, f, g, o)` along the `4H` axis; weights `w_ih [4H, I]`, `w_hh [4H, H]`, biases `b_ih`,
//!   `b_hh [4H]` (optional, as `bias = False`);
//! - `i = σ(x W_iiᵀ + b_ii + h W_hiᵀ + b_hi)`, `f`, `o` likewise with σ, `g` with tanh;
//!   `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh(c')`;
//! - input `[B, T, I]`, output `[B, T, D·H]` (forward direction first), states `[D, B, H]` with `D = 2` for a
//!   bidirectional LSTM, direction 0 forward and 1 backward.
//!
//! Variable lengths behave like a packed sequence: sequence `b` is its first `lengths[b]` steps. Padded steps
//! leave its state unchanged (the update is masked), the backward direction starts from the initial state at
//! step `lengths[b] - 1`, outputs at padded positions are zero, and padded inputs get zero gradient (their
//! values must be finite: the mask multiplies by zero).

use crate::{
    concat,
    ops::{contiguous, indicator, matmul::product},
    stack, Op, Var,
};
use kernels::lstm::Seq;
use kernels::Float;
use ndarray::{ArrayD, Ix2, IxDyn};

/// An LSTM state `(h, c)`: `[B, H]` each for a cell, `[D, B, H]` each for a sequence LSTM's `(h_n, c_n)`.
pub type LstmState<'t, T = f32> = (Var<'t, T>, Var<'t, T>);

/// The parameters of one LSTM direction, in PyTorch's layout.
#[derive(Clone, Copy, Debug)]
pub struct LstmWeights<'t, T: Float = f32> {
    /// Input-to-hidden weights `[4H, I]`, rows in gate order `(i, f, g, o)`.
    pub w_ih: Var<'t, T>,
    /// Hidden-to-hidden weights `[4H, H]`.
    pub w_hh: Var<'t, T>,
    /// Input-to-hidden bias `[4H]`, if any.
    pub b_ih: Option<Var<'t, T>>,
    /// Hidden-to-hidden bias `[4H]`, if any.
    pub b_hh: Option<Var<'t, T>>,
}

impl<'t, T: Float> LstmWeights<'t, T> {
    /// Weights with both biases.
    pub fn new(w_ih: Var<'t, T>, w_hh: Var<'t, T>, b_ih: Var<'t, T>, b_hh: Var<'t, T>) -> Self {
        let w = LstmWeights { w_ih, w_hh, b_ih: Some(b_ih), b_hh: Some(b_hh) };
        w.check("LstmWeights::new");
        w
    }

    /// Weights without biases (PyTorch's `bias = False`).
    pub fn without_bias(w_ih: Var<'t, T>, w_hh: Var<'t, T>) -> Self {
        let w = LstmWeights { w_ih, w_hh, b_ih: None, b_hh: None };
        w.check("LstmWeights::without_bias");
        w
    }

    /// `H`, the hidden size.
    pub fn hidden_size(&self) -> usize {
        self.w_hh.shape()[1]
    }

    /// `I`, the input size.
    pub fn input_size(&self) -> usize {
        self.w_ih.shape()[1]
    }

    /// Panic (naming `op`) unless the shapes are `[4H, I]`, `[4H, H]` and `[4H]`.
    fn check(&self, op: &str) {
        let (wi, wh) = (self.w_ih.shape(), self.w_hh.shape());
        assert!(
            wh.len() == 2 && wh[0] == 4 * wh[1] && wi.len() == 2 && wi[0] == wh[0],
            "{op}: weights w_ih {wi:?} and w_hh {wh:?} are not [4H, I] and [4H, H]"
        );
        for b in [self.b_ih, self.b_hh].into_iter().flatten() {
            assert_eq!(b.shape(), [wh[0]], "{op}: bias of shape {:?} with w_hh of shape {wh:?}", b.shape());
        }
    }

    /// `b_ih + b_hh` (or whichever exists).
    fn bias(&self) -> Option<Var<'t, T>> {
        match (self.b_ih, self.b_hh) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        }
    }
}

/// The new state from the pre-activations `gates [B, 4H]` and the cell state `c [B, H]`.
fn update<'t, T: Float>(gates: Var<'t, T>, c: Var<'t, T>, hidden: usize) -> LstmState<'t, T> {
    let i = gates.narrow(1, 0, hidden).sigmoid();
    let f = gates.narrow(1, hidden, hidden).sigmoid();
    let g = gates.narrow(1, 2 * hidden, hidden).tanh();
    let o = gates.narrow(1, 3 * hidden, hidden).sigmoid();
    let c = f * c + i * g;
    (o * c.tanh(), c)
}

/// One LSTM step: `x [B, I]`, state `(h [B, H], c [B, H])` to the new state `(h', c')`.
pub fn lstm_cell<'t, T: Float>(x: Var<'t, T>, (h, c): LstmState<'t, T>, w: &LstmWeights<'t, T>) -> LstmState<'t, T> {
    w.check("lstm_cell");
    let (hidden, input) = (w.hidden_size(), w.input_size());
    let (xs, hs, cs) = (x.shape(), h.shape(), c.shape());
    assert!(
        xs.len() == 2 && xs[1] == input && hs == [xs[0], hidden] && cs == hs,
        "lstm_cell: input {xs:?}, h {hs:?}, c {cs:?} do not fit I = {input}, H = {hidden}"
    );
    let mut gates = x.matmul_nt(w.w_ih) + h.matmul_nt(w.w_hh);
    if let Some(b) = w.bias() {
        gates = gates + b;
    }
    update(gates, c, hidden)
}

/// Every direction as one fused op: for direction `d`, inputs `4d..4d+4` are `proj [B, T, 4H]`,
/// `w_hh [4H, H]` and the initial state `h0`, `c0 [B, H]`; the output `[B, T, D, 2H]` holds the states after
/// every step (`h` then `c`; see `kernels::lstm`). Two directions run on two threads, forward and backward.
fn layer<'t, T: Float>(inputs: &[Var<'t, T>], seqs: Vec<Seq>) -> Var<'t, T> {
    let rcs: Vec<_> = inputs.iter().map(|v| v.value()).collect();
    let vals: Vec<&ArrayD<T>> = rcs.iter().map(|v| &**v).collect();
    let run = |d: usize| {
        let w = vals[4 * d + 1].view().into_dimensionality::<Ix2>().expect("w_hh is 2-D");
        let (p, h0, c0) = (contiguous(vals[4 * d]), contiguous(vals[4 * d + 2]), contiguous(vals[4 * d + 3]));
        kernels::lstm::forward(&seqs[d], &p, w, &h0, &c0, seqs.len() > 1)
    };
    let results = if seqs.len() == 2 {
        let (a, b) = rayon::join(|| run(0), || run(1));
        vec![a, b]
    } else {
        (0..seqs.len()).map(run).collect()
    };
    let sq = &seqs[0];
    let (nd, h2) = (seqs.len(), 2 * sq.hidden);
    // Interleave the directions: row (b, t) of direction d goes to [b, t, d].
    let mut s = vec![T::zero(); nd * sq.batch * sq.steps * h2];
    let mut acts = Vec::new();
    for (d, (sd, ad)) in results.into_iter().enumerate() {
        for (row, src) in sd.chunks(h2).enumerate() {
            s[(row * nd + d) * h2..][..h2].copy_from_slice(src);
        }
        acts.push(ad);
    }
    let s = ArrayD::from_shape_vec(IxDyn(&[sq.batch, sq.steps, nd, h2]), s).expect("s shape");
    inputs[0].tape().record(s, Layer { seqs, acts }, inputs)
}

/// The fused op; `acts` are the gate activations of the forward pass, per direction.
struct Layer<T: Float> {
    seqs: Vec<Seq>,
    acts: Vec<Vec<T>>,
}

impl<T: Float> Op<T> for Layer<T> {
    fn name(&self) -> &'static str {
        "lstm"
    }

    fn backward_needed<'t>(
        &self,
        inputs: &[Var<'t, T>],
        s: Var<'t, T>,
        g: Var<'t, T>,
        needed: &[bool],
    ) -> Vec<Option<Var<'t, T>>> {
        let tape = g.tape();
        let n = inputs.len();
        if tape.is_recording() {
            // A differentiable backward: the vector-Jacobian product of the same map built from ops.
            let states: Vec<_> = self
                .seqs
                .iter()
                .enumerate()
                .map(|(d, seq)| {
                    let i = &inputs[4 * d..4 * d + 4];
                    let proj = i[0].reshape(&[seq.batch, seq.steps, 4 * seq.hidden]);
                    direction_composite(proj, i[1], i[2], i[3], seq)
                })
                .collect();
            let composite = stack(&states, 2);
            let wanted: Vec<Var<'t, T>> = (0..n).filter(|&i| needed[i]).map(|i| inputs[i]).collect();
            let mut grads = tape.grad_with(&[composite], &[g], &wanted, true).into_iter();
            return (0..n).map(|i| if needed[i] { grads.next() } else { None }).collect();
        }
        let rcs: Vec<_> = inputs.iter().map(|v| v.value()).collect();
        let vals: Vec<&ArrayD<T>> = rcs.iter().map(|v| &**v).collect();
        let (sv, gv) = (s.value(), g.value());
        let (ss, gs) = (contiguous(&sv), contiguous(&gv));
        // Each direction's rows of s and of its gradient, contiguous.
        let nd = self.seqs.len();
        let h2 = 2 * self.seqs[0].hidden;
        let split = |x: &[T], d: usize| -> Vec<T> {
            let mut out = Vec::with_capacity(x.len() / nd);
            for row in x.chunks_exact(h2).skip(d).step_by(nd) {
                out.extend_from_slice(row);
            }
            out
        };
        let per: Vec<(Vec<T>, Vec<T>)> = (0..nd).map(|d| (split(&ss, d), split(&gs, d))).collect();
        let run = |d: usize| {
            let w = vals[4 * d + 1].view().into_dimensionality::<Ix2>().expect("w_hh is 2-D");
            kernels::lstm::backward(
                &self.seqs[d],
                &per[d].1,
                &per[d].0,
                &self.acts[d],
                w,
                &contiguous(vals[4 * d + 2]),
                &contiguous(vals[4 * d + 3]),
                self.seqs.len() > 1,
            )
        };
        let results = if self.seqs.len() == 2 {
            let (a, b) = rayon::join(|| run(0), || run(1));
            vec![a, b]
        } else {
            (0..self.seqs.len()).map(run).collect()
        };
        let mut out = Vec::with_capacity(n);
        for (d, (dp, dw, dh, dc)) in results.into_iter().enumerate() {
            for (k, v) in [dp, dw, dh, dc].into_iter().enumerate() {
                let i = 4 * d + k;
                out.push(needed[i].then(|| g.constant(ArrayD::from_shape_vec(vals[i].raw_dim(), v).expect("shape"))));
            }
        }
        out
    }
}

/// One direction of `layer`, composed of differentiable ops (for backward passes that are recorded).
fn direction_composite<'t, T: Float>(
    proj: Var<'t, T>,
    w_hh: Var<'t, T>,
    h0: Var<'t, T>,
    c0: Var<'t, T>,
    seq: &Seq,
) -> Var<'t, T> {
    let (batch, hidden) = (seq.batch, seq.hidden);
    let w_hh_t = w_hh.t();
    let (mut h, mut c) = (h0, c0);
    let mut states = vec![None; seq.steps];
    let order: Vec<usize> = if seq.reverse { (0..seq.steps).rev().collect() } else { (0..seq.steps).collect() };
    for t in order {
        let valid: Vec<bool> = seq.lengths.iter().map(|&len| t < len).collect();
        if valid.iter().any(|&v| v) {
            let x_t = proj.narrow(1, t, 1).reshape(&[batch, 4 * hidden]);
            let (h_new, c_new) = update(x_t + h.matmul(w_hh_t), c, hidden);
            if valid.iter().all(|&v| v) {
                (h, c) = (h_new, c_new);
            } else {
                let mask = h.constant(
                    ArrayD::from_shape_vec(IxDyn(&[batch, 1]), valid.iter().map(|&v| indicator(v)).collect())
                        .expect("mask shape"),
                );
                h = h + (h_new - h) * mask;
                c = c + (c_new - c) * mask;
            }
        }
        states[t] = Some(concat(&[h, c], 1));
    }
    let states: Vec<_> = states.into_iter().map(|s| s.expect("every step visited")).collect();
    stack(&states, 1)
}

impl<'t, T: Float> Var<'t, T> {
    /// [`lstm`] as a method: `x.lstm(forward, backward, initial, lengths)`.
    pub fn lstm(
        self,
        forward: &LstmWeights<'t, T>,
        backward: Option<&LstmWeights<'t, T>>,
        initial: Option<LstmState<'t, T>>,
        lengths: Option<&[usize]>,
    ) -> (Var<'t, T>, LstmState<'t, T>) {
        lstm(self, forward, backward, initial, lengths)
    }
}

/// A single-layer LSTM over `x [B, T, I]` (batch first), bidirectional when `backward` weights are given.
///
/// - `initial`: `(h_0, c_0)`, each `[D, B, H]` (`D` = 1 or 2 directions); zeros when `None`.
/// - `lengths`: the valid length of every sequence (`B` values, each at most `T`; 0 leaves the initial state);
///   `None` means all are `T`. See the module documentation for the packed-sequence semantics.
///
/// Returns `(outputs [B, T, D·H], (h_n [D, B, H], c_n [D, B, H]))`: for each direction the hidden state at
/// every step (zero at padded steps; the forward half first along the last axis) and the final state, which
/// for the forward direction is the state after step `lengths[b] - 1` and for the backward direction the state
/// after step 0.
pub fn lstm<'t, T: Float>(
    x: Var<'t, T>,
    forward: &LstmWeights<'t, T>,
    backward: Option<&LstmWeights<'t, T>>,
    initial: Option<LstmState<'t, T>>,
    lengths: Option<&[usize]>,
) -> (Var<'t, T>, LstmState<'t, T>) {
    let dirs: Vec<&LstmWeights<'t, T>> = std::iter::once(forward).chain(backward).collect();
    let xs = x.shape();
    assert!(xs.len() == 3 && xs[1] > 0, "lstm: input of shape {xs:?} is not [B, T, I] with T > 0");
    let (batch, steps, input) = (xs[0], xs[1], xs[2]);
    let hidden = forward.hidden_size();
    for w in &dirs {
        w.check("lstm");
        assert!(
            w.input_size() == input && w.hidden_size() == hidden,
            "lstm: weights w_ih {:?}, w_hh {:?} do not fit input {xs:?} and H = {hidden}",
            w.w_ih.shape(),
            w.w_hh.shape()
        );
    }
    let lengths: Vec<usize> = match lengths {
        Some(l) => {
            assert!(
                l.len() == batch && l.iter().all(|&n| n <= steps),
                "lstm: lengths {l:?} for an input of shape {xs:?}"
            );
            l.to_vec()
        }
        None => vec![steps; batch],
    };
    let state_shape = [dirs.len(), batch, hidden];
    if let Some((h0, c0)) = initial {
        assert!(
            h0.shape() == state_shape && c0.shape() == state_shape,
            "lstm: initial state h_0 {:?}, c_0 {:?} but expected {state_shape:?}",
            h0.shape(),
            c0.shape()
        );
    }
    let flat = x.reshape(&[batch * steps, input]);
    let mut layer_inputs = Vec::new();
    let mut seqs = Vec::new();
    for (d, w) in dirs.iter().enumerate() {
        // The input projection of all steps at once, [B*T, 4H] (read as [B, T, 4H] by the layer op).
        let mut proj = product(flat, false, w.w_ih, true);
        if let Some(b) = w.bias() {
            proj = proj + b;
        }
        let (h0, c0) = match initial {
            Some((h0, c0)) => {
                let pick = |s: Var<'t, T>| s.narrow(0, d, 1).reshape(&[batch, hidden]);
                (pick(h0), pick(c0))
            }
            None => {
                let zeros = x.constant(ArrayD::zeros(IxDyn(&[batch, hidden])));
                (zeros, zeros)
            }
        };
        layer_inputs.extend([proj, w.w_hh, h0, c0]);
        seqs.push(Seq { batch, steps, hidden, lengths: lengths.clone(), reverse: d == 1 });
    }
    // [B, T, D, 2H]: the outputs are the h halves, directions side by side as PyTorch lays them out.
    let all = layer(&layer_inputs, seqs);
    let nd = dirs.len();
    let mut out = all.narrow(3, 0, hidden).reshape(&[batch, steps, nd * hidden]);
    if lengths.iter().any(|&l| l < steps) {
        let mask = ArrayD::from_shape_fn(IxDyn(&[batch, steps, 1]), |ix| indicator::<T>(ix[1] < lengths[ix[0]]));
        out = out * x.constant(mask);
    }
    let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
    for d in 0..nd {
        let last = all.narrow(1, if d == 1 { 0 } else { steps - 1 }, 1).narrow(2, d, 1).reshape(&[batch, 2 * hidden]);
        h_n.push(last.narrow(1, 0, hidden));
        c_n.push(last.narrow(1, hidden, hidden));
    }
    (out, (stack(&h_n, 0), stack(&c_n, 0)))
}
