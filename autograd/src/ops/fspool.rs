//! FSPool, featurewise sort pooling (Zhang, Hare, Prügel-Bennett, ICLR 2020).
//!
//! For an input `x [B, C, N]` (a batch of sets of `N` elements with `C` channels) and a parameter `W [C, k+1]`,
//! every channel is sorted independently across the set elements in descending order, and the sorted values
//! are summed with weights from a piecewise-linear function of the relative position: for position `j` of a
//! set of `n` elements, `r_j = j / max(n - 1, 1)`, `idx = floor(k r_j)`, `frac = k r_j - idx` and
//! `w_j = (1 - frac) W[:, idx] + frac W[:, min(idx + 1, k)]`; the output is `y [B, C] = Σ_j w_j x_sorted_j`.
//!
//! It is composed of differentiable ops: the sort permutation is a constant index (`gather`), the weights are
//! `W` times a constant interpolation matrix (`matmul`), then a product and a sum. So gradients of any order
//! flow into both `x` and `W`, with the permutation held fixed (as the sort is locally constant away from ties).
//!
//! Variable set sizes: with `sizes`, sample `b` is the set of its first `sizes[b]` elements. Padded positions
//! take no part in the sort, get weight zero (so they do not change the output and receive zero gradient) and
//! keep their own place in the returned permutation. Padded values must be finite (they are multiplied by 0).

use crate::Var;
use kernels::Float;
use ndarray::{Array2, Array3, ArrayD, Axis};

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

/// FSPool of `x [B, C, N]` with parameter `w [C, k+1]`, optionally with per-sample set sizes (`B` values, each
/// at most `N`; a size 0 gives 0). Returns the pooled `y [B, C]` and the permutation `perm [B, C, N]`:
/// `perm[b, c, j]` is the element holding the `j`-th largest value of channel `c` in sample `b` (for a padded
/// position `j >= sizes[b]`, `perm[b, c, j] = j`), so `x_sorted = x.gather(2, &perm)`. Ties keep the element
/// order. Panics on mismatched shapes or sizes, and on NaN inputs.
pub fn fspool<'t, T: Float>(x: Var<'t, T>, w: Var<'t, T>, sizes: Option<&[usize]>) -> (Var<'t, T>, ArrayD<usize>) {
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
