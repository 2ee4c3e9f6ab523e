//! The Circles models of the released code: a CNN set generator `G` with `H_embed`, optionally the SRN with
//! an FSPool set encoder `H_agg`, and the set decoder `F`.
//!
//! - Encoder: conv 4x4 (no bias) 3->w s2 p1 ReLU; w->2w s2 p1 BN ReLU; 2w->4w s2 p1 BN ReLU; 4w->8w s4 p1 BN
//!   ReLU, giving `8w x 2 x 2` features (w = 64 in the paper).
//! - `z = Linear(32w -> 100)` of the flattened features; `S0`: the features viewed as 16 groups of `2w`
//!   consecutive values (channels `w/2*i .. w/2*(i+1)` at the 4 positions), each mapped by one shared
//!   `Linear(2w -> 10)`: 16 elements of dimension 10 (`n` elements in general: groups of `32w / n`).
//! - `H_agg`: per element 10 -> 512 -> 512 -> 100 with ReLU, divided by the set size, then FSPool(100, k = 20).
//! - Decoder `F`, per element: Linear(10 -> 16v) BN ReLU as `v x 4 x 4`; ConvT(v -> v/2, 4, s2, p1) BN ReLU;
//!   ConvT(v/2 -> v/4, 4, s2, p1) BN ReLU; ConvT(v/4 -> 3, 4, s4, p0): 64x64 logits `I_i` (v = 1024 in the
//!   paper). `Y = clamp(sum_i softmax_i(I) * sigmoid(I_i), 0, 1)`, the softmax across elements.
//!
//! On 32 x 32 images (the `small` profile) the last convolution has stride 2 (4 -> 2) and the last transposed
//! convolution stride 2, padding 1 (16 -> 32); everything else is as above.

use autograd::{ConvGeom, Var};
use models::{BatchNorm, Conv2d, ConvTranspose2d, FSEncoder, Linear, Module, Param, Scope, Srn, SrnConfig};
use rand::Rng;

/// The model's widths and the SRN's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConfig {
    /// Encoder base width `w` (paper: 64).
    pub encoder_width: usize,
    /// Decoder input width `v` (paper: 1024).
    pub decoder_width: usize,
    /// `H_agg`'s hidden width (paper: 512).
    pub hagg_width: usize,
    /// The SRN's inner loop, or `None` for the baseline (the set is `S0`).
    pub srn: Option<SrnConfig>,
    /// Set elements `n` (paper: 16).
    pub set_size: usize,
    /// Image side: 64 (the paper's) or 32.
    pub image_side: usize,
}

impl ModelConfig {
    /// The paper's set size and image side with the given widths.
    pub fn paper_shape(encoder_width: usize, decoder_width: usize, hagg_width: usize, srn: Option<SrnConfig>) -> Self {
        ModelConfig { encoder_width, decoder_width, hagg_width, srn, set_size: SET_SIZE, image_side: 64 }
    }
}

/// The paper's set size.
pub const SET_SIZE: usize = 16;
pub const ELEMENT_DIM: usize = 10;
pub const EMBED_DIM: usize = 100;
pub const FSPOOL_PIECES: usize = 20;

/// The set generator `G` and the embedding `H_embed`: a CNN whose final feature map is split into elements.
pub struct Encoder {
    convs: Vec<Conv2d<f32>>,
    norms: Vec<BatchNorm<f32>>,
    embed: Linear<f32>,
    element: Linear<f32>,
    set_size: usize,
}

/// The last layer's stride for an image side: the encoder ends on `2 x 2`, the decoder starts on `4 x 4`.
fn last_stride(side: usize) -> usize {
    match side {
        64 => 4,
        32 => 2,
        _ => panic!("Circles model: image side {side} (only 32 and 64 are supported)"),
    }
}

