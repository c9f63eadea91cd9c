//! `config.json`: what `transformers`' `AutoConfig` reads, with its per-architecture defaults.
//!
//! [`AutoConfig`] keeps the fields every task needs (model type, architectures, labels, problem
//! type) and normalises the hyper-parameters of the supported encoders into one
//! [`EncoderConfig`], so that architectures with other field names (DistilBERT's `dim` and
//! `n_layers`) are read in one place. A value absent from the file takes the default of the
//! `transformers` configuration class of that model type.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::activation::Activation;
use crate::error::{ModelError, Result};

/// The architectures this crate implements, by `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelType {
    /// `bert` (also MiniLM and most sentence-transformers models).
    Bert,
    /// `roberta`.
    Roberta,
    /// `xlm-roberta`.
    XlmRoberta,
    /// `electra`.
    Electra,
    /// `distilbert`.
    DistilBert,
    /// `modernbert`.
    ModernBert,
}

impl ModelType {
    /// Every supported `model_type` string, in the order error messages list them.
    pub const SUPPORTED: [&'static str; 6] = [
        "bert",
        "distilbert",
        "electra",
        "modernbert",
        "roberta",
        "xlm-roberta",
    ];

    /// Parses a `model_type` value.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "bert" => Self::Bert,
            "roberta" => Self::Roberta,
            "xlm-roberta" => Self::XlmRoberta,
            "electra" => Self::Electra,
            "distilbert" => Self::DistilBert,
            "modernbert" => Self::ModernBert,
            other => {
                return Err(ModelError::UnsupportedModelType {
                    found: other.to_owned(),
                    supported: Self::SUPPORTED.to_vec(),
                });
            }
        })
    }

    /// The `model_type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::Roberta => "roberta",
            Self::XlmRoberta => "xlm-roberta",
            Self::Electra => "electra",
            Self::DistilBert => "distilbert",
            Self::ModernBert => "modernbert",
        }
    }

    /// The attribute name of the base model inside task models (`bert.`, `roberta.`, …): the
    /// prefix of the encoder's tensor names in checkpoints saved from a task model.
    pub fn base_model_prefix(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::Roberta | Self::XlmRoberta => "roberta",
            Self::Electra => "electra",
            Self::DistilBert => "distilbert",
            Self::ModernBert => "model",
        }
    }
}

/// How a sequence-classification model's logits are meant to be read (`problem_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// One label per input: softmax over the logits.
    SingleLabel,
    /// Any number of labels per input: a sigmoid per logit.
    MultiLabel,
    /// One real value per input (`num_labels == 1`).
    Regression,
}

impl ProblemType {
    fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "single_label_classification" => Self::SingleLabel,
            "multi_label_classification" => Self::MultiLabel,
            "regression" => Self::Regression,
            other => {
                return Err(ModelError::Config(format!(
                    "problem_type `{other}` is not one of single_label_classification, \
                     multi_label_classification, regression"
                )));
            }
        })
    }

    /// The `problem_type` string of `config.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SingleLabel => "single_label_classification",
            Self::MultiLabel => "multi_label_classification",
            Self::Regression => "regression",
        }
    }
}

/// ModernBERT's attention and layout options.
#[derive(Debug, Clone, PartialEq)]
pub struct ModernBertOptions {
    /// Per layer: `true` for global (full) attention, `false` for sliding-window attention.
    pub global_layers: Vec<bool>,
    /// The total sliding window (`local_attention`); a token sees `local_attention / 2` tokens on
    /// each side.
    pub local_attention: usize,
    /// RoPE base of the global layers.
    pub global_rope_theta: f64,
    /// RoPE base of the sliding-window layers.
    pub local_rope_theta: f64,
    /// Whether LayerNorms have a bias.
    pub norm_bias: bool,
    /// Whether the attention projections have biases.
    pub attention_bias: bool,
    /// Whether the MLP projections have biases.
    pub mlp_bias: bool,
    /// Whether the masked-LM decoder has a bias.
    pub decoder_bias: bool,
    /// How the classification heads pool the sequence (`cls` or `mean`).
    pub classifier_pooling_mean: bool,
    /// Whether the classification head's dense layer has a bias.
    pub classifier_bias: bool,
    /// The classification head's activation.
    pub classifier_activation: Activation,
}

