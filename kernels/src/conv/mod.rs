//! 2-D convolution by im2col + GEMM, its adjoint (transposed convolution, by GEMM + col2im) and the weight
//! gradient. Layouts are PyTorch's: activations `[B, C, H, W]`, conv weights `[C_out, C_in, KH, KW]`.
//! A transposed convolution with weight `w` is the adjoint of the convolution with the same `w`, so its
//! weight is `[C_in_of_transpose, C_out_of_transpose, KH, KW]`, as in PyTorch.
//!
//! Two paths (see `PER_IMAGE_MIN_POSITIONS`): large output grids run image by image, images in parallel, each
//! unfolded (or folded) in a buffer of its thread while it is in cache, with the products reading and writing
//! the activations' per-image blocks in place; small grids unfold a chunk of images at once for one wide
//! product. `unfold` holds im2col and col2im, `products` the products and the buffers around them.

mod products;
mod unfold;

pub use unfold::{col2im, im2col};

use crate::elementwise::new_with;
use crate::gemm::gemm_serial;
use crate::Float;
use ndarray::{Array2, Array4, ArrayView2, ArrayView4};
use products::{block, forward_chunk, image_sum, product_into, refill, transpose_chunk, weight_grad_chunk, Scratch};
use rayon::prelude::*;
use unfold::Unfold;

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

/// Column buffers are built for as many images at once as fit in this many elements.
#[cfg(not(test))]
const COLS_BUDGET: usize = 1 << 23;
/// Small in unit tests, so that batches are split into several chunks there.
#[cfg(test)]
const COLS_BUDGET: usize = 300;

/// From this many output positions per image, a convolution runs image by image: each image is unfolded on
/// one thread into a buffer that stays in its cache and multiplied there, reading and writing the image's
/// `[channels, positions]` blocks of the activations in place, images in parallel. Below it, a chunk of
/// images is unfolded at once and multiplied as one wide product (per image, the products would be a few
/// columns wide, and the weight would be packed again for each), through channel-major copies of the
/// activations.
#[cfg(not(test))]
const PER_IMAGE_MIN_POSITIONS: usize = 128;
/// Small in unit tests, whose images are small.
#[cfg(test)]
const PER_IMAGE_MIN_POSITIONS: usize = 12;

/// Whether a convolution of a batch of `b` images with `p` output positions each runs image by image.
fn per_image(b: usize, p: usize) -> bool {
    // Not on the thread count: the path decides how sums are grouped, and results must not depend on it.
    p >= PER_IMAGE_MIN_POSITIONS && b >= 2
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

/// A convolution's unfolded input, chunk by chunk as `conv2d_keep` made it (one image per chunk on the
/// per-image path), for the weight gradient of the same convolution (which would otherwise unfold the input
/// again).
pub struct Unfolded<T> {
    chunks: Vec<Array2<T>>,
    per_chunk: usize,
    u: Unfold,
    batch: usize,
}

/// The unfolding of a convolution of `x` by a `kernel`, with its output grid.
fn unfolding(x: [usize; 4], kernel: [usize; 2], g: &ConvGeom) -> Unfold {
    let [_, c, h, w] = x;
    let out = [
        g.conv_out(0, h, kernel[0]).expect("conv2d: input too small"),
        g.conv_out(1, w, kernel[1]).expect("conv2d: input too small"),
    ];
    Unfold { c, h, w, k: kernel, out, g: *g }
}

/// `conv2d`, also returning the unfolded input when `keep`.
pub fn conv2d_keep<T: Float>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    g: &ConvGeom,
    keep: bool,
) -> (Array4<T>, Option<Unfolded<T>>) {
    let [co, _, kh, kw] = dims4(&w);
    let b = x.shape()[0];
    let u = unfolding(dims4(&x), [kh, kw], g);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("contiguous input");
    let wm = w.as_standard_layout();
    let wm = wm.view().into_shape_with_order((co, u.rows())).expect("weight matrix");
    let (p, rows, len) = (u.positions(), u.rows(), u.image_len());
    let mut kept = Vec::new();
    let mut per_chunk = u.chunk(b);
    let ys = new_with(b * co * p, |ys| {
        if per_image(b, p) {
            // Each image unfolded into a buffer of its own (kept) or of its thread, multiplied while cached.
            per_chunk = 1;
            let cols: Vec<Option<Array2<T>>> = ys
                .par_chunks_mut(co * p)
                .zip(xs.par_chunks(len))
                .map_init(Scratch::new, |sc, (yi, xi)| {
                    let mut own = Vec::new();
                    let buf = if keep { &mut own } else { &mut sc.cols };
                    u.im2col_image(xi, buf, &mut sc.split);
                    let cols = ArrayView2::from_shape((rows, p), &buf[..]).expect("columns");
                    product_into(true, wm, cols, yi);
                    keep.then(|| Array2::from_shape_vec((rows, p), own).expect("columns"))
                })
                .collect();
            kept = cols.into_iter().flatten().collect();
            return;
        }
        for start in (0..b).step_by(per_chunk) {
            let n = per_chunk.min(b - start);
            let cols = u.im2col(&xs[start * len..(start + n) * len], n);
            forward_chunk(wm, cols.view(), n, p, &mut ys[start * co * p..(start + n) * co * p]);
            if keep {
                kept.push(cols);
            }
        }
    });
    let y = Array4::from_shape_vec((b, co, u.out[0], u.out[1]), ys).expect("output shape");
    (y, keep.then_some(Unfolded { chunks: kept, per_chunk, u, batch: b }))
}

