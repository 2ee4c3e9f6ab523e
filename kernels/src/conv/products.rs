//! The matrix products of the convolutions and what they need around them: outputs allocated without a
//! zero-fill (every product here that starts a matrix has beta = 0, which reads nothing of it), the layout
//! copies of the wide path, and the parallel sum over images of the per-image path.

use crate::elementwise::new_with;
use crate::gemm::{gemm_into, gemm_serial};
use crate::Float;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, CowArray, Ix2};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// `v` refilled with `n` values, every one written by `fill`: no zero-fill first, and `v`'s memory reused.
pub(super) fn refill<T>(v: &mut Vec<T>, n: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) {
    v.clear();
    v.reserve(n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: `fill` wrote all n elements (every caller passes loops over exactly these slots or a product
    // with beta = 0 into them).
    unsafe { v.set_len(n) };
}

/// `slots` as a `shape` matrix.
///
/// # Safety
/// The entries may be uninitialised: each must be written (as the output of a product with beta = 0, which
/// reads nothing of it) before it is read.
pub(super) unsafe fn uninit_view<T>(slots: &mut [MaybeUninit<T>], shape: (usize, usize)) -> ArrayViewMut2<'_, T> {
    assert_eq!(slots.len(), shape.0 * shape.1, "uninit_view: {} slots for {shape:?}", slots.len());
    // SAFETY: the pointer addresses the shape's elements, borrowed mutably for the view's lifetime.
    unsafe { ArrayViewMut2::from_shape_ptr(shape, slots.as_mut_ptr() as *mut T) }
}

/// `c = a b` into uninitialised slots (`a`'s rows by `b`'s columns, row-major), on the calling thread when
/// `serial`.
pub(super) fn product_into<T: Float>(serial: bool, a: ArrayView2<T>, b: ArrayView2<T>, c: &mut [MaybeUninit<T>]) {
    // SAFETY: a product with beta = 0 writes every entry of its output and reads none.
    let c = unsafe { uninit_view(c, (a.dim().0, b.dim().1)) };
    if serial {
        gemm_serial(T::one(), a, b, T::zero(), c);
    } else {
        gemm_into(T::one(), a, b, T::zero(), c);
    }
}

/// Images per run of the per-image sums: fixed, so that the grouping (and so the rounding) of a sum does not
/// depend on the number of threads or on how they were scheduled.
const RUN: usize = 8;

/// The sum over `items` (one per image) of products `term(scratch, item, beta, acc)`, each `acc = x y + beta
/// acc`. Runs of `RUN` consecutive images are folded in parallel into sums of their own, which are then added
/// in image order: the result is the same, bit for bit, whatever the threads did. The first product of a run
/// has beta = 0, so its sum needs no zero-fill.
pub(super) fn image_sum<T: Float, X: Send>(
    items: impl IndexedParallelIterator<Item = X>,
    shape: (usize, usize),
    term: impl Fn(&mut Scratch<T>, X, T, ArrayViewMut2<T>) + Sync,
) -> Array2<T> {
    let runs: Vec<Option<Array2<T>>> = items
        .fold_chunks(
            RUN,
            || (Scratch::new(), None),
            |(mut sc, acc): (Scratch<T>, Option<Array2<T>>), x| {
                let acc = match acc {
                    None => product_matrix(shape, |c| term(&mut sc, x, T::zero(), c)),
                    Some(mut acc) => {
                        term(&mut sc, x, T::one(), acc.view_mut());
                        acc
                    }
                };
                (sc, Some(acc))
            },
        )
        .map(|(_, acc)| acc)
        .collect();
    let mut total: Option<Array2<T>> = None;
    for run in runs.into_iter().flatten() {
        match &mut total {
            None => total = Some(run),
            Some(t) => *t += &run,
        }
    }
    total.unwrap_or_else(|| Array2::zeros(shape))
}

/// Per-thread buffers of the per-image path.
pub(super) struct Scratch<T> {
    pub(super) cols: Vec<T>,
    pub(super) split: Vec<T>,
}

impl<T> Scratch<T> {
    pub(super) fn new() -> Self {
        Scratch { cols: Vec::new(), split: Vec::new() }
    }
}

/// `[n, ch, p]` (contiguous) as a channel-major `[ch, n*p]` matrix.
pub(super) fn channel_major<T: Float>(src: &[T], n: usize, ch: usize, p: usize) -> Array2<T> {
    let data = new_with(ch * n * p, |data| {
        data.par_chunks_mut((n * p).max(1)).enumerate().for_each(|(c, row)| {
            for i in 0..n {
                for (d, &v) in row[i * p..][..p].iter_mut().zip(&src[(i * ch + c) * p..][..p]) {
                    d.write(v);
                }
            }
        });
    });
    Array2::from_shape_vec((ch, n * p), data).expect("channel-major shape")
}

/// A channel-major `[ch, n*p]` matrix written as `[n, ch, p]` into `dst`.
pub(super) fn batch_major<T: Float>(src: &Array2<T>, n: usize, ch: usize, p: usize, dst: &mut [MaybeUninit<T>]) {
    let s = src.as_slice().expect("contiguous");
    dst.par_chunks_mut(p.max(1)).enumerate().for_each(|(plane, d)| {
        let (i, c) = (plane / ch, plane % ch);
        for (d, &v) in d.iter_mut().zip(&s[c * n * p + i * p..][..p]) {
            d.write(v);
        }
    });
}

/// `y = w cols` for the `n` images of a chunk (`w` `[co, rows]`, `cols` `[rows, n*p]`), written as
/// `[n, co, p]` into `ys` (every slot).
pub(super) fn forward_chunk<T: Float>(
    w: ArrayView2<T>,
    cols: ArrayView2<T>,
    n: usize,
    p: usize,
    ys: &mut [MaybeUninit<T>],
) {
    let co = w.dim().0;
    if n == 1 {
        product_into(false, w, cols, ys);
    } else {
        let prod = product_matrix((co, n * p), |c| gemm_into(T::one(), w, cols, T::zero(), c));
        batch_major(&prod, n, co, p, ys);
    }
}

/// A `shape` matrix whose every entry the product `fill` writes (with beta = 0): no zero-fill first.
pub(super) fn product_matrix<T: Float>(shape: (usize, usize), fill: impl FnOnce(ArrayViewMut2<T>)) -> Array2<T> {
    // SAFETY: `fill` is a product with beta = 0 into the view, which writes every entry and reads none.
    let data = new_with(shape.0 * shape.1, |slots| fill(unsafe { uninit_view(slots, shape) }));
    Array2::from_shape_vec(shape, data).expect("product shape")
}

/// `[n, ch, p]` (contiguous) as a `[ch, n*p]` matrix: a view for one image, else a channel-major copy.
pub(super) fn channel_major_cow<T: Float>(src: &[T], n: usize, ch: usize, p: usize) -> CowArray<'_, T, Ix2> {
    if n == 1 {
        ArrayView2::from_shape((ch, p), src).expect("one image").into()
    } else {
        channel_major(src, n, ch, p).into()
    }
}

