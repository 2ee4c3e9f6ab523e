//! The paper's experiments: data generators, models, training runs and reports.

pub mod circles;
pub mod clutrr;
pub mod cswm;
pub mod distributed;
pub mod files;
pub mod harness;
pub mod report;
pub mod sort_of_clevr;

/// Experiments report any failure (I/O, a corrupt checkpoint, ...) with its message.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
