//! Token classification (NER): labels on the first sub-token of every word (-100 on the
//! others, as transformers' examples align them), evaluated with seqeval's entity-level F1.
//!
//! [`train_token_classification`] trains a classifier over the frozen encoder's token states
//! (fast); [`crate::finetune::fine_tune_token_classification`] fine-tunes the encoder too (LoRA
//! or every weight). Both write the same folder layout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use embrace_models::{AutoConfig, Batch, Checkpoint, Model, ModelType, Task, resolve_model_dir};
use embrace_tokenizers::{Encoding, Tokenizer};
use serde_json::{Value, json};

use crate::args::TrainingArguments;
use crate::autograd::TrainHead;
use crate::error::{Result, TrainError};
use crate::output::{
    copy_tokenizer_files, io_err, write_config, write_file, write_json, write_weights,
};
use crate::rng::Rng;

/// A sentence as words with one tag index per word.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedSentence {
    /// The words.
    pub words: Vec<String>,
    /// Tag indices (into the job's labels), one per word.
    pub tags: Vec<usize>,
}

/// A sentence of CoNLL data: (word, tag) pairs.
pub type ConllSentence = Vec<(String, String)>;

/// Reads CoNLL-style data: one `word<TAB>tag` (or space-separated) per line, a blank line
/// between sentences. Returns the sentences and the labels (`O` first, then sorted).
pub fn read_conll(path: &Path) -> Result<(Vec<ConllSentence>, Vec<String>)> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut sentences = Vec::new();
    let mut current = Vec::new();
    let mut labels = std::collections::BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            if !current.is_empty() {
                sentences.push(std::mem::take(&mut current));
            }
            continue;
        }
        let (word, tag) = line
            .rsplit_once('\t')
            .or_else(|| line.rsplit_once(' '))
            .ok_or_else(|| {
                TrainError::Config(format!("{}: line {} has no tag", path.display(), n + 1))
            })?;
        labels.insert(tag.to_owned());
        current.push((word.to_owned(), tag.to_owned()));
    }
    if !current.is_empty() {
        sentences.push(current);
    }
    let mut labels: Vec<String> = labels.into_iter().filter(|l| l != "O").collect();
    labels.insert(0, "O".to_owned());
    Ok((sentences, labels))
}

/// A token-classification training job.
#[derive(Debug, Clone)]
pub struct TokenClassificationJob {
    /// The base model: a folder or a repo id in the Hugging Face cache.
    pub base_model: String,
    /// The tag names.
    pub labels: Vec<String>,
    /// Training sentences.
    pub train: Vec<TaggedSentence>,
    /// Sentences evaluated after every epoch (the best epoch is kept).
    pub validation: Vec<TaggedSentence>,
    /// Sentences evaluated once at the end.
    pub test: Vec<TaggedSentence>,
    /// Hyper-parameters.
    pub args: TrainingArguments,
    /// Where the model is written.
    pub output_dir: PathBuf,
    /// Write only the classifier and a pointer to the base model.
    pub head_only: bool,
    /// The dataset's name for the model card.
    pub dataset_name: Option<String>,
}

/// Entity-level precision, recall and F1 as seqeval computes them (IOB2 chunks; an `I-` after
/// another type or `O` starts a new chunk).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EntityScores {
    /// Correct predicted entities / predicted entities.
    pub precision: f64,
    /// Correct predicted entities / true entities.
    pub recall: f64,
    /// Harmonic mean.
    pub f1: f64,
    /// Word-level accuracy.
    pub accuracy: f64,
}

fn chunks(tags: &[&str]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut start: Option<(usize, String)> = None;
    for (i, tag) in tags.iter().chain(std::iter::once(&"O")).enumerate() {
        let (bi, kind) = match tag.split_once('-') {
            Some((b, k)) => (b, k),
            None => ("O", ""),
        };
        let continues = bi == "I" && start.as_ref().is_some_and(|(_, k)| k == kind);
        if !continues {
            if let Some((s, k)) = start.take() {
                out.push((s, i, k));
            }
            if bi == "B" || bi == "I" {
                start = Some((i, kind.to_owned()));
            }
        }
    }
    out
}

