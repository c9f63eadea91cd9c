//! The error type of the pipelines layer.

/// What can go wrong when building or running a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The task name is not one of the supported tasks.
    #[error("unknown task `{found}`; supported: {}", supported.join(", "))]
    UnknownTask {
        /// The name given.
        found: String,
        /// Supported task names and aliases.
        supported: Vec<&'static str>,
    },
    /// No model was given and the task has no default that exists offline.
    #[error("{0}")]
    NoModel(String),
    /// The model cannot serve the task (wrong head, missing labels, …).
    #[error("{0}")]
    UnsuitableModel(String),
    /// An input or option is invalid for the task.
    #[error("invalid input: {0}")]
    Input(String),
    /// Loading or running the model failed.
    #[error(transparent)]
    Model(#[from] embrace_models::ModelError),
    /// Tokenization failed.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] embrace_tokenizers::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

/// The result type of this crate.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
