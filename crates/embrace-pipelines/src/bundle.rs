//! A model directory as a pipeline needs it: the model with the task's head, its tokenizer
//! (set up as `AutoTokenizer` sets it up) and the special tokens of `tokenizer_config.json`.

use std::path::{Path, PathBuf};

use embrace_models::{AutoConfig, Batch, Model, ModelOutput, Task};
use embrace_tokenizers::{Encoding, Tokenizer, TruncationParams, TruncationStrategy};
use serde_json::Value;

use crate::error::{PipelineError, Result};
use crate::trace::Probe;

/// A loaded model, tokenizer and tokenizer settings.
pub struct Bundle {
    /// Where the files came from.
    pub dir: PathBuf,
    /// The model, with the head of the task.
    pub model: Model,
    /// The tokenizer, without the file's padding and truncation (as `AutoTokenizer`).
    pub tokenizer: Tokenizer,
    /// The most tokens one input may have: the smaller of `model_max_length` and the model's
    /// positions.
    pub max_length: usize,
    /// The mask token (`[MASK]`, `<mask>`), when the tokenizer has one.
    pub mask_token: Option<String>,
    /// The padding id.
    pub pad_id: u32,
    /// The `[CLS]` / `<s>` token's id, when the tokenizer config names one.
    pub cls_id: Option<u32>,
    /// The unknown token's id, when the tokenizer has one.
    pub unk_id: Option<u32>,
    /// Counters the evidence card reads (time, token counts, truncation).
    pub probe: Probe,
    /// Whether `decode` cleans up tokenization spaces (`clean_up_tokenization_spaces` in the
    /// tokenizer config; never for BPE models, as transformers 5 decides).
    pub clean_up: bool,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("dir", &self.dir)
            .field("model", &self.model)
            .field("max_length", &self.max_length)
            .finish_non_exhaustive()
    }
}

