//! `FSPool` (featurewise sort pooling, Zhang et al., ICLR 2020) and `FSEncoder`, the set encoder the Set
//! Refiner Network uses as H_agg on Circles.

use crate::init;
use crate::linear::{Activation, Mlp};
use crate::module::{prefixed, Module};
use crate::param::Param;
use crate::scope::Scope;
use autograd::ops::fspool::fspool;
use autograd::Float;
use autograd::Var;
use ndarray::ArrayD;
use rand::Rng;

/// FSPool over `[B, C, N]` sets (elements along axis 2) with a piecewise-linear weight function of `k`
/// pieces per channel: weight `[C, k+1]`, initialised `N(0, 1)` as in the released code.
pub struct FSPool<T: Float = f32> {
    pub weight: Param<T>,
}

impl<T: Float> Clone for FSPool<T> {
    /// Shares the weight.
    fn clone(&self) -> Self {
        FSPool { weight: self.weight.clone() }
    }
}

impl<T: Float> FSPool<T> {
    pub fn new<R: Rng + ?Sized>(channels: usize, k: usize, rng: &mut R) -> Self {
        FSPool { weight: Param::new(init::normal(&[channels, k + 1], 0.0, 1.0, rng)) }
    }

    pub fn channels(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Number of pieces `k`.
    pub fn pieces(&self) -> usize {
        self.weight.shape()[1] - 1
    }

    /// Pool `x [B, C, N]` to `[B, C]`; with `sizes`, sample `b` is its first `sizes[b]` elements.
    pub fn forward<'t>(&self, scope: &Scope<'t, T>, x: Var<'t, T>, sizes: Option<&[usize]>) -> Var<'t, T> {
        self.forward_with_perm(scope, x, sizes).0
    }

    /// As [`FSPool::forward`], also returning the sort permutation `[B, C, N]` (see
    /// [`autograd::ops::fspool::fspool`]).
    pub fn forward_with_perm<'t>(
        &self,
        scope: &Scope<'t, T>,
        x: Var<'t, T>,
        sizes: Option<&[usize]>,
    ) -> (Var<'t, T>, ArrayD<usize>) {
        let c = self.channels();
        let shape = x.shape();
        assert!(
            shape.len() == 3 && shape[1] == c,
            "FSPool({c} channels, {} pieces): input of shape {shape:?} is not [B, {c}, N]",
            self.pieces()
        );
        fspool(x, scope.param(&self.weight), sizes)
    }
}

impl<T: Float> Module<T> for FSPool<T> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        vec![("weight".to_string(), self.weight.clone())]
    }
}

/// The paper's H_agg for Circles: a per-element MLP `d -> hidden -> hidden -> out` with ReLU between layers
/// (the released code's kernel-1 `Conv1d`s, i.e. a Linear applied to every element), its output divided by
/// the number of elements `N`, then [`FSPool`] with `k` pieces. Parameters: "mlp.0.weight", .., "pool.weight".
pub struct FSEncoder<T: Float = f32> {
    pub mlp: Mlp<T>,
    pub pool: FSPool<T>,
}

impl<T: Float> Clone for FSEncoder<T> {
    /// Shares the parameters.
    fn clone(&self) -> Self {
        FSEncoder { mlp: self.mlp.clone(), pool: self.pool.clone() }
    }
}

impl<T: Float> FSEncoder<T> {
    /// Layers initialised as PyTorch does (the MLP's layers in order, then the pool's `N(0, 1)` weight).
    pub fn new<R: Rng + ?Sized>(d: usize, hidden: usize, out: usize, k: usize, rng: &mut R) -> Self {
        let mlp = Mlp::with_activations(&[d, hidden, hidden, out], Activation::Relu, Activation::None, rng);
        let pool = FSPool::new(out, k, rng);
        FSEncoder { mlp, pool }
    }

    /// Element dimension `d`.
    pub fn input_dim(&self) -> usize {
        self.mlp.layers[0].in_features()
    }

    /// Output dimension.
    pub fn output_dim(&self) -> usize {
        self.pool.channels()
    }

    /// Encode the sets `s [B, N, d]` (elements along axis 1) to `[B, out]`.
    pub fn forward<'t>(&self, scope: &Scope<'t, T>, s: Var<'t, T>) -> Var<'t, T> {
        self.forward_sized(scope, s, None)
    }

    /// As [`FSEncoder::forward`] for padded sets: sample `b` is its first `sizes[b]` elements. As in the
    /// released code, the division is by the padded `N`; padded elements take no part in the pooling.
    pub fn forward_sized<'t>(&self, scope: &Scope<'t, T>, s: Var<'t, T>, sizes: Option<&[usize]>) -> Var<'t, T> {
        let shape = s.shape();
        let d = self.input_dim();
        assert!(
            shape.len() == 3 && shape[2] == d && shape[1] > 0,
            "FSEncoder({d} -> {}): input of shape {shape:?} is not [B, N, {d}] with N > 0",
            self.output_dim()
        );
        let h = self.mlp.forward(scope, s) / T::of_usize(shape[1]);
        self.pool.forward(scope, h.transpose(1, 2), sizes)
    }
}

impl<T: Float> Module<T> for FSEncoder<T> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        let mut p = prefixed("mlp", self.mlp.params());
        p.extend(prefixed("pool", self.pool.params()));
        p
    }
    fn set_training(&self, training: bool) {
        self.mlp.set_training(training);
        self.pool.set_training(training);
    }
}
