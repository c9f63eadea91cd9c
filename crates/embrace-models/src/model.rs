//! [`Model`]: an architecture plus a task head, loaded from a model directory or repo id.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::config::{AutoConfig, ModelType};
use crate::encoder::PostLnEncoder;
use crate::error::{ModelError, Result};
use crate::heads::{Head, Pooling, Task, load_head};
use crate::input::{Batch, Packed, PositionRule};
use crate::modernbert::ModernBertEncoder;
use crate::weights::{Checkpoint, WeightLoader};

/// Tokens per encoder pass; bigger batches are split into groups of whole sequences.
const TOKEN_BUDGET: usize = 512;

/// The outputs of a forward pass, named as `transformers` names them.
///
/// Hidden states and per-token outputs are padded like the input batch; rows of padding
/// positions (attention mask 0) are zero, since padding is never computed.
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// `[batch, seq, hidden]`: the encoder's last layer.
    pub last_hidden_state: Tensor,
    /// `[batch, hidden]`: the pooler (dense + tanh on the first token), for base BERT-style
    /// models that have one.
    pub pooler_output: Option<Tensor>,
    /// The head's logits: `[batch, num_labels]`, `[batch, seq, num_labels]`,
    /// `[batch, seq, vocab]` or `[batch, num_choices]` depending on the task.
    pub logits: Option<Tensor>,
    /// `[batch, seq]`: question answering's span-start scores.
    pub start_logits: Option<Tensor>,
    /// `[batch, seq]`: question answering's span-end scores.
    pub end_logits: Option<Tensor>,
}

enum Encoder {
    PostLn(PostLnEncoder),
    ModernBert(ModernBertEncoder),
}

/// A model: `config.json`, an encoder and a task head.
pub struct Model {
    config: AutoConfig,
    task: Task,
    encoder: Encoder,
    head: Head,
    unused_weights: Vec<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("model_type", &self.config.model_type)
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
}

/// Finds a model directory: an existing path, or a repo id (`org/name`, optionally
/// `@revision`) in the Hugging Face cache shared with Python.
pub fn resolve_model_dir(spec: &str) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.exists() {
        return Ok(path.to_owned());
    }
    let (id, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    let not_found = |why: String| ModelError::Config(format!("model {spec:?} not found: {why}"));
    let repo = embrace_hub::RepoId::model(id)
        .map_err(|_| not_found("no such path, and it is not a repo id".into()))?;
    // The cached snapshot, else a download from HF_ENDPOINT (unless HF_HUB_OFFLINE is set).
    let hub = embrace_hub::HubClient::from_env().map_err(|e| not_found(e.to_string()))?;
    hub.resolve_snapshot(&repo, revision)
        .map_err(|e| not_found(format!("no such path, and {e}")))
}

impl Model {
    /// Loads a model for `task` from a directory with `config.json` and weights, or from a
    /// repo id in the Hugging Face cache.
    pub fn from_pretrained(spec: impl AsRef<str>, task: Task) -> Result<Self> {
        let dir = resolve_model_dir(spec.as_ref())?;
        let config = AutoConfig::from_file(&dir.join("config.json"))?;
        let checkpoint = Checkpoint::from_dir(&dir)?;
        Self::load(config, &checkpoint, task)
    }

