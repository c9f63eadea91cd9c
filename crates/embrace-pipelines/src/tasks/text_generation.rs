//! text-generation: a prompt (or chat messages) in, `[{"generated_text": …}]` out, as
//! transformers' `TextGenerationPipeline`.
//!
//! - A text prompt is tokenized with the tokenizer's special tokens; the output is the prompt
//!   followed by the continuation (`return_full_text`, default true) or the continuation alone.
//! - Chat messages are rendered with the model's chat template (generation prompt added) and
//!   tokenized without special tokens; the output is the messages plus the assistant's reply.
//! - Decoding settings come from the model (`generation_config.json`, or the ids in its config),
//!   then the pipeline's default of 256 new tokens, then the caller's `generate` options.

use std::path::{Path, PathBuf};

use embrace_models::causal::{CausalLm, gguf_tokenizer, load_causal_lm};
use embrace_models::generation::{Control, GenerationConfig, generate};
use embrace_tokenizers::Tokenizer;
use serde_json::{Map, Value, json};

use crate::Input;
use crate::chat::ChatTemplate;
use crate::error::{PipelineError, Result};
use crate::options::Options;

/// The pipeline's own default budget (transformers' `_default_generation_config`).
const DEFAULT_MAX_NEW_TOKENS: usize = 256;

/// A loaded causal LM with its tokenizer, chat template and decoding defaults.
pub struct Generator {
    lm: CausalLm,
    tokenizer: Tokenizer,
    chat: Option<ChatTemplate>,
    defaults: GenerationConfig,
    source: PathBuf,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("source", &self.source)
            .field("chat_template", &self.chat.is_some())
            .finish_non_exhaustive()
    }
}

impl Generator {
    /// Loads a model folder, a `.gguf` file or a repo id.
    pub fn load(spec: &Path) -> Result<Self> {
        let loaded = load_causal_lm(&spec.to_string_lossy())?;
        let folder = if loaded.source.is_file() {
            loaded
                .source
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        } else {
            loaded.source.clone()
        };
        let tokenizer_file = folder.join("tokenizer.json");
        let tokenizer = if tokenizer_file.is_file() {
            Tokenizer::from_file(&tokenizer_file)?
        } else if let Some(meta) = &loaded.gguf {
            gguf_tokenizer(meta)?
        } else {
            return Err(PipelineError::UnsuitableModel(format!(
                "{} has no tokenizer.json",
                folder.display()
            )));
        };
        let mut chat = ChatTemplate::from_model_dir(&folder)?;
        if chat.is_none()
            && let Some(meta) = &loaded.gguf
            && let Some(source) = meta.str("tokenizer.chat_template")?
        {
            let token = |key: &str| -> Result<String> {
                Ok(meta
                    .u64(key)?
                    .and_then(|id| tokenizer.id_to_token(id as u32))
                    .unwrap_or_default()
                    .to_owned())
            };
            chat = Some(ChatTemplate::new(
                source,
                token("tokenizer.ggml.bos_token_id")?,
                token("tokenizer.ggml.eos_token_id")?,
            ));
        }
        let config = loaded.model.config();
        let mut defaults = GenerationConfig {
            eos_token_ids: config.eos_token_ids.clone(),
            bos_token_id: config.bos_token_id,
            pad_token_id: config.pad_token_id,
            ..Default::default()
        };
        let generation_file = folder.join("generation_config.json");
        if generation_file.is_file() && loaded.gguf.is_none() {
            defaults = GenerationConfig::from_file(&generation_file)?;
            if defaults.eos_token_ids.is_empty() {
                defaults.eos_token_ids = config.eos_token_ids.clone();
            }
        }
        if defaults.max_new_tokens.is_none() && defaults.max_length == 20 {
            defaults.max_new_tokens = Some(DEFAULT_MAX_NEW_TOKENS);
        }
        // Chat models end a turn with their template's end token (e.g. `<|im_end|>`).
        if let Some(template) = &chat {
            for marker in ["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>"] {
                if template.source().contains(marker)
                    && let Some(id) = tokenizer.token_to_id(marker)
                    && !defaults.eos_token_ids.contains(&id)
                {
                    defaults.eos_token_ids.push(id);
                }
            }
        }
        Ok(Self {
            lm: loaded.model,
            tokenizer,
            chat,
            defaults,
            source: loaded.source,
        })
    }

    /// The decoding settings for a call: the defaults with the caller's overrides.
    pub fn config(&self, options: &Options) -> Result<GenerationConfig> {
        let mut config = self.defaults.clone();
        config.update(&options.generate)?;
        Ok(config)
    }

