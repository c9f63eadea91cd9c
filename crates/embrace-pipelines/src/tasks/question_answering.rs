//! question-answering: the best answer spans of a context, with long contexts split into
//! overlapping windows (`doc_stride`), as transformers 4's pipeline did (transformers 5 dropped
//! the task; its semantics are kept here unchanged).

use serde_json::{Value, json};

use crate::Input;
use crate::bundle::Bundle;
use crate::error::{PipelineError, Result};
use crate::options::{Options, TopK};

/// One candidate answer.
struct Answer {
    score: f64,
    start: usize,
    end: usize,
    text: String,
}

/// Softmax over the allowed positions (others get -10000 before it, as transformers does).
fn probabilities(logits: &[f32], allowed: &[bool]) -> Vec<f32> {
    let masked: Vec<f32> = logits
        .iter()
        .zip(allowed)
        .map(|(&x, &ok)| if ok { x } else { -10000.0 })
        .collect();
    let max = masked.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = masked.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// The char span of the words holding tokens `s` and `e` in the context (sequence 1); the
/// tokens' own offsets when they have no word.
fn char_span(window: &embrace_tokenizers::Encoding, s: usize, e: usize) -> (usize, usize) {
    let words = window.word_ids();
    let seqs = window.sequence_ids();
    let offsets = window.offsets();
    let word_chars = |w: u32| -> Option<(usize, usize)> {
        let tokens: Vec<usize> = (0..words.len())
            .filter(|&t| words[t] == Some(w) && seqs[t] == Some(1))
            .collect();
        Some((offsets[*tokens.first()?].0, offsets[*tokens.last()?].1))
    };
    match (words[s], words[e]) {
        (Some(ws), Some(we)) => match (word_chars(ws), word_chars(we)) {
            (Some(a), Some(b)) => (a.0, b.1),
            _ => (offsets[s].0, offsets[e].1),
        },
        _ => (offsets[s].0, offsets[e].1),
    }
}

fn answer_question(
    bundle: &Bundle,
    question: &str,
    context: &str,
    options: &Options,
) -> Result<Value> {
    if question.trim().is_empty() || context.trim().is_empty() {
        return Err(PipelineError::Input(
            "question and context must not be empty".into(),
        ));
    }
    let top_k = match options.top_k {
        TopK::K(k) => k.max(1),
        TopK::All => usize::MAX,
        TopK::Default => 1,
    };
    let max_seq_len = options
        .max_seq_len
        .unwrap_or_else(|| bundle.max_length.min(384));
    let doc_stride = options.doc_stride.unwrap_or((max_seq_len / 2).min(128));
    let windows = bundle.encode_windows(question, context, max_seq_len, doc_stride)?;
    let refs: Vec<&embrace_tokenizers::Encoding> = windows.iter().collect();
    let out = bundle.forward(&refs)?;
    let (Some(starts), Some(ends)) = (out.start_logits, out.end_logits) else {
        return Err(PipelineError::UnsuitableModel(
            "the model returned no start/end logits".into(),
        ));
    };
    let (starts, ends) = (starts.to_vec2::<f32>()?, ends.to_vec2::<f32>()?);
    let mut min_null_score = 1_000_000f64;
    let chars: Vec<char> = context.chars().collect();
    // Each window proposes more spans than asked when they are widened to words, since
    // several may widen to the same answer.
    let per_window = if options.align_to_words {
        top_k.saturating_mul(2).saturating_add(10)
    } else {
        top_k
    };
    let mut answers: Vec<Answer> = Vec::new();
    for ((window, start_logits), end_logits) in windows.iter().zip(&starts).zip(&ends) {
        let len = window.len();
        let seqs = window.sequence_ids();
        // Context tokens (and [CLS], which some models use for "no answer") may be answers.
        let allowed: Vec<bool> = (0..len)
            .map(|t| seqs[t] == Some(1) || Some(window.ids()[t]) == bundle.cls_id)
            .collect();
        let mut p_start = probabilities(&start_logits[..len], &allowed);
        let mut p_end = probabilities(&end_logits[..len], &allowed);
        if options.handle_impossible_answer {
            min_null_score = min_null_score.min((p_start[0] * p_end[0]) as f64);
        }
        p_start[0] = 0.0;
        p_end[0] = 0.0;
        // Every span start <= end < start + max_answer_len, best first.
        let mut spans: Vec<(f32, usize, usize)> = Vec::new();
        for (s, &ps) in p_start.iter().enumerate() {
            let last = len.min(s + options.max_answer_len);
            for (e, &pe) in p_end.iter().enumerate().take(last).skip(s) {
                spans.push((ps * pe, s, e));
            }
        }
        spans.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        spans.truncate(per_window);
        for (score, s, e) in spans {
            if !(allowed[s] && allowed[e]) {
                continue;
            }
            let (start, end) = if options.align_to_words {
                char_span(window, s, e)
            } else {
                (window.offsets()[s].0, window.offsets()[e].1)
            };
            let text: String = chars[start.min(chars.len())..end.min(chars.len())]
                .iter()
                .collect();
            // The same answer found twice (overlapping windows, or two spans widened to the same
            // words) counts once, with the scores added.
            match answers
                .iter_mut()
                .find(|a| a.text.to_lowercase() == text.to_lowercase())
            {
                Some(same) => same.score += score as f64,
                None => answers.push(Answer {
                    score: score as f64,
                    start,
                    end,
                    text,
                }),
            }
        }
    }
    let answer_json = |score: f64, start: usize, end: usize, text: &str| {
        let score = serde_json::Number::from_f64(score).map_or(Value::Null, Value::Number);
        json!({"score": score, "start": start, "end": end, "answer": text})
    };
    let mut list: Vec<(f64, Value)> = answers
        .iter()
        .map(|a| (a.score, answer_json(a.score, a.start, a.end, &a.text)))
        .collect();
    if options.handle_impossible_answer {
        list.push((min_null_score, answer_json(min_null_score, 0, 0, "")));
    }
    list.sort_by(|a, b| b.0.total_cmp(&a.0));
    list.truncate(top_k);
    Ok(if list.len() == 1 {
        list.pop().map(|(_, v)| v).unwrap_or(Value::Null)
    } else {
        Value::Array(list.into_iter().map(|(_, v)| v).collect())
    })
}

pub(super) fn run(bundle: &Bundle, inputs: &[Input], options: &Options) -> Result<Vec<Value>> {
    inputs
        .iter()
        .map(|input| match input {
            Input::Question { question, context } => answer_question(bundle, question, context, options),
            Input::Text(question) => match &options.context {
                Some(context) => answer_question(bundle, question, context, options),
                None => Err(PipelineError::Input(
                    "question answering needs a context (--context, or {\"question\", \"context\"} inputs)".into(),
                )),
            },
            other => Err(PipelineError::Input(format!("question answering takes questions, not {other:?}"))),
        })
        .collect()
}
