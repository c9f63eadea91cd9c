//! The error type of the datasets layer.

use std::path::PathBuf;

/// What can go wrong when loading, transforming or saving a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An Arrow or Parquet error (malformed file, type mismatch).
    #[error("{context}: {message}")]
    Arrow {
        /// What was being done.
        context: String,
        /// The library's message.
        message: String,
    },
    /// `datasets` metadata (features, state.json, dataset_info.json) is malformed.
    #[error("{0}")]
    Metadata(String),
    /// A column does not exist or has the wrong type for the operation.
    #[error("{0}")]
    Column(String),
    /// An argument is out of range.
    #[error("{0}")]
    Argument(String),
    /// The hub could not be reached or refused (dataset repositories).
    #[error(transparent)]
    Hub(#[from] embrace_hub::HubError),
}

impl DatasetError {
    pub(crate) fn arrow(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Self::Arrow {
            context: context.into(),
            message: err.to_string(),
        }
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;
