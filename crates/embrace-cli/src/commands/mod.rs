//! One module per subcommand.

pub mod decode;
pub mod tokenize;

use anyhow::{Context, Result, bail};
use embrace_tokenizers::Tokenizer;
use std::path::Path;

/// Loads a tokenizer from a `tokenizer.json`, a model folder, a `vocab.txt` or a `.tiktoken` file.
pub fn load_tokenizer(spec: &str) -> Result<Tokenizer> {
    let path = Path::new(spec);
    if !path.exists() {
        bail!(
            "tokenizer {spec:?} not found: pass a tokenizer.json, a model folder, a vocab.txt or a \
             .tiktoken file (repo ids need the hub client, which is not available yet)"
        );
    }
    tracing::info!(path = %path.display(), "loading tokenizer");
    Tokenizer::from_path(path)
        .with_context(|| format!("cannot load tokenizer from {}", path.display()))
}
