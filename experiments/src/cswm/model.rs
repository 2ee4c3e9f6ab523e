//! The C-SWM model (Kipf et al., ICLR 2020) as in the public reference's `modules.py`, and C-SWM + SRN, the
//! paper's insertion (Sec. 3.2).
//!
//! - Object extractor ([`ObjectExtractor`]), `hidden / 16` = 32 channels in the reference:
//!   - "small" (2-D shapes): conv 10x10 stride 10 (C -> 32), BatchNorm, ReLU, conv 1x1 (32 -> K), sigmoid:
//!     K masks of 5 x 5. (The reference has this 1x1 convolution between the strided one and the masks.)
//!   - "medium" (Atari): conv 9x9 pad 4 (C -> 32), BatchNorm, LeakyReLU (slope 0.01, PyTorch's default),
//!     conv 5x5 stride 5 (32 -> K), sigmoid: K masks of 10 x 10.
//!   - Convolution weights Xavier-uniform (gain 1), biases zero: the reference's `weights_init`, applied to
//!     the convolutions only; every other layer keeps PyTorch's default initialisation.
//! - Object encoder ([`ObjectEncoder`]), shared by the objects: mask flattened -> H ReLU -> H LayerNorm ReLU
//!   -> D (the reference: `fc1, act1, fc2, ln, act2, fc3`).
//! - Transition model ([`TransitionGnn`]): a graph network over the K objects, fully connected without
//!   self-loops. Edge `(i, j)`: `edge_mlp([s_i, s_j])` with `2D -> H ReLU -> H LayerNorm ReLU -> H`; node `i`:
//!   `node_mlp([s_i, a_i, sum_j edge(i, j)])` with `D + A + H -> H ReLU -> H LayerNorm ReLU -> D`, the node's
//!   input in the reference's order. The action `a_i`: with [`ActionMode::Copy`] (Atari) the one-hot of the
//!   action for every object; with [`ActionMode::PerObject`] (shapes) action `a` gives object `a / A` the
//!   one-hot of `a % A` and the other objects zeros (the reference's `to_one_hot(action, A K).view(-1, A)`).
//!   The prediction is `s + T(s, a)`. For K = 1 the aggregate is zero (no edges).
//! - Loss ([`contrastive_loss`]): energy `E(x, y) = mean_k ||x_k - y_k||^2 / (2 sigma^2)` (a sum over the
//!   D features and a mean over the K objects, as the reference's `diff.pow(2).sum(2).mean(1)`);
//!   `loss = mean_b E(s + T(s, a), s') + mean_b max(0, hinge - E(s, s~))`, with `s~` the batch's states in a
//!   shuffled order (the negative energy compares the *state* with the negative, without the transition, as
//!   the reference does). The permutation is an argument (the reference's `np.random.permutation`, which may
//!   leave a sample in place). Observations and next observations go through the extractor separately, so
//!   each gets its own BatchNorm statistics in training, as in the reference.
//!
//! C-SWM + SRN (the paper: "the original state vectors as the initial guess S0 and a linear projection of
//! object masks as the embedding z", set size K; the rest is our choice, all in [`CswmConfig`]):
//! - `S0` = the K state vectors `[B, K, D]`; `z = Linear(K M -> Z)` of the masks flattened object-major;
//!   `H_agg = FSEncoder(D -> W -> W -> Z, FSPool k = 20)` as in the other experiments.
//! - Defaults: `Z = 64`, `W = 128`, `r = 5` inner steps, `alpha = 0.1`, momentum 0.5, and `S0` learned
//!   (`learn_s0 = true`): with `S0` detached, as the released SRN code does, the object encoder would get no
//!   gradient at all (it makes nothing but `S0`), so here the outer gradient reaches it through the
//!   refinement.
//! - The refined set replaces the state vectors everywhere: for `t` and `t + 1` in the loss (the negatives
//!   are refined states too) and in evaluation; the transition model then runs on it unchanged (no
//!   refinement between predicted steps).

use super::data::Batch;
pub use super::transition::{action_inputs, edges, NormedMlp, TransitionGnn};
use autograd::{ConvGeom, Var};
use models::{
    init, BatchNorm, Conv2d, FSEncoder, Linear, Module, Param, Scope, SetOutput, SetPipeline, Srn, SrnConfig,
};
use rand::Rng;

/// FSPool's number of pieces in `H_agg`.
pub const FSPOOL_PIECES: usize = 20;
/// PyTorch's `LeakyReLU` default slope.
pub const LEAKY_SLOPE: f32 = 0.01;

