//! Matrix products. Every product in the engine goes through `gemm_into`: matrixmultiply's packed kernels on one
//! core, with the output split into row (or column) blocks across rayon's threads when the product is large
//! enough to pay for it. `matmul` multiplies the last two axes and treats leading axes as a batch.

use crate::Float;
use ndarray::{linalg::general_mat_mul, s, Array2, Array3, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, Axis, IxDyn};

/// Products below this many multiply-adds run on the calling thread.
const PARALLEL_MIN_FLOPS: usize = 1 << 18;

/// `c = alpha * a b + beta * c`, splitting large products across threads.
pub fn gemm_into<T: Float>(alpha: T, a: ArrayView2<T>, b: ArrayView2<T>, beta: T, c: ArrayViewMut2<T>) {
    let (m, k) = a.dim();
    let n = b.dim().1;
    if m * n * k < PARALLEL_MIN_FLOPS || rayon::current_num_threads() == 1 || (m < 16 && n < 16) {
        let mut c = c;
        general_mat_mul(alpha, &a, &b, beta, &mut c);
        return;
    }
    if m >= n {
        let (a0, a1) = a.split_at(Axis(0), m / 2);
        let (c0, c1) = c.split_at(Axis(0), m / 2);
        rayon::join(|| gemm_into(alpha, a0, b, beta, c0), || gemm_into(alpha, a1, b, beta, c1));
    } else {
        let (b0, b1) = b.split_at(Axis(1), n / 2);
        let (c0, c1) = c.split_at(Axis(1), n / 2);
        rayon::join(|| gemm_into(alpha, a, b0, beta, c0), || gemm_into(alpha, a, b1, beta, c1));
    }
}

/// `a b` for 2-D matrices.
pub fn gemm<T: Float>(a: ArrayView2<T>, b: ArrayView2<T>) -> Array2<T> {
    let mut c = Array2::zeros((a.dim().0, b.dim().1));
    gemm_into(T::one(), a, b, T::zero(), c.view_mut());
    c
}

/// Batched product over the last two axes: `a` is `[.., m, k]`, `b` is `[.., k, n]`, with equal leading
/// axes, or one side 2-D and shared by every batch entry. Shapes are checked by the caller.
pub fn matmul<T: Float>(a: ArrayViewD<T>, b: ArrayViewD<T>) -> ArrayD<T> {
    let (m, k) = (a.shape()[a.ndim() - 2], a.shape()[a.ndim() - 1]);
    let n = b.shape()[b.ndim() - 1];
    let lead = if a.ndim() >= b.ndim() { &a.shape()[..a.ndim() - 2] } else { &b.shape()[..b.ndim() - 2] };
    let mut out_shape = lead.to_vec();
    out_shape.extend([m, n]);
    let batch: usize = lead.iter().product();
    if b.ndim() == 2 {
        // [.., m, k] x [k, n]: one product with the batch folded into the rows.
        let a2 = a.as_standard_layout();
        let a2 = a2.view().into_shape_with_order((batch * m, k)).expect("rows");
        let b2 = b.into_dimensionality().expect("2-D");
        return gemm(a2, b2).into_shape_with_order(IxDyn(&out_shape)).expect("matmul output shape");
    }
    let a3 = as3(&a, m, k);
    let b3 = as3(&b, k, n);
    let mut c = Array3::<T>::zeros((batch, m, n));
    let per_item = m * n * k;
    let body = |i: usize, ci: ArrayViewMut2<T>| {
        let ai = a3.slice(s![i % a3.dim().0, .., ..]);
        let bi = b3.slice(s![i % b3.dim().0, .., ..]);
        gemm_into(T::one(), ai, bi, T::zero(), ci);
    };
    if batch > 1 && per_item * batch >= PARALLEL_MIN_FLOPS && per_item < PARALLEL_MIN_FLOPS {
        use rayon::prelude::*;
        let chunks: Vec<_> = c.outer_iter_mut().enumerate().collect();
        chunks.into_par_iter().for_each(|(i, ci)| body(i, ci));
    } else {
        for (i, ci) in c.outer_iter_mut().enumerate() {
            body(i, ci);
        }
    }
    c.into_shape_with_order(IxDyn(&out_shape)).expect("matmul output shape")
}

/// `x` (`[.., r, c]`) as a `[batch, r, c]` view when contiguous, else a contiguous copy.
fn as3<'a, T: Float>(x: &ArrayViewD<'a, T>, r: usize, c: usize) -> ndarray::CowArray<'a, T, ndarray::Ix3> {
    let batch = x.len().checked_div(r * c).unwrap_or(1);
    match x.clone().into_shape_with_order((batch, r, c)) {
        Ok(v) => v.into(),
        Err(_) => x.as_standard_layout().into_owned().into_shape_with_order((batch, r, c)).expect("3-D").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    fn naive(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
        let (m, k) = a.dim();
        let n = b.dim().1;
        Array2::from_shape_fn((m, n), |(i, j)| (0..k).map(|p| a[[i, p]] * b[[p, j]]).sum())
    }

    fn filled(r: usize, c: usize, seed: usize) -> Array2<f64> {
        Array::from_shape_fn((r, c), |(i, j)| ((i * 31 + j * 17 + seed * 7) % 23) as f64 / 11.0 - 1.0)
    }

    fn close(a: &ArrayD<f64>, b: &ArrayD<f64>) -> bool {
        a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn parallel_split_matches_naive_product_on_tall_and_wide_shapes() {
        for &(m, k, n) in &[(300, 70, 40), (20, 90, 500), (129, 130, 131), (1, 5, 3)] {
            let (a, b) = (filled(m, k, 1), filled(k, n, 2));
            let got = gemm(a.view(), b.view());
            let want = naive(&a, &b);
            assert!(close(&got.into_dyn(), &want.into_dyn()), "{m}x{k}x{n}");
        }
    }

    #[test]
    fn batched_and_shared_operands() {
        let a = Array::from_shape_fn((3, 4, 5), |(b, i, j)| (b * 7 + i * 3 + j) as f64 / 10.0).into_dyn();
        let w = filled(5, 2, 3);
        let got = matmul(a.view(), w.view().into_dyn());
        for bi in 0..3 {
            let ab = a.index_axis(Axis(0), bi).into_dimensionality().unwrap().to_owned();
            let want = naive(&ab, &w);
            assert!(close(&got.index_axis(Axis(0), bi).to_owned(), &want.into_dyn()));
        }
        let bt = Array::from_shape_fn((3, 5, 2), |(b, i, j)| (b + i * j) as f64).into_dyn();
        let got = matmul(a.view(), bt.view());
        for bi in 0..3 {
            let ab = a.index_axis(Axis(0), bi).into_dimensionality().unwrap().to_owned();
            let bb = bt.index_axis(Axis(0), bi).into_dimensionality().unwrap().to_owned();
            assert!(close(&got.index_axis(Axis(0), bi).to_owned(), &naive(&ab, &bb).into_dyn()));
        }
    }
}
