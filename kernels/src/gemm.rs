//! Matrix products. Every product in the engine goes through `gemm_into`: for f32 on a CPU with AVX2 + FMA or
//! AVX-512 (at the level [`crate::level()`] runs), the engine's own kernel ([`crate::sgemm`], threaded by
//! [`crate::sgemm::par_sgemm`] when the product is large enough to pay for it); otherwise matrixmultiply's on
//! one core, with the output split into row (or column) blocks across rayon's threads. `matmul` multiplies the
//! last two axes and treats leading axes as a batch.

use crate::sgemm::{Mat, MatMut};
use crate::Float;
use ndarray::{linalg::general_mat_mul, s, Array2, Array3, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, Axis, IxDyn};
use rayon::prelude::*;
use std::any::TypeId;

/// Products below this many multiply-adds run on the calling thread (about 20 µs of work: waking a second
/// thread and splitting the packing costs more than it saves below that; an LSTM step's 16 x 100 x 400
/// product ran at 150 GFLOP/s on one thread and 60 on two).
const PARALLEL_MIN_FLOPS: usize = 1 << 22;

/// `c = alpha * a b + beta * c` (with `beta == 0`, `c` is not read), split across threads when large.
/// f32 products run on the engine's kernel of [`crate::sgemm`] where the CPU has one, everything else on
/// matrixmultiply.
pub fn gemm_into<T: Float>(alpha: T, a: ArrayView2<T>, b: ArrayView2<T>, beta: T, mut c: ArrayViewMut2<T>) {
    let (m, k) = a.dim();
    let n = b.dim().1;
    assert!(b.dim().0 == k && c.dim() == (m, n), "gemm: shapes {:?} x {:?} into {:?}", a.dim(), b.dim(), c.dim());
    let threads = rayon::current_num_threads();
    let parts = if m * n * k < PARALLEL_MIN_FLOPS || threads == 1 { 1 } else { threads };
    if parts == 1 {
        gemm_serial(alpha, a, b, beta, c);
        return;
    }
    if let Some((a32, b32, c32)) = f32_operands(&a, &b, &mut c) {
        // SAFETY: the operands address m x k, k x n and m x n elements; c is borrowed mutably, so it aliases
        // neither a nor b; f32_operands checked the element type and the CPU.
        unsafe { crate::sgemm::par_sgemm(m, n, k, alpha.to_f64() as f32, a32, b32, beta.to_f64() as f32, c32) };
        return;
    }
    // One block of rows (or columns) per thread, each a whole product with its own packing.
    if m >= n {
        let step = m.div_ceil(parts);
        let blocks: Vec<_> = c.axis_chunks_iter_mut(Axis(0), step).zip(a.axis_chunks_iter(Axis(0), step)).collect();
        blocks.into_par_iter().for_each(|(ci, ai)| gemm_serial(alpha, ai, b, beta, ci));
    } else {
        let step = n.div_ceil(parts);
        let blocks: Vec<_> = c.axis_chunks_iter_mut(Axis(1), step).zip(b.axis_chunks_iter(Axis(1), step)).collect();
        blocks.into_par_iter().for_each(|(ci, bi)| gemm_serial(alpha, a, bi, beta, ci));
    }
}

/// `gemm_into` on the calling thread.
pub fn gemm_serial<T: Float>(alpha: T, a: ArrayView2<T>, b: ArrayView2<T>, beta: T, mut c: ArrayViewMut2<T>) {
    if let Some((a32, b32, c32)) = f32_operands(&a, &b, &mut c) {
        let (m, k) = a.dim();
        // SAFETY: as in gemm_into.
        unsafe { crate::sgemm::sgemm(m, b.dim().1, k, alpha.to_f64() as f32, a32, b32, beta.to_f64() as f32, c32) };
    } else {
        // With beta = 0, matrixmultiply does not read c either.
        general_mat_mul(alpha, &a, &b, beta, &mut c);
    }
}

/// Whether products of `T` run on the engine's kernel (f32 on a CPU that has one).
fn own_f32<T: Float>() -> bool {
    TypeId::of::<T>() == TypeId::of::<f32>() && crate::sgemm::available()
}

/// The operands as raw f32 matrices for the engine's kernel, when `T` is f32 and the CPU has one.
fn f32_operands<T: Float>(
    a: &ArrayView2<T>,
    b: &ArrayView2<T>,
    c: &mut ArrayViewMut2<T>,
) -> Option<(Mat, Mat, MatMut)> {
    if !own_f32::<T>() {
        return None;
    }
    let mat = |v: &ArrayView2<T>| Mat { ptr: v.as_ptr() as *const f32, rs: v.strides()[0], cs: v.strides()[1] };
    let out = MatMut { ptr: c.as_mut_ptr() as *mut f32, rs: c.strides()[0], cs: c.strides()[1] };
    Some((mat(a), mat(b), out))
}

