//! One step's view of the parameters: a tape, the one leaf each parameter became on it, and the gradients.
//!
//! A layer's forward takes a [`Scope`] and reads its parameters through [`Scope::param`]: the first use of a
//! parameter on the scope's tape makes a leaf (sharing the value, no copy), later uses return the same leaf.
//! So a layer used many times in a step (the SRN's inner loop runs H_agg r times) still has one leaf, and
//! [`Scope::grads`] gives one gradient per parameter, summed over every use.
//!
//! ```
//! use autograd::Tape;
//! use models::{Linear, Scope};
//! use rand::{rngs::StdRng, SeedableRng};
//!
//! let layer = Linear::<f64>::new(3, 2, &mut StdRng::seed_from_u64(0));
//! let tape = Tape::new();
//! let scope = Scope::new(&tape);
//! let x = tape.constant(ndarray::ArrayD::ones(vec![4, 3]));
//! // The same layer used twice: one leaf per parameter, one gradient summed over both uses.
//! let y = layer.forward(&scope, x).sum() + layer.forward(&scope, x).sum();
//! let grads = scope.grads(&[y]);
//! assert_eq!(grads.len(), 2);
//! let bias = layer.bias.as_ref().unwrap();
//! assert_eq!(grads.get(bias).unwrap()[[0]], 8.0); // 4 rows times 2 uses
//! ```

use crate::param::{Param, ParamId};
use crate::Module;
use autograd::Float;
use autograd::{Tape, Var};
use ndarray::ArrayD;
use std::cell::RefCell;
use std::collections::HashMap;

/// A tape plus the leaf (or substitute) each parameter stands for on it, and whether the step trains.
pub struct Scope<'t, T: Float = f32> {
    tape: &'t Tape<T>,
    bound: RefCell<Vec<(Param<T>, Var<'t, T>)>>,
    index: RefCell<HashMap<ParamId, usize>>,
    training: bool,
}

impl<'t, T: Float> Scope<'t, T> {
    /// A training step's scope: dropout drops and the SRN records its inner steps for the outer backward.
    pub fn new(tape: &'t Tape<T>) -> Self {
        Scope { tape, bound: RefCell::new(Vec::new()), index: RefCell::new(HashMap::new()), training: true }
    }

    /// An evaluation scope: no dropout, and the SRN takes its inner gradients without recording the outer
    /// graph. Most code wants [`evaluate`], which also puts the module's batch norms in evaluation mode and
    /// stops the tape recording.
    pub fn evaluation(tape: &'t Tape<T>) -> Self {
        Scope { training: false, ..Scope::new(tape) }
    }

    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// Whether this is a training step's scope.
    pub fn training(&self) -> bool {
        self.training
    }

