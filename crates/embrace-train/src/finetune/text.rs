//! Text classification: a `BertForSequenceClassification` fine-tuned on labelled texts.

use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use embrace_models::{AutoConfig, resolve_model_dir};
use embrace_tokenizers::Tokenizer;
use serde_json::json;

use super::{
    Adaptation, Evaluation, FineTuneTask, eval_batches, load_trainable, padded_batch, train_loop,
    write_trained_weights,
};
use crate::autograd::{TrainBatch, TrainHead, TrainableBert};
use crate::classification::{
    TextClassificationJob, TrainReport, TrainingSummary, class_labels, examples,
    training_tokenizer, write_classifier_files,
};
use crate::error::{Result, TrainError};
use crate::metrics::ClassificationMetrics;
use crate::output::{io_err, write_config};

/// Tokenized examples: ids per text.
struct Encoded {
    ids: Vec<Vec<u32>>,
    labels: Vec<usize>,
}

fn encode(tokenizer: &Tokenizer, texts: &[String], labels: Vec<usize>) -> Result<Encoded> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    Ok(Encoded {
        ids: tokenizer.encode_ids_batch(&refs, true)?,
        labels,
    })
}

/// A padded batch of the given examples and their `u32 [batch]` classes.
fn batch_of(data: &Encoded, rows: &[usize], pad: u32) -> Result<(TrainBatch, Tensor)> {
    let seqs: Vec<&[u32]> = rows.iter().map(|&i| data.ids[i].as_slice()).collect();
    let (batch, _) = padded_batch(&seqs, pad)?;
    let labels: Vec<u32> = rows.iter().map(|&i| data.labels[i] as u32).collect();
    let n = labels.len();
    Ok((batch, Tensor::from_vec(labels, n, &Device::Cpu)?))
}

fn predict(model: &TrainableBert, data: &Encoded, pad: u32) -> Result<Vec<usize>> {
    let mut out = vec![0usize; data.ids.len()];
    for chunk in eval_batches(&data.ids) {
        let (batch, _) = batch_of(data, &chunk, pad)?;
        let logits = model.forward(&batch)?.detach();
        let preds = logits.argmax(1)?.to_vec1::<u32>()?;
        for (&i, p) in chunk.iter().zip(preds) {
            out[i] = p as usize;
        }
    }
    Ok(out)
}

/// Labelled texts as a fine-tuning task; validation is scored by macro-F1.
struct TextTask {
    train: Encoded,
    validation: Option<Encoded>,
    pad: u32,
    classes: usize,
}

impl FineTuneTask for TextTask {
    fn train_len(&self) -> usize {
        self.train.ids.len()
    }

    fn train_batch(&self, rows: &[usize]) -> Result<(TrainBatch, Tensor)> {
        batch_of(&self.train, rows, self.pad)
    }

    fn validate(&self, model: &TrainableBert) -> Result<Option<Evaluation>> {
        let Some(data) = &self.validation else {
            return Ok(None);
        };
        let m = ClassificationMetrics::compute(
            &predict(model, data, self.pad)?,
            &data.labels,
            self.classes,
        );
        let mut log = serde_json::Map::new();
        log.insert("eval_accuracy".into(), json!(m.accuracy));
        log.insert("eval_f1_macro".into(), json!(m.macro_f1));
        Ok(Some(Evaluation {
            score: m.macro_f1,
            log,
            metrics: serde_json::to_value(&m).unwrap_or_default(),
        }))
    }
}

/// Fine-tunes the encoder of a BERT checkpoint for text classification (full or LoRA),
/// evaluates every epoch on the validation set (keeping the best by macro-F1), then on the
/// test set, and writes the output folder.
pub fn fine_tune_text_classification(
    job: &TextClassificationJob,
    adaptation: &Adaptation,
) -> Result<TrainReport> {
    let args = &job.args;
    let base_dir = resolve_model_dir(&job.base_model)?;
    let config = AutoConfig::from_file(&base_dir.join("config.json"))?;
    let labels = class_labels(job)?;
    let k = labels.len();
    let model = load_trainable(&base_dir, &config, TrainHead::Sequence, k, adaptation, args)?;
    let tokenizer = training_tokenizer(&base_dir, args.max_length)?;
    let pad = config.encoder.pad_token_id;
    let started = Instant::now();
    let (texts, train_labels) = examples(&job.train, &job.text_column, &job.label_column)?;
    if texts.is_empty() {
        return Err(TrainError::Config("the training set is empty".into()));
    }
    if let Some(bad) = train_labels.iter().find(|&&l| l >= k) {
        return Err(TrainError::Config(format!(
            "label index {bad} is outside the {k} classes"
        )));
    }
    let train = encode(&tokenizer, &texts, train_labels)?;
    let evaluate = |ds: &Option<embrace_datasets::Dataset>| -> Result<Option<Encoded>> {
        match ds {
            Some(ds) => {
                let (t, l) = examples(ds, &job.text_column, &job.label_column)?;
                Ok(Some(encode(&tokenizer, &t, l)?))
            }
            None => Ok(None),
        }
    };
    let validation = evaluate(&job.validation)?;
    let test = evaluate(&job.test)?;
    let encode_seconds = started.elapsed().as_secs_f64();
    let task = TextTask {
        train,
        validation,
        pad,
        classes: k,
    };
    let outcome = train_loop(&model, args, &job.output_dir, &task)?;
    let validation = outcome
        .best_metrics
        .and_then(|m| serde_json::from_value::<ClassificationMetrics>(m).ok());
    let test = match &test {
        Some(data) => Some(ClassificationMetrics::compute(
            &predict(&model, data, pad)?,
            &data.labels,
            k,
        )),
        None => None,
    };
    let report = TrainReport {
        labels,
        validation,
        test,
        log_history: outcome.log_history,
        encode_seconds,
        train_seconds: outcome.train_seconds,
    };
    write_finetuned(job, &base_dir, &config, &model, &report)?;
    Ok(report)
}

fn write_finetuned(
    job: &TextClassificationJob,
    base_dir: &Path,
    config: &AutoConfig,
    model: &TrainableBert,
    report: &TrainReport,
) -> Result<()> {
    let out = &job.output_dir;
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    write_config(
        out,
        config,
        TrainHead::Sequence.architecture(),
        &report.labels,
        Some("single_label_classification"),
    )?;
    write_trained_weights(out, &job.base_model, model)?;
    let summary = TrainingSummary {
        library: if model.lora().is_some() {
            "peft"
        } else {
            "transformers"
        },
        method: match model.lora() {
            Some(_) => {
                "LoRA adapters on the encoder and the classifier were trained (PEFT format: load with `peft`)"
            }
            None => "Every weight was fine-tuned",
        },
        timing: format!(
            "Tokenizing took {:.0} s; training {:.0} s on the CPU.",
            report.encode_seconds, report.train_seconds
        ),
    };
    write_classifier_files(job, base_dir, report, &summary)
}