/// The hyper-parameters of an encoder, normalised across architectures.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderConfig {
    /// Rows of the word-embedding matrix.
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Width of the embeddings (ELECTRA projects them to `hidden_size`; otherwise equal).
    pub embedding_size: usize,
    /// Number of transformer layers.
    pub num_layers: usize,
    /// Number of attention heads.
    pub num_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layer.
    pub hidden_act: Activation,
    /// Rows of the position-embedding matrix.
    pub max_position_embeddings: usize,
    /// Rows of the token-type embedding matrix (0 when the architecture has none).
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// The padding token id.
    pub pad_token_id: u32,
    /// Whether the MLM decoder shares the word-embedding matrix.
    pub tie_word_embeddings: bool,
    /// ModernBERT's options (`None` for the other architectures).
    pub modernbert: Option<ModernBertOptions>,
}

impl EncoderConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }
}

/// A parsed `config.json`.
#[derive(Debug, Clone)]
pub struct AutoConfig {
    /// The architecture family.
    pub model_type: ModelType,
    /// The `architectures` list (task classes the checkpoint was saved from).
    pub architectures: Vec<String>,
    /// Label names by class index, from `id2label` (or `LABEL_<i>` as transformers makes them).
    pub id2label: BTreeMap<usize, String>,
    /// Class index by label name, from `label2id`.
    pub label2id: BTreeMap<String, usize>,
    /// The number of labels of classification heads.
    pub num_labels: usize,
    /// `problem_type`, when the file sets it.
    pub problem_type: Option<ProblemType>,
    /// The normalised hyper-parameters.
    pub encoder: EncoderConfig,
    /// The whole JSON object, for fields this crate does not interpret.
    pub raw: Map<String, Value>,
}

/// Reads a JSON file of the model with `parse`; configuration errors name the file.
pub(crate) fn read_json_file<T>(path: &Path, parse: impl FnOnce(&str) -> Result<T>) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        ModelError::Config(message) => ModelError::Json {
            path: path.to_owned(),
            message,
        },
        other => other,
    })
}

impl AutoConfig {
    /// Reads `config.json` from a file.
    pub fn from_file(path: &Path) -> Result<Self> {
        read_json_file(path, Self::from_json_str)
    }

    /// Parses the text of a `config.json`.
    pub fn from_json_str(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ModelError::Config(format!("not valid JSON: {e}")))?;
        let Value::Object(raw) = value else {
            return Err(ModelError::Config(
                "the top level is not a JSON object".into(),
            ));
        };
        let fields = Fields(&raw);
        let model_type = ModelType::parse(fields.str("model_type")?.ok_or_else(|| {
            ModelError::Config(format!(
                "`model_type` is missing; supported: {}",
                ModelType::SUPPORTED.join(", ")
            ))
        })?)?;
        let architectures = match raw.get("architectures") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        ModelError::Config("`architectures` must be a list of strings".into())
                    })
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(ModelError::Config("`architectures` must be a list".into())),
        };
        let (id2label, label2id, num_labels) = labels(&fields)?;
        let problem_type = fields
            .str("problem_type")?
            .map(ProblemType::parse)
            .transpose()?;
        let encoder = encoder_config(model_type, &fields)?;
        Ok(Self {
            model_type,
            architectures,
            id2label,
            label2id,
            num_labels,
            problem_type,
            encoder,
            raw,
        })
    }

    /// The label name of class `index` (`LABEL_<index>` when the file names none).
    pub fn label(&self, index: usize) -> String {
        self.id2label
            .get(&index)
            .cloned()
            .unwrap_or_else(|| format!("LABEL_{index}"))
    }
}

