//! feature-extraction and sentence-similarity.

use embrace_models::sentence_transformers::SentenceTransformer;
use serde_json::Value;

use super::{batched, number};
use crate::Input;
use crate::bundle::Bundle;
use crate::error::{PipelineError, Result};
use crate::options::Options;

fn vector(values: &[f32]) -> Value {
    Value::Array(values.iter().map(|&x| number(x)).collect())
}

/// transformers' feature-extraction: `[1][tokens][hidden]` per input (the last hidden state,
/// special tokens included).
pub(super) fn token_features(
    bundle: &Bundle,
    texts: &[&str],
    options: &Options,
    batch_size: usize,
) -> Result<Vec<Value>> {
    let encodings = bundle.encode_texts(texts, bundle.limit(options.max_length))?;
    batched(&encodings, batch_size, |group| {
        let hidden = bundle.forward(group)?.last_hidden_state.to_vec3::<f32>()?;
        Ok(group
            .iter()
            .zip(hidden)
            .map(|(e, rows)| {
                let tokens: Vec<Value> = rows.iter().take(e.len()).map(|r| vector(r)).collect();
                Value::Array(vec![Value::Array(tokens)])
            })
            .collect())
    })
}

/// Sentence embeddings of a sentence-transformers model: one vector per input (pooled and, if
/// the model says so, normalised), as the Hub serves sentence-transformers models.
pub(super) fn sentence_features(
    st: &SentenceTransformer,
    texts: &[&str],
    batch_size: usize,
) -> Result<Vec<Value>> {
    let embeddings = st.encode(texts, batch_size)?.to_vec2::<f32>()?;
    Ok(embeddings.iter().map(|e| vector(e)).collect())
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-8);
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-8);
    dot / (na * nb)
}

/// sentence-similarity: the cosine similarity of the source sentence to each sentence.
pub(super) fn similarity(
    st: &SentenceTransformer,
    inputs: &[Input],
    batch_size: usize,
) -> Result<Vec<Value>> {
    inputs
        .iter()
        .map(|input| {
            let Input::Similarity {
                source_sentence,
                sentences,
            } = input
            else {
                return Err(PipelineError::Input(
                    "sentence-similarity takes {\"source_sentence\": …, \"sentences\": […]}".into(),
                ));
            };
            let mut all: Vec<&str> = vec![source_sentence];
            all.extend(sentences.iter().map(String::as_str));
            let embeddings = st.encode(&all, batch_size)?.to_vec2::<f32>()?;
            let (source, others) = embeddings.split_at(1);
            Ok(Value::Array(
                others
                    .iter()
                    .map(|e| number(cosine(&source[0], e)))
                    .collect(),
            ))
        })
        .collect()
}
