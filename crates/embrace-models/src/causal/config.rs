//! The configuration of a decoder-only model, from `config.json` or from GGUF metadata.
//!
//! [`DecoderConfig`] normalises the field names of the supported families (GPT-2's `n_embd`,
//! Llama's `hidden_size`, Gemma 3's `query_pre_attn_scalar` …) into one description of the
//! transformer, with the defaults of each `transformers` configuration class for absent values.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{ModelError, Result};

/// The decoder families, by `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecoderFamily {
    /// `gpt2`: learned positions, LayerNorm, fused QKV `Conv1D` weights.
    Gpt2,
    /// `llama` (also SmolLM), `mistral`, `qwen2` and `qwen3`: RoPE, RMSNorm, gated SiLU MLP.
    Llama,
    /// `gemma3_text` (and GGUF `gemma3`): scaled embeddings, `(1 + w)` RMSNorm, four norms per
    /// layer, sliding-window layers with their own RoPE base.
    Gemma3,
}

impl DecoderFamily {
    /// Every supported decoder `model_type`.
    pub const SUPPORTED: [&'static str; 7] = [
        "gemma3",
        "gemma3_text",
        "gpt2",
        "llama",
        "mistral",
        "qwen2",
        "qwen3",
    ];
}

/// How rotary position embeddings pair the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeLayout {
    /// The first half rotates with the second half (transformers' `rotate_half`, llama.cpp's
    /// NEOX type).
    Halves,
    /// Adjacent pairs rotate together (the original Llama layout; llama.cpp's GGUF Llama weights
    /// are permuted for it).
    Interleaved,
}

/// Rotary embedding settings of one kind of layer.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeConfig {
    /// The base `theta`.
    pub theta: f64,
    /// Positions are divided by this (`linear` scaling); 1 otherwise.
    pub linear_factor: f64,
    /// Llama 3 frequency scaling: `(factor, low_freq_factor, high_freq_factor, original_max)`.
    pub llama3: Option<(f64, f64, f64, f64)>,
}

impl RopeConfig {
    fn plain(theta: f64) -> Self {
        Self {
            theta,
            linear_factor: 1.0,
            llama3: None,
        }
    }

    /// The inverse frequencies of a head of `dim` rotary dimensions.
    pub fn inverse_frequencies(&self, dim: usize) -> Vec<f32> {
        (0..dim / 2)
            .map(|i| {
                let base = 1.0 / self.theta.powf(2.0 * i as f64 / dim as f64);
                let freq = match self.llama3 {
                    None => base,
                    Some((factor, low, high, original)) => {
                        let low_wavelen = original / low;
                        let high_wavelen = original / high;
                        let wavelen = 2.0 * std::f64::consts::PI / base;
                        if wavelen > low_wavelen {
                            base / factor
                        } else if wavelen < high_wavelen {
                            base
                        } else {
                            let smooth = (original / wavelen - low) / (high - low);
                            (1.0 - smooth) * base / factor + smooth * base
                        }
                    }
                };
                (freq / self.linear_factor) as f32
            })
            .collect()
    }
}

/// The attention pattern of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerAttention {
    /// Every earlier position.
    Full,
    /// Only the last `window` positions (the query's own included).
    Sliding(usize),
}

