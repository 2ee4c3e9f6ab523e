//! The set decoder `F` of the paper's Circles experiment (Sec. 2.2), also used to draw what a frozen set holds
//! (Sort-of-CLEVR's Figure 4).

use crate::{prefixed, BatchNorm, ConvTranspose2d, Linear, Module, Param, Scope};
use autograd::{ConvGeom, Var};
use rand::Rng;

/// The set decoder of the paper's Circles experiment, the `F` that turns a set into an image: every element
/// decoded to an image by shared layers, then mixed per pixel, `Y = clamp(sum_i softmax_i(I) * sigmoid(I_i),
/// 0, 1)` with the softmax across elements.
///
/// [`SetDecoder::with_shape`]: a `s x s` start grows to `16s x 16s` (strides 2, 2, 4) and the logits are
/// cropped to their top-left `out x out` corner; [`SetDecoder::with_last_layer`] chooses the last transposed
/// convolution's geometry.
pub struct SetDecoder {
    project: Linear<f32>,
    project_norm: BatchNorm<f32>,
    deconvs: Vec<ConvTranspose2d<f32>>,
    norms: Vec<BatchNorm<f32>>,
    width: usize,
    element_dim: usize,
    start_side: usize,
    out_side: usize,
}

/// A decoded set: the image `Y` `[B, 3, S, S]` and each element's contribution `softmax_i * sigmoid(I_i)`
/// `[B, n, 3, S, S]`.
pub struct Decoded<'t> {
    pub image: Var<'t, f32>,
    pub elements: Var<'t, f32>,
}

impl SetDecoder {
    /// Elements of dimension `element_dim` to `out_side x out_side` images: `Linear(element_dim -> v s s)` BN
    /// ReLU as `v x s x s` (`s = start_side`), the three transposed convolutions to `16s x 16s`, cropped to the
    /// top-left `out_side x out_side`.
    pub fn with_shape(element_dim: usize, v: usize, start_side: usize, out_side: usize, rng: &mut impl Rng) -> Self {
        assert!(
            out_side > 0 && out_side <= 16 * start_side,
            "SetDecoder: a {start_side} x {start_side} start decodes to {0} x {0}, which cannot be cropped to \
             {out_side} x {out_side}",
            16 * start_side
        );
        Self::with_last_layer(element_dim, v, start_side, ConvGeom::strided(4, 0), out_side, rng)
    }

    /// As [`SetDecoder::with_shape`] with the last transposed convolution of geometry `last` (kernel 4); its
    /// output is cropped to `out_side` if larger.
    pub fn with_last_layer(
        element_dim: usize,
        v: usize,
        start_side: usize,
        last: ConvGeom,
        out_side: usize,
        rng: &mut impl Rng,
    ) -> Self {
        assert!(v >= 4, "SetDecoder: width {v} must be at least 4 (the layers have v / 2 and v / 4 channels)");
        let geoms = [(ConvGeom::strided(2, 1), v, v / 2), (ConvGeom::strided(2, 1), v / 2, v / 4), (last, v / 4, 3)];
        let cells = start_side * start_side;
        SetDecoder {
            project: Linear::new(element_dim, cells * v, rng),
            project_norm: BatchNorm::new(cells * v),
            deconvs: geoms.iter().map(|&(g, i, o)| ConvTranspose2d::new(i, o, 4, g, 0, false, rng)).collect(),
            norms: vec![BatchNorm::new(v / 2), BatchNorm::new(v / 4)],
            width: v,
            element_dim,
            start_side,
            out_side,
        }
    }

    /// The side of the decoded images.
    pub fn out_side(&self) -> usize {
        self.out_side
    }

    /// Sets `[B, n, element_dim]` to images.
    pub fn forward<'t>(&self, scope: &Scope<'t, f32>, set: Var<'t, f32>) -> Decoded<'t> {
        let (b, n) = (set.shape()[0], set.shape()[1]);
        let flat = set.reshape(&[b * n, self.element_dim]);
        let h = self.project_norm.forward(scope, self.project.forward(scope, flat)).relu();
        let mut h = h.reshape(&[b * n, self.width, self.start_side, self.start_side]);
        for (deconv, norm) in self.deconvs.iter().zip(&self.norms) {
            h = norm.forward(scope, deconv.forward(scope, h)).relu();
        }
        let mut logits = self.deconvs[2].forward(scope, h);
        let (side, out) = (logits.shape()[2], self.out_side);
        if out < side {
            logits = logits.narrow(2, 0, out).narrow(3, 0, out);
        }
        let logits = logits.reshape(&[b, n, 3, out, out]);
        let elements = logits.softmax(1) * logits.sigmoid();
        Decoded { image: elements.sum_axes(&[1], false).clamp(0.0, 1.0), elements }
    }
}

impl Module<f32> for SetDecoder {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = prefixed("project", self.project.params());
        p.extend(prefixed("project_norm", self.project_norm.params()));
        p.extend(prefixed("deconvs", self.deconvs.params()));
        p.extend(prefixed("norms", self.norms.params()));
        p
    }
    fn buffers(&self) -> Vec<(String, Param<f32>)> {
        let mut p = prefixed("project_norm", self.project_norm.buffers());
        p.extend(prefixed("norms", self.norms.buffers()));
        p
    }
    fn set_training(&self, training: bool) {
        self.project_norm.set_training(training);
        self.norms.set_training(training);
    }
}
