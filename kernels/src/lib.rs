//! CPU kernels for the engine. Every kernel works on plain ndarray values and knows nothing of the tape:
//! the autograd crate wraps each one as an op with its own backward. Keep entry points stable so a faster
//! implementation can replace a straightforward one without touching the engine.

pub mod alloc;
pub mod conv;
pub mod elementwise;
pub mod fspool;
pub mod gemm;
pub mod lstm;
pub mod sgemm;

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// The float types the engine runs on: `f32` for training, `f64` for gradient checks.
pub trait Float:
    num_traits::Float
    + num_traits::FromPrimitive
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// Name used in checkpoints and error messages ("f32", "f64").
    const NAME: &'static str;
    /// Lossy conversion from f64, for constants written in code.
    fn of(x: f64) -> Self {
        <Self as num_traits::FromPrimitive>::from_f64(x).expect("float conversion")
    }
    /// Lossy conversion from usize (counts, sizes).
    fn of_usize(x: usize) -> Self {
        <Self as num_traits::FromPrimitive>::from_usize(x).expect("float conversion")
    }
    fn to_f64(self) -> f64 {
        num_traits::ToPrimitive::to_f64(&self).expect("float conversion")
    }
}

impl Float for f32 {
    const NAME: &'static str = "f32";
}

impl Float for f64 {
    const NAME: &'static str = "f64";
}
