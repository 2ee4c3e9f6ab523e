//! Neural-network ops built as compositions of differentiable primitives, so they differentiate to any order:
//! softmax and log-softmax, batch and layer normalisation, dropout and embedding lookup.
//!
//! Nothing here records an op of its own. Random masks (dropout) and running statistics (batch norm) are
//! plain values outside the graph: the mask enters as a constant, the running statistics are updated on
//! ndarray values and enter evaluation as constants.

use crate::Var;
use kernels::Float;
use ndarray::{ArrayD, Axis, IxDyn};
use rand::Rng;

/// Running statistics of a batch-norm layer, one entry per channel (PyTorch's `running_mean` and
/// `running_var` buffers). The layer's parameters (`gamma`, `beta`) live with the layer, not here.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormState<T> {
    /// Shape `[C]`, starts at 0.
    pub running_mean: ArrayD<T>,
    /// Shape `[C]`, starts at 1; updated with the unbiased batch variance.
    pub running_var: ArrayD<T>,
    /// Number of training updates applied so far.
    pub num_batches_tracked: usize,
}

impl<T: Float> BatchNormState<T> {
    /// Fresh statistics for `channels` channels: mean 0, variance 1.
    pub fn new(channels: usize) -> Self {
        BatchNormState {
            running_mean: ArrayD::zeros(IxDyn(&[channels])),
            running_var: ArrayD::ones(IxDyn(&[channels])),
            num_batches_tracked: 0,
        }
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.running_mean.len()
    }
}

/// Shape `[1, C, 1, ..]` of rank `ndim`: a per-channel vector laid out to broadcast against `[B, C, ..]`.
fn channel_shape(ndim: usize, channels: usize) -> Vec<usize> {
    let mut shape = vec![1; ndim];
    shape[1] = channels;
    shape
}

/// Check that an optional affine parameter has shape `want`.
fn check_param<T: Float>(op: &str, name: &str, p: Option<Var<'_, T>>, want: &[usize], x_shape: &[usize]) {
    if let Some(p) = p {
        assert!(
            p.shape() == want,
            "{op}: {name} of shape {:?} does not match the expected {want:?} for input of shape {x_shape:?}",
            p.shape()
        );
    }
}

/// PyTorch's default `eps` of batch and layer normalisation.
pub const NORM_EPS: f64 = 1e-5;
/// PyTorch's default momentum of batch normalisation's running statistics.
pub const BATCH_NORM_MOMENTUM: f64 = 0.1;

impl<'t, T: Float> Var<'t, T> {
    /// [`batch_norm`] as a method, with PyTorch's defaults: momentum [`BATCH_NORM_MOMENTUM`], eps [`NORM_EPS`].
    pub fn batch_norm(
        self,
        gamma: Option<Var<'t, T>>,
        beta: Option<Var<'t, T>>,
        state: Option<&mut BatchNormState<T>>,
        training: bool,
    ) -> Var<'t, T> {
        batch_norm(self, gamma, beta, state, training, T::of(BATCH_NORM_MOMENTUM), T::of(NORM_EPS))
    }
}

