//! The differentiable ops, one file per family. Each op computes its value with a kernel, records itself,
//! and writes its backward in differentiable ops.

pub mod conv;
pub mod elementwise;
pub mod fspool;
pub mod index;
pub mod loss;
pub mod lstm;
pub mod matmul;
pub mod nn;
pub mod reduce;
pub mod shape;

use crate::Float;
use ndarray::ArrayD;
use std::borrow::Cow;

// Helpers shared by several op files.

/// The elements of `x` in row-major order, borrowed when `x` is contiguous (every value the tape records is).
pub(crate) fn contiguous<T: Float>(x: &ArrayD<T>) -> Cow<'_, [T]> {
    match x.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(x.iter().copied().collect()),
    }
}

/// 1 for true, 0 for false: masks and the derivatives of piecewise ops.
pub fn indicator<T: Float>(b: bool) -> T {
    if b {
        T::one()
    } else {
        T::zero()
    }
}
