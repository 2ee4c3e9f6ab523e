//! Stories to padded tensors for the sentence-reader models (an LSTM reads each sentence; the RN or SRN then
//! works on the set of sentence embeddings).
//!
//! Every batch is padded to a fixed number of sentences, `max_sentences` (the SRN's set size, 20 in the paper),
//! so set-based models see one set size throughout; words are padded to the longest sentence of the batch.
//! A story with more sentences than `max_sentences` is an error rather than silently cut, since the dropped
//! sentence might carry an edge of the chain (the released data has at most 13).

use super::text::{Vocabulary, PAD};
use super::{Relation, Story};
use ndarray::{Array2, Array3};

/// The SRN's set size for CLUTRR (the paper's Sec. 3.3): sentence sets are padded to it.
pub const SRN_SET_SIZE: usize = 20;

/// Target classes: a subset of [`Relation::ALL`] kept in that order, so class ids are fixed by which relations
/// occur, not by the order of the rows. Built from the released training split it has the 18 relations other
/// than husband and wife, classes 0..18 in the order father, mother, son, daughter, brother, sister,
/// grandfather, grandmother, grandson, granddaughter, uncle, aunt, nephew, niece, father-in-law, mother-in-law,
/// son-in-law, daughter-in-law.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationVocab {
    relations: Vec<Relation>,
}

impl RelationVocab {
    /// The targets occurring in `stories` (pass the training split).
    pub fn from_stories<'a>(stories: impl IntoIterator<Item = &'a Story>) -> RelationVocab {
        let mut seen = [false; Relation::ALL.len()];
        for story in stories {
            seen[story.target as usize] = true;
        }
        RelationVocab { relations: Relation::ALL.into_iter().filter(|&r| seen[r as usize]).collect() }
    }

    /// All 20 relations.
    pub fn all() -> RelationVocab {
        RelationVocab { relations: Relation::ALL.to_vec() }
    }

    /// The class id of `relation`, `None` if it is not a class.
    pub fn class(&self, relation: Relation) -> Option<usize> {
        self.relations.iter().position(|&r| r == relation)
    }

    pub fn relation(&self, class: usize) -> Option<Relation> {
        self.relations.get(class).copied()
    }

    pub fn relations(&self) -> &[Relation] {
        &self.relations
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.relations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.relations.is_empty()
    }
}

/// A batch of `B` stories, `S = max_sentences`, `W` = the longest sentence of the batch.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Word ids `[B, S, W]`, [`PAD`] after each sentence's end and in padding sentences.
    pub tokens: Array3<usize>,
    /// `[B, S, W]`: 1 on real words, 0 on padding.
    pub word_mask: Array3<f32>,
    /// `[B, S]`: words in each sentence, 0 for padding sentences (an LSTM reads this many steps).
    pub sentence_lengths: Array2<usize>,
    /// `[B, S]`: 1 on real sentences (set elements), 0 on padding.
    pub sentence_mask: Array2<f32>,
    /// Sentences per story.
    pub sentence_counts: Vec<usize>,
    /// `[B, 2]`: the queried entities as placeholder indices (`ent_i` -> `i`).
    pub query: Array2<usize>,
    /// `[B, 2]`: the word ids of the queried placeholders, for models that embed the query with the words.
    pub query_tokens: Array2<usize>,
    /// Target class ids (see [`RelationVocab`]).
    pub targets: Vec<usize>,
    /// k of each story, for accuracy by k.
    pub ks: Vec<usize>,
}

