//! Token classification (NER): a `BertForTokenClassification` fine-tuned on tagged words, each
//! word's tag on its first sub-token and `-100` on the others and on special tokens (as
//! transformers' `run_ner` aligns them); validation is scored by seqeval's entity F1.

use std::time::Instant;

use candle_core::{D, Device, Tensor};
use embrace_models::{AutoConfig, resolve_model_dir};
use serde_json::json;

use super::{
    Adaptation, Evaluation, FineTuneTask, eval_batches, load_trainable, padded_batch, train_loop,
    write_trained_weights,
};
use crate::autograd::{IGNORED_LABEL, TrainBatch, TrainHead, TrainableBert};
use crate::classification::training_tokenizer;
use crate::error::{Result, TrainError};
use crate::output::{io_err, write_config};
use crate::token_classification::{
    EntityScores, TaggedSentence, TokenClassificationJob, TokenReport, align_words, entity_scores,
    write_token_files,
};

/// Tokenized sentences with token labels.
struct Encoded {
    /// Token ids per sentence (special tokens included).
    ids: Vec<Vec<u32>>,
    /// Per token: the word's tag on its first sub-token, [`IGNORED_LABEL`] elsewhere.
    labels: Vec<Vec<i64>>,
    /// Per word: its first token, `None` when truncation cut it off or it has no token.
    first_token: Vec<Vec<Option<usize>>>,
    /// The reference tags, by name.
    references: Vec<Vec<String>>,
}

fn encode(
    tokenizer: &embrace_tokenizers::Tokenizer,
    sentences: &[TaggedSentence],
    labels: &[String],
) -> Result<Encoded> {
    let mut data = Encoded {
        ids: Vec::with_capacity(sentences.len()),
        labels: Vec::with_capacity(sentences.len()),
        first_token: Vec::with_capacity(sentences.len()),
        references: Vec::with_capacity(sentences.len()),
    };
    for (n, s) in sentences.iter().enumerate() {
        if s.tags.len() != s.words.len() {
            return Err(TrainError::Config(format!(
                "sentence {n} has {} words and {} tags",
                s.words.len(),
                s.tags.len()
            )));
        }
        if let Some(&bad) = s.tags.iter().find(|&&t| t >= labels.len()) {
            return Err(TrainError::Config(format!(
                "sentence {n}: tag index {bad} is outside the {} labels",
                labels.len()
            )));
        }
        let (encoding, first) = align_words(tokenizer, &s.words)?;
        let mut token_labels = vec![IGNORED_LABEL; encoding.len()];
        for (w, t) in first.iter().enumerate() {
            if let Some(t) = *t {
                token_labels[t] = s.tags[w] as i64;
            }
        }
        data.ids.push(encoding.ids().to_vec());
        data.labels.push(token_labels);
        data.first_token.push(first);
        data.references
            .push(s.tags.iter().map(|&t| labels[t].clone()).collect());
    }
    Ok(data)
}

/// A right-padded batch of the given sentences and its `i64 [batch, seq]` token labels
/// ([`IGNORED_LABEL`] on padding).
fn batch_of(data: &Encoded, rows: &[usize], pad: u32) -> Result<(TrainBatch, Tensor)> {
    let seqs: Vec<&[u32]> = rows.iter().map(|&i| data.ids[i].as_slice()).collect();
    let (batch, width) = padded_batch(&seqs, pad)?;
    let mut labels = Vec::with_capacity(rows.len() * width);
    for &i in rows {
        let tags = &data.labels[i];
        labels.extend_from_slice(tags);
        labels.extend(std::iter::repeat_n(IGNORED_LABEL, width - tags.len()));
    }
    Ok((
        batch,
        Tensor::from_vec(labels, (rows.len(), width), &Device::Cpu)?,
    ))
}

/// Every word's predicted tag: the argmax at its first token; `O` (or the first label when
/// there is no `O`) for words without a token.
fn predict(
    model: &TrainableBert,
    data: &Encoded,
    pad: u32,
    labels: &[String],
) -> Result<Vec<Vec<String>>> {
    let outside = labels.iter().position(|l| l == "O").unwrap_or(0);
    let mut out = vec![Vec::new(); data.ids.len()];
    for chunk in eval_batches(&data.ids) {
        let (batch, _) = batch_of(data, &chunk, pad)?;
        let predicted = model.forward(&batch)?.detach().argmax(D::Minus1)?;
        let predicted = predicted.to_vec2::<u32>()?;
        for (&i, tokens) in chunk.iter().zip(predicted) {
            out[i] = data.first_token[i]
                .iter()
                .map(|t| {
                    let class = t.map_or(outside, |t| tokens[t] as usize);
                    labels.get(class).unwrap_or(&labels[outside]).clone()
                })
                .collect();
        }
    }
    Ok(out)
}

