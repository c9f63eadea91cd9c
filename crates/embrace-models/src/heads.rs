//! Task heads: what turns the encoder's hidden states into logits, per architecture.

use crate::activation::Activation;
use crate::config::{AutoConfig, ModelType};
use crate::error::{ModelError, Result};
use crate::layers::{Linear, Norm, Scope};
use crate::weights::WeightLoader;

/// The tasks a model can be loaded for (`AutoModel`, `AutoModelFor…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// The bare encoder: `last_hidden_state` (and `pooler_output` where the architecture has a
    /// pooler).
    Base,
    /// One label (or value) per sequence: `logits` `[batch, num_labels]`.
    SequenceClassification,
    /// One label per token: `logits` `[batch, seq, num_labels]`.
    TokenClassification,
    /// Extractive QA: `start_logits` and `end_logits` `[batch, seq]`.
    QuestionAnswering,
    /// Masked-token prediction: `logits` `[batch, seq, vocab]`.
    MaskedLm,
    /// One score per choice: `logits` `[batch, num_choices]`.
    MultipleChoice,
}

impl Task {
    /// The `transformers` class-name suffix of the task (`ForSequenceClassification`, …).
    pub fn class_suffix(self) -> &'static str {
        match self {
            Self::Base => "Model",
            Self::SequenceClassification => "ForSequenceClassification",
            Self::TokenClassification => "ForTokenClassification",
            Self::QuestionAnswering => "ForQuestionAnswering",
            Self::MaskedLm => "ForMaskedLM",
            Self::MultipleChoice => "ForMultipleChoice",
        }
    }
}

/// One step of a head applied to a vector per sequence or per token.
pub(crate) enum Step {
    Dense(Linear, Activation),
    Norm(Norm),
}

impl Step {
    fn apply(&self, x: Vec<f32>, rows: usize) -> Vec<f32> {
        match self {
            Step::Dense(linear, act) => linear.forward(&x, rows, *act),
            Step::Norm(norm) => {
                let mut x = x;
                norm.apply(&mut x);
                x
            }
        }
    }
}

/// How a sequence-level head reduces the tokens of a sequence to one vector.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pooling {
    /// The first token (`[CLS]` / `<s>`).
    First,
    /// The mean over the sequence's tokens (ModernBERT's `classifier_pooling = "mean"`).
    Mean,
}

/// Steps applied in order; the last one gives the output.
pub(crate) struct Stack(pub Vec<Step>);

impl Stack {
    pub fn apply(&self, x: Vec<f32>, rows: usize) -> Vec<f32> {
        self.0.iter().fold(x, |x, step| step.apply(x, rows))
    }

    pub fn out_width(&self, input: usize) -> usize {
        self.0
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::Dense(l, _) => Some(l.out),
                Step::Norm(_) => None,
            })
            .unwrap_or(input)
    }
}

/// A loaded head.
pub(crate) enum Head {
    /// The bare model, with the pooler (dense + tanh on the first token) when present.
    Base { pooler: Option<Stack> },
    /// A head on one pooled vector per sequence (sequence classification, multiple choice).
    Sequence { pooling: Pooling, stack: Stack },
    /// A head applied to every token (token classification, QA, masked LM).
    Token { stack: Stack },
}

fn dense(
    w: &WeightLoader<'_>,
    scope: Scope,
    name: &str,
    inp: usize,
    out: usize,
    act: Activation,
) -> Result<Step> {
    Ok(Step::Dense(
        Linear::load(w, scope, name, inp, out, true)?,
        act,
    ))
}

fn dense_nobias(
    w: &WeightLoader<'_>,
    name: &str,
    inp: usize,
    out: usize,
    bias: bool,
    act: Activation,
) -> Result<Step> {
    Ok(Step::Dense(
        Linear::load(w, Scope::Head, name, inp, out, bias)?,
        act,
    ))
}

/// The MLM decoder: the word-embedding matrix when tied (as transformers ties it), else the
/// checkpoint's own matrix; plus the output bias.
fn decoder(
    w: &WeightLoader<'_>,
    config: &AutoConfig,
    word_embeddings: &[f32],
    weight_name: &str,
    bias_names: &[&str],
    width: usize,
) -> Result<Step> {
    let vocab = config.encoder.vocab_size;
    let weight = if config.encoder.tie_word_embeddings || !w.has(weight_name) {
        w.mark_used(weight_name);
        word_embeddings.to_vec()
    } else {
        w.get(weight_name, &[vocab, width])?
    };
    let bias_name = bias_names
        .iter()
        .find(|n| w.has(n))
        .copied()
        .unwrap_or(bias_names[0]);
    let bias = w.get(bias_name, &[vocab])?;
    for other in bias_names {
        w.mark_used(other);
    }
    Ok(Step::Dense(
        Linear {
            weight,
            bias,
            out: vocab,
            inp: width,
        },
        Activation::Identity,
    ))
}

