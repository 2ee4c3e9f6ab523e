//! Unfolding images into the columns of a convolution's product (im2col) and folding columns back (col2im,
//! its adjoint).

use super::products::refill;
use super::{ConvGeom, COLS_BUDGET};
use crate::Float;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The geometry of one unfolding: an image of `c` channels and `h x w` pixels, a `k` kernel, an `out` output
/// grid (possibly a leading part of the full grid), and the convolution's stride, padding and dilation.
#[derive(Clone, Copy)]
pub(super) struct Unfold {
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) k: [usize; 2],
    pub(super) out: [usize; 2],
    pub(super) g: ConvGeom,
}

impl Unfold {
    pub(super) fn rows(&self) -> usize {
        self.c * self.k[0] * self.k[1]
    }
    pub(super) fn positions(&self) -> usize {
        self.out[0] * self.out[1]
    }
    pub(super) fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }
    /// How many images to unfold at once.
    pub(super) fn chunk(&self, batch: usize) -> usize {
        (COLS_BUDGET / (self.rows() * self.positions()).max(1)).clamp(1, batch.max(1))
    }

    /// The output indices `lo..hi` along axis `a` whose input index at kernel offset `kk` is inside the image
    /// (the rest read the zero padding).
    pub(super) fn valid(&self, a: usize, kk: usize) -> (usize, usize) {
        let (n, o) = if a == 0 { (self.h, self.out[0]) } else { (self.w, self.out[1]) };
        let (s, off, p) = (self.g.stride[a], kk * self.g.dilation[a], self.g.padding[a]);
        // i = o*s + off - p must satisfy 0 <= i < n.
        let lo = if p > off { (p - off).div_ceil(s) } else { 0 };
        let hi = if n + p > off { (n + p - off).div_ceil(s) } else { 0 };
        (lo.min(o), hi.min(o).max(lo.min(o)))
    }

    /// Values per phase run of a row split by column phase (see `split_phases`), and the split row's length.
    fn runs(&self) -> (usize, usize) {
        let s1 = self.g.stride[1];
        let wq = self.w.div_ceil(s1);
        (wq, s1 * wq)
    }

    /// Where in a split row (see `split_phases`) the input column `col` lies: the columns `col, col + s1, ..`
    /// that one kernel column reads follow it contiguously.
    fn split_offset(&self, col: usize) -> usize {
        let s1 = self.g.stride[1];
        (col % s1) * self.runs().0 + col / s1
    }

    /// The rows `oi_lo..oi_hi` and the columns `oj_lo..oj_hi` of the output grid whose receptive field at kernel
    /// offset `(ki, kj)` is inside the image, and where the first of them reads a split row (see `split_phases`).
    fn window(&self, ki: usize, kj: usize) -> Window {
        let ((oi_lo, oi_hi), (oj_lo, oj_hi)) = (self.valid(0, ki), self.valid(1, kj));
        let empty = oi_lo >= oi_hi || oj_lo >= oj_hi;
        let col = if empty { 0 } else { oj_lo * self.g.stride[1] + kj * self.g.dilation[1] - self.g.padding[1] };
        let row = |oi: usize| oi * self.g.stride[0] + ki * self.g.dilation[0] - self.g.padding[0];
        Window {
            oi: (oi_lo, oi_hi),
            oj: (oj_lo, oj_hi),
            first_row: if empty { 0 } else { row(oi_lo) },
            row_step: self.g.stride[0],
            col_offset: self.split_offset(col),
        }
    }

    /// The window of every kernel offset `ki * kw + kj`.
    fn windows(&self) -> Vec<Window> {
        (0..self.k[0] * self.k[1]).map(|r| self.window(r / self.k[1], r % self.k[1])).collect()
    }

    /// The `n` images (`xs`, `[n, c, h, w]` contiguous) with every row split by column phase: row `ii` of a
    /// plane becomes `s1` runs of `wq = ceil(w / s1)` values, run `r` holding columns `r, r + s1, ..` (zero past
    /// the row's end). With a column stride, a kernel column then reads a contiguous run instead of every
    /// `s1`-th value.
    fn split_phases<T: Float>(&self, xs: &[T], n: usize) -> Vec<T> {
        let (hw, split_plane) = (self.h * self.w, self.h * self.runs().1);
        crate::elementwise::new_with(n * self.c * split_plane, |out| {
            out.par_chunks_mut(split_plane.max(1))
                .zip(xs.par_chunks(hw.max(1)))
                .for_each(|(dst, src)| split_plane_rows(self, src, dst));
        })
    }

    /// Unfold `n` images (`xs`, `[n, c, h, w]` contiguous) into columns `[c*kh*kw, n*oh*ow]`: column
    /// `i*P + (oi*ow + oj)` holds image `i`'s receptive field of output `(oi, oj)`, zero on the padding.
    /// Rows are filled in parallel; each output row is a contiguous copy over the valid range (rows of the
    /// input split by column phase first when the column stride is above 1), with only the padding written as
    /// zeros.
    pub(super) fn im2col<T: Float>(&self, xs: &[T], n: usize) -> Array2<T> {
        let p = self.positions();
        let split;
        let src = if self.g.stride[1] > 1 {
            split = self.split_phases(xs, n);
            &split[..]
        } else {
            xs
        };
        let wins = self.windows();
        // Every entry is written (values or the padding's zeros): no zero-fill first.
        let data = crate::elementwise::new_with(self.rows() * n * p, |data| {
            data.par_chunks_mut((n * p).max(1))
                .enumerate()
                .for_each(|(row, dst)| im2col_row(self, &wins, src, row, n, dst));
        });
        Array2::from_shape_vec((self.rows(), n * p), data).expect("columns shape")
    }

    /// Fold columns `[c*kh*kw, n*oh*ow]` back into `n` images (`out`, `[n, c, h, w]`, every slot written),
    /// adding overlapping entries and dropping those on the padding: the adjoint of `im2col`. Planes are filled
    /// in parallel.
    pub(super) fn col2im<T: Float>(&self, cols: ArrayView2<T>, n: usize, out: &mut [MaybeUninit<T>]) {
        let cols = cols.as_standard_layout();
        let cs = cols.as_slice().expect("contiguous columns");
        let wins = self.windows();
        out.par_chunks_mut((self.h * self.w).max(1)).enumerate().for_each_init(Vec::new, |acc, (index, plane)| {
            fold_plane(self, &wins, cs, n, index, plane, acc);
        });
    }

    /// `im2col` of one image (`x`, `[c, h, w]`) into `cols` (`[c*kh*kw, oh*ow]`, refilled) on the calling
    /// thread; `split` holds the split rows when the column stride is above 1.
    pub(super) fn im2col_image<T: Float>(&self, x: &[T], cols: &mut Vec<T>, split: &mut Vec<T>) {
        let src = if self.g.stride[1] > 1 {
            refill(split, self.c * self.h * self.runs().1, |dst| {
                for (d, s) in dst.chunks_mut((self.h * self.runs().1).max(1)).zip(x.chunks((self.h * self.w).max(1))) {
                    split_plane_rows(self, s, d);
                }
            });
            &split[..]
        } else {
            x
        };
        let (p, wins) = (self.positions(), self.windows());
        refill(cols, self.rows() * p, |dst| {
            for (row, d) in dst.chunks_mut(p.max(1)).enumerate() {
                im2col_row(self, &wins, src, row, 1, d);
            }
        });
    }

    /// `col2im` of one image's columns (`cols`, `[c*kh*kw, oh*ow]` contiguous) into `out` (`[c, h, w]`, every
    /// slot written) on the calling thread; `acc` is scratch.
    pub(super) fn col2im_image<T: Float>(&self, cols: &[T], out: &mut [MaybeUninit<T>], acc: &mut Vec<T>) {
        let wins = self.windows();
        for (ci, plane) in out.chunks_mut((self.h * self.w).max(1)).enumerate() {
            fold_plane(self, &wins, cols, 1, ci, plane, acc);
        }
    }
}

