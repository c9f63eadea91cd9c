//! The evidence card: what a pipeline run did and whether its answer can be trusted.
//!
//! transformers returns an answer and nothing else. When a production pipeline misbehaves, the
//! questions are always the same: which model and revision answered, were inputs cut, were they
//! mostly unknown tokens, are the labels the model's own, where did the time go. [`Trace`]
//! answers them for every run: the request, per-input token statistics, stage timings, a
//! validation of the output against the task's schema, failure checks, and a suggested next
//! action.

use std::sync::Mutex;
use std::time::Duration;

use embrace_tokenizers::Encoding;
use serde_json::{Value, json};

use crate::PipelineTask;

/// Per-input facts recorded while encoding.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodingStat {
    /// Tokens after truncation, special tokens included.
    pub tokens: usize,
    /// Whether truncation cut the input.
    pub truncated: bool,
    /// Tokens mapped to the unknown token.
    pub unknown: usize,
    /// Non-special tokens.
    pub words: usize,
}

/// Counters filled by a bundle while it works; reset at the start of every traced run.
#[derive(Debug, Default)]
pub struct Probe {
    inner: Mutex<ProbeData>,
}

#[derive(Debug, Default, Clone)]
struct ProbeData {
    tokenize: Duration,
    forward: Duration,
    encodings: Vec<EncodingStat>,
}

impl Probe {
    pub(crate) fn record_encoding(
        &self,
        e: &Encoding,
        truncated: bool,
        unk: Option<u32>,
        took: Duration,
    ) {
        let special = e.special_tokens_mask();
        let stat = EncodingStat {
            tokens: e.len(),
            truncated,
            unknown: e.ids().iter().filter(|&&id| Some(id) == unk).count(),
            words: special.iter().filter(|&&s| s == 0).count(),
        };
        if let Ok(mut d) = self.inner.lock() {
            d.tokenize += took;
            d.encodings.push(stat);
        }
    }

    pub(crate) fn record_forward(&self, took: Duration) {
        if let Ok(mut d) = self.inner.lock() {
            d.forward += took;
        }
    }

    pub(crate) fn reset(&self) {
        if let Ok(mut d) = self.inner.lock() {
            *d = ProbeData::default();
        }
    }

