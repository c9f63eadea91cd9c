//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading a tokenizer or encoding text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The tokenizer definition is not valid JSON or does not match the `tokenizer.json` schema.
    /// `path` is the JSON path of the offending value (for example `model.vocab`).
    #[error("invalid tokenizer definition at `{path}`: {message}")]
    Json {
        /// JSON path of the offending value (`.` for the root).
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// The definition is well-formed but inconsistent (for example a special token that is not in
    /// the vocabulary).
    #[error("invalid tokenizer: {0}")]
    Invalid(String),
    /// The model has no unknown token and met a piece it cannot represent.
    #[error(
        "the model cannot tokenize {piece:?}: it is not in the vocabulary and the model has no unknown token"
    )]
    MissingUnk {
        /// The piece of text that could not be represented.
        piece: String,
    },
    /// Truncation cannot satisfy the requested parameters.
    #[error("truncation error: {0}")]
    Truncation(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds a [`Error::Json`] from a `serde_path_to_error` failure.
    pub(crate) fn from_json(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        let inner = err.into_inner();
        Error::Json {
            path,
            message: inner.to_string(),
        }
    }
}
