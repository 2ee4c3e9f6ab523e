//! FSPool kernels: the per-channel descending sort of small sets and the three bilinear maps of the pooling
//! (forward, input gradient, weight gradient), each a single pass over `[B, C, N]` with the weights of every
//! sorted position precomputed.
//!
//! With `wts [C, N]` (one weight row per channel, shared by the batch) or `[B, C, N]` (per sample, for
//! variable set sizes) and `perm [B, C, N]` (`perm[b, c, j]` = the element in sorted position `j`), the pooling
//! is `y[b, c] = sum_j wts[c, j] x[b, c, perm[b, c, j]]`. It is a trilinear form in `(g, wts, x)`: the input
//! gradient scatters `g[b, c] wts[c, j]` to `perm[b, c, j]`, and the weight gradient gathers `g[b, c]
//! x[b, c, perm[b, c, j]]`.

use crate::Float;
use rayon::prelude::*;

/// Sets at most this long are ranked by counting (branch-free, vectorisable); longer ones are sorted.
const RANK_MAX: usize = 64;
/// Rows of `[B, C]` above which the kernels run on several threads.
const PAR_ROWS: usize = 2048;

fn par_rows(rows: usize) -> bool {
    rows >= PAR_ROWS && rayon::current_num_threads() > 1
}

/// The descending order of each row of `x [rows, n]`: `perm[r, j]` = index of the `j`-th largest of the first
/// `sizes(r)` elements of row `r` (ties keep the element order); positions `j >= sizes(r)` hold `j`.
/// Panics on a NaN among the sorted elements.
pub fn sort_desc<T: Float>(x: &[T], n: usize, size_of: impl Fn(usize) -> usize + Sync) -> Vec<usize> {
    assert!(n > 0 && x.len().is_multiple_of(n), "sort_desc: {} values in rows of {n}", x.len());
    let mut perm = vec![0usize; x.len()];
    let rank_row = |(r, (row, out)): (usize, (&[T], &mut [usize]))| {
        let m = size_of(r);
        let row = &row[..m];
        assert!(row.iter().all(|v| !v.is_nan()), "fspool: NaN in the input");
        if m <= 16 && rank16_f32(row, out) {
            // done by the AVX-512 or AVX2 ranking
        } else if m <= RANK_MAX {
            rank_small(row, out);
        } else {
            let mut order: Vec<usize> = (0..m).collect();
            order.sort_by(|&p, &q| row[q].partial_cmp(&row[p]).expect("no NaN"));
            out[..m].copy_from_slice(&order);
        }
        for (j, o) in out.iter_mut().enumerate().skip(m) {
            *o = j;
        }
    };
    let rows = x.len() / n;
    if par_rows(rows) {
        x.par_chunks(n).zip(perm.par_chunks_mut(n)).enumerate().for_each(rank_row);
    } else {
        x.chunks(n).zip(perm.chunks_mut(n)).enumerate().for_each(rank_row);
    }
    perm
}

/// `rank_small` for f32 rows of at most 16 elements with AVX-512 or AVX2: the row in one or two registers, each
/// rank one compare pair and a popcount. Returns false (doing nothing) when `T` is not f32 or the level is the
/// portable one.
fn rank16_f32<T: Float>(row: &[T], out: &mut [usize]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
            // SAFETY: T is f32, so the slice is a slice of f32.
            let row32 = unsafe { std::slice::from_raw_parts(row.as_ptr() as *const f32, row.len()) };
            // The level, not merely the CPU's features: `SRN_ISA` may ask for less.
            match crate::level() {
                // SAFETY: the CPU has the level's features (AVX-512F or AVX2, and POPCNT); row has at most 16
                // elements.
                crate::Level::Avx512 => unsafe { rank16_avx512(row32, out) },
                crate::Level::Avx2 => unsafe { rank16_avx2(row32, out) },
                crate::Level::Scalar => return false,
            }
            return true;
        }
    }
    let _ = (row, out);
    false
}