/// The reference's object extractors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Extractor {
    /// 2-D shapes: masks of side / 10.
    Small,
    /// Atari: masks of side / 5.
    Medium,
}

impl Extractor {
    /// The masks' side for an observation side.
    pub fn mask_side(self, side: usize) -> usize {
        match self {
            Extractor::Small => side / 10,
            Extractor::Medium => side / 5,
        }
    }
}

/// How actions reach the objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionMode {
    /// The same one-hot action for every object (the reference's `--copy-action`, Atari): actions `< A`.
    Copy,
    /// Action `a` belongs to object `a / A` as the one-hot of `a % A` (shapes): actions `< A K`.
    PerObject,
}

/// The model's settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct CswmConfig {
    /// Observation channels (3 for shapes, 6 for Atari's two stacked frames).
    pub in_channels: usize,
    /// Observation side in pixels (50).
    pub side: usize,
    /// K, the object slots.
    pub objects: usize,
    /// D, the state vector size (2 for shapes, 4 for Atari).
    pub embedding_dim: usize,
    /// H, the width of the encoder and transition MLPs (512).
    pub hidden: usize,
    pub extractor: Extractor,
    /// The extractor's hidden channels (the reference's `hidden / 16` = 32).
    pub extractor_width: usize,
    /// A, the action one-hot size (6 for Atari, 4 directions for shapes).
    pub action_dim: usize,
    pub action_mode: ActionMode,
    /// The energy's scale (0.5).
    pub sigma: f64,
    /// The negative energy's margin (1).
    pub hinge: f64,
    /// The SRN's inner loop, or `None` for C-SWM.
    pub srn: Option<SrnConfig>,
    /// `|z|` (SRN only).
    pub z_dim: usize,
    /// `H_agg`'s hidden width (SRN only).
    pub hagg_width: usize,
}

impl CswmConfig {
    /// The reference's Atari setting: medium extractor, D = 4, 6 copied actions, 2 stacked frames.
    pub fn atari(objects: usize) -> Self {
        CswmConfig {
            in_channels: 6,
            side: 50,
            objects,
            embedding_dim: 4,
            hidden: 512,
            extractor: Extractor::Medium,
            extractor_width: 32,
            action_dim: 6,
            action_mode: ActionMode::Copy,
            sigma: 0.5,
            hinge: 1.0,
            srn: None,
            z_dim: 64,
            hagg_width: 128,
        }
    }

    /// The reference's 2-D shapes setting: small extractor, K = 5, D = 2, one frame, actions per object.
    pub fn shapes() -> Self {
        CswmConfig {
            in_channels: 3,
            embedding_dim: 2,
            extractor: Extractor::Small,
            action_dim: 4,
            action_mode: ActionMode::PerObject,
            ..Self::atari(5)
        }
    }

    /// The same model with the SRN and the defaults of the module documentation.
    pub fn with_srn(self) -> Self {
        let srn = SrnConfig { steps: 5, alpha: 0.1, momentum: 0.5, learn_s0: true, ..SrnConfig::default() };
        CswmConfig { srn: Some(srn), ..self }
    }

    /// Values in one object mask.
    pub fn mask_len(&self) -> usize {
        self.extractor.mask_side(self.side).pow(2)
    }

    /// The number of distinct actions the model takes.
    pub fn num_actions(&self) -> usize {
        match self.action_mode {
            ActionMode::Copy => self.action_dim,
            ActionMode::PerObject => self.action_dim * self.objects,
        }
    }
}

/// A convolution with the reference's initialisation: Xavier-uniform weight, zero bias.
fn xavier_conv(i: usize, o: usize, k: usize, geom: ConvGeom, rng: &mut impl Rng) -> Conv2d<f32> {
    let conv = Conv2d::new(i, o, k, geom, true, rng);
    conv.weight.set(init::xavier_uniform(&[o, i, k, k], 1.0, rng));
    conv.bias.as_ref().expect("bias").set(init::zeros(&[o]));
    conv
}

/// The CNN that maps an observation to K object masks in `(0, 1)`.
pub struct ObjectExtractor {
    pub kind: Extractor,
    pub conv1: Conv2d<f32>,
    pub norm: BatchNorm<f32>,
    pub conv2: Conv2d<f32>,
}

