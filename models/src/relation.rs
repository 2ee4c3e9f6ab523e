//! The relation network's pairwise layer, shared by the experiments that reason over a set's pairs
//! (Sort-of-CLEVR's RN, CLUTRR's).

use crate::{prefixed, Activation, Mlp, Module, Param, Scope};
use autograd::{concat, Float, Var};
use rand::Rng;

/// A relation network's `g` (Santoro et al. 2017): an MLP with ReLU after every layer, applied to every ordered
/// pair of a set's elements with a context vector (a question, a query) and summed over the pairs.
/// Parameters "mlp.0.weight" `[width, 2d + q]`, ...
///
/// The first layer's weight is split by columns into `W_a` (the first element, `o_j`), `W_b` (the second,
/// `o_i`) and `W_q`: `W [o_j, o_i, q] + b = W_a o_j + (W_b o_i + W_q q + b)`, so both halves are computed
/// once per element and the `[B, N, N, width]` pre-activation is their broadcast sum, never the `[B N N, 2d +
/// q]` matrix of pairs (which [`PairRelation::forward_naive`] builds, for tests).
pub struct PairRelation<T: Float = f32> {
    pub mlp: Mlp<T>,
    width: usize,
}

impl<T: Float> PairRelation<T> {
    /// Elements of `element_dim`, a context of `context_dim`, `layers` layers of `width`.
    pub fn new(element_dim: usize, context_dim: usize, width: usize, layers: usize, rng: &mut impl Rng) -> Self {
        assert!(layers >= 1, "PairRelation: at least one layer");
        let mut sizes = vec![2 * element_dim + context_dim];
        sizes.extend(std::iter::repeat_n(width, layers));
        PairRelation { mlp: Mlp::with_activations(&sizes, Activation::Relu, Activation::Relu, rng), width }
    }

    /// Sets `[B, N, d]` and contexts `[B, q]` (with `2d + q` the first layer's input) to `[B, width]`.
    pub fn forward<'t>(&self, scope: &Scope<'t, T>, set: Var<'t, T>, questions: Var<'t, T>) -> Var<'t, T> {
        self.forward_weighted(scope, set, questions, None)
    }

    /// As [`PairRelation::forward`], with the pair at `[b, i, j]` (g of `[o_j, o_i, q]`) weighted by
    /// `weights[b, i, j]` (`[B, N, N]`) in the sum over pairs: 0/1 weights leave padding out, refined edge
    /// weights (the GRN's) scale each pair's term. `None` weighs every pair by 1.
    pub fn forward_weighted<'t>(
        &self,
        scope: &Scope<'t, T>,
        set: Var<'t, T>,
        questions: Var<'t, T>,
        weights: Option<Var<'t, T>>,
    ) -> Var<'t, T> {
        let (b, n, d, q) = self.check(&set, &questions);
        if let Some(w) = &weights {
            assert_eq!(
                w.shape(),
                [b, n, n],
                "PairRelation: pair weights of shape {:?} for sets of shape {:?}",
                w.shape(),
                set.shape()
            );
        }
        let first = &self.mlp.layers[0];
        let w = scope.param(&first.weight);
        let objects = set.reshape(&[b * n, d]);
        let a = objects.matmul_nt(w.narrow(1, 0, d)).reshape(&[b, n, self.width]);
        let mut per_question = questions.matmul_nt(w.narrow(1, 2 * d, q));
        if let Some(bias) = &first.bias {
            per_question = per_question + scope.param(bias);
        }
        let c = objects.matmul_nt(w.narrow(1, d, d)).reshape(&[b, n, self.width]) + per_question.unsqueeze(1);
        // Pair (i, j) at [b, i, j]: W_a o_j + W_b o_i + W_q q + b.
        let h = (a.unsqueeze(1) + c.unsqueeze(2)).relu().reshape(&[b * n * n, self.width]);
        self.rest(scope, h, b, n, weights)
    }

    /// The same function computed as the reference does: the `[B * N * N, 63]` matrix of all pairs
    /// `[o_j, o_i, q]` through the whole MLP (slower and larger; for tests).
    pub fn forward_naive<'t>(&self, scope: &Scope<'t, T>, set: Var<'t, T>, questions: Var<'t, T>) -> Var<'t, T> {
        let (b, n, d, q) = self.check(&set, &questions);
        let oj = set.unsqueeze(1).broadcast_to(&[b, n, n, d]);
        let oi = set.unsqueeze(2).broadcast_to(&[b, n, n, d]);
        let qq = questions.unsqueeze(1).unsqueeze(1).broadcast_to(&[b, n, n, q]);
        let pairs = concat(&[oj, oi, qq], 3).reshape(&[b * n * n, 2 * d + q]);
        let first = &self.mlp.layers[0];
        let h = first.forward(scope, pairs).relu();
        self.rest(scope, h, b, n, None)
    }

    /// Layers 2.. on the pairs' first activations `[B * N * N, width]`, summed over pairs (with `weights`
    /// `[B, N, N]` if given) to `[B, width]`.
    fn rest<'t>(
        &self,
        scope: &Scope<'t, T>,
        h: Var<'t, T>,
        b: usize,
        n: usize,
        weights: Option<Var<'t, T>>,
    ) -> Var<'t, T> {
        let h = self.mlp.layers[1..].iter().fold(h, |h, layer| layer.forward(scope, h).relu());
        let h = h.reshape(&[b, n * n, self.width]);
        let h = match weights {
            Some(w) => h * w.reshape(&[b, n * n, 1]),
            None => h,
        };
        h.sum_axes(&[1], false)
    }

    /// `(B, N, d, q)`, or a panic naming the shapes.
    fn check(&self, set: &Var<'_, T>, questions: &Var<'_, T>) -> (usize, usize, usize, usize) {
        let (s, qs) = (set.shape(), questions.shape());
        let inputs = self.mlp.layers[0].in_features();
        let fits = s.len() == 3 && qs.len() == 2 && s[0] == qs[0] && 2 * s[2] + qs[1] == inputs;
        assert!(
            fits,
            "PairRelation({inputs} inputs): sets {s:?} and questions {qs:?} are not [B, N, d] and [B, q] with \
             2d + q = {inputs}"
        );
        (s[0], s[1], s[2], qs[1])
    }
}

impl<T: Float> Module<T> for PairRelation<T> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        prefixed("mlp", self.mlp.params())
    }
}