/// [`rank16_avx512`] in two 8-lane halves: the compare results become bit masks by `movemask`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn rank16_avx2(row: &[f32], out: &mut [usize]) {
    use std::arch::x86_64::*;
    let m = row.len();
    debug_assert!(m <= 16);
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let first = |n: usize| _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes);
    // Lanes past the row load as zero; `valid` drops their compare bits.
    let lo = _mm256_maskload_ps(row.as_ptr(), first(m.min(8)));
    let hi = if m > 8 { _mm256_maskload_ps(row.as_ptr().add(8), first(m - 8)) } else { _mm256_setzero_ps() };
    let valid = (1u32 << m) - 1;
    let bits =
        |c_lo: __m256, c_hi: __m256| (_mm256_movemask_ps(c_lo) as u32 | (_mm256_movemask_ps(c_hi) as u32) << 8) & valid;
    for (i, &xi) in row.iter().enumerate() {
        let v = _mm256_set1_ps(xi);
        let greater = bits(_mm256_cmp_ps::<_CMP_GT_OQ>(lo, v), _mm256_cmp_ps::<_CMP_GT_OQ>(hi, v));
        let equal_before =
            bits(_mm256_cmp_ps::<_CMP_EQ_OQ>(lo, v), _mm256_cmp_ps::<_CMP_EQ_OQ>(hi, v)) & ((1u32 << i) - 1);
        out[(greater | equal_before).count_ones() as usize] = i;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,popcnt")]
unsafe fn rank16_avx512(row: &[f32], out: &mut [usize]) {
    use std::arch::x86_64::*;
    let m = row.len();
    debug_assert!(m <= 16);
    let valid = ((1u32 << m) - 1) as u16;
    let x = _mm512_maskz_loadu_ps(valid, row.as_ptr());
    for (i, &xi) in row.iter().enumerate() {
        let v = _mm512_set1_ps(xi);
        let greater = _mm512_mask_cmp_ps_mask(valid, x, v, _CMP_GT_OQ);
        let equal_before = _mm512_mask_cmp_ps_mask(valid, x, v, _CMP_EQ_OQ) & (((1u32 << i) - 1) as u16);
        out[(greater | equal_before).count_ones() as usize] = i;
    }
}

multiversion! {
    /// `out[rank(i)] = i` with `rank(i) = #{j : x_j > x_i or (x_j == x_i and j < i)}` (a permutation of
    /// `0..m`): one fixed-length, branch-free pass over the row per element, which vectorises.
    fn rank_small<T: Float>(row: &[T], out: &mut [usize]) {
        for (i, &xi) in row.iter().enumerate() {
            let mut rank = 0u32;
            for (j, &xj) in row.iter().enumerate() {
                rank += u32::from(xj > xi) + u32::from(xj == xi && j < i);
            }
            out[rank as usize] = i;
        }
    }
}

/// The shapes of one pooling: `batch x channels` sets of `n` positions; `wts` is `[C, N]` when `shared`, else
/// `[B, C, N]`.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub batch: usize,
    pub channels: usize,
    pub n: usize,
    pub shared: bool,
}

impl Dims {
    /// The weight row of row `r` (= `b * C + c`) of `[B, C]`.
    fn wts_row<'a, T>(&self, wts: &'a [T], r: usize) -> &'a [T] {
        let row = if self.shared { r % self.channels } else { r };
        &wts[row * self.n..][..self.n]
    }
}

/// `y[b, c] = sum_j wts[c, j] x[b, c, perm[b, c, j]]`.
pub fn forward<T: Float>(d: Dims, x: &[T], perm: &[usize], wts: &[T]) -> Vec<T> {
    let n = d.n;
    let mut y = vec![T::zero(); d.batch * d.channels];
    let row = |(r, y): (usize, &mut T)| {
        let (xr, pr, wr) = (&x[r * n..][..n], &perm[r * n..][..n], d.wts_row(wts, r));
        *y = pr.iter().zip(wr).fold(T::zero(), |acc, (&p, &w)| acc + w * xr[p]);
    };
    if par_rows(y.len()) {
        y.par_iter_mut().enumerate().for_each(row);
    } else {
        y.iter_mut().enumerate().for_each(row);
    }
    y
}

/// The input gradient: `dx[b, c, perm[b, c, j]] = g[b, c] wts[c, j]`.
pub fn input_grad<T: Float>(d: Dims, g: &[T], perm: &[usize], wts: &[T]) -> Vec<T> {
    let n = d.n;
    let mut dx = vec![T::zero(); d.batch * d.channels * n];
    let row = |(r, out): (usize, &mut [T])| {
        let (pr, wr, gr) = (&perm[r * n..][..n], d.wts_row(wts, r), g[r]);
        for (&p, &w) in pr.iter().zip(wr) {
            out[p] = gr * w;
        }
    };
    if par_rows(d.batch * d.channels) {
        dx.par_chunks_mut(n).enumerate().for_each(row);
    } else {
        dx.chunks_mut(n).enumerate().for_each(row);
    }
    dx
}