/// A decoder-only transformer, as the forward pass needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    /// The family (which forward pass).
    pub family: DecoderFamily,
    /// The `model_type` as written in the file.
    pub model_type: String,
    /// Vocabulary size (rows of the embedding table).
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// MLP inner size.
    pub intermediate_size: usize,
    /// Number of layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key / value heads (grouped-query attention when fewer than `num_heads`).
    pub num_kv_heads: usize,
    /// Size of one head.
    pub head_dim: usize,
    /// The epsilon of the normalisation layers.
    pub norm_eps: f64,
    /// The longest sequence the positions support.
    pub max_position_embeddings: usize,
    /// Whether the output projection is the embedding table.
    pub tie_word_embeddings: bool,
    /// Bias on the q, k and v projections (Qwen2; GPT-2 always).
    pub qkv_bias: bool,
    /// Bias on the attention output projection.
    pub o_bias: bool,
    /// Bias on the MLP projections.
    pub mlp_bias: bool,
    /// RMSNorm over each head's queries and keys before RoPE (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// The attention scores are multiplied by this.
    pub attention_scale: f64,
    /// Queries, keys, values and attention weights rounded to f16 for the attention products,
    /// as llama.cpp's default f16 KV cache computes them (GGUF models); f32 otherwise.
    pub kv_cache_f16: bool,
    /// GELU read from llama.cpp's table of f16 values (GGUF models) instead of evaluated in f32.
    pub gelu_f16_table: bool,
    /// RMSNorm, rotary embeddings, SwiGLU and the attention's sums computed with llama.cpp's CPU
    /// arithmetic, operation by operation (GGUF models), instead of candle's.
    pub llama_cpp_arithmetic: bool,
    /// Rotary settings for full-attention layers.
    pub rope: RopeConfig,
    /// Rotary settings for sliding-window layers (Gemma 3 uses another base).
    pub rope_local: RopeConfig,
    /// How the rotary dimensions pair up.
    pub rope_layout: RopeLayout,
    /// The attention pattern of every layer.
    pub layers: Vec<LayerAttention>,
    /// `tanh` soft-capping of the final logits (Gemma 2 style), if any.
    pub final_logit_softcapping: Option<f64>,
    /// `tanh` soft-capping of the attention scores, if any.
    pub attn_logit_softcapping: Option<f64>,
    /// Gemma's norms multiply by `1 + w`; true when the stored weights still need the `+ 1`
    /// (transformers checkpoints; llama.cpp's converter already added it).
    pub norm_weight_offset: bool,
    /// Beginning-of-sequence id, if the model has one.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence ids.
    pub eos_token_ids: Vec<u32>,
    /// Padding id, if any.
    pub pad_token_id: Option<u32>,
}

/// Typed access to a JSON object's fields, with the file path for messages.
pub(crate) struct Fields<'a> {
    pub(crate) map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn usize(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                ModelError::Config(format!("`{key}` must be a non-negative integer"))
            }),
        }
    }

    fn positive(&self, key: &str, default: Option<usize>) -> Result<usize> {
        match self.usize(key)?.or(default) {
            Some(0) => Err(ModelError::Config(format!("`{key}` must be positive"))),
            Some(n) => Ok(n),
            None => Err(ModelError::Config(format!("`{key}` is missing"))),
        }
    }

    fn f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| ModelError::Config(format!("`{key}` must be a number"))),
        }
    }

    pub(crate) fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| ModelError::Config(format!("`{key}` must be true or false"))),
        }
    }

    pub(crate) fn ids(&self, key: &str) -> Result<Vec<u32>> {
        let bad = || ModelError::Config(format!("`{key}` must be a token id or a list of them"));
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_u64().map(|n| n as u32).ok_or_else(bad))
                .collect(),
            Some(v) => Ok(vec![v.as_u64().ok_or_else(bad)? as u32]),
        }
    }
}

