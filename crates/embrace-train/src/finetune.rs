//! Fine-tuning the encoder itself: every weight (full fine-tuning) or LoRA adapters (PEFT's
//! format), on the differentiable BERT of [`crate::autograd`].
//!
//! Full fine-tuning writes a complete `BertForSequenceClassification` folder; LoRA writes a PEFT
//! adapter folder (`adapter_config.json` + `adapter_model.safetensors`, keys
//! `base_model.model.<name>`) that Python `peft` loads on top of the base model, and that
//! Embrace's pipelines load by merging the update into the base weights.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use embrace_models::{AutoConfig, ModelType, resolve_model_dir};
use embrace_tokenizers::Tokenizer;
use serde_json::json;

use crate::autograd::{LoraSettings, TrainBatch, TrainableBert};
use crate::checkpoint::{self, TrainerState};
use crate::classification::{
    TextClassificationJob, TrainReport, TrainingSummary, class_labels, examples,
    training_tokenizer, write_classifier_files,
};
use crate::error::{Result, TrainError};
use crate::metrics::ClassificationMetrics;
use crate::optim::{AdamW, AdamWParams};
use crate::output::{append_log, io_err, save_tensors, start_log, write_config, write_json};
use crate::rng::Rng;

/// How the encoder is adapted.
#[derive(Debug, Clone, PartialEq)]
pub enum Adaptation {
    /// Every parameter trains.
    Full,
    /// LoRA adapters train (plus the classifier); the base weights stay frozen.
    Lora(LoraSettings),
}

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

/// A padded batch of the given examples.
fn batch_of(data: &Encoded, rows: &[usize], pad: u32) -> Result<(TrainBatch, Tensor)> {
    let width = rows
        .iter()
        .map(|&i| data.ids[i].len())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut ids = Vec::with_capacity(rows.len() * width);
    let mut mask = Vec::with_capacity(rows.len() * width);
    for &i in rows {
        let seq = &data.ids[i];
        ids.extend_from_slice(seq);
        ids.extend(std::iter::repeat_n(pad, width - seq.len()));
        mask.extend(std::iter::repeat_n(1f32, seq.len()));
        mask.extend(std::iter::repeat_n(0f32, width - seq.len()));
    }
    let dev = Device::Cpu;
    let n = rows.len();
    let batch = TrainBatch {
        input_ids: Tensor::from_vec(ids, (n, width), &dev)?,
        token_type_ids: Tensor::zeros((n, width), DType::U32, &dev)?,
        attention_mask: Tensor::from_vec(mask, (n, width), &dev)?,
    };
    let labels = Tensor::from_vec(
        rows.iter()
            .map(|&i| data.labels[i] as u32)
            .collect::<Vec<_>>(),
        n,
        &dev,
    )?;
    Ok((batch, labels))
}

fn predict(model: &TrainableBert, data: &Encoded, pad: u32) -> Result<Vec<usize>> {
    let mut order: Vec<usize> = (0..data.ids.len()).collect();
    order.sort_by_key(|&i| data.ids[i].len());
    let mut out = vec![0usize; order.len()];
    for chunk in order.chunks(64) {
        let (batch, _) = batch_of(data, chunk, pad)?;
        let logits = model.forward(&batch)?.detach();
        let preds = logits.argmax(1)?.to_vec1::<u32>()?;
        for (&i, p) in chunk.iter().zip(preds) {
            out[i] = p as usize;
        }
    }
    Ok(out)
}

