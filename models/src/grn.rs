//! The Graph Refiner Network (GRN, the paper's Sec. 2.1 extension, used on CLUTRR in Sec. 3.3): the SRN's
//! refinement with the set encoder `H_agg` replaced by a graph encoder, descending on the node states `S` and
//! on the edge weights `E` of a graph over the set's elements, starting from the complete graph.
//!
//! ```text
//! S_0 = G(X);  E_0 = complete graph (1 off the diagonal, 0 on it and on every edge of a padded node)
//! z   = H_embed(X)
//! for t in 0..r:
//!     L(S_t, E_t) = sum((H_agg(S_t, E_t) - z)^2)
//!     (bS_t, bE_t) = (dL/dS_t, dL/dE_t)                                  if t = 0
//!                  = momentum * (bS_{t-1}, bE_{t-1}) + (dL/dS_t, dL/dE_t)  otherwise
//!     S_{t+1} = S_t - alpha * bS_t;   E_{t+1} = E_t - alpha * bE_t
//! F reads (S_r, E_r)
//! ```
//!
//! The paper gives no more than "a Graph Neural Network that creates a vector representation of a graph",
//! initialised to the complete graph; [`MessagePassing`] is our choice of that network (its doc comment has
//! the exact form). Both unknowns share [`SrnConfig`]'s step size and momentum. As in [`crate::Srn`], the
//! inner gradients are taken with `create_graph` on a training scope (the outer loss differentiates through
//! every step, so `H_agg` learns through second-order terms), and without recording the outer graph at
//! evaluation; `learn_s0` lets the outer gradient reach `S_0` (and `E_0`, if it is a variable).
//!
//! Padding: with `sizes`, sample `b` is its first `sizes[b]` nodes. The inner gradients are multiplied by the
//! node mask and by the mask of the complete graph, so padded nodes, their edges and the diagonal never move,
//! whatever the encoder does; [`MessagePassing`] also leaves them out of its output.

use crate::{prefixed, Activation, InnerGradient, Mlp, Module, Param, Scope, SrnConfig};
use autograd::{concat, Float, Var};
use ndarray::{ArrayD, IxDyn};
use rand::Rng;

/// A permutation-invariant graph encoder: node states `[B, N, d]` and edge weights `[B, N, N]` to `[B, c]`.
/// `edges[b, i, j]` weighs what node `i` receives from node `j`. With `sizes`, sample `b` is its first
/// `sizes[b]` nodes; padded nodes, the edges touching them and the diagonal must take no part.
pub trait GraphEncoder<T: Float>: Module<T> {
    fn encode<'t>(
        &self,
        scope: &Scope<'t, T>,
        nodes: Var<'t, T>,
        edges: Var<'t, T>,
        sizes: Option<&[usize]>,
    ) -> Var<'t, T>;
}

/// `[B, N]`: 1 on the first `sizes[b]` nodes of sample `b` (all of them without `sizes`), 0 on padding.
pub fn node_mask<T: Float>(b: usize, n: usize, sizes: Option<&[usize]>) -> ArrayD<T> {
    if let Some(sizes) = sizes {
        assert!(
            sizes.len() == b && sizes.iter().all(|&k| k <= n),
            "node_mask: sizes {sizes:?} for {b} samples of {n} nodes"
        );
    }
    ArrayD::from_shape_fn(IxDyn(&[b, n]), |ix| {
        let size = sizes.map_or(n, |s| s[ix[0]]);
        if ix[1] < size {
            T::one()
        } else {
            T::zero()
        }
    })
}

/// The complete graph `[B, N, N]` over each sample's first `sizes[b]` nodes: 1 between two distinct real
/// nodes, 0 on the diagonal (no self loops) and on every edge of a padded node. It is both the GRN's `E_0`
/// and the mask of the edges that take part.
pub fn complete_graph<T: Float>(b: usize, n: usize, sizes: Option<&[usize]>) -> ArrayD<T> {
    let nodes = node_mask::<T>(b, n, sizes);
    ArrayD::from_shape_fn(IxDyn(&[b, n, n]), |ix| {
        if ix[1] == ix[2] {
            T::zero()
        } else {
            nodes[[ix[0], ix[1]]] * nodes[[ix[0], ix[2]]]
        }
    })
}

