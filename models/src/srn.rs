//! The Set Refiner Network (Huang et al., NeurIPS 2020, Algorithm 1).
//!
//! ```text
//! S0 = G(X);  z = H_embed(X)
//! for t in 0..r:
//!     L(S_t) = sum((H_agg(S_t) - z)^2)
//!     buf_t  = g_t                       if t = 0,  where g_t = dL/dS_t
//!            = momentum * buf_{t-1} + g_t  otherwise
//!     S_{t+1} = S_t - alpha * buf_t
//! Y = F(S_r)
//! ```
//!
//! In training the inner gradients are taken with `create_graph`, so the outer loss differentiates through
//! every inner step: H_agg's parameters learn only through this second-order path. At evaluation the inner
//! gradients are still taken, but nothing of the outer graph is recorded. `S0` is detached by default, as
//! the released code does (it wraps `S0` in a fresh `nn.Parameter`); `learn_s0` lets the outer loss reach
//! `G` through the refinement, as the paper's text implies.

use crate::{Module, Param, Scope};
use autograd::Float;
use autograd::{Tape, Var};
use ndarray::ArrayD;
use std::rc::Rc;

/// A permutation-invariant set encoder: `[B, N, d]` sets to `[B, c]` vectors. With `sizes`, sample `b` is its
/// first `sizes[b]` elements and the rest is padding that takes no part.
pub trait SetEncoder<T: Float>: Module<T> {
    fn encode<'t>(&self, scope: &Scope<'t, T>, set: Var<'t, T>, sizes: Option<&[usize]>) -> Var<'t, T>;
}

/// How the outer loss differentiates through the inner loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InnerGradient {
    /// Through every inner step (the paper's and the released code's): the tape holds all `r` steps.
    #[default]
    Unrolled,
    /// Approximate implicit differentiation (as iDSPN, Zhang et al. 2022): the first `r - 1` steps run
    /// unrecorded, each on a tape of its own that is dropped at once, and the outer loss differentiates
    /// through the last step only, with `S_{r-1}` and the momentum buffer held constant. This is the implicit
    /// function theorem's gradient at a fixed point with the identity (times `alpha`) in place of the inverse
    /// Hessian of the inner loss; memory does not grow with `r`, and `S0` gets no outer gradient.
    Implicit,
}

/// The refinement's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SrnConfig {
    /// r, the number of inner gradient steps.
    pub steps: usize,
    /// The inner step size.
    pub alpha: f64,
    /// The inner SGD's momentum (the released code: 0.5, no dampening).
    pub momentum: f64,
    /// Let the outer gradient reach `S0` (and so the set generator) through the refinement (unrolled only).
    pub learn_s0: bool,
    /// How the outer loss differentiates through the inner steps.
    pub gradient: InnerGradient,
}

impl Default for SrnConfig {
    fn default() -> Self {
        SrnConfig { steps: 10, alpha: 0.1, momentum: 0.5, learn_s0: false, gradient: InnerGradient::Unrolled }
    }
}

/// The SRN: a set encoder `H_agg` and how to descend on it.
pub struct Srn<E> {
    pub encoder: E,
    pub config: SrnConfig,
}

/// What a refinement produced: the sets `S_0 .. S_r` and the inner losses `L(S_0) .. L(S_{r-1})`.
pub struct Refinement<'t, T: Float> {
    pub sets: Vec<Var<'t, T>>,
    pub losses: Vec<T>,
}

impl<'t, T: Float> Refinement<'t, T> {
    /// The refined set `S_r`.
    pub fn last(&self) -> Var<'t, T> {
        *self.sets.last().expect("a refinement holds at least S0")
    }
}

impl<E> Srn<E> {
    pub fn new(encoder: E, config: SrnConfig) -> Self {
        Srn { encoder, config }
    }

