//! One module per subcommand.

pub mod cache;
pub mod chat;
pub mod datasets;
pub mod decode;
pub mod hub;
pub mod hub_client;
pub mod pipeline;
pub mod tokenize;
pub mod train;

use anyhow::{Context, Result, bail};
use embrace_hub::{HubClient, RepoId};
use embrace_tokenizers::Tokenizer;
use std::path::Path;

/// Loads a tokenizer from a path (a `tokenizer.json`, a model folder, a `vocab.txt` or a
/// `.tiktoken` file) or from a repo id (`org/name`, optionally `@revision`) already in the
/// Hugging Face cache (`HF_HUB_CACHE`, shared with Python).
pub fn load_tokenizer(spec: &str) -> Result<Tokenizer> {
    let path = Path::new(spec);
    if path.exists() {
        tracing::info!(path = %path.display(), "loading tokenizer");
        return Tokenizer::from_path(path)
            .with_context(|| format!("cannot load tokenizer from {}", path.display()));
    }
    let (id, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    let Ok(repo) = RepoId::model(id) else {
        bail!(
            "tokenizer {spec:?} not found: pass a tokenizer.json, a model folder, a vocab.txt, a \
             .tiktoken file, or a repo id in the Hugging Face cache"
        );
    };
    let hub = HubClient::from_env()?;
    let dir = hub.resolve_snapshot(&repo, revision).with_context(|| {
        format!(
            "tokenizer {spec:?} not found: it is no file, and {repo} (revision {revision}) could not \
             be found in the cache at {} or downloaded from {}",
            hub.cache().dir().display(),
            hub.config().endpoint
        )
    })?;
    tracing::info!(repo = %repo, revision, dir = %dir.display(), "loading tokenizer from the hub");
    Tokenizer::from_path(&dir)
        .with_context(|| format!("cannot load tokenizer of {repo} from {}", dir.display()))
}