/// The items of `items` whose `keep` flag is set.
fn kept<T>(items: Vec<T>, keep: &[bool]) -> Vec<T> {
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(item, &k)| k.then_some(item))
        .collect()
}

/// Tagged sentences as a fine-tuning task.
struct TokenTask<'a> {
    train: Encoded,
    validation: Encoded,
    pad: u32,
    labels: &'a [String],
}

impl FineTuneTask for TokenTask<'_> {
    fn train_len(&self) -> usize {
        self.train.ids.len()
    }

    fn train_batch(&self, rows: &[usize]) -> Result<(TrainBatch, Tensor)> {
        batch_of(&self.train, rows, self.pad)
    }

    fn validate(&self, model: &TrainableBert) -> Result<Option<Evaluation>> {
        if self.validation.ids.is_empty() {
            return Ok(None);
        }
        let predictions = predict(model, &self.validation, self.pad, self.labels)?;
        let scores = entity_scores(&self.validation.references, &predictions);
        let mut log = serde_json::Map::new();
        log.insert("eval_f1".into(), json!(scores.f1));
        log.insert("eval_precision".into(), json!(scores.precision));
        log.insert("eval_recall".into(), json!(scores.recall));
        log.insert("eval_accuracy".into(), json!(scores.accuracy));
        Ok(Some(Evaluation {
            score: scores.f1,
            log,
            metrics: serde_json::to_value(scores).unwrap_or_default(),
        }))
    }
}

/// Fine-tunes the encoder of a BERT checkpoint for token classification (LoRA or every
/// weight), evaluates every epoch on the validation sentences (keeping the best by entity
/// F1), then on the test sentences, and writes a `BertForTokenClassification` folder (full) or
/// a PEFT `TOKEN_CLS` adapter folder (LoRA) that `embrace pipeline ner` and `peft` load.
pub fn fine_tune_token_classification(
    job: &TokenClassificationJob,
    adaptation: &Adaptation,
) -> Result<TokenReport> {
    let args = &job.args;
    if job.train.is_empty() {
        return Err(TrainError::Config("the training set is empty".into()));
    }
    if job.labels.is_empty() {
        return Err(TrainError::Config("no labels".into()));
    }
    let base_dir = resolve_model_dir(&job.base_model)?;
    let config = AutoConfig::from_file(&base_dir.join("config.json"))?;
    let model = load_trainable(
        &base_dir,
        &config,
        TrainHead::Token,
        job.labels.len(),
        adaptation,
        args,
    )?;
    let tokenizer = training_tokenizer(&base_dir, args.max_length)?;
    let pad = config.encoder.pad_token_id;
    let started = Instant::now();
    let train = encode(&tokenizer, &job.train, &job.labels)?;
    if train.labels.iter().flatten().all(|&l| l == IGNORED_LABEL) {
        return Err(TrainError::Config(
            "no training word produced a token to label".into(),
        ));
    }
    // A batch needs one labelled token: sentences whose words all vanished are left out.
    let keep: Vec<bool> = train
        .labels
        .iter()
        .map(|l| l.iter().any(|&t| t != IGNORED_LABEL))
        .collect();
    let train = Encoded {
        ids: kept(train.ids, &keep),
        labels: kept(train.labels, &keep),
        first_token: kept(train.first_token, &keep),
        references: kept(train.references, &keep),
    };
    let validation = encode(&tokenizer, &job.validation, &job.labels)?;
    let test = encode(&tokenizer, &job.test, &job.labels)?;
    tracing::info!(
        secs = started.elapsed().as_secs_f64(),
        sentences = train.ids.len(),
        "tokenized"
    );
    let task = TokenTask {
        train,
        validation,
        pad,
        labels: &job.labels,
    };
    let outcome = train_loop(&model, args, &job.output_dir, &task)?;
    let test_scores = entity_scores(&test.references, &predict(&model, &test, pad, &job.labels)?);
    let best = outcome
        .best_metrics
        .and_then(|m| serde_json::from_value::<EntityScores>(m).ok());
    let validation_scores = match best {
        Some(s) => s,
        None => entity_scores(
            &task.validation.references,
            &predict(&model, &task.validation, pad, &job.labels)?,
        ),
    };
    let report = TokenReport {
        validation: validation_scores,
        test: test_scores,
        log_history: outcome.log_history,
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
    write_trained_weights(out, &job.base_model, &model)?;
    let (library, method) = match adaptation {
        Adaptation::Lora(_) => (
            "peft",
            "LoRA adapters on the encoder and a token classifier were trained (PEFT format: load with `peft`), the classifier reading the first sub-token of every word",
        ),
        Adaptation::Full => (
            "transformers",
            "every weight was fine-tuned, the classifier reading the first sub-token of every word",
        ),
    };
    write_token_files(job, &base_dir, &report, library, method)?;
    Ok(report)
}