/// The gradient of the per-position weights: `dwts[c, j] = sum_b g[b, c] x[b, c, perm[b, c, j]]` (`[C, N]`)
/// when shared, else `dwts[b, c, j] = g[b, c] x[b, c, perm[b, c, j]]` (`[B, C, N]`).
pub fn weights_grad<T: Float>(d: Dims, g: &[T], x: &[T], perm: &[usize]) -> Vec<T> {
    let (n, c) = (d.n, d.channels);
    let sorted_scaled = |r: usize, out: &mut [T], add: bool| {
        let (xr, pr, gr) = (&x[r * n..][..n], &perm[r * n..][..n], g[r]);
        for (o, &p) in out.iter_mut().zip(pr) {
            *o = if add { *o + gr * xr[p] } else { gr * xr[p] };
        }
    };
    if !d.shared {
        let mut out = vec![T::zero(); d.batch * c * n];
        out.chunks_mut(n).enumerate().for_each(|(r, o)| sorted_scaled(r, o, false));
        return out;
    }
    // Shared weights: channels are independent, so split them across threads, each summing over the batch.
    let mut out = vec![T::zero(); c * n];
    let channel = |(ci, o): (usize, &mut [T])| {
        for b in 0..d.batch {
            sorted_scaled(b * c + ci, o, true);
        }
    };
    if par_rows(d.batch * c) {
        out.par_chunks_mut(n).enumerate().for_each(channel);
    } else {
        out.chunks_mut(n).enumerate().for_each(channel);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, modulus: usize) -> Vec<f64> {
        (0..len).map(|i| ((i * 37 + 11) % modulus) as f64 - (modulus / 2) as f64).collect()
    }

    #[test]
    fn ranks_match_a_stable_descending_sort_with_ties_sizes_and_long_rows() {
        for (n, modulus) in [(16, 7), (25, 101), (1, 3), (70, 13), (5, 2)] {
            let rows = 3000;
            let x = data(rows * n, modulus);
            let size_of = |r: usize| if r.is_multiple_of(3) { n } else { r % (n + 1) };
            let perm = sort_desc(&x, n, size_of);
            for r in 0..rows {
                let row = &x[r * n..][..n];
                let m = size_of(r);
                let mut want: Vec<usize> = (0..m).collect();
                want.sort_by(|&p, &q| row[q].partial_cmp(&row[p]).unwrap());
                want.extend(m..n);
                assert_eq!(&perm[r * n..][..n], &want[..], "n {n} row {r}");
            }
        }
    }

    #[test]
    fn f32_ranks_match_the_generic_ranks() {
        for (n, modulus) in [(16, 5), (16, 1000), (7, 3), (1, 2), (20, 9)] {
            let x64 = data(500 * n, modulus);
            let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
            let size_of = |r: usize| r % (n + 1);
            assert_eq!(sort_desc(&x32, n, size_of), sort_desc(&x64, n, size_of), "n {n}");
        }
    }

    #[test]
    fn the_three_maps_are_adjoint_and_match_direct_sums() {
        for shared in [true, false] {
            let (batch, channels, n) = (70, 40, 16);
            let d = Dims { batch, channels, n, shared };
            let x = data(batch * channels * n, 97);
            let perm = sort_desc(&x, n, |_| n);
            let wts = data(if shared { channels * n } else { batch * channels * n }, 13);
            let g = data(batch * channels, 17);
            let y = forward(d, &x, &perm, &wts);
            for r in [0, 5, batch * channels - 1] {
                let w = d.wts_row(&wts, r);
                let mut sorted: Vec<f64> = x[r * n..][..n].to_vec();
                sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
                let want: f64 = sorted.iter().zip(w).map(|(a, b)| a * b).sum();
                assert!((y[r] - want).abs() < 1e-9);
            }
            // <g, forward(x)> = <input_grad(g), x> = <weights_grad(g, x), wts>.
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
            let t = dot(&g, &y);
            assert!((t - dot(&input_grad(d, &g, &perm, &wts), &x)).abs() < 1e-6 * t.abs().max(1.0));
            assert!((t - dot(&weights_grad(d, &g, &x, &perm), &wts)).abs() < 1e-6 * t.abs().max(1.0));
        }
    }
}