    fn snapshot(&self) -> ProbeData {
        self.inner.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

/// An evidence card for one run (see the module documentation).
#[derive(Debug, Clone)]
pub struct Trace(Value);

impl Trace {
    /// The card as JSON.
    pub fn to_json(&self) -> &Value {
        &self.0
    }

    /// Whether the output passed validation and no check failed.
    pub fn ok(&self) -> bool {
        self.0["output_validation"]["status"] == "ok"
            && !self.0["checks"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["status"] == "fail"))
    }
}

/// What the card needs to know about the run.
pub(crate) struct RunFacts<'a> {
    pub task: PipelineTask,
    pub model: &'a str,
    pub dir: &'a std::path::Path,
    pub config: Option<&'a embrace_models::AutoConfig>,
    pub max_length: Option<usize>,
    pub batch_size: usize,
    pub options: Value,
    pub inputs: &'a [crate::Input],
    pub outputs: &'a [Value],
    pub total: Duration,
    pub probe: Option<&'a Probe>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The commit of a model resolved from the Hugging Face cache (`…/snapshots/<commit>`).
fn commit_of(dir: &std::path::Path) -> Option<String> {
    let parent = dir.parent()?;
    (parent.file_name()? == "snapshots")
        .then(|| dir.file_name().map(|c| c.to_string_lossy().into_owned()))?
}

fn input_text(input: &crate::Input) -> String {
    match input {
        crate::Input::Text(t) => t.clone(),
        crate::Input::Pair { text, text_pair } => format!("{text} {text_pair}"),
        crate::Input::Question { question, context } => format!("{question} {context}"),
        crate::Input::Similarity {
            source_sentence, ..
        } => source_sentence.clone(),
        crate::Input::Chat(messages) => messages
            .iter()
            .filter_map(|m| m.get("content").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Schema problems of one output.
fn validate(
    task: PipelineTask,
    config: Option<&embrace_models::AutoConfig>,
    input: &crate::Input,
    out: &Value,
    raw_scores: bool,
) -> Vec<String> {
    let mut problems: Vec<String> = Vec::new();
    let score_problem = |v: &Value, at: &str| match v.as_f64() {
        Some(s) if !s.is_finite() => Some(format!("{at}: score is not finite")),
        Some(s) if !raw_scores && !(0.0..=1.0 + 1e-6).contains(&s) => {
            Some(format!("{at}: score {s} is outside [0, 1]"))
        }
        Some(_) => None,
        None => Some(format!("{at}: score is missing")),
    };
    let known_label = |l: &str| {
        config.is_none_or(|c| c.label2id.contains_key(l) || c.id2label.values().any(|v| v == l))
    };
    let mut flat: Vec<&Value> = Vec::new();
    fn collect<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            Value::Object(_) => out.push(v),
            _ => {}
        }
    }
    collect(out, &mut flat);
    let chars = input_text(input).chars().count();
    for (i, item) in flat.iter().enumerate() {
        let at = format!("result {i}");
        match task {
            PipelineTask::TextClassification => {
                problems.extend(score_problem(&item["score"], &at));
                let label = item["label"].as_str().unwrap_or_default();
                if !known_label(label) {
                    problems.push(format!(
                        "{at}: label {label:?} is not in the model's id2label"
                    ));
                }
            }
            PipelineTask::TokenClassification => {
                problems.extend(score_problem(&item["score"], &at));
                let label = item
                    .get("entity")
                    .or_else(|| item.get("entity_group"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let in_config = config.is_none_or(|c| {
                    c.id2label
                        .values()
                        .any(|v| v == label || v.ends_with(&format!("-{label}")))
                });
                if !in_config {
                    problems.push(format!(
                        "{at}: label {label:?} is not in the model's id2label"
                    ));
                }
                let (s, e) = (
                    item["start"].as_u64().unwrap_or(0),
                    item["end"].as_u64().unwrap_or(0),
                );
                if s > e || e as usize > chars {
                    problems.push(format!(
                        "{at}: span {s}..{e} is outside the input ({chars} chars)"
                    ));
                }
            }
            PipelineTask::QuestionAnswering => {
                problems.extend(score_problem(&item["score"], &at));
                if let crate::Input::Question { context, .. } = input {
                    let (s, e) = (
                        item["start"].as_u64().unwrap_or(0) as usize,
                        item["end"].as_u64().unwrap_or(0) as usize,
                    );
                    let n = context.chars().count();
                    let text: String = context.chars().skip(s).take(e.saturating_sub(s)).collect();
                    if s > e || e > n {
                        problems.push(format!(
                            "{at}: span {s}..{e} is outside the context ({n} chars)"
                        ));
                    } else if item["answer"].as_str() != Some(text.as_str()) {
                        problems.push(format!(
                            "{at}: the answer is not the context's text at {s}..{e}"
                        ));
                    }
                }
            }
            PipelineTask::FillMask => problems.extend(score_problem(&item["score"], &at)),
            PipelineTask::ZeroShotClassification => {
                let scores: Vec<f64> = item["scores"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).collect())
                    .unwrap_or_default();
                if scores
                    .iter()
                    .any(|s| !s.is_finite() || *s < 0.0 || *s > 1.0 + 1e-6)
                {
                    problems.push(format!("{at}: scores outside [0, 1]"));
                }
            }
            PipelineTask::TextGeneration
            | PipelineTask::Summarization
            | PipelineTask::Translation
            | PipelineTask::Text2TextGeneration => {
                let key = match task {
                    PipelineTask::Summarization => "summary_text",
                    PipelineTask::Translation => "translation_text",
                    _ => "generated_text",
                };
                if item.get(key).is_none() {
                    problems.push(format!("{at}: {key} is missing"));
                }
            }
            PipelineTask::FeatureExtraction | PipelineTask::SentenceSimilarity => {}
        }
    }
    if matches!(
        task,
        PipelineTask::FeatureExtraction | PipelineTask::SentenceSimilarity
    ) {
        let mut numbers = Vec::new();
        fn nums(v: &Value, out: &mut Vec<f64>) {
            match v {
                Value::Array(a) => a.iter().for_each(|x| nums(x, out)),
                Value::Number(n) => out.push(n.as_f64().unwrap_or(f64::NAN)),
                Value::Null => out.push(f64::NAN),
                _ => {}
            }
        }
        nums(out, &mut numbers);
        if numbers.iter().any(|x| !x.is_finite()) {
            problems.push("the output has non-finite numbers".into());
        }
    }
    problems
}

pub(crate) fn build(f: RunFacts<'_>) -> Trace {
    let data = f.probe.map(Probe::snapshot).unwrap_or_default();
    let stats = &data.encodings;
    let truncated: Vec<usize> = stats
        .iter()
        .enumerate()
        .filter(|(_, s)| s.truncated)
        .map(|(i, _)| i)
        .collect();
    let empty: Vec<usize> = f
        .inputs
        .iter()
        .enumerate()
        .filter(|(_, i)| input_text(i).trim().is_empty())
        .map(|(i, _)| i)
        .collect();
    let unknown_heavy: Vec<usize> = stats
        .iter()
        .enumerate()
        .filter(|(_, s)| s.words > 0 && s.unknown * 10 > s.words)
        .map(|(i, _)| i)
        .collect();
    let tokens: Vec<usize> = stats.iter().map(|s| s.tokens).collect();
    let raw_scores = f.options["function_to_apply"] == "None";
    let problems: Vec<Value> = f
        .inputs
        .iter()
        .zip(f.outputs)
        .enumerate()
        .flat_map(|(i, (input, out))| {
            validate(f.task, f.config, input, out, raw_scores)
                .into_iter()
                .map(move |p| json!({"input": i, "problem": p}))
        })
        .collect();

    let mut checks = Vec::new();
    let mut next = Vec::new();
    let check = |name: &str, status: &str, detail: String| json!({"check": name, "status": status, "detail": detail});
    if truncated.is_empty() {
        checks.push(check("truncation", "ok", "no input was cut".into()));
    } else {
        checks.push(check(
            "truncation",
            "warn",
            format!(
                "{} input(s) exceeded {} tokens and were truncated: {:?}",
                truncated.len(),
                f.max_length.unwrap_or(0),
                truncated
            ),
        ));
        next.push(match f.task {
            PipelineTask::QuestionAnswering => "long contexts are split into windows; raise max_seq_len or doc_stride if answers are missed".to_owned(),
            _ => "split long inputs (e.g. by paragraph) or use a model with a longer context; truncated text was not seen by the model".to_owned(),
        });
    }
    if empty.is_empty() {
        checks.push(check("empty_input", "ok", "no empty input".into()));
    } else {
        checks.push(check(
            "empty_input",
            "warn",
            format!("empty or blank inputs: {empty:?}; their results only reflect special tokens"),
        ));
        next.push("drop empty inputs before calling the pipeline".into());
    }
    if !unknown_heavy.is_empty() {
        checks.push(check(
            "unknown_tokens",
            "warn",
            format!("more than 10% unknown tokens in inputs {unknown_heavy:?}: the tokenizer does not cover their script or symbols"),
        ));
        next.push(
            "use a model whose vocabulary covers the input language (e.g. a multilingual model)"
                .into(),
        );
    } else if !stats.is_empty() {
        checks.push(check(
            "unknown_tokens",
            "ok",
            "under 10% unknown tokens in every input".into(),
        ));
    }
    if let Some(c) = f.config
        && matches!(
            f.task,
            PipelineTask::TextClassification | PipelineTask::TokenClassification
        )
    {
        let generic = c.id2label.values().all(|l| l.starts_with("LABEL_"));
        if generic {
            checks.push(check("label_mapping", "fail", "config.json has no id2label names (only LABEL_i): the labels mean nothing to a reader".into()));
            next.push("add id2label / label2id to config.json".into());
        } else {
            checks.push(check(
                "label_mapping",
                "ok",
                format!("{} named labels", c.id2label.len()),
            ));
        }
    }
    if !problems.is_empty() {
        next.push("the output failed validation: report it with this card".into());
    }
    let tokenize = data.tokenize;
    let forward = data.forward;
    let post = f.total.saturating_sub(tokenize + forward);
    Trace(json!({
        "request": {
            "task": f.task.name(),
            "model": f.model,
            "resolved_path": f.dir,
            "commit": commit_of(f.dir),
            "model_type": f.config.map(|c| c.model_type.as_str()),
            "architectures": f.config.map(|c| c.architectures.clone()),
            "max_length": f.max_length,
            "batch_size": f.batch_size,
            "options": f.options,
        },
        "inputs": {
            "count": f.inputs.len(),
            "tokens": {
                "min": tokens.iter().min(),
                "max": tokens.iter().max(),
                "mean": if tokens.is_empty() { 0.0 } else { tokens.iter().sum::<usize>() as f64 / tokens.len() as f64 },
                "total": tokens.iter().sum::<usize>(),
            },
            "truncated": truncated,
            "empty": empty,
        },
        "timing_ms": {
            "tokenize": ms(tokenize),
            "forward": ms(forward),
            "postprocess": ms(post),
            "total": ms(f.total),
        },
        "output_validation": {
            "status": if problems.is_empty() { "ok" } else { "failed" },
            "problems": problems,
        },
        "checks": checks,
        "next_action": if next.is_empty() { "none: the run looks healthy".to_owned() } else { next.join("; ") },
    }))
}