/// The part of the output grid that one kernel offset reads inside the image (see `Unfold::window`).
pub(super) struct Window {
    oi: (usize, usize),
    oj: (usize, usize),
    /// Input row read by output row `oi.0`; each further output row reads `row_step` rows further.
    first_row: usize,
    row_step: usize,
    /// Offset in a split row of the input column read by output column `oj.0`.
    col_offset: usize,
}

multiversion! {
    /// One plane's rows (`src`, `[h, w]`) split by column phase into `dst` (`[h, s1 * wq]`, every slot written).
    fn split_plane_rows<T: Float>(u: &Unfold, src: &[T], dst: &mut [MaybeUninit<T>]) {
        let (s1, (wq, row_len)) = (u.g.stride[1], u.runs());
        for (d, row) in dst.chunks_mut(row_len).zip(src.chunks(u.w)) {
            if s1 == 2 {
                let (even, odd) = d.split_at_mut(wq);
                for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(row.chunks_exact(2)) {
                    e.write(pair[0]);
                    o.write(pair[1]);
                }
                if u.w % 2 == 1 {
                    even[wq - 1].write(row[u.w - 1]);
                    odd[wq - 1].write(T::zero());
                }
                continue;
            }
            for (r, run) in d.chunks_mut(wq).enumerate() {
                let filled = wq.min((u.w + s1 - 1 - r) / s1);
                let (vals, pad) = run.split_at_mut(filled);
                for (v, &x) in vals.iter_mut().zip(row.iter().skip(r).step_by(s1)) {
                    v.write(x);
                }
                for v in pad {
                    v.write(T::zero());
                }
            }
        }
    }
}

