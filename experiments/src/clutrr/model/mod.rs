//! The CLUTRR models (the paper's Sec. 3.3): the CLUTRR baselines' relation network over sentence vectors (RN),
//! and RN + SRN, RN + GRN, the refinement inserted between the reader and the RN.
//!
//! - Reader ([`reader`]): word embeddings (100), a bidirectional 2-layer LSTM (hidden 100) over each sentence,
//!   mean-pooled into a sentence vector (`D = 200`); the query's two entities as the sums of the reader's
//!   outputs at their mentions (`[B, 2D]`); 0.5 dropout between the LSTM layers in training.
//! - RN: g ([`models::PairRelation`], 4 layers of width 64, ReLU after each) over every ordered pair of
//!   sentences with the query, `[o_j, o_i, q]` (`D + D + 2D = 800` inputs, the baselines' `4 * dim * 2`);
//!   summed over the pairs; f: `64 -> 256 -> 64 -> 18` with ReLU between (the "f 256 -> 64 -> 18").
//!   Only pairs of real sentences take part (pair weight `mask_i mask_j`, self pairs included as in the
//!   baselines, which pair every element with itself). The baselines also put batch norm after g's and f's
//!   layers, leave g's first layer without ReLU and add a `64 -> 64` layer to the decoder; we keep the plain
//!   RN of Santoro et al. (as on Sort-of-CLEVR), whose padded pairs batch norm would also have to skip.
//! - RN + SRN: the set size fixed at [`ClutrrConfig::set_size`] (20); `S0` the sentence vectors padded with
//!   zeros; `z` the mean LSTM cell state ([`reader`]); `H_agg` = [`FSEncoder`] (`D -> h -> h -> D`, FSPool with
//!   the padding masked through the set sizes). g reads the refined set.
//! - RN + GRN: `H_agg` = [`MessagePassing`] (`D -> h -> D`) over the complete graph of the real sentences; the
//!   refinement descends on the sentence vectors and the edge weights ([`models::Grn`]). The RN then weighs
//!   the pair `(i, j)`'s g term by the refined edge weight `E_ij` (1 for the self pairs `(i, i)`, which the
//!   graph does not have; 0 for padding), so the refined graph decides how much each relation counts.
//! - All three differentiate through the refinement (`create_graph`) on training scopes; `learn_s0` is on by
//!   default, so the reader also learns through the refined set g reads (with `S0` detached it would get
//!   gradient only through `z` and the query).
//!
//! Not from the paper (which gives no more): the refinement's steps, step size and `H_agg` width, see
//! [`ClutrrConfig::paper`]. The paper's L2 penalties are [`Variant::weight_decay`], for the optimiser.
//!
//! [`models::SetPipeline`] is not implemented: its `generate` returns `S0` and `z` only, while the RN also needs
//! the query from the same reader pass, and it knows no GRN.

pub mod reader;

use crate::clutrr::Batch;
use autograd::ops::loss::cross_entropy;
use autograd::Var;
use models::{
    complete_graph, node_mask, Activation, FSEncoder, Grn, MessagePassing, Mlp, Module, PairRelation, Param, Scope,
    Srn, SrnConfig,
};
use ndarray::ArrayD;
use rand::Rng;
pub use reader::{Reader, Reading};

/// The paper's encoder dropout (between the LSTM layers).
pub const DROPOUT: f64 = 0.5;
/// The paper's L2 penalty for the RN and RN + SRN (the optimiser's weight decay).
pub const WEIGHT_DECAY: f64 = 1e-4;
/// The paper's L2 penalty for RN + GRN.
pub const GRN_WEIGHT_DECAY: f64 = 5e-6;

/// Which model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// The baselines' RN.
    Rn,
    /// RN + SRN.
    Srn,
    /// RN + GRN.
    Grn,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Rn, Variant::Srn, Variant::Grn];

    /// The L2 penalty the paper adds: 1e-4, 5e-6 for the GRN. The paper says it adds it to "the original
    /// model" with the SRN and GRN; we give the RN the same 1e-4, so the three differ only in the refinement.
    pub fn weight_decay(self) -> f64 {
        match self {
            Variant::Rn | Variant::Srn => WEIGHT_DECAY,
            Variant::Grn => GRN_WEIGHT_DECAY,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::Rn => "rn",
            Variant::Srn => "srn",
            Variant::Grn => "grn",
        }
    }
}

