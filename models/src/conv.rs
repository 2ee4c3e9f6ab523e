//! `Conv2d` and `ConvTranspose2d` (PyTorch's `nn.Conv2d` / `nn.ConvTranspose2d`) with square kernels.
//!
//! Weights follow PyTorch's layouts: `[out, in, k, k]` for a convolution, `[in, out, k, k]` for a transposed
//! convolution. Both are initialised as PyTorch does, with the bound taken from the weight's dimension 1: so a
//! transposed convolution's bound is `1 / sqrt(out * k * k)`, as in PyTorch (not the input channels).

use crate::init;
use crate::module::Module;
use crate::param::Param;
use crate::scope::Scope;
use autograd::Float;
use autograd::{ConvGeom, Var};
use rand::Rng;

/// The `[1, C, 1, 1]` view of a per-channel bias, added by broadcasting.
fn add_channel_bias<'t, T: Float>(scope: &Scope<'t, T>, y: Var<'t, T>, bias: &Option<Param<T>>) -> Var<'t, T> {
    match bias {
        Some(b) => {
            let c = b.len();
            y + scope.param(b).reshape(&[1, c, 1, 1])
        }
        None => y,
    }
}

/// 2-D convolution of `[B, in, H, W]` inputs with a square `k x k` kernel: weight `[out, in, k, k]`, bias `[out]`.
pub struct Conv2d<T: Float = f32> {
    pub weight: Param<T>,
    pub bias: Option<Param<T>>,
    pub geom: ConvGeom,
}

impl<T: Float> Clone for Conv2d<T> {
    /// Shares the parameters (as cloning any [`Param`] does).
    fn clone(&self) -> Self {
        Conv2d { weight: self.weight.clone(), bias: self.bias.clone(), geom: self.geom }
    }
}

impl<T: Float> Conv2d<T> {
    /// A layer initialised as PyTorch does: weight and bias `U(-b, b)` with `b = 1 / sqrt(in * k * k)`, the
    /// weight drawn first.
    pub fn new<R: Rng + ?Sized>(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        geom: ConvGeom,
        bias: bool,
        rng: &mut R,
    ) -> Self {
        let shape = [out_channels, in_channels, kernel, kernel];
        let weight = Param::new(init::default_weight(&shape, rng));
        let bias = bias.then(|| Param::new(init::default_bias(&shape, out_channels, rng)));
        Conv2d { weight, bias, geom }
    }

    pub fn in_channels(&self) -> usize {
        self.weight.shape()[1]
    }

    pub fn out_channels(&self) -> usize {
        self.weight.shape()[0]
    }

    pub fn kernel(&self) -> usize {
        self.weight.shape()[2]
    }

    /// Apply to `x [B, in, H, W]`, giving `[B, out, OH, OW]` with `OH = (H + 2p - d(k-1) - 1) / s + 1`.
    pub fn forward<'t>(&self, scope: &Scope<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(
            shape.len() == 4 && shape[1] == self.in_channels(),
            "Conv2d({} -> {}, kernel {}): input of shape {shape:?} is not [B, {}, H, W]",
            self.in_channels(),
            self.out_channels(),
            self.kernel(),
            self.in_channels()
        );
        let y = x.conv2d(scope.param(&self.weight), self.geom);
        add_channel_bias(scope, y, &self.bias)
    }
}

impl<T: Float> Module<T> for Conv2d<T> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
}

/// 2-D transposed convolution of `[B, in, H, W]` inputs with a square `k x k` kernel: weight
/// `[in, out, k, k]`, bias `[out]`.
pub struct ConvTranspose2d<T: Float = f32> {
    pub weight: Param<T>,
    pub bias: Option<Param<T>>,
    pub geom: ConvGeom,
    /// Extra rows and columns at the bottom and right of the output (PyTorch's `output_padding`, the same
    /// along both axes); must be smaller than the stride or the dilation.
    pub output_padding: usize,
}

impl<T: Float> Clone for ConvTranspose2d<T> {
    /// Shares the parameters (as cloning any [`Param`] does).
    fn clone(&self) -> Self {
        ConvTranspose2d {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            geom: self.geom,
            output_padding: self.output_padding,
        }
    }
}

impl<T: Float> ConvTranspose2d<T> {
    /// A layer initialised as PyTorch does: weight and bias `U(-b, b)` with `b = 1 / sqrt(out * k * k)` (the
    /// fan in PyTorch computes from the weight `[in, out, k, k]`), the weight drawn first.
    pub fn new<R: Rng + ?Sized>(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        geom: ConvGeom,
        output_padding: usize,
        bias: bool,
        rng: &mut R,
    ) -> Self {
        let shape = [in_channels, out_channels, kernel, kernel];
        let weight = Param::new(init::default_weight(&shape, rng));
        let bias = bias.then(|| Param::new(init::default_bias(&shape, out_channels, rng)));
        ConvTranspose2d { weight, bias, geom, output_padding }
    }

    pub fn in_channels(&self) -> usize {
        self.weight.shape()[0]
    }

    pub fn out_channels(&self) -> usize {
        self.weight.shape()[1]
    }

    pub fn kernel(&self) -> usize {
        self.weight.shape()[2]
    }

    /// Apply to `x [B, in, H, W]`, giving `[B, out, OH, OW]` with
    /// `OH = (H - 1) s - 2p + d(k-1) + output_padding + 1`.
    pub fn forward<'t>(&self, scope: &Scope<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(
            shape.len() == 4 && shape[1] == self.in_channels(),
            "ConvTranspose2d({} -> {}, kernel {}): input of shape {shape:?} is not [B, {}, H, W]",
            self.in_channels(),
            self.out_channels(),
            self.kernel(),
            self.in_channels()
        );
        let op = self.output_padding;
        let y = x.conv_transpose2d(scope.param(&self.weight), self.geom, [op, op]);
        add_channel_bias(scope, y, &self.bias)
    }
}

impl<T: Float> Module<T> for ConvTranspose2d<T> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
}