/// `conv2d_weight_grad(x, gy)` from `x` unfolded by `conv2d_keep` (`gy` on the full output grid).
pub fn conv2d_weight_grad_unfolded<T: Float>(x: &Unfolded<T>, gy: ArrayView4<T>) -> Array4<T> {
    let u = x.u;
    let [b, co, oh, ow] = dims4(&gy);
    assert!(b == x.batch && [oh, ow] == u.out, "conv2d_weight_grad_unfolded: gradient of shape {:?}", gy.shape());
    let gy = gy.as_standard_layout();
    let gs = gy.as_slice().expect("contiguous gradient");
    let p = u.positions();
    let shape = (co, u.rows());
    let dw = if x.per_chunk == 1 && b > 1 {
        // One image per chunk: image by image, in parallel runs.
        let dwt = image_sum((0..b).into_par_iter(), (shape.1, shape.0), |_, i, beta, acc| {
            gemm_serial(T::one(), x.chunks[i].view(), block(gs, i, co, p).t(), beta, acc);
        });
        dwt.t().as_standard_layout().into_owned()
    } else {
        let mut dw = Array2::<T>::zeros(shape);
        for (i, cols) in x.chunks.iter().enumerate() {
            let start = i * x.per_chunk;
            let n = x.per_chunk.min(b - start);
            weight_grad_chunk(&gs[start * co * p..(start + n) * co * p], cols.view(), n, p, &mut dw);
        }
        dw
    };
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
    let wm = wm.view().into_shape_with_order((cy, u.rows())).expect("weight matrix");
    let (p, rows, len) = (u.positions(), u.rows(), u.image_len());
    let xs = new_with(b * len, |xs| {
        if per_image(b, p) {
            // Each image's columns in a buffer of its thread, folded while cached.
            xs.par_chunks_mut(len).enumerate().for_each_init(
                || (Vec::new(), Vec::new()),
                |(cols, acc), (i, xi)| {
                    refill(cols, rows * p, |c| product_into(true, wm.t(), block(ys, i, cy, p), c));
                    u.col2im_image(cols, xi, acc);
                },
            );
            return;
        }
        let chunk = u.chunk(b);
        for start in (0..b).step_by(chunk) {
            let n = chunk.min(b - start);
            let cols = transpose_chunk(wm, &ys[start * cy * p..(start + n) * cy * p], n, p);
            u.col2im(cols.view(), n, &mut xs[start * len..(start + n) * len]);
        }
    });
    Array4::from_shape_vec((b, cx, oh, ow), xs).expect("output shape")
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
    let (p, rows, len) = (u.positions(), u.rows(), u.image_len());
    let dw = if per_image(b, p) {
        // Each image unfolded into its thread's buffer and multiplied while cached.
        let dwt = image_sum((0..b).into_par_iter(), (rows, co), |sc, i, beta, acc| {
            u.im2col_image(&xs[i * len..][..len], &mut sc.cols, &mut sc.split);
            let cols = ArrayView2::from_shape((rows, p), &sc.cols[..]).expect("columns");
            gemm_serial(T::one(), cols, block(gs, i, co, p).t(), beta, acc);
        });
        dwt.t().as_standard_layout().into_owned()
    } else {
        let mut dw = Array2::<T>::zeros((co, rows));
        let chunk = u.chunk(b);
        for start in (0..b).step_by(chunk) {
            let n = chunk.min(b - start);
            let cols = u.im2col(&xs[start * len..(start + n) * len], n);
            weight_grad_chunk(&gs[start * co * p..(start + n) * co * p], cols.view(), n, p, &mut dw);
        }
        dw
    };
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
    let [b, c, _, _] = dims4(&x);
    let [co, _, kh, kw] = dims4(&w);
    let u = unfolding(dims4(&x), [kh, kw], g);
    let [zb, zc, zh, zw] = dims4(&z);
    assert!(zb == b && zc == co && [zh, zw] == u.out, "conv2d_and_weight_grad: z of shape {:?}", z.shape());
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("contiguous input");
    let z = z.as_standard_layout();
    let zs = z.as_slice().expect("contiguous gradient");
    let wm = w.as_standard_layout();
    let wm = wm.view().into_shape_with_order((co, u.rows())).expect("weight matrix");
    let (p, rows, len) = (u.positions(), u.rows(), u.image_len());
    let mut dw = None;
    let ys = new_with(b * co * p, |ys| {
        if per_image(b, p) {
            // Each image unfolded into its thread's buffer, then both products while it is cached.
            let images = ys.par_chunks_mut(co * p).enumerate();
            let dwt = image_sum(images, (rows, co), |sc, (i, yi), beta, acc| {
                u.im2col_image(&xs[i * len..][..len], &mut sc.cols, &mut sc.split);
                let cols = ArrayView2::from_shape((rows, p), &sc.cols[..]).expect("columns");
                product_into(true, wm, cols, yi);
                gemm_serial(T::one(), cols, block(zs, i, co, p).t(), beta, acc);
            });
            dw = Some(dwt.t().as_standard_layout().into_owned());
            return;
        }
        let mut sum = Array2::<T>::zeros((co, rows));
        let chunk = u.chunk(b);
        for start in (0..b).step_by(chunk) {
            let n = chunk.min(b - start);
            let cols = u.im2col(&xs[start * len..(start + n) * len], n);
            let range = start * co * p..(start + n) * co * p;
            forward_chunk(wm, cols.view(), n, p, &mut ys[range.clone()]);
            weight_grad_chunk(&zs[range], cols.view(), n, p, &mut sum);
        }
        dw = Some(sum);
    });
    let y = Array4::from_shape_vec((b, co, u.out[0], u.out[1]), ys).expect("output shape");
    let dw = dw.expect("weight gradient");
    (y, dw.into_shape_with_order((co, c, kh, kw)).expect("weight shape"))
}

#[cfg(test)]
mod tests;