/// seqeval's micro-averaged entity scores over sentences of (reference, prediction) tags.
pub fn entity_scores(references: &[Vec<String>], predictions: &[Vec<String>]) -> EntityScores {
    let (mut tp, mut n_pred, mut n_true, mut words, mut right) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    for (r, p) in references.iter().zip(predictions) {
        let rs: Vec<&str> = r.iter().map(String::as_str).collect();
        let ps: Vec<&str> = p.iter().map(String::as_str).collect();
        let (rc, pc) = (chunks(&rs), chunks(&ps));
        tp += pc.iter().filter(|c| rc.contains(c)).count();
        n_pred += pc.len();
        n_true += rc.len();
        words += rs.len();
        right += rs.iter().zip(&ps).filter(|(a, b)| a == b).count();
    }
    let div = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (precision, recall) = (div(tp, n_pred), div(tp, n_true));
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    EntityScores {
        precision,
        recall,
        f1,
        accuracy: div(right, words),
    }
}

/// Encodes a sentence's words joined by spaces (with special tokens and the tokenizer's
/// truncation) and finds the first token of every word: `None` for a word cut off by
/// truncation or one that produced no token.
pub(crate) fn align_words(
    tokenizer: &Tokenizer,
    words: &[String],
) -> Result<(Encoding, Vec<Option<usize>>)> {
    let mut text = String::new();
    let mut word_spans = Vec::with_capacity(words.len());
    let mut chars = 0;
    for w in words {
        if !text.is_empty() {
            text.push(' ');
            chars += 1;
        }
        let start = chars;
        text.push_str(w);
        chars += w.chars().count();
        word_spans.push((start, chars));
    }
    let encoding = tokenizer.encode_char_offsets(&text, None, true)?;
    let mut first = vec![None; words.len()];
    let mut w = 0;
    for (t, &(start, end)) in encoding.offsets().iter().enumerate() {
        if encoding.special_tokens_mask()[t] != 0 || end <= start {
            continue;
        }
        // Tokens come in text order: move to the word that contains this token's start.
        while w < word_spans.len() && word_spans[w].1 <= start {
            w += 1;
        }
        if w < word_spans.len() && start >= word_spans[w].0 && first[w].is_none() {
            first[w] = Some(t);
        }
    }
    Ok((encoding, first))
}

/// The frozen encoder's state of the first token of every word: `[words, hidden]` per
/// sentence (zeros for words cut off by truncation, whose prediction is then `O`).
fn word_features(
    model: &Model,
    tokenizer: &Tokenizer,
    sentences: &[TaggedSentence],
    pad: u32,
) -> Result<Vec<Vec<f32>>> {
    let h = model.config().encoder.hidden_size;
    let mut out = Vec::with_capacity(sentences.len());
    for chunk in sentences.chunks(32) {
        let mut encodings = Vec::new();
        let mut firsts = Vec::new();
        for s in chunk {
            let (encoding, first) = align_words(tokenizer, &s.words)?;
            encodings.push(encoding);
            firsts.push(first);
        }
        let batch = Batch::from_encodings(&encodings, pad)?;
        let hidden = model.forward(&batch)?.last_hidden_state.to_vec3::<f32>()?;
        for (first, rows) in firsts.iter().zip(hidden) {
            let mut feats = vec![0.0f32; first.len() * h];
            for (w, t) in first.iter().enumerate() {
                if let Some(t) = *t {
                    feats[w * h..(w + 1) * h].copy_from_slice(&rows[t]);
                }
            }
            out.push(feats);
        }
    }
    Ok(out)
}

/// What a token-classification run produced.
#[derive(Debug, Clone)]
pub struct TokenReport {
    /// Entity scores on the validation set for the kept epoch.
    pub validation: EntityScores,
    /// Entity scores on the test set.
    pub test: EntityScores,
    /// The log history.
    pub log_history: Vec<Value>,
}

fn predict(
    w: &Var,
    b: &Var,
    feats: &[Vec<f32>],
    h: usize,
    labels: &[String],
) -> Result<Vec<Vec<String>>> {
    feats
        .iter()
        .map(|f| {
            let n = f.len() / h;
            if n == 0 {
                return Ok(Vec::new());
            }
            let x = Tensor::from_slice(f, (n, h), &Device::Cpu)?;
            let ids = x
                .matmul(&w.as_tensor().t()?)?
                .broadcast_add(b.as_tensor())?
                .argmax(1)?
                .to_vec1::<u32>()?;
            Ok(ids
                .into_iter()
                .map(|i| labels[i as usize].clone())
                .collect())
        })
        .collect()
}

