//! Fine-tuning: a `Trainer` in the spirit of `transformers.Trainer`.
//!
//! This crate is where training lives: training arguments, optimisers and schedules, the
//! training loop with evaluation and checkpoints, metrics (accuracy, F1, seqeval), and LoRA
//! adapters saved in the PEFT format. It stands on the model and dataset layers.
//!
//! Status: planned (issue "Training"); nothing is implemented yet.
#![deny(missing_docs)]
