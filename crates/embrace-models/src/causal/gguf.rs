//! GGUF files (llama.cpp's format): the model configuration from the metadata, the tensors
//! (quantized blocks stay quantized), and the embedded tokenizer and chat template.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};

use super::CausalLm;
use super::config::{DecoderConfig, DecoderFamily, LayerAttention, RopeConfig, RopeLayout};
use super::weights::GgufWeights;
use crate::error::{ModelError, Result};

/// The GGUF architectures this crate runs.
pub const SUPPORTED_GGUF_ARCHITECTURES: [&str; 4] = ["gemma3", "llama", "qwen2", "qwen3"];

/// The metadata of a GGUF file, with typed accessors.
#[derive(Debug)]
pub struct GgufMetadata {
    path: PathBuf,
    values: HashMap<String, Value>,
}

/// An error about the GGUF file at `path`.
pub(super) fn gguf_error(path: &Path, message: impl std::fmt::Display) -> ModelError {
    ModelError::WeightFile {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

fn as_u64(value: &Value) -> Option<u64> {
    match *value {
        Value::U8(n) => Some(n.into()),
        Value::U16(n) => Some(n.into()),
        Value::U32(n) => Some(n.into()),
        Value::U64(n) => Some(n),
        Value::I8(n) => u64::try_from(n).ok(),
        Value::I16(n) => u64::try_from(n).ok(),
        Value::I32(n) => u64::try_from(n).ok(),
        Value::I64(n) => u64::try_from(n).ok(),
        _ => None,
    }
}

fn as_f64(value: &Value) -> Option<f64> {
    match *value {
        Value::F32(x) => Some(x.into()),
        Value::F64(x) => Some(x),
        _ => as_u64(value).map(|n| n as f64),
    }
}

impl GgufMetadata {
    fn bad(&self, key: &str, what: &str) -> ModelError {
        gguf_error(&self.path, format!("metadata `{key}` must be {what}"))
    }

    /// A raw value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// An integer value.
    pub fn u64(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| as_u64(v).ok_or_else(|| self.bad(key, "an integer")))
            .transpose()
    }

    /// A number.
    pub fn f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| as_f64(v).ok_or_else(|| self.bad(key, "a number")))
            .transpose()
    }

    /// A boolean.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| match v {
                Value::Bool(b) => Ok(*b),
                _ => Err(self.bad(key, "true or false")),
            })
            .transpose()
    }

    /// A string.
    pub fn str(&self, key: &str) -> Result<Option<&str>> {
        self.get(key)
            .map(|v| match v {
                Value::String(s) => Ok(s.as_str()),
                _ => Err(self.bad(key, "a string")),
            })
            .transpose()
    }

    /// An array of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<&str>>> {
        self.get(key)
            .map(|v| match v {
                Value::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s.as_str()),
                        _ => Err(self.bad(key, "an array of strings")),
                    })
                    .collect(),
                _ => Err(self.bad(key, "an array of strings")),
            })
            .transpose()
    }

    /// An array of numbers.
    pub fn numbers(&self, key: &str) -> Result<Option<Vec<f64>>> {
        self.get(key)
            .map(|v| match v {
                Value::Array(items) => items
                    .iter()
                    .map(|item| as_f64(item).ok_or_else(|| self.bad(key, "an array of numbers")))
                    .collect(),
                _ => Err(self.bad(key, "an array of numbers")),
            })
            .transpose()
    }

    fn required(&self, key: &str) -> Result<u64> {
        self.u64(key)?
            .ok_or_else(|| gguf_error(&self.path, format!("metadata `{key}` is missing")))
    }

    /// The file this metadata was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A model read from a GGUF file, with what the file carries besides the weights.
#[derive(Debug)]
pub struct GgufModel {
    /// The model.
    pub model: CausalLm,
    /// The file's metadata (tokenizer, chat template, provenance).
    pub metadata: GgufMetadata,
}

/// ggml's tensor type names by id (for messages about types this crate cannot read).
fn ggml_type_name(id: u32) -> &'static str {
    const NAMES: [&str; 31] = [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
        "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",
        "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16",
    ];
    NAMES.get(id as usize).copied().unwrap_or("unknown")
}

