//! Text classification: train the pooler and classifier of a BERT-family model on a dataset,
//! evaluate, and write a model folder that `transformers` and the Embrace pipelines load.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use embrace_datasets::{Dataset, Feature};
use embrace_models::{AutoConfig, Batch, Checkpoint, Model, ModelType, Task, resolve_model_dir};
use embrace_tokenizers::{Tokenizer, TruncationParams};
use serde_json::{Value, json};

use crate::args::TrainingArguments;
use crate::autograd::TrainHead;
use crate::error::{Result, TrainError};
use crate::metrics::ClassificationMetrics;
use crate::output::{
    append_log, copy_tokenizer_files, io_err, start_log, write_config, write_file, write_json,
    write_weights,
};
use crate::rng::Rng;

/// A text-classification training job.
#[derive(Debug, Clone)]
pub struct TextClassificationJob {
    /// The base model: a folder or a repo id in the Hugging Face cache.
    pub base_model: String,
    /// Training examples.
    pub train: Dataset,
    /// Examples evaluated after every epoch (the best epoch is kept).
    pub validation: Option<Dataset>,
    /// Examples evaluated once at the end.
    pub test: Option<Dataset>,
    /// The column with the text.
    pub text_column: String,
    /// The column with the label (a `ClassLabel`, or text that becomes one).
    pub label_column: String,
    /// Hyper-parameters.
    pub args: TrainingArguments,
    /// Where the model is written.
    pub output_dir: PathBuf,
    /// Write only the trained tensors and a pointer to the base model (small, for sharing).
    pub head_only: bool,
    /// The dataset's name for the model card.
    pub dataset_name: Option<String>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// Label names by class index.
    pub labels: Vec<String>,
    /// Metrics on the validation set of the kept epoch.
    pub validation: Option<ClassificationMetrics>,
    /// Metrics on the test set.
    pub test: Option<ClassificationMetrics>,
    /// The log history (`trainer_state.json`).
    pub log_history: Vec<Value>,
    /// Seconds spent encoding the data with the frozen encoder.
    pub encode_seconds: f64,
    /// Seconds spent training the head.
    pub train_seconds: f64,
}

/// Texts and label ids of a dataset.
pub(crate) fn examples(ds: &Dataset, text: &str, label: &str) -> Result<(Vec<String>, Vec<usize>)> {
    let rows = ds.rows(0, ds.num_rows())?;
    let mut texts = Vec::with_capacity(rows.len());
    let mut labels = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let t = row.get(text).ok_or_else(|| {
            TrainError::Config(format!(
                "no column `{text}`; columns: {}",
                ds.column_names().join(", ")
            ))
        })?;
        let l = row.get(label).ok_or_else(|| {
            TrainError::Config(format!(
                "no column `{label}`; columns: {}",
                ds.column_names().join(", ")
            ))
        })?;
        let Some(l) = l.as_u64() else {
            return Err(TrainError::Config(format!(
                "row {i}: label {l} is not a class index (use a ClassLabel column)"
            )));
        };
        texts.push(t.as_str().unwrap_or_default().to_owned());
        labels.push(l as usize);
    }
    Ok((texts, labels))
}

/// The frozen encoder's `[CLS]` hidden state of every text, `[n, hidden]` row-major.
fn cls_features(
    model: &Model,
    tokenizer: &Tokenizer,
    texts: &[String],
    pad: u32,
) -> Result<Vec<f32>> {
    let h = model.config().encoder.hidden_size;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let ids = tokenizer.encode_ids_batch(&refs, true)?;
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    let mut out = vec![0.0f32; texts.len() * h];
    let mut done = 0;
    let started = Instant::now();
    for chunk in order.chunks(64) {
        let seqs: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
        let batch = Batch::from_sequences(&seqs, None, pad)?;
        let hidden = model.forward(&batch)?.last_hidden_state;
        let first = hidden.narrow(1, 0, 1)?.squeeze(1)?.to_vec2::<f32>()?;
        for (&i, row) in chunk.iter().zip(first) {
            out[i * h..(i + 1) * h].copy_from_slice(&row);
        }
        done += chunk.len();
        if done % 4096 < 64 {
            tracing::info!(
                done,
                total = texts.len(),
                secs = started.elapsed().as_secs_f64(),
                "encoding with the frozen encoder"
            );
        }
    }
    Ok(out)
}

/// The trainable head: pooler (dense + tanh) and classifier.
struct Head {
    pooler_w: Var,
    pooler_b: Var,
    classifier_w: Var,
    classifier_b: Var,
}