/// Reads the rotary settings of `rope_parameters` (transformers 5) or `rope_theta` +
/// `rope_scaling` (older files).
fn rope_from(params: Option<&Map<String, Value>>, theta_default: f64) -> Result<RopeConfig> {
    let Some(params) = params else {
        return Ok(RopeConfig::plain(theta_default));
    };
    let f = Fields { map: params };
    let theta = f.f64("rope_theta")?.unwrap_or(theta_default);
    let kind = f
        .get("rope_type")
        .or_else(|| f.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let mut rope = RopeConfig::plain(theta);
    match kind {
        "default" => {}
        "linear" => rope.linear_factor = f.f64("factor")?.unwrap_or(1.0),
        "llama3" => {
            rope.llama3 = Some((
                f.f64("factor")?.unwrap_or(8.0),
                f.f64("low_freq_factor")?.unwrap_or(1.0),
                f.f64("high_freq_factor")?.unwrap_or(4.0),
                f.f64("original_max_position_embeddings")?.unwrap_or(8192.0),
            ))
        }
        other => {
            return Err(ModelError::Config(format!(
                "rope type `{other}` is not supported (default, linear, llama3 are)"
            )));
        }
    }
    Ok(rope)
}

impl DecoderConfig {
    /// Reads `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        crate::config::read_json_file(path, Self::from_json_str)
    }

    /// Parses the text of a `config.json`.
    pub fn from_json_str(text: &str) -> Result<Self> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ModelError::Config(e.to_string()))?;
        let map = value
            .as_object()
            .ok_or_else(|| ModelError::Config("config.json is not a JSON object".into()))?;
        Self::from_json(map)
    }

    /// Builds the configuration from the parsed `config.json` object.
    pub fn from_json(map: &Map<String, Value>) -> Result<Self> {
        let f = Fields { map };
        let model_type = f
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| ModelError::Config("`model_type` is missing".into()))?
            .to_owned();
        let family = match model_type.as_str() {
            "gpt2" => DecoderFamily::Gpt2,
            "llama" | "mistral" | "qwen2" | "qwen3" => DecoderFamily::Llama,
            "gemma3_text" | "gemma3" => DecoderFamily::Gemma3,
            other => {
                return Err(ModelError::UnsupportedModelType {
                    found: other.to_owned(),
                    supported: DecoderFamily::SUPPORTED.to_vec(),
                });
            }
        };
        // Gemma 3 multimodal configs keep the language model under `text_config`.
        if family == DecoderFamily::Gemma3
            && let Some(Value::Object(text)) = f.get("text_config")
        {
            let mut inner = text.clone();
            inner
                .entry("model_type")
                .or_insert_with(|| Value::String("gemma3_text".into()));
            for key in ["bos_token_id", "eos_token_id", "pad_token_id"] {
                if let Some(v) = map.get(key) {
                    inner.entry(key).or_insert_with(|| v.clone());
                }
            }
            return Self::from_json(&inner);
        }
        let config = match family {
            DecoderFamily::Gpt2 => gpt2(&f, model_type)?,
            DecoderFamily::Llama | DecoderFamily::Gemma3 => llama_like(&f, family, model_type)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the relations between sizes that the forward pass relies on.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.num_kv_heads == 0 || !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return bad(format!(
                "num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
                self.num_heads, self.num_kv_heads
            ));
        }
        if self.family != DecoderFamily::Gpt2 && !self.head_dim.is_multiple_of(2) {
            return bad(format!(
                "head_dim ({}) must be even for RoPE",
                self.head_dim
            ));
        }
        if self.family == DecoderFamily::Gpt2 && self.num_heads * self.head_dim != self.hidden_size
        {
            return bad(format!(
                "n_embd ({}) must be a multiple of n_head ({})",
                self.hidden_size, self.num_heads
            ));
        }
        if self.layers.len() != self.num_layers {
            return bad(format!(
                "layer_types has {} entries for {} layers",
                self.layers.len(),
                self.num_layers
            ));
        }
        Ok(())
    }
}

fn gpt2(f: &Fields<'_>, model_type: String) -> Result<DecoderConfig> {
    let hidden = f.positive("n_embd", Some(768))?;
    let heads = f.positive("n_head", Some(12))?;
    let layers = f.positive("n_layer", Some(12))?;
    let activation = f
        .get("activation_function")
        .and_then(Value::as_str)
        .unwrap_or("gelu_new");
    if !matches!(activation, "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast") {
        return Err(ModelError::Config(format!(
            "GPT-2 activation `{activation}` is not supported (gelu_new is)"
        )));
    }
    let scale = if f.bool("scale_attn_weights", true)? {
        1.0 / ((hidden / heads) as f64).sqrt()
    } else {
        1.0
    };
    if f.bool("scale_attn_by_inverse_layer_idx", false)?
        || f.bool("reorder_and_upcast_attn", false)?
    {
        return Err(ModelError::Config(
            "GPT-2 scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported"
                .into(),
        ));
    }
    Ok(DecoderConfig {
        family: DecoderFamily::Gpt2,
        model_type,
        vocab_size: f.positive("vocab_size", Some(50257))?,
        hidden_size: hidden,
        intermediate_size: f.usize("n_inner")?.unwrap_or(4 * hidden),
        num_layers: layers,
        num_heads: heads,
        num_kv_heads: heads,
        head_dim: hidden / heads,
        norm_eps: f.f64("layer_norm_epsilon")?.unwrap_or(1e-5),
        max_position_embeddings: f.positive("n_positions", Some(1024))?,
        tie_word_embeddings: true,
        qkv_bias: true,
        o_bias: true,
        mlp_bias: true,
        qk_norm: false,
        attention_scale: scale,
        kv_cache_f16: false,
        gelu_f16_table: false,
        llama_cpp_arithmetic: false,
        rope: RopeConfig::plain(10_000.0),
        rope_local: RopeConfig::plain(10_000.0),
        rope_layout: RopeLayout::Halves,
        layers: vec![LayerAttention::Full; layers],
        final_logit_softcapping: None,
        attn_logit_softcapping: None,
        norm_weight_offset: false,
        bos_token_id: f.usize("bos_token_id")?.map(|n| n as u32).or(Some(50256)),
        eos_token_ids: {
            let ids = f.ids("eos_token_id")?;
            if ids.is_empty() { vec![50256] } else { ids }
        },
        pad_token_id: f.usize("pad_token_id")?.map(|n| n as u32),
    })
}

