//! Loss functions, as compositions of differentiable ops (so they differentiate to any order), with
//! PyTorch's definitions: `mse_loss`, `cross_entropy` (from logits), `nll_loss` (from log-probabilities) and
//! `binary_cross_entropy` (from probabilities, each log clamped at -100).

use crate::ops::indicator;
use crate::Var;
use kernels::Float;
use ndarray::{ArrayD, IxDyn};

/// How a loss reduces its per-element terms to a scalar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The sum of the terms.
    Sum,
    /// The mean of the terms (PyTorch's default).
    #[default]
    Mean,
}

impl Reduction {
    /// Reduce `x` to a 0-d tensor.
    pub fn apply<'t, T: Float>(self, x: Var<'t, T>) -> Var<'t, T> {
        match self {
            Reduction::Sum => x.sum(),
            Reduction::Mean => x.mean(),
        }
    }
}

fn check_same_shape<T: Float>(op: &str, a: &str, x: Var<'_, T>, b: &str, y: Var<'_, T>) {
    let (xs, ys) = (x.shape(), y.shape());
    assert!(xs == ys, "{op}: {a} of shape {xs:?} and {b} of shape {ys:?} differ");
}

/// Squared error `(pred - target)^2`, summed or averaged. The shapes must be equal (no broadcasting).
pub fn mse_loss<'t, T: Float>(pred: Var<'t, T>, target: Var<'t, T>, reduction: Reduction) -> Var<'t, T> {
    check_same_shape("mse_loss", "prediction", pred, "target", target);
    reduction.apply((pred - target).square())
}

/// Check a `[B, C]` input against `B` class indices, each below `C`.
fn check_classes<T: Float>(op: &str, what: &str, x: Var<'_, T>, targets: &[usize]) {
    let shape = x.shape();
    assert!(shape.len() == 2, "{op}: expected {what} of shape [B, C], got {shape:?}");
    assert!(
        targets.len() == shape[0],
        "{op}: {} targets (shape [{}]) for {what} of shape {shape:?}",
        targets.len(),
        targets.len()
    );
    if let Some((i, &k)) = targets.iter().enumerate().find(|(_, &k)| k >= shape[1]) {
        panic!("{op}: target class {k} (at position {i}) is out of range for {} classes", shape[1]);
    }
}

/// `-mean_b log_probs[b, targets[b]]`, PyTorch's `nll_loss` with mean reduction.
fn nll_unchecked<'t, T: Float>(log_probs: Var<'t, T>, targets: &[usize]) -> Var<'t, T> {
    let index = ArrayD::from_shape_vec(IxDyn(&[targets.len(), 1]), targets.to_vec()).expect("[B, 1]");
    -log_probs.gather(1, &index).mean()
}

/// Negative log-likelihood of class `targets[b]` under the log-probabilities `log_probs[b, :]` (shape
/// `[B, C]`), averaged over the batch.
///
/// Panics if `log_probs` is not 2-D, the number of targets is not `B`, or a class index is not below `C`.
pub fn nll_loss<'t, T: Float>(log_probs: Var<'t, T>, targets: &[usize]) -> Var<'t, T> {
    check_classes("nll_loss", "log-probabilities", log_probs, targets);
    nll_unchecked(log_probs, targets)
}

/// Cross-entropy of class `targets[b]` under `softmax(logits[b, :])` (shape `[B, C]`), averaged over the
/// batch: `nll_loss(log_softmax(logits, 1), targets)`.
///
/// Panics if `logits` is not 2-D, the number of targets is not `B`, or a class index is not below `C`.
pub fn cross_entropy<'t, T: Float>(logits: Var<'t, T>, targets: &[usize]) -> Var<'t, T> {
    check_classes("cross_entropy", "logits", logits, targets);
    nll_unchecked(logits.log_softmax(1), targets)
}

/// `max(log x, -100)` element-wise, as PyTorch clamps the logs in `binary_cross_entropy`. Where the clamp
/// is active (including `x = 0`) the value is exactly -100 and the gradient exactly 0: the clamped
/// positions are a constant mask, so no `0 / 0` appears in the backward pass.
fn clamped_log<'t, T: Float>(x: Var<'t, T>) -> Var<'t, T> {
    let floor = T::of(-100.0);
    let clamped = x.map_const(|v| indicator::<T>(v.ln() < floor));
    if clamped.value().iter().all(|&c| c == T::zero()) {
        return x.log();
    }
    let keep = clamped.map_const(|c| T::one() - c);
    // log(1) = 0 where clamped, so nothing infinite enters the graph.
    let safe = x * keep + clamped;
    safe.log() * keep + clamped * floor
}

/// Binary cross-entropy of probabilities `p` against targets `target` (same shape, usually in {0, 1}):
/// `-(y * max(log p, -100) + (1 - y) * max(log(1 - p), -100))`, summed or averaged, as
/// `torch.nn.functional.binary_cross_entropy`.
///
/// Panics if the shapes differ or a probability lies outside `[0, 1]`.
pub fn binary_cross_entropy<'t, T: Float>(p: Var<'t, T>, target: Var<'t, T>, reduction: Reduction) -> Var<'t, T> {
    check_same_shape("binary_cross_entropy", "probabilities", p, "target", target);
    if let Some(&v) = p.value().iter().find(|&&v| !(v >= T::zero() && v <= T::one())) {
        panic!("binary_cross_entropy: probabilities must lie in [0, 1], got {v}");
    }
    let log_p = clamped_log(p);
    let log_q = clamped_log(-p + T::one());
    let terms = target * log_p + (-target + T::one()) * log_q;
    reduction.apply(-terms)
}
