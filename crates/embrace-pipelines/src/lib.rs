//! Task pipelines: one call from raw text to a validated answer.
//!
//! This crate is where tasks live (`pipeline("sentiment-analysis")`): feature extraction,
//! text classification, token classification, fill-mask, question answering, zero-shot
//! classification and, later, generation, with output shaped exactly like
//! `transformers.pipeline`. It stands on the model and tokenizer layers.
//!
//! Status: planned (issue "Pipelines"); nothing is implemented yet.
#![deny(missing_docs)]
