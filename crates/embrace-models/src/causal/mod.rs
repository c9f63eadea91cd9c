//! Decoder-only language models (`AutoModelForCausalLM`): GPT-2, the Llama family (Llama,
//! SmolLM, Mistral, Qwen2, Qwen3) and Gemma 3, from transformers checkpoints or GGUF files.
//!
//! - [`DecoderConfig`] reads `config.json` (or GGUF metadata) with transformers' defaults;
//! - [`CausalLm::forward`] runs new tokens after a [`KvCache`] and returns logits;
//! - [`load_causal_lm`] opens a directory, a repo id in the Hugging Face cache, or a `.gguf` file;
//! - [`gguf_tokenizer`] rebuilds the tokenizer a GGUF file embeds.
//!
//! Generation (greedy, sampling, beam search) is in [`crate::generation`].

pub(crate) mod config;
mod gguf;
mod gguf_vocab;
pub(crate) mod layers;
mod model;
pub(crate) mod weights;

use std::path::{Path, PathBuf};

pub use config::{DecoderConfig, DecoderFamily, LayerAttention, RopeConfig, RopeLayout};
pub use gguf::{
    GgufMetadata, GgufModel, SUPPORTED_GGUF_ARCHITECTURES, load_gguf, read_gguf_metadata,
};
pub use gguf_vocab::gguf_tokenizer;
pub use layers::KvCache;
pub use model::CausalLm;

use crate::error::{ModelError, Result};
use crate::model::resolve_model_dir;
use crate::weights::Checkpoint;

/// A causal LM with the files that came with it.
#[derive(Debug)]
pub struct LoadedCausalLm {
    /// The model.
    pub model: CausalLm,
    /// The directory (or the GGUF file) it was read from.
    pub source: PathBuf,
    /// The GGUF metadata, when it came from a GGUF file.
    pub gguf: Option<GgufMetadata>,
}

/// The single `.gguf` file of a directory, if it has exactly one.
fn lone_gguf(dir: &Path) -> Result<Option<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| ModelError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
        })
        .collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(ModelError::Config(format!(
            "{} has several .gguf files ({}); pass the one to load",
            dir.display(),
            found
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Loads a causal LM from a `.gguf` file, a directory with `config.json` and weights (or with a
/// single `.gguf` file), or a repo id (`org/name[@revision]`) in the Hugging Face cache.
pub fn load_causal_lm(spec: &str) -> Result<LoadedCausalLm> {
    let path = Path::new(spec);
    let is_gguf = |p: &Path| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    };
    if path.is_file() && is_gguf(path) {
        let GgufModel { model, metadata } = load_gguf(path)?;
        return Ok(LoadedCausalLm {
            model,
            source: path.to_owned(),
            gguf: Some(metadata),
        });
    }
    let dir = resolve_model_dir(spec)?;
    let config_path = dir.join("config.json");
    if !config_path.is_file()
        && let Some(file) = lone_gguf(&dir)?
    {
        let GgufModel { model, metadata } = load_gguf(&file)?;
        return Ok(LoadedCausalLm {
            model,
            source: file,
            gguf: Some(metadata),
        });
    }
    let config = DecoderConfig::from_file(&config_path)?;
    let checkpoint = Checkpoint::from_dir(&dir)?;
    let family = config.family;
    let model = CausalLm::load(
        config,
        &weights::CheckpointWeights::new(&checkpoint, family),
    )?;
    Ok(LoadedCausalLm {
        model,
        source: dir,
        gguf: None,
    })
}