fn special_token(config: &Value, key: &str) -> Option<String> {
    match config.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

impl Bundle {
    /// Loads the model in `dir` for `task`.
    pub fn load(dir: &Path, task: Task) -> Result<Self> {
        let config = AutoConfig::from_file(&dir.join("config.json"))?;
        let model = Model::from_pretrained(dir.to_string_lossy(), task).map_err(|e| match e {
            embrace_models::ModelError::MissingWeights { .. } => {
                PipelineError::UnsuitableModel(format!(
                    "{} has no {} head for this task ({e})",
                    dir.display(),
                    task.class_suffix()
                ))
            }
            other => PipelineError::Model(other),
        })?;
        let mut tokenizer = Tokenizer::from_path(dir)?;
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None)?;
        let tok_config: Value = std::fs::read_to_string(dir.join("tokenizer_config.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        // Positions usable by tokens: RoBERTa-style models spend `pad + 1` rows on offsets.
        let mut positions = config.encoder.max_position_embeddings;
        if matches!(
            config.model_type,
            embrace_models::ModelType::Roberta | embrace_models::ModelType::XlmRoberta
        ) {
            positions = positions.saturating_sub(config.encoder.pad_token_id as usize + 1);
        }
        let max_length = tok_config
            .get("model_max_length")
            .and_then(Value::as_f64)
            .map_or(positions, |m| (m.min(positions as f64)) as usize);
        let mask_token = special_token(&tok_config, "mask_token").or_else(|| {
            ["[MASK]", "<mask>"]
                .into_iter()
                .find(|t| tokenizer.token_to_id(t).is_some())
                .map(str::to_owned)
        });
        let pad_id = special_token(&tok_config, "pad_token")
            .and_then(|t| tokenizer.token_to_id(&t))
            .unwrap_or(config.encoder.pad_token_id);
        let is_bpe = matches!(tokenizer.model(), embrace_tokenizers::models::Model::BPE(_));
        let clean_up = !is_bpe
            && tok_config
                .get("clean_up_tokenization_spaces")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        let unk_id = special_token(&tok_config, "unk_token")
            .or_else(|| Some("[UNK]".to_owned()))
            .and_then(|t| tokenizer.token_to_id(&t))
            .or_else(|| tokenizer.token_to_id("<unk>"));
        let cls_id =
            special_token(&tok_config, "cls_token").and_then(|t| tokenizer.token_to_id(&t));
        Ok(Self {
            dir: dir.to_owned(),
            model,
            tokenizer,
            max_length,
            mask_token,
            pad_id,
            cls_id,
            unk_id,
            probe: Probe::default(),
            clean_up,
        })
    }

    /// The model configuration.
    pub fn config(&self) -> &AutoConfig {
        self.model.config()
    }

    /// The truncation length for a task: `requested` (if any) within the model's limit.
    pub fn limit(&self, requested: Option<usize>) -> usize {
        requested.map_or(self.max_length, |m| m.min(self.max_length))
    }

    /// Encodes a text (or pair) with char offsets, truncated with `strategy` to `max_length`
    /// tokens when `truncate` is given.
    pub fn encode(
        &self,
        text: &str,
        pair: Option<&str>,
        truncate: Option<(TruncationStrategy, usize)>,
    ) -> Result<Encoding> {
        let started = std::time::Instant::now();
        let encoding = match truncate {
            None => self.tokenizer.encode_char_offsets(text, pair, true)?,
            Some((strategy, max_length)) => {
                let mut tokenizer = self.tokenizer.clone();
                tokenizer.with_truncation(Some(TruncationParams {
                    max_length,
                    strategy,
                    direction: Default::default(),
                    stride: 0,
                }))?;
                tokenizer.encode_char_offsets(text, pair, true)?
            }
        };
        let truncated = !encoding.overflowing().is_empty();
        if truncated {
            tracing::warn!(
                tokens = encoding.len(),
                "an input is longer than {} tokens and was truncated",
                encoding.len()
            );
        }
        self.probe
            .record_encoding(&encoding, truncated, self.unk_id, started.elapsed());
        Ok(encoding)
    }

    /// Encodes a pair truncating only the second text to `max_length` tokens, with windows that
    /// overlap by `stride` tokens: the first encoding and its overflowing windows, in order.
    pub fn encode_windows(
        &self,
        first: &str,
        second: &str,
        max_length: usize,
        stride: usize,
    ) -> Result<Vec<Encoding>> {
        let mut tokenizer = self.tokenizer.clone();
        tokenizer.with_truncation(Some(TruncationParams {
            max_length,
            strategy: TruncationStrategy::OnlySecond,
            direction: Default::default(),
            stride,
        }))?;
        let encoding = tokenizer.encode_char_offsets(first, Some(second), true)?;
        let mut windows = vec![encoding.clone()];
        windows.extend(encoding.overflowing().iter().cloned());
        Ok(windows)
    }

    /// Decodes ids as transformers' `tokenizer.decode` does.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> String {
        let text = self.tokenizer.decode(ids, skip_special_tokens);
        if self.clean_up {
            crate::tasks::clean_up_tokenization(&text)
        } else {
            text
        }
    }

    /// The head's output at chosen `(row, token)` positions of a batch (`[positions, width]`).
    pub fn forward_positions(
        &self,
        encodings: &[&Encoding],
        positions: &[(usize, usize)],
    ) -> Result<Vec<Vec<f32>>> {
        let started = std::time::Instant::now();
        let batch = Batch::from_encodings(encodings, self.pad_id)?;
        let out = self
            .model
            .forward_positions(&batch, positions)?
            .to_vec2::<f32>()?;
        self.probe.record_forward(started.elapsed());
        Ok(out)
    }

    /// The logits of a batch (`[batch, labels]` or `[batch, seq, labels]`).
    pub fn logits(&self, encodings: &[&Encoding]) -> Result<candle_core::Tensor> {
        self.forward(encodings)?
            .logits
            .ok_or_else(|| PipelineError::UnsuitableModel("the model returned no logits".into()))
    }

    /// Encodes texts (no pairs), truncated to `max_length` tokens.
    pub fn encode_texts(&self, texts: &[&str], max_length: usize) -> Result<Vec<Encoding>> {
        texts
            .iter()
            .map(|t| {
                self.encode(
                    t,
                    None,
                    Some((TruncationStrategy::LongestFirst, max_length)),
                )
            })
            .collect()
    }

    /// Runs the model on encodings (padded into one batch).
    pub fn forward(&self, encodings: &[&Encoding]) -> Result<ModelOutput> {
        let started = std::time::Instant::now();
        let batch = Batch::from_encodings(encodings, self.pad_id)?;
        let out = self.model.forward(&batch)?;
        self.probe.record_forward(started.elapsed());
        Ok(out)
    }
}
