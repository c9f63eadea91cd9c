//! fill-mask: the most likely tokens for each mask token of the input.

use embrace_tokenizers::TruncationStrategy;
use serde_json::{Value, json};

use super::{batched, number, softmax};
use crate::bundle::Bundle;
use crate::error::{PipelineError, Result};
use crate::options::{Options, TopK};

/// The ids of `targets`, as transformers resolves them: a vocabulary entry as is, otherwise the
/// first token of its tokenization (with a warning); unknown ones are dropped. Sorted and
/// deduplicated.
fn target_ids(bundle: &Bundle, targets: &[String]) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for target in targets {
        if let Some(id) = bundle.tokenizer.token_to_id(target) {
            ids.push(id);
            continue;
        }
        let encoding = bundle.tokenizer.encode(target, None, false)?;
        match encoding.ids().first() {
            Some(&id) => {
                tracing::warn!(
                    target = %target,
                    replacement = bundle.tokenizer.id_to_token(id).unwrap_or_default(),
                    "the target token is not in the vocabulary; using its first token"
                );
                ids.push(id);
            }
            None => {
                tracing::warn!(target = %target, "the target token is not in the vocabulary; ignored")
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(PipelineError::Input(
            "none of the targets is in the vocabulary".into(),
        ));
    }
    Ok(ids)
}

pub(super) fn run(
    bundle: &Bundle,
    texts: &[&str],
    options: &Options,
    batch_size: usize,
) -> Result<Vec<Value>> {
    let mask = bundle
        .mask_token
        .clone()
        .ok_or_else(|| PipelineError::UnsuitableModel("the tokenizer has no mask token".into()))?;
    let mask_id = bundle
        .tokenizer
        .token_to_id(&mask)
        .ok_or_else(|| PipelineError::UnsuitableModel(format!("mask token {mask} has no id")))?;
    let targets = options
        .targets
        .as_deref()
        .map(|t| target_ids(bundle, t))
        .transpose()?;
    let mut top_k = match options.top_k {
        TopK::K(k) => k,
        TopK::All => usize::MAX,
        TopK::Default => 5,
    };
    if let Some(t) = &targets {
        top_k = top_k.min(t.len());
    }
    let encodings = texts
        .iter()
        .map(|t| {
            let e = bundle.encode(
                t,
                None,
                Some((
                    TruncationStrategy::LongestFirst,
                    bundle.limit(options.max_length),
                )),
            )?;
            if !e.ids().contains(&mask_id) {
                return Err(PipelineError::Input(format!(
                    "no mask_token ({mask}) found in the input {t:?}"
                )));
            }
            Ok(e)
        })
        .collect::<Result<Vec<_>>>()?;
    batched(&encodings, batch_size, |group| {
        // The vocabulary-wide head only runs on the mask tokens.
        let positions: Vec<(usize, usize)> = group
            .iter()
            .enumerate()
            .flat_map(|(r, e)| {
                e.ids()
                    .iter()
                    .enumerate()
                    .filter(|(_, id)| **id == mask_id)
                    .map(move |(c, _)| (r, c))
            })
            .collect();
        let mut rows = bundle.forward_positions(group, &positions)?.into_iter();
        group
            .iter()
            .map(|encoding| {
                let ids = encoding.ids();
                let masked: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] == mask_id).collect();
                let single = masked.len() == 1;
                let per_mask = masked
                    .iter()
                    .map(|&at| {
                        let logits = rows.next().unwrap_or_default();
                        let probs = softmax(&logits);
                        let mut candidates: Vec<(u32, f32)> = match &targets {
                            Some(t) => t.iter().map(|&id| (id, probs[id as usize])).collect(),
                            None => probs
                                .iter()
                                .enumerate()
                                .map(|(id, &p)| (id as u32, p))
                                .collect(),
                        };
                        let by_score = |a: &(u32, f32), b: &(u32, f32)| {
                            b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                        };
                        let k = top_k.min(candidates.len());
                        if k < candidates.len() {
                            candidates.select_nth_unstable_by(k, by_score);
                            candidates.truncate(k);
                        }
                        candidates.sort_by(by_score);
                        let row: Vec<Value> = candidates
                            .into_iter()
                            .map(|(id, p)| {
                                let mut filled = ids.to_vec();
                                filled[at] = id;
                                filled.retain(|&t| t != bundle.pad_id);
                                json!({
                                    "score": number(p),
                                    "token": id,
                                    "token_str": bundle.decode(&[id], false),
                                    "sequence": bundle.decode(&filled, single),
                                })
                            })
                            .collect();
                        Value::Array(row)
                    })
                    .collect::<Vec<_>>();
                Ok(if single {
                    per_mask.into_iter().next().unwrap_or(Value::Null)
                } else {
                    Value::Array(per_mask)
                })
            })
            .collect()
    })
}