/// One round of message passing over a weighted graph, pooled into one vector (`[B, N, d]` nodes, `[B, N, N]`
/// edges to `[B, c]`):
///
/// ```text
/// m_ij = M_ij E_ij phi([s_i, s_j])        phi: Linear(2d -> h), ReLU, Linear(h -> h), ReLU
/// a_i  = (1 / N) sum_j m_ij
/// h_i  = psi([s_i, a_i])                  psi: Linear(d + h -> h), ReLU, Linear(h -> c)
/// y    = (1 / N) sum_i mask_i h_i
/// ```
///
/// with `M` the mask of [`complete_graph`] (no self loops, nothing to or from padding), `mask` the node mask
/// and `N` the padded set size (dividing by it, as the Circles `H_agg` does, keeps the scale of a sum without
/// making it depend on each sample's size). The sums make it invariant to permuting the nodes (with the edges
/// permuted alike); the edge weights enter linearly, so `dy/dE_ij` is the message `phi([s_i, s_j])` seen
/// through `psi`. `phi`'s first layer is applied per node and the pairs' pre-activation is a broadcast sum,
/// as in [`crate::PairRelation`]. Parameters "phi.0.weight" `[h, 2d]`, .., "psi.1.bias" `[c]`.
pub struct MessagePassing<T: Float = f32> {
    pub phi: Mlp<T>,
    pub psi: Mlp<T>,
}

impl<T: Float> Clone for MessagePassing<T> {
    /// Shares the parameters.
    fn clone(&self) -> Self {
        MessagePassing { phi: self.phi.clone(), psi: self.psi.clone() }
    }
}

impl<T: Float> MessagePassing<T> {
    /// Nodes of `d`, messages and hidden layers of `hidden`, output `out`; layers drawn in order phi, psi.
    pub fn new<R: Rng + ?Sized>(d: usize, hidden: usize, out: usize, rng: &mut R) -> Self {
        let phi = Mlp::with_activations(&[2 * d, hidden, hidden], Activation::Relu, Activation::Relu, rng);
        let psi = Mlp::with_activations(&[d + hidden, hidden, out], Activation::Relu, Activation::None, rng);
        MessagePassing { phi, psi }
    }

    /// Node dimension `d`.
    pub fn input_dim(&self) -> usize {
        self.psi.layers[0].in_features() - self.hidden()
    }

    /// Message width `h`.
    pub fn hidden(&self) -> usize {
        self.phi.layers[0].out_features()
    }

    pub fn output_dim(&self) -> usize {
        self.psi.layers.last().expect("psi has layers").out_features()
    }

    /// The messages `m [B, N, N, h]`, `m[b, i, j] = E_ij phi([s_i, s_j])` before the mask.
    fn messages<'t>(&self, scope: &Scope<'t, T>, nodes: Var<'t, T>, edges: Var<'t, T>) -> Var<'t, T> {
        let (b, n, d, h) = (nodes.shape()[0], nodes.shape()[1], self.input_dim(), self.hidden());
        let first = &self.phi.layers[0];
        let w = scope.param(&first.weight);
        let flat = nodes.reshape(&[b * n, d]);
        let mut receiver = flat.matmul_nt(w.narrow(1, 0, d));
        if let Some(bias) = &first.bias {
            receiver = receiver + scope.param(bias);
        }
        let receiver = receiver.reshape(&[b, n, 1, h]);
        let sender = flat.matmul_nt(w.narrow(1, d, d)).reshape(&[b, 1, n, h]);
        let pre = (receiver + sender).relu();
        let phi = self.phi.layers[1..].iter().fold(pre, |x, layer| layer.forward(scope, x).relu());
        phi * edges.unsqueeze(3)
    }
}

impl<T: Float> GraphEncoder<T> for MessagePassing<T> {
    fn encode<'t>(
        &self,
        scope: &Scope<'t, T>,
        nodes: Var<'t, T>,
        edges: Var<'t, T>,
        sizes: Option<&[usize]>,
    ) -> Var<'t, T> {
        let (ns, es, d) = (nodes.shape(), edges.shape(), self.input_dim());
        assert!(
            ns.len() == 3 && ns[2] == d && ns[1] > 0 && es == [ns[0], ns[1], ns[1]],
            "MessagePassing({d} -> {}): nodes {ns:?} and edges {es:?} are not [B, N, {d}] and [B, N, N]",
            self.output_dim()
        );
        let (b, n) = (ns[0], ns[1]);
        let scale = T::one() / T::of_usize(n);
        let edges = edges * nodes.constant(complete_graph(b, n, sizes));
        let received = self.messages(scope, nodes, edges).sum_axes(&[2], false) * scale;
        let h = self.psi.forward(scope, concat(&[nodes, received], 2));
        let mask = nodes.constant(node_mask(b, n, sizes)).unsqueeze(2);
        (h * mask).sum_axes(&[1], false) * scale
    }
}

impl<T: Float> Module<T> for MessagePassing<T> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        let mut p = prefixed("phi", self.phi.params());
        p.extend(prefixed("psi", self.psi.params()));
        p
    }
}

