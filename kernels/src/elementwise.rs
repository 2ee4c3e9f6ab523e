//! Element-wise maps and sums over contiguous slices: the loops every point-wise op and reduction of the engine
//! runs. Each loop is compiled three times, for AVX-512, for AVX2+FMA and for the baseline, and picked at run
//! time (`is_x86_feature_detected!`); the compiler vectorises the inlined closure for each target. Slices
//! longer than `PAR_MIN` are cut into chunks that rayon's threads take. Nothing here allocates except the
//! outputs of the `*_new` functions.

use crate::Float;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// A slice of values viewed as possibly uninitialised slots, to be written by the loops below.
fn as_uninit<T>(s: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: same layout; the loops only ever write initialised values through it.
    unsafe { &mut *(s as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// A vector of `n` values, every one written by `fill` (which must write them all): no zero-fill first.
pub(crate) fn new_with<T: Float>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: `fill` wrote all n elements (every caller passes a loop over exactly these slots).
    unsafe { v.set_len(n) };
    v
}

/// Element count above which a map runs on several threads.
pub const PAR_MIN: usize = 1 << 16;
/// Chunk length of a parallel map.
const PAR_CHUNK: usize = 1 << 14;

multiversion! {
    /// `out[i] = f(x[i])` on one thread.
    pub fn map_serial<T: Float, F: Fn(T) -> T>(x: &[T], out: &mut [MaybeUninit<T>], f: &F) {
        assert_eq!(x.len(), out.len());
        for (o, &v) in out.iter_mut().zip(x) {
            o.write(f(v));
        }
    }
}

multiversion! {
    /// `out[i] = f(a[i], b[i])` on one thread.
    pub fn zip_serial<T: Float, F: Fn(T, T) -> T>(a: &[T], b: &[T], out: &mut [MaybeUninit<T>], f: &F) {
        assert!(a.len() == out.len() && b.len() == out.len());
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            o.write(f(x, y));
        }
    }
}

multiversion! {
    /// `acc[i] += x[i]` on one thread.
    pub fn add_assign_serial<T: Float>(acc: &mut [T], x: &[T]) {
        for (a, &v) in acc.iter_mut().zip(x) {
            *a += v;
        }
    }
}

multiversion! {
    /// The sum of `x`, in 16 interleaved partial sums (so that it vectorises).
    pub fn sum_serial<T: Float>(x: &[T]) -> T {
        let mut acc = [T::zero(); 16];
        let mut chunks = x.chunks_exact(16);
        for c in &mut chunks {
            for (a, &v) in acc.iter_mut().zip(c) {
                *a += v;
            }
        }
        let mut s = T::zero();
        for &v in chunks.remainder() {
            s += v;
        }
        // Pairwise combination of the partial sums.
        let mut w = 8;
        while w > 0 {
            for i in 0..w {
                acc[i] += acc[i + w];
            }
            w /= 2;
        }
        acc[0] + s
    }
}

/// `out[i] = f(x[i])`, in parallel for long slices.
pub fn map<T: Float, F: Fn(T) -> T + Sync>(x: &[T], out: &mut [T], f: F) {
    map_into(x, as_uninit(out), f)
}

/// `map` into uninitialised slots.
fn map_into<T: Float, F: Fn(T) -> T + Sync>(x: &[T], out: &mut [MaybeUninit<T>], f: F) {
    assert_eq!(x.len(), out.len(), "map: input of length {} into output of length {}", x.len(), out.len());
    if x.len() < PAR_MIN || rayon::current_num_threads() == 1 {
        map_serial(x, out, &f);
    } else {
        out.par_chunks_mut(PAR_CHUNK).zip(x.par_chunks(PAR_CHUNK)).for_each(|(o, x)| map_serial(x, o, &f));
    }
}

/// `f` applied to every element of `x`, as a new vector.
pub fn map_new<T: Float, F: Fn(T) -> T + Sync>(x: &[T], f: F) -> Vec<T> {
    new_with(x.len(), |out| map_into(x, out, f))
}

/// `out[i] = f(a[i], b[i])`, in parallel for long slices.
pub fn zip_map<T: Float, F: Fn(T, T) -> T + Sync>(a: &[T], b: &[T], out: &mut [T], f: F) {
    zip_into(a, b, as_uninit(out), f)
}

/// `f(a[i], b[i])` as a new vector.
pub fn zip_new<T: Float, F: Fn(T, T) -> T + Sync>(a: &[T], b: &[T], f: F) -> Vec<T> {
    new_with(a.len(), |out| zip_into(a, b, out, f))
}

/// `zip_map` into uninitialised slots.
fn zip_into<T: Float, F: Fn(T, T) -> T + Sync>(a: &[T], b: &[T], out: &mut [MaybeUninit<T>], f: F) {
    assert!(a.len() == b.len() && a.len() == out.len(), "zip_map: lengths {}, {}, {}", a.len(), b.len(), out.len());
    if a.len() < PAR_MIN || rayon::current_num_threads() == 1 {
        zip_serial(a, b, out, &f);
    } else {
        out.par_chunks_mut(PAR_CHUNK)
            .zip(a.par_chunks(PAR_CHUNK).zip(b.par_chunks(PAR_CHUNK)))
            .for_each(|(o, (a, b))| zip_serial(a, b, o, &f));
    }
}

/// A binary op between `a` (`outer x inner`, row-major) and `b`, one value per row (`col` true: row `r` takes
/// `b[r % b.len()]`, so `b` has `outer` values or repeats with a period dividing `outer`, as a per-channel
/// value against `[N, C, H, W]` does) or one row repeated (`col` false, `b` has `inner` values). `b_first` swaps the arguments
/// of `f`, so that `f(b, a)` is computed instead.
pub fn broadcast_map<T: Float, F: Fn(T, T) -> T + Sync>(
    a: &[T],
    b: &[T],
    out: &mut [T],
    inner: usize,
    col: bool,
    b_first: bool,
    f: F,
) {
    broadcast_into(a, b, as_uninit(out), inner, col, b_first, f)
}

/// `broadcast_map` as a new vector.
pub fn broadcast_new<T: Float, F: Fn(T, T) -> T + Sync>(
    a: &[T],
    b: &[T],
    inner: usize,
    col: bool,
    b_first: bool,
    f: F,
) -> Vec<T> {
    new_with(a.len(), |out| broadcast_into(a, b, out, inner, col, b_first, f))
}

/// `broadcast_map` into uninitialised slots.
fn broadcast_into<T: Float, F: Fn(T, T) -> T + Sync>(
    a: &[T],
    b: &[T],
    out: &mut [MaybeUninit<T>],
    inner: usize,
    col: bool,
    b_first: bool,
    f: F,
) {
    assert!(
        inner > 0 && a.len() == out.len() && a.len().is_multiple_of(inner),
        "broadcast_map: lengths {} {inner}",
        a.len()
    );
    let rows = a.len() / inner;
    assert!(
        if col { !b.is_empty() && rows.is_multiple_of(b.len()) } else { b.len() == inner },
        "broadcast_map: {} values of b against {rows} rows of {inner}",
        b.len()
    );
    let period = b.len();
    let rows_per_task = (PAR_MIN / inner).max(1);
    let body = |(r0, (o, x)): (usize, (&mut [MaybeUninit<T>], &[T]))| {
        for (r, (o, x)) in o.chunks_mut(inner).zip(x.chunks(inner)).enumerate() {
            match (col, b_first) {
                (true, false) => {
                    let s = b[(r0 + r) % period];
                    map_serial(x, o, &|v| f(v, s));
                }
                (true, true) => {
                    let s = b[(r0 + r) % period];
                    map_serial(x, o, &|v| f(s, v));
                }
                (false, false) => zip_serial(x, b, o, &f),
                (false, true) => zip_serial(b, x, o, &f),
            }
        }
    };
    let task = rows_per_task * inner;
    if a.len() < PAR_MIN || rayon::current_num_threads() == 1 {
        body((0, (out, a)));
    } else {
        out.par_chunks_mut(task)
            .zip(a.par_chunks(task))
            .enumerate()
            .for_each(|(t, chunk)| body((t * rows_per_task, chunk)));
    }
}

/// The sum of all elements (in parallel for long slices).
pub fn sum<T: Float>(x: &[T]) -> T {
    if x.len() < PAR_MIN || rayon::current_num_threads() == 1 {
        sum_serial(x)
    } else {
        x.par_chunks(PAR_CHUNK).map(sum_serial).collect::<Vec<_>>().into_iter().fold(T::zero(), |a, b| a + b)
    }
}

/// Sum over the middle axis of a row-major `[outer, mid, inner]` tensor: `out[o, i] = sum_r x[o, r, i]`.
pub fn sum_middle<T: Float>(x: &[T], outer: usize, mid: usize, inner: usize) -> Vec<T> {
    assert_eq!(x.len(), outer * mid * inner, "sum_middle: {} elements for [{outer}, {mid}, {inner}]", x.len());
    let mut out = vec![T::zero(); outer * inner];
    if outer * inner == 0 {
        return out;
    }
    let parallel = x.len() >= PAR_MIN && rayon::current_num_threads() > 1;
    if inner == 1 {
        // Row sums.
        let row = |(o, s): (&mut T, &[T])| *o = sum_serial(s);
        if parallel && outer > 1 {
            out.par_iter_mut().zip(x.par_chunks(mid.max(1))).for_each(row);
        } else if mid > 0 {
            out.iter_mut().zip(x.chunks(mid)).for_each(row);
        }
        return out;
    }
    let block = mid * inner;
    let plane = |(o, s): (&mut [T], &[T])| {
        for r in s.chunks(inner) {
            add_assign_serial(o, r);
        }
    };
    if parallel && outer > 1 {
        out.par_chunks_mut(inner).zip(x.par_chunks(block.max(1))).for_each(plane);
    } else if parallel {
        // One outer slice: split the columns, each thread summing all rows of its columns.
        let cols = (PAR_CHUNK / mid.max(1)).clamp(16, inner);
        out.par_chunks_mut(cols).enumerate().for_each(|(c, o)| {
            for r in 0..mid {
                add_assign_serial(o, &x[r * inner + c * cols..][..o.len()]);
            }
        });
    } else if block > 0 {
        out.chunks_mut(inner).zip(x.chunks(block)).for_each(plane);
    }
    out
}

/// Repeat along a new middle axis: `[outer, inner]` to `[outer, mid, inner]` (row-major).
pub fn repeat_middle<T: Float>(x: &[T], outer: usize, mid: usize, inner: usize) -> Vec<T> {
    assert_eq!(x.len(), outer * inner, "repeat_middle: {} elements for [{outer}, {inner}]", x.len());
    let total = outer * mid * inner;
    let block = (mid * inner).max(1);
    let fill = |(o, s): (&mut [MaybeUninit<T>], &[T])| {
        for r in o.chunks_mut(inner.max(1)) {
            for (d, &v) in r.iter_mut().zip(s) {
                d.write(v);
            }
        }
    };
    new_with(total, |out| {
        if total >= PAR_MIN && outer > 1 && rayon::current_num_threads() > 1 {
            out.par_chunks_mut(block).zip(x.par_chunks(inner.max(1))).for_each(fill);
        } else if total > 0 {
            out.chunks_mut(block).zip(x.chunks(inner.max(1))).for_each(fill);
        }
    })
}

/// Sum a row-major tensor of `shape` over `axes` (sorted, distinct): each run of adjacent reduced axes is one
/// `sum_middle` pass. Returns the values in the order of the kept axes.
pub fn sum_axes<T: Float>(x: &[T], shape: &[usize], axes: &[usize]) -> Vec<T> {
    let mut cur = shape.to_vec();
    let mut data: Option<Vec<T>> = None;
    let mut end = axes.len();
    // Runs from the last one, so that the axes of earlier runs keep their positions.
    while end > 0 {
        let mut start = end - 1;
        while start > 0 && axes[start - 1] + 1 == axes[start] {
            start -= 1;
        }
        let (lo, hi) = (axes[start], axes[end - 1] + 1);
        let outer: usize = cur[..lo].iter().product();
        let mid: usize = cur[lo..hi].iter().product();
        let inner: usize = cur[hi..].iter().product();
        let src = data.as_deref().unwrap_or(x);
        data = Some(sum_middle(src, outer, mid, inner));
        cur.drain(lo..hi);
        end = start;
    }
    data.unwrap_or_else(|| x.to_vec())
}

/// Broadcast a row-major tensor of `shape` (already of `target`'s rank) to `target`, repeating along the
/// axes where `shape` has 1 and `target` does not.
pub fn broadcast<T: Float>(x: &[T], shape: &[usize], target: &[usize]) -> Vec<T> {
    assert_eq!(shape.len(), target.len(), "broadcast: shapes {shape:?} and {target:?} differ in rank");
    let mut cur = shape.to_vec();
    let mut data: Option<Vec<T>> = None;
    let mut a = 0;
    while a < cur.len() {
        if cur[a] == target[a] {
            a += 1;
            continue;
        }
        assert_eq!(cur[a], 1, "broadcast: cannot broadcast {shape:?} to {target:?}");
        let mut b = a + 1;
        while b < cur.len() && cur[b] == 1 && target[b] != 1 {
            b += 1;
        }
        let outer: usize = cur[..a].iter().product();
        let mid: usize = target[a..b].iter().product();
        let inner: usize = cur[b..].iter().product();
        let src = data.as_deref().unwrap_or(x);
        data = Some(repeat_middle(src, outer, mid, inner));
        cur[a..b].copy_from_slice(&target[a..b]);
        a = b;
    }
    data.unwrap_or_else(|| x.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect()
    }

    #[test]
    fn maps_and_sums_match_scalar_loops_on_short_long_and_odd_lengths() {
        for n in [0, 1, 15, 16, 17, 1000, PAR_MIN + 333] {
            let (a, b) = (data(n), data(n + 5)[5..].to_vec());
            let mut out = vec![0.0; n];
            map(&a, &mut out, |v| v.max(0.0) * 2.0);
            assert!(out.iter().zip(&a).all(|(o, v)| *o == v.max(0.0) * 2.0));
            zip_map(&a, &b, &mut out, |x, y| x * y - x);
            assert!(out.iter().zip(a.iter().zip(&b)).all(|(o, (x, y))| *o == x * y - x));
            let want: f64 = a.iter().map(|&v| v as f64).sum();
            assert!((sum(&a) as f64 - want).abs() < 1e-3, "n {n}");
        }
    }

    #[test]
    fn broadcast_rows_and_columns_either_side() {
        for (outer, inner) in [(1, 1), (3, 5), (1, 40), (PAR_MIN / 7 + 3, 9), (5, PAR_MIN + 1)] {
            let a = data(outer * inner);
            let rowv = data(inner + 3)[3..].to_vec();
            let colv = data(outer + 1)[1..].to_vec();
            let mut out = vec![0.0; a.len()];
            for b_first in [false, true] {
                broadcast_map(&a, &rowv, &mut out, inner, false, b_first, |x, y| x - 2.0 * y);
                for (i, o) in out.iter().enumerate() {
                    let (x, y) = (a[i], rowv[i % inner]);
                    assert_eq!(*o, if b_first { y - 2.0 * x } else { x - 2.0 * y });
                }
                broadcast_map(&a, &colv, &mut out, inner, true, b_first, |x, y| x - 2.0 * y);
                for (i, o) in out.iter().enumerate() {
                    let (x, y) = (a[i], colv[i / inner]);
                    assert_eq!(*o, if b_first { y - 2.0 * x } else { x - 2.0 * y });
                }
                // A column whose values repeat with a period dividing the row count (per-channel values).
                let period = (1..=outer).rev().find(|p| outer % p == 0 && *p < outer).unwrap_or(1);
                let periodic = colv[..period].to_vec();
                broadcast_map(&a, &periodic, &mut out, inner, true, b_first, |x, y| x - 2.0 * y);
                for (i, o) in out.iter().enumerate() {
                    let (x, y) = (a[i], periodic[(i / inner) % period]);
                    assert_eq!(*o, if b_first { y - 2.0 * x } else { x - 2.0 * y });
                }
            }
        }
    }

    #[test]
    fn middle_sums_and_repeats_match_index_loops() {
        for (o, m, i) in
            [(2, 3, 4), (1, 7, 1), (5, 1, 3), (1, 300, 700), (300, 700, 1), (0, 3, 2), (3, 0, 2), (40, 50, 60)]
        {
            let x = data(o * m * i);
            let s = sum_middle(&x, o, m, i);
            for oo in 0..o {
                for ii in 0..i {
                    let want: f64 = (0..m).map(|r| x[(oo * m + r) * i + ii] as f64).sum();
                    assert!((s[oo * i + ii] as f64 - want).abs() < 1e-3, "[{o}, {m}, {i}]");
                }
            }
            let y = data(o * i);
            let r = repeat_middle(&y, o, m, i);
            assert_eq!(r.len(), o * m * i);
            for (p, v) in r.iter().enumerate() {
                assert_eq!(*v, y[p / (m * i) * i + p % i]);
            }
        }
    }

    #[test]
    fn sums_over_axis_sets_and_broadcasts_match_ndarray() {
        use ndarray::{ArrayD, Axis, IxDyn};
        let shape = [3usize, 4, 5, 6];
        let x = ArrayD::from_shape_vec(IxDyn(&shape), data(360)).unwrap();
        for axes in [vec![], vec![0], vec![3], vec![1, 2], vec![0, 2], vec![0, 1, 3], vec![0, 1, 2, 3], vec![0, 3]] {
            let got = sum_axes(x.as_slice().unwrap(), &shape, &axes);
            let mut want = x.clone();
            for &a in axes.iter().rev() {
                want = want.sum_axis(Axis(a));
            }
            assert_eq!(got.len(), want.len());
            assert!(got.iter().zip(want.iter()).all(|(g, w)| (g - w).abs() < 1e-4), "axes {axes:?}");
        }
        for small in [vec![1usize, 4, 1, 6], vec![3, 1, 1, 1], vec![1, 1, 1, 1], vec![1, 4, 5, 1], vec![3, 4, 5, 6]] {
            let n: usize = small.iter().product();
            let y = ArrayD::from_shape_vec(IxDyn(&small), data(n)).unwrap();
            let got = broadcast(y.as_slice().unwrap(), &small, &shape);
            let want = y.broadcast(IxDyn(&shape)).unwrap();
            assert!(got.iter().zip(want.iter()).all(|(g, w)| g == w), "{small:?}");
        }
    }
}