fn unsupported(config: &AutoConfig, what: &str) -> ModelError {
    ModelError::Config(format!("{}: {what}", config.model_type.as_str()))
}

/// Loads the head of `task` for the architecture of `config`.
pub(crate) fn load_head(
    w: &WeightLoader<'_>,
    config: &AutoConfig,
    task: Task,
    word_embeddings: &[f32],
) -> Result<Head> {
    let c = &config.encoder;
    let h = c.hidden_size;
    let labels = config.num_labels;
    let kind = config.model_type;
    let tanh = Activation::Tanh;
    let id = Activation::Identity;
    let bert_pooler = || -> Result<Step> { dense(w, Scope::Base, "pooler.dense", h, h, tanh) };
    Ok(match (task, kind) {
        (Task::Base, ModelType::Bert | ModelType::Roberta | ModelType::XlmRoberta) => Head::Base {
            pooler: if w.has_base("pooler.dense.weight") {
                Some(Stack(vec![bert_pooler()?]))
            } else {
                None
            },
        },
        (Task::Base, _) => Head::Base { pooler: None },

        (Task::SequenceClassification | Task::MultipleChoice, _) => {
            let out = if task == Task::MultipleChoice {
                1
            } else {
                labels
            };
            let steps = match kind {
                ModelType::Bert => vec![
                    bert_pooler()?,
                    dense(w, Scope::Head, "classifier", h, out, id)?,
                ],
                ModelType::Roberta | ModelType::XlmRoberta if task == Task::MultipleChoice => {
                    vec![
                        bert_pooler()?,
                        dense(w, Scope::Head, "classifier", h, out, id)?,
                    ]
                }
                ModelType::Roberta | ModelType::XlmRoberta => vec![
                    dense(w, Scope::Head, "classifier.dense", h, h, tanh)?,
                    dense(w, Scope::Head, "classifier.out_proj", h, out, id)?,
                ],
                ModelType::Electra if task == Task::MultipleChoice => {
                    electra_summary(w, config)?;
                    vec![
                        dense(
                            w,
                            Scope::Head,
                            "sequence_summary.summary",
                            h,
                            h,
                            Activation::Gelu,
                        )?,
                        dense(w, Scope::Head, "classifier", h, out, id)?,
                    ]
                }
                ModelType::Electra => vec![
                    dense(w, Scope::Head, "classifier.dense", h, h, Activation::Gelu)?,
                    dense(w, Scope::Head, "classifier.out_proj", h, out, id)?,
                ],
                ModelType::DistilBert => vec![
                    dense(w, Scope::Head, "pre_classifier", h, h, Activation::Relu)?,
                    dense(w, Scope::Head, "classifier", h, out, id)?,
                ],
                ModelType::ModernBert => {
                    let m = modernbert(config)?;
                    let mut steps = modernbert_prediction_head(w, config, m.classifier_activation)?;
                    steps.push(dense(w, Scope::Head, "classifier", h, out, id)?);
                    return Ok(Head::Sequence {
                        pooling: if m.classifier_pooling_mean {
                            Pooling::Mean
                        } else {
                            Pooling::First
                        },
                        stack: Stack(steps),
                    });
                }
            };
            Head::Sequence {
                pooling: Pooling::First,
                stack: Stack(steps),
            }
        }

        (Task::TokenClassification, ModelType::ModernBert) => {
            let m = modernbert(config)?;
            let mut steps = modernbert_prediction_head(w, config, m.classifier_activation)?;
            steps.push(dense(w, Scope::Head, "classifier", h, labels, id)?);
            Head::Token {
                stack: Stack(steps),
            }
        }
        (Task::TokenClassification, _) => Head::Token {
            stack: Stack(vec![dense(w, Scope::Head, "classifier", h, labels, id)?]),
        },
        (Task::QuestionAnswering, ModelType::ModernBert) => {
            let m = modernbert(config)?;
            let mut steps = modernbert_prediction_head(w, config, m.classifier_activation)?;
            // ModernBERT names its QA projection `classifier` (num_labels = 2).
            steps.push(dense(w, Scope::Head, "classifier", h, 2, id)?);
            Head::Token {
                stack: Stack(steps),
            }
        }
        (Task::QuestionAnswering, _) => Head::Token {
            stack: Stack(vec![dense(w, Scope::Head, "qa_outputs", h, 2, id)?]),
        },

        (Task::MaskedLm, ModelType::Bert) => mlm_head(
            w,
            config,
            word_embeddings,
            MlmNames {
                transform: "cls.predictions.transform.dense",
                act: c.hidden_act,
                norm: "cls.predictions.transform.LayerNorm",
                norm_eps: c.layer_norm_eps,
                width: h,
                decoder: "cls.predictions.decoder.weight",
                biases: &["cls.predictions.bias", "cls.predictions.decoder.bias"],
            },
        )?,
        (Task::MaskedLm, ModelType::Roberta | ModelType::XlmRoberta) => mlm_head(
            w,
            config,
            word_embeddings,
            MlmNames {
                transform: "lm_head.dense",
                act: Activation::Gelu,
                norm: "lm_head.layer_norm",
                norm_eps: c.layer_norm_eps,
                width: h,
                decoder: "lm_head.decoder.weight",
                biases: &["lm_head.bias", "lm_head.decoder.bias"],
            },
        )?,
        (Task::MaskedLm, ModelType::Electra) => mlm_head(
            w,
            config,
            word_embeddings,
            MlmNames {
                transform: "generator_predictions.dense",
                act: Activation::Gelu,
                norm: "generator_predictions.LayerNorm",
                norm_eps: c.layer_norm_eps,
                width: c.embedding_size,
                decoder: "generator_lm_head.weight",
                biases: &["generator_lm_head.bias"],
            },
        )?,
        (Task::MaskedLm, ModelType::DistilBert) => mlm_head(
            w,
            config,
            word_embeddings,
            MlmNames {
                transform: "vocab_transform",
                act: c.hidden_act,
                norm: "vocab_layer_norm",
                norm_eps: 1e-12,
                width: h,
                decoder: "vocab_projector.weight",
                biases: &["vocab_projector.bias"],
            },
        )?,
        (Task::MaskedLm, ModelType::ModernBert) => {
            let m = modernbert(config)?;
            let mut steps = modernbert_prediction_head(w, config, m.classifier_activation)?;
            let vocab = c.vocab_size;
            let weight = if c.tie_word_embeddings || !w.has("decoder.weight") {
                w.mark_used("decoder.weight");
                word_embeddings.to_vec()
            } else {
                w.get("decoder.weight", &[vocab, h])?
            };
            let bias = if m.decoder_bias {
                w.get("decoder.bias", &[vocab])?
            } else {
                Vec::new()
            };
            steps.push(Step::Dense(
                Linear {
                    weight,
                    bias,
                    out: vocab,
                    inp: h,
                },
                id,
            ));
            Head::Token {
                stack: Stack(steps),
            }
        }
    })
}

