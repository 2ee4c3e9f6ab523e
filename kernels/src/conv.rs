//! 2-D convolution by im2col + GEMM, its adjoint (transposed convolution, by GEMM + col2im) and the weight
//! gradient. Layouts are PyTorch's: activations `[B, C, H, W]`, conv weights `[C_out, C_in, KH, KW]`.
//! A transposed convolution with weight `w` is the adjoint of the convolution with the same `w`, so its
//! weight is `[C_in_of_transpose, C_out_of_transpose, KH, KW]`, as in PyTorch.

use crate::{gemm::gemm_into, Float};
use ndarray::{Array2, Array4, ArrayView2, ArrayView4};
use rayon::prelude::*;

/// Stride, zero padding and dilation of a convolution, per spatial axis (height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl Default for ConvGeom {
    fn default() -> Self {
        ConvGeom { stride: [1, 1], padding: [0, 0], dilation: [1, 1] }
    }
}

impl ConvGeom {
    /// The same stride, padding and dilation along both axes.
    pub fn new(stride: usize, padding: usize, dilation: usize) -> Self {
        ConvGeom { stride: [stride; 2], padding: [padding; 2], dilation: [dilation; 2] }
    }

    /// Per-axis `[height, width]` stride, padding and dilation.
    pub fn per_axis(stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> Self {
        ConvGeom { stride, padding, dilation }
    }

    /// Stride `stride`, padding `padding`, no dilation: the common case.
    pub fn strided(stride: usize, padding: usize) -> Self {
        Self::new(stride, padding, 1)
    }

    /// Output extent of a convolution along axis `a` for input extent `n` and kernel extent `k`,
    /// or `None` when the (padded) input is smaller than the dilated kernel.
    pub fn conv_out(&self, a: usize, n: usize, k: usize) -> Option<usize> {
        let span = self.dilation[a] * (k - 1) + 1;
        let padded = n + 2 * self.padding[a];
        (padded >= span).then(|| (padded - span) / self.stride[a] + 1)
    }

    /// Output extent of a transposed convolution along axis `a` (input extent `n`, kernel `k`).
    pub fn transpose_out(&self, a: usize, n: usize, k: usize, output_padding: usize) -> Option<usize> {
        let full = (n.max(1) - 1) * self.stride[a] + self.dilation[a] * (k - 1) + output_padding + 1;
        full.checked_sub(2 * self.padding[a])
    }
}

/// Column buffers are built for as many images at once as fit in this many elements: one wide GEMM per chunk
/// instead of one small GEMM per image (the decoder's 4x4 and 8x8 maps would give products a few columns wide).
#[cfg(not(test))]
const COLS_BUDGET: usize = 1 << 23;
/// Small in unit tests, so that batches are split into several chunks there.
#[cfg(test)]
const COLS_BUDGET: usize = 300;

/// The geometry of one unfolding: an image of `c` channels and `h x w` pixels, a `k` kernel, an `out` output
/// grid (possibly a leading part of the full grid), and the convolution's stride, padding and dilation.
#[derive(Clone, Copy)]
struct Unfold {
    c: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    out: [usize; 2],
    g: ConvGeom,
}

impl Unfold {
    fn rows(&self) -> usize {
        self.c * self.k[0] * self.k[1]
    }
    fn positions(&self) -> usize {
        self.out[0] * self.out[1]
    }
    fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }
    /// How many images to unfold at once.
    fn chunk(&self, batch: usize) -> usize {
        (COLS_BUDGET / (self.rows() * self.positions()).max(1)).clamp(1, batch.max(1))
    }

