//! A reverse-mode automatic differentiation engine whose backward pass can itself be differentiated.
//!
//! ```
//! use autograd::Tape;
//! use ndarray::array;
//!
//! let tape = Tape::<f64>::new();
//! let x = tape.leaf(array![1.0, 2.0].into_dyn());
//! let y = (x * x * x).sum(); // y = sum(x^3)
//! let [g] = tape.grad(&[y], &[x], true)[..] else { unreachable!() }; // 3 x^2, itself a graph
//! let [h] = tape.grad(&[g.sum()], &[x], false)[..] else { unreachable!() }; // 6 x
//! assert_eq!(h.value().as_slice().unwrap(), &[6.0, 12.0]);
//! ```
//!
//! # Errors
//! Ops panic on misuse (shape mismatches, out-of-range axes or indices), with a message that names the op
//! and the shapes involved, as PyTorch raises: a wrong shape is a bug in the calling code, and building a
//! graph out of `Result`s would bury the maths under error plumbing. Anything that reads the outside world
//! (checkpoints, data files) returns a `Result` instead.

pub mod check;
pub mod ops;
mod tape;

pub use kernels::conv::ConvGeom;
/// The element types the engine computes in (`f32`, `f64`), re-exported so that layers need not reach into `kernels`.
pub use kernels::Float;
pub use ops::shape::{concat, stack};
pub use tape::{Op, Tape, Var};