multiversion! {
    /// Row `row` of the columns of `n` images into `dst` (`n * p` slots, every one written), from the images
    /// `src` (`[n, c, h, w]`, or with rows split by column phase when the column stride is above 1).
    fn im2col_row<T: Float>(
        u: &Unfold,
        wins: &[Window],
        src: &[T],
        row: usize,
        n: usize,
        dst: &mut [MaybeUninit<T>]
    ) {
        let (p, kk, ow) = (u.positions(), u.k[0] * u.k[1], u.out[1]);
        let (ci, ki, kj) = (row / kk, row % kk / u.k[1], row % u.k[1]);
        let row_len = if u.g.stride[1] > 1 { u.runs().1 } else { u.w };
        let plane_len = u.h * row_len;
        let win = &wins[ki * u.k[1] + kj];
        let ((oi_lo, oi_hi), (oj_lo, oj_hi)) = (win.oi, win.oj);
        if oj_lo >= oj_hi || oi_lo >= oi_hi {
            // This kernel offset only ever reads padding.
            for v in dst.iter_mut() {
                v.write(T::zero());
            }
            return;
        }
        let len = oj_hi - oj_lo;
        for (i, img) in dst.chunks_mut(p).enumerate().take(n) {
            let plane = &src[(i * u.c + ci) * plane_len..][..plane_len];
            let (head, rest) = img.split_at_mut(oi_lo * ow);
            let (body, tail) = rest.split_at_mut((oi_hi - oi_lo) * ow);
            for v in head.iter_mut().chain(tail.iter_mut()) {
                v.write(T::zero());
            }
            let mut at = win.first_row * row_len + win.col_offset;
            for d in body.chunks_exact_mut(ow) {
                let (head, rest) = d.split_at_mut(oj_lo);
                let (d, tail) = rest.split_at_mut(len);
                for v in head.iter_mut().chain(tail.iter_mut()) {
                    v.write(T::zero());
                }
                for (v, &x) in d.iter_mut().zip(&plane[at..at + len]) {
                    v.write(x);
                }
                at += win.row_step * row_len;
            }
        }
    }
}