/// Typed access to the fields of a JSON object, with errors that name the field.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    fn str(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ModelError::Config(format!(
                "`{key}` must be a string, found {other}"
            ))),
        }
    }

    fn usize(&self, key: &str, default: usize) -> Result<usize> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    ModelError::Config(format!("`{key}` must be a non-negative integer, found {v}"))
                }),
        }
    }

    fn positive(&self, key: &str, default: usize) -> Result<usize> {
        let n = self.usize(key, default)?;
        if n == 0 {
            return Err(ModelError::Config(format!("`{key}` must be at least 1")));
        }
        Ok(n)
    }

    fn f64(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| ModelError::Config(format!("`{key}` must be a number, found {v}"))),
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(ModelError::Config(format!(
                "`{key}` must be true or false, found {other}"
            ))),
        }
    }

    fn token_id(&self, key: &str, default: u32) -> Result<u32> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    ModelError::Config(format!("`{key}` must be a token id, found {v}"))
                }),
        }
    }

    fn activation(&self, key: &str, default: &str) -> Result<Activation> {
        let name = self.str(key)?.unwrap_or(default);
        Activation::parse(name).map_err(|e| ModelError::Config(format!("`{key}`: {e}")))
    }
}

type Labels = (BTreeMap<usize, String>, BTreeMap<String, usize>, usize);

fn labels(fields: &Fields<'_>) -> Result<Labels> {
    let mut id2label = BTreeMap::new();
    if let Some(value) = fields.get("id2label") {
        let Value::Object(map) = value else {
            return Err(ModelError::Config("`id2label` must be an object".into()));
        };
        for (key, name) in map {
            let index: usize = key.parse().map_err(|_| {
                ModelError::Config(format!("`id2label` key `{key}` is not a class index"))
            })?;
            let name = name
                .as_str()
                .ok_or_else(|| ModelError::Config(format!("`id2label.{key}` must be a string")))?;
            id2label.insert(index, name.to_owned());
        }
    }
    let mut label2id = BTreeMap::new();
    if let Some(value) = fields.get("label2id") {
        let Value::Object(map) = value else {
            return Err(ModelError::Config("`label2id` must be an object".into()));
        };
        for (name, index) in map {
            let index = index
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    ModelError::Config(format!("`label2id.{name}` must be a class index"))
                })?;
            label2id.insert(name.clone(), index);
        }
    }
    // transformers: `num_labels` is len(id2label) when id2label is given, else the `num_labels`
    // argument (default 2), and missing names become LABEL_<i>.
    let num_labels = if id2label.is_empty() {
        fields.positive("num_labels", 2)?
    } else {
        id2label.len()
    };
    if let Some(bad) = id2label.keys().find(|&&i| i >= num_labels) {
        return Err(ModelError::Config(format!(
            "`id2label` has index {bad} but only {num_labels} labels (indices must be 0..{num_labels})"
        )));
    }
    for i in 0..num_labels {
        id2label.entry(i).or_insert_with(|| format!("LABEL_{i}"));
    }
    if label2id.is_empty() {
        label2id = id2label
            .iter()
            .map(|(i, name)| (name.clone(), *i))
            .collect();
    }
    Ok((id2label, label2id, num_labels))
}