/// A right-hand operand prepared once for many products on the calling thread (packed for the engine's kernel,
/// or kept as a plain copy elsewhere).
pub struct PackedRhs<T: Float> {
    packed: Option<crate::sgemm::PackedB>,
    plain: Array2<T>,
}

/// Prepare `b` for [`gemm_packed`].
pub fn pack_rhs<T: Float>(b: ArrayView2<T>) -> PackedRhs<T> {
    if own_f32::<T>() {
        let (k, n) = b.dim();
        let m = Mat { ptr: b.as_ptr() as *const f32, rs: b.strides()[0], cs: b.strides()[1] };
        // SAFETY: T is f32 and the view addresses k x n elements.
        let packed = unsafe { crate::sgemm::PackedB::new(k, n, m) };
        PackedRhs { packed: Some(packed), plain: Array2::zeros((0, 0)) }
    } else {
        PackedRhs { packed: None, plain: b.to_owned() }
    }
}

/// `c = alpha a b + beta c` on the calling thread, with `b` prepared by [`pack_rhs`].
pub fn gemm_packed<T: Float>(alpha: T, a: ArrayView2<T>, b: &PackedRhs<T>, beta: T, mut c: ArrayViewMut2<T>) {
    match &b.packed {
        Some(p) => {
            let (m, k) = a.dim();
            assert!(p.dim().0 == k && c.dim() == (m, p.dim().1), "gemm_packed: shapes {:?} x {:?}", a.dim(), p.dim());
            let am = Mat { ptr: a.as_ptr() as *const f32, rs: a.strides()[0], cs: a.strides()[1] };
            let out = MatMut { ptr: c.as_mut_ptr() as *mut f32, rs: c.strides()[0], cs: c.strides()[1] };
            // SAFETY: a packed operand exists only for T = f32 on a CPU with the kernel it was packed for; shapes
            // checked above;
            // c is borrowed mutably, so it aliases nothing else.
            unsafe { crate::sgemm::sgemm_packed(m, alpha.to_f64() as f32, am, p, beta.to_f64() as f32, out) };
        }
        None => gemm_serial(alpha, a, b.plain.view(), beta, c),
    }
}

/// `a b` for 2-D matrices.
pub fn gemm<T: Float>(a: ArrayView2<T>, b: ArrayView2<T>) -> Array2<T> {
    let (m, n) = (a.dim().0, b.dim().1);
    if own_f32::<T>() {
        // The engine's product with beta = 0 writes every element of c and reads none: no zero-filling first.
        let mut c = Array2::<T>::uninit((m, n));
        // SAFETY: the view covers c's m x n elements, which only the engine's product (gemm_into's path for f32
        // on this CPU) touches, writing each before c is taken as initialised.
        unsafe {
            let view = ArrayViewMut2::from_shape_ptr((m, n), c.as_mut_ptr() as *mut T);
            gemm_into(T::one(), a, b, T::zero(), view);
            return c.assume_init();
        }
    }
    let mut c = Array2::zeros((m, n));
    gemm_into(T::one(), a, b, T::zero(), c.view_mut());
    c
}

/// Batched product over the last two axes: `a` is `[.., m, k]`, `b` is `[.., k, n]`, with equal leading
/// axes, or one side 2-D and shared by every batch entry. Shapes are checked by the caller.
pub fn matmul<T: Float>(a: ArrayViewD<T>, b: ArrayViewD<T>) -> ArrayD<T> {
    matmul_t(a, false, b, false)
}