/// Batch normalisation over the channel axis 1 of a `[B, C]` or `[B, C, H, W]` input (any rank >= 2 works,
/// normalising over every axis but 1), as `torch.nn.functional.batch_norm`:
/// `y = (x - mean) / sqrt(var + eps) * gamma + beta`, with `gamma`, `beta` of shape `[C]` when given.
///
/// - `training`: mean and (biased) variance come from the batch and are part of the graph. If `state` is
///   given it is updated outside the graph, PyTorch's way: `running = (1 - momentum) * running + momentum *
///   batch`, with the *unbiased* batch variance for `running_var`. PyTorch's default momentum is 0.1.
/// - evaluation: the running statistics in `state` are used as constants (`momentum` is ignored); `state`
///   is then required.
///
/// Panics on an input of rank below 2, on parameter or state shapes that do not match the channel count, on
/// evaluation without `state`, and in training on a single value per channel (its variance is undefined).
pub fn batch_norm<'t, T: Float>(
    x: Var<'t, T>,
    gamma: Option<Var<'t, T>>,
    beta: Option<Var<'t, T>>,
    state: Option<&mut BatchNormState<T>>,
    training: bool,
    momentum: T,
    eps: T,
) -> Var<'t, T> {
    let shape = x.shape();
    assert!(shape.len() >= 2, "batch_norm: expected input of shape [B, C, ..], got {shape:?}");
    let c = shape[1];
    check_param("batch_norm", "gamma", gamma, &[c], &shape);
    check_param("batch_norm", "beta", beta, &[c], &shape);
    if let Some(s) = &state {
        assert!(
            s.running_mean.shape() == [c] && s.running_var.shape() == [c],
            "batch_norm: running statistics of shapes {:?} and {:?} do not match {c} channels of input {shape:?}",
            s.running_mean.shape(),
            s.running_var.shape()
        );
    }
    let axes: Vec<usize> = (0..shape.len()).filter(|&a| a != 1).collect();
    let cshape = channel_shape(shape.len(), c);
    let normalised = if training {
        let n: usize = axes.iter().map(|&a| shape[a]).product();
        assert!(
            n > 1,
            "batch_norm: expected more than 1 value per channel when training, got input of shape {shape:?}"
        );
        let mean = x.mean_axes(&axes, true);
        let centred = x - mean;
        let var = centred.square().mean_axes(&axes, true);
        if let Some(s) = state {
            let m = momentum;
            let keep = T::one() - m;
            let batch_mean = mean.value().as_standard_layout().into_owned().into_shape_with_order(IxDyn(&[c]));
            let batch_var = var.value().as_standard_layout().into_owned().into_shape_with_order(IxDyn(&[c]));
            let (batch_mean, batch_var) = (batch_mean.expect("[C]"), batch_var.expect("[C]"));
            let unbias = T::of_usize(n) / T::of_usize(n - 1);
            s.running_mean.zip_mut_with(&batch_mean, |r, &b| *r = keep * *r + m * b);
            s.running_var.zip_mut_with(&batch_var, |r, &b| *r = keep * *r + m * b * unbias);
            s.num_batches_tracked += 1;
        }
        centred / (var + eps).sqrt()
    } else {
        let s = state.expect("batch_norm: evaluation mode needs running statistics (state is None)");
        let mean = s.running_mean.view().into_shape_with_order(IxDyn(&cshape)).expect("[1, C, ..]").to_owned();
        let inv_std = s.running_var.mapv(|v| T::one() / (v + eps).sqrt());
        let inv_std = inv_std.into_shape_with_order(IxDyn(&cshape)).expect("[1, C, ..]");
        (x - x.constant(mean)) * x.constant(inv_std)
    };
    affine(normalised, gamma, beta, &cshape)
}

/// `x * gamma + beta`, each parameter reshaped to `shape` for broadcasting.
fn affine<'t, T: Float>(
    x: Var<'t, T>,
    gamma: Option<Var<'t, T>>,
    beta: Option<Var<'t, T>>,
    shape: &[usize],
) -> Var<'t, T> {
    let x = match gamma {
        Some(g) => x * g.reshape(shape),
        None => x,
    };
    match beta {
        Some(b) => x + b.reshape(shape),
        None => x,
    }
}

/// The rows `weight[ids[..]]` of an embedding table `weight` of shape `[V, D]`: output shape
/// `[ids.shape().., D]`. Gradients flow into `weight` (rows used more than once accumulate).
///
/// Panics if `weight` is not 2-D or an id is not below the vocabulary size `V`.
pub fn embedding<'t, T: Float>(weight: Var<'t, T>, ids: &ArrayD<usize>) -> Var<'t, T> {
    let wshape = weight.shape();
    assert!(wshape.len() == 2, "embedding: expected a weight of shape [V, D], got {wshape:?}");
    let (vocab, dim) = (wshape[0], wshape[1]);
    if let Some(&id) = ids.iter().find(|&&i| i >= vocab) {
        panic!("embedding: id {id} is out of range for a vocabulary of size {vocab}");
    }
    let flat: Vec<usize> = ids.iter().copied().collect();
    let mut shape = ids.shape().to_vec();
    shape.push(dim);
    weight.index_select(0, &flat).reshape(&shape)
}

