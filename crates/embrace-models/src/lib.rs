//! Config-driven encoder architectures and task heads, equal to `transformers`.
//!
//! This crate is where `config.json` becomes a forward pass:
//!
//! - [`AutoConfig`] reads `config.json` with the defaults of each `transformers` configuration
//!   class;
//! - [`Checkpoint`] opens the weights (safetensors, single or sharded; PyTorch `.bin`) and
//!   converts f16 / bf16 to f32;
//! - [`Model::from_pretrained`] builds an architecture (BERT, RoBERTa, XLM-RoBERTa, ELECTRA,
//!   DistilBERT, ModernBERT) with the head of a [`Task`] (the `AutoModelFor…` classes), from a
//!   directory or a repo id in the Hugging Face cache;
//! - [`sentence_transformers::SentenceTransformer`] runs `modules.json` pipelines (pooling,
//!   dense, normalize) for sentence embeddings;
//! - [`causal`] holds decoder-only LMs (GPT-2, Llama, Mistral, Qwen2/3, Gemma 3; safetensors or
//!   GGUF), [`seq2seq`] encoder-decoders (T5, BART), and [`generation`] decodes with both
//!   (greedy, sampling, beam search).
//!
//! ```no_run
//! use embrace_models::{Batch, Model, Task};
//! let model = Model::from_pretrained("path/to/model", Task::SequenceClassification)?;
//! let batch = Batch::from_sequences(&[&[101, 7592, 102]], None, 0)?;
//! let logits = model.forward(&batch)?.logits;
//! # Ok::<(), embrace_models::ModelError>(())
//! ```
//!
//! Inference runs on fused f32 CPU kernels (`gemm` matrix products,
//! single-pass softmax / LayerNorm / GELU) over packed sequences, so padding costs nothing;
//! outputs are candle [`Tensor`](candle_core::Tensor)s.
#![deny(missing_docs)]

pub mod activation;
pub mod causal;
pub mod config;
pub mod cpu;
mod encoder;
pub mod error;
pub mod generation;
mod heads;
pub mod input;
mod kernels;
mod layers;
mod model;
mod modernbert;
pub mod sentence_transformers;
pub mod seq2seq;
pub mod weights;

pub use activation::Activation;
pub use config::{AutoConfig, EncoderConfig, ModelType, ProblemType};
pub use error::{ModelError, Result};
pub use heads::Task;
pub use input::Batch;
pub use model::{Model, ModelOutput, resolve_model_dir};
pub use weights::Checkpoint;