fn encoder_config(model_type: ModelType, f: &Fields<'_>) -> Result<EncoderConfig> {
    let config = match model_type {
        ModelType::Bert | ModelType::Roberta | ModelType::XlmRoberta | ModelType::Electra => {
            let (vocab, hidden, layers, heads, inter, pad) = match model_type {
                ModelType::Bert => (30522, 768, 12, 12, 3072, 0),
                ModelType::Roberta => (50265, 768, 12, 12, 3072, 1),
                ModelType::XlmRoberta => (250002, 768, 12, 12, 3072, 1),
                _ => (30522, 256, 12, 4, 1024, 0),
            };
            if let Some(kind) = f.str("position_embedding_type")?
                && kind != "absolute"
            {
                return Err(ModelError::Config(format!(
                    "position_embedding_type `{kind}` is not supported (only `absolute`)"
                )));
            }
            let hidden_size = f.positive("hidden_size", hidden)?;
            let embedding_size = if model_type == ModelType::Electra {
                f.positive("embedding_size", 128)?
            } else {
                hidden_size
            };
            EncoderConfig {
                vocab_size: f.positive("vocab_size", vocab)?,
                hidden_size,
                embedding_size,
                num_layers: f.usize("num_hidden_layers", layers)?,
                num_heads: f.positive("num_attention_heads", heads)?,
                intermediate_size: f.positive("intermediate_size", inter)?,
                hidden_act: f.activation("hidden_act", "gelu")?,
                max_position_embeddings: f.positive("max_position_embeddings", 512)?,
                type_vocab_size: f.usize("type_vocab_size", 2)?,
                layer_norm_eps: f.f64("layer_norm_eps", 1e-12)?,
                pad_token_id: f.token_id("pad_token_id", pad)?,
                tie_word_embeddings: f.bool("tie_word_embeddings", true)?,
                modernbert: None,
            }
        }
        ModelType::DistilBert => {
            if f.bool("sinusoidal_pos_embds", false)? {
                // The sinusoidal table is stored in the checkpoint like a learned one, so the
                // forward pass is the same; nothing else to do.
            }
            let hidden_size = f.positive("dim", 768)?;
            EncoderConfig {
                vocab_size: f.positive("vocab_size", 30522)?,
                hidden_size,
                embedding_size: hidden_size,
                num_layers: f.usize("n_layers", 6)?,
                num_heads: f.positive("n_heads", 12)?,
                intermediate_size: f.positive("hidden_dim", 3072)?,
                hidden_act: f.activation("activation", "gelu")?,
                max_position_embeddings: f.positive("max_position_embeddings", 512)?,
                type_vocab_size: 0,
                layer_norm_eps: 1e-12,
                pad_token_id: f.token_id("pad_token_id", 0)?,
                tie_word_embeddings: f.bool("tie_word_embeddings", true)?,
                modernbert: None,
            }
        }
        ModelType::ModernBert => modernbert_config(f)?,
    };
    if config.hidden_size % config.num_heads != 0 {
        return Err(ModelError::Config(format!(
            "hidden size {} is not a multiple of the number of attention heads {}",
            config.hidden_size, config.num_heads
        )));
    }
    if config.pad_token_id as usize >= config.vocab_size && model_type != ModelType::ModernBert {
        tracing::debug!(
            pad = config.pad_token_id,
            vocab = config.vocab_size,
            "pad_token_id is outside the vocabulary"
        );
    }
    Ok(config)
}

