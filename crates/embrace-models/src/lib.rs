//! Config-driven model architectures and task heads.
//!
//! This crate is where `config.json` becomes a forward pass: `AutoConfig`, architectures (BERT,
//! RoBERTa, DistilBERT, ELECTRA, ModernBERT, and later decoder and encoder-decoder models), task
//! heads, weight loading (safetensors, PyTorch `.bin`, GGUF) and generation. It stands on the
//! tokenizer layer and on the hub client for file resolution.
//!
//! Status: planned (issue "Models"); nothing is implemented yet.
#![deny(missing_docs)]
