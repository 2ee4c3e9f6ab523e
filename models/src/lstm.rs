//! `Lstm` (PyTorch's single-layer `nn.LSTM` with `batch_first = True`) and `Embedding` (`nn.Embedding`).

use crate::init;
use crate::module::Module;
use crate::param::Param;
use crate::scope::Scope;
use autograd::ops::lstm::{lstm, LstmState, LstmWeights};
use autograd::ops::nn::embedding;
use autograd::Float;
use autograd::Var;
use ndarray::ArrayD;
use rand::Rng;

/// The parameters of one direction: `weight_ih [4H, I]`, `weight_hh [4H, H]`, `bias_ih`, `bias_hh [4H]`, with
/// the gates in PyTorch's order `(i, f, g, o)`.
pub struct LstmDirection<T: Float = f32> {
    pub weight_ih: Param<T>,
    pub weight_hh: Param<T>,
    pub bias_ih: Param<T>,
    pub bias_hh: Param<T>,
}

impl<T: Float> Clone for LstmDirection<T> {
    fn clone(&self) -> Self {
        LstmDirection {
            weight_ih: self.weight_ih.clone(),
            weight_hh: self.weight_hh.clone(),
            bias_ih: self.bias_ih.clone(),
            bias_hh: self.bias_hh.clone(),
        }
    }
}

impl<T: Float> LstmDirection<T> {
    /// PyTorch's init: every tensor `U(-1/sqrt(H), 1/sqrt(H))`, drawn in the order weight_ih, weight_hh,
    /// bias_ih, bias_hh.
    fn new<R: Rng + ?Sized>(input: usize, hidden: usize, rng: &mut R) -> Self {
        let b = 1.0 / (hidden as f64).sqrt();
        let mut draw = |shape: &[usize]| Param::new(init::uniform(shape, -b, b, rng));
        LstmDirection {
            weight_ih: draw(&[4 * hidden, input]),
            weight_hh: draw(&[4 * hidden, hidden]),
            bias_ih: draw(&[4 * hidden]),
            bias_hh: draw(&[4 * hidden]),
        }
    }

    fn weights<'t>(&self, scope: &Scope<'t, T>) -> LstmWeights<'t, T> {
        LstmWeights::new(
            scope.param(&self.weight_ih),
            scope.param(&self.weight_hh),
            scope.param(&self.bias_ih),
            scope.param(&self.bias_hh),
        )
    }

    /// Named `weight_ih_l0{suffix}`, .. as in PyTorch.
    fn named(&self, suffix: &str) -> Vec<(String, Param<T>)> {
        vec![
            (format!("weight_ih_l0{suffix}"), self.weight_ih.clone()),
            (format!("weight_hh_l0{suffix}"), self.weight_hh.clone()),
            (format!("bias_ih_l0{suffix}"), self.bias_ih.clone()),
            (format!("bias_hh_l0{suffix}"), self.bias_hh.clone()),
        ]
    }
}

/// A single-layer LSTM over batch-first sequences `[B, T, I]`, optionally bidirectional.
pub struct Lstm<T: Float = f32> {
    /// The forward direction (`*_l0`).
    pub fwd: LstmDirection<T>,
    /// The backward direction of a bidirectional LSTM (`*_l0_reverse`).
    pub bwd: Option<LstmDirection<T>>,
}

impl<T: Float> Clone for Lstm<T> {
    /// Shares the parameters.
    fn clone(&self) -> Self {
        Lstm { fwd: self.fwd.clone(), bwd: self.bwd.clone() }
    }
}

impl<T: Float> Lstm<T> {
    /// An LSTM initialised as PyTorch does: all weights and biases `U(-1/sqrt(hidden), 1/sqrt(hidden))`, the
    /// forward direction's tensors drawn before the reverse direction's.
    pub fn new<R: Rng + ?Sized>(input: usize, hidden: usize, bidirectional: bool, rng: &mut R) -> Self {
        let fwd = LstmDirection::new(input, hidden, rng);
        let bwd = bidirectional.then(|| LstmDirection::new(input, hidden, rng));
        Lstm { fwd, bwd }
    }

    pub fn input_size(&self) -> usize {
        self.fwd.weight_ih.shape()[1]
    }

    pub fn hidden_size(&self) -> usize {
        self.fwd.weight_hh.shape()[1]
    }

    /// Number of directions: 2 if bidirectional, else 1.
    pub fn directions(&self) -> usize {
        1 + self.bwd.is_some() as usize
    }

    /// Run over `x [B, T, I]` from zero states. `lengths` gives each sequence's valid length (a packed
    /// sequence; `None` for all `T`). Returns `(outputs [B, T, D*H], (h_n [D, B, H], c_n [D, B, H]))` as
    /// [`autograd::ops::lstm::lstm`] documents.
    pub fn forward<'t>(
        &self,
        scope: &Scope<'t, T>,
        x: Var<'t, T>,
        lengths: Option<&[usize]>,
    ) -> (Var<'t, T>, LstmState<'t, T>) {
        self.forward_from(scope, x, None, lengths)
    }

    /// As [`Lstm::forward`] from the initial state `(h_0, c_0)`, each `[D, B, H]` (zeros when `None`).
    pub fn forward_from<'t>(
        &self,
        scope: &Scope<'t, T>,
        x: Var<'t, T>,
        initial: Option<LstmState<'t, T>>,
        lengths: Option<&[usize]>,
    ) -> (Var<'t, T>, LstmState<'t, T>) {
        let shape = x.shape();
        let (i, h) = (self.input_size(), self.hidden_size());
        assert!(
            shape.len() == 3 && shape[2] == i,
            "Lstm({i} -> {h}, {} directions): input of shape {shape:?} is not [B, T, {i}]",
            self.directions()
        );
        let fwd = self.fwd.weights(scope);
        let bwd = self.bwd.as_ref().map(|d| d.weights(scope));
        lstm(x, &fwd, bwd.as_ref(), initial, lengths)
    }
}

impl<T: Float> Module<T> for Lstm<T> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        let mut p = self.fwd.named("");
        if let Some(b) = &self.bwd {
            p.extend(b.named("_reverse"));
        }
        p
    }
}

/// A lookup table of `vocab` vectors of size `dim`: weight `[vocab, dim]`, initialised `N(0, 1)` as PyTorch.
pub struct Embedding<T: Float = f32> {
    pub weight: Param<T>,
}

impl<T: Float> Clone for Embedding<T> {
    /// Shares the table.
    fn clone(&self) -> Self {
        Embedding { weight: self.weight.clone() }
    }
}

impl<T: Float> Embedding<T> {
    pub fn new<R: Rng + ?Sized>(vocab: usize, dim: usize, rng: &mut R) -> Self {
        Embedding { weight: Param::new(init::normal(&[vocab, dim], 0.0, 1.0, rng)) }
    }

    pub fn vocab(&self) -> usize {
        self.weight.shape()[0]
    }

    pub fn dim(&self) -> usize {
        self.weight.shape()[1]
    }

    /// The rows for `ids` (any shape), giving `[ids.shape().., dim]`. Panics on an id not below `vocab`.
    pub fn forward<'t>(&self, scope: &Scope<'t, T>, ids: &ArrayD<usize>) -> Var<'t, T> {
        embedding(scope.param(&self.weight), ids)
    }
}

impl<T: Float> Module<T> for Embedding<T> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        vec![("weight".to_string(), self.weight.clone())]
    }
}
