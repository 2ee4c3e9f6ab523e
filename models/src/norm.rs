//! `BatchNorm` (PyTorch's `nn.BatchNorm1d` / `nn.BatchNorm2d`) and `LayerNorm` (`nn.LayerNorm`), both with
//! learned affine parameters named "weight" (gamma) and "bias" (beta), as in a PyTorch `state_dict`.

use crate::init;
use crate::module::Module;
use crate::param::{Buffer, Param};
use crate::scope::Scope;
use autograd::ops::nn::{batch_norm, BatchNormState, BATCH_NORM_MOMENTUM, NORM_EPS};
use autograd::Float;
use autograd::Var;
use ndarray::ArrayD;
use std::cell::Cell;
use std::rc::Rc;

/// Batch normalisation over axis 1 of `[B, C]` or `[B, C, H, W]` inputs (any rank of at least 2).
///
/// In training mode (the default, as for a new PyTorch module) it normalises with the batch's mean and
/// biased variance and updates the running statistics outside the graph:
/// `running = (1 - momentum) running + momentum batch`, with the unbiased batch variance for `running_var`,
/// and counts the update in `num_batches_tracked`. In evaluation mode ([`Module::set_training`] with
/// `false`) it normalises with the running statistics, which are then constants.
///
/// The running statistics are buffers named "running_mean", "running_var" and "num_batches_tracked" (the
/// count is stored as a float scalar of shape `[]`, exact up to 2^24 updates in f32; PyTorch stores an int64).
pub struct BatchNorm<T: Float = f32> {
    /// Gamma `[C]`, initialised to ones.
    pub weight: Param<T>,
    /// Beta `[C]`, initialised to zeros.
    pub bias: Param<T>,
    /// `[C]`, starts at 0.
    pub running_mean: Buffer<T>,
    /// `[C]`, starts at 1.
    pub running_var: Buffer<T>,
    /// Shape `[]`, starts at 0.
    pub num_batches_tracked: Buffer<T>,
    /// PyTorch's default is 0.1.
    pub momentum: f64,
    /// PyTorch's default is 1e-5.
    pub eps: f64,
    /// Shared by clones, like the parameters: a clone is the same layer.
    training: Rc<Cell<bool>>,
}

impl<T: Float> Clone for BatchNorm<T> {
    /// Shares the parameters, buffers and mode.
    fn clone(&self) -> Self {
        BatchNorm {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            running_mean: self.running_mean.clone(),
            running_var: self.running_var.clone(),
            num_batches_tracked: self.num_batches_tracked.clone(),
            momentum: self.momentum,
            eps: self.eps,
            training: self.training.clone(),
        }
    }
}

impl<T: Float> BatchNorm<T> {
    /// A layer for `channels` channels with PyTorch's defaults: gamma 1, beta 0, running mean 0, running
    /// variance 1, momentum 0.1, eps 1e-5, in training mode.
    pub fn new(channels: usize) -> Self {
        BatchNorm {
            weight: Param::new(init::ones(&[channels])),
            bias: Param::new(init::zeros(&[channels])),
            running_mean: Buffer::new(init::zeros(&[channels])),
            running_var: Buffer::new(init::ones(&[channels])),
            num_batches_tracked: Buffer::new(ArrayD::zeros(vec![])),
            momentum: BATCH_NORM_MOMENTUM,
            eps: NORM_EPS,
            training: Rc::new(Cell::new(true)),
        }
    }

    pub fn channels(&self) -> usize {
        self.weight.len()
    }

    /// Whether the layer is in training mode.
    pub fn training(&self) -> bool {
        self.training.get()
    }

    /// The number of training updates of the running statistics so far.
    pub fn batches_tracked(&self) -> usize {
        self.num_batches_tracked.value().iter().next().map_or(0, |n| n.to_usize().unwrap_or(0))
    }

    /// Normalise `x [B, C, ..]`; in training mode also update the running statistics.
    pub fn forward<'t>(&self, scope: &Scope<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let c = self.channels();
        let shape = x.shape();
        assert!(shape.len() >= 2 && shape[1] == c, "BatchNorm({c}): input of shape {shape:?} is not [B, {c}, ..]");
        let training = self.training();
        let mut state = BatchNormState {
            running_mean: (*self.running_mean.value()).clone(),
            running_var: (*self.running_var.value()).clone(),
            num_batches_tracked: self.batches_tracked(),
        };
        let (gamma, beta) = (scope.param(&self.weight), scope.param(&self.bias));
        let (momentum, eps) = (T::of(self.momentum), T::of(self.eps));
        let y = batch_norm(x, Some(gamma), Some(beta), Some(&mut state), training, momentum, eps);
        if training {
            self.running_mean.set(state.running_mean);
            self.running_var.set(state.running_var);
            self.num_batches_tracked.set(ArrayD::from_elem(vec![], T::of_usize(state.num_batches_tracked)));
        }
        y
    }
}

impl<T: Float> Module<T> for BatchNorm<T> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        vec![("weight".to_string(), self.weight.clone()), ("bias".to_string(), self.bias.clone())]
    }
    fn buffers(&self) -> Vec<(String, Param<T>)> {
        vec![
            ("running_mean".to_string(), self.running_mean.clone()),
            ("running_var".to_string(), self.running_var.clone()),
            ("num_batches_tracked".to_string(), self.num_batches_tracked.clone()),
        ]
    }
    fn set_training(&self, training: bool) {
        self.training.set(training);
    }
}

/// Layer normalisation over the trailing axes given at construction: `(x - mean) / sqrt(var + eps) * weight
/// + bias` with the biased variance, `weight` (ones) and `bias` (zeros) of that trailing shape.
pub struct LayerNorm<T: Float = f32> {
    pub weight: Param<T>,
    pub bias: Param<T>,
    /// PyTorch's default is 1e-5.
    pub eps: f64,
}

impl<T: Float> Clone for LayerNorm<T> {
    /// Shares the parameters.
    fn clone(&self) -> Self {
        LayerNorm { weight: self.weight.clone(), bias: self.bias.clone(), eps: self.eps }
    }
}

impl<T: Float> LayerNorm<T> {
    /// Normalisation over trailing axes of shape `normalized_shape` (PyTorch's `normalized_shape`).
    pub fn new(normalized_shape: &[usize]) -> Self {
        assert!(!normalized_shape.is_empty(), "LayerNorm: the normalised shape must have at least one axis");
        LayerNorm {
            weight: Param::new(init::ones(normalized_shape)),
            bias: Param::new(init::zeros(normalized_shape)),
            eps: NORM_EPS,
        }
    }

    pub fn normalized_shape(&self) -> Vec<usize> {
        self.weight.shape()
    }

    /// Normalise `x [.., normalized_shape]` over its trailing axes.
    pub fn forward<'t>(&self, scope: &Scope<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let norm = self.normalized_shape();
        let shape = x.shape();
        assert!(
            shape.len() >= norm.len() && shape[shape.len() - norm.len()..] == norm[..],
            "LayerNorm({norm:?}): input of shape {shape:?} does not end in {norm:?}"
        );
        x.layer_norm(norm.len(), Some(scope.param(&self.weight)), Some(scope.param(&self.bias)), T::of(self.eps))
    }
}

impl<T: Float> Module<T> for LayerNorm<T> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        vec![("weight".to_string(), self.weight.clone()), ("bias".to_string(), self.bias.clone())]
    }
}