    /// The output indices `lo..hi` along axis `a` whose input index at kernel offset `kk` is inside the image
    /// (the rest read the zero padding).
    fn valid(&self, a: usize, kk: usize) -> (usize, usize) {
        let (n, o) = if a == 0 { (self.h, self.out[0]) } else { (self.w, self.out[1]) };
        let (s, off, p) = (self.g.stride[a], kk * self.g.dilation[a], self.g.padding[a]);
        // i = o*s + off - p must satisfy 0 <= i < n.
        let lo = if p > off { (p - off).div_ceil(s) } else { 0 };
        let hi = if n + p > off { (n + p - off).div_ceil(s) } else { 0 };
        (lo.min(o), hi.min(o).max(lo.min(o)))
    }

    /// Unfold `n` images (`xs`, `[n, c, h, w]` contiguous) into columns `[c*kh*kw, n*oh*ow]`: column
    /// `i*P + (oi*ow + oj)` holds image `i`'s receptive field of output `(oi, oj)`, zero on the padding.
    /// Rows are filled in parallel; each output row is a copy (stride 1) or a strided gather over the valid
    /// range, with only the padding written as zeros.
    fn im2col<T: Float>(&self, xs: &[T], n: usize) -> Array2<T> {
        let (p, kk) = (self.positions(), self.k[0] * self.k[1]);
        let ow = self.out[1];
        let (s0, s1) = (self.g.stride[0], self.g.stride[1]);
        let zero = T::zero();
        // Every entry is written below (values or the padding's zeros): no zero-fill first.
        let data = crate::elementwise::new_with(self.rows() * n * p, |data| {
            data.par_chunks_mut((n * p).max(1)).enumerate().for_each(|(row, dst)| {
                let (ci, ki, kj) = (row / kk, row % kk / self.k[1], row % self.k[1]);
                let ((oi_lo, oi_hi), (oj_lo, oj_hi)) = (self.valid(0, ki), self.valid(1, kj));
                if oj_lo >= oj_hi || oi_lo >= oi_hi {
                    // This kernel offset only ever reads padding.
                    for v in dst.iter_mut() {
                        v.write(zero);
                    }
                    return;
                }
                let col_off = oj_lo * s1 + kj * self.g.dilation[1] - self.g.padding[1];
                let len = oj_hi - oj_lo;
                for i in 0..n {
                    let plane = &xs[i * self.image_len() + ci * self.h * self.w..][..self.h * self.w];
                    let img = &mut dst[i * p..][..p];
                    let (head, rest) = img.split_at_mut(oi_lo * ow);
                    for v in head.iter_mut().chain(rest[(oi_hi - oi_lo) * ow..].iter_mut()) {
                        v.write(zero);
                    }
                    for oi in oi_lo..oi_hi {
                        let ii = oi * s0 + ki * self.g.dilation[0] - self.g.padding[0];
                        let src = &plane[ii * self.w + col_off..];
                        let d = &mut img[oi * ow..][..ow];
                        let (head, rest) = d.split_at_mut(oj_lo);
                        let (d, tail) = rest.split_at_mut(len);
                        for v in head.iter_mut().chain(tail.iter_mut()) {
                            v.write(zero);
                        }
                        if s1 == 1 {
                            // An inlined loop: rows are often a few elements long, too short for a memcpy call.
                            for (v, &x) in d.iter_mut().zip(&src[..len]) {
                                v.write(x);
                            }
                        } else {
                            // Iterators rather than indices: no bounds check per element.
                            for (v, &x) in d.iter_mut().zip(src.iter().step_by(s1)) {
                                v.write(x);
                            }
                        }
                    }
                }
            });
        });
        Array2::from_shape_vec((self.rows(), n * p), data).expect("columns shape")
    }