/// Trains a token classifier on a frozen BERT-family encoder and writes the model.
pub fn train_token_classification(job: &TokenClassificationJob) -> Result<TokenReport> {
    let args = &job.args;
    let base_dir = resolve_model_dir(&job.base_model)?;
    let config = AutoConfig::from_file(&base_dir.join("config.json"))?;
    if config.model_type != ModelType::Bert {
        return Err(TrainError::Config(
            "token classification training supports model_type bert".into(),
        ));
    }
    let checkpoint = Checkpoint::from_dir(&base_dir)?;
    let model = Model::load(config.clone(), &checkpoint, Task::Base)?;
    let tokenizer = crate::classification::training_tokenizer(&base_dir, args.max_length)?;
    let (h, k, pad) = (
        config.encoder.hidden_size,
        job.labels.len(),
        config.encoder.pad_token_id,
    );
    let started = Instant::now();
    let train_f = word_features(&model, &tokenizer, &job.train, pad)?;
    let val_f = word_features(&model, &tokenizer, &job.validation, pad)?;
    let test_f = word_features(&model, &tokenizer, &job.test, pad)?;
    tracing::info!(
        secs = started.elapsed().as_secs_f64(),
        "encoded with the frozen encoder"
    );
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (f, s) in train_f.iter().zip(&job.train) {
        for (w, &tag) in s.tags.iter().enumerate() {
            let row = &f[w * h..(w + 1) * h];
            if row.iter().any(|&x| x != 0.0) {
                rows.push(row.to_vec());
                targets.push(tag as u32);
            }
        }
    }
    let mut rng = Rng::new(args.seed);
    let dev = Device::Cpu;
    let std = config
        .raw
        .get("initializer_range")
        .and_then(Value::as_f64)
        .unwrap_or(0.02);
    let init: Vec<f32> = (0..k * h).map(|_| (rng.normal() * std) as f32).collect();
    let w = Var::from_tensor(&Tensor::from_vec(init, (k, h), &dev)?)?;
    let b = Var::from_tensor(&Tensor::zeros(k, DType::F32, &dev)?)?;
    let params = |wd| ParamsAdamW {
        lr: args.learning_rate,
        beta1: args.adam_beta1,
        beta2: args.adam_beta2,
        eps: args.adam_epsilon,
        weight_decay: wd,
    };
    let mut opt_w = AdamW::new(vec![w.clone()], params(args.weight_decay))?;
    let mut opt_b = AdamW::new(vec![b.clone()], params(0.0))?;
    let bs = args.per_device_train_batch_size;
    let steps_per_epoch = rows.len().div_ceil(bs);
    let total = steps_per_epoch * args.num_train_epochs;
    let dropout = args.dropout.unwrap_or(0.1);
    let refs = |set: &[TaggedSentence]| -> Vec<Vec<String>> {
        set.iter()
            .map(|s| s.tags.iter().map(|&t| job.labels[t].clone()).collect())
            .collect()
    };
    let (val_refs, test_refs) = (refs(&job.validation), refs(&job.test));
    let mut log_history = Vec::new();
    let mut best: Option<(f64, Tensor, Tensor, EntityScores)> = None;
    let mut step = 0;
    let bar = crate::progress::training_bar(total, 0);
    for epoch in 0..args.num_train_epochs {
        let mut loss_sum = 0.0;
        let order = rng.permutation(rows.len());
        for chunk in order.chunks(bs) {
            let keep = 1.0 - dropout;
            let xs: Vec<f32> = chunk
                .iter()
                .flat_map(|&i| rows[i].iter().copied())
                .collect::<Vec<_>>()
                .into_iter()
                .map(|v| {
                    if rng.uniform() < keep {
                        v / keep as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            let x = Tensor::from_vec(xs, (chunk.len(), h), &dev)?;
            let y = Tensor::from_vec(
                chunk.iter().map(|&i| targets[i]).collect::<Vec<_>>(),
                chunk.len(),
                &dev,
            )?;
            let logits = x
                .matmul(&w.as_tensor().t()?)?
                .broadcast_add(b.as_tensor())?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            let grads = loss.backward()?;
            let lr = args.learning_rate_at(step, total);
            opt_w.set_learning_rate(lr);
            opt_b.set_learning_rate(lr);
            opt_w.step(&grads)?;
            opt_b.step(&grads)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            step += 1;
            let epoch_steps = step - epoch * steps_per_epoch;
            crate::progress::step(&bar, loss_sum / epoch_steps as f64, lr);
        }
        let scores = entity_scores(&val_refs, &predict(&w, &b, &val_f, h, &job.labels)?);
        log_history.push(json!({"loss": loss_sum / steps_per_epoch.max(1) as f64, "eval_f1": scores.f1, "eval_precision": scores.precision, "eval_recall": scores.recall, "epoch": epoch + 1, "step": step}));
        tracing::info!(epoch = epoch + 1, f1 = scores.f1, "validation");
        if best.as_ref().is_none_or(|(f, ..)| scores.f1 > *f) {
            best = Some((
                scores.f1,
                w.as_tensor().copy()?,
                b.as_tensor().copy()?,
                scores,
            ));
        }
    }
    bar.finish_and_clear();
    let Some((_, bw, bb, validation)) = best else {
        return Err(TrainError::Config("no epoch was trained".into()));
    };
    w.set(&bw)?;
    b.set(&bb)?;
    let test = entity_scores(&test_refs, &predict(&w, &b, &test_f, h, &job.labels)?);
    let report = TokenReport {
        validation,
        test,
        log_history,
    };
    let out = &job.output_dir;
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    write_config(
        out,
        &config,
        TrainHead::Token.architecture(),
        &job.labels,
        None,
    )?;
    let trained = HashMap::from([
        ("classifier.weight".to_owned(), w.as_tensor().clone()),
        ("classifier.bias".to_owned(), b.as_tensor().clone()),
    ]);
    write_weights(
        out,
        &job.base_model,
        &checkpoint,
        trained,
        &["classifier"],
        job.head_only,
    )?;
    let method = "the encoder is frozen and a token classifier is trained on the first sub-token of every word";
    write_token_files(job, &base_dir, &report, "transformers", method)?;
    Ok(report)
}

/// The files of a trained token classifier besides `config.json` and its weights: the base's
/// tokenizer, `eval_results.json`, `trainer_state.json`, `training_args.json` and the model
/// card (`library` is its `library_name`; `method` completes "trained ... on <dataset>: ").
pub(crate) fn write_token_files(
    job: &TokenClassificationJob,
    base_dir: &Path,
    report: &TokenReport,
    library: &str,
    method: &str,
) -> Result<()> {
    let out = &job.output_dir;
    copy_tokenizer_files(base_dir, out)?;
    write_json(
        &out.join("eval_results.json"),
        &json!({"validation": report.validation, "test": report.test}),
    )?;
    write_json(
        &out.join("trainer_state.json"),
        &json!({"log_history": report.log_history}),
    )?;
    write_json(
        &out.join("training_args.json"),
        &serde_json::to_value(&job.args).unwrap_or_default(),
    )?;
    let dataset = job.dataset_name.clone().unwrap_or_else(|| "custom".into());
    let card = format!(
        "---\nbase_model: {base}\ndatasets:\n- {dataset}\nlibrary_name: {library}\npipeline_tag: token-classification\ntags:\n- embrace\n- ner\nmodel-index:\n- name: {name}\n  results:\n  - task:\n      type: token-classification\n    dataset:\n      name: {dataset}\n      type: {dataset}\n    metrics:\n      - type: f1\n        value: {vf:.4}\n        name: validation entity F1\n      - type: f1\n        value: {tf:.4}\n        name: test entity F1\n---\n\n# {name}\n\nA named-entity tagger ({n} tags) trained with Embrace (`embrace train token-classification`) from `{base}` on {dataset}: {method} ({epochs} epochs, batch {bs}, learning rate {lr}, seed {seed}, max length {maxlen}). Entity-level scores (seqeval, micro):\n\n| split | precision | recall | F1 | word accuracy |\n|---|---|---|---|---|\n| validation | {vp:.4} | {vr:.4} | {vf:.4} | {va:.4} |\n| test | {tp:.4} | {tr:.4} | {tf:.4} | {ta:.4} |\n",
        base = job.base_model,
        name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        n = job.labels.len(),
        epochs = job.args.num_train_epochs,
        bs = job.args.per_device_train_batch_size,
        lr = job.args.learning_rate,
        seed = job.args.seed,
        maxlen = job.args.max_length,
        vp = report.validation.precision,
        vr = report.validation.recall,
        vf = report.validation.f1,
        va = report.validation.accuracy,
        tp = report.test.precision,
        tr = report.test.recall,
        tf = report.test.f1,
        ta = report.test.accuracy,
    );
    write_file(&out.join("README.md"), card.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_scores_follow_seqeval() {
        let s = |v: &[&str]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        // seqeval: precision 0.5, recall 0.5 for this classic example.
        let y_true = vec![
            s(&["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"]),
            s(&["B-PER", "I-PER", "O"]),
        ];
        let y_pred = vec![
            s(&["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"]),
            s(&["B-PER", "I-PER", "O"]),
        ];
        let r = entity_scores(&y_true, &y_pred);
        assert!((r.precision - 0.5).abs() < 1e-12 && (r.recall - 0.5).abs() < 1e-12);
        // An I- tag after O starts an entity, as in seqeval's default mode.
        assert_eq!(
            chunks(&["O", "I-LOC", "I-LOC", "B-LOC"]),
            vec![(1, 3, "LOC".into()), (3, 4, "LOC".into())]
        );
    }
}
