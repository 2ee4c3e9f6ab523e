//! `Linear` (PyTorch's `nn.Linear`) and `Mlp`, a stack of them with an activation between.

use crate::init;
use crate::module::Module;
use crate::param::Param;
use crate::scope::Scope;
use autograd::Float;
use autograd::Var;
use ndarray::ArrayD;
use rand::Rng;

/// `y = x w^T + b` on the last axis: weight `[out, in]`, bias `[out]`.
pub struct Linear<T: Float = f32> {
    pub weight: Param<T>,
    pub bias: Option<Param<T>>,
}

impl<T: Float> Clone for Linear<T> {
    /// Shares the parameters (as cloning any [`Param`] does).
    fn clone(&self) -> Self {
        Linear { weight: self.weight.clone(), bias: self.bias.clone() }
    }
}

impl<T: Float> Linear<T> {
    /// A layer with a bias, initialised as PyTorch does: weight and bias `U(-1/sqrt(in), 1/sqrt(in))`.
    pub fn new<R: Rng + ?Sized>(in_features: usize, out_features: usize, rng: &mut R) -> Self {
        Self::with_bias(in_features, out_features, true, rng)
    }

    /// As [`Linear::new`], with or without a bias. The weight is drawn before the bias, as in PyTorch.
    pub fn with_bias<R: Rng + ?Sized>(in_features: usize, out_features: usize, bias: bool, rng: &mut R) -> Self {
        let shape = [out_features, in_features];
        let weight = Param::new(init::default_weight(&shape, rng));
        let bias = bias.then(|| Param::new(init::default_bias(&shape, out_features, rng)));
        Linear { weight, bias }
    }

    /// A layer with the given weight `[out, in]` and bias `[out]`. Panics on inconsistent shapes.
    pub fn from_arrays(weight: ArrayD<T>, bias: Option<ArrayD<T>>) -> Self {
        assert_eq!(weight.ndim(), 2, "Linear: weight must be [out, in], got shape {:?}", weight.shape());
        if let Some(b) = &bias {
            assert_eq!(
                b.shape(),
                &[weight.shape()[0]],
                "Linear: bias of shape {:?} for weight {:?}",
                b.shape(),
                weight.shape()
            );
        }
        Linear { weight: Param::new(weight), bias: bias.map(Param::new) }
    }

    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Apply to `x` of shape `[.., in]` (any rank of at least 1), giving `[.., out]`.
    pub fn forward<'t>(&self, scope: &Scope<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let (n_in, n_out) = (self.in_features(), self.out_features());
        let shape = x.shape();
        assert!(
            shape.last() == Some(&n_in),
            "Linear({n_in} -> {n_out}): input of shape {shape:?} does not end in {n_in} features"
        );
        let rows: usize = shape[..shape.len() - 1].iter().product();
        let x2 = if shape.len() == 2 { x } else { x.reshape(&[rows, n_in]) };
        let w = scope.param(&self.weight);
        let y = match &self.bias {
            Some(b) => x2.linear(w, scope.param(b)),
            None => x2.matmul_nt(w),
        };
        let mut out_shape = shape[..shape.len() - 1].to_vec();
        out_shape.push(n_out);
        if shape.len() == 2 {
            y
        } else {
            y.reshape(&out_shape)
        }
    }
}

impl<T: Float> Module<T> for Linear<T> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
}

/// An element-wise activation.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Activation {
    /// The identity.
    #[default]
    None,
    Relu,
    LeakyRelu(f64),
    Tanh,
    Sigmoid,
}

impl Activation {
    pub fn apply<'t, T: Float>(self, x: Var<'t, T>) -> Var<'t, T> {
        match self {
            Activation::None => x,
            Activation::Relu => x.relu(),
            Activation::LeakyRelu(s) => x.leaky_relu(T::of(s)),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => x.sigmoid(),
        }
    }
}

/// Linear layers with `hidden` after every layer but the last and `last` after the last one. Parameters are
/// named by layer index: "0.weight", "0.bias", "1.weight", ..
pub struct Mlp<T: Float = f32> {
    pub layers: Vec<Linear<T>>,
    pub hidden: Activation,
    pub last: Activation,
}

impl<T: Float> Clone for Mlp<T> {
    fn clone(&self) -> Self {
        Mlp { layers: self.layers.clone(), hidden: self.hidden, last: self.last }
    }
}

impl<T: Float> Mlp<T> {
    /// `sizes[0] -> sizes[1] -> .. -> sizes[n]` with ReLU between layers and nothing after the last.
    pub fn new<R: Rng + ?Sized>(sizes: &[usize], rng: &mut R) -> Self {
        Self::with_activations(sizes, Activation::Relu, Activation::None, rng)
    }

    /// As [`Mlp::new`] with the given activations between layers and after the last one.
    pub fn with_activations<R: Rng + ?Sized>(
        sizes: &[usize],
        hidden: Activation,
        last: Activation,
        rng: &mut R,
    ) -> Self {
        assert!(sizes.len() >= 2, "Mlp: need at least an input and an output size, got {sizes:?}");
        let layers = sizes.windows(2).map(|w| Linear::new(w[0], w[1], rng)).collect();
        Mlp { layers, hidden, last }
    }

    /// Apply to `x` of shape `[.., sizes[0]]`, giving `[.., sizes[n]]`.
    pub fn forward<'t>(&self, scope: &Scope<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let n = self.layers.len();
        self.layers.iter().enumerate().fold(x, |h, (i, layer)| {
            let act = if i + 1 == n { self.last } else { self.hidden };
            act.apply(layer.forward(scope, h))
        })
    }
}

impl<T: Float> Module<T> for Mlp<T> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        self.layers.params()
    }
    fn set_training(&self, training: bool) {
        self.layers.set_training(training);
    }
}