    /// Fold columns `[c*kh*kw, n*oh*ow]` back into `n` images (`out`, `[n, c, h, w]`), adding overlapping
    /// entries and dropping those on the padding: the adjoint of `im2col`. Planes are filled in parallel.
    fn col2im<T: Float>(&self, cols: ArrayView2<T>, n: usize, out: &mut [T]) {
        let (p, kk) = (self.positions(), self.k[0] * self.k[1]);
        let cols = cols.as_standard_layout();
        let cs = cols.as_slice().expect("contiguous columns");
        let width = n * p;
        let ow = self.out[1];
        let (s0, s1) = (self.g.stride[0], self.g.stride[1]);
        out.par_chunks_mut((self.h * self.w).max(1)).enumerate().for_each(|(plane_index, plane)| {
            let (i, ci) = (plane_index / self.c, plane_index % self.c);
            plane.fill(T::zero());
            for ki in 0..self.k[0] {
                let (oi_lo, oi_hi) = self.valid(0, ki);
                for kj in 0..self.k[1] {
                    let (oj_lo, oj_hi) = self.valid(1, kj);
                    if oj_lo >= oj_hi {
                        continue;
                    }
                    let row = &cs[(ci * kk + ki * self.k[1] + kj) * width + i * p..][..p];
                    let col_off = oj_lo * s1 + kj * self.g.dilation[1] - self.g.padding[1];
                    let len = oj_hi - oj_lo;
                    for oi in oi_lo..oi_hi {
                        let ii = oi * s0 + ki * self.g.dilation[0] - self.g.padding[0];
                        let src = &row[oi * ow + oj_lo..][..len];
                        let dst = &mut plane[ii * self.w + col_off..];
                        if s1 == 1 {
                            for (d, &v) in dst[..len].iter_mut().zip(src) {
                                *d += v;
                            }
                        } else {
                            for (d, &v) in dst.iter_mut().step_by(s1).zip(src) {
                                *d += v;
                            }
                        }
                    }
                }
            }
        });
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
    let mut img = vec![T::zero(); c * h * w];
    Unfold { c, h, w, k, out, g: *g }.col2im(cols, 1, &mut img);
    img
}

/// `[n, ch, p]` (contiguous) as a channel-major `[ch, n*p]` matrix.
fn channel_major<T: Float>(src: &[T], n: usize, ch: usize, p: usize) -> Array2<T> {
    let mut out = Array2::<T>::zeros((ch, n * p));
    let data = out.as_slice_mut().expect("contiguous");
    data.par_chunks_mut((n * p).max(1)).enumerate().for_each(|(c, row)| {
        for i in 0..n {
            row[i * p..][..p].copy_from_slice(&src[(i * ch + c) * p..][..p]);
        }
    });
    out
}

/// A channel-major `[ch, n*p]` matrix written back as `[n, ch, p]` into `dst`.
fn batch_major<T: Float>(src: &Array2<T>, n: usize, ch: usize, p: usize, dst: &mut [T]) {
    let s = src.as_slice().expect("contiguous");
    dst.par_chunks_mut(p.max(1)).enumerate().for_each(|(plane, d)| {
        let (i, c) = (plane / ch, plane % ch);
        d.copy_from_slice(&s[c * n * p + i * p..][..p]);
    });
}

fn dims4<T>(a: &ArrayView4<T>) -> [usize; 4] {
    let s = a.shape();
    [s[0], s[1], s[2], s[3]]
}

/// `y = conv2d(x, w)`: x `[B, C_in, H, W]`, w `[C_out, C_in, KH, KW]` -> `[B, C_out, OH, OW]`.
/// Shapes are validated by the caller (the engine's op names both shapes on a mismatch).
pub fn conv2d<T: Float>(x: ArrayView4<T>, w: ArrayView4<T>, g: &ConvGeom) -> Array4<T> {
    conv2d_keep(x, w, g, false).0
}

/// A convolution's unfolded input, chunk by chunk as `conv2d_keep` made it, for the weight gradient of the
/// same convolution (which would otherwise unfold the input again).
pub struct Unfolded<T> {
    chunks: Vec<Array2<T>>,
    per_chunk: usize,
    u: Unfold,
    batch: usize,
}

/// `conv2d`, also returning the unfolded input when `keep`.
pub fn conv2d_keep<T: Float>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    g: &ConvGeom,
    keep: bool,
) -> (Array4<T>, Option<Unfolded<T>>) {
    let [b, c, h, wd] = dims4(&x);
    let [co, _, kh, kw] = dims4(&w);
    let out = [
        g.conv_out(0, h, kh).expect("conv2d: input too small"),
        g.conv_out(1, wd, kw).expect("conv2d: input too small"),
    ];
    let u = Unfold { c, h, w: wd, k: [kh, kw], out, g: *g };
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("contiguous input");
    let wm = w.as_standard_layout();
    let wm = wm.view().into_shape_with_order((co, u.rows())).expect("weight matrix");
    let p = u.positions();
    let mut y = Array4::<T>::zeros((b, co, out[0], out[1]));
    let ys = y.as_slice_mut().expect("contiguous output");
    let chunk = u.chunk(b);
    let mut kept = Vec::new();
    for start in (0..b).step_by(chunk) {
        let n = chunk.min(b - start);
        let cols = u.im2col(&xs[start * u.image_len()..(start + n) * u.image_len()], n);
        let mut prod = Array2::<T>::zeros((co, n * p));
        gemm_into(T::one(), wm, cols.view(), T::zero(), prod.view_mut());
        batch_major(&prod, n, co, p, &mut ys[start * co * p..(start + n) * co * p]);
        if keep {
            kept.push(cols);
        }
    }
    (y, keep.then_some(Unfolded { chunks: kept, per_chunk: chunk, u, batch: b }))
}

