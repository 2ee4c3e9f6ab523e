//! The sentence reader of the CLUTRR baselines' RN: word embeddings, a bidirectional 2-layer LSTM over each
//! sentence, its outputs mean-pooled over the sentence's words into a sentence vector; the query's two
//! entities read from the same outputs; and (for the SRN and GRN) the mean of the LSTM cell states.
//!
//! - `models::Lstm` is one layer, so the two layers are two bidirectional `Lstm`s, the second reading the first's
//!   `[.., 2H]` outputs; the encoder dropout sits between them, where `nn.LSTM(num_layers = 2, dropout = p)`
//!   puts it (the baselines' `SimpleEncoder`; the paper's "0.5 encoder dropout").
//! - Only real sentences are read: the batch's `[B, S, W]` words are gathered into the `[n, W]` real sentences
//!   (a packed batch, each its own length), and the results are scattered back into `[B, S, ..]` with zero
//!   rows for padding sentences, so padding costs nothing and is exactly zero (the SRN's "LSTM sentence
//!   embeddings padded with zeros").
//! - Sentence vector: the mean of the top layer's outputs over the sentence's words (`[B, S, 2H]`).
//! - Query: the baselines' RN (`calculate_query`) runs the reader over the whole story and sums its outputs at
//!   every mention of each queried entity (a 0/1 mention mask times the outputs), the two sums concatenated.
//!   We sum the per-sentence outputs at the mentions instead (the same reader, each mention read in its
//!   sentence's context rather than the story's; no second pass over a story-long sequence): `[B, 2 * 2H]`,
//!   `query[0]`'s sum then `query[1]`'s.
//! - z (SRN, GRN): the paper's "average cell states over all sentences": each sentence's final cell state of
//!   the top layer, both directions concatenated (`[2H]`), averaged over the story's real sentences.

use crate::clutrr::Batch;
use autograd::Var;
use models::{Embedding, Lstm, Module, Param, Scope};
use ndarray::{Array2, ArrayD};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// What the reader makes of a batch (`D = 2H`, both directions).
pub struct Reading<'t> {
    /// `[B, S, D]`: the sentence vectors, zero rows for padding sentences.
    pub sentences: Var<'t, f32>,
    /// `[B, 2D]`: the two queried entities' representations, concatenated.
    pub query: Var<'t, f32>,
    /// `[B, D]`: the mean final cell state over the real sentences (only when asked for).
    pub cells: Option<Var<'t, f32>>,
}

/// Embedding and two bidirectional LSTM layers. Parameters "embedding.weight", "lstm.0.weight_ih_l0", ..,
/// "lstm.1.bias_hh_l0_reverse".
pub struct Reader {
    pub embedding: Embedding<f32>,
    pub lstm: Vec<Lstm<f32>>,
    /// Dropout between the LSTM layers in training.
    pub dropout: f64,
}

impl Reader {
    /// Drawn in order: the embedding `[vocab, embedding]`, layer 0 (`embedding -> hidden`, both directions),
    /// layer 1 (`2 hidden -> hidden`).
    pub fn new(vocab: usize, embedding: usize, hidden: usize, dropout: f64, rng: &mut impl Rng) -> Self {
        let embedding = Embedding::new(vocab, embedding, rng);
        let first = Lstm::new(embedding.dim(), hidden, true, rng);
        let second = Lstm::new(2 * hidden, hidden, true, rng);
        Reader { embedding, lstm: vec![first, second], dropout }
    }

    /// `D = 2H`, the size of a sentence vector.
    pub fn output_dim(&self) -> usize {
        2 * self.lstm[1].hidden_size()
    }

    /// Read `batch`; `cells` asks for the mean cell state too. Dropout (training scopes only) is drawn from
    /// `dropout_seed`.
    pub fn read<'t>(&self, scope: &Scope<'t, f32>, batch: &Batch, cells: bool, dropout_seed: u64) -> Reading<'t> {
        let (b, s, w) = batch.tokens.dim();
        let d = self.output_dim();
        let packed = Packed::new(batch);
        let n = packed.rows.len();
        let x = self.embedding.forward(scope, &packed.tokens);
        let (h1, _) = self.lstm[0].forward(scope, x, Some(&packed.lengths));
        let h1 = h1.dropout(self.dropout, &mut StdRng::seed_from_u64(dropout_seed), scope.training());
        let (h2, (_, c)) = self.lstm[1].forward(scope, h1, Some(&packed.lengths));
        let unpack = |rows: Var<'t, f32>| rows.index_add(0, &packed.rows, b * s).reshape(&[b, s, d]);
        let lengths = ArrayD::from_shape_fn(vec![n, 1], |ix| packed.lengths[ix[0]] as f32);
        let sentences = unpack(h2.sum_axes(&[1], false) / h2.constant(lengths));
        let mentions = h2.constant(packed.mentions(batch, w).into_dyn());
        let query = mentions.matmul(h2.reshape(&[n * w, d])).reshape(&[b, 2 * d]);
        let cells = cells.then(|| {
            let last = c.permute(&[1, 0, 2]).reshape(&[n, d]);
            let counts = ArrayD::from_shape_fn(vec![b, 1], |ix| batch.sentence_counts[ix[0]] as f32);
            unpack(last).sum_axes(&[1], false) / c.constant(counts)
        });
        Reading { sentences, query, cells }
    }
}

impl Module<f32> for Reader {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("embedding", self.embedding.params());
        p.extend(models::prefixed("lstm", self.lstm.params()));
        p
    }
}

/// The batch's real sentences as one packed batch of `n` sequences.
struct Packed {
    /// `b * S + s` of each real sentence, in batch order.
    rows: Vec<usize>,
    /// `[n, W]` word ids.
    tokens: ArrayD<usize>,
    lengths: Vec<usize>,
}

impl Packed {
    fn new(batch: &Batch) -> Packed {
        let (b, s, w) = batch.tokens.dim();
        let mut rows = Vec::new();
        for i in 0..b {
            for j in 0..s {
                if batch.sentence_mask[[i, j]] > 0.0 {
                    assert!(batch.sentence_lengths[[i, j]] > 0, "Reader: sentence {j} of story {i} has no words");
                    rows.push(i * s + j);
                }
            }
        }
        assert!(!rows.is_empty(), "Reader: a batch of {b} stories without a sentence");
        let tokens = ArrayD::from_shape_fn(vec![rows.len(), w], |ix| {
            let r = rows[ix[0]];
            batch.tokens[[r / s, r % s, ix[1]]]
        });
        let lengths = rows.iter().map(|&r| batch.sentence_lengths[[r / s, r % s]]).collect();
        Packed { rows, tokens, lengths }
    }

    /// `[B, 2, n * W]` flattened to `[2B, n W]`: row `2b + q` is 1 at every word position of story `b` that
    /// is the queried entity `q`'s placeholder.
    fn mentions(&self, batch: &Batch, w: usize) -> Array2<f32> {
        let (b, s, _) = batch.tokens.dim();
        let mut m = Array2::zeros((2 * b, self.rows.len() * w));
        for (k, &r) in self.rows.iter().enumerate() {
            let story = r / s;
            for t in 0..self.lengths[k] {
                for q in 0..2 {
                    if self.tokens[[k, t]] == batch.query_tokens[[story, q]] {
                        m[[2 * story + q, k * w + t]] = 1.0;
                    }
                }
            }
        }
        for story in 0..b {
            for q in 0..2 {
                assert!(
                    m.row(2 * story + q).sum() > 0.0,
                    "Reader: queried entity {q} of story {story} is never mentioned"
                );
            }
        }
        m
    }
}
