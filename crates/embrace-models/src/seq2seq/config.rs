//! The configuration of an encoder-decoder model (T5, BART) from `config.json`, with the
//! defaults of transformers' `T5Config` / `BartConfig`.

use serde_json::{Map, Value};

use crate::causal::config::Fields;
use crate::error::{ModelError, Result};

/// The encoder-decoder families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Seq2SeqFamily {
    /// T5 and T5 v1.1 / Flan-T5: pre-norm RMS layers, relative position buckets, no biases.
    T5,
    /// BART: learned positions, post-norm LayerNorm layers, biases, `final_logits_bias`.
    Bart,
    /// Marian (Opus-MT translation): BART's layers with sinusoidal positions, scaled
    /// embeddings and no embedding LayerNorm.
    Marian,
}

impl Seq2SeqFamily {
    /// Every supported encoder-decoder `model_type`.
    pub const SUPPORTED: [&'static str; 3] = ["bart", "marian", "t5"];
}

/// The activation of the feed-forward layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedForwardActivation {
    /// `relu`.
    Relu,
    /// The tanh approximation of GELU (`gelu_new`).
    GeluTanh,
    /// Exact (erf) GELU.
    Gelu,
    /// SiLU.
    Silu,
}

impl FeedForwardActivation {
    fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "relu" => Self::Relu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "gelu" => Self::Gelu,
            "silu" | "swish" => Self::Silu,
            other => {
                return Err(ModelError::Config(format!(
                    "activation `{other}` is not supported (relu, gelu, gelu_new, silu are)"
                )));
            }
        })
    }
}

/// An encoder-decoder transformer as the forward pass needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seq2SeqConfig {
    /// The family.
    pub family: Seq2SeqFamily,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size.
    pub d_model: usize,
    /// Size of one attention head.
    pub head_dim: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Feed-forward inner size.
    pub d_ff: usize,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Feed-forward activation.
    pub activation: FeedForwardActivation,
    /// Gated feed-forward (`act(wi_0 x) * wi_1 x`, T5 v1.1).
    pub gated: bool,
    /// Normalisation epsilon.
    pub eps: f64,
    /// T5: number of relative position buckets.
    pub relative_buckets: usize,
    /// T5: the distance beyond which relative positions share the last bucket.
    pub relative_max_distance: usize,
    /// BART: learned positions (the table has two more rows, as BART offsets positions by 2).
    pub max_position_embeddings: usize,
    /// BART: multiply token embeddings by `sqrt(d_model)`.
    pub scale_embedding: bool,
    /// Whether the LM head is the embedding table.
    pub tie_word_embeddings: bool,
    /// T5: the decoder output is scaled by `d_model^-0.5` before the LM head.
    pub scale_decoder_outputs: bool,
    /// The padding id.
    pub pad_token_id: u32,
    /// The end-of-sequence id.
    pub eos_token_id: u32,
    /// The first decoder token.
    pub decoder_start_token_id: u32,
    /// BART's forced first generated token, if any.
    pub forced_bos_token_id: Option<u32>,
    /// BART's forced last token, if any.
    pub forced_eos_token_id: Option<u32>,
}

fn field_usize(map: &Map<String, Value>, key: &str, default: usize) -> Result<usize> {
    Ok(Fields { map }.usize(key)?.unwrap_or(default))
}

fn field_id(map: &Map<String, Value>, key: &str) -> Result<Option<u32>> {
    Ok(Fields { map }.ids(key)?.first().copied())
}

fn field_bool(map: &Map<String, Value>, key: &str, default: bool) -> Result<bool> {
    Fields { map }.bool(key, default)
}

impl Seq2SeqConfig {
    /// Builds the configuration from a parsed `config.json`.
    pub fn from_json(map: &Map<String, Value>) -> Result<Self> {
        let model_type = map
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| ModelError::Config("`model_type` is missing".into()))?;
        let config = match model_type {
            "t5" | "mt5" => Self::t5(map)?,
            "bart" => Self::bart(map, Seq2SeqFamily::Bart)?,
            "marian" => Self::bart(map, Seq2SeqFamily::Marian)?,
            other => {
                return Err(ModelError::UnsupportedModelType {
                    found: other.to_owned(),
                    supported: Seq2SeqFamily::SUPPORTED.to_vec(),
                });
            }
        };
        if config.num_heads == 0 || config.head_dim == 0 || config.d_model == 0 {
            return Err(ModelError::Config("sizes must be positive".into()));
        }
        Ok(config)
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

    fn t5(map: &Map<String, Value>) -> Result<Self> {
        let proj = map
            .get("feed_forward_proj")
            .and_then(Value::as_str)
            .unwrap_or("relu");
        let gated = proj.starts_with("gated-");
        let act = proj.rsplit('-').next().unwrap_or("relu");
        // transformers maps "gated-gelu" to gelu_new.
        let act = if proj == "gated-gelu" {
            "gelu_new"
        } else {
            act
        };
        let layers = field_usize(map, "num_layers", 6)?;
        let pad = field_id(map, "pad_token_id")?.unwrap_or(0);
        Ok(Self {
            family: Seq2SeqFamily::T5,
            vocab_size: field_usize(map, "vocab_size", 32_128)?,
            d_model: field_usize(map, "d_model", 512)?,
            head_dim: field_usize(map, "d_kv", 64)?,
            num_heads: field_usize(map, "num_heads", 8)?,
            d_ff: field_usize(map, "d_ff", 2048)?,
            encoder_layers: layers,
            decoder_layers: field_usize(map, "num_decoder_layers", layers)?,
            activation: FeedForwardActivation::parse(act)?,
            gated,
            eps: map
                .get("layer_norm_epsilon")
                .and_then(Value::as_f64)
                .unwrap_or(1e-6),
            relative_buckets: field_usize(map, "relative_attention_num_buckets", 32)?,
            relative_max_distance: field_usize(map, "relative_attention_max_distance", 128)?,
            max_position_embeddings: 0,
            scale_embedding: false,
            tie_word_embeddings: field_bool(map, "tie_word_embeddings", true)?,
            // transformers 5 writes `scale_decoder_outputs`; older files imply it from the tie.
            scale_decoder_outputs: field_bool(
                map,
                "scale_decoder_outputs",
                field_bool(map, "tie_word_embeddings", true)?,
            )?,
            pad_token_id: pad,
            eos_token_id: field_id(map, "eos_token_id")?.unwrap_or(1),
            decoder_start_token_id: field_id(map, "decoder_start_token_id")?.unwrap_or(pad),
            forced_bos_token_id: field_id(map, "forced_bos_token_id")?,
            forced_eos_token_id: field_id(map, "forced_eos_token_id")?,
        })
    }

