//! The paper's experiments: data generators, models, training runs and reports.

pub mod circles;
pub mod cli;
pub mod clutrr;
pub mod cswm;
pub mod files;
pub mod report;
pub mod resume;
pub mod sort_of_clevr;
pub mod training;

/// Experiments report any failure (I/O, a corrupt checkpoint, ...) with its message.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
