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
use autograd::{Tape, Var};
use kernels::Float;
use ndarray::ArrayD;
use std::rc::Rc;

/// A permutation-invariant set encoder: `[B, N, d]` sets to `[B, c]` vectors.
pub trait SetEncoder<T: Float>: Module<T> {
    fn encode<'t>(&self, scope: &Scope<'t, T>, set: Var<'t, T>) -> Var<'t, T>;
}

/// How the outer loss differentiates through the inner loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
#[derive(Clone, Copy, Debug, PartialEq)]
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

    /// Refine `s0` (`[B, N, d]`) towards a set that `H_agg` encodes to `z` (`[B, c]`). With `training`, the
    /// inner steps are recorded for the outer backward pass; without, only their gradients are computed.
    pub fn refine<'t, T: Float>(
        &self,
        scope: &Scope<'t, T>,
        s0: Var<'t, T>,
        z: Var<'t, T>,
        training: bool,
    ) -> Refinement<'t, T>
    where
        E: SetEncoder<T>,
    {
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
            let (s_last, buf_last, early) = self.unrecorded_steps(scope, s.value(), z.value(), steps - 1);
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
                let loss = (self.encoder.encode(scope, s) - z).square().sum();
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
            let loss = (self.encoder.encode(&step, leaf) - tape.constant_shared(z.clone())).square().sum();
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
    fn encode<'t>(&self, scope: &Scope<'t, T>, set: Var<'t, T>) -> Var<'t, T> {
        self.forward(scope, set)
    }
}