/// Tensor names of a BERT-style masked-LM head: transform (dense + activation + LayerNorm to
/// `width`), then the decoder to the vocabulary.
struct MlmNames {
    transform: &'static str,
    act: Activation,
    norm: &'static str,
    norm_eps: f64,
    width: usize,
    decoder: &'static str,
    biases: &'static [&'static str],
}

fn mlm_head(
    w: &WeightLoader<'_>,
    config: &AutoConfig,
    word_embeddings: &[f32],
    n: MlmNames,
) -> Result<Head> {
    let h = config.encoder.hidden_size;
    Ok(Head::Token {
        stack: Stack(vec![
            dense(w, Scope::Head, n.transform, h, n.width, n.act)?,
            Step::Norm(Norm::load(
                w,
                Scope::Head,
                n.norm,
                n.width,
                n.norm_eps,
                true,
            )?),
            decoder(w, config, word_embeddings, n.decoder, n.biases, n.width)?,
        ]),
    })
}

fn modernbert(config: &AutoConfig) -> Result<&crate::config::ModernBertOptions> {
    config
        .encoder
        .modernbert
        .as_ref()
        .ok_or_else(|| unsupported(config, "ModernBERT options missing"))
}

/// ModernBERT's `head`: dense (bias = classifier_bias) + activation + LayerNorm.
fn modernbert_prediction_head(
    w: &WeightLoader<'_>,
    config: &AutoConfig,
    act: Activation,
) -> Result<Vec<Step>> {
    let m = modernbert(config)?;
    let h = config.encoder.hidden_size;
    Ok(vec![
        dense_nobias(w, "head.dense", h, h, m.classifier_bias, act)?,
        Step::Norm(Norm::load(
            w,
            Scope::Head,
            "head.norm",
            h,
            config.encoder.layer_norm_eps,
            m.norm_bias,
        )?),
    ])
}

/// ELECTRA's multiple-choice summary: only the configuration transformers ships by default
/// (first token, projection to hidden size, GELU) is supported.
fn electra_summary(_w: &WeightLoader<'_>, config: &AutoConfig) -> Result<()> {
    let raw = &config.raw;
    let kind = raw
        .get("summary_type")
        .and_then(|v| v.as_str())
        .unwrap_or("first");
    let use_proj = raw
        .get("summary_use_proj")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let to_labels = raw
        .get("summary_proj_to_labels")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let act = raw
        .get("summary_activation")
        .and_then(|v| v.as_str())
        .unwrap_or("gelu");
    if kind != "first" || !use_proj || to_labels || act != "gelu" {
        return Err(unsupported(
            config,
            "only summary_type=first, summary_use_proj=true, summary_proj_to_labels=false, \
             summary_activation=gelu are supported for multiple choice",
        ));
    }
    Ok(())
}
