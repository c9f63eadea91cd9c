//! The error type of the training layer.

/// What can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The model could not be loaded or run.
    #[error(transparent)]
    Model(#[from] embrace_models::ModelError),
    /// The data could not be read.
    #[error(transparent)]
    Dataset(#[from] embrace_datasets::DatasetError),
    /// Tokenization failed.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] embrace_tokenizers::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// The job is misconfigured (missing column, too few labels, …).
    #[error("{0}")]
    Config(String),
    /// Training stopped at `interrupt_after_steps` (a simulated crash, for tests).
    #[error("training interrupted after step {0}")]
    Interrupted(usize),
    /// Writing the output failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The result type of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
