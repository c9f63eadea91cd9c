//! The error type of the model layer.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running a model.
///
/// Messages name the file, tensor or setting at fault so that a user can act on them without
/// reading the source.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `config.json` (or another JSON file of the model) is malformed.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the JSON path when known.
        message: String,
    },
    /// A configuration value is missing, out of range or inconsistent.
    #[error("invalid config: {0}")]
    Config(String),
    /// `model_type` names an architecture this crate does not implement.
    #[error("unsupported model_type `{found}`; supported: {}", supported.join(", "))]
    UnsupportedModelType {
        /// The value of `model_type`.
        found: String,
        /// The model types that are supported.
        supported: Vec<&'static str>,
    },
    /// No weight file was found in a model directory.
    #[error(
        "no weights in {0}: expected model.safetensors, model.safetensors.index.json, \
         pytorch_model.bin or pytorch_model.bin.index.json"
    )]
    NoWeights(PathBuf),
    /// A weight file is malformed (truncated, corrupt header, bad offsets, unknown dtype).
    #[error("invalid weight file {path}: {message}")]
    WeightFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The checkpoint does not have the tensors the architecture needs.
    #[error("{}", missing_keys_message(.missing, .unexpected))]
    MissingWeights {
        /// Tensors the model needs and the checkpoint lacks (names as the model expects them).
        missing: Vec<String>,
        /// Tensors in the checkpoint that the model did not use.
        unexpected: Vec<String>,
    },
    /// A tensor has another shape than the configuration implies.
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?} (from config.json)")]
    ShapeMismatch {
        /// The tensor name in the checkpoint.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// The shape in the checkpoint.
        found: Vec<usize>,
    },
    /// The inputs given to a forward pass are inconsistent.
    #[error("invalid input: {0}")]
    Input(String),
    /// An error from the tensor library.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

fn missing_keys_message(missing: &[String], unexpected: &[String]) -> String {
    fn list(names: &[String]) -> String {
        const SHOWN: usize = 20;
        let mut out = names
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > SHOWN {
            out.push_str(&format!(", … ({} more)", names.len() - SHOWN));
        }
        out
    }
    let mut message = format!(
        "the checkpoint lacks {} tensor(s) the model needs: {}",
        missing.len(),
        list(missing)
    );
    if !unexpected.is_empty() {
        message.push_str(&format!(
            "; unused tensor(s) in the checkpoint: {}",
            list(unexpected)
        ));
    }
    message
}

/// The result type of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
