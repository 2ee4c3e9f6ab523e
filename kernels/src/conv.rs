//! 2-D convolution by im2col + GEMM, its adjoint (transposed convolution, by GEMM + col2im) and the weight
//! gradient. Layouts are PyTorch's: activations `[B, C, H, W]`, conv weights `[C_out, C_in, KH, KW]`.
//! A transposed convolution with weight `w` is the adjoint of the convolution with the same `w`, so its
//! weight is `[C_in_of_transpose, C_out_of_transpose, KH, KW]`, as in PyTorch.

use crate::{gemm::gemm, Float};
use ndarray::{Array2, Array4, ArrayView2, ArrayView4, Axis};

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
    let mut cols = Array2::<T>::zeros((c * k[0] * k[1], out[0] * out[1]));
    let xs = x.as_slice().expect("contiguous image");
    let cs = cols.as_slice_mut().expect("contiguous columns");
    let ncol = out[0] * out[1];
    for ci in 0..c {
        for ki in 0..k[0] {
            for kj in 0..k[1] {
                let row = (ci * k[0] + ki) * k[1] + kj;
                for oi in 0..out[0] {
                    let ii = (oi * g.stride[0] + ki * g.dilation[0]) as isize - g.padding[0] as isize;
                    if ii < 0 || ii >= h as isize {
                        continue;
                    }
                    for oj in 0..out[1] {
                        let jj = (oj * g.stride[1] + kj * g.dilation[1]) as isize - g.padding[1] as isize;
                        if jj >= 0 && jj < w as isize {
                            cs[row * ncol + oi * out[1] + oj] = xs[(ci * h + ii as usize) * w + jj as usize];
                        }
                    }
                }
            }
        }
    }
    cols
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
    let cs = cols.as_slice().expect("contiguous columns");
    let ncol = out[0] * out[1];
    for ci in 0..c {
        for ki in 0..k[0] {
            for kj in 0..k[1] {
                let row = (ci * k[0] + ki) * k[1] + kj;
                for oi in 0..out[0] {
                    let ii = (oi * g.stride[0] + ki * g.dilation[0]) as isize - g.padding[0] as isize;
                    if ii < 0 || ii >= h as isize {
                        continue;
                    }
                    for oj in 0..out[1] {
                        let jj = (oj * g.stride[1] + kj * g.dilation[1]) as isize - g.padding[1] as isize;
                        if jj >= 0 && jj < w as isize {
                            img[(ci * h + ii as usize) * w + jj as usize] += cs[row * ncol + oi * out[1] + oj];
                        }
                    }
                }
            }
        }
    }
    img
}

fn dims4<T>(a: &ArrayView4<T>) -> [usize; 4] {
    let s = a.shape();
    [s[0], s[1], s[2], s[3]]
}

/// `y = conv2d(x, w)`: x `[B, C_in, H, W]`, w `[C_out, C_in, KH, KW]` -> `[B, C_out, OH, OW]`.
/// Shapes are validated by the caller (the engine's op names both shapes on a mismatch).
pub fn conv2d<T: Float>(x: ArrayView4<T>, w: ArrayView4<T>, g: &ConvGeom) -> Array4<T> {
    let [b, c, h, wd] = dims4(&x);
    let [co, _, kh, kw] = dims4(&w);
    let out = [
        g.conv_out(0, h, kh).expect("conv2d: input too small"),
        g.conv_out(1, wd, kw).expect("conv2d: input too small"),
    ];
    let x = x.as_standard_layout();
    let wm = w.as_standard_layout();
    let wm = wm.view().into_shape_with_order((co, c * kh * kw)).expect("weight matrix");
    let mut y = Array4::<T>::zeros((b, co, out[0], out[1]));
    for (bi, mut yb) in y.outer_iter_mut().enumerate() {
        let xb = x.index_axis(Axis(0), bi);
        let xb = xb.into_shape_with_order((c, h * wd)).expect("image");
        let cols = im2col(xb, c, h, wd, [kh, kw], out, g);
        let prod = gemm(wm, cols.view());
        yb.assign(&prod.into_shape_with_order((co, out[0], out[1])).expect("output"));
    }
    y
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
    let y = y.as_standard_layout();
    let wm = w.as_standard_layout();
    let wt = wm.view().into_shape_with_order((cy, cx * kh * kw)).expect("weight matrix");
    let wt = wt.t();
    let mut x = Array4::<T>::zeros((b, cx, oh, ow));
    for (bi, mut xb) in x.outer_iter_mut().enumerate() {
        let yb = y.index_axis(Axis(0), bi);
        let yb = yb.into_shape_with_order((cy, hy * wy)).expect("image");
        let cols = gemm(wt, yb);
        let img = col2im(cols.view(), cx, oh, ow, [kh, kw], [hy, wy], g);
        xb.assign(&ndarray::ArrayView3::from_shape((cx, oh, ow), &img).expect("output"));
    }
    x
}

/// Weight gradient of `conv2d`: `dw[o, i, a, b] = sum over batch and positions of gy * x` (shape `[C_out,
/// C_in, KH, KW]`); `kernel` is `[KH, KW]`. It is bilinear in `x` and `gy`.
pub fn conv2d_weight_grad<T: Float>(
    x: ArrayView4<T>,
    gy: ArrayView4<T>,
    kernel: [usize; 2],
    g: &ConvGeom,
) -> Array4<T> {
    let [_, c, h, wd] = dims4(&x);
    let [_, co, oh, ow] = dims4(&gy);
    let x = x.as_standard_layout();
    let gy = gy.as_standard_layout();
    let mut dw = Array2::<T>::zeros((co, c * kernel[0] * kernel[1]));
    for (xb, gb) in x.outer_iter().zip(gy.outer_iter()) {
        let xb = xb.into_shape_with_order((c, h * wd)).expect("image");
        let cols = im2col(xb, c, h, wd, kernel, [oh, ow], g);
        let gb = gb.into_shape_with_order((co, oh * ow)).expect("gradient");
        dw += &gemm(gb, cols.t());
    }
    dw.into_shape_with_order((co, c, kernel[0], kernel[1])).expect("weight shape")
}