/// `conv2d_weight_grad(x, gy)` from `x` unfolded by `conv2d_keep` (`gy` on the full output grid).
pub fn conv2d_weight_grad_unfolded<T: Float>(x: &Unfolded<T>, gy: ArrayView4<T>) -> Array4<T> {
    let u = x.u;
    let [b, co, oh, ow] = dims4(&gy);
    assert!(b == x.batch && [oh, ow] == u.out, "conv2d_weight_grad_unfolded: gradient of shape {:?}", gy.shape());
    let gy = gy.as_standard_layout();
    let gs = gy.as_slice().expect("contiguous gradient");
    let p = u.positions();
    let mut dw = Array2::<T>::zeros((co, u.rows()));
    for (i, cols) in x.chunks.iter().enumerate() {
        let start = i * x.per_chunk;
        let n = x.per_chunk.min(b - start);
        let gcm = channel_major(&gs[start * co * p..(start + n) * co * p], n, co, p);
        gemm_into(T::one(), gcm.view(), cols.t(), T::one(), dw.view_mut());
    }
    dw.into_shape_with_order((co, u.c, u.k[0], u.k[1])).expect("weight shape")
}

/// The adjoint of `conv2d(., w)`: y `[B, C_y, H', W']`, w `[C_y, C_x, KH, KW]` -> `[B, C_x, OH, OW]` with
/// `OH = (H'-1)*stride - 2*padding + dilation*(KH-1) + output_padding + 1`.
pub fn conv_transpose2d<T: Float>(
    y: ArrayView4<T>,
    w: ArrayView4<T>,
    g: &ConvGeom,
    output_padding: [usize; 2],
) -> Array4<T> {
    let [b, cy, hy, wy] = dims4(&y);
    let [_, cx, kh, kw] = dims4(&w);
    let oh = g.transpose_out(0, hy, kh, output_padding[0]).expect("conv_transpose2d: negative output size");
    let ow = g.transpose_out(1, wy, kw, output_padding[1]).expect("conv_transpose2d: negative output size");
    let u = Unfold { c: cx, h: oh, w: ow, k: [kh, kw], out: [hy, wy], g: *g };
    let y = y.as_standard_layout();
    let ys = y.as_slice().expect("contiguous input");
    let wm = w.as_standard_layout();
    let wt = wm.view().into_shape_with_order((cy, u.rows())).expect("weight matrix");
    let p = u.positions();
    let mut x = Array4::<T>::zeros((b, cx, oh, ow));
    let xs = x.as_slice_mut().expect("contiguous output");
    let chunk = u.chunk(b);
    for start in (0..b).step_by(chunk) {
        let n = chunk.min(b - start);
        let ycm = channel_major(&ys[start * cy * p..(start + n) * cy * p], n, cy, p);
        let mut cols = Array2::<T>::zeros((u.rows(), n * p));
        gemm_into(T::one(), wt.t(), ycm.view(), T::zero(), cols.view_mut());
        u.col2im(cols.view(), n, &mut xs[start * u.image_len()..(start + n) * u.image_len()]);
    }
    x
}

