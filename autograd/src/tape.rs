//! The tape: an arena of nodes, cheap `Copy` handles into it, and `grad`.
//!
//! Every op records a node holding its value, its inputs and an [`Op`] whose `backward` is written in the
//! engine's own differentiable ops. `grad` walks the nodes in reverse creation order (creation order is a
//! topological order) and calls those rules. With `create_graph = true` the rules record onto the tape like any
//! forward op, so a gradient is itself a graph that can be differentiated again; with `false` the same rules
//! run with recording off and their results are constants. One code path, two modes.

use kernels::Float;
use ndarray::ArrayD;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// A differentiable operation as recorded on the tape.
pub trait Op<T: Float> {
    /// The op's name, used in error messages.
    fn name(&self) -> &'static str;
    /// Vector-Jacobian product: given the op's inputs, its output and the gradient `g` of the output, return
    /// one gradient per input (`None` for inputs that are not differentiable, such as indices). Written in
    /// differentiable ops, so it is recorded when the tape is recording.
    ///
    /// An op implements this or [`Op::backward_needed`] (each defaults to the other; implementing neither
    /// recurses forever). The default asks `backward_needed` for every gradient.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], output: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        self.backward_needed(inputs, output, g, &vec![true; inputs.len()])
    }

    /// `backward` when only the gradients of the inputs with `needed[i]` will be used: an op may skip the
    /// others (returning `None` for them), as a matrix product whose weight gradient nobody asked for need not
    /// compute it. The default computes them all with `backward`.
    fn backward_needed<'t>(
        &self,
        inputs: &[Var<'t, T>],
        output: Var<'t, T>,
        g: Var<'t, T>,
        needed: &[bool],
    ) -> Vec<Option<Var<'t, T>>> {
        let _ = needed;
        self.backward(inputs, output, g)
    }
}

struct Node<T: Float> {
    value: Rc<ArrayD<T>>,
    /// `None` for leaves and constants, and for anything recorded while recording was off.
    op: Option<Rc<dyn Op<T>>>,
    inputs: Vec<usize>,
    requires_grad: bool,
}

/// One step's computation. Dropping the tape frees every node of the step at once.
pub struct Tape<T: Float = f32> {
    nodes: RefCell<Vec<Node<T>>>,
    recording: Cell<bool>,
}

/// A handle to a node on a tape: an index and the tape, `Copy` and two words wide.
#[derive(Clone, Copy)]
pub struct Var<'t, T: Float = f32> {
    id: usize,
    tape: &'t Tape<T>,
}

impl<T: Float> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Tape<T> {
    pub fn new() -> Self {
        Tape { nodes: RefCell::new(Vec::new()), recording: Cell::new(true) }
    }