/// The model's settings; [`ClutrrConfig::paper`] gives the paper's and the baselines' values, tests shrink them.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ClutrrConfig {
    pub variant: Variant,
    /// Word embedding size (100).
    pub embedding: usize,
    /// LSTM hidden size per direction (100): sentence vectors have `2 * hidden`.
    pub hidden: usize,
    /// g's width (64) and number of layers (4).
    pub g_width: usize,
    pub g_layers: usize,
    /// f's hidden widths (256, 64).
    pub f_widths: [usize; 2],
    /// Answer classes (18).
    pub classes: usize,
    /// Encoder dropout (0.5).
    pub dropout: f64,
    /// The set size of the SRN and GRN (20): batches must be padded to it.
    pub set_size: usize,
    /// The inner loop of the SRN and GRN (unused by the RN).
    pub refiner: SrnConfig,
    /// `H_agg`'s hidden width (SRN: the FSEncoder's MLP; GRN: the messages and psi).
    pub hagg_width: usize,
    /// FSPool's pieces in the SRN's `H_agg`.
    pub fspool_pieces: usize,
}

impl ClutrrConfig {
    /// The paper's settings for `variant`. Our choices where the paper gives none: 5 inner steps of size 1.0
    /// with momentum 0.5 and `S0` learned (as our Sort-of-CLEVR RN + SRN), `H_agg` width 128, FSPool with 20
    /// pieces. Untuned.
    pub fn paper(variant: Variant) -> Self {
        ClutrrConfig {
            variant,
            embedding: 100,
            hidden: 100,
            g_width: 64,
            g_layers: 4,
            f_widths: [256, 64],
            classes: 18,
            dropout: DROPOUT,
            set_size: crate::clutrr::SRN_SET_SIZE,
            refiner: SrnConfig { steps: 5, alpha: 1.0, momentum: 0.5, learn_s0: true, ..SrnConfig::default() },
            hagg_width: 128,
            fspool_pieces: 20,
        }
    }

    /// The size of a sentence vector, `2 * hidden`.
    pub fn sentence_dim(&self) -> usize {
        2 * self.hidden
    }
}

/// The refinement between reader and RN.
pub enum Refiner {
    None,
    Set(Srn<FSEncoder<f32>>),
    Graph(Grn<MessagePassing<f32>>),
}

/// What the RN reads: the initial and refined sets, the refined edge weights (GRN), the query, the pair
/// weights g uses, and the inner losses (`None` for the RN).
pub struct Representation<'t> {
    /// `[B, S, D]`.
    pub s0: Var<'t, f32>,
    /// `[B, S, D]`: `S0` for the RN, `S_r` for the SRN and GRN.
    pub set: Var<'t, f32>,
    /// `[B, S, S]`: the GRN's refined edge weights `E_r`.
    pub edges: Option<Var<'t, f32>>,
    /// `[B, 2D]`.
    pub query: Var<'t, f32>,
    /// `[B, S, S]`: the weight of each pair in g's sum.
    pub pair_weights: Var<'t, f32>,
    pub inner_losses: Option<Vec<f32>>,
}

/// RN, RN + SRN or RN + GRN. Parameters "reader.*", then "srn.encoder.*" or "grn.encoder.*", "g.mlp.*", "f.*".
pub struct ClutrrModel {
    pub config: ClutrrConfig,
    pub reader: Reader,
    pub refiner: Refiner,
    pub g: PairRelation<f32>,
    pub f: Mlp<f32>,
}

impl ClutrrModel {
    /// A model for a vocabulary of `vocab` ids; parameters drawn in order reader, `H_agg`, g, f.
    pub fn new(config: ClutrrConfig, vocab: usize, rng: &mut impl Rng) -> Self {
        let reader = Reader::new(vocab, config.embedding, config.hidden, config.dropout, rng);
        let d = config.sentence_dim();
        let refiner = match config.variant {
            Variant::Rn => Refiner::None,
            Variant::Srn => Refiner::Set(Srn::new(
                FSEncoder::new(d, config.hagg_width, d, config.fspool_pieces, rng),
                config.refiner,
            )),
            Variant::Grn => Refiner::Graph(Grn::new(MessagePassing::new(d, config.hagg_width, d, rng), config.refiner)),
        };
        let g = PairRelation::new(d, 2 * d, config.g_width, config.g_layers, rng);
        let [f1, f2] = config.f_widths;
        let f =
            Mlp::with_activations(&[config.g_width, f1, f2, config.classes], Activation::Relu, Activation::None, rng);
        ClutrrModel { config, reader, refiner, g, f }
    }

