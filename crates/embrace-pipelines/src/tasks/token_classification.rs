//! token-classification / ner: a label per token, grouped into words and entities with
//! transformers' aggregation strategies.

use embrace_tokenizers::Encoding;
use serde_json::{Value, json};

use super::{batched, number, softmax};
use crate::bundle::Bundle;
use crate::error::Result;
use crate::options::{Aggregation, Options};

/// A non-special token with its label scores.
struct PreEntity {
    word: String,
    scores: Vec<f32>,
    start: usize,
    end: usize,
    index: usize,
    is_subword: bool,
}

/// A labelled token or word.
struct Entity {
    label: String,
    score: f32,
    /// The token index (only for per-token output).
    index: Option<usize>,
    word: String,
    start: usize,
    end: usize,
}

fn argmax(x: &[f32]) -> usize {
    // numpy's argmax: the first of equal maxima.
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best
}

fn pre_entities(
    bundle: &Bundle,
    sentence: &[char],
    encoding: &Encoding,
    logits: &[Vec<f32>],
) -> Vec<PreEntity> {
    let word_aware = bundle.tokenizer.continuing_subword_prefix().is_some();
    let mut out = Vec::new();
    for (idx, (&id, row)) in encoding.ids().iter().zip(logits).enumerate() {
        if encoding.special_tokens_mask()[idx] != 0 {
            continue;
        }
        let (start, end) = encoding.offsets()[idx];
        let word_ref: String = sentence[start.min(sentence.len())..end.min(sentence.len())]
            .iter()
            .collect();
        let mut word = bundle
            .tokenizer
            .id_to_token(id)
            .unwrap_or_default()
            .to_owned();
        let mut is_subword = if word_aware {
            word.chars().count() != word_ref.chars().count()
        } else {
            // transformers' fallback heuristic for tokenizers without word boundaries.
            start > 0 && !sentence[start - 1..(start + 1).min(sentence.len())].contains(&' ')
        };
        if Some(id) == bundle.unk_id {
            word = word_ref;
            is_subword = false;
        }
        out.push(PreEntity {
            word,
            scores: softmax(row),
            start,
            end,
            index: idx,
            is_subword,
        });
    }
    out
}

/// One word from its tokens, by the FIRST, MAX or AVERAGE rule.
fn aggregate_word(bundle: &Bundle, tokens: &[&PreEntity], strategy: Aggregation) -> Entity {
    let words: Vec<String> = tokens.iter().map(|t| t.word.clone()).collect();
    let (label, score) = match strategy {
        Aggregation::Max => {
            // Python's max(): the first token with the highest max score.
            let mut best = tokens[0];
            for t in &tokens[1..] {
                let m = |e: &PreEntity| e.scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                if m(t) > m(best) {
                    best = t;
                }
            }
            let i = argmax(&best.scores);
            (i, best.scores[i])
        }
        Aggregation::Average => {
            let n = tokens[0].scores.len();
            let mean: Vec<f32> = (0..n)
                .map(|l| tokens.iter().map(|t| t.scores[l]).sum::<f32>() / tokens.len() as f32)
                .collect();
            let i = argmax(&mean);
            (i, mean[i])
        }
        _ => {
            let i = argmax(&tokens[0].scores);
            (i, tokens[0].scores[i])
        }
    };
    Entity {
        label: bundle.config().label(label),
        score,
        index: None,
        word: bundle.tokenizer.decode_tokens(&words),
        start: tokens[0].start,
        end: tokens[tokens.len() - 1].end,
    }
}

/// `B-PER` -> ("B", "PER"); a label without a B-/I- prefix counts as I-.
fn tag(label: &str) -> (bool, &str) {
    if let Some(t) = label.strip_prefix("B-") {
        (true, t)
    } else if let Some(t) = label.strip_prefix("I-") {
        (false, t)
    } else {
        (false, label)
    }
}

/// Merges adjacent entities of the same type (a B- tag starts a new one).
fn group_entities(bundle: &Bundle, entities: Vec<Entity>) -> Vec<Entity> {
    let mut groups: Vec<Vec<Entity>> = Vec::new();
    for entity in entities {
        let joins = groups.last().and_then(|g| g.last()).is_some_and(|last| {
            let (b, t) = tag(&entity.label);
            let (_, last_t) = tag(&last.label);
            t == last_t && !b
        });
        match groups.last_mut() {
            Some(group) if joins => group.push(entity),
            _ => groups.push(vec![entity]),
        }
    }
    groups
        .into_iter()
        .map(|group| {
            let first = &group[0];
            let label = first
                .label
                .split_once('-')
                .map_or(first.label.as_str(), |(_, t)| t)
                .to_owned();
            let words: Vec<String> = group.iter().map(|e| e.word.clone()).collect();
            Entity {
                label,
                score: group.iter().map(|e| e.score).sum::<f32>() / group.len() as f32,
                index: None,
                word: bundle.tokenizer.decode_tokens(&words),
                start: first.start,
                end: group[group.len() - 1].end,
            }
        })
        .collect()
}

fn entities(bundle: &Bundle, pre: Vec<PreEntity>, strategy: Aggregation) -> Vec<Entity> {
    let per_token = |p: &PreEntity| {
        let i = argmax(&p.scores);
        Entity {
            label: bundle.config().label(i),
            score: p.scores[i],
            index: Some(p.index),
            word: p.word.clone(),
            start: p.start,
            end: p.end,
        }
    };
    match strategy {
        Aggregation::None => pre.iter().map(per_token).collect(),
        Aggregation::Simple => group_entities(bundle, pre.iter().map(per_token).collect()),
        _ => {
            let mut words = Vec::new();
            let mut group: Vec<&PreEntity> = Vec::new();
            for p in &pre {
                if !group.is_empty() && !p.is_subword {
                    words.push(aggregate_word(bundle, &group, strategy));
                    group.clear();
                }
                group.push(p);
            }
            if !group.is_empty() {
                words.push(aggregate_word(bundle, &group, strategy));
            }
            group_entities(bundle, words)
        }
    }
}

pub(super) fn run(
    bundle: &Bundle,
    texts: &[&str],
    options: &Options,
    batch_size: usize,
) -> Result<Vec<Value>> {
    let strategy = options.aggregation_strategy;
    let ignore: Vec<String> = options
        .ignore_labels
        .clone()
        .unwrap_or_else(|| vec!["O".to_owned()]);
    let encodings = bundle.encode_texts(texts, bundle.limit(options.max_length))?;
    let logits = batched(&encodings, batch_size, |group| {
        let out = bundle.logits(group)?;
        Ok(out.to_vec3::<f32>()?)
    })?;
    Ok(texts
        .iter()
        .zip(&encodings)
        .zip(logits)
        .map(|((text, encoding), rows)| {
            let sentence: Vec<char> = text.chars().collect();
            let pre = pre_entities(bundle, &sentence, encoding, &rows[..encoding.len()]);
            let list: Vec<Value> = entities(bundle, pre, strategy)
                .into_iter()
                .filter(|e| !ignore.contains(&e.label))
                .map(|e| match e.index {
                    Some(index) => json!({
                        "entity": e.label, "score": number(e.score), "index": index,
                        "word": e.word, "start": e.start, "end": e.end,
                    }),
                    None => json!({
                        "entity_group": e.label, "score": number(e.score),
                        "word": e.word, "start": e.start, "end": e.end,
                    }),
                })
                .collect();
            Value::Array(list)
        })
        .collect())
}