impl Encoder {
    fn new(w: usize, set_size: usize, side: usize, rng: &mut impl Rng) -> Self {
        assert!(
            set_size > 0 && (32 * w).is_multiple_of(set_size),
            "Encoder: {} features cannot be split into {set_size} elements",
            32 * w
        );
        let widths = [3, w, 2 * w, 4 * w, 8 * w];
        let last = ConvGeom::strided(last_stride(side), 1);
        let geoms = [ConvGeom::strided(2, 1), ConvGeom::strided(2, 1), ConvGeom::strided(2, 1), last];
        let convs = (0..4).map(|i| Conv2d::new(widths[i], widths[i + 1], 4, geoms[i], false, rng)).collect();
        let norms = (1..4).map(|i| BatchNorm::new(widths[i + 1])).collect();
        Encoder {
            convs,
            norms,
            embed: Linear::new(32 * w, EMBED_DIM, rng),
            element: Linear::new(32 * w / set_size, ELEMENT_DIM, rng),
            set_size,
        }
    }

    /// Images `[B, 3, S, S]` to `(S0 [B, n, 10], z [B, 100])`.
    pub fn forward<'t>(&self, scope: &Scope<'t, f32>, x: Var<'t, f32>) -> (Var<'t, f32>, Var<'t, f32>) {
        let mut h = self.convs[0].forward(scope, x).relu();
        for (conv, norm) in self.convs[1..].iter().zip(&self.norms) {
            h = norm.forward(scope, conv.forward(scope, h)).relu();
        }
        let b = h.shape()[0];
        let flat = h.reshape(&[b, h.len() / b]);
        let groups = flat.reshape(&[b, self.set_size, h.len() / b / self.set_size]);
        (self.element.forward(scope, groups), self.embed.forward(scope, flat))
    }
}

impl Module<f32> for Encoder {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("convs", self.convs.params());
        p.extend(models::prefixed("norms", self.norms.params()));
        p.extend(models::prefixed("embed", self.embed.params()));
        p.extend(models::prefixed("element", self.element.params()));
        p
    }
    fn buffers(&self) -> Vec<(String, Param<f32>)> {
        models::prefixed("norms", self.norms.buffers())
    }
    fn set_training(&self, training: bool) {
        self.norms.set_training(training);
    }
}

/// The set decoder `F`: every element decoded to an image by shared layers, then mixed per pixel.
///
/// Built for Circles by [`Decoder::new`] (10-dim elements, a `4 x 4` start, `64 x 64` or `32 x 32` images), or
/// for other element sizes and image sides by [`Decoder::with_shape`]: a `s x s` start grows to `16s x 16s`
/// (strides 2, 2, 4), and the logits are cropped to their top-left `out x out` corner.
pub struct Decoder {
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
/// `[B, n, 3, S, S]` (`S = 64` for Circles).
pub struct Decoded<'t> {
    pub image: Var<'t, f32>,
    pub elements: Var<'t, f32>,
}

impl Decoder {
    /// The Circles decoder of input width `v` (paper: 1024): elements of dimension 10 to `side x side` images
    /// (64, the paper's, or 32: then the last layer has stride 2 and padding 1).
    pub fn new(v: usize, side: usize, rng: &mut impl Rng) -> Self {
        match last_stride(side) {
            4 => Self::with_shape(ELEMENT_DIM, v, 4, 64, rng),
            _ => Self::build(ELEMENT_DIM, v, 4, ConvGeom::strided(2, 1), 32, rng),
        }
    }

    /// Elements of dimension `element_dim` to `out_side x out_side` images: `Linear(element_dim -> v s s)` BN
    /// ReLU as `v x s x s` (`s = start_side`), the three transposed convolutions to `16s x 16s`, cropped to the
    /// top-left `out_side x out_side`. Parameters are drawn in the same order as [`Decoder::new`]'s.
    pub fn with_shape(element_dim: usize, v: usize, start_side: usize, out_side: usize, rng: &mut impl Rng) -> Self {
        assert!(v >= 4, "Decoder: width {v} must be at least 4 (the layers have v / 2 and v / 4 channels)");
        assert!(
            out_side > 0 && out_side <= 16 * start_side,
            "Decoder: a {start_side} x {start_side} start decodes to {0} x {0}, which cannot be cropped to \
             {out_side} x {out_side}",
            16 * start_side
        );
        Self::build(element_dim, v, start_side, ConvGeom::strided(4, 0), out_side, rng)
    }