/// `op(a) op(b)` over the last two axes, where `op` swaps the last two axes of an operand whose flag is set
/// (read through strides: no transposed copy is made). Batching as in [`matmul`].
pub fn matmul_t<T: Float>(a: ArrayViewD<T>, ta: bool, b: ArrayViewD<T>, tb: bool) -> ArrayD<T> {
    let last2 = |v: &ArrayViewD<T>, t: bool| {
        let (r, c) = (v.shape()[v.ndim() - 2], v.shape()[v.ndim() - 1]);
        if t {
            (c, r)
        } else {
            (r, c)
        }
    };
    let ((m, k), (_, n)) = (last2(&a, ta), last2(&b, tb));
    let lead = if a.ndim() >= b.ndim() { &a.shape()[..a.ndim() - 2] } else { &b.shape()[..b.ndim() - 2] };
    let mut out_shape = lead.to_vec();
    out_shape.extend([m, n]);
    let batch: usize = lead.iter().product();
    if b.ndim() == 2 && !ta && a.is_standard_layout() {
        // [.., m, k] x [k, n]: one product with the batch folded into the rows.
        let a2 = a.into_shape_with_order((batch * m, k)).expect("rows");
        let mut b2: ArrayView2<T> = b.into_dimensionality().expect("2-D");
        if tb {
            b2.swap_axes(0, 1);
        }
        return gemm(a2, b2).into_shape_with_order(IxDyn(&out_shape)).expect("matmul output shape");
    }
    let a3 = op3(a.clone(), ta);
    let b3 = op3(b.clone(), tb);
    let mut c = Array3::<T>::zeros((batch, m, n));
    let per_item = m * n * k;
    let body = |i: usize, ci: ArrayViewMut2<T>, serial: bool| {
        let ai = a3.slice(s![i % a3.dim().0, .., ..]);
        let bi = b3.slice(s![i % b3.dim().0, .., ..]);
        if serial {
            gemm_serial(T::one(), ai, bi, T::zero(), ci);
        } else {
            gemm_into(T::one(), ai, bi, T::zero(), ci);
        }
    };
    let threads = rayon::current_num_threads();
    if batch >= threads && threads > 1 && per_item * batch >= PARALLEL_MIN_FLOPS {
        // Whole products per task: no splitting inside an item.
        let chunks: Vec<_> = c.outer_iter_mut().enumerate().collect();
        chunks.into_par_iter().with_min_len(batch.div_ceil(4 * threads)).for_each(|(i, ci)| body(i, ci, true));
    } else {
        for (i, ci) in c.outer_iter_mut().enumerate() {
            body(i, ci, false);
        }
    }
    c.into_shape_with_order(IxDyn(&out_shape)).expect("matmul output shape")
}

/// `v` as `[batch, r, c]` (see `as3`), with the last two axes swapped when `t`.
fn op3<T: Float>(v: ArrayViewD<'_, T>, t: bool) -> ndarray::CowArray<'_, T, ndarray::Ix3> {
    let (r, c) = (v.shape()[v.ndim() - 2], v.shape()[v.ndim() - 1]);
    let mut v3 = as3(&v, r, c);
    if t {
        v3.swap_axes(1, 2);
    }
    v3
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
        for &(m, k, n) in &[(300, 70, 40), (20, 90, 500), (129, 130, 131), (1, 5, 3), (301, 130, 120), (20, 400, 901)] {
            let (a, b) = (filled(m, k, 1), filled(k, n, 2));
            let got = gemm(a.view(), b.view());
            let want = naive(&a, &b);
            // The f32 path (the engine's kernel where available), split across threads above the threshold.
            let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
            let got32 = gemm(a32.view(), b32.view()).mapv(|v| v as f64);
            assert!(got32.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-3 * (1.0 + y.abs())), "f32 {m}x{k}x{n}");
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

    #[test]
    fn transposed_operands_match_explicit_transposes() {
        let a = Array::from_shape_fn((3, 4, 5), |(b, i, j)| (b * 7 + i * 3 + j) as f64 / 10.0 - 1.0).into_dyn();
        let b = Array::from_shape_fn((3, 5, 4), |(b, i, j)| ((b + i * j) % 5) as f64 - 2.0).into_dyn();
        let w = filled(4, 5, 3).into_dyn();
        let swap = |x: &ArrayD<f64>| {
            let mut v = x.view();
            let n = v.ndim();
            v.swap_axes(n - 2, n - 1);
            v.to_owned()
        };
        // a^T a-shaped pairs: each flag against the product of explicitly transposed copies.
        let cases: Vec<(&ArrayD<f64>, bool, &ArrayD<f64>, bool)> = vec![
            (&a, false, &b, false),
            (&a, true, &a, false),
            (&a, false, &a, true),
            (&b, true, &a, true),
            (&a, false, &w, true),
            (&a, true, &w, false),
            (&w, true, &a, false),
            (&w, false, &a, true),
        ];
        for (i, (x, tx, y, ty)) in cases.into_iter().enumerate() {
            let got = matmul_t(x.view(), tx, y.view(), ty);
            let (xe, ye) = (if tx { swap(x) } else { x.clone() }, if ty { swap(y) } else { y.clone() });
            let want = matmul(xe.view(), ye.view());
            assert!(close(&got, &want), "case {i}");
        }
    }
}
