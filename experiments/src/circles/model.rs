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
use models::{
    BatchNorm, Conv2d, Decoded, FSEncoder, Linear, Module, Param, Scope, SetDecoder, SetOutput, SetPipeline, Srn,
    SrnConfig,
};
use rand::Rng;

/// The model's widths and the SRN's settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
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

/// The Circles decoder `F` of input width `v` (paper: 1024): elements of dimension 10 to `side x side` images
/// (64, the paper's: a `4 x 4` start grown by strides 2, 2, 4; or 32: the last layer has stride 2 and padding 1).
pub fn decoder(v: usize, side: usize, rng: &mut impl Rng) -> SetDecoder {
    match last_stride(side) {
        4 => SetDecoder::with_shape(ELEMENT_DIM, v, 4, 64, rng),
        _ => SetDecoder::with_last_layer(ELEMENT_DIM, v, 4, ConvGeom::strided(2, 1), 32, rng),
    }
}

/// A whole Circles model: the baseline when `srn` is `None`.
pub struct CirclesModel {
    pub encoder: Encoder,
    pub srn: Option<Srn<FSEncoder<f32>>>,
    pub decoder: SetDecoder,
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
        CirclesModel { encoder, srn, decoder: decoder(config.decoder_width, config.image_side, rng) }
    }

    /// Algorithm 1: the set, refined if there is an SRN, decoded by `F`. Training or evaluation as the scope
    /// says (see [`models::evaluate`]).
    pub fn forward<'t>(&self, scope: &Scope<'t, f32>, images: Var<'t, f32>) -> Forward<'t> {
        let SetOutput { set, inner_losses, .. } = self.set(scope, images, None);
        Forward { set, decoded: self.decoder.forward(scope, set), inner_losses }
    }
}

impl SetPipeline<f32> for CirclesModel {
    type Encoder = FSEncoder<f32>;
    type Input<'t> = Var<'t, f32>;

    fn generate<'t>(&self, scope: &Scope<'t, f32>, images: Var<'t, f32>) -> (Var<'t, f32>, Option<Var<'t, f32>>) {
        let (s0, z) = self.encoder.forward(scope, images);
        (s0, Some(z))
    }

    fn srn(&self) -> Option<&Srn<FSEncoder<f32>>> {
        self.srn.as_ref()
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