/// Reads a GGUF file's metadata and tensor directory.
fn read_content(path: &Path) -> Result<(Content, BufReader<File>)> {
    let file = File::open(path).map_err(|source| ModelError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let content = Content::read(&mut reader).map_err(|e| {
        let message = e.to_string();
        // candle names an unreadable tensor type by its number only.
        match message
            .strip_prefix("unknown dtype for tensor ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u32>().ok())
        {
            Some(id) => gguf_error(
                path,
                format!(
                    "tensor type {id} ({}) is not supported; supported: F32, F16, BF16, Q4_0, \
                     Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K \
                     (re-quantize the model with one of them)",
                    ggml_type_name(id)
                ),
            ),
            None => gguf_error(path, message.lines().next().unwrap_or_default()),
        }
    })?;
    Ok((content, reader))
}

/// Reads only the metadata of a GGUF file (cheap: no tensor data is read).
pub fn read_gguf_metadata(path: &Path) -> Result<GgufMetadata> {
    let (content, _) = read_content(path)?;
    Ok(GgufMetadata {
        path: path.to_owned(),
        values: content.metadata,
    })
}

/// Loads a decoder from a GGUF file.
pub fn load_gguf(path: &Path) -> Result<GgufModel> {
    let (content, reader) = read_content(path)?;
    let metadata = GgufMetadata {
        path: path.to_owned(),
        values: content.metadata.clone(),
    };
    let config = gguf_config(&metadata, &content.tensor_infos)?;
    let model = CausalLm::load(config, &GgufWeights::new(path, &content, reader))?;
    Ok(GgufModel { model, metadata })
}

fn gguf_config(
    meta: &GgufMetadata,
    tensors: &HashMap<String, candle_core::quantized::gguf_file::TensorInfo>,
) -> Result<DecoderConfig> {
    let arch = meta
        .str("general.architecture")?
        .ok_or_else(|| gguf_error(&meta.path, "metadata `general.architecture` is missing"))?
        .to_owned();
    let family = match arch.as_str() {
        "llama" | "qwen2" | "qwen3" => DecoderFamily::Llama,
        "gemma3" => DecoderFamily::Gemma3,
        other => {
            return Err(ModelError::UnsupportedModelType {
                found: format!("{other} (GGUF)"),
                supported: SUPPORTED_GGUF_ARCHITECTURES.to_vec(),
            });
        }
    };
    let key = |k: &str| format!("{arch}.{k}");
    let hidden = meta.required(&key("embedding_length"))? as usize;
    let heads = meta.required(&key("attention.head_count"))? as usize;
    let kv_heads = meta
        .u64(&key("attention.head_count_kv"))?
        .map_or(heads, |n| n as usize);
    let head_dim = meta
        .u64(&key("attention.key_length"))?
        .map_or(hidden / heads.max(1), |n| n as usize);
    let num_layers = meta.required(&key("block_count"))? as usize;
    let vocab_size = tensors
        .get("token_embd.weight")
        .map(|t| t.shape.dims()[0])
        .ok_or_else(|| gguf_error(&meta.path, "tensor `token_embd.weight` is missing"))?;
    if tensors.contains_key("rope_freqs.weight") {
        return Err(gguf_error(
            &meta.path,
            "per-frequency RoPE factors (`rope_freqs.weight`, Llama 3.1 scaling) are not supported yet",
        ));
    }
    let gemma = family == DecoderFamily::Gemma3;
    let theta =
        meta.f64(&key("rope.freq_base"))?
            .unwrap_or(if gemma { 1_000_000.0 } else { 10_000.0 });
    let mut rope = RopeConfig {
        theta,
        linear_factor: 1.0,
        llama3: None,
    };
    match meta.str(&key("rope.scaling.type"))? {
        None | Some("none") => {}
        Some("linear") => {
            rope.linear_factor = meta.f64(&key("rope.scaling.factor"))?.unwrap_or(1.0);
        }
        Some(other) => {
            return Err(gguf_error(
                &meta.path,
                format!("RoPE scaling `{other}` is not supported (linear is)"),
            ));
        }
    }
    let rope_local = if gemma {
        RopeConfig {
            theta: 10_000.0,
            linear_factor: 1.0,
            llama3: None,
        }
    } else {
        rope.clone()
    };
    let window = meta
        .u64(&key("attention.sliding_window"))?
        .map(|n| n as usize);
    let layers = match (gemma, window) {
        // llama.cpp's Gemma 3 pattern: every sixth layer attends globally.
        (true, Some(w)) => (0..num_layers)
            .map(|i| {
                if (i + 1) % 6 == 0 {
                    LayerAttention::Full
                } else {
                    LayerAttention::Sliding(w)
                }
            })
            .collect(),
        _ => vec![LayerAttention::Full; num_layers],
    };
    let ids = |k: &str| -> Result<Option<u32>> {
        Ok(meta.u64(&format!("tokenizer.ggml.{k}"))?.map(|n| n as u32))
    };
    let config = DecoderConfig {
        family,
        model_type: arch.clone(),
        vocab_size,
        hidden_size: hidden,
        intermediate_size: meta.required(&key("feed_forward_length"))? as usize,
        num_layers,
        num_heads: heads,
        num_kv_heads: kv_heads,
        head_dim,
        norm_eps: meta
            .f64(&key("attention.layer_norm_rms_epsilon"))?
            .unwrap_or(1e-6),
        max_position_embeddings: meta
            .u64(&key("context_length"))?
            .map_or(2048, |n| n as usize),
        tie_word_embeddings: !tensors.contains_key("output.weight"),
        qkv_bias: tensors.contains_key("blk.0.attn_q.bias"),
        o_bias: tensors.contains_key("blk.0.attn_output.bias"),
        mlp_bias: tensors.contains_key("blk.0.ffn_up.bias"),
        qk_norm: tensors.contains_key("blk.0.attn_q_norm.weight"),
        attention_scale: 1.0 / (head_dim as f64).sqrt(),
        kv_cache_f16: true,
        gelu_f16_table: true,
        llama_cpp_arithmetic: true,
        rope,
        rope_local,
        // llama.cpp's converter permutes Llama's q / k weights for the interleaved layout; the
        // other architectures keep transformers' halves.
        rope_layout: if arch == "llama" {
            RopeLayout::Interleaved
        } else {
            RopeLayout::Halves
        },
        layers,
        final_logit_softcapping: meta.f64(&key("final_logit_softcapping"))?,
        attn_logit_softcapping: meta.f64(&key("attn_logit_softcapping"))?,
        // llama.cpp's converter already stores Gemma's norm weights as `1 + w`.
        norm_weight_offset: false,
        bos_token_id: ids("bos_token_id")?,
        eos_token_ids: ids("eos_token_id")?.into_iter().collect(),
        pad_token_id: ids("padding_token_id")?,
    };
    config.validate()?;
    Ok(config)
}