multiversion! {
    /// Plane `index` (image `index / c`, channel `index % c`) of the fold of columns `cs` (`[c*kh*kw, n*p]`
    /// contiguous) into `plane` (`h*w` slots, every one written). With a column stride the sums are gathered in
    /// `acc` with rows split by column phase (contiguous adds), then interleaved into the plane.
    fn fold_plane<T: Float>(
        u: &Unfold,
        wins: &[Window],
        cs: &[T],
        n: usize,
        index: usize,
        plane: &mut [MaybeUninit<T>],
        acc: &mut Vec<T>
    ) {
        let (i, ci) = (index / u.c, index % u.c);
        let (p, kk, ow) = (u.positions(), u.k[0] * u.k[1], u.out[1]);
        let (s1, (wq, split_len)) = (u.g.stride[1], u.runs());
        let row_len = if s1 > 1 { split_len } else { u.w };
        let sums: &mut [T] = if s1 == 1 {
            for v in plane.iter_mut() {
                v.write(T::zero());
            }
            // SAFETY: every slot was just initialised; MaybeUninit<T> has T's layout.
            unsafe { &mut *(plane as *mut [MaybeUninit<T>] as *mut [T]) }
        } else {
            acc.clear();
            acc.resize(u.h * row_len, T::zero());
            acc
        };
        for ki in 0..u.k[0] {
            for kj in 0..u.k[1] {
                let win = &wins[ki * u.k[1] + kj];
                let ((oi_lo, oi_hi), (oj_lo, oj_hi)) = (win.oi, win.oj);
                if oj_lo >= oj_hi || oi_lo >= oi_hi {
                    continue;
                }
                let len = oj_hi - oj_lo;
                let src = &cs[(ci * kk + ki * u.k[1] + kj) * n * p + i * p..][..p];
                let mut at = win.first_row * row_len + win.col_offset;
                for s in src[oi_lo * ow..oi_hi * ow].chunks_exact(ow) {
                    for (d, &v) in sums[at..at + len].iter_mut().zip(&s[oj_lo..oj_hi]) {
                        *d += v;
                    }
                    at += win.row_step * row_len;
                }
            }
        }
        if s1 > 1 {
            for (prow, srow) in plane.chunks_mut(u.w).zip(acc.chunks(row_len)) {
                if s1 == 2 {
                    let (even, odd) = srow.split_at(wq);
                    for ((pair, &e), &o) in prow.chunks_exact_mut(2).zip(even).zip(odd) {
                        pair[0].write(e);
                        pair[1].write(o);
                    }
                    if u.w % 2 == 1 {
                        prow[u.w - 1].write(even[wq - 1]);
                    }
                    continue;
                }
                for (r, run) in srow.chunks(wq).enumerate().take(u.w) {
                    for (v, &x) in prow.iter_mut().skip(r).step_by(s1).zip(run) {
                        v.write(x);
                    }
                }
            }
        }
    }
}

/// Unfold one image (`x` is `[C, H*W]`, contiguous) into columns `[C*KH*KW, OH*OW]`: column `(oi, oj)` holds
/// the receptive field of output position `(oi, oj)`, with zeros where it covers the padding. `out` is the
/// output grid; it may be smaller than the full `conv_out` grid (only those positions are unfolded).
pub fn im2col<T: Float>(
    x: ArrayView2<T>,
    c: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    out: [usize; 2],
    g: &ConvGeom,
) -> Array2<T> {
    let x = x.as_standard_layout();
    Unfold { c, h, w, k, out, g: *g }.im2col(x.as_slice().expect("contiguous image"), 1)
}

/// Fold columns `[C*KH*KW, OH*OW]` back into an image `[C, H, W]` (returned flat, row-major), adding
/// overlapping entries and dropping those that fall on the padding: the adjoint of `im2col`.
pub fn col2im<T: Float>(
    cols: ArrayView2<T>,
    c: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    out: [usize; 2],
    g: &ConvGeom,
) -> Vec<T> {
    crate::elementwise::new_with(c * h * w, |img| Unfold { c, h, w, k, out, g: *g }.col2im(cols, 1, img))
}