impl Head {
    fn logits(&self, x: &Tensor, dropout_mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let pooled = x
            .matmul(&self.pooler_w.as_tensor().t()?)?
            .broadcast_add(self.pooler_b.as_tensor())?
            .tanh()?;
        let pooled = match dropout_mask {
            Some(m) => (pooled * m)?,
            None => pooled,
        };
        pooled
            .matmul(&self.classifier_w.as_tensor().t()?)?
            .broadcast_add(self.classifier_b.as_tensor())
    }

    fn snapshot(&self) -> candle_core::Result<Vec<Tensor>> {
        [
            &self.pooler_w,
            &self.pooler_b,
            &self.classifier_w,
            &self.classifier_b,
        ]
        .iter()
        .map(|v| v.as_tensor().copy())
        .collect()
    }
}

fn predict(head: &Head, features: &[f32], h: usize) -> Result<Vec<usize>> {
    let n = features.len() / h;
    let x = Tensor::from_slice(features, (n, h), &Device::Cpu)?;
    Ok(head
        .logits(&x, None)?
        .argmax(1)?
        .to_vec1::<u32>()?
        .into_iter()
        .map(|v| v as usize)
        .collect())
}

/// The base model's tokenizer as training uses it: no padding (batches pad themselves),
/// truncation at `max_length`.
pub(crate) fn training_tokenizer(base_dir: &Path, max_length: usize) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_path(base_dir)?;
    tokenizer.with_padding(None);
    tokenizer.with_truncation(Some(TruncationParams {
        max_length,
        direction: Default::default(),
        strategy: Default::default(),
        stride: 0,
    }))?;
    Ok(tokenizer)
}

/// The label names of the job's ClassLabel column (at least two).
pub(crate) fn class_labels(job: &TextClassificationJob) -> Result<Vec<String>> {
    let labels: Vec<String> = match job.train.features().get(&job.label_column) {
        Some(Feature::ClassLabel(names)) => names.clone(),
        Some(other) => {
            return Err(TrainError::Config(format!(
                "label column `{}` is {other:?}; make it a ClassLabel (class_encode_column / --class-column)",
                job.label_column
            )));
        }
        None => {
            return Err(TrainError::Config(format!(
                "no label column `{}`",
                job.label_column
            )));
        }
    };
    if labels.len() < 2 {
        return Err(TrainError::Config(
            "a classifier needs at least two labels".into(),
        ));
    }
    Ok(labels)
}

