//! 2-D convolution, its adjoint (transposed convolution) and its weight gradient, as three ops whose backward
//! rules are written in each other, so all three differentiate to any order.
//!
//! Layouts are PyTorch's: activations `[B, C, H, W]`, conv weights `[C_out, C_in, KH, KW]`, transposed-conv
//! weights `[C_in, C_out, KH, KW]` (the weight of the convolution it is the adjoint of). Bias is left to the
//! caller (a broadcasting add of a `[1, C, 1, 1]` tensor).
//!
//! All three are partial derivatives of one trilinear form: with `x` an image, `w` a weight and `z` an output-grid
//! tensor,
//!
//! ```text
//! B(x, w, z) = sum z[b, o, i, j] * w[o, c, ki, kj] * x[b, c, i*s + ki*d - p, j*s + kj*d - p]
//! ```
//!
//! (stride `s`, dilation `d`, padding `p`; `x` is zero outside its extent). Then `conv2d(x, w) = dB/dz`,
//! `conv_transpose2d(z, w) = dB/dx` and `conv2d_weight_grad(x, z) = dB/dw`, and the backward of each is the
//! other two partials evaluated at the incoming gradient:
//!
//! - `y = conv2d(x, w)`: `dx = conv_transpose2d(g, w)` sized like `x`, `dw = conv2d_weight_grad(x, g)`;
//! - `x = conv_transpose2d(z, w)`: `dz = conv2d(g, w)` (cut to `z`'s grid), `dw = conv2d_weight_grad(g, z)`;
//! - `w = conv2d_weight_grad(x, z)`: `dx = conv_transpose2d(z, g)` sized like `x`, `dz = conv2d(x, g)` (cut to
//!   `z`'s grid).
//!
//! "Sized like `x`" picks the transposed convolution's output padding so that its output has `x`'s extent;
//! "cut to `z`'s grid" keeps the leading rows and columns when the convolution's grid is larger than `z`'s
//! (which happens only for a transposed convolution whose output padding is at least its stride).

use crate::{Op, Var};
use kernels::conv::{self as k, ConvGeom};
use kernels::Float;
use ndarray::{ArrayD, ArrayView4, Ix4};

fn view4<T: Float>(a: &ArrayD<T>) -> ArrayView4<'_, T> {
    a.view().into_dimensionality::<Ix4>().expect("4-D value")
}

/// The shape of a 4-D operand, or a panic naming the op, the operand's role and both shapes.
fn shape4(op: &str, role: &str, v: &[usize], other_role: &str, other: &[usize]) -> [usize; 4] {
    match *v {
        [a, b, c, d] => [a, b, c, d],
        _ => panic!("{op}: {role} of shape {v:?} is not 4-D (with {other_role} of shape {other:?})"),
    }
}

fn check_geom(op: &str, g: &ConvGeom, kernel: [usize; 2]) {
    assert!(
        g.stride.iter().chain(&g.dilation).all(|&v| v >= 1) && kernel.iter().all(|&v| v >= 1),
        "{op}: stride {:?}, dilation {:?} and kernel {kernel:?} must all be at least 1",
        g.stride,
        g.dilation
    );
}

/// The full output grid of a convolution of an `[.., H, W]` input, or a panic when the padded input is
/// smaller than the dilated kernel.
fn conv_grid(op: &str, g: &ConvGeom, xs: &[usize], ws: &[usize]) -> [usize; 2] {
    let kernel = [ws[2], ws[3]];
    let out = [g.conv_out(0, xs[2], kernel[0]), g.conv_out(1, xs[3], kernel[1])];
    match out {
        [Some(oh), Some(ow)] => [oh, ow],
        _ => panic!(
            "{op}: input of shape {xs:?} with padding {:?} is smaller than the kernel {kernel:?} (weight of shape \
             {ws:?}) dilated by {:?}",
            g.padding, g.dilation
        ),
    }
}

struct Conv2d<T: Float> {
    geom: ConvGeom,
    /// The forward pass's unfolded input, kept when the weight may need a gradient, so that the backward pass
    /// does not unfold it again.
    unfolded: Option<k::Unfolded<T>>,
}

impl<T: Float> Op<T> for Conv2d<T> {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn backward_needed<'t>(
        &self,
        inputs: &[Var<'t, T>],
        _y: Var<'t, T>,
        g: Var<'t, T>,
        needed: &[bool],
    ) -> Vec<Option<Var<'t, T>>> {
        let (x, w) = (inputs[0], inputs[1]);
        let (xs, ws) = (x.shape(), w.shape());
        let dx = needed[0].then(|| g.conv_transpose2d_sized(w, self.geom, [xs[2], xs[3]]));
        let dw = needed[1].then(|| match &self.unfolded {
            Some(unfolded) => {
                let gv = g.value();
                let dw = k::conv2d_weight_grad_unfolded(unfolded, view4(&gv)).into_dyn();
                g.tape().record(dw, Conv2dWeightGrad { geom: self.geom }, &[x, g])
            }
            None => x.conv2d_weight_grad(g, [ws[2], ws[3]], self.geom),
        });
        vec![dx, dw]
    }
}

