//! The Sort-of-CLEVR models (paper Sec. 3.1): the relation network (RN) of Santoro et al. as in the public
//! reference code (kimhc6028/relational-networks), and RN + SRN, the Set Refiner Network inserted between the
//! convolutions and the relation module.
//!
//! - Perception: 4 x [Conv2d 3x3 s2 p1 with bias, 24 channels, ReLU, then BatchNorm] on `[B, 3, 75, 75]`
//!   images in `[0, 1]`: 75 -> 38 -> 19 -> 10 -> 5.
//! - Objects: the 25 cells of the `5 x 5` map in row-major order (`cell = row * 5 + col`), each its 24
//!   features and the coordinates `((row - 2) / 2, (col - 2) / 2)`: `[B, 25, 26]`. The reference computes the
//!   row as `i / 5` and, under Python 3, that is a float division (`i / 5` is `0.2 i`, so its first coordinate
//!   runs smoothly from -1 to 1.4 over the cells instead of naming the row); we use the integer row, the
//!   evident intent.
//! - g over all 625 ordered pairs `(i, j)`: `[o_j, o_i, q]` (26 + 26 + 11 = 63 values, in the reference's
//!   order) -> 256 -> 256 -> 256 -> 256, ReLU after each, summed over the pairs. The first layer is linear,
//!   so it is applied per object and the pair pre-activation is a broadcast sum (see [`models::PairRelation`]); the
//!   parameter is still the reference's single `Linear(63 -> 256)`.
//! - f: 256 -> 256 ReLU -> 256 ReLU -> Dropout(0.5) (training only) -> 10 logits.
//!
//! RN + SRN (the paper inserts the SRN into the reference RN without further details; these are our
//! choices, all in [`RnConfig`]):
//! - `S0` = the 25 objects (features and coordinates); `z = Linear(600 -> Z)` of the conv features flattened
//!   channel-major (`[B, 24, 5, 5]` as `[B, 600]`); `H_agg = FSEncoder(26 -> H -> H -> Z, FSPool k = 20)`.
//! - Defaults: `Z = 64`, `H = 128`, `r = 5` inner steps, `alpha = 1.0`, momentum 0.5, and `S0` learned
//!   (`learn_s0 = true`: the convolutions get gradient through the refinement as well as through `z`).
//! - g runs on the refined set `S_r`.

use autograd::{concat, ConvGeom, Var};
use models::{
    BatchNorm, Conv2d, FSEncoder, Linear, Mlp, Module, PairRelation, Param, Scope, SetDecoder, SetOutput, SetPipeline,
    Srn, SrnConfig,
};
use ndarray::ArrayD;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Number of objects (cells of the final `5 x 5` feature map).
pub const CELLS: usize = 25;
/// Side of the final feature map.
pub const SIDE: usize = 5;
/// Channels of the perceptual CNN.
pub const CHANNELS: usize = 24;
/// An object: 24 features and 2 coordinates.
pub const OBJECT_DIM: usize = CHANNELS + 2;
/// Length of a question vector.
pub const QUESTION_DIM: usize = 11;
/// Number of answer classes.
pub const ANSWERS: usize = 10;
/// Width of g and f.
pub const G_WIDTH: usize = 256;
/// FSPool's number of pieces in `H_agg`.
pub const FSPOOL_PIECES: usize = 20;
/// Image side.
pub const IMAGE_SIDE: usize = 75;
/// f's dropout probability.
pub const DROPOUT: f64 = 0.5;

/// The model's settings: `srn` is `None` for the RN.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RnConfig {
    /// The SRN's inner loop, or `None` for the plain RN.
    pub srn: Option<SrnConfig>,
    /// `|z|`, the output size of `H_embed` and `H_agg` (default 64).
    pub z_dim: usize,
    /// `H_agg`'s hidden width (default 128).
    pub hagg_width: usize,
}

impl RnConfig {
    /// The relation network.
    pub fn rn() -> Self {
        RnConfig { srn: None, z_dim: 64, hagg_width: 128 }
    }

    /// RN + SRN with the defaults of the module documentation.
    pub fn rn_srn() -> Self {
        RnConfig {
            srn: Some(SrnConfig { steps: 5, alpha: 1.0, momentum: 0.5, learn_s0: true, ..SrnConfig::default() }),
            ..Self::rn()
        }
    }
}