    /// A leaf that gradients can be taken with respect to.
    pub fn leaf(&self, value: ArrayD<T>) -> Var<'_, T> {
        self.push(Rc::new(value), None, Vec::new(), true)
    }

    /// A leaf sharing an existing value (parameters enter each step's tape this way, without a copy).
    pub fn leaf_shared(&self, value: Rc<ArrayD<T>>) -> Var<'_, T> {
        self.push(value, None, Vec::new(), true)
    }

    /// A value no gradient flows into.
    pub fn constant(&self, value: ArrayD<T>) -> Var<'_, T> {
        self.push(Rc::new(value), None, Vec::new(), false)
    }

    /// A constant sharing `value` (no copy).
    pub fn constant_shared(&self, value: Rc<ArrayD<T>>) -> Var<'_, T> {
        self.push(value, None, Vec::new(), false)
    }

    /// A constant scalar (a 0-d tensor).
    pub fn scalar(&self, x: T) -> Var<'_, T> {
        self.constant(ndarray::arr0(x).into_dyn())
    }

    /// Number of nodes recorded so far.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements the tape's nodes hold (a value shared by several nodes counted for each): what a step keeps
    /// in memory until the tape is dropped.
    pub fn live_elements(&self) -> usize {
        self.nodes.borrow().iter().map(|n| n.value.len()).sum()
    }

    /// Whether new ops are recorded for differentiation.
    pub fn is_recording(&self) -> bool {
        self.recording.get()
    }

    /// Run `f` with recording off (evaluation): every op it runs yields a constant.
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        self.with_recording(false, f)
    }

    /// Run `f` with recording on, even inside `no_grad`: evaluation code that still needs gradients (the SRN's
    /// inner loop at test time) records just this part.
    pub fn enable_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        self.with_recording(true, f)
    }

    fn with_recording<R>(&self, on: bool, f: impl FnOnce() -> R) -> R {
        let before = self.recording.replace(on);
        let out = f();
        self.recording.set(before);
        out
    }

    /// Record the result of an op. Called by every op after computing `value` from its inputs' values.
    pub fn record(&self, value: ArrayD<T>, op: impl Op<T> + 'static, inputs: &[Var<'_, T>]) -> Var<'_, T> {
        let nodes = self.nodes.borrow();
        let requires_grad = self.recording.get() && inputs.iter().any(|v| nodes[v.id].requires_grad);
        drop(nodes);
        // Every value on the tape is contiguous and row-major: kernels may rely on it.
        let value = if value.is_standard_layout() { value } else { value.as_standard_layout().into_owned() };
        if requires_grad {
            let op: Rc<dyn Op<T>> = Rc::new(op);
            self.push(Rc::new(value), Some(op), inputs.iter().map(|v| v.id).collect(), true)
        } else {
            self.push(Rc::new(value), None, Vec::new(), false)
        }
    }

    fn push(
        &self,
        value: Rc<ArrayD<T>>,
        op: Option<Rc<dyn Op<T>>>,
        inputs: Vec<usize>,
        requires_grad: bool,
    ) -> Var<'_, T> {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node { value, op, inputs, requires_grad });
        Var { id: nodes.len() - 1, tape: self }
    }

    fn var(&self, id: usize) -> Var<'_, T> {
        Var { id, tape: self }
    }

    /// Gradients of the sum of `outputs` with respect to each of `wrt`, seeding every output with ones.
    /// With `create_graph` the backward pass is recorded, so the results can be differentiated again.
    /// An input the outputs do not depend on gets a zero gradient.
    pub fn grad<'t>(&'t self, outputs: &[Var<'t, T>], wrt: &[Var<'t, T>], create_graph: bool) -> Vec<Var<'t, T>> {
        let seeds: Vec<_> = outputs.iter().map(|o| self.constant(ArrayD::from_elem(o.shape(), T::one()))).collect();
        self.grad_with(outputs, &seeds, wrt, create_graph)
    }

    /// Vector-Jacobian products: gradients of `sum_i <outputs[i], seeds[i]>` with respect to each of `wrt`.
    /// Every `wrt` must require grad (a leaf, or computed from one while recording), as in PyTorch.
    pub fn grad_with<'t>(
        &'t self,
        outputs: &[Var<'t, T>],
        seeds: &[Var<'t, T>],
        wrt: &[Var<'t, T>],
        create_graph: bool,
    ) -> Vec<Var<'t, T>> {
        assert_eq!(outputs.len(), seeds.len(), "grad_with: {} outputs but {} seeds", outputs.len(), seeds.len());
        for (o, s) in outputs.iter().zip(seeds) {
            assert_eq!(o.shape(), s.shape(), "grad_with: output shape {:?} but seed shape {:?}", o.shape(), s.shape());
        }
        for (i, v) in wrt.iter().enumerate() {
            assert!(
                v.requires_grad(),
                "grad: input {i} (shape {:?}) does not require grad: it is a constant or was computed with \
                 recording off, so nothing was recorded to differentiate by",
                v.shape()
            );
        }
        let (Some(lo), Some(hi)) = (wrt.iter().map(|v| v.id).min(), outputs.iter().map(|v| v.id).max()) else {
            return wrt.iter().map(|v| v.zeros_like()).collect();
        };
        if lo > hi {
            return wrt.iter().map(|v| v.zeros_like()).collect();
        }
        let n = hi - lo + 1;
        // Nodes between the inputs and the outputs that depend on some input: only these get gradients.
        let mut reach = vec![false; n];
        {
            let nodes = self.nodes.borrow();
            for v in wrt {
                reach[v.id - lo] = true;
            }
            for i in lo..=hi {
                let node = &nodes[i];
                if node.op.is_some() && node.inputs.iter().any(|&j| j >= lo && reach[j - lo]) {
                    reach[i - lo] = true;
                }
            }
        }
        let mut grads: Vec<Option<Var<'t, T>>> = vec![None; n];
        let mut scratch = Scratch::new(self, !create_graph, wrt);
        self.with_recording(create_graph, || {
            for (o, s) in outputs.iter().zip(seeds) {
                if reach[o.id - lo] {
                    scratch.accumulate(&mut grads[o.id - lo], *s);
                }
            }
            for i in (lo..=hi).rev() {
                let Some(g) = grads[i - lo] else { continue };
                let (op, inputs) = {
                    let nodes = self.nodes.borrow();
                    match &nodes[i].op {
                        Some(op) => (op.clone(), nodes[i].inputs.clone()),
                        None => continue,
                    }
                };
                if !inputs.iter().any(|&j| j >= lo && reach[j - lo]) {
                    continue;
                }
                let in_vars: Vec<_> = inputs.iter().map(|&j| self.var(j)).collect();
                let needed: Vec<bool> = inputs.iter().map(|&j| j >= lo && reach[j - lo]).collect();
                let made_from = self.len();
                let in_grads = op.backward_needed(&in_vars, self.var(i), g, &needed);
                assert_eq!(
                    in_grads.len(),
                    inputs.len(),
                    "{}: backward returned the wrong number of gradients",
                    op.name()
                );
                // What the rule computed on the way to its results is not needed any more.
                scratch.drop_between(made_from, self.len(), &in_grads);
                for (&j, gj) in inputs.iter().zip(in_grads) {
                    let Some(gj) = gj else { continue };
                    if j >= lo && reach[j - lo] {
                        let (want, got) = (self.var(j).shape(), gj.shape());
                        assert_eq!(
                            want,
                            got,
                            "{}: backward gave a gradient of shape {got:?} for an input of shape {want:?}",
                            op.name()
                        );
                        scratch.accumulate(&mut grads[j - lo], gj);
                    } else {
                        scratch.unused(gj);
                    }
                }
                scratch.consumed(&mut grads[i - lo], i);
                scratch.release_unheld();
            }
        });
        wrt.iter().map(|v| grads[v.id - lo].unwrap_or_else(|| v.zeros_like())).collect()
    }
}

