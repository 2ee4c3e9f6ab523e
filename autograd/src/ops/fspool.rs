//! FSPool, featurewise sort pooling (Zhang, Hare, Prügel-Bennett, ICLR 2020).
//!
//! For an input `x [B, C, N]` (a batch of sets of `N` elements with `C` channels) and a parameter `W [C, k+1]`,
//! every channel is sorted independently across the set elements in descending order, and the sorted values
//! are summed with weights from a piecewise-linear function of the relative position: for position `j` of a
//! set of `n` elements, `r_j = j / max(n - 1, 1)`, `idx = floor(k r_j)`, `frac = k r_j - idx` and
//! `w_j = (1 - frac) W[:, idx] + frac W[:, min(idx + 1, k)]`; the output is `y [B, C] = Σ_j w_j x_sorted_j`.
//!
//! `fspool` runs as three fused ops (kernels in `kernels::fspool`): with the sort permutation and the
//! interpolation matrix `M` held fixed, the output is a trilinear form `T(g, W, x) = sum g[b, c] (W M)[c, j]
//! x[b, c, perm[b, c, j]]`, and the pooling, its input gradient and its weight gradient are its three partial
//! derivatives. The backward of each is the other two evaluated at the incoming gradient (as for convolutions),
//! so gradients of any order flow into `x` and `W`, with the permutation held fixed (the sort is locally
//! constant away from ties), and every order runs on the fused kernels. `fspool_composite` is the same
//! function composed of generic ops (`gather`, `matmul`, product, sum): the reference the fused ops are
//! tested against.
//!
//! Variable set sizes: with `sizes`, sample `b` is the set of its first `sizes[b]` elements. Padded positions
//! take no part in the sort, get weight zero (so they do not change the output and receive zero gradient) and
//! keep their own place in the returned permutation. Padded values must be finite (they are multiplied by 0).

use crate::{ops::contiguous, Op, Var};
use kernels::gemm::gemm_into;
use kernels::Float;
use ndarray::{Array2, Array3, ArrayD, Axis, IxDyn};
use std::rc::Rc;

/// The `[k+1, len]` matrix `M` with `W M = (w_0, .., w_{len-1})` for a set of `size` elements stored in `len`
/// positions: column `j < size` holds `1 - frac` at row `idx` and `frac` at row `min(idx + 1, k)`; columns of
/// padded positions (`j >= size`) are zero. `k r_j` is computed exactly as the fraction `k j / max(size-1, 1)`.
pub fn interpolation_matrix<T: Float>(k: usize, size: usize, len: usize) -> Array2<T> {
    assert!(size <= len, "fspool: set size {size} is larger than the {len} positions");
    let denom = size.saturating_sub(1).max(1);
    let mut m = Array2::zeros((k + 1, len));
    for j in 0..size {
        let idx = k * j / denom;
        let frac = T::of_usize(k * j % denom) / T::of_usize(denom);
        m[[idx, j]] += T::one() - frac;
        m[[(idx + 1).min(k), j]] += frac;
    }
    m
}

impl<'t, T: Float> Var<'t, T> {
    /// [`fspool`] as a method: `x.fspool(w, sizes)`.
    pub fn fspool(self, w: Var<'t, T>, sizes: Option<&[usize]>) -> (Var<'t, T>, ArrayD<usize>) {
        fspool(self, w, sizes)
    }
}

