//! LSTM: one cell step and a multi-step, optionally bidirectional, single-layer LSTM over a batch of padded
//! sequences. Both are compositions of differentiable ops (matmul, sigmoid, tanh, narrow, stack, concat), so
//! they differentiate to any order.
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

use crate::{concat, ops::elementwise::indicator, stack, Var};
use kernels::Float;
use ndarray::{ArrayD, IxDyn};

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
    let mut gates = x.matmul(w.w_ih.t()) + h.matmul(w.w_hh.t());
    if let Some(b) = w.bias() {
        gates = gates + b;
    }
    update(gates, c, hidden)
}

/// Run one direction over all steps. `xs[t]` is the input projection (with biases) `[B, 4H]` of step `t`;
/// steps are visited last to first when `reverse`. Returns the per-step outputs in time order and the final state.
fn run_direction<'t, T: Float>(
    xs: &[Var<'t, T>],
    w_hh_t: Var<'t, T>,
    (mut h, mut c): LstmState<'t, T>,
    lengths: &[usize],
    reverse: bool,
) -> (Vec<Var<'t, T>>, LstmState<'t, T>) {
    let (batch, hidden) = (h.shape()[0], h.shape()[1]);
    let steps = xs.len();
    let mut outputs = vec![None; steps];
    let order: Vec<usize> = if reverse { (0..steps).rev().collect() } else { (0..steps).collect() };
    for t in order {
        let valid: Vec<bool> = lengths.iter().map(|&len| t < len).collect();
        if !valid.iter().any(|&v| v) {
            // No sequence has step t: the state is unchanged and the output is zero.
            outputs[t] = Some(h.constant(ArrayD::zeros(IxDyn(&[batch, hidden]))));
            continue;
        }
        let (h_new, c_new) = update(xs[t] + h.matmul(w_hh_t), c, hidden);
        if valid.iter().all(|&v| v) {
            (h, c) = (h_new, c_new);
            outputs[t] = Some(h_new);
        } else {
            let mask = h.constant(
                ArrayD::from_shape_vec(IxDyn(&[batch, 1]), valid.iter().map(|&v| indicator(v)).collect())
                    .expect("mask shape"),
            );
            h = h + (h_new - h) * mask;
            c = c + (c_new - c) * mask;
            outputs[t] = Some(h_new * mask);
        }
    }
    (outputs.into_iter().map(|o| o.expect("every step visited")).collect(), (h, c))
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
    let mut outputs = Vec::new();
    let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
    for (d, w) in dirs.iter().enumerate() {
        // The input projection of all steps at once, then one [B, 4H] slice per step.
        let mut proj = flat.matmul(w.w_ih.t());
        if let Some(b) = w.bias() {
            proj = proj + b;
        }
        let proj = proj.reshape(&[batch, steps, 4 * hidden]);
        let per_step: Vec<_> = (0..steps).map(|t| proj.narrow(1, t, 1).reshape(&[batch, 4 * hidden])).collect();
        let state = match initial {
            Some((h0, c0)) => {
                let pick = |s: Var<'t, T>| s.narrow(0, d, 1).reshape(&[batch, hidden]);
                (pick(h0), pick(c0))
            }
            None => {
                let zeros = x.constant(ArrayD::zeros(IxDyn(&[batch, hidden])));
                (zeros, zeros)
            }
        };
        let (outs, (h, c)) = run_direction(&per_step, w.w_hh.t(), state, &lengths, d == 1);
        outputs.push(stack(&outs, 1));
        h_n.push(h);
        c_n.push(c);
    }
    let out = if outputs.len() == 1 { outputs[0] } else { concat(&outputs, 2) };
    (out, (stack(&h_n, 0), stack(&c_n, 0)))
}