/// Weight gradient of `conv2d`: `dw[o, i, a, b] = sum over batch and positions of gy * x` (shape `[C_out,
/// C_in, KH, KW]`); `kernel` is `[KH, KW]`. It is bilinear in `x` and `gy`. `gy` may cover a leading part of
/// the output grid.
pub fn conv2d_weight_grad<T: Float>(
    x: ArrayView4<T>,
    gy: ArrayView4<T>,
    kernel: [usize; 2],
    g: &ConvGeom,
) -> Array4<T> {
    let [b, c, h, wd] = dims4(&x);
    let [_, co, oh, ow] = dims4(&gy);
    let u = Unfold { c, h, w: wd, k: kernel, out: [oh, ow], g: *g };
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("contiguous input");
    let gy = gy.as_standard_layout();
    let gs = gy.as_slice().expect("contiguous gradient");
    let p = u.positions();
    let mut dw = Array2::<T>::zeros((co, u.rows()));
    let chunk = u.chunk(b);
    for start in (0..b).step_by(chunk) {
        let n = chunk.min(b - start);
        let cols = u.im2col(&xs[start * u.image_len()..(start + n) * u.image_len()], n);
        let gcm = channel_major(&gs[start * co * p..(start + n) * co * p], n, co, p);
        gemm_into(T::one(), gcm.view(), cols.t(), T::one(), dw.view_mut());
    }
    dw.into_shape_with_order((co, c, kernel[0], kernel[1])).expect("weight shape")
}

