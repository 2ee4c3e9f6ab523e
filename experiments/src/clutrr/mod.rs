//! The data layer of the CLUTRR kinship experiment (the paper's Sec. 3.3): stories that describe part of a
//! family tree in a few sentences, and the question "how is the second queried person related to the first?"
//! (one of 18 relations in the released k = 2, 3, 4 training data).
//!
//! - [`released`] reads the released CSV files (from their zip archive or an extracted folder) into [`Story`]s;
//! - [`generate`] makes CLUTRR-style stories from random family trees, for tests and runs without the data;
//! - [`kinship`] holds the relations and the composition rules that give a chain of relations its target;
//! - [`text`] tokenises story text (entity placeholders, sentences, words) and builds the word vocabulary;
//! - [`batch`] turns stories into padded tensors for the models;
//! - [`model`] holds the models: the baselines' RN, RN + SRN and RN + GRN;
//! - [`run`] is the `clutrr` command (profiles in [`profile`], the table and curves in [`table`]).
//!
//! Both sources produce the same [`Story`], through the same [`Story::new`], so everything downstream is shared.

pub mod batch;
pub mod generate;
pub mod kinship;
pub mod model;
pub mod profile;
pub mod released;
pub mod run;
pub mod table;
pub mod text;

pub use batch::{batch, Batch, RelationVocab, SRN_SET_SIZE};
pub use generate::{generate, GeneratorConfig};
pub use kinship::{Gender, Kind, Relation};
pub use released::{load_csv, load_released, read_csv, Released, TestSplit};
pub use text::{Vocabulary, DEFAULT_ENTITY_SLOTS, PAD, UNK};

/// One example: a tokenised story, its query and its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Story {
    /// The released `id` column, or `gen-<seed>-<n>` for generated stories.
    pub id: String,
    /// The story text as given, names in brackets.
    pub text: String,
    /// Sentences of lower-cased word tokens, names replaced by `ent_i` (see [`text`]).
    pub sentences: Vec<Vec<String>>,
    /// `entities[i]` is the name behind placeholder `ent_i`, in order of first appearance.
    pub entities: Vec<String>,
    /// The two queried entities (placeholder indices): the answer is "`query[1]` is `query[0]`'s `target`".
    pub query: [usize; 2],
    pub target: Relation,
    /// The number of kinship edges in the story's chain (CLUTRR's `task_1.k`).
    pub k: usize,
}

impl Story {
    /// Tokenises `text` and resolves the queried names to placeholders. The error names the field at fault
    /// (`story` or `query`) so loaders can report it.
    pub fn new(id: String, text: String, query: [&str; 2], target: Relation, k: usize) -> Result<Story, FieldError> {
        let tokens = text::tokenise(&text).map_err(|message| FieldError { field: "story", message })?;
        let mut ids = [0; 2];
        for (slot, name) in ids.iter_mut().zip(query) {
            *slot = tokens.entities.iter().position(|e| e == name.trim()).ok_or_else(|| FieldError {
                field: "query",
                message: format!("queried name {name:?} is not a bracketed name of the story"),
            })?;
        }
        if ids[0] == ids[1] {
            return Err(FieldError { field: "query", message: format!("both queried names are {:?}", query[0]) });
        }
        Ok(Story { id, text, sentences: tokens.sentences, entities: tokens.entities, query: ids, target, k })
    }
}

/// What is wrong with one field of a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// A data error: the file (`archive.zip:member.csv` for a zip member), the line and record when one row is at
/// fault, the field when one field is, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataError {
    pub file: String,
    /// 1-based line of the file where the faulty row starts.
    pub line: Option<u64>,
    /// 1-based row number after the header.
    pub record: Option<u64>,
    pub field: Option<String>,
    pub message: String,
}

impl DataError {
    /// An error about the whole file.
    pub fn file(file: &str, message: impl Into<String>) -> DataError {
        DataError { file: file.to_string(), line: None, record: None, field: None, message: message.into() }
    }
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(record) = self.record {
            write!(f, " (row {record})")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for DataError {}
