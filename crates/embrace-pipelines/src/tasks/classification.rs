//! text-classification / sentiment-analysis.

use embrace_models::ProblemType;
use embrace_tokenizers::TruncationStrategy;
use serde_json::{Value, json};

use super::{batched, number, softmax};
use crate::Input;
use crate::bundle::Bundle;
use crate::error::{PipelineError, Result};
use crate::options::{Options, ScoreFunction, TopK};

/// The score function transformers picks when none is given.
fn default_function(bundle: &Bundle) -> ScoreFunction {
    let config = bundle.config();
    match config.problem_type {
        Some(ProblemType::Regression) => ScoreFunction::None,
        Some(ProblemType::MultiLabel) => ScoreFunction::Sigmoid,
        _ if config.num_labels == 1 => ScoreFunction::Sigmoid,
        _ => ScoreFunction::Softmax,
    }
}

/// Scores of one row of logits.
pub(super) fn scores(logits: &[f32], function: ScoreFunction) -> Vec<f32> {
    match function {
        ScoreFunction::Softmax => softmax(logits),
        ScoreFunction::Sigmoid => logits.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect(),
        ScoreFunction::None => logits.to_vec(),
    }
}

pub(super) fn run(
    bundle: &Bundle,
    inputs: &[Input],
    options: &Options,
    batch_size: usize,
) -> Result<Vec<Value>> {
    let encodings = inputs
        .iter()
        .map(|input| match input {
            Input::Text(t) => bundle.encode(
                t,
                None,
                Some((
                    TruncationStrategy::LongestFirst,
                    bundle.limit(options.max_length),
                )),
            ),
            Input::Pair { text, text_pair } => bundle.encode(
                text,
                Some(text_pair),
                Some((
                    TruncationStrategy::LongestFirst,
                    bundle.limit(options.max_length),
                )),
            ),
            other => Err(PipelineError::Input(format!(
                "text classification takes texts or text pairs, not {other:?}"
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    let function = options
        .function_to_apply
        .unwrap_or_else(|| default_function(bundle));
    let config = bundle.config();
    let rows = batched(&encodings, batch_size, |group| {
        let logits = bundle.logits(group)?;
        Ok(logits.to_vec2::<f32>()?)
    })?;
    Ok(rows
        .into_iter()
        .map(|logits| {
            let scores = scores(&logits, function);
            let entry = |i: usize| json!({"label": config.label(i), "score": number(scores[i])});
            match options.top_k {
                TopK::Default => {
                    let best = (0..scores.len())
                        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)))
                        .unwrap_or(0);
                    entry(best)
                }
                top_k => {
                    let mut order: Vec<usize> = (0..scores.len()).collect();
                    // A stable sort, descending, as Python's list.sort(reverse=True).
                    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
                    if let TopK::K(k) = top_k {
                        order.truncate(k);
                    }
                    Value::Array(order.into_iter().map(entry).collect())
                }
            }
        })
        .collect())
}