    /// The variable standing for `p` on this tape: a leaf sharing its value, made on first use.
    pub fn param(&self, p: &Param<T>) -> Var<'t, T> {
        if let Some(&i) = self.index.borrow().get(&p.id()) {
            return self.bound.borrow()[i].1;
        }
        let v = p.var(self.tape);
        self.insert(p, v);
        v
    }

    /// Make `p` stand for `v` on this tape (a functional call with substituted weights, or a gradient check
    /// with the weights as inputs). Panics if `p` is already in use on this scope or the shapes differ.
    pub fn bind(&self, p: &Param<T>, v: Var<'t, T>) {
        assert!(!self.index.borrow().contains_key(&p.id()), "Scope::bind: parameter {p:?} is already bound");
        assert_eq!(
            p.shape(),
            v.shape(),
            "Scope::bind: parameter of shape {:?} bound to a variable of shape {:?}",
            p.shape(),
            v.shape()
        );
        self.insert(p, v);
    }

    fn insert(&self, p: &Param<T>, v: Var<'t, T>) {
        let mut bound = self.bound.borrow_mut();
        self.index.borrow_mut().insert(p.id(), bound.len());
        bound.push((p.clone(), v));
    }

    /// Every parameter used so far, with its variable, in order of first use.
    pub fn bound(&self) -> Vec<(Param<T>, Var<'t, T>)> {
        self.bound.borrow().clone()
    }

    /// Number of parameters used so far.
    pub fn len(&self) -> usize {
        self.bound.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gradients of the sum of `outputs` with respect to every parameter used on this scope, as values.
    /// A parameter that was used but that the outputs do not depend on gets a zero gradient.
    pub fn grads(&self, outputs: &[Var<'t, T>]) -> Grads<T> {
        let mut grads = Grads::new();
        for (p, g) in self.grad_vars(outputs, false) {
            grads.insert(&p, (*g.value()).clone());
        }
        grads
    }

    /// Gradients as variables; with `create_graph` they can be differentiated again.
    pub fn grad_vars(&self, outputs: &[Var<'t, T>], create_graph: bool) -> Vec<(Param<T>, Var<'t, T>)> {
        let bound = self.bound();
        let vars: Vec<_> = bound.iter().map(|(_, v)| *v).collect();
        let gs = self.tape.grad(outputs, &vars, create_graph);
        bound.into_iter().map(|(p, _)| p).zip(gs).collect()
    }
}

/// Evaluation mode, as one switch: `module`'s batch norms use their running statistics, and `f` runs on a
/// fresh tape that records nothing, through an evaluation [`Scope`] (no dropout; the SRN takes its inner
/// gradients without recording the outer graph). The module is back in training mode afterwards, also if `f`
/// panics. Values leave `f` as arrays (`var.value()`), not as variables of its tape.
///
/// ```
/// use autograd::Tape;
/// use models::{evaluate, BatchNorm, Module};
///
/// let norm = BatchNorm::<f32>::new(2);
/// let y = evaluate(&norm, |scope| {
///     let x = scope.tape().constant(ndarray::ArrayD::ones(vec![3, 2]));
///     norm.forward(scope, x).value()
/// });
/// // Running statistics (mean 0, variance 1): the input comes back, up to eps.
/// assert!(y.iter().all(|v| (v - 1.0).abs() < 1e-4));
/// assert!(norm.training());
/// ```
pub fn evaluate<T: Float, M: Module<T> + ?Sized, R>(module: &M, f: impl for<'s> FnOnce(&Scope<'s, T>) -> R) -> R {
    struct Restore<'m, T: Float, M: Module<T> + ?Sized>(&'m M, std::marker::PhantomData<T>);
    impl<T: Float, M: Module<T> + ?Sized> Drop for Restore<'_, T, M> {
        fn drop(&mut self) {
            self.0.set_training(true);
        }
    }
    module.set_training(false);
    let _restore = Restore(module, std::marker::PhantomData);
    let tape = Tape::new();
    let scope = Scope::evaluation(&tape);
    tape.no_grad(|| f(&scope))
}

/// Gradient values keyed by parameter identity, in insertion order.
pub struct Grads<T: Float = f32> {
    entries: Vec<(Param<T>, ArrayD<T>)>,
    index: HashMap<ParamId, usize>,
}

impl<T: Float> Default for Grads<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Clone for Grads<T> {
    fn clone(&self) -> Self {
        Grads { entries: self.entries.clone(), index: self.index.clone() }
    }
}

impl<T: Float> Grads<T> {
    pub fn new() -> Self {
        Grads { entries: Vec::new(), index: HashMap::new() }
    }

    /// Set the gradient of `p` (replacing any). Panics if the shape is not the parameter's.
    pub fn insert(&mut self, p: &Param<T>, g: ArrayD<T>) {
        assert_eq!(
            p.shape(),
            g.shape(),
            "Grads::insert: parameter of shape {:?} given a gradient of shape {:?}",
            p.shape(),
            g.shape()
        );
        match self.index.get(&p.id()) {
            Some(&i) => self.entries[i].1 = g,
            None => {
                self.index.insert(p.id(), self.entries.len());
                self.entries.push((p.clone(), g));
            }
        }
    }

    /// Add `g` to the gradient of `p` (accumulation over micro-batches).
    pub fn accumulate(&mut self, p: &Param<T>, g: &ArrayD<T>) {
        match self.index.get(&p.id()) {
            Some(&i) => {
                let acc = &mut self.entries[i].1;
                assert_eq!(
                    acc.shape(),
                    g.shape(),
                    "Grads::accumulate: gradient of shape {:?} added to one of shape {:?}",
                    g.shape(),
                    acc.shape()
                );
                *acc += g;
            }
            None => self.insert(p, g.clone()),
        }
    }

    /// Add every gradient of `other` into `self`.
    pub fn add(&mut self, other: &Grads<T>) {
        for (p, g) in &other.entries {
            self.accumulate(p, g);
        }
    }

    pub fn get(&self, p: &Param<T>) -> Option<&ArrayD<T>> {
        self.index.get(&p.id()).map(|&i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, p: &Param<T>) -> Option<&mut ArrayD<T>> {
        self.index.get(&p.id()).map(|&i| &mut self.entries[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Param<T>, &ArrayD<T>)> {
        self.entries.iter().map(|(p, g)| (p, g))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Param<T>, &mut ArrayD<T>)> {
        self.entries.iter_mut().map(|(p, g)| (&*p, g))
    }

    /// Multiply every gradient by `factor`.
    pub fn scale(&mut self, factor: T) {
        for (_, g) in &mut self.entries {
            g.mapv_inplace(|x| x * factor);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
