//! One module per task: pre-processing, the forward pass in length-sorted batches, and
//! post-processing into transformers' output shapes.

mod classification;
mod features;
mod fill_mask;
mod question_answering;
mod text2text;
pub(crate) mod text_generation;
mod token_classification;
mod zero_shot;

use std::path::Path;

use embrace_models::sentence_transformers::SentenceTransformer;
use embrace_tokenizers::Encoding;
use serde_json::{Value, json};

use crate::bundle::Bundle;
use crate::error::{PipelineError, Result};
use crate::options::{Options, TopK};
use crate::{Input, PipelineTask};

/// A loaded task.
pub(crate) enum Engine {
    /// Token vectors from a transformers model.
    TokenFeatures(Bundle),
    /// Sentence embeddings from a sentence-transformers model.
    SentenceFeatures(SentenceTransformer),
    /// Cosine similarities between sentence embeddings.
    Similarity(SentenceTransformer),
    Classification(Bundle),
    Tokens(Bundle),
    FillMask(Bundle),
    Qa(Bundle),
    ZeroShot(Bundle),
    Generation(Box<text_generation::Generator>),
    Text2Text(Box<text2text::Text2Text>),
}

impl Engine {
    pub(crate) fn load(
        task: PipelineTask,
        task_name: &str,
        dir: &Path,
        options: &Options,
    ) -> Result<Self> {
        let sentence_transformers =
            dir.join("modules.json").is_file() && options.sentence_embeddings.unwrap_or(true);
        let bundle = || Bundle::load(dir, task.model_task());
        Ok(match task {
            PipelineTask::FeatureExtraction if sentence_transformers => {
                Self::SentenceFeatures(SentenceTransformer::from_pretrained(dir.to_string_lossy())?)
            }
            PipelineTask::FeatureExtraction => Self::TokenFeatures(bundle()?),
            PipelineTask::SentenceSimilarity => {
                Self::Similarity(SentenceTransformer::from_pretrained(dir.to_string_lossy())?)
            }
            PipelineTask::TextClassification => Self::Classification(bundle()?),
            PipelineTask::TokenClassification => Self::Tokens(bundle()?),
            PipelineTask::FillMask => Self::FillMask(bundle()?),
            PipelineTask::QuestionAnswering => Self::Qa(bundle()?),
            PipelineTask::ZeroShotClassification => Self::ZeroShot(zero_shot::check(bundle()?)?),
            PipelineTask::TextGeneration => {
                Self::Generation(Box::new(text_generation::Generator::load(dir)?))
            }
            PipelineTask::Summarization
            | PipelineTask::Translation
            | PipelineTask::Text2TextGeneration => {
                Self::Text2Text(Box::new(text2text::Text2Text::load(dir, task_name)?))
            }
        })
    }

    pub(crate) fn run(
        &self,
        inputs: &[Input],
        options: &Options,
        batch_size: usize,
    ) -> Result<Vec<Value>> {
        match self {
            Self::TokenFeatures(b) => {
                features::token_features(b, &texts(inputs)?, options, batch_size)
            }
            Self::SentenceFeatures(st) => {
                features::sentence_features(st, &texts(inputs)?, batch_size)
            }
            Self::Similarity(st) => features::similarity(st, inputs, batch_size),
            Self::Classification(b) => classification::run(b, inputs, options, batch_size),
            Self::Tokens(b) => token_classification::run(b, &texts(inputs)?, options, batch_size),
            Self::FillMask(b) => fill_mask::run(b, &texts(inputs)?, options, batch_size),
            Self::Qa(b) => question_answering::run(b, inputs, options),
            Self::ZeroShot(b) => zero_shot::run(b, &texts(inputs)?, options, batch_size),
            Self::Generation(g) => g.run(inputs, options),
            Self::Text2Text(t) => t.run(inputs, options),
        }
    }

    /// The bundle of tasks that run a transformers model directly.
    pub(crate) fn bundle(&self) -> Option<&Bundle> {
        match self {
            Self::TokenFeatures(b)
            | Self::Classification(b)
            | Self::Tokens(b)
            | Self::FillMask(b)
            | Self::Qa(b)
            | Self::ZeroShot(b) => Some(b),
            Self::SentenceFeatures(_)
            | Self::Similarity(_)
            | Self::Generation(_)
            | Self::Text2Text(_) => None,
        }
    }

    /// The causal LM of text-generation.
    pub(crate) fn generator(&self) -> Option<&text_generation::Generator> {
        match self {
            Self::Generation(g) => Some(g),
            _ => None,
        }
    }

    /// The model configuration.
    pub(crate) fn config(&self) -> Option<&embrace_models::AutoConfig> {
        match self {
            Self::SentenceFeatures(st) | Self::Similarity(st) => Some(st.model().config()),
            other => other.bundle().map(Bundle::config),
        }
    }

    /// transformers wraps a single text's classification in a list when `top_k` is not given
    /// (not a text pair's).
    pub(crate) fn shape_single(&self, input: &Input, value: Value, options: &Options) -> Value {
        match (self, input) {
            (Self::Classification(_), Input::Text(_)) if options.top_k == TopK::Default => {
                json!([value])
            }
            _ => value,
        }
    }
}

/// The texts of plain text inputs.
fn texts(inputs: &[Input]) -> Result<Vec<&str>> {
    inputs
        .iter()
        .map(|i| match i {
            Input::Text(t) => Ok(t.as_str()),
            other => Err(PipelineError::Input(format!(
                "this task takes plain texts, not {other:?}"
            ))),
        })
        .collect()
}

/// Indices of `lengths` grouped into batches of `batch_size`, longest first, so that padded
/// batches hold inputs of similar length.
pub(crate) fn length_batches(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// Runs `forward` over encodings in length-sorted batches and returns per-input results in
/// input order.
pub(crate) fn batched<T>(
    encodings: &[Encoding],
    batch_size: usize,
    mut forward: impl FnMut(&[&Encoding]) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let lengths: Vec<usize> = encodings.iter().map(Encoding::len).collect();
    let mut slots: Vec<Option<T>> = (0..encodings.len()).map(|_| None).collect();
    for batch in length_batches(&lengths, batch_size) {
        let group: Vec<&Encoding> = batch.iter().map(|&i| &encodings[i]).collect();
        for (i, out) in batch.iter().zip(forward(&group)?) {
            slots[*i] = Some(out);
        }
    }
    Ok(slots.into_iter().flatten().collect())
}

/// Softmax of a row of logits, in f64 for stability, returned as f32 like numpy on f32 input.
pub(crate) fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// A finite `f32` as a JSON number (`null` for NaN / infinity, which JSON cannot hold).
pub(crate) fn number(x: f32) -> Value {
    serde_json::Number::from_f64(x as f64).map_or(Value::Null, Value::Number)
}

/// transformers' `clean_up_tokenization` (applied by `decode` when the tokenizer config asks
/// for it and the model is not BPE).
pub(crate) fn clean_up_tokenization(text: &str) -> String {
    text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}