/// FSPool of `x [B, C, N]` with parameter `w [C, k+1]`, optionally with per-sample set sizes (`B` values, each
/// at most `N`; a size 0 gives 0). Returns the pooled `y [B, C]` and the permutation `perm [B, C, N]`:
/// `perm[b, c, j]` is the element holding the `j`-th largest value of channel `c` in sample `b` (for a padded
/// position `j >= sizes[b]`, `perm[b, c, j] = j`), so `x_sorted = x.gather(2, &perm)`. Ties keep the element
/// order. Panics on mismatched shapes or sizes, and on NaN inputs.
pub fn fspool<'t, T: Float>(x: Var<'t, T>, w: Var<'t, T>, sizes: Option<&[usize]>) -> (Var<'t, T>, ArrayD<usize>) {
    let (xs, ws) = (x.shape(), w.shape());
    let (batch, n, k) = check(&xs, &ws, sizes);
    let channels = xs[1];
    let size_of = |b: usize| sizes.map_or(n, |s| s[b]);
    let value = x.value();
    let perm = kernels::fspool::sort_desc(&contiguous(&value), n, |r| size_of(r / channels.max(1)));
    let shared = (0..batch).all(|b| size_of(b) == n);
    let m = if shared {
        interpolation_matrix(k, n, n).into_dyn()
    } else {
        let mut m = Array3::zeros((batch, k + 1, n));
        for b in 0..batch {
            m.index_axis_mut(Axis(0), b).assign(&interpolation_matrix::<T>(k, size_of(b), n));
        }
        m.into_dyn()
    };
    let perm_out = ArrayD::from_shape_vec(IxDyn(&[batch, channels, n]), perm.clone()).expect("perm shape");
    let dims = kernels::fspool::Dims { batch, channels, n, shared };
    let pool = Rc::new(Pool { perm, m, dims, k });
    (pool_forward(&pool, x, w), perm_out)
}

/// Validate the shapes and sizes; returns `(B, N, k)`.
fn check(xs: &[usize], ws: &[usize], sizes: Option<&[usize]>) -> (usize, usize, usize) {
    assert!(
        xs.len() == 3 && ws.len() == 2 && ws[0] == xs[1] && ws[1] >= 1,
        "fspool: input of shape {xs:?} and weights of shape {ws:?} are not [B, C, N] and [C, k+1]"
    );
    if let Some(s) = sizes {
        assert!(s.len() == xs[0] && s.iter().all(|&m| m <= xs[2]), "fspool: sizes {s:?} for an input of shape {xs:?}");
    }
    (xs[0], xs[2], ws[1] - 1)
}

/// What the three fused ops of one pooling share: the permutation, the interpolation matrix (`[k+1, N]`, or
/// `[B, k+1, N]` per sample) and the shapes.
struct Pool<T: Float> {
    perm: Vec<usize>,
    m: ArrayD<T>,
    dims: kernels::fspool::Dims,
    k: usize,
}

impl<T: Float> Pool<T> {
    /// The weight of every sorted position, `W M`: `[C, N]` or `[B, C, N]`.
    fn wts(&self, w: &ArrayD<T>) -> Vec<T> {
        let prod = kernels::gemm::matmul(w.view(), self.m.view());
        prod.into_raw_vec_and_offset().0
    }

    /// `dW = dwts M^T` (summed over the batch when per sample), `[C, k+1]`.
    fn w_grad(&self, dwts: Vec<T>) -> ArrayD<T> {
        let d = self.dims;
        let (c, n, k1) = (d.channels, d.n, self.k + 1);
        let mut dw = Array2::<T>::zeros((c, k1));
        let m = self.m.view().into_shape_with_order((self.m.len() / (k1 * n), k1, n)).expect("M");
        let blocks = if d.shared { 1 } else { d.batch };
        for b in 0..blocks {
            let g = ndarray::ArrayView2::from_shape((c, n), &dwts[b * c * n..][..c * n]).expect("dwts");
            gemm_into(T::one(), g, m.index_axis(Axis(0), b).t(), T::one(), dw.view_mut());
        }
        dw.into_dyn()
    }
}

