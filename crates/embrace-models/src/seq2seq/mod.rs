//! Encoder-decoder LMs (`AutoModelForSeq2SeqLM`): T5 (also T5 v1.1 / Flan-T5) and BART, for
//! summarization, translation and text2text generation.
//!
//! [`Seq2SeqLm::encode`] runs the encoder once; [`Seq2SeqLm::session`] wraps its output for
//! [`crate::generation::generate`], whose prompt is then the decoder's start ids
//! ([`Seq2SeqLm::decoder_prompt`]).

mod config;
mod model;

use std::path::Path;

pub use config::{FeedForwardActivation, Seq2SeqConfig, Seq2SeqFamily};
pub use model::{Seq2SeqLm, Seq2SeqSession, Seq2SeqState};

use crate::error::{ModelError, Result};
use crate::generation::GenerationConfig;
use crate::model::resolve_model_dir;
use crate::weights::Checkpoint;

impl Seq2SeqLm {
    /// Loads a model folder or a repo id in the Hugging Face cache.
    pub fn from_pretrained(spec: &str) -> Result<Self> {
        let dir = resolve_model_dir(spec)?;
        let config = crate::config::read_json_file(&dir.join("config.json"), |text| {
            Seq2SeqConfig::from_json_str(text)
        })?;
        let checkpoint = Checkpoint::from_dir(&dir)?;
        Self::load(config, &checkpoint)
    }

    /// The decoder's first ids (`[decoder_start_token_id]`).
    pub fn decoder_prompt(&self) -> Vec<u32> {
        vec![self.config().decoder_start_token_id]
    }

    /// Decoding defaults from the config, overridden by `generation_config.json` in `dir` when
    /// there is one.
    pub fn generation_defaults(&self, dir: Option<&Path>) -> Result<GenerationConfig> {
        let c = self.config();
        let mut g = GenerationConfig {
            eos_token_ids: vec![c.eos_token_id],
            pad_token_id: Some(c.pad_token_id),
            decoder_start_token_id: Some(c.decoder_start_token_id),
            forced_bos_token_id: c.forced_bos_token_id,
            forced_eos_token_id: c.forced_eos_token_id,
            ..Default::default()
        };
        if let Some(file) = dir
            .map(|d| d.join("generation_config.json"))
            .filter(|f| f.is_file())
        {
            let mut from_file = GenerationConfig::from_file(&file)?;
            // Settings the file leaves out keep the model config's values.
            if from_file.eos_token_ids.is_empty() {
                from_file.eos_token_ids = g.eos_token_ids;
            }
            from_file.pad_token_id = from_file.pad_token_id.or(g.pad_token_id);
            from_file.decoder_start_token_id = from_file
                .decoder_start_token_id
                .or(g.decoder_start_token_id);
            from_file.forced_bos_token_id = from_file.forced_bos_token_id.or(g.forced_bos_token_id);
            from_file.forced_eos_token_id = from_file.forced_eos_token_id.or(g.forced_eos_token_id);
            g = from_file;
        }
        if g.eos_token_ids.is_empty() {
            return Err(ModelError::Config("the model has no eos_token_id".into()));
        }
        Ok(g)
    }
}