fn modernbert_config(f: &Fields<'_>) -> Result<EncoderConfig> {
    let num_layers = f.usize("num_hidden_layers", 22)?;
    let global_layers = match f.get("layer_types") {
        Some(Value::Array(kinds)) => kinds
            .iter()
            .map(|k| match k.as_str() {
                Some("full_attention") => Ok(true),
                Some("sliding_attention") => Ok(false),
                _ => Err(ModelError::Config(format!(
                    "`layer_types` entries must be full_attention or sliding_attention, found {k}"
                ))),
            })
            .collect::<Result<Vec<_>>>()?,
        Some(other) => {
            return Err(ModelError::Config(format!(
                "`layer_types` must be a list, found {other}"
            )));
        }
        None => {
            let every = f.positive("global_attn_every_n_layers", 3)?;
            (0..num_layers).map(|i| i % every == 0).collect()
        }
    };
    if global_layers.len() != num_layers {
        return Err(ModelError::Config(format!(
            "`layer_types` has {} entries for {num_layers} layers",
            global_layers.len()
        )));
    }
    let rope_theta = |kind: &str, legacy: &str, default: f64| -> Result<f64> {
        if let Some(Value::Object(params)) = f.get("rope_parameters")
            && let Some(Value::Object(p)) = params.get(kind)
            && let Some(theta) = p.get("rope_theta")
        {
            if let Some(kind) = p.get("rope_type").and_then(Value::as_str)
                && kind != "default"
            {
                return Err(ModelError::Config(format!(
                    "rope_type `{kind}` is not supported (only `default`)"
                )));
            }
            return theta
                .as_f64()
                .ok_or_else(|| ModelError::Config(format!("`rope_parameters.{kind}.rope_theta`")));
        }
        f.f64(legacy, default)
    };
    let hidden_size = f.positive("hidden_size", 768)?;
    let pooling = f.str("classifier_pooling")?.unwrap_or("cls");
    if pooling != "cls" && pooling != "mean" {
        return Err(ModelError::Config(format!(
            "classifier_pooling `{pooling}` is not cls or mean"
        )));
    }
    Ok(EncoderConfig {
        vocab_size: f.positive("vocab_size", 50368)?,
        hidden_size,
        embedding_size: hidden_size,
        num_layers,
        num_heads: f.positive("num_attention_heads", 12)?,
        intermediate_size: f.positive("intermediate_size", 1152)?,
        hidden_act: f.activation("hidden_activation", "gelu")?,
        max_position_embeddings: f.positive("max_position_embeddings", 8192)?,
        type_vocab_size: 0,
        layer_norm_eps: f.f64("norm_eps", 1e-5)?,
        pad_token_id: f.token_id("pad_token_id", 50283)?,
        tie_word_embeddings: f.bool("tie_word_embeddings", true)?,
        modernbert: Some(ModernBertOptions {
            global_layers,
            local_attention: f.positive("local_attention", 128)?,
            global_rope_theta: rope_theta("full_attention", "global_rope_theta", 160_000.0)?,
            local_rope_theta: rope_theta("sliding_attention", "local_rope_theta", 10_000.0)?,
            norm_bias: f.bool("norm_bias", false)?,
            attention_bias: f.bool("attention_bias", false)?,
            mlp_bias: f.bool("mlp_bias", false)?,
            decoder_bias: f.bool("decoder_bias", true)?,
            classifier_pooling_mean: pooling == "mean",
            classifier_bias: f.bool("classifier_bias", false)?,
            classifier_activation: f.activation("classifier_activation", "gelu")?,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_transformers() {
        let c = AutoConfig::from_json_str(r#"{"model_type": "roberta"}"#).unwrap();
        assert_eq!(c.encoder.vocab_size, 50265);
        assert_eq!(c.encoder.pad_token_id, 1);
        assert_eq!(c.num_labels, 2);
        assert_eq!(c.label(1), "LABEL_1");
        assert_eq!(c.label2id["LABEL_0"], 0);
        let d =
            AutoConfig::from_json_str(r#"{"model_type": "distilbert", "dim": 64, "n_heads": 4}"#)
                .unwrap();
        assert_eq!(d.encoder.hidden_size, 64);
        assert_eq!(d.encoder.num_layers, 6);
        assert_eq!(d.encoder.type_vocab_size, 0);
    }

    #[test]
    fn labels_and_problem_type() {
        let c = AutoConfig::from_json_str(
            r#"{"model_type": "bert", "id2label": {"0": "NEG", "1": "POS"},
                "problem_type": "multi_label_classification"}"#,
        )
        .unwrap();
        assert_eq!(c.num_labels, 2);
        assert_eq!(c.label(1), "POS");
        assert_eq!(c.label2id["NEG"], 0);
        assert_eq!(c.problem_type, Some(ProblemType::MultiLabel));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = AutoConfig::from_json_str(r#"{"model_type": "gpt-neo"}"#).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("gpt-neo") && msg.contains("bert, distilbert"),
            "{msg}"
        );
        let e = AutoConfig::from_json_str(r#"{"model_type": "bert", "hidden_size": "big"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("`hidden_size`"), "{e}");
        let e = AutoConfig::from_json_str(
            r#"{"model_type": "bert", "hidden_size": 30, "num_attention_heads": 4}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("multiple"), "{e}");
        let e = AutoConfig::from_json_str(r#"{"model_type": "bert", "hidden_act": "swiglu9"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("swiglu9"), "{e}");
        assert!(AutoConfig::from_json_str("[1]").is_err());
        assert!(AutoConfig::from_json_str("{").is_err());
    }

    #[test]
    fn modernbert_layer_pattern() {
        let c = AutoConfig::from_json_str(
            r#"{"model_type": "modernbert", "num_hidden_layers": 4, "global_attn_every_n_layers": 2}"#,
        )
        .unwrap();
        let m = c.encoder.modernbert.unwrap();
        assert_eq!(m.global_layers, vec![true, false, true, false]);
        assert_eq!(m.global_rope_theta, 160_000.0);
    }
}
