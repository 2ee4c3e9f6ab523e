//! The errors of reading and writing checkpoints: every one names the file, and the tensor or field.

use std::fmt;
use std::path::PathBuf;

/// What went wrong reading or writing a checkpoint. Every variant names the file.
#[derive(Debug)]
pub enum CheckpointError {
    /// The file could not be read, written or renamed into place.
    Io { file: PathBuf, action: &'static str, source: std::io::Error },
    /// The file was read but is not a valid safetensors file (truncated, garbage, bad header).
    Corrupt { file: PathBuf, reason: String },
    /// A tensor that was asked for is not in the file.
    Missing { file: PathBuf, tensor: String },
    /// The file holds tensors nobody asked for.
    Unexpected { file: PathBuf, tensors: Vec<String> },
    /// A tensor has another shape than the one it is loaded into.
    Shape { file: PathBuf, tensor: String, expected: Vec<usize>, found: Vec<usize> },
    /// A tensor has another element type than the one asked for.
    Dtype { file: PathBuf, tensor: String, expected: String, found: String },
    /// The data does not match the checksum stored when the file was written: bytes changed on disk.
    Checksum { file: PathBuf, stored: String, computed: String },
    /// A float tensor holds NaN or an infinity where a model or optimiser state must be finite.
    NonFinite { file: PathBuf, tensor: String, index: usize, value: f64 },
    /// A metadata field is missing or cannot be read.
    Metadata { file: PathBuf, field: String, reason: String },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Io { file, action, source } => {
                write!(f, "checkpoint {}: cannot {action}: {source}", file.display())
            }
            CheckpointError::Corrupt { file, reason } => {
                write!(f, "checkpoint {} is corrupt or not a safetensors file: {reason}", file.display())
            }
            CheckpointError::Missing { file, tensor } => {
                write!(f, "checkpoint {}: tensor \"{tensor}\" is missing", file.display())
            }
            CheckpointError::Unexpected { file, tensors } => {
                let names: Vec<String> = tensors.iter().map(|t| format!("\"{t}\"")).collect();
                write!(f, "checkpoint {}: unexpected tensor(s) {}", file.display(), names.join(", "))
            }
            CheckpointError::Shape { file, tensor, expected, found } => write!(
                f,
                "checkpoint {}: tensor \"{tensor}\" has shape {found:?}, expected {expected:?}",
                file.display()
            ),
            CheckpointError::Dtype { file, tensor, expected, found } => {
                write!(f, "checkpoint {}: tensor \"{tensor}\" has dtype {found}, expected {expected}", file.display())
            }
            CheckpointError::Checksum { file, stored, computed } => write!(
                f,
                "checkpoint {}: checksum mismatch (stored {stored}, data gives {computed}): the file was changed or \
                 damaged after it was written; restore it from a copy or start the run afresh",
                file.display()
            ),
            CheckpointError::NonFinite { file, tensor, index, value } => write!(
                f,
                "checkpoint {}: tensor \"{tensor}\" holds {value} at element {index} (a model or optimiser state \
                 must be finite)",
                file.display()
            ),
            CheckpointError::Metadata { file, field, reason } => {
                write!(f, "checkpoint {}: metadata field \"{field}\": {reason}", file.display())
            }
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckpointError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