/// `conv2d(x, w)` and `conv2d_weight_grad(x, z)` (with `z` on the convolution's full output grid) from one
/// unfolding of `x`: the backward pass of a transposed convolution needs both for the same incoming gradient.
pub fn conv2d_and_weight_grad<T: Float>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    z: ArrayView4<T>,
    g: &ConvGeom,
) -> (Array4<T>, Array4<T>) {
    let [b, c, h, wd] = dims4(&x);
    let [co, _, kh, kw] = dims4(&w);
    let out = [
        g.conv_out(0, h, kh).expect("conv2d: input too small"),
        g.conv_out(1, wd, kw).expect("conv2d: input too small"),
    ];
    let [zb, zc, zh, zw] = dims4(&z);
    assert!(zb == b && zc == co && [zh, zw] == out, "conv2d_and_weight_grad: z of shape {:?}", z.shape());
    let u = Unfold { c, h, w: wd, k: [kh, kw], out, g: *g };
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("contiguous input");
    let z = z.as_standard_layout();
    let zs = z.as_slice().expect("contiguous gradient");
    let wm = w.as_standard_layout();
    let wm = wm.view().into_shape_with_order((co, u.rows())).expect("weight matrix");
    let p = u.positions();
    let mut y = Array4::<T>::zeros((b, co, out[0], out[1]));
    let ys = y.as_slice_mut().expect("contiguous output");
    let mut dw = Array2::<T>::zeros((co, u.rows()));
    let chunk = u.chunk(b);
    for start in (0..b).step_by(chunk) {
        let n = chunk.min(b - start);
        let cols = u.im2col(&xs[start * u.image_len()..(start + n) * u.image_len()], n);
        let mut prod = Array2::<T>::zeros((co, n * p));
        gemm_into(T::one(), wm, cols.view(), T::zero(), prod.view_mut());
        batch_major(&prod, n, co, p, &mut ys[start * co * p..(start + n) * co * p]);
        let zcm = channel_major(&zs[start * co * p..(start + n) * co * p], n, co, p);
        gemm_into(T::one(), zcm.view(), cols.t(), T::one(), dw.view_mut());
    }
    (y, dw.into_shape_with_order((co, c, kh, kw)).expect("weight shape"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    fn filled(shape: [usize; 4], seed: usize) -> Array4<f64> {
        Array::from_shape_fn(shape, |(a, b, c, d)| {
            ((a * 131 + b * 71 + c * 37 + d * 11 + seed * 7) % 29) as f64 / 14.0 - 1.0
        })
    }

    /// Direct convolution, for reference.
    fn naive(x: &Array4<f64>, w: &Array4<f64>, g: &ConvGeom) -> Array4<f64> {
        let [b, c, h, wd] = dims4(&x.view());
        let [co, _, kh, kw] = dims4(&w.view());
        let (oh, ow) = (g.conv_out(0, h, kh).unwrap(), g.conv_out(1, wd, kw).unwrap());
        Array4::from_shape_fn((b, co, oh, ow), |(bi, o, oi, oj)| {
            let mut acc = 0.0;
            for ci in 0..c {
                for ki in 0..kh {
                    for kj in 0..kw {
                        let ii = (oi * g.stride[0] + ki * g.dilation[0]) as isize - g.padding[0] as isize;
                        let jj = (oj * g.stride[1] + kj * g.dilation[1]) as isize - g.padding[1] as isize;
                        if ii >= 0 && jj >= 0 && (ii as usize) < h && (jj as usize) < wd {
                            acc += x[[bi, ci, ii as usize, jj as usize]] * w[[o, ci, ki, kj]];
                        }
                    }
                }
            }
            acc
        })
    }

    fn dot(a: &Array4<f64>, b: &Array4<f64>) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn chunked_batches_match_the_direct_convolution_and_its_adjoints() {
        let g = ConvGeom::new(2, 1, 1);
        let x = filled([5, 3, 7, 6], 1);
        let w = filled([4, 3, 3, 3], 2);
        let y = conv2d(x.view(), w.view(), &g);
        assert!(u_chunk_is_split(&x, &w, &g), "the test budget must force several chunks");
        let want = naive(&x, &w, &g);
        assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12));
        let r = filled([5, 4, y.dim().2, y.dim().3], 3);
        let xt = conv_transpose2d(r.view(), w.view(), &g, [0, 1]);
        assert_eq!(xt.dim(), x.dim());
        assert!((dot(&y, &r) - dot(&x, &xt)).abs() < 1e-9);
        let dw = conv2d_weight_grad(x.view(), r.view(), [3, 3], &g);
        assert!((dot(&y, &r) - dot(&w, &dw)).abs() < 1e-9);
        let (y3, kept) = conv2d_keep(x.view(), w.view(), &g, true);
        assert_eq!(y3, y);
        let dw3 = conv2d_weight_grad_unfolded(&kept.unwrap(), r.view());
        assert!(dw3.iter().zip(&dw).all(|(a, b)| (a - b).abs() < 1e-12));
        let (y2, dw2) = conv2d_and_weight_grad(x.view(), w.view(), r.view(), &g);
        assert!(y2.iter().zip(&y).all(|(a, b)| (a - b).abs() < 1e-12));
        assert!(dw2.iter().zip(&dw).all(|(a, b)| (a - b).abs() < 1e-12));
    }

    fn u_chunk_is_split(x: &Array4<f64>, w: &Array4<f64>, g: &ConvGeom) -> bool {
        let [b, c, h, wd] = dims4(&x.view());
        let [_, _, kh, kw] = dims4(&w.view());
        let out = [g.conv_out(0, h, kh).unwrap(), g.conv_out(1, wd, kw).unwrap()];
        Unfold { c, h, w: wd, k: [kh, kw], out, g: *g }.chunk(b) < b
    }

    impl Unfold {
        /// Input row (or column) read by output index `o` at kernel offset `kk` along axis `a`, if inside.
        fn source(&self, a: usize, o: usize, kk: usize) -> Option<usize> {
            let extent = if a == 0 { self.h } else { self.w };
            let i = (o * self.g.stride[a] + kk * self.g.dilation[a]).checked_sub(self.g.padding[a])?;
            (i < extent).then_some(i)
        }
    }

    /// The straightforward unfolding: every column entry from `source`, zero where it is `None`.
    fn reference_im2col(u: &Unfold, xs: &[f64], n: usize) -> Vec<f64> {
        let (p, kk) = (u.positions(), u.k[0] * u.k[1]);
        let mut out = vec![0.0; u.rows() * n * p];
        for row in 0..u.rows() {
            let (ci, ki, kj) = (row / kk, row % kk / u.k[1], row % u.k[1]);
            for i in 0..n {
                for oi in 0..u.out[0] {
                    for oj in 0..u.out[1] {
                        if let (Some(ii), Some(jj)) = (u.source(0, oi, ki), u.source(1, oj, kj)) {
                            out[row * n * p + i * p + oi * u.out[1] + oj] =
                                xs[i * u.image_len() + ci * u.h * u.w + ii * u.w + jj];
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn unfolding_and_folding_match_the_straightforward_loops_on_every_geometry() {
        let geoms = [
            ([3, 3], ConvGeom::new(1, 1, 1)),
            ([4, 4], ConvGeom::new(2, 1, 1)),
            ([4, 4], ConvGeom::new(4, 0, 1)),
            ([4, 4], ConvGeom::new(4, 1, 1)),
            ([3, 2], ConvGeom::per_axis([1, 3], [2, 0], [2, 1])),
            ([5, 5], ConvGeom::new(1, 4, 1)), // padding beyond the kernel offsets: whole rows of padding
            ([1, 1], ConvGeom::new(3, 0, 1)),
            ([2, 3], ConvGeom::per_axis([2, 1], [1, 2], [3, 2])),
        ];
        for (case, (k, g)) in geoms.into_iter().enumerate() {
            let (c, h, w, n) = (2, 7, 6, 3);
            let out = match (g.conv_out(0, h, k[0]), g.conv_out(1, w, k[1])) {
                (Some(a), Some(b)) => [a, b],
                _ => continue,
            };
            for out in [out, [out[0].saturating_sub(1).max(1), out[1]]] {
                let u = Unfold { c, h, w, k, out, g };
                let xs: Vec<f64> = (0..n * c * h * w).map(|i| ((i * 37) % 23) as f64 - 11.0).collect();
                let cols = u.im2col(&xs, n);
                let want = reference_im2col(&u, &xs, n);
                assert_eq!(cols.as_slice().unwrap(), &want[..], "im2col case {case} out {out:?}");
                // col2im is the adjoint: <im2col(x), r> = <x, col2im(r)>.
                let r: Vec<f64> = (0..want.len()).map(|i| ((i * 13) % 17) as f64 - 8.0).collect();
                let rv = ArrayView2::from_shape(cols.dim(), &r).unwrap();
                let mut folded = vec![f64::NAN; xs.len()];
                u.col2im(rv, n, &mut folded);
                let lhs: f64 = want.iter().zip(&r).map(|(a, b)| a * b).sum();
                let rhs: f64 = xs.iter().zip(&folded).map(|(a, b)| a * b).sum();
                assert!((lhs - rhs).abs() < 1e-9, "col2im case {case} out {out:?}: {lhs} vs {rhs}");
            }
        }
    }
}
