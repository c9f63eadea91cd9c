//! `generation_config.json`: how `generate()` decodes, with transformers' defaults.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{ModelError, Result};

/// When beam search stops (transformers' `early_stopping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// Stop as soon as `num_beams` hypotheses are finished (`true`).
    Yes,
    /// Stop when no running beam can beat the finished ones, judged at the current length
    /// (`false`, the default).
    #[default]
    Heuristic,
    /// Judge at the longest possible length (`"never"`): the canonical beam search.
    Never,
}

/// Decoding settings, as transformers' `GenerationConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// New tokens to produce at most (takes precedence over `max_length`).
    pub max_new_tokens: Option<usize>,
    /// Total length (prompt included) at most, used when `max_new_tokens` is unset (default 20).
    pub max_length: usize,
    /// New tokens to produce before end-of-sequence is allowed.
    pub min_new_tokens: usize,
    /// Sample from the distribution instead of taking the most likely token.
    pub do_sample: bool,
    /// Softmax temperature for sampling.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens when sampling (0 or `None`: all).
    pub top_k: Option<usize>,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one.
    pub min_p: Option<f32>,
    /// Penalty for tokens already present (> 1 discourages repetition).
    pub repetition_penalty: f32,
    /// Never repeat an n-gram of this size (0: off).
    pub no_repeat_ngram_size: usize,
    /// Beams for beam search (1: greedy or sampling).
    pub num_beams: usize,
    /// Exponent of the length normalisation of finished beams.
    pub length_penalty: f32,
    /// When beam search stops.
    pub early_stopping: EarlyStopping,
    /// Sequences to return (at most `num_beams` for beam search).
    pub num_return_sequences: usize,
    /// Ids that end a sequence.
    pub eos_token_ids: Vec<u32>,
    /// The padding id (fills finished sequences in batches).
    pub pad_token_id: Option<u32>,
    /// The beginning-of-sequence id.
    pub bos_token_id: Option<u32>,
    /// Seed of the sampler (`None`: seeded from the clock).
    pub seed: Option<u64>,
    /// Token forced as the first generated one (BART-style models).
    pub forced_bos_token_id: Option<u32>,
    /// Token forced when the length limit is reached (BART-style models).
    pub forced_eos_token_id: Option<u32>,
    /// The first decoder token of an encoder-decoder model.
    pub decoder_start_token_id: Option<u32>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: None,
            max_length: 20,
            min_new_tokens: 0,
            do_sample: false,
            temperature: 1.0,
            top_k: Some(50),
            top_p: 1.0,
            min_p: None,
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            num_return_sequences: 1,
            eos_token_ids: Vec::new(),
            pad_token_id: None,
            bos_token_id: None,
            seed: None,
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            decoder_start_token_id: None,
        }
    }
}

fn ids(value: &Value, key: &str) -> Result<Vec<u32>> {
    let bad = || ModelError::Config(format!("`{key}` must be a token id or a list of them"));
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_u64().map(|n| n as u32).ok_or_else(bad))
            .collect(),
        v => Ok(vec![v.as_u64().ok_or_else(bad)? as u32]),
    }
}

