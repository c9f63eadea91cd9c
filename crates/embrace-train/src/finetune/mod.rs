//! Fine-tuning the encoder itself: every weight (full fine-tuning) or LoRA adapters (PEFT's
//! format), on the differentiable BERT of [`crate::autograd`].
//!
//! One training loop ([`train_loop`]) serves every task: seeded shuffling, gradient
//! accumulation, clipping, AdamW with decay groups, the learning-rate schedule, logging,
//! checkpoints and resuming, validation after every epoch with the best epoch kept, and early
//! stopping. A task ([`FineTuneTask`]) only says how to batch its examples and how to score the
//! model on its validation set.
//!
//! Full fine-tuning writes a complete `transformers` folder; LoRA writes a PEFT adapter folder
//! (`adapter_config.json` + `adapter_model.safetensors`, keys `base_model.model.<name>`) that
//! Python `peft` loads on top of the base model, and that Embrace's pipelines load by merging
//! the update into the base weights.

mod text;
mod token;

pub use text::fine_tune_text_classification;
pub use token::fine_tune_token_classification;

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use embrace_models::{AutoConfig, ModelType};
use serde_json::{Map, Value, json};

use crate::args::TrainingArguments;
use crate::autograd::{DropoutRates, LoraSettings, TrainBatch, TrainHead, TrainableBert};
use crate::checkpoint::{self, TrainerState};
use crate::error::{Result, TrainError};
use crate::optim::{AdamW, AdamWParams};
use crate::output::{append_log, save_tensors, start_log, write_json};
use crate::rng::Rng;

/// How the encoder is adapted.
#[derive(Debug, Clone, PartialEq)]
pub enum Adaptation {
    /// Every parameter trains.
    Full,
    /// LoRA adapters train (plus the classifier); the base weights stay frozen.
    Lora(LoraSettings),
}

/// A validation result: the score the best epoch is chosen by, the fields of its log entry,
/// and the metrics kept with the best epoch.
pub(crate) struct Evaluation {
    /// Higher is better.
    pub(crate) score: f64,
    /// Logged as `{..fields, "epoch", "step"}`.
    pub(crate) log: Map<String, Value>,
    /// Stored as the best epoch's metrics (`TrainerState::best_metrics`).
    pub(crate) metrics: Value,
}

/// What the training loop needs to know about a task.
pub(crate) trait FineTuneTask {
    /// Number of training examples.
    fn train_len(&self) -> usize;
    /// A padded batch of the given training examples, with its labels in the form
    /// [`TrainableBert::loss`] takes for the model's head.
    fn train_batch(&self, rows: &[usize]) -> Result<(TrainBatch, Tensor)>;
    /// The model's score on the validation set, if the task has one.
    fn validate(&self, model: &TrainableBert) -> Result<Option<Evaluation>>;
}

/// Examples per evaluation batch.
const EVAL_BATCH: usize = 64;

/// A right-padded batch of the given token sequences (segment 0; mask 1 on tokens, 0 on
/// padding) and its width.
pub(crate) fn padded_batch(seqs: &[&[u32]], pad: u32) -> Result<(TrainBatch, usize)> {
    let width = seqs.iter().map(|s| s.len()).max().unwrap_or(1).max(1);
    let n = seqs.len();
    let mut ids = Vec::with_capacity(n * width);
    let mut mask = Vec::with_capacity(n * width);
    for seq in seqs {
        let fill = width - seq.len();
        ids.extend_from_slice(seq);
        ids.extend(std::iter::repeat_n(pad, fill));
        mask.extend(std::iter::repeat_n(1f32, seq.len()));
        mask.extend(std::iter::repeat_n(0f32, fill));
    }
    let dev = Device::Cpu;
    let batch = TrainBatch {
        input_ids: Tensor::from_vec(ids, (n, width), &dev)?,
        token_type_ids: Tensor::zeros((n, width), DType::U32, &dev)?,
        attention_mask: Tensor::from_vec(mask, (n, width), &dev)?,
    };
    Ok((batch, width))
}

/// Evaluation batches: example indices sorted by length (so little padding is computed), in
/// chunks of [`EVAL_BATCH`].
pub(crate) fn eval_batches(ids: &[Vec<u32>]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    order.chunks(EVAL_BATCH).map(<[usize]>::to_vec).collect()
}

/// What a finished loop leaves besides the trained model (which holds the best epoch's weights
/// when there was a validation set).
pub(crate) struct LoopOutcome {
    /// Every log entry, ending with `{"best_epoch": n}` when a best epoch was restored.
    pub(crate) log_history: Vec<Value>,
    /// The best epoch's validation metrics.
    pub(crate) best_metrics: Option<Value>,
    /// Seconds spent in the loop.
    pub(crate) train_seconds: f64,
}