/// `y [B, C]` from `x [B, C, N]` and `w [C, k+1]`.
fn pool_forward<'t, T: Float>(pool: &Rc<Pool<T>>, x: Var<'t, T>, w: Var<'t, T>) -> Var<'t, T> {
    let d = pool.dims;
    let (xv, wv) = (x.value(), w.value());
    let y = kernels::fspool::forward(d, &contiguous(&xv), &pool.perm, &pool.wts(&wv));
    let y = ArrayD::from_shape_vec(IxDyn(&[d.batch, d.channels]), y).expect("y shape");
    x.tape().record(y, PoolOp { pool: pool.clone() }, &[x, w])
}

/// `dx [B, C, N]` from `g [B, C]` and `w [C, k+1]`.
fn pool_input_grad<'t, T: Float>(pool: &Rc<Pool<T>>, g: Var<'t, T>, w: Var<'t, T>) -> Var<'t, T> {
    let d = pool.dims;
    let (gv, wv) = (g.value(), w.value());
    let dx = kernels::fspool::input_grad(d, &contiguous(&gv), &pool.perm, &pool.wts(&wv));
    let dx = ArrayD::from_shape_vec(IxDyn(&[d.batch, d.channels, d.n]), dx).expect("dx shape");
    g.tape().record(dx, InputGradOp { pool: pool.clone() }, &[g, w])
}

/// `dW [C, k+1]` from `g [B, C]` and `x [B, C, N]`.
fn pool_weight_grad<'t, T: Float>(pool: &Rc<Pool<T>>, g: Var<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
    let (gv, xv) = (g.value(), x.value());
    let dwts = kernels::fspool::weights_grad(pool.dims, &contiguous(&gv), &contiguous(&xv), &pool.perm);
    g.tape().record(pool.w_grad(dwts), WeightGradOp { pool: pool.clone() }, &[g, x])
}

struct PoolOp<T: Float> {
    pool: Rc<Pool<T>>,
}

impl<T: Float> Op<T> for PoolOp<T> {
    fn name(&self) -> &'static str {
        "fspool"
    }
    fn backward_needed<'t>(
        &self,
        inputs: &[Var<'t, T>],
        _out: Var<'t, T>,
        g: Var<'t, T>,
        needed: &[bool],
    ) -> Vec<Option<Var<'t, T>>> {
        let (x, w) = (inputs[0], inputs[1]);
        vec![
            needed[0].then(|| pool_input_grad(&self.pool, g, w)),
            needed[1].then(|| pool_weight_grad(&self.pool, g, x)),
        ]
    }
}

struct InputGradOp<T: Float> {
    pool: Rc<Pool<T>>,
}

impl<T: Float> Op<T> for InputGradOp<T> {
    fn name(&self) -> &'static str {
        "fspool_input_grad"
    }
    fn backward_needed<'t>(
        &self,
        inputs: &[Var<'t, T>],
        _out: Var<'t, T>,
        h: Var<'t, T>,
        needed: &[bool],
    ) -> Vec<Option<Var<'t, T>>> {
        let (g, w) = (inputs[0], inputs[1]);
        vec![needed[0].then(|| pool_forward(&self.pool, h, w)), needed[1].then(|| pool_weight_grad(&self.pool, g, h))]
    }
}

struct WeightGradOp<T: Float> {
    pool: Rc<Pool<T>>,
}

impl<T: Float> Op<T> for WeightGradOp<T> {
    fn name(&self) -> &'static str {
        "fspool_weight_grad"
    }
    fn backward_needed<'t>(
        &self,
        inputs: &[Var<'t, T>],
        _out: Var<'t, T>,
        h: Var<'t, T>,
        needed: &[bool],
    ) -> Vec<Option<Var<'t, T>>> {
        let (g, x) = (inputs[0], inputs[1]);
        vec![needed[0].then(|| pool_forward(&self.pool, x, h)), needed[1].then(|| pool_input_grad(&self.pool, g, h))]
    }
}