struct ConvTranspose2d {
    geom: ConvGeom,
}

impl<T: Float> Op<T> for ConvTranspose2d {
    fn name(&self) -> &'static str {
        "conv_transpose2d"
    }
    fn backward_needed<'t>(
        &self,
        inputs: &[Var<'t, T>],
        _x: Var<'t, T>,
        g: Var<'t, T>,
        needed: &[bool],
    ) -> Vec<Option<Var<'t, T>>> {
        let (z, w) = (inputs[0], inputs[1]);
        let (zs, ws) = (z.shape(), w.shape());
        let grid = conv_grid("conv_transpose2d", &self.geom, &g.shape(), &ws);
        if needed[0] && needed[1] && grid == [zs[2], zs[3]] {
            // Both from one unfolding of g.
            let (gv, wv, zv) = (g.value(), w.value(), z.value());
            let (dz, dw) = k::conv2d_and_weight_grad(view4(&gv), view4(&wv), view4(&zv), &self.geom);
            let tape = g.tape();
            let dz = tape.record(dz.into_dyn(), Conv2d { geom: self.geom, unfolded: None }, &[g, w]);
            let dw = tape.record(dw.into_dyn(), Conv2dWeightGrad { geom: self.geom }, &[g, z]);
            return vec![Some(dz), Some(dw)];
        }
        let dz = needed[0].then(|| g.conv2d_cut(w, self.geom, [zs[2], zs[3]]));
        let dw = needed[1].then(|| g.conv2d_weight_grad(z, [ws[2], ws[3]], self.geom));
        vec![dz, dw]
    }
}

struct Conv2dWeightGrad {
    geom: ConvGeom,
}