impl ObjectExtractor {
    pub fn new(c: &CswmConfig, rng: &mut impl Rng) -> Self {
        let w = c.extractor_width;
        let (conv1, conv2) = match c.extractor {
            Extractor::Small => (
                xavier_conv(c.in_channels, w, 10, ConvGeom::strided(10, 0), rng),
                xavier_conv(w, c.objects, 1, ConvGeom::strided(1, 0), rng),
            ),
            Extractor::Medium => (
                xavier_conv(c.in_channels, w, 9, ConvGeom::strided(1, 4), rng),
                xavier_conv(w, c.objects, 5, ConvGeom::strided(5, 0), rng),
            ),
        };
        ObjectExtractor { kind: c.extractor, conv1, norm: BatchNorm::new(w), conv2 }
    }

    /// Observations `[B, C, side, side]` to masks `[B, K, m, m]`.
    pub fn forward<'t>(&self, scope: &Scope<'t, f32>, obs: Var<'t, f32>) -> Var<'t, f32> {
        let h = self.norm.forward(scope, self.conv1.forward(scope, obs));
        let h = match self.kind {
            Extractor::Small => h.relu(),
            Extractor::Medium => h.leaky_relu(LEAKY_SLOPE),
        };
        self.conv2.forward(scope, h).sigmoid()
    }
}

impl Module<f32> for ObjectExtractor {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("conv1", self.conv1.params());
        p.extend(models::prefixed("norm", self.norm.params()));
        p.extend(models::prefixed("conv2", self.conv2.params()));
        p
    }
    fn buffers(&self) -> Vec<(String, Param<f32>)> {
        models::prefixed("norm", self.norm.buffers())
    }
    fn set_training(&self, training: bool) {
        self.norm.set_training(training);
    }
}

/// The object encoder: each mask, flattened, through a shared [`NormedMlp`] to a state vector.
pub struct ObjectEncoder {
    pub mlp: NormedMlp,
}

impl ObjectEncoder {
    /// Masks `[B, K, m, m]` to states `[B, K, D]`.
    pub fn forward<'t>(&self, scope: &Scope<'t, f32>, masks: Var<'t, f32>) -> Var<'t, f32> {
        let s = masks.shape();
        self.mlp.forward(scope, masks.reshape(&[s[0], s[1], s[2] * s[3]]))
    }
}

impl Module<f32> for ObjectEncoder {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        models::prefixed("mlp", self.mlp.params())
    }
}

/// `E(x, y) = mean_k ||x_k - y_k||^2 / (2 sigma^2)` per sample: `[B, K, D]` pairs to `[B]`.
pub fn energy<'t>(x: Var<'t, f32>, y: Var<'t, f32>, sigma: f64) -> Var<'t, f32> {
    let norm = (0.5 / (sigma * sigma)) as f32;
    (x - y).square().sum_axes(&[2], false).mean_axes(&[1], false) * norm
}

/// The contrastive loss's parts.
pub struct CswmLoss<'t> {
    /// `positive + negative`, to differentiate.
    pub loss: Var<'t, f32>,
    /// `mean_b E(s + T, s')`.
    pub positive: f32,
    /// `mean_b max(0, hinge - E(s, s~))`.
    pub negative: f32,
    /// The SRN's inner losses at `t` then at `t + 1` (empty without an SRN).
    pub inner_losses: Vec<f32>,
}

/// The hinge loss from states `[B, K, D]`, the transition's updates, the next states and the negatives'
/// indices into the batch: `(loss, positive part, negative part)`.
pub fn contrastive_loss<'t>(
    states: Var<'t, f32>,
    deltas: Var<'t, f32>,
    next_states: Var<'t, f32>,
    negatives: &[usize],
    sigma: f64,
    hinge: f64,
) -> (Var<'t, f32>, Var<'t, f32>, Var<'t, f32>) {
    assert_eq!(negatives.len(), states.shape()[0], "contrastive_loss: one negative per sample");
    let positive = energy(states + deltas, next_states, sigma).mean();
    let negative = energy(states, states.index_select(0, negatives), sigma);
    let negative = (negative * -1.0).add_scalar(hinge as f32).relu().mean();
    (positive + negative, positive, negative)
}

/// C-SWM, or C-SWM + SRN when `srn` (and `embed`, `H_embed`) are present.
pub struct Cswm {
    pub config: CswmConfig,
    pub extractor: ObjectExtractor,
    pub encoder: ObjectEncoder,
    pub transition: TransitionGnn,
    /// `H_embed`: `Linear(K M -> Z)` of the flattened masks (SRN only).
    pub embed: Option<Linear<f32>>,
    pub srn: Option<Srn<FSEncoder<f32>>>,
}