    /// The layers, the last transposed convolution of geometry `last`.
    fn build(
        element_dim: usize,
        v: usize,
        start_side: usize,
        last: ConvGeom,
        out_side: usize,
        rng: &mut impl Rng,
    ) -> Self {
        let geoms = [(ConvGeom::strided(2, 1), v, v / 2), (ConvGeom::strided(2, 1), v / 2, v / 4), (last, v / 4, 3)];
        let cells = start_side * start_side;
        Decoder {
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

impl Module<f32> for Decoder {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("project", self.project.params());
        p.extend(models::prefixed("project_norm", self.project_norm.params()));
        p.extend(models::prefixed("deconvs", self.deconvs.params()));
        p.extend(models::prefixed("norms", self.norms.params()));
        p
    }
    fn buffers(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("project_norm", self.project_norm.buffers());
        p.extend(models::prefixed("norms", self.norms.buffers()));
        p
    }
    fn set_training(&self, training: bool) {
        self.project_norm.set_training(training);
        self.norms.set_training(training);
    }
}

/// A whole Circles model: the baseline when `srn` is `None`.
pub struct CirclesModel {
    pub encoder: Encoder,
    pub srn: Option<Srn<FSEncoder<f32>>>,
    pub decoder: Decoder,
}

/// One forward pass: the set that was decoded, the decoding, and the SRN's inner losses (empty for the
/// baseline).
pub struct Forward<'t> {
    pub set: Var<'t, f32>,
    pub decoded: Decoded<'t>,
    pub inner_losses: Vec<f32>,
}

impl CirclesModel {
    pub fn new(config: &ModelConfig, rng: &mut impl Rng) -> Self {
        let encoder = Encoder::new(config.encoder_width, config.set_size, config.image_side, rng);
        let srn = config
            .srn
            .map(|c| Srn::new(FSEncoder::new(ELEMENT_DIM, config.hagg_width, EMBED_DIM, FSPOOL_PIECES, rng), c));
        CirclesModel { encoder, srn, decoder: Decoder::new(config.decoder_width, config.image_side, rng) }
    }

    /// `training` records everything for the outer backward pass (and uses batch statistics); otherwise call
    /// it inside `tape.no_grad`: the SRN still takes its inner gradients.
    pub fn forward<'t>(&self, scope: &Scope<'t, f32>, images: Var<'t, f32>, training: bool) -> Forward<'t> {
        let (s0, z) = self.encoder.forward(scope, images);
        let (set, inner_losses) = match &self.srn {
            None => (s0, Vec::new()),
            Some(srn) => {
                let r = srn.refine(scope, s0, z, training);
                (r.last(), r.losses)
            }
        };
        Forward { set, decoded: self.decoder.forward(scope, set), inner_losses }
    }
}

impl Module<f32> for CirclesModel {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("encoder", self.encoder.params());
        if let Some(srn) = &self.srn {
            p.extend(models::prefixed("srn", srn.params()));
        }
        p.extend(models::prefixed("decoder", self.decoder.params()));
        p
    }
    fn buffers(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("encoder", self.encoder.buffers());
        if let Some(srn) = &self.srn {
            p.extend(models::prefixed("srn", srn.buffers()));
        }
        p.extend(models::prefixed("decoder", self.decoder.buffers()));
        p
    }
    fn set_training(&self, training: bool) {
        self.encoder.set_training(training);
        self.decoder.set_training(training);
    }
}