impl<'t, T: Float> Var<'t, T> {
    /// `exp(x) / sum(exp(x))` along `axis`, computed stably as `exp(x - m) / sum(exp(x - m))` with `m` the
    /// maximum along `axis` held constant (softmax is shift-invariant, so this is exact to every order).
    pub fn softmax(self, axis: usize) -> Var<'t, T> {
        let e = self.shift_by_max("softmax", axis).exp();
        e / e.sum_axes(&[axis], true)
    }

    /// `x - logsumexp(x)` along `axis`: the log of [`Var::softmax`], without overflow or `log(0)`. The
    /// logsumexp is taken of `x - m` (`m` the constant maximum), so the result is not rounded at the scale of
    /// `m` when the logits are large.
    pub fn log_softmax(self, axis: usize) -> Var<'t, T> {
        let z = self.shift_by_max("log_softmax", axis);
        z - z.exp().sum_axes(&[axis], true).log()
    }

    /// `x - m` with `m` the maximum along `axis` as a constant (0 where it is not finite).
    fn shift_by_max(self, op: &str, axis: usize) -> Var<'t, T> {
        let shape = self.shape();
        assert!(axis < shape.len(), "{op}: axis {axis} is out of range for shape {shape:?}");
        assert!(shape[axis] > 0, "{op}: axis {axis} of shape {shape:?} is empty");
        let m = self.value().fold_axis(Axis(axis), T::neg_infinity(), |&m, &v| m.max(v)).insert_axis(Axis(axis));
        self - self.constant(m.mapv(|v| if v.is_finite() { v } else { T::zero() }))
    }

    /// Layer normalisation over the last `normalized_ndim` axes, as `torch.nn.functional.layer_norm`:
    /// `(x - mean) / sqrt(var + eps) * gamma + beta` with the biased variance; `gamma` and `beta`, when
    /// given, have the shape of those last axes. PyTorch's `eps` is [`NORM_EPS`].
    ///
    /// Panics if `normalized_ndim` is 0 or exceeds the rank, or on a parameter of the wrong shape.
    pub fn layer_norm(
        self,
        normalized_ndim: usize,
        gamma: Option<Var<'t, T>>,
        beta: Option<Var<'t, T>>,
        eps: T,
    ) -> Var<'t, T> {
        let shape = self.shape();
        assert!(
            normalized_ndim >= 1 && normalized_ndim <= shape.len(),
            "layer_norm: cannot normalise the last {normalized_ndim} axes of shape {shape:?}"
        );
        let first = shape.len() - normalized_ndim;
        let pshape = &shape[first..];
        check_param("layer_norm", "gamma", gamma, pshape, &shape);
        check_param("layer_norm", "beta", beta, pshape, &shape);
        let axes: Vec<usize> = (first..shape.len()).collect();
        let centred = self - self.mean_axes(&axes, true);
        let var = centred.square().mean_axes(&axes, true);
        affine(centred / (var + eps).sqrt(), gamma, beta, pshape)
    }

    /// Inverted dropout: in training, zero each element with probability `p` (drawn from `rng`) and scale
    /// the survivors by `1 / (1 - p)`; at evaluation, or with `p = 0`, the identity. The mask is a constant.
    /// With `p = 1` every element is zeroed, as PyTorch does.
    pub fn dropout(self, p: f64, rng: &mut impl Rng, training: bool) -> Var<'t, T> {
        assert!((0.0..=1.0).contains(&p), "dropout: probability {p} is not in [0, 1]");
        if !training || p == 0.0 {
            return self;
        }
        let scale = if p < 1.0 { T::of(1.0 / (1.0 - p)) } else { T::zero() };
        let mask = ArrayD::from_shape_simple_fn(self.shape(), || if rng.gen_bool(1.0 - p) { scale } else { T::zero() });
        self * self.constant(mask)
    }
}