fn llama_like(f: &Fields<'_>, family: DecoderFamily, model_type: String) -> Result<DecoderConfig> {
    let gemma = family == DecoderFamily::Gemma3;
    let hidden = f.positive("hidden_size", Some(if gemma { 2304 } else { 4096 }))?;
    let heads = f.positive("num_attention_heads", Some(if gemma { 8 } else { 32 }))?;
    let kv_heads = f.positive("num_key_value_heads", Some(if gemma { 4 } else { heads }))?;
    let head_dim = f.positive("head_dim", Some(if gemma { 256 } else { hidden / heads }))?;
    let num_layers = f.positive("num_hidden_layers", Some(if gemma { 26 } else { 32 }))?;
    let activation = f
        .get("hidden_activation")
        .or_else(|| f.get("hidden_act"))
        .and_then(Value::as_str)
        .unwrap_or(if gemma { "gelu_pytorch_tanh" } else { "silu" });
    let expected = if gemma { "gelu_pytorch_tanh" } else { "silu" };
    if activation != expected {
        return Err(ModelError::Config(format!(
            "activation `{activation}` is not supported for {model_type} ({expected} is)"
        )));
    }

    // Rotary settings: `rope_parameters` (transformers 5, per layer type for Gemma 3) or the
    // older `rope_theta` / `rope_scaling` / `rope_local_base_freq`.
    let theta_default = match (model_type.as_str(), gemma) {
        (_, true) => 1_000_000.0,
        ("qwen2" | "qwen3", _) => 1_000_000.0,
        _ => 10_000.0,
    };
    let theta = f.f64("rope_theta")?.unwrap_or(theta_default);
    let params = f.get("rope_parameters").and_then(Value::as_object);
    let (rope, rope_local) = if gemma {
        let per_type = |kind: &str| params.and_then(|p| p.get(kind)).and_then(Value::as_object);
        let local_theta = f.f64("rope_local_base_freq")?.unwrap_or(10_000.0);
        match (per_type("full_attention"), per_type("sliding_attention")) {
            (Some(full), Some(local)) => (
                rope_from(Some(full), theta)?,
                rope_from(Some(local), local_theta)?,
            ),
            _ => {
                let scaling = f.get("rope_scaling").and_then(Value::as_object);
                (
                    rope_from(params.or(scaling), theta)?,
                    RopeConfig::plain(local_theta),
                )
            }
        }
    } else {
        let scaling = f.get("rope_scaling").and_then(Value::as_object);
        let rope = rope_from(params.or(scaling), theta)?;
        (rope.clone(), rope)
    };

    let sliding_window = f.usize("sliding_window")?;
    let layers = match f.get("layer_types") {
        Some(Value::Array(kinds)) => kinds
            .iter()
            .map(|kind| match kind.as_str() {
                Some("full_attention") => Ok(LayerAttention::Full),
                Some("sliding_attention") => {
                    Ok(LayerAttention::Sliding(sliding_window.ok_or_else(
                        || ModelError::Config("sliding layers need `sliding_window`".into()),
                    )?))
                }
                _ => Err(ModelError::Config(format!(
                    "layer_types entry {kind} is not full_attention or sliding_attention"
                ))),
            })
            .collect::<Result<Vec<_>>>()?,
        _ if gemma => {
            let pattern = f.usize("sliding_window_pattern")?.unwrap_or(6);
            let window = sliding_window.unwrap_or(4096);
            (0..num_layers)
                .map(|i| {
                    if (i + 1) % pattern == 0 {
                        LayerAttention::Full
                    } else {
                        LayerAttention::Sliding(window)
                    }
                })
                .collect()
        }
        _ => {
            // Mistral applies its window to every layer; Qwen2 only with use_sliding_window.
            let uses_window = match model_type.as_str() {
                "mistral" => true,
                "qwen2" | "qwen3" => f.bool("use_sliding_window", false)?,
                _ => false,
            };
            let attention = match (uses_window, sliding_window) {
                (true, Some(w)) => LayerAttention::Sliding(w),
                _ => LayerAttention::Full,
            };
            vec![attention; num_layers]
        }
    };

    let attention_bias = f.bool("attention_bias", false)?;
    let qkv_bias = model_type == "qwen2" || attention_bias;
    let attention_scale = if gemma {
        let scalar = f.f64("query_pre_attn_scalar")?.unwrap_or(256.0);
        1.0 / scalar.sqrt()
    } else {
        1.0 / (head_dim as f64).sqrt()
    };
    Ok(DecoderConfig {
        family,
        vocab_size: f.positive("vocab_size", Some(if gemma { 262_208 } else { 32_000 }))?,
        hidden_size: hidden,
        intermediate_size: f
            .positive("intermediate_size", Some(if gemma { 9216 } else { 11008 }))?,
        num_layers,
        num_heads: heads,
        num_kv_heads: kv_heads,
        head_dim,
        norm_eps: f.f64("rms_norm_eps")?.unwrap_or(1e-6),
        max_position_embeddings: f.positive(
            "max_position_embeddings",
            Some(if gemma { 131_072 } else { 2048 }),
        )?,
        tie_word_embeddings: f.bool(
            "tie_word_embeddings",
            gemma || matches!(model_type.as_str(), "qwen2" | "qwen3"),
        )?,
        qkv_bias,
        o_bias: attention_bias,
        mlp_bias: f.bool("mlp_bias", false)?,
        qk_norm: gemma || model_type == "qwen3",
        attention_scale,
        kv_cache_f16: false,
        gelu_f16_table: false,
        llama_cpp_arithmetic: false,
        rope,
        rope_local,
        rope_layout: RopeLayout::Halves,
        layers,
        final_logit_softcapping: f.f64("final_logit_softcapping")?,
        attn_logit_softcapping: f.f64("attn_logit_softcapping")?,
        norm_weight_offset: gemma,
        bos_token_id: f.usize("bos_token_id")?.map(|n| n as u32),
        eos_token_ids: f.ids("eos_token_id")?,
        pad_token_id: f.usize("pad_token_id")?.map(|n| n as u32),
        model_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_defaults_and_gqa() {
        let c = DecoderConfig::from_json_str(
            r#"{"model_type":"llama","hidden_size":64,"num_attention_heads":4,
                "num_key_value_heads":2,"num_hidden_layers":2,"intermediate_size":96,
                "vocab_size":100,"eos_token_id":[2,3]}"#,
        )
        .expect("config");
        assert_eq!(c.head_dim, 16);
        assert_eq!(c.num_kv_heads, 2);
        assert_eq!(c.eos_token_ids, vec![2, 3]);
        assert!(!c.tie_word_embeddings);
        assert_eq!(c.layers, vec![LayerAttention::Full; 2]);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let e = DecoderConfig::from_json_str(r#"{"model_type":"falcon"}"#).expect_err("unknown");
        assert!(e.to_string().contains("gpt2"), "{e}");
        let e = DecoderConfig::from_json_str(
            r#"{"model_type":"llama","num_attention_heads":6,"num_key_value_heads":4}"#,
        )
        .expect_err("heads");
        assert!(e.to_string().contains("num_key_value_heads"), "{e}");
        let e = DecoderConfig::from_json_str(r#"{"model_type":"llama","hidden_size":"big"}"#)
            .expect_err("type");
        assert!(e.to_string().contains("hidden_size"), "{e}");
    }

    #[test]
    fn llama3_rope_scaling_keeps_high_frequencies() {
        let rope = RopeConfig {
            theta: 500_000.0,
            linear_factor: 1.0,
            llama3: Some((8.0, 1.0, 4.0, 8192.0)),
        };
        let plain = RopeConfig::plain(500_000.0).inverse_frequencies(64);
        let scaled = rope.inverse_frequencies(64);
        assert_eq!(plain[0], scaled[0]);
        assert!((plain[31] / scaled[31] - 8.0).abs() < 1e-3);
    }
}