/// Trains, evaluates and writes the model (see the module documentation).
pub fn train_text_classification(job: &TextClassificationJob) -> Result<TrainReport> {
    let args = &job.args;
    if args.per_device_train_batch_size == 0 || args.num_train_epochs == 0 {
        return Err(TrainError::Config(
            "batch size and epochs must be at least 1".into(),
        ));
    }
    let base_dir = resolve_model_dir(&job.base_model)?;
    let config = AutoConfig::from_file(&base_dir.join("config.json"))?;
    if config.model_type != ModelType::Bert {
        return Err(TrainError::Config(format!(
            "head training supports BERT-family checkpoints (model_type bert), not {}",
            config.model_type.as_str()
        )));
    }
    let labels = class_labels(job)?;
    // One read of the weights serves the frozen encoder, the pretrained pooler and the output.
    let checkpoint = Checkpoint::from_dir(&base_dir)?;
    let model = Model::load(config.clone(), &checkpoint, Task::Base)?;
    let tokenizer = training_tokenizer(&base_dir, args.max_length)?;
    let pad = config.encoder.pad_token_id;
    let h = config.encoder.hidden_size;
    let k = labels.len();

    let started = Instant::now();
    let (train_texts, train_labels) = examples(&job.train, &job.text_column, &job.label_column)?;
    let train_x = cls_features(&model, &tokenizer, &train_texts, pad)?;
    let mut eval_sets = Vec::new();
    for (name, ds) in [("validation", &job.validation), ("test", &job.test)] {
        if let Some(ds) = ds {
            let (texts, labels) = examples(ds, &job.text_column, &job.label_column)?;
            eval_sets.push((name, cls_features(&model, &tokenizer, &texts, pad)?, labels));
        }
    }
    let encode_seconds = started.elapsed().as_secs_f64();

    // Initialise: the pretrained pooler when the checkpoint has one, a fresh classifier with
    // transformers' init (normal, std = initializer_range; zero bias).
    let mut rng = Rng::new(args.seed);
    let read = |name: &str| -> Option<Vec<f32>> {
        [name.to_owned(), format!("bert.{name}")]
            .iter()
            .find(|n| checkpoint.shape(n).is_some())
            .and_then(|n| checkpoint.read_f32(n).ok())
    };
    let std = config
        .raw
        .get("initializer_range")
        .and_then(Value::as_f64)
        .unwrap_or(0.02);
    let mut normal =
        |n: usize| -> Vec<f32> { (0..n).map(|_| (rng.normal() * std) as f32).collect() };
    let pooler_w = read("pooler.dense.weight")
        .filter(|w| w.len() == h * h)
        .unwrap_or_else(|| normal(h * h));
    let pooler_b = read("pooler.dense.bias")
        .filter(|b| b.len() == h)
        .unwrap_or_else(|| vec![0.0; h]);
    let classifier_w = normal(k * h);
    let dev = Device::Cpu;
    let head = Head {
        pooler_w: Var::from_tensor(&Tensor::from_vec(pooler_w, (h, h), &dev)?)?,
        pooler_b: Var::from_tensor(&Tensor::from_vec(pooler_b, h, &dev)?)?,
        classifier_w: Var::from_tensor(&Tensor::from_vec(classifier_w, (k, h), &dev)?)?,
        classifier_b: Var::from_tensor(&Tensor::zeros(k, DType::F32, &dev)?)?,
    };
    // Weight decay applies to weights, not biases (transformers' default grouping).
    let params = |wd: f64| ParamsAdamW {
        lr: args.learning_rate,
        beta1: args.adam_beta1,
        beta2: args.adam_beta2,
        eps: args.adam_epsilon,
        weight_decay: wd,
    };
    let mut opt_w = AdamW::new(
        vec![head.pooler_w.clone(), head.classifier_w.clone()],
        params(args.weight_decay),
    )?;
    let mut opt_b = AdamW::new(
        vec![head.pooler_b.clone(), head.classifier_b.clone()],
        params(0.0),
    )?;
    let dropout = args
        .dropout
        .or_else(|| config.raw.get("classifier_dropout").and_then(Value::as_f64))
        .or_else(|| {
            config
                .raw
                .get("hidden_dropout_prob")
                .and_then(Value::as_f64)
        })
        .unwrap_or(0.1);

    let n = train_labels.len();
    let class_weights: Option<Tensor> = if args.balanced_class_weights {
        let mut counts = vec![0usize; k];
        for &l in &train_labels {
            if l < k {
                counts[l] += 1;
            }
        }
        let w: Vec<f32> = counts
            .iter()
            .map(|&c| {
                if c == 0 {
                    0.0
                } else {
                    (n as f64 / (k as f64 * c as f64)) as f32
                }
            })
            .collect();
        tracing::info!(?w, "balanced class weights");
        Some(Tensor::from_vec(w, k, &dev)?)
    } else {
        None
    };
    let bs = args.per_device_train_batch_size;
    let steps_per_epoch = n.div_ceil(bs);
    let total = steps_per_epoch * args.num_train_epochs;
    let mut log_history = Vec::new();
    let mut best: Option<(f64, Vec<Tensor>, ClassificationMetrics, usize)> = None;
    let mut step = 0;
    let mut running = 0.0f64;
    let mut running_n = 0usize;
    start_log(&job.output_dir)?;
    let train_started = Instant::now();
    let mut since_best = 0usize;
    let bar = crate::progress::training_bar(total, 0);
    for epoch in 0..args.num_train_epochs {
        let order = rng.permutation(n);
        for chunk in order.chunks(bs) {
            let mut xs = Vec::with_capacity(chunk.len() * h);
            for &i in chunk {
                xs.extend_from_slice(&train_x[i * h..(i + 1) * h]);
            }
            let x = Tensor::from_vec(xs, (chunk.len(), h), &dev)?;
            let y = Tensor::from_vec(
                chunk
                    .iter()
                    .map(|&i| train_labels[i] as u32)
                    .collect::<Vec<_>>(),
                chunk.len(),
                &dev,
            )?;
            let keep = 1.0 - dropout;
            let mask: Vec<f32> = (0..chunk.len() * h)
                .map(|_| {
                    if rng.uniform() < keep {
                        (1.0 / keep) as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            let mask = Tensor::from_vec(mask, (chunk.len(), h), &dev)?;
            let logits = head.logits(&x, (dropout > 0.0).then_some(&mask))?;
            let loss = match &class_weights {
                None => candle_nn::loss::cross_entropy(&logits, &y)?,
                Some(w) => {
                    // PyTorch's weighted cross-entropy: sum(w_y * nll) / sum(w_y).
                    let log_probs = candle_nn::ops::log_softmax(&logits, 1)?;
                    let picked = log_probs.gather(&y.unsqueeze(1)?, 1)?.squeeze(1)?;
                    let wy = w.index_select(&y, 0)?;
                    ((picked * &wy)?.sum_all()?.neg()? / wy.sum_all()?.to_scalar::<f32>()? as f64)?
                }
            };
            let mut grads = loss.backward()?;
            if args.max_grad_norm > 0.0 {
                let vars = [
                    &head.pooler_w,
                    &head.pooler_b,
                    &head.classifier_w,
                    &head.classifier_b,
                ];
                let mut norm2 = 0.0f64;
                for v in vars {
                    if let Some(g) = grads.get(v.as_tensor()) {
                        norm2 += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
                    }
                }
                let norm = norm2.sqrt();
                if norm > args.max_grad_norm {
                    let scale = args.max_grad_norm / (norm + 1e-6);
                    for v in vars {
                        if let Some(g) = grads.get(v.as_tensor()) {
                            let scaled = (g * scale)?;
                            grads.insert(v.as_tensor(), scaled);
                        }
                    }
                }
            }
            let lr = args.learning_rate_at(step, total);
            opt_w.set_learning_rate(lr);
            opt_b.set_learning_rate(lr);
            opt_w.step(&grads)?;
            opt_b.step(&grads)?;
            running += loss.to_scalar::<f32>()? as f64;
            running_n += 1;
            step += 1;
            crate::progress::step(&bar, running / running_n as f64, lr);
            if step % args.logging_steps.max(1) == 0 {
                let entry = json!({"loss": running / running_n as f64, "learning_rate": lr, "epoch": step as f64 / steps_per_epoch as f64, "step": step});
                tracing::info!(%entry, "training");
                append_log(&job.output_dir, &entry)?;
                log_history.push(entry);
                running = 0.0;
                running_n = 0;
            }
        }
        // Evaluate the epoch; keep the best by validation macro-F1 (load_best_model_at_end).
        if let Some((_, features, refs)) =
            eval_sets.iter().find(|(name, _, _)| *name == "validation")
        {
            let preds = predict(&head, features, h)?;
            let m = ClassificationMetrics::compute(&preds, refs, k);
            log_history.push(json!({"eval_accuracy": m.accuracy, "eval_f1_macro": m.macro_f1, "epoch": epoch + 1, "step": step}));
            tracing::info!(
                epoch = epoch + 1,
                accuracy = m.accuracy,
                f1_macro = m.macro_f1,
                "validation"
            );
            if best.as_ref().is_none_or(|(score, ..)| m.macro_f1 > *score) {
                best = Some((m.macro_f1, head.snapshot()?, m, epoch + 1));
                since_best = 0;
            } else {
                since_best += 1;
            }
            if args.stop_early(since_best, epoch + 1, &mut log_history) {
                break;
            }
        }
    }
    bar.finish_and_clear();
    let train_seconds = train_started.elapsed().as_secs_f64();
    let mut validation = None;
    if let Some((_, weights, m, epoch)) = best {
        for (var, value) in [
            &head.pooler_w,
            &head.pooler_b,
            &head.classifier_w,
            &head.classifier_b,
        ]
        .iter()
        .zip(weights)
        {
            var.set(&value)?;
        }
        log_history.push(json!({"best_epoch": epoch}));
        validation = Some(m);
    }
    let test = match eval_sets.iter().find(|(name, _, _)| *name == "test") {
        Some((_, features, refs)) => Some(ClassificationMetrics::compute(
            &predict(&head, features, h)?,
            refs,
            k,
        )),
        None => None,
    };
    let report = TrainReport {
        labels: labels.clone(),
        validation,
        test,
        log_history,
        encode_seconds,
        train_seconds,
    };
    write_output(job, &base_dir, &config, &checkpoint, &head, &report)?;
    Ok(report)
}

fn write_output(
    job: &TextClassificationJob,
    base_dir: &Path,
    config: &AutoConfig,
    checkpoint: &Checkpoint,
    head: &Head,
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
    let trained = HashMap::from([
        (
            "bert.pooler.dense.weight".to_owned(),
            head.pooler_w.as_tensor().clone(),
        ),
        (
            "bert.pooler.dense.bias".to_owned(),
            head.pooler_b.as_tensor().clone(),
        ),
        (
            "classifier.weight".to_owned(),
            head.classifier_w.as_tensor().clone(),
        ),
        (
            "classifier.bias".to_owned(),
            head.classifier_b.as_tensor().clone(),
        ),
    ]);
    write_weights(
        out,
        &job.base_model,
        checkpoint,
        trained,
        &["bert.pooler", "classifier"],
        job.head_only,
    )?;
    let summary = TrainingSummary {
        library: "transformers",
        method: "The encoder is frozen; the pooler and classifier were trained",
        timing: format!(
            "Encoding the data with the frozen encoder took {:.0} s; training the head {:.0} s.",
            report.encode_seconds, report.train_seconds
        ),
    };
    write_classifier_files(job, base_dir, report, &summary)
}

/// The files of a trained classifier besides its weights (written first, with `config.json`):
/// the base's tokenizer, `eval_results.json`, `trainer_state.json`, `training_args.json` and the
/// model card.
pub(crate) fn write_classifier_files(
    job: &TextClassificationJob,
    base_dir: &Path,
    report: &TrainReport,
    summary: &TrainingSummary,
) -> Result<()> {
    let out = &job.output_dir;
    copy_tokenizer_files(base_dir, out)?;
    let metrics_json =
        |m: &Option<ClassificationMetrics>| m.as_ref().map(|m| m.to_json(&report.labels));
    let results =
        json!({"validation": metrics_json(&report.validation), "test": metrics_json(&report.test)});
    write_json(&out.join("eval_results.json"), &results)?;
    write_json(
        &out.join("trainer_state.json"),
        &json!({"log_history": report.log_history, "encode_seconds": report.encode_seconds, "train_seconds": report.train_seconds}),
    )?;
    write_json(
        &out.join("training_args.json"),
        &serde_json::to_value(&job.args).unwrap_or_default(),
    )?;
    write_file(
        &out.join("README.md"),
        model_card(job, report, summary).as_bytes(),
    )
}

/// What the model card says about how a classifier was trained.
pub(crate) struct TrainingSummary {
    /// `library_name` of the card (`transformers`, or `peft` for an adapter).
    pub(crate) library: &'static str,
    /// What was trained, e.g. "The encoder is frozen; the pooler and classifier were trained".
    pub(crate) method: &'static str,
    /// The closing sentence about time spent.
    pub(crate) timing: String,
}

fn model_card(
    job: &TextClassificationJob,
    report: &TrainReport,
    summary: &TrainingSummary,
) -> String {
    let dataset = job.dataset_name.clone().unwrap_or_else(|| "custom".into());
    let mut metrics_yaml = String::new();
    let mut table = String::new();
    for (split, m) in [("validation", &report.validation), ("test", &report.test)] {
        if let Some(m) = m {
            metrics_yaml.push_str(&format!(
                "      - type: accuracy\n        value: {:.4}\n        name: {split} accuracy\n      - type: f1\n        value: {:.4}\n        name: {split} macro F1\n",
                m.accuracy, m.macro_f1
            ));
            table.push_str(&format!(
                "| {split} | {:.4} | {:.4} | {:.4} |\n",
                m.accuracy, m.macro_f1, m.weighted_f1
            ));
        }
    }
    format!(
        "---\nbase_model: {base}\ndatasets:\n- {dataset}\nlibrary_name: {library}\npipeline_tag: text-classification\ntags:\n- embrace\n- text-classification\nmodel-index:\n- name: {name}\n  results:\n  - task:\n      type: text-classification\n    dataset:\n      name: {dataset}\n      type: {dataset}\n    metrics:\n{metrics_yaml}---\n\n# {name}\n\nA text classifier ({labels}) trained with Embrace (`embrace train text-classification`) from `{base}` on {dataset}.\n{method} ({epochs} epochs, batch {bs}, learning rate {lr}, seed {seed}, max length {maxlen}).\n\n| split | accuracy | macro F1 | weighted F1 |\n|---|---|---|---|\n{table}\n{timing}\n",
        base = job.base_model,
        name = job
            .output_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        labels = report.labels.join(", "),
        epochs = job.args.num_train_epochs,
        bs = job.args.per_device_train_batch_size,
        lr = job.args.learning_rate,
        seed = job.args.seed,
        maxlen = job.args.max_length,
        library = summary.library,
        method = summary.method,
        timing = summary.timing,
    )
}