    /// The model.
    pub fn model(&self) -> &CausalLm {
        &self.lm
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The chat template, if the model has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat.as_ref()
    }

    /// The prompt ids of an input, and the chat messages when it is a conversation.
    fn prompt(&self, input: &Input) -> Result<(Vec<u32>, Option<Vec<Value>>)> {
        match input {
            Input::Text(text) => {
                if text.is_empty() && self.defaults.bos_token_id.is_none() {
                    return Err(PipelineError::Input(
                        "the prompt is empty and the model has no BOS token to start from".into(),
                    ));
                }
                let mut ids = self.tokenizer.encode_ids(text, true)?;
                if ids.is_empty()
                    && let Some(bos) = self.defaults.bos_token_id
                {
                    ids.push(bos);
                }
                Ok((ids, None))
            }
            Input::Chat(messages) => {
                let template = self.chat.as_ref().ok_or_else(|| {
                    PipelineError::UnsuitableModel(format!(
                        "{} has no chat template; pass plain text instead of messages",
                        self.source.display()
                    ))
                })?;
                let text = template.render(messages, true)?;
                tracing::debug!(prompt = %text, "chat template rendered");
                Ok((
                    self.tokenizer.encode_ids(&text, false)?,
                    Some(messages.clone()),
                ))
            }
            other => Err(PipelineError::Input(format!(
                "text-generation takes a text or chat messages, not {other:?}"
            ))),
        }
    }

    /// Generates for one input, calling `on_text` with each new piece of decoded text.
    pub fn generate_one(
        &self,
        input: &Input,
        options: &Options,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Value> {
        let config = self.config(options)?;
        let (ids, messages) = self.prompt(input)?;
        let stops = options
            .generate
            .get("stop_strings")
            .map(|v| match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            })
            .unwrap_or_default();
        // As transformers: the reply is the decoded sequence minus the decoded prompt (so that
        // a SentencePiece reply keeps its leading space).
        let prompt_text = self.tokenizer.decode(&ids, true);
        let reply_of = |new: &[u32]| -> String {
            let mut all = ids.clone();
            all.extend_from_slice(new);
            let text = self.tokenizer.decode(&all, true);
            match text.strip_prefix(prompt_text.as_str()) {
                Some(reply) => reply.to_owned(),
                None => self.tokenizer.decode(new, true),
            }
        };
        let mut printed = 0usize;
        let mut hook = |new: &[u32]| {
            let text = reply_of(new);
            // Hold back an incomplete UTF-8 sequence (decoded as U+FFFD) until it completes.
            if !text.ends_with('\u{FFFD}') && text.len() > printed && text.is_char_boundary(printed)
            {
                on_text(&text[printed..]);
                printed = text.len();
            }
            if stops.iter().any(|s| text.contains(s.as_str())) {
                Control::Stop
            } else {
                Control::Continue
            }
        };
        let generated = generate(&self.lm, &ids, &config, &mut hook)?;
        let full = !matches!(options.return_full_text, Some(false));
        let outputs: Vec<Value> = generated
            .iter()
            .map(|g| {
                let reply = reply_of(g.new_tokens());
                let text = match (&messages, input) {
                    (Some(messages), _) => {
                        let mut conversation = messages.clone();
                        conversation.push(json!({"role": "assistant", "content": reply}));
                        if full {
                            Value::Array(conversation)
                        } else {
                            Value::String(reply)
                        }
                    }
                    (None, Input::Text(prompt)) if full => {
                        Value::String(format!("{prompt}{reply}"))
                    }
                    _ => Value::String(reply),
                };
                json!({"generated_text": text})
            })
            .collect();
        Ok(Value::Array(outputs))
    }

    /// Generates for each input, in order.
    pub(crate) fn run(&self, inputs: &[Input], options: &Options) -> Result<Vec<Value>> {
        inputs
            .iter()
            .map(|i| self.generate_one(i, options, &mut |_| {}))
            .collect()
    }
}

/// Parses `key=value` generation overrides (`max_new_tokens=32`, `do_sample=true`,
/// `stop_strings=["\n"]`) into the options' `generate` map; values are JSON, or strings.
pub fn parse_generate_overrides(pairs: &[String]) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for pair in pairs {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            PipelineError::Input(format!("generation option {pair:?} is not key=value"))
        })?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        map.insert(key.trim().to_owned(), value);
    }
    Ok(map)
}
