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