    /// Refine `s0` (`[B, N, d]`, padded past `sizes` if given) towards a set that `H_agg` encodes to `z`
    /// (`[B, c]`). On a training scope the inner steps are recorded for the outer backward pass; on an
    /// evaluation scope only their gradients are computed. Padded elements get no inner gradient and stay.
    pub fn refine<'t, T: Float>(
        &self,
        scope: &Scope<'t, T>,
        s0: Var<'t, T>,
        z: Var<'t, T>,
        sizes: Option<&[usize]>,
    ) -> Refinement<'t, T>
    where
        E: SetEncoder<T>,
    {
        let training = scope.training();
        let tape = scope.tape();
        let SrnConfig { steps, alpha, momentum, learn_s0, gradient } = self.config;
        let (alpha, momentum) = (T::of(alpha), T::of(momentum));
        let z = if training { z } else { z.detach() };
        let implicit = training && gradient == InnerGradient::Implicit;
        // A leaf of its own unless S0 is learned (and can be): the inner gradient needs a variable to
        // differentiate by.
        let learned = learn_s0 && training && !implicit && s0.requires_grad();
        let mut s = if learned { s0 } else { tape.leaf_shared(s0.value()) };
        let mut sets = vec![s];
        let mut losses = Vec::with_capacity(steps);
        let mut buf: Option<Var<'t, T>> = None;
        if implicit && steps > 1 {
            let (s_last, buf_last, early) = self.unrecorded_steps(scope, s.value(), z.value(), sizes, steps - 1);
            losses.extend(early.iter().map(|(loss, _)| *loss));
            sets.extend(early.into_iter().map(|(_, set)| tape.constant_shared(set)));
            s = tape.leaf_shared(s_last);
            buf = Some(tape.constant(buf_last));
        }
        let recorded = if implicit { steps.min(1) } else { steps };
        for _ in 0..recorded {
            if !training {
                s = tape.leaf_shared(s.value());
            }
            let (loss, g) = tape.enable_grad(|| {
                let loss = (self.encoder.encode(scope, s, sizes) - z).square().sum();
                (loss, tape.grad(&[loss], &[s], training)[0])
            });
            losses.push(loss.item());
            let b = match buf {
                None => g,
                Some(prev) => prev * momentum + g,
            };
            buf = Some(b);
            s = s - b * alpha;
            sets.push(s);
        }
        Refinement { sets, losses }
    }

    /// `steps` inner steps from `s0` on values alone, each on a tape of its own (whose parameters take the
    /// values they stand for on `scope`): the refined set, the momentum buffer, and each step's loss and
    /// resulting set.
    #[allow(clippy::type_complexity)]
    fn unrecorded_steps<T: Float>(
        &self,
        scope: &Scope<'_, T>,
        s0: Rc<ArrayD<T>>,
        z: Rc<ArrayD<T>>,
        sizes: Option<&[usize]>,
        steps: usize,
    ) -> (Rc<ArrayD<T>>, ArrayD<T>, Vec<(T, Rc<ArrayD<T>>)>)
    where
        E: SetEncoder<T>,
    {
        let (alpha, momentum) = (T::of(self.config.alpha), T::of(self.config.momentum));
        let (mut s, mut buf): (Rc<ArrayD<T>>, Option<ArrayD<T>>) = (s0, None);
        let mut trace = Vec::with_capacity(steps);
        for _ in 0..steps {
            let tape = Tape::new();
            let step = Scope::new(&tape);
            for (p, v) in scope.bound() {
                step.bind(&p, tape.leaf_shared(v.value()));
            }
            let leaf = tape.leaf_shared(s.clone());
            let loss = (self.encoder.encode(&step, leaf, sizes) - tape.constant_shared(z.clone())).square().sum();
            let g = tape.grad(&[loss], &[leaf], false)[0].value();
            let b = match buf {
                None => (*g).clone(),
                Some(prev) => prev * momentum + &*g,
            };
            let next = Rc::new(&*s - &(&b * alpha));
            trace.push((loss.item(), next.clone()));
            (s, buf) = (next, Some(b));
        }
        (s, buf.expect("at least one unrecorded step"), trace)
    }
}

impl<T: Float, E: SetEncoder<T>> Module<T> for Srn<E> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        crate::prefixed("encoder", self.encoder.params())
    }
    fn buffers(&self) -> Vec<(String, Param<T>)> {
        crate::prefixed("encoder", self.encoder.buffers())
    }
}

/// The paper's H_agg for Circles: a per-element MLP, divided by the set size, then FSPool.
impl<T: Float> SetEncoder<T> for crate::FSEncoder<T> {
    fn encode<'t>(&self, scope: &Scope<'t, T>, set: Var<'t, T>, sizes: Option<&[usize]>) -> Var<'t, T> {
        self.forward_sized(scope, set, sizes)
    }
}

/// What Algorithm 1 hands the reasoning module `F`: the initial set, the set `F` sees (`S_r`, or `S0` itself
/// without an SRN) and the inner losses `L(S_0) .. L(S_{r-1})` (empty without an SRN).
pub struct SetOutput<'t, T: Float> {
    pub s0: Var<'t, T>,
    pub set: Var<'t, T>,
    pub inner_losses: Vec<T>,
}

/// Algorithm 1 up to the reasoning module, shared by every experiment: a model names its set generator `G`
/// with `H_embed` ([`SetPipeline::generate`]) and its SRN, if any; [`SetPipeline::set`] runs
/// `S0 = G(X), z = H_embed(X)` and the refinement. `F` stays the model's own (its extra inputs differ: an
/// image decoder, a question, a query).
pub trait SetPipeline<T: Float> {
    /// `H_agg`.
    type Encoder: SetEncoder<T>;
    /// What `G` and `H_embed` read (images, token ids, ...).
    type Input<'t>;

    /// `S0 [B, N, d]` and `z [B, c]` from the input (`z` may be `None` for a model without an SRN, whose
    /// `H_embed` would go unused).
    fn generate<'t>(&self, scope: &Scope<'t, T>, input: Self::Input<'t>) -> (Var<'t, T>, Option<Var<'t, T>>);

    /// The SRN, or `None` for the baseline.
    fn srn(&self) -> Option<&Srn<Self::Encoder>>;

    /// `S0`, `z`, then the refined set (training or evaluation as the scope says); `sizes` for padded sets.
    fn set<'t>(&self, scope: &Scope<'t, T>, input: Self::Input<'t>, sizes: Option<&[usize]>) -> SetOutput<'t, T> {
        let (s0, z) = self.generate(scope, input);
        match self.srn() {
            None => SetOutput { s0, set: s0, inner_losses: Vec::new() },
            Some(srn) => {
                let z = z.expect("SetPipeline: a model with an SRN must give H_embed's z");
                let r = srn.refine(scope, s0, z, sizes);
                SetOutput { s0, set: r.last(), inner_losses: r.losses }
            }
        }
    }
}