/// Checks that the base is a BERT checkpoint the training model supports and that the
/// sequence length fits, then loads it with a `head` for `num_labels`, the config's dropout
/// (`TrainingArguments::dropout` overrides the classifier's) and, for LoRA, the adapters.
pub(crate) fn load_trainable(
    base_dir: &Path,
    config: &AutoConfig,
    head: TrainHead,
    num_labels: usize,
    adaptation: &Adaptation,
    args: &TrainingArguments,
) -> Result<TrainableBert> {
    if args.per_device_train_batch_size == 0 || args.num_train_epochs == 0 {
        return Err(TrainError::Config(
            "batch size and epochs must be at least 1".into(),
        ));
    }
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
    let weights = base_dir.join("model.safetensors");
    let mut model = TrainableBert::from_safetensors(
        &weights,
        config.encoder.clone(),
        head,
        num_labels,
        args.seed,
    )?;
    let mut dropout = DropoutRates::from_config(&config.raw);
    if let Some(p) = args.dropout {
        dropout.classifier = p;
    }
    model.set_dropout(dropout);
    if let Adaptation::Lora(settings) = adaptation {
        model.add_lora(settings.clone(), args.seed)?;
    }
    Ok(model)
}

/// Trains `model` on `task` as `args` say, writing the JSONL log and checkpoints under
/// `output_dir`. With a validation set, the best epoch's weights are restored at the end.
pub(crate) fn train_loop(
    model: &TrainableBert,
    args: &TrainingArguments,
    output_dir: &Path,
    task: &dyn FineTuneTask,
) -> Result<LoopOutcome> {
    let named: Vec<(String, Var)> = model
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

    let n = task.train_len();
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
        let dir = checkpoint::resolve(spec, output_dir)?;
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
        start_log(output_dir)?;
    }
    let snapshot = |named: &[(String, Var)]| -> HashMap<String, Tensor> {
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
        let mut accumulated: Option<GradStore> = None;
        for (b, chunk) in chunks.iter().enumerate().skip(state.batches_done_in_epoch) {
            let (batch, y) = task.train_batch(chunk)?;
            let loss = model.training_loss(&batch, &y, dropout_seed(args.seed, epoch, b))?;
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
                append_log(output_dir, &entry)?;
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
                    output_dir,
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
        if let Some(evaluation) = task.validate(model)? {
            let mut entry = evaluation.log;
            entry.insert("epoch".into(), json!(epoch + 1));
            entry.insert("step".into(), json!(state.global_step));
            let entry = Value::Object(entry);
            tracing::info!(%entry, "validation");
            append_log(output_dir, &entry)?;
            state.log_history.push(entry);
            if state.best_metric.is_none_or(|best| evaluation.score > best) {
                best_weights = Some(
                    named
                        .iter()
                        .map(|(_, v)| v.as_tensor().copy())
                        .collect::<candle_core::Result<Vec<_>>>()?,
                );
                state.best_metric = Some(evaluation.score);
                state.best_epoch = Some(epoch + 1);
                state.best_metrics = Some(evaluation.metrics);
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
    let mut best_metrics = None;
    if let (Some(weights), Some(epoch)) = (best_weights, state.best_epoch) {
        for ((_, var), value) in named.iter().zip(weights) {
            var.set(&value)?;
        }
        log_history.push(json!({"best_epoch": epoch}));
        best_metrics = state.best_metrics;
    }
    Ok(LoopOutcome {
        log_history,
        best_metrics,
        train_seconds,
    })
}

/// The seed of a micro-batch's dropout masks: a function of the run's seed and the batch's
/// place, so that a resumed run draws the masks the interrupted one would have drawn.
fn dropout_seed(seed: u64, epoch: usize, batch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((epoch as u64) << 32 | batch as u64)
}

/// Scales the gradients so that their global L2 norm is at most `max_norm`
/// (`torch.nn.utils.clip_grad_norm_`).
fn clip_gradients(named: &[(String, Var)], grads: &mut GradStore, max_norm: f64) -> Result<()> {
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

/// The trained weights: every tensor in `model.safetensors` (full fine-tuning), or the LoRA
/// matrices and the classifier as a PEFT adapter (`adapter_model.safetensors` under
/// `base_model.model.` plus `adapter_config.json` with the head's `task_type`).
pub(crate) fn write_trained_weights(
    out: &Path,
    base_model: &str,
    model: &TrainableBert,
) -> Result<()> {
    let tensors = model.named_tensors();
    match model.lora() {
        None => {
            let all: HashMap<String, Tensor> = tensors
                .into_iter()
                .filter(|(n, _)| !n.ends_with("position_ids"))
                .collect();
            save_tensors(&all, &out.join("model.safetensors"))
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
                    "task_type": model.head().peft_task_type(),
                    "base_model_name_or_path": base_model,
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
            )
        }
    }
}