/// The GRN: a graph encoder `H_agg` and how to descend on it (the SRN's [`SrnConfig`]: steps, step size and
/// momentum shared by nodes and edges, `learn_s0`). Only [`InnerGradient::Unrolled`] is implemented.
pub struct Grn<E> {
    pub encoder: E,
    pub config: SrnConfig,
}

/// What a graph refinement produced: node states `S_0 .. S_r`, edge weights `E_0 .. E_r` and the inner losses
/// `L(S_0, E_0) .. L(S_{r-1}, E_{r-1})`.
pub struct GraphRefinement<'t, T: Float> {
    pub nodes: Vec<Var<'t, T>>,
    pub edges: Vec<Var<'t, T>>,
    pub losses: Vec<T>,
}

impl<'t, T: Float> GraphRefinement<'t, T> {
    /// The refined node states `S_r`.
    pub fn last_nodes(&self) -> Var<'t, T> {
        *self.nodes.last().expect("a refinement holds at least S0")
    }

    /// The refined edge weights `E_r`.
    pub fn last_edges(&self) -> Var<'t, T> {
        *self.edges.last().expect("a refinement holds at least E0")
    }
}

impl<E> Grn<E> {
    pub fn new(encoder: E, config: SrnConfig) -> Self {
        assert_eq!(config.gradient, InnerGradient::Unrolled, "Grn: only the unrolled inner gradient is implemented");
        Grn { encoder, config }
    }

    /// Refine the nodes `s0` (`[B, N, d]`) and the edge weights `e0` (`[B, N, N]`, usually
    /// [`complete_graph`]) towards a graph that `H_agg` encodes to `z` (`[B, c]`). On a training scope the
    /// inner steps are recorded for the outer backward pass; on an evaluation scope only their gradients are
    /// computed. Padded nodes (past `sizes`), their edges and the diagonal get no inner gradient and stay.
    pub fn refine<'t, T: Float>(
        &self,
        scope: &Scope<'t, T>,
        s0: Var<'t, T>,
        e0: Var<'t, T>,
        z: Var<'t, T>,
        sizes: Option<&[usize]>,
    ) -> GraphRefinement<'t, T>
    where
        E: GraphEncoder<T>,
    {
        let (ss, es) = (s0.shape(), e0.shape());
        assert!(
            ss.len() == 3 && es == [ss[0], ss[1], ss[1]],
            "Grn::refine: nodes {ss:?} and edges {es:?} are not [B, N, d] and [B, N, N]"
        );
        assert_eq!(self.config.gradient, InnerGradient::Unrolled, "Grn: only the unrolled inner gradient");
        let (b, n) = (ss[0], ss[1]);
        let training = scope.training();
        let tape = scope.tape();
        let SrnConfig { steps, alpha, momentum, learn_s0, .. } = self.config;
        let (alpha, momentum) = (T::of(alpha), T::of(momentum));
        let z = if training { z } else { z.detach() };
        // A leaf of its own unless learned (and learnable): the inner gradient needs a variable to
        // differentiate by.
        let start =
            |v: Var<'t, T>| if learn_s0 && training && v.requires_grad() { v } else { tape.leaf_shared(v.value()) };
        let (mut s, mut e) = (start(s0), start(e0));
        let node_mask = tape.constant(node_mask(b, n, sizes)).unsqueeze(2);
        let edge_mask = tape.constant(complete_graph(b, n, sizes));
        let (mut nodes, mut edges) = (vec![s], vec![e]);
        let mut losses = Vec::with_capacity(steps);
        let mut buf: Option<(Var<'t, T>, Var<'t, T>)> = None;
        for _ in 0..steps {
            if !training {
                (s, e) = (tape.leaf_shared(s.value()), tape.leaf_shared(e.value()));
            }
            let (loss, gs, ge) = tape.enable_grad(|| {
                let loss = (self.encoder.encode(scope, s, e, sizes) - z).square().sum();
                let g = tape.grad(&[loss], &[s, e], training);
                (loss, g[0] * node_mask, g[1] * edge_mask)
            });
            losses.push(loss.item());
            let (bs, be) = match buf {
                None => (gs, ge),
                Some((ps, pe)) => (ps * momentum + gs, pe * momentum + ge),
            };
            buf = Some((bs, be));
            (s, e) = (s - bs * alpha, e - be * alpha);
            nodes.push(s);
            edges.push(e);
        }
        GraphRefinement { nodes, edges, losses }
    }
}

impl<T: Float, E: GraphEncoder<T>> Module<T> for Grn<E> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        prefixed("encoder", self.encoder.params())
    }
    fn buffers(&self) -> Vec<(String, Param<T>)> {
        prefixed("encoder", self.encoder.buffers())
    }
}