impl GenerationConfig {
    /// Reads `generation_config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| ModelError::Json {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let map = value.as_object().ok_or_else(|| ModelError::Json {
            path: path.to_owned(),
            message: "not a JSON object".into(),
        })?;
        let mut config = Self::default();
        config.update(map).map_err(|e| match e {
            ModelError::Config(message) => ModelError::Json {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Overrides the settings named in `map` (the keys of `generation_config.json`, or the
    /// keyword arguments of `generate()`); unknown keys are ignored as transformers keeps them.
    pub fn update(&mut self, map: &Map<String, Value>) -> Result<()> {
        let number = |key: &str, v: &Value| {
            v.as_f64()
                .ok_or_else(|| ModelError::Config(format!("`{key}` must be a number")))
        };
        let count = |key: &str, v: &Value| {
            v.as_u64().map(|n| n as usize).ok_or_else(|| {
                ModelError::Config(format!("`{key}` must be a non-negative integer"))
            })
        };
        for (key, v) in map {
            match key.as_str() {
                "max_new_tokens" if !v.is_null() => self.max_new_tokens = Some(count(key, v)?),
                "max_length" if !v.is_null() => self.max_length = count(key, v)?,
                "min_new_tokens" if !v.is_null() => self.min_new_tokens = count(key, v)?,
                "do_sample" => self.do_sample = v.as_bool().unwrap_or(false),
                "temperature" if !v.is_null() => self.temperature = number(key, v)? as f32,
                "top_k" => {
                    self.top_k = match v {
                        Value::Null => None,
                        v => Some(count(key, v)?).filter(|&k| k > 0),
                    }
                }
                "top_p" if !v.is_null() => self.top_p = number(key, v)? as f32,
                "min_p" => self.min_p = v.as_f64().map(|x| x as f32),
                "repetition_penalty" if !v.is_null() => {
                    self.repetition_penalty = number(key, v)? as f32
                }
                "no_repeat_ngram_size" if !v.is_null() => {
                    self.no_repeat_ngram_size = count(key, v)?
                }
                "num_beams" if !v.is_null() => self.num_beams = count(key, v)?.max(1),
                "length_penalty" if !v.is_null() => self.length_penalty = number(key, v)? as f32,
                "early_stopping" => {
                    self.early_stopping = match v {
                        Value::Bool(true) => EarlyStopping::Yes,
                        Value::Bool(false) | Value::Null => EarlyStopping::Heuristic,
                        Value::String(s) if s == "never" => EarlyStopping::Never,
                        _ => {
                            return Err(ModelError::Config(
                                "`early_stopping` must be true, false or \"never\"".into(),
                            ));
                        }
                    }
                }
                "num_return_sequences" if !v.is_null() => {
                    self.num_return_sequences = count(key, v)?.max(1)
                }
                "eos_token_id" => self.eos_token_ids = ids(v, key)?,
                "pad_token_id" => self.pad_token_id = v.as_u64().map(|n| n as u32),
                "bos_token_id" => self.bos_token_id = v.as_u64().map(|n| n as u32),
                "seed" => self.seed = v.as_u64(),
                "forced_bos_token_id" => self.forced_bos_token_id = v.as_u64().map(|n| n as u32),
                "forced_eos_token_id" => self.forced_eos_token_id = v.as_u64().map(|n| n as u32),
                "decoder_start_token_id" => {
                    self.decoder_start_token_id = v.as_u64().map(|n| n as u32)
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The number of new tokens allowed after a prompt of `prompt_len` tokens.
    pub fn new_token_budget(&self, prompt_len: usize) -> usize {
        self.max_new_tokens
            .unwrap_or_else(|| self.max_length.saturating_sub(prompt_len))
    }

    /// Checks the settings before generating.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(ModelError::Config(m.to_owned()));
        if self.do_sample && (self.temperature.is_nan() || self.temperature <= 0.0) {
            return bad("temperature must be positive when sampling");
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return bad("top_p must be in [0, 1]");
        }
        if self.repetition_penalty <= 0.0 {
            return bad("repetition_penalty must be positive");
        }
        if self.num_return_sequences > 1
            && self.num_beams > 1
            && self.num_return_sequences > self.num_beams
        {
            return bad("num_return_sequences cannot exceed num_beams in beam search");
        }
        if self.num_return_sequences > 1 && self.num_beams == 1 && !self.do_sample {
            return bad("greedy search returns one sequence: set do_sample or num_beams for more");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_transformers_keys() {
        let map = serde_json::json!({"max_new_tokens": 8, "eos_token_id": [1, 2], "top_k": 0,
            "early_stopping": "never", "do_sample": true, "temperature": 0.7, "_from_model_config": true});
        let mut c = GenerationConfig::default();
        c.update(map.as_object().expect("object")).expect("update");
        assert_eq!(c.max_new_tokens, Some(8));
        assert_eq!(c.eos_token_ids, vec![1, 2]);
        assert_eq!(c.top_k, None);
        assert_eq!(c.early_stopping, EarlyStopping::Never);
        assert_eq!(c.new_token_budget(100), 8);
        assert_eq!(GenerationConfig::default().new_token_budget(5), 15);
    }
}
