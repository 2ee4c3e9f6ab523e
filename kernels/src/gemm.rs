//! Matrix products. `matmul` multiplies the last two axes and treats all leading axes as a batch.

use crate::Float;
use ndarray::{linalg::general_mat_mul, s, Array2, Array3, ArrayD, ArrayView2, ArrayViewD, IxDyn};

/// `C = A B` for 2-D matrices: the single entry point every product in the engine goes through.
pub fn gemm<T: Float>(a: ArrayView2<T>, b: ArrayView2<T>) -> Array2<T> {
    a.dot(&b)
}

/// Batched product over the last two axes: `a` is `[.., m, k]`, `b` is `[.., k, n]`, with equal leading
/// axes, or one side 2-D and shared by every batch entry. Shapes are checked by the caller.
pub fn matmul<T: Float>(a: ArrayViewD<T>, b: ArrayViewD<T>) -> ArrayD<T> {
    let (m, k) = (a.shape()[a.ndim() - 2], a.shape()[a.ndim() - 1]);
    let n = b.shape()[b.ndim() - 1];
    if a.ndim() == 2 && b.ndim() == 2 {
        let a2 = a.view().into_dimensionality::<ndarray::Ix2>().ok();
        let b2 = b.view().into_dimensionality::<ndarray::Ix2>().ok();
        if let (Some(a2), Some(b2)) = (a2, b2) {
            return gemm(a2, b2).into_dyn();
        }
    }
    let lead = if a.ndim() >= b.ndim() { &a.shape()[..a.ndim() - 2] } else { &b.shape()[..b.ndim() - 2] };
    let mut out_shape = lead.to_vec();
    out_shape.extend([m, n]);
    let batch: usize = lead.iter().product();
    let a3 = as3(&a, m, k);
    let b3 = as3(&b, k, n);
    let mut c = Array3::<T>::zeros((batch, m, n));
    for (i, mut ci) in c.outer_iter_mut().enumerate() {
        let ai = a3.slice(s![i % a3.shape()[0], .., ..]);
        let bi = b3.slice(s![i % b3.shape()[0], .., ..]);
        general_mat_mul(T::one(), &ai, &bi, T::zero(), &mut ci);
    }
    c.into_shape_with_order(IxDyn(&out_shape)).expect("matmul output shape")
}

/// `x` (`[.., r, c]`) as a contiguous `[batch, r, c]` array (a 2-D `x` is a batch of one).
fn as3<T: Float>(x: &ArrayViewD<T>, r: usize, c: usize) -> Array3<T> {
    let batch = x.len() / (r * c).max(1);
    let data: Vec<T> = x.iter().copied().collect();
    Array3::from_shape_vec((if r * c == 0 { 1 } else { batch }, r, c), data).expect("batch view")
}