/// FSPool composed of generic differentiable ops (the reference for the fused `fspool`): the same values,
/// permutation and gradients of every order, but about ten ops and their intermediates instead of one.
///
/// FSPool of `x [B, C, N]` with parameter `w [C, k+1]`, optionally with per-sample set sizes (`B` values, each
/// at most `N`; a size 0 gives 0). Returns the pooled `y [B, C]` and the permutation `perm [B, C, N]`:
/// `perm[b, c, j]` is the element holding the `j`-th largest value of channel `c` in sample `b` (for a padded
/// position `j >= sizes[b]`, `perm[b, c, j] = j`), so `x_sorted = x.gather(2, &perm)`. Ties keep the element
/// order. Panics on mismatched shapes or sizes, and on NaN inputs.
pub fn fspool_composite<'t, T: Float>(
    x: Var<'t, T>,
    w: Var<'t, T>,
    sizes: Option<&[usize]>,
) -> (Var<'t, T>, ArrayD<usize>) {
    let (xs, ws) = (x.shape(), w.shape());
    assert!(
        xs.len() == 3 && ws.len() == 2 && ws[0] == xs[1] && ws[1] >= 1,
        "fspool: input of shape {xs:?} and weights of shape {ws:?} are not [B, C, N] and [C, k+1]"
    );
    let (batch, channels, n) = (xs[0], xs[1], xs[2]);
    let k = ws[1] - 1;
    if let Some(s) = sizes {
        assert!(s.len() == batch && s.iter().all(|&m| m <= n), "fspool: sizes {s:?} for an input of shape {xs:?}");
    }
    let size_of = |b: usize| sizes.map_or(n, |s| s[b]);

    let value = x.value();
    let vals = value.as_slice().expect("tape values are contiguous");
    let mut perm = Array3::<usize>::zeros((batch, channels, n));
    let mut order: Vec<usize> = Vec::with_capacity(n);
    for b in 0..batch {
        let m = size_of(b);
        for c in 0..channels {
            let row = &vals[(b * channels + c) * n..][..n];
            order.clear();
            order.extend(0..m);
            order.sort_by(|&p, &q| {
                row[q].partial_cmp(&row[p]).unwrap_or_else(|| panic!("fspool: NaN in the input of shape {xs:?}"))
            });
            order.extend(m..n);
            for (j, &p) in order.iter().enumerate() {
                perm[[b, c, j]] = p;
            }
        }
    }
    let perm = perm.into_dyn();
    let sorted = x.gather(2, &perm);

    let uniform = (0..batch).all(|b| size_of(b) == n);
    let weights = if uniform {
        // One [C, N] weight matrix shared by the batch.
        w.matmul(x.constant(interpolation_matrix(k, n, n).into_dyn()))
    } else {
        // Per sample: [C, k+1] @ [B, k+1, N] -> [B, C, N].
        let mut m = Array3::zeros((batch, k + 1, n));
        for b in 0..batch {
            m.index_axis_mut(Axis(0), b).assign(&interpolation_matrix::<T>(k, size_of(b), n));
        }
        w.matmul(x.constant(m.into_dyn()))
    };
    let y = (sorted * weights).sum_axes(&[2], false);
    (y, perm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_columns_sum_to_one_and_end_at_the_last_piece() {
        for (k, size) in [(20, 16), (3, 5), (4, 3), (1, 1), (2, 2)] {
            let m = interpolation_matrix::<f64>(k, size, size + 2);
            for j in 0..size + 2 {
                let s: f64 = m.column(j).sum();
                assert!((s - if j < size { 1.0 } else { 0.0 }).abs() < 1e-12, "k {k} size {size} column {j}");
            }
            assert_eq!(m[[0, 0]], 1.0);
            if size > 1 {
                assert_eq!(m[[k, size - 1]], 1.0);
            }
        }
        // n = 1: only position 0, with W[:, 0]; the released code's mask would also admit position 1.
        let m = interpolation_matrix::<f64>(4, 1, 3);
        assert_eq!(m.column(0).to_vec(), vec![1.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(m.column(1).iter().all(|&v| v == 0.0));
    }
}
