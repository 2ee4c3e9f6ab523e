//! The paper's experiments: data generators, models, training runs and reports.

pub mod circles;
pub mod report;