impl<T: Float> Op<T> for Conv2dWeightGrad {
    fn name(&self) -> &'static str {
        "conv2d_weight_grad"
    }
    fn backward_needed<'t>(
        &self,
        inputs: &[Var<'t, T>],
        _w: Var<'t, T>,
        g: Var<'t, T>,
        needed: &[bool],
    ) -> Vec<Option<Var<'t, T>>> {
        let (x, z) = (inputs[0], inputs[1]);
        let (xs, zs) = (x.shape(), z.shape());
        let dx = needed[0].then(|| z.conv_transpose2d_sized(g, self.geom, [xs[2], xs[3]]));
        let dz = needed[1].then(|| x.conv2d_cut(g, self.geom, [zs[2], zs[3]]));
        vec![dx, dz]
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// 2-D convolution (cross-correlation, as in PyTorch): `self` is `[B, C_in, H, W]`, `w` is
    /// `[C_out, C_in, KH, KW]`, the result `[B, C_out, OH, OW]` with
    /// `OH = (H + 2*padding - dilation*(KH-1) - 1) / stride + 1` (and the same for `OW`).
    pub fn conv2d(self, w: Var<'t, T>, geom: ConvGeom) -> Var<'t, T> {
        const OP: &str = "conv2d";
        let (xv, wv) = (self.value(), w.value());
        let xs = shape4(OP, "input", xv.shape(), "weight", wv.shape());
        let ws = shape4(OP, "weight", wv.shape(), "input", xv.shape());
        assert!(
            xs[1] == ws[1],
            "{OP}: input of shape {xs:?} has {} channels but weight of shape {ws:?} expects {}",
            xs[1],
            ws[1]
        );
        check_geom(OP, &geom, [ws[2], ws[3]]);
        conv_grid(OP, &geom, &xs, &ws);
        let keep = self.tape().is_recording() && w.requires_grad();
        let (v, unfolded) = k::conv2d_keep(view4(&xv), view4(&wv), &geom, keep);
        self.tape().record(v.into_dyn(), Conv2d { geom, unfolded }, &[self, w])
    }

    /// 2-D transposed convolution, the adjoint of `conv2d(., w)` (PyTorch's `conv_transpose2d`): `self` is
    /// `[B, C_in, H, W]`, `w` is `[C_in, C_out, KH, KW]`, the result `[B, C_out, OH, OW]` with
    /// `OH = (H - 1)*stride - 2*padding + dilation*(KH-1) + output_padding + 1`. As in PyTorch, each
    /// `output_padding` must be smaller than the stride or the dilation along its axis.
    pub fn conv_transpose2d(self, w: Var<'t, T>, geom: ConvGeom, output_padding: [usize; 2]) -> Var<'t, T> {
        const OP: &str = "conv_transpose2d";
        let (ys, ws) = (self.shape(), w.shape());
        let ys = shape4(OP, "input", &ys, "weight", &ws);
        let ws = shape4(OP, "weight", &ws, "input", &ys);
        check_geom(OP, &geom, [ws[2], ws[3]]);
        for a in 0..2 {
            assert!(
                output_padding[a] < geom.stride[a] || output_padding[a] < geom.dilation[a],
                "{OP}: output_padding {output_padding:?} must be smaller than the stride {:?} or the dilation {:?} \
                 (input of shape {ys:?}, weight of shape {ws:?})",
                geom.stride,
                geom.dilation
            );
        }
        let size = [0, 1].map(|a| {
            let n = if a == 0 { ys[2] } else { ys[3] };
            match geom.transpose_out(a, n, ws[2 + a], output_padding[a]) {
                Some(s) if s > 0 && n > 0 => s,
                _ => panic!(
                    "{OP}: input of shape {ys:?} with weight of shape {ws:?}, padding {:?} and output_padding \
                     {output_padding:?} gives an empty output",
                    geom.padding
                ),
            }
        });
        self.conv_transpose2d_sized(w, geom, size)
    }

    /// Weight gradient of `conv2d` as an op: `self` is the convolution's input `[B, C_in, H, W]`, `gy` a
    /// gradient of its output `[B, C_out, OH, OW]`, `kernel` is `[KH, KW]`; the result `[C_out, C_in, KH, KW]` is
    /// `sum over b, i, j of gy[b, o, i, j] * x[b, c, i*stride + ki*dilation - padding, ..]`. `gy` may also cover
    /// just a leading part of the output grid (the rest counts as zero).
    pub fn conv2d_weight_grad(self, gy: Var<'t, T>, kernel: [usize; 2], geom: ConvGeom) -> Var<'t, T> {
        const OP: &str = "conv2d_weight_grad";
        let (xv, gv) = (self.value(), gy.value());
        let xs = shape4(OP, "input", xv.shape(), "output gradient", gv.shape());
        let gs = shape4(OP, "output gradient", gv.shape(), "input", xv.shape());
        check_geom(OP, &geom, kernel);
        assert!(xs[0] == gs[0], "{OP}: input of shape {xs:?} and output gradient of shape {gs:?} differ in batch size");
        let ws = [gs[1], xs[1], kernel[0], kernel[1]];
        let grid = conv_grid(OP, &geom, &xs, &ws);
        assert!(
            gs[2] <= grid[0] && gs[3] <= grid[1],
            "{OP}: output gradient of shape {gs:?} does not fit the output grid {grid:?} of a {kernel:?} convolution \
             of an input of shape {xs:?}"
        );
        let v = k::conv2d_weight_grad(view4(&xv), view4(&gv), kernel, &geom).into_dyn();
        self.tape().record(v, Conv2dWeightGrad { geom }, &[self, gy])
    }

    /// `conv_transpose2d` with its output extent `[OH, OW]` given instead of the output padding (used by the
    /// backward rules; the output padding this implies need not be below the stride).
    fn conv_transpose2d_sized(self, w: Var<'t, T>, geom: ConvGeom, size: [usize; 2]) -> Var<'t, T> {
        const OP: &str = "conv_transpose2d";
        let (yv, wv) = (self.value(), w.value());
        let ys = shape4(OP, "input", yv.shape(), "weight", wv.shape());
        let ws = shape4(OP, "weight", wv.shape(), "input", yv.shape());
        assert!(
            ys[1] == ws[0],
            "{OP}: input of shape {ys:?} has {} channels but weight of shape {ws:?} expects {}",
            ys[1],
            ws[0]
        );
        let output_padding = [0, 1].map(|a| {
            let base = (ys[2 + a].max(1) - 1) * geom.stride[a] + geom.dilation[a] * (ws[2 + a] - 1) + 1;
            (size[a] + 2 * geom.padding[a]).checked_sub(base).unwrap_or_else(|| {
                panic!("{OP}: output extent {size:?} is too small for input of shape {ys:?} and weight {ws:?}")
            })
        });
        let v = k::conv_transpose2d(view4(&yv), view4(&wv), &geom, output_padding).into_dyn();
        debug_assert_eq!(&v.shape()[2..], &size[..]);
        self.tape().record(v, ConvTranspose2d { geom }, &[self, w])
    }

    /// `conv2d` keeping only the leading `size` rows and columns of its output grid.
    fn conv2d_cut(self, w: Var<'t, T>, geom: ConvGeom, size: [usize; 2]) -> Var<'t, T> {
        self.conv2d(w, geom).narrow(2, 0, size[0]).narrow(3, 0, size[1])
    }
}
