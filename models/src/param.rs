//! Parameters: tensors that live outside any tape and survive it.
//!
//! A [`Param`] is a shared handle (`Rc<RefCell<Rc<ArrayD>>>`): cloning it is cheap and every clone sees the
//! same value, so a module, an optimiser and a gradient map can all hold the same parameter. Entering a tape
//! costs no copy: the leaf shares the inner `Rc` with the parameter. An optimiser updates the value in place
//! through `Rc::make_mut`, which copies only if a tape still holds the old value (so that tape keeps seeing
//! the value it computed with).
//!
//! Non-trainable state (batch-norm running statistics) uses the same handle type, under the alias [`Buffer`].

use autograd::Float;
use autograd::{Tape, Var};
use ndarray::ArrayD;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

/// A trainable tensor that outlives the tapes it is used on. Clones share the value.
pub struct Param<T: Float = f32> {
    inner: Rc<RefCell<Rc<ArrayD<T>>>>,
}

/// Non-trainable module state (running statistics): the same shared handle as a parameter, listed by
/// [`crate::Module::buffers`] rather than [`crate::Module::params`], so it is saved but never optimised.
pub type Buffer<T = f32> = Param<T>;

/// The identity of a parameter: equal for clones of one [`Param`], distinct for distinct parameters (while
/// they are alive). Used to key gradients and optimiser state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ParamId(usize);

impl<T: Float> Clone for Param<T> {
    fn clone(&self) -> Self {
        Param { inner: self.inner.clone() }
    }
}

impl<T: Float> Param<T> {
    /// A new parameter holding `value` (stored in standard layout).
    pub fn new(value: ArrayD<T>) -> Self {
        let value = if value.is_standard_layout() { value } else { value.as_standard_layout().into_owned() };
        Param { inner: Rc::new(RefCell::new(Rc::new(value))) }
    }

    /// A fresh leaf on `tape` sharing the current value (no copy). Each call makes a new leaf: to use a
    /// parameter several times in one step and get one gradient, go through a [`crate::Scope`].
    pub fn var<'t>(&self, tape: &'t Tape<T>) -> Var<'t, T> {
        tape.leaf_shared(self.value())
    }

    /// The current value as a constant on `tape` (no copy, no gradient): for buffers such as running statistics.
    pub fn constant<'t>(&self, tape: &'t Tape<T>) -> Var<'t, T> {
        tape.leaf_shared(self.value()).detach()
    }

    /// The current value (shared, not copied).
    pub fn value(&self) -> Rc<ArrayD<T>> {
        self.inner.borrow().clone()
    }

    pub fn shape(&self) -> Vec<usize> {
        self.inner.borrow().shape().to_vec()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.inner.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replace the value. Panics if the shape differs: a parameter's shape is fixed at creation.
    pub fn set(&self, value: ArrayD<T>) {
        let shape = self.shape();
        assert_eq!(
            shape,
            value.shape(),
            "Param::set: parameter of shape {shape:?} given a value of shape {:?}",
            value.shape()
        );
        let value = if value.is_standard_layout() { value } else { value.as_standard_layout().into_owned() };
        *self.inner.borrow_mut() = Rc::new(value);
    }

    /// Update the value in place. Copies first only if something else (a tape) still shares the value.
    /// `f` must not change the shape (checked) and must not read this parameter (it is borrowed mutably).
    pub fn update<R>(&self, f: impl FnOnce(&mut ArrayD<T>) -> R) -> R {
        let mut cell = self.inner.borrow_mut();
        let shape = cell.shape().to_vec();
        let value = Rc::make_mut(&mut cell);
        let out = f(value);
        assert_eq!(
            shape,
            value.shape(),
            "Param::update: the update changed the shape from {shape:?} to {:?}",
            value.shape()
        );
        if !value.is_standard_layout() {
            *value = value.as_standard_layout().into_owned();
        }
        out
    }

    /// This parameter's identity (shared by its clones).
    pub fn id(&self) -> ParamId {
        ParamId(Rc::as_ptr(&self.inner) as *const () as usize)
    }

    /// Whether `self` and `other` are the same parameter (clones of one handle).
    pub fn ptr_eq(&self, other: &Param<T>) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// An independent parameter with a copy of the current value (not shared with `self`).
    pub fn deep_clone(&self) -> Param<T> {
        Param::new((*self.value()).clone())
    }
}

impl<T: Float> fmt::Debug for Param<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Param{:?}", self.shape())
    }
}