/// `dw += sum over the chunk's n images of gy_i cols_i^T` (`gs` `[n, co, p]`, `cols` `[rows, n*p]`).
pub(super) fn weight_grad_chunk<T: Float>(gs: &[T], cols: ArrayView2<T>, n: usize, p: usize, dw: &mut Array2<T>) {
    let gcm = channel_major_cow(gs, n, dw.dim().0, p);
    gemm_into(T::one(), gcm.view(), cols.t(), T::one(), dw.view_mut());
}

/// The input gradient's columns `[rows, n*p]` of a chunk's `n` images: `w^T gy` (`w` `[cy, rows]`,
/// `gs` `[n, cy, p]`).
pub(super) fn transpose_chunk<T: Float>(w: ArrayView2<T>, gs: &[T], n: usize, p: usize) -> Array2<T> {
    let (cy, rows) = w.dim();
    let ycm = channel_major_cow(gs, n, cy, p);
    product_matrix((rows, n * p), |cols| gemm_into(T::one(), w.t(), ycm.view(), T::zero(), cols))
}

/// Image `i`'s `[ch, p]` block of `[b, ch, p]` activations.
pub(super) fn block<T>(s: &[T], i: usize, ch: usize, p: usize) -> ArrayView2<'_, T> {
    ArrayView2::from_shape((ch, p), &s[i * ch * p..][..ch * p]).expect("image block")
}