    /// The reader and the refinement (training or evaluation as the scope says; dropout from `dropout_seed`).
    pub fn represent<'t>(&self, scope: &Scope<'t, f32>, batch: &Batch, dropout_seed: u64) -> Representation<'t> {
        let (b, s, _) = batch.tokens.dim();
        let refining = !matches!(self.refiner, Refiner::None);
        if refining {
            assert_eq!(
                s,
                self.config.set_size,
                "ClutrrModel ({}): a batch of {s} sentence slots for a set size of {}",
                self.config.variant.name(),
                self.config.set_size
            );
        }
        let reading = self.reader.read(scope, batch, refining, dropout_seed);
        let s0 = reading.sentences;
        let sizes = Some(batch.sentence_counts.as_slice());
        let all_pairs = || {
            let m = node_mask::<f32>(b, s, sizes);
            ArrayD::from_shape_fn(vec![b, s, s], |ix| m[[ix[0], ix[1]]] * m[[ix[0], ix[2]]])
        };
        let z = || reading.cells.expect("the reader gives z when refining");
        let (set, edges, pair_weights, inner_losses) = match &self.refiner {
            Refiner::None => (s0, None, s0.constant(all_pairs()), None),
            Refiner::Set(srn) => {
                let r = srn.refine(scope, s0, z(), sizes);
                (r.last(), None, s0.constant(all_pairs()), Some(r.losses))
            }
            Refiner::Graph(grn) => {
                let e0 = s0.constant(complete_graph(b, s, sizes));
                let r = grn.refine(scope, s0, e0, z(), sizes);
                let edges = r.last_edges();
                // E_r has no self loops and 0 on padding: the self pairs of real sentences get weight 1.
                let own = ArrayD::from_shape_fn(vec![b, s, s], |ix| {
                    if ix[1] == ix[2] && ix[1] < batch.sentence_counts[ix[0]] {
                        1.0
                    } else {
                        0.0
                    }
                });
                (r.last_nodes(), Some(edges), edges + s0.constant(own), Some(r.losses))
            }
        };
        Representation { s0, set, edges, query: reading.query, pair_weights, inner_losses }
    }

    /// g over the weighted pairs, then f: logits `[B, classes]`.
    pub fn relate<'t>(&self, scope: &Scope<'t, f32>, r: &Representation<'t>) -> Var<'t, f32> {
        let pooled = self.g.forward_weighted(scope, r.set, r.query, Some(r.pair_weights));
        self.f.forward(scope, pooled)
    }

    /// Logits `[B, classes]` and the inner losses (`None` for the RN).
    pub fn forward<'t>(
        &self,
        scope: &Scope<'t, f32>,
        batch: &Batch,
        dropout_seed: u64,
    ) -> (Var<'t, f32>, Option<Vec<f32>>) {
        let r = self.represent(scope, batch, dropout_seed);
        (self.relate(scope, &r), r.inner_losses)
    }
}

impl Module<f32> for ClutrrModel {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("reader", self.reader.params());
        match &self.refiner {
            Refiner::None => {}
            Refiner::Set(srn) => p.extend(models::prefixed("srn", srn.params())),
            Refiner::Graph(grn) => p.extend(models::prefixed("grn", grn.params())),
        }
        p.extend(models::prefixed("g", self.g.params()));
        p.extend(models::prefixed("f", self.f.params()));
        p
    }
}

/// The mean cross-entropy of `targets` under `logits` `[B, classes]`.
pub fn loss<'t>(logits: Var<'t, f32>, targets: &[usize]) -> Var<'t, f32> {
    cross_entropy(logits, targets)
}

/// How many rows of `logits` `[B, classes]` have their largest entry at the target (the first on ties).
pub fn correct(logits: &ArrayD<f32>, targets: &[usize]) -> usize {
    let shape = logits.shape();
    assert!(
        shape.len() == 2 && shape[0] == targets.len(),
        "correct: logits of shape {shape:?} for {} targets",
        targets.len()
    );
    logits
        .outer_iter()
        .zip(targets)
        .filter(|(row, &t)| {
            let best = row.iter().enumerate().fold(0, |best, (i, v)| if *v > row[best] { i } else { best });
            best == t
        })
        .count()
}

/// The fraction of `targets` that `logits` gets right.
pub fn accuracy(logits: &ArrayD<f32>, targets: &[usize]) -> f64 {
    correct(logits, targets) as f64 / targets.len().max(1) as f64
}