impl Cswm {
    /// Parameters drawn in order: extractor, encoder, transition, `H_embed`, `H_agg`.
    pub fn new(config: CswmConfig, rng: &mut impl Rng) -> Self {
        let c = &config;
        assert!(
            c.objects > 0 && c.extractor.mask_side(c.side) > 0,
            "C-SWM: {} objects, side {}: no masks",
            c.objects,
            c.side
        );
        let extractor = ObjectExtractor::new(c, rng);
        let encoder = ObjectEncoder { mlp: NormedMlp::new(c.mask_len(), c.hidden, c.embedding_dim, rng) };
        let transition = TransitionGnn::new(c.embedding_dim, c.hidden, c.action_dim, c.action_mode, rng);
        let (embed, srn) = match c.srn {
            None => (None, None),
            Some(s) => {
                let embed = Linear::new(c.objects * c.mask_len(), c.z_dim, rng);
                let h_agg = FSEncoder::new(c.embedding_dim, c.hagg_width, c.z_dim, FSPOOL_PIECES, rng);
                (Some(embed), Some(Srn::new(h_agg, s)))
            }
        };
        Cswm { config, extractor, encoder, transition, embed, srn }
    }

    /// Observations `[B, C, side, side]` to the state vectors `[B, K, D]` (refined with an SRN), with `S0`
    /// and the inner losses; training or evaluation as the scope says.
    pub fn encode<'t>(&self, scope: &Scope<'t, f32>, obs: Var<'t, f32>) -> SetOutput<'t, f32> {
        self.set(scope, obs, None)
    }

    /// The updates `T(s, a)` `[B, K, D]`; the prediction is `states + deltas`.
    pub fn transition<'t>(&self, scope: &Scope<'t, f32>, states: Var<'t, f32>, actions: &[usize]) -> Var<'t, f32> {
        self.transition.forward(scope, states, actions)
    }

    /// The contrastive loss of a batch with `negatives[b]` the batch index of sample `b`'s negative.
    pub fn loss<'t>(&self, scope: &Scope<'t, f32>, batch: &Batch, negatives: &[usize]) -> CswmLoss<'t> {
        let tape = scope.tape();
        let now = self.encode(scope, tape.constant(batch.obs.clone()));
        let next = self.encode(scope, tape.constant(batch.next_obs.clone()));
        let deltas = self.transition(scope, now.set, &batch.actions);
        let c = &self.config;
        let (loss, positive, negative) = contrastive_loss(now.set, deltas, next.set, negatives, c.sigma, c.hinge);
        let mut inner_losses = now.inner_losses;
        inner_losses.extend(next.inner_losses);
        CswmLoss { loss, positive: positive.item(), negative: negative.item(), inner_losses }
    }
}

impl SetPipeline<f32> for Cswm {
    type Encoder = FSEncoder<f32>;
    type Input<'t> = Var<'t, f32>;

    /// `S0`: the state vectors; `z = H_embed(masks)`, made only when there is an SRN to use it.
    fn generate<'t>(&self, scope: &Scope<'t, f32>, obs: Var<'t, f32>) -> (Var<'t, f32>, Option<Var<'t, f32>>) {
        let masks = self.extractor.forward(scope, obs);
        let s0 = self.encoder.forward(scope, masks);
        let b = masks.shape()[0];
        let z = self
            .embed
            .as_ref()
            .map(|e| e.forward(scope, masks.reshape(&[b, self.config.objects * self.config.mask_len()])));
        (s0, z)
    }

    fn srn(&self) -> Option<&Srn<FSEncoder<f32>>> {
        self.srn.as_ref()
    }
}

impl Module<f32> for Cswm {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("extractor", self.extractor.params());
        p.extend(models::prefixed("encoder", self.encoder.params()));
        p.extend(models::prefixed("transition", self.transition.params()));
        if let Some(embed) = &self.embed {
            p.extend(models::prefixed("embed", embed.params()));
        }
        if let Some(srn) = &self.srn {
            p.extend(models::prefixed("srn", srn.params()));
        }
        p
    }
    fn buffers(&self) -> Vec<(String, Param<f32>)> {
        models::prefixed("extractor", self.extractor.buffers())
    }
    fn set_training(&self, training: bool) {
        self.extractor.set_training(training);
    }
}
