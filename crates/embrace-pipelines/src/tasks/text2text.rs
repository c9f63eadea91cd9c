//! summarization, translation and text2text-generation with encoder-decoder models (T5, BART),
//! as transformers' `Text2TextGenerationPipeline` and its subclasses:
//!
//! - the task's `task_specific_params` in `config.json` (T5's `"summarize: "` /
//!   `"translate English to German: "` prefixes and their decoding settings) apply first, then
//!   the caller's `generate` options;
//! - the input is tokenized with special tokens, the output decoded without them;
//! - the output key is `summary_text`, `translation_text` or `generated_text`.

use std::path::{Path, PathBuf};

use embrace_models::generation::{Control, GenerationConfig, generate};
use embrace_models::seq2seq::Seq2SeqLm;
use embrace_tokenizers::Tokenizer;
use serde_json::{Map, Value, json};

use crate::Input;
use crate::error::{PipelineError, Result};
use crate::options::Options;

/// A loaded encoder-decoder model for one text-to-text task.
pub struct Text2Text {
    model: Seq2SeqLm,
    tokenizer: Tokenizer,
    defaults: GenerationConfig,
    prefix: String,
    output_key: &'static str,
    source: PathBuf,
}

impl std::fmt::Debug for Text2Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Text2Text")
            .field("source", &self.source)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Text2Text {
    /// Loads `dir` for `task` (`summarization`, `translation[_xx_to_yy]`,
    /// `text2text-generation`).
    pub(crate) fn load(dir: &Path, task: &str) -> Result<Self> {
        let model = Seq2SeqLm::from_pretrained(&dir.to_string_lossy())?;
        let tokenizer_file = dir.join("tokenizer.json");
        if !tokenizer_file.is_file() {
            return Err(PipelineError::UnsuitableModel(format!(
                "{} has no tokenizer.json",
                dir.display()
            )));
        }
        let tokenizer = Tokenizer::from_file(&tokenizer_file)?;
        let mut defaults = model.generation_defaults(Some(dir))?;
        let config: Value = std::fs::read_to_string(dir.join("config.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let mut prefix = config
            .get("prefix")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // transformers looks up the task's parameters, e.g. `translation_en_to_de`.
        if let Some(Value::Object(params)) =
            config.get("task_specific_params").and_then(|p| p.get(task))
        {
            if let Some(p) = params.get("prefix").and_then(Value::as_str) {
                prefix = p.to_owned();
            }
            let settings: Map<String, Value> = params
                .iter()
                .filter(|(k, _)| k.as_str() != "prefix")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            defaults.update(&settings)?;
        }
        let output_key = if task.starts_with("summarization") {
            "summary_text"
        } else if task.starts_with("translation") {
            "translation_text"
        } else {
            "generated_text"
        };
        Ok(Self {
            model,
            tokenizer,
            defaults,
            prefix,
            output_key,
            source: dir.to_owned(),
        })
    }

    /// Generates for one text.
    pub(crate) fn run_one(&self, text: &str, options: &Options) -> Result<Value> {
        let mut config = self.defaults.clone();
        config.update(&options.generate)?;
        let input = format!("{}{text}", self.prefix);
        let ids = self.tokenizer.encode_ids(&input, true)?;
        if ids.is_empty() {
            return Err(PipelineError::Input("the input is empty".into()));
        }
        let session = self.model.session(&ids)?;
        let prompt = config
            .decoder_start_token_id
            .map_or_else(|| self.model.decoder_prompt(), |id| vec![id]);
        let generated = generate(&session, &prompt, &config, &mut |_| Control::Continue)?;
        Ok(Value::Array(
            generated
                .iter()
                .map(|g| json!({self.output_key: self.tokenizer.decode(&g.ids, true)}))
                .collect(),
        ))
    }

    pub(crate) fn run(&self, inputs: &[Input], options: &Options) -> Result<Vec<Value>> {
        inputs
            .iter()
            .map(|input| match input {
                Input::Text(t) => self.run_one(t, options),
                other => Err(PipelineError::Input(format!(
                    "this task takes plain texts, not {other:?}"
                ))),
            })
            .collect()
    }
}