    /// Builds a model from a parsed config and an opened checkpoint.
    ///
    /// Fails with [`ModelError::MissingWeights`] listing every tensor the model needs and the
    /// checkpoint lacks; tensors the model does not use are logged (as transformers warns) and
    /// available from [`Model::unused_weights`].
    pub fn load(config: AutoConfig, checkpoint: &Checkpoint, task: Task) -> Result<Self> {
        let loader = WeightLoader::new(checkpoint, config.model_type.base_model_prefix());
        let (encoder, word) = match config.model_type {
            ModelType::ModernBert => {
                let e = ModernBertEncoder::load(&loader, &config.encoder)?;
                let word = e.word_embeddings().to_vec();
                (Encoder::ModernBert(e), word)
            }
            kind => {
                let e = PostLnEncoder::load(&loader, kind, &config.encoder)?;
                let word = e.embeddings.word.clone();
                (Encoder::PostLn(e), word)
            }
        };
        let head = load_head(&loader, &config, task, &word)?;
        drop(word);
        let unused_weights = loader.finish()?;
        if !unused_weights.is_empty() {
            tracing::info!(
                count = unused_weights.len(),
                first = %unused_weights[0],
                "some checkpoint tensors are not used by {}{}",
                config.model_type.as_str(),
                task.class_suffix()
            );
        }
        Ok(Self {
            config,
            task,
            encoder,
            head,
            unused_weights,
        })
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> &AutoConfig {
        &self.config
    }

    /// The task the model was loaded for.
    pub fn task(&self) -> Task {
        self.task
    }

    /// Checkpoint tensors the model did not use.
    pub fn unused_weights(&self) -> &[String] {
        &self.unused_weights
    }

    fn position_rule(&self) -> PositionRule {
        match &self.encoder {
            Encoder::PostLn(e) => e.embeddings.rule,
            Encoder::ModernBert(_) => PositionRule::PaddedIndex,
        }
    }

    /// The encoder's last hidden state of the packed tokens.
    fn encode_packed(&self, packed: &Packed) -> Result<Vec<f32>> {
        let run = |part: &Packed| match &self.encoder {
            Encoder::PostLn(e) => e.forward(part),
            Encoder::ModernBert(e) => e.forward(part),
        };
        // Large batches run in groups of whole sequences, so that a layer's intermediate
        // activations stay in cache instead of streaming through memory once per operation.
        if packed.len() <= TOKEN_BUDGET {
            run(packed)
        } else {
            use rayon::prelude::*;
            let parts = packed.split(TOKEN_BUDGET);
            let outputs: Vec<Vec<f32>> = parts.par_iter().map(run).collect::<Result<_>>()?;
            Ok(outputs.concat())
        }
    }

    /// The head of a per-token task (masked LM, token classification, QA) at chosen positions
    /// only: `[positions, width]` for `(row, column)` positions of the padded batch. Fill-mask
    /// needs the vocabulary-wide logits of its mask tokens alone, not of every token.
    pub fn forward_positions(&self, batch: &Batch, positions: &[(usize, usize)]) -> Result<Tensor> {
        let Head::Token { stack } = &self.head else {
            return Err(ModelError::Input(format!(
                "forward_positions needs a per-token head, not {}",
                self.task.class_suffix()
            )));
        };
        let packed = Packed::new(batch, self.position_rule());
        let h = self.config.encoder.hidden_size;
        let mut index = vec![usize::MAX; batch.batch_size * batch.seq_len];
        for (t, &at) in packed.token_index.iter().enumerate() {
            index[at] = t;
        }
        let mut rows = Vec::with_capacity(positions.len());
        for &(r, c) in positions {
            let t = (r < batch.batch_size && c < batch.seq_len)
                .then(|| index[r * batch.seq_len + c])
                .filter(|&t| t != usize::MAX)
                .ok_or_else(|| {
                    ModelError::Input(format!("position ({r}, {c}) is not an attended token"))
                })?;
            rows.push(t);
        }
        let hidden = self.encode_packed(&packed)?;
        let gathered: Vec<f32> = rows
            .iter()
            .flat_map(|&t| hidden[t * h..(t + 1) * h].iter().copied())
            .collect();
        let width = stack.out_width(h);
        let out = stack.apply(gathered, rows.len());
        Ok(Tensor::from_vec(out, (rows.len(), width), &Device::Cpu)?)
    }

    /// Runs the model on a batch. For [`Task::MultipleChoice`] every row is one choice and the
    /// logits come back as `[rows, 1]`; use [`Model::forward_choices`] for `[batch, choices]`.
    pub fn forward(&self, batch: &Batch) -> Result<ModelOutput> {
        let packed = Packed::new(batch, self.position_rule());
        let hidden = self.encode_packed(&packed)?;
        let h = self.config.encoder.hidden_size;
        let (b, s) = (batch.batch_size, batch.seq_len);
        let last_hidden_state = scatter(&packed, &hidden, h, b, s)?;
        let mut out = ModelOutput {
            last_hidden_state,
            pooler_output: None,
            logits: None,
            start_logits: None,
            end_logits: None,
        };
        match &self.head {
            Head::Base { pooler } => {
                if let Some(pooler) = pooler {
                    let first = pool(&packed, &hidden, h, Pooling::First);
                    let pooled = pooler.apply(first, b);
                    out.pooler_output = Some(Tensor::from_vec(pooled, (b, h), &Device::Cpu)?);
                }
            }
            Head::Sequence { pooling, stack } => {
                let pooled = pool(&packed, &hidden, h, *pooling);
                let width = stack.out_width(h);
                let logits = stack.apply(pooled, b);
                out.logits = Some(Tensor::from_vec(logits, (b, width), &Device::Cpu)?);
            }
            Head::Token { stack } => {
                let width = stack.out_width(h);
                let logits = stack.apply(hidden, packed.len());
                if self.task == Task::QuestionAnswering {
                    let both = scatter(&packed, &logits, 2, b, s)?;
                    out.start_logits = Some(both.narrow(2, 0, 1)?.squeeze(2)?);
                    out.end_logits = Some(both.narrow(2, 1, 1)?.squeeze(2)?);
                } else {
                    out.logits = Some(scatter(&packed, &logits, width, b, s)?);
                }
            }
        }
        Ok(out)
    }

    /// Runs a multiple-choice model on `batch_size * num_choices` rows (the choices of one
    /// example consecutive) and returns logits `[batch_size, num_choices]`.
    pub fn forward_choices(&self, batch: &Batch, num_choices: usize) -> Result<ModelOutput> {
        if num_choices == 0 || !batch.batch_size.is_multiple_of(num_choices) {
            return Err(ModelError::Input(format!(
                "{} rows are not a whole number of examples with {num_choices} choices",
                batch.batch_size
            )));
        }
        let mut out = self.forward(batch)?;
        if let Some(logits) = out.logits.take() {
            out.logits = Some(logits.reshape((batch.batch_size / num_choices, num_choices))?);
        }
        Ok(out)
    }
}

/// One vector per sequence from packed hidden states.
fn pool(packed: &Packed, hidden: &[f32], h: usize, pooling: Pooling) -> Vec<f32> {
    let mut out = vec![0.0f32; packed.sequences.len() * h];
    for (row, range) in out.chunks_exact_mut(h).zip(&packed.sequences) {
        if range.is_empty() {
            continue;
        }
        match pooling {
            Pooling::First => row.copy_from_slice(&hidden[range.start * h..(range.start + 1) * h]),
            Pooling::Mean => {
                for t in range.clone() {
                    row.iter_mut()
                        .zip(&hidden[t * h..(t + 1) * h])
                        .for_each(|(a, x)| *a += x);
                }
                let n = range.len() as f32;
                row.iter_mut().for_each(|a| *a /= n);
            }
        }
    }
    out
}

/// Packed rows `[tokens, width]` back into a padded `[batch, seq, width]` tensor.
fn scatter(
    packed: &Packed,
    rows: &[f32],
    width: usize,
    batch: usize,
    seq: usize,
) -> Result<Tensor> {
    let mut out = vec![0.0f32; batch * seq * width];
    for (t, &at) in packed.token_index.iter().enumerate() {
        out[at * width..(at + 1) * width].copy_from_slice(&rows[t * width..(t + 1) * width]);
    }
    Ok(Tensor::from_vec(out, (batch, seq, width), &Device::Cpu)?)
}