/// Pads `stories` into a [`Batch`]. Errors name the story (its id) and the cause: more sentences than
/// `max_sentences`, a target that is not a class of `relations`, or more entities than `vocab` has slots.
pub fn batch(
    stories: &[&Story],
    vocab: &Vocabulary,
    relations: &RelationVocab,
    max_sentences: usize,
) -> Result<Batch, String> {
    let b = stories.len();
    let s = max_sentences;
    let w = stories.iter().flat_map(|st| st.sentences.iter().map(Vec::len)).max().unwrap_or(0).max(1);
    let mut tokens = Array3::from_elem((b, s, w), PAD);
    let mut word_mask = Array3::zeros((b, s, w));
    let mut sentence_lengths = Array2::zeros((b, s));
    let mut sentence_mask = Array2::zeros((b, s));
    let mut query = Array2::zeros((b, 2));
    let mut query_tokens = Array2::zeros((b, 2));
    let mut targets = Vec::with_capacity(b);
    for (i, story) in stories.iter().enumerate() {
        if story.sentences.len() > s {
            return Err(format!(
                "story {}: {} sentences, more than the {s} a batch holds",
                story.id,
                story.sentences.len()
            ));
        }
        if story.entities.len() > vocab.entity_slots() {
            return Err(format!(
                "story {}: {} entities, more than the vocabulary's {} placeholder slots",
                story.id,
                story.entities.len(),
                vocab.entity_slots()
            ));
        }
        for (j, sentence) in story.sentences.iter().enumerate() {
            sentence_lengths[[i, j]] = sentence.len();
            sentence_mask[[i, j]] = 1.0;
            for (t, word) in sentence.iter().enumerate() {
                tokens[[i, j, t]] = vocab.id(word);
                word_mask[[i, j, t]] = 1.0;
            }
        }
        for (q, &entity) in story.query.iter().enumerate() {
            query[[i, q]] = entity;
            query_tokens[[i, q]] = vocab.entity_id(entity).expect("entities fit the slots (checked above)");
        }
        let class = relations.class(story.target).ok_or_else(|| {
            format!("story {}: target {} is not one of the {} classes", story.id, story.target, relations.len())
        })?;
        targets.push(class);
    }
    Ok(Batch {
        tokens,
        word_mask,
        sentence_lengths,
        sentence_mask,
        sentence_counts: stories.iter().map(|st| st.sentences.len()).collect(),
        query,
        query_tokens,
        targets,
        ks: stories.iter().map(|st| st.k).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clutrr::text::UNK;

    fn story(id: &str, text: &str, query: [&str; 2], target: Relation) -> Story {
        Story::new(id.into(), text.into(), query, target, 2).unwrap()
    }

    #[test]
    fn pads_sentences_and_words() {
        let a =
            story("a", "[Al] hugged his son [Bo]. [Bo] waved to his sister [Cy].", ["Al", "Cy"], Relation::Daughter);
        let b = story("b", "[Di] is [Ed]'s wife.", ["Ed", "Di"], Relation::Wife);
        let vocab = Vocabulary::build([&a], 4);
        let relations = RelationVocab::from_stories([&a]);
        assert_eq!(relations.relations(), &[Relation::Daughter]);
        assert!(batch(&[&a, &b], &vocab, &relations, 4).unwrap_err().contains("story b: target wife"));

        let relations = RelationVocab::from_stories([&b, &a]);
        assert_eq!(relations.relations(), &[Relation::Daughter, Relation::Wife], "class order is Relation order");
        let x = batch(&[&a, &b], &vocab, &relations, 4).unwrap();
        // The longest sentence: `ent_1 waved to his sister ent_2` = 6 words.
        assert_eq!(x.tokens.shape(), &[2, 4, 6]);
        assert_eq!(x.sentence_counts, vec![2, 1]);
        assert_eq!(x.sentence_lengths.row(0).to_vec(), vec![5, 6, 0, 0]);
        assert_eq!(x.sentence_lengths.row(1).to_vec(), vec![5, 0, 0, 0]);
        assert_eq!(x.sentence_mask.row(1).to_vec(), vec![1.0, 0.0, 0.0, 0.0]);
        assert_eq!(x.word_mask.sum(), 16.0);
        // Padding is PAD exactly where the mask is 0, and real words are never PAD.
        for (t, m) in x.tokens.iter().zip(x.word_mask.iter()) {
            assert_eq!(*t == PAD, *m == 0.0);
        }
        // `ent_0 hugged his son ent_1`: placeholders have their reserved ids, training words theirs.
        let first: Vec<usize> = x.tokens.slice(ndarray::s![0, 0, ..5]).to_vec();
        assert_eq!(first, ["ent_0", "hugged", "his", "son", "ent_1"].map(|w| vocab.id(w)).to_vec());
        assert_eq!(first[0], vocab.entity_id(0).unwrap());
        // Story b's words other than placeholders are not in a's vocabulary.
        assert_eq!(x.tokens[[1, 0, 1]], UNK, "`is`");
        assert_eq!(x.query.row(0).to_vec(), vec![0, 2]);
        assert_eq!(x.query.row(1).to_vec(), vec![1, 0]);
        assert_eq!(x.query_tokens.row(1).to_vec(), vec![vocab.entity_id(1).unwrap(), vocab.entity_id(0).unwrap()]);
        assert_eq!(x.targets, vec![0, 1]);
    }

    #[test]
    fn too_many_sentences_or_entities_are_errors() {
        let a = story("long", "[A] ran. [B] ran. [A] is [B]'s son.", ["B", "A"], Relation::Son);
        let vocab = Vocabulary::build([&a], 2);
        let relations = RelationVocab::all();
        assert_eq!(relations.len(), 20);
        assert!(batch(&[&a], &vocab, &relations, 2).unwrap_err().contains("story long: 3 sentences"));
        assert_eq!(batch(&[&a], &vocab, &relations, SRN_SET_SIZE).unwrap().tokens.shape(), &[1, 20, 5]);
        let c = story("wide", "[A] met [B] and [C].", ["A", "C"], Relation::Son);
        assert!(batch(&[&c], &vocab, &relations, 3).unwrap_err().contains("3 entities"));
    }
}