/// Fine-tunes the encoder of a BERT checkpoint for text classification (full or LoRA),
/// evaluates every epoch on the validation set (keeping the best by macro-F1), then on the
/// test set, and writes the output folder.
pub fn fine_tune_text_classification(
    job: &TextClassificationJob,
    adaptation: &Adaptation,
) -> Result<TrainReport> {
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
            "fine-tuning supports BERT checkpoints (model_type bert), not {}",
            config.model_type.as_str()
        )));
    }
    if args.max_length > config.encoder.max_position_embeddings {
        return Err(TrainError::Config(format!(
            "max length {} is longer than the model's {} positions",
            args.max_length, config.encoder.max_position_embeddings
        )));
    }
    let labels = class_labels(job)?;
    let k = labels.len();
    let weights = base_dir.join("model.safetensors");
    let mut model =
        TrainableBert::from_safetensors(&weights, config.encoder.clone(), k, args.seed)?;
    if let Adaptation::Lora(settings) = adaptation {
        model.add_lora(settings.clone(), args.seed)?;
    }
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
    let mut eval_sets = Vec::new();
    for (name, ds) in [("validation", &job.validation), ("test", &job.test)] {
        if let Some(ds) = ds {
            let (t, l) = examples(ds, &job.text_column, &job.label_column)?;
            eval_sets.push((name, encode(&tokenizer, &t, l)?));
        }
    }
    let encode_seconds = started.elapsed().as_secs_f64();

    let named: Vec<(String, candle_core::Var)> = model
        .named_vars()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    let no_decay = |n: &str| n.ends_with(".bias") || n.contains("LayerNorm");
    let group = |name: &str| AdamWParams {
        beta1: args.adam_beta1,
        beta2: args.adam_beta2,
        eps: args.adam_epsilon,
        weight_decay: if no_decay(name) {
            0.0
        } else {
            args.weight_decay
        },
    };
    let mut optimizer = AdamW::new(
        named
            .iter()
            .map(|(n, v)| (n.clone(), v.clone(), group(n)))
            .collect(),
    )?;

    let n = train.ids.len();
    let bs = args.per_device_train_batch_size;
    let accumulation = args.gradient_accumulation_steps.max(1);
    let batches_per_epoch = n.div_ceil(bs);
    let steps_per_epoch = batches_per_epoch.div_ceil(accumulation);
    let total = steps_per_epoch * args.num_train_epochs;
    let mut rng = Rng::new(args.seed);
    let mut state = TrainerState {
        global_step: 0,
        epoch: 0,
        batches_done_in_epoch: 0,
        rng_at_epoch_start: rng.state(),
        running_loss: 0.0,
        running_batches: 0,
        best_metric: None,
        best_epoch: None,
        best_metrics: None,
        epochs_since_best: 0,
        log_history: Vec::new(),
    };
    let mut best_weights: Option<Vec<Tensor>> = None;
    let mut resumed = false;
    if let Some(spec) = &args.resume_from_checkpoint {
        let dir = checkpoint::resolve(spec, &job.output_dir)?;
        let loaded = checkpoint::load(&dir)?;
        for (name, var) in &named {
            let value = loaded.weights.get(name).ok_or_else(|| {
                TrainError::Config(format!("{} lacks the weight {name}", dir.display()))
            })?;
            var.set(value)?;
        }
        optimizer.load_state(&loaded.optimizer, loaded.state.global_step)?;
        best_weights = match loaded.best {
            Some(best) => Some(
                named
                    .iter()
                    .map(|(name, _)| {
                        best.get(name).cloned().ok_or_else(|| {
                            TrainError::Config(format!("{} lacks the best {name}", dir.display()))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            None => None,
        };
        state = loaded.state;
        resumed = true;
        tracing::info!(checkpoint = %dir.display(), step = state.global_step, "resuming");
    } else {
        start_log(&job.output_dir)?;
    }
    let snapshot = |named: &[(String, candle_core::Var)]| -> HashMap<String, Tensor> {
        named
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    };
    let bar = crate::progress::training_bar(total, state.global_step);
    let train_started = Instant::now();
    let first_step = state.global_step;
    let first_epoch = state.epoch;
    for epoch in first_epoch..args.num_train_epochs {
        // The epoch's order comes from the generator's state at its start, so that a resumed
        // epoch sees the same order and skips the batches already done.
        let resuming_epoch = resumed && epoch == first_epoch;
        if !resuming_epoch {
            state.rng_at_epoch_start = rng.state();
            state.batches_done_in_epoch = 0;
        }
        rng = Rng::from_state(state.rng_at_epoch_start);
        let order = rng.permutation(n);
        let chunks: Vec<&[usize]> = order.chunks(bs).collect();
        let mut accumulated: Option<candle_core::backprop::GradStore> = None;
        for (b, chunk) in chunks.iter().enumerate().skip(state.batches_done_in_epoch) {
            let (batch, y) = batch_of(&train, chunk, pad)?;
            let loss = model.loss(&batch, &y)?;
            let grads = if accumulation > 1 {
                (&loss / accumulation as f64)?.backward()?
            } else {
                loss.backward()?
            };
            accumulated = Some(match accumulated.take() {
                None => grads,
                Some(mut sum) => {
                    for (_, v) in &named {
                        if let Some(g) = grads.get(v.as_tensor()) {
                            let total_g = match sum.get(v.as_tensor()) {
                                Some(prev) => (prev + g)?,
                                None => g.clone(),
                            };
                            sum.insert(v.as_tensor(), total_g);
                        }
                    }
                    sum
                }
            });
            state.running_loss += loss.to_scalar::<f32>()? as f64;
            state.running_batches += 1;
            let boundary = (b + 1) % accumulation == 0 || b + 1 == chunks.len();
            if !boundary {
                continue;
            }
            let Some(mut grads) = accumulated.take() else {
                continue;
            };
            if args.max_grad_norm > 0.0 {
                clip_gradients(&named, &mut grads, args.max_grad_norm)?;
            }
            let lr = args.learning_rate_at(state.global_step, total);
            optimizer.step(&grads, lr)?;
            state.global_step += 1;
            state.batches_done_in_epoch = b + 1;
            let step = state.global_step;
            crate::progress::step(
                &bar,
                state.running_loss / state.running_batches.max(1) as f64,
                lr,
            );
            if step.is_multiple_of(args.logging_steps.max(1)) || step == total {
                let elapsed = train_started.elapsed().as_secs_f64();
                let entry = json!({"loss": state.running_loss / state.running_batches.max(1) as f64,
                    "learning_rate": lr, "epoch": step as f64 / steps_per_epoch as f64, "step": step,
                    "steps_per_second": (step - first_step) as f64 / elapsed});
                tracing::info!(%entry, "training");
                append_log(&job.output_dir, &entry)?;
                state.log_history.push(entry);
                state.running_loss = 0.0;
                state.running_batches = 0;
            }
            if args
                .save_steps
                .is_some_and(|every| step.is_multiple_of(every.max(1)))
            {
                let best = best_weights.as_ref().map(|w| {
                    named
                        .iter()
                        .map(|(n, _)| n.clone())
                        .zip(w.iter().cloned())
                        .collect::<HashMap<_, _>>()
                });
                let dir = checkpoint::save(
                    &job.output_dir,
                    &state,
                    &snapshot(&named),
                    &optimizer.state_tensors(),
                    best.as_ref(),
                    args.save_total_limit,
                )?;
                tracing::info!(checkpoint = %dir.display(), "saved");
            }
            if args.interrupt_after_steps == Some(step) {
                bar.finish_and_clear();
                return Err(TrainError::Interrupted(step));
            }
        }
        if let Some((_, data)) = eval_sets.iter().find(|(name, _)| *name == "validation") {
            let m = ClassificationMetrics::compute(&predict(&model, data, pad)?, &data.labels, k);
            state.log_history.push(json!({"eval_accuracy": m.accuracy, "eval_f1_macro": m.macro_f1, "epoch": epoch + 1, "step": state.global_step}));
            tracing::info!(
                epoch = epoch + 1,
                accuracy = m.accuracy,
                f1_macro = m.macro_f1,
                "validation"
            );
            if state.best_metric.is_none_or(|score| m.macro_f1 > score) {
                best_weights = Some(
                    named
                        .iter()
                        .map(|(_, v)| v.as_tensor().copy())
                        .collect::<candle_core::Result<Vec<_>>>()?,
                );
                state.best_metric = Some(m.macro_f1);
                state.best_epoch = Some(epoch + 1);
                state.best_metrics = serde_json::to_value(&m).ok();
                state.epochs_since_best = 0;
            } else {
                state.epochs_since_best += 1;
            }
            if args.stop_early(state.epochs_since_best, epoch + 1, &mut state.log_history) {
                state.epoch = epoch + 1;
                break;
            }
        }
        state.epoch = epoch + 1;
        state.batches_done_in_epoch = 0;
    }
    bar.finish_and_clear();
    let train_seconds = train_started.elapsed().as_secs_f64();
    let mut log_history = state.log_history;
    let mut validation = None;
    if let (Some(weights), Some(epoch)) = (best_weights, state.best_epoch) {
        for ((_, var), value) in named.iter().zip(weights) {
            var.set(&value)?;
        }
        log_history.push(json!({"best_epoch": epoch}));
        validation = state
            .best_metrics
            .and_then(|m| serde_json::from_value::<ClassificationMetrics>(m).ok());
    }
    let test = match eval_sets.iter().find(|(name, _)| *name == "test") {
        Some((_, data)) => Some(ClassificationMetrics::compute(
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
        log_history,
        encode_seconds,
        train_seconds,
    };
    write_finetuned(job, &base_dir, &config, &model, &report)?;
    Ok(report)
}

/// Scales the gradients so that their global L2 norm is at most `max_norm`
/// (`torch.nn.utils.clip_grad_norm_`).
fn clip_gradients(
    named: &[(String, candle_core::Var)],
    grads: &mut candle_core::backprop::GradStore,
    max_norm: f64,
) -> Result<()> {
    let mut norm2 = 0f64;
    for (_, v) in named {
        if let Some(g) = grads.get(v.as_tensor()) {
            norm2 += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = norm2.sqrt();
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for (_, v) in named {
            if let Some(g) = grads.get(v.as_tensor()) {
                let scaled = (g * scale)?;
                grads.insert(v.as_tensor(), scaled);
            }
        }
    }
    Ok(())
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
        "BertForSequenceClassification",
        &report.labels,
        Some("single_label_classification"),
    )?;
    let tensors = model.named_tensors();
    match model.lora() {
        None => {
            let all: HashMap<String, Tensor> = tensors
                .into_iter()
                .filter(|(n, _)| !n.ends_with("position_ids"))
                .collect();
            save_tensors(&all, &out.join("model.safetensors"))?;
        }
        Some(lora) => {
            let adapter: HashMap<String, Tensor> = tensors
                .into_iter()
                .filter(|(n, _)| n.contains(".lora_") || n.starts_with("classifier."))
                .map(|(n, t)| (format!("base_model.model.{n}"), t))
                .collect();
            save_tensors(&adapter, &out.join("adapter_model.safetensors"))?;
            write_json(
                &out.join("adapter_config.json"),
                &json!({
                    "peft_type": "LORA",
                    "task_type": "SEQ_CLS",
                    "base_model_name_or_path": job.base_model,
                    "r": lora.rank,
                    "lora_alpha": lora.alpha,
                    "lora_dropout": 0.0,
                    "target_modules": lora.target_modules,
                    "modules_to_save": ["classifier", "score"],
                    "bias": "none",
                    "fan_in_fan_out": false,
                    "inference_mode": true,
                    "init_lora_weights": true,
                    "use_rslora": false,
                    "use_dora": false,
                }),
            )?;
        }
    }
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
