//! Training for Embrace: fine-tuning text classifiers on datasets, with metrics and model
//! outputs that `transformers` and the Embrace pipelines load.
//!
//! This first trainer fine-tunes the pooler and classification head of a BERT-family encoder
//! whose transformer layers stay frozen (transformers users do the same with
//! `model.bert.requires_grad_(False)`). The frozen encoder runs once over the data on the fast
//! inference kernels; the head trains with candle's autograd and AdamW. The result is a
//! complete `BertForSequenceClassification` folder, or a head-only folder (a few hundred KB)
//! that points at its base model.
#![deny(missing_docs)]

pub mod args;
mod attention;
pub mod autograd;
pub mod checkpoint;
pub mod classification;
pub mod error;
pub mod finetune;
pub mod memory;
pub mod metrics;
pub mod optim;
mod output;
mod progress;
mod rng;
pub mod token_classification;

pub use args::{SchedulerType, TrainingArguments};
pub use classification::{TextClassificationJob, TrainReport, train_text_classification};
pub use error::{Result, TrainError};
pub use finetune::{Adaptation, fine_tune_text_classification, fine_tune_token_classification};
pub use metrics::ClassificationMetrics;
pub use token_classification::{
    TaggedSentence, TokenClassificationJob, read_conll, train_token_classification,
};