/// The perceptual CNN.
pub struct Perception {
    pub convs: Vec<Conv2d<f32>>,
    pub norms: Vec<BatchNorm<f32>>,
}

impl Perception {
    pub fn new(rng: &mut impl Rng) -> Self {
        let convs = (0..4)
            .map(|i| Conv2d::new(if i == 0 { 3 } else { CHANNELS }, CHANNELS, 3, ConvGeom::strided(2, 1), true, rng))
            .collect();
        Perception { convs, norms: (0..4).map(|_| BatchNorm::new(CHANNELS)).collect() }
    }

    /// Images `[B, 3, 75, 75]` to the feature map `[B, 24, 5, 5]`.
    pub fn features<'t>(&self, scope: &Scope<'t, f32>, images: Var<'t, f32>) -> Var<'t, f32> {
        self.convs
            .iter()
            .zip(&self.norms)
            .fold(images, |h, (conv, norm)| norm.forward(scope, conv.forward(scope, h).relu()))
    }

    /// A feature map `[B, 24, 5, 5]` to the objects `[B, 25, 26]`: each cell's features, then its coordinates.
    pub fn objects<'t>(features: Var<'t, f32>) -> Var<'t, f32> {
        let shape = features.shape();
        assert_eq!(&shape[1..], &[CHANNELS, SIDE, SIDE], "Perception::objects: feature map of shape {shape:?}");
        let b = shape[0];
        let cells = features.reshape(&[b, CHANNELS, CELLS]).permute(&[0, 2, 1]);
        concat(&[cells, features.constant(coordinates(b))], 2)
    }
}

/// The cells' coordinates `[b, 25, 2]`: `((row - 2) / 2, (col - 2) / 2)` for `cell = row * 5 + col`.
pub fn coordinates(b: usize) -> ArrayD<f32> {
    ArrayD::from_shape_fn(vec![b, CELLS, 2], |ix| {
        let v = if ix[2] == 0 { ix[1] / SIDE } else { ix[1] % SIDE };
        (v as f32 - 2.0) / 2.0
    })
}

impl Module<f32> for Perception {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("convs", self.convs.params());
        p.extend(models::prefixed("norms", self.norms.params()));
        p
    }
    fn buffers(&self) -> Vec<(String, Param<f32>)> {
        models::prefixed("norms", self.norms.buffers())
    }
    fn set_training(&self, training: bool) {
        self.norms.set_training(training);
    }
}

/// g: [`models::PairRelation`] `63 -> 256 -> 256 -> 256 -> 256`, ReLU after every layer, over the 625 ordered
/// pairs of objects with the question, summed over the pairs; parameters "mlp.0.weight" `[256, 63]`, ...
pub fn relation_g(rng: &mut impl Rng) -> PairRelation<f32> {
    PairRelation::new(OBJECT_DIM, QUESTION_DIM, G_WIDTH, 4, rng)
}

/// f: `256 -> 256` ReLU `-> 256` ReLU, dropout 0.5 in training, `-> 10` logits. Parameters "mlp.0.weight", ...
pub struct AnswerF {
    pub mlp: Mlp<f32>,
}

impl AnswerF {
    pub fn new(rng: &mut impl Rng) -> Self {
        AnswerF { mlp: Mlp::new(&[G_WIDTH, G_WIDTH, G_WIDTH, ANSWERS], rng) }
    }

    /// `[B, 256]` to logits `[B, 10]`; with `training`, dropout with masks drawn from `dropout_seed`.
    pub fn forward<'t>(
        &self,
        scope: &Scope<'t, f32>,
        x: Var<'t, f32>,
        training: bool,
        dropout_seed: u64,
    ) -> Var<'t, f32> {
        let l = &self.mlp.layers;
        let h = l[1].forward(scope, l[0].forward(scope, x).relu()).relu();
        let h = h.dropout(DROPOUT, &mut StdRng::seed_from_u64(dropout_seed), training);
        l[2].forward(scope, h)
    }
}

impl Module<f32> for AnswerF {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        models::prefixed("mlp", self.mlp.params())
    }
}

/// RN, or RN + SRN when `srn` (and `embed`, `H_embed`) are present.
pub struct RnModel {
    pub perception: Perception,
    /// `H_embed`: `Linear(600 -> Z)` of the flattened feature map (RN + SRN only).
    pub embed: Option<Linear<f32>>,
    pub srn: Option<Srn<FSEncoder<f32>>>,
    pub g: PairRelation<f32>,
    pub f: AnswerF,
}