    fn bart(map: &Map<String, Value>, family: Seq2SeqFamily) -> Result<Self> {
        let marian = family == Seq2SeqFamily::Marian;
        if field_bool(map, "normalize_before", false)?
            || field_bool(map, "add_final_layer_norm", false)?
        {
            return Err(ModelError::Config(
                "pre-norm BART variants (normalize_before / add_final_layer_norm, mBART) are not \
                 supported yet"
                    .into(),
            ));
        }
        let d_model = field_usize(map, "d_model", 1024)?;
        let heads = field_usize(map, "encoder_attention_heads", 16)?;
        if field_usize(map, "decoder_attention_heads", heads)? != heads
            || field_usize(map, "decoder_ffn_dim", 4096)?
                != field_usize(map, "encoder_ffn_dim", 4096)?
        {
            return Err(ModelError::Config(
                "encoder and decoder must have the same heads and ffn size".into(),
            ));
        }
        let activation = map
            .get("activation_function")
            .and_then(Value::as_str)
            .unwrap_or(if marian { "swish" } else { "gelu" });
        let pad = field_id(map, "pad_token_id")?.unwrap_or(if marian { 58_100 } else { 1 });
        let eos = field_id(map, "eos_token_id")?.unwrap_or(if marian { 0 } else { 2 });
        Ok(Self {
            family,
            vocab_size: field_usize(map, "vocab_size", if marian { 58_101 } else { 50_265 })?,
            d_model,
            head_dim: d_model / heads.max(1),
            num_heads: heads,
            d_ff: field_usize(map, "encoder_ffn_dim", 4096)?,
            encoder_layers: field_usize(map, "encoder_layers", 12)?,
            decoder_layers: field_usize(map, "decoder_layers", 12)?,
            activation: FeedForwardActivation::parse(activation)?,
            gated: false,
            eps: 1e-5,
            relative_buckets: 0,
            relative_max_distance: 0,
            max_position_embeddings: field_usize(map, "max_position_embeddings", 1024)?,
            scale_embedding: field_bool(map, "scale_embedding", marian)?,
            tie_word_embeddings: field_bool(map, "tie_word_embeddings", true)?,
            scale_decoder_outputs: false,
            pad_token_id: pad,
            eos_token_id: eos,
            decoder_start_token_id: field_id(map, "decoder_start_token_id")?.unwrap_or(if marian {
                pad
            } else {
                2
            }),
            forced_bos_token_id: field_id(map, "forced_bos_token_id")?,
            forced_eos_token_id: field_id(map, "forced_eos_token_id")?.or(Some(eos)),
        })
    }
}

/// T5's bucket of a relative position (`key - query`).
pub(crate) fn relative_bucket(
    relative: i64,
    bidirectional: bool,
    buckets: usize,
    max_distance: usize,
) -> usize {
    let mut buckets = buckets as i64;
    let mut bucket = 0i64;
    let distance = if bidirectional {
        buckets /= 2;
        if relative > 0 {
            bucket += buckets;
        }
        relative.abs()
    } else {
        (-relative).max(0)
    };
    let max_exact = buckets / 2;
    if distance < max_exact {
        bucket += distance;
    } else {
        let scaled = ((distance as f32 / max_exact as f32).ln()
            / (max_distance as f32 / max_exact as f32).ln()
            * (buckets - max_exact) as f32) as i64;
        bucket += (max_exact + scaled).min(buckets - 1);
    }
    bucket as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t5_buckets() {
        // 32 buckets, max distance 128, as T5's defaults.
        assert_eq!(relative_bucket(0, true, 32, 128), 0);
        assert_eq!(relative_bucket(3, true, 32, 128), 19);
        assert_eq!(relative_bucket(-3, true, 32, 128), 3);
        assert_eq!(relative_bucket(-200, true, 32, 128), 15);
        assert_eq!(relative_bucket(5, false, 32, 128), 0);
        assert_eq!(relative_bucket(-20, false, 32, 128), 17);
        assert_eq!(relative_bucket(-1000, false, 32, 128), 31);
    }

    #[test]
    fn defaults_and_errors() {
        let c = Seq2SeqConfig::from_json_str(
            r#"{"model_type": "t5", "feed_forward_proj": "gated-gelu"}"#,
        )
        .expect("t5");
        assert!(c.gated);
        assert_eq!(c.activation, FeedForwardActivation::GeluTanh);
        assert_eq!(c.decoder_start_token_id, 0);
        let e = Seq2SeqConfig::from_json_str(r#"{"model_type": "pegasus"}"#).expect_err("unknown");
        assert!(e.to_string().contains("bart"), "{e}");
    }
}