/// The bookkeeping that lets a backward pass without `create_graph` drop its intermediate gradients as soon as
/// it is done with them (their nodes keep an empty value), instead of holding every one until the tape goes:
/// a long pass then reuses a few cache-resident buffers, and peak memory is the forward pass's plus little.
/// Only nodes the pass itself created are dropped; with `create_graph` nothing is (the gradient is a graph).
struct Scratch<'t, T: Float> {
    tape: &'t Tape<T>,
    on: bool,
    /// Nodes from this id on were created by the pass.
    first: usize,
    /// Ids whose gradients are results (never dropped).
    results: Vec<usize>,
    /// How many gradient slots hold each node the pass created.
    held: std::collections::HashMap<usize, usize>,
    /// Nodes that may have lost their last holder.
    candidates: Vec<usize>,
    empty: Rc<ArrayD<T>>,
}

impl<'t, T: Float> Scratch<'t, T> {
    fn new(tape: &'t Tape<T>, on: bool, wrt: &[Var<'t, T>]) -> Self {
        Scratch {
            tape,
            on,
            first: tape.len(),
            results: wrt.iter().map(|v| v.id).collect(),
            held: Default::default(),
            candidates: Vec::new(),
            empty: Rc::new(ArrayD::zeros(ndarray::IxDyn(&[0]))),
        }
    }

    /// Add `g` into a gradient slot.
    fn accumulate(&mut self, slot: &mut Option<Var<'t, T>>, g: Var<'t, T>) {
        let sum = match *slot {
            Some(acc) => {
                self.let_go(acc);
                self.candidates.push(g.id);
                acc + g
            }
            None => g,
        };
        *self.held.entry(sum.id).or_default() += 1;
        *slot = Some(sum);
    }

    /// A gradient a rule returned that no slot takes.
    fn unused(&mut self, g: Var<'t, T>) {
        self.candidates.push(g.id);
    }

    /// Node `i`'s gradient has been passed on to its inputs: the slot is emptied unless it is a result.
    fn consumed(&mut self, slot: &mut Option<Var<'t, T>>, i: usize) {
        if let (true, Some(g)) = (self.on && !self.results.contains(&i), *slot) {
            self.let_go(g);
            *slot = None;
        }
    }

    fn let_go(&mut self, g: Var<'t, T>) {
        if let Some(count) = self.held.get_mut(&g.id) {
            *count -= 1;
        }
        self.candidates.push(g.id);
    }

    /// Drop the nodes created in `from..to` except the gradients a rule returned.
    fn drop_between(&mut self, from: usize, to: usize, kept: &[Option<Var<'t, T>>]) {
        if self.on {
            for id in (from..to).filter(|&id| !kept.iter().flatten().any(|g| g.id == id)) {
                self.release(id);
            }
        }
    }

    /// Drop every candidate the pass created that no slot holds.
    fn release_unheld(&mut self) {
        for id in std::mem::take(&mut self.candidates) {
            if self.on && id >= self.first && self.held.get(&id).is_none_or(|&c| c == 0) {
                self.held.remove(&id);
                self.release(id);
            }
        }
    }

    fn release(&self, id: usize) {
        self.tape.nodes.borrow_mut()[id].value = self.empty.clone();
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The tape this handle points into.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// The node's index on its tape (its creation order).
    pub fn id(&self) -> usize {
        self.id
    }

    /// The node's value (shared, not copied).
    pub fn value(&self) -> Rc<ArrayD<T>> {
        self.tape.nodes.borrow()[self.id].value.clone()
    }

    pub fn shape(&self) -> Vec<usize> {
        self.tape.nodes.borrow()[self.id].value.shape().to_vec()
    }

    pub fn ndim(&self) -> usize {
        self.tape.nodes.borrow()[self.id].value.ndim()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.tape.nodes.borrow()[self.id].value.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> T {
        let v = self.value();
        assert_eq!(v.len(), 1, "item: tensor of shape {:?} has {} elements, not 1", v.shape(), v.len());
        *v.iter().next().expect("one element")
    }

    /// Whether gradients can flow into this node.
    pub fn requires_grad(&self) -> bool {
        self.tape.nodes.borrow()[self.id].requires_grad
    }

    /// The same value as a constant: gradients stop here.
    pub fn detach(&self) -> Var<'t, T> {
        self.tape.push(self.value(), None, Vec::new(), false)
    }

    /// A constant on the same tape.
    pub fn constant(&self, value: ArrayD<T>) -> Var<'t, T> {
        self.tape.constant(value)
    }

    pub fn zeros_like(&self) -> Var<'t, T> {
        self.tape.constant(ArrayD::zeros(self.shape()))
    }
}

impl<T: Float> std::fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var#{}{:?}", self.id, self.shape())
    }
}