impl RnModel {
    /// Parameters drawn in order: perception, `H_embed`, `H_agg`, g, f.
    pub fn new(config: &RnConfig, rng: &mut impl Rng) -> Self {
        let perception = Perception::new(rng);
        let (embed, srn) = match config.srn {
            None => (None, None),
            Some(c) => {
                let embed = Linear::new(CHANNELS * CELLS, config.z_dim, rng);
                let h_agg = FSEncoder::new(OBJECT_DIM, config.hagg_width, config.z_dim, FSPOOL_PIECES, rng);
                (Some(embed), Some(Srn::new(h_agg, c)))
            }
        };
        let g = relation_g(rng);
        RnModel { perception, embed, srn, g, f: AnswerF::new(rng) }
    }

    /// Perception and refinement (Algorithm 1 up to `F`), training or evaluation as the scope says.
    pub fn perceive<'t>(&self, scope: &Scope<'t, f32>, images: Var<'t, f32>) -> SetOutput<'t, f32> {
        self.set(scope, images, None)
    }

    /// The relation module: sets `[B, 25, 26]` and questions `[B, 11]` to logits `[B, 10]` (dropout in f on a
    /// training scope, drawn from `dropout_seed`).
    pub fn relate<'t>(
        &self,
        scope: &Scope<'t, f32>,
        set: Var<'t, f32>,
        questions: Var<'t, f32>,
        dropout_seed: u64,
    ) -> Var<'t, f32> {
        self.f.forward(scope, self.g.forward(scope, set, questions), scope.training(), dropout_seed)
    }

    /// Images and questions to logits `[B, 10]` and the SRN's inner losses.
    pub fn forward<'t>(
        &self,
        scope: &Scope<'t, f32>,
        images: Var<'t, f32>,
        questions: Var<'t, f32>,
        dropout_seed: u64,
    ) -> (Var<'t, f32>, Vec<f32>) {
        let p = self.perceive(scope, images);
        (self.relate(scope, p.set, questions, dropout_seed), p.inner_losses)
    }

    /// Change r for evaluation (the ablation trains with 5 and evaluates with 0): no-op for the RN.
    pub fn set_inner_steps(&mut self, r: usize) {
        if let Some(srn) = &mut self.srn {
            srn.config.steps = r;
        }
    }
}

impl SetPipeline<f32> for RnModel {
    type Encoder = FSEncoder<f32>;
    type Input<'t> = Var<'t, f32>;

    /// S0: the 25 objects; z = H_embed(conv features), made only when there is an SRN to use it.
    fn generate<'t>(&self, scope: &Scope<'t, f32>, images: Var<'t, f32>) -> (Var<'t, f32>, Option<Var<'t, f32>>) {
        let features = self.perception.features(scope, images);
        let s0 = Perception::objects(features);
        let b = features.shape()[0];
        let z = self.embed.as_ref().map(|embed| embed.forward(scope, features.reshape(&[b, CHANNELS * CELLS])));
        (s0, z)
    }

    fn srn(&self) -> Option<&Srn<FSEncoder<f32>>> {
        self.srn.as_ref()
    }
}

impl Module<f32> for RnModel {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("perception", self.perception.params());
        if let Some(embed) = &self.embed {
            p.extend(models::prefixed("embed", embed.params()));
        }
        if let Some(srn) = &self.srn {
            p.extend(models::prefixed("srn", srn.params()));
        }
        p.extend(models::prefixed("g", self.g.params()));
        p.extend(models::prefixed("f", self.f.params()));
        p
    }
    fn buffers(&self) -> Vec<(String, Param<f32>)> {
        models::prefixed("perception", self.perception.buffers())
    }
    fn set_training(&self, training: bool) {
        self.perception.set_training(training);
    }
}

/// Figure 4's reconstruction decoder on the perceptual set: the Circles decoder `F` for 26-dim elements, a
/// `5 x 5` start (5 -> 10 -> 20 -> 80) cropped to `75 x 75`, of input width `width`.
pub fn reconstruction_decoder(width: usize, rng: &mut impl Rng) -> SetDecoder {
    SetDecoder::with_shape(OBJECT_DIM, width, SIDE, IMAGE_SIDE, rng)
}
