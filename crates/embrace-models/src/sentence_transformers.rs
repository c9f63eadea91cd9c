//! sentence-transformers models: `modules.json` pipelines of a transformer, pooling, dense
//! layers and normalisation, producing one embedding per sentence.
//!
//! Both the legacy module names (`sentence_transformers.models.Pooling`) and those of
//! sentence-transformers 5+/6 (`sentence_transformers.sentence_transformer.modules.pooling.Pooling`,
//! `sentence_transformers.base.modules.dense.Dense`, …) are understood, as are both pooling
//! configurations (`pooling_mode_*_tokens` booleans, or `pooling_mode` names).

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use embrace_tokenizers::{Tokenizer, TruncationParams};
use serde_json::Value;

use crate::activation::Activation;
use crate::error::{ModelError, Result};
use crate::heads::Task;
use crate::input::Batch;
use crate::layers::{Linear, Scope};
use crate::model::{Model, resolve_model_dir};
use crate::weights::{Checkpoint, WeightLoader};

/// A pooling strategy of the `Pooling` module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolingMode {
    /// The first attended token.
    Cls,
    /// The element-wise maximum over attended tokens.
    Max,
    /// The mean over attended tokens.
    Mean,
    /// The sum over attended tokens divided by the square root of their number.
    MeanSqrtLen,
    /// A mean weighted by position (1, 2, 3, …).
    WeightedMean,
    /// The last attended token.
    LastToken,
}

impl PoolingMode {
    /// Legacy boolean keys, in the order sentence-transformers concatenates the modes.
    const LEGACY: [(&'static str, PoolingMode); 6] = [
        ("pooling_mode_cls_token", PoolingMode::Cls),
        ("pooling_mode_max_tokens", PoolingMode::Max),
        ("pooling_mode_mean_tokens", PoolingMode::Mean),
        (
            "pooling_mode_mean_sqrt_len_tokens",
            PoolingMode::MeanSqrtLen,
        ),
        (
            "pooling_mode_weightedmean_tokens",
            PoolingMode::WeightedMean,
        ),
        ("pooling_mode_lasttoken", PoolingMode::LastToken),
    ];

    fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "cls" => Self::Cls,
            "max" => Self::Max,
            "mean" => Self::Mean,
            "mean_sqrt_len_tokens" => Self::MeanSqrtLen,
            "weightedmean" => Self::WeightedMean,
            "lasttoken" => Self::LastToken,
            other => {
                return Err(ModelError::Config(format!(
                    "unknown pooling mode `{other}`; supported: cls, max, mean, \
                     mean_sqrt_len_tokens, weightedmean, lasttoken"
                )));
            }
        })
    }
}

/// One module of the pipeline after the transformer.
#[derive(Debug)]
enum Module {
    Pooling(Vec<PoolingMode>),
    Dense(Linear, Activation),
    Normalize,
}

/// A sentence-transformers model: transformer, tokenizer, and the modules after them.
pub struct SentenceTransformer {
    model: Model,
    tokenizer: Tokenizer,
    modules: Vec<Module>,
    max_seq_length: usize,
    pad_id: u32,
}

impl std::fmt::Debug for SentenceTransformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceTransformer")
            .field("model", &self.model)
            .field("modules", &self.modules)
            .field("max_seq_length", &self.max_seq_length)
            .finish()
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ModelError::Json {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn safe_join(dir: &Path, rel: &str, listing: &Path) -> Result<PathBuf> {
    let rel_path = Path::new(rel);
    if rel_path.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    }) {
        return Err(ModelError::Json {
            path: listing.to_owned(),
            message: format!("module path `{rel}` leaves the model folder"),
        });
    }
    Ok(dir.join(rel_path))
}

impl SentenceTransformer {
    /// Loads a sentence-transformers model from a directory with `modules.json`, or a repo id
    /// in the Hugging Face cache. A plain transformers model directory (no `modules.json`) gets
    /// mean pooling, as sentence-transformers does.
    pub fn from_pretrained(spec: impl AsRef<str>) -> Result<Self> {
        let dir = resolve_model_dir(spec.as_ref())?;
        let listing = dir.join("modules.json");
        let mut transformer_dir = dir.clone();
        let mut modules = Vec::new();
        if listing.is_file() {
            let Value::Array(entries) = read_json(&listing)? else {
                return Err(ModelError::Json {
                    path: listing,
                    message: "expected a list of modules".into(),
                });
            };
            for (i, entry) in entries.iter().enumerate() {
                let kind = entry
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let path = entry
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let module_dir = safe_join(&dir, path, &listing)?;
                let class = kind.rsplit('.').next().unwrap_or_default();
                match class {
                    "Transformer" if i == 0 => transformer_dir = module_dir,
                    "Pooling" => modules.push(Module::Pooling(pooling_modes(
                        &module_dir.join("config.json"),
                    )?)),
                    "Dense" => modules.push(dense(&module_dir)?),
                    "Normalize" => modules.push(Module::Normalize),
                    _ => {
                        return Err(ModelError::Config(format!(
                            "{}: module {i} has type `{kind}`; supported: a first Transformer, then \
                             Pooling, Dense and Normalize",
                            listing.display()
                        )));
                    }
                }
            }
        } else {
            modules.push(Module::Pooling(vec![PoolingMode::Mean]));
        }
        let model = Model::from_pretrained(transformer_dir.to_string_lossy(), Task::Base)?;
        let mut tokenizer = Tokenizer::from_path(&transformer_dir).map_err(|e| {
            ModelError::Config(format!("tokenizer of {}: {e}", transformer_dir.display()))
        })?;
        let max_seq_length = max_seq_length(&transformer_dir, &model)?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_length,
                direction: Default::default(),
                strategy: Default::default(),
                stride: 0,
            }))
            .map_err(|e| ModelError::Config(format!("truncation: {e}")))?;
        let pad_id = model.config().encoder.pad_token_id;
        Ok(Self {
            model,
            tokenizer,
            modules,
            max_seq_length,
            pad_id,
        })
    }

    /// The transformer.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The tokenizer, with truncation at [`max_seq_length`](Self::max_seq_length) and no
    /// padding.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The number of tokens an input is truncated to.
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// Embeds sentences: `[sentences, dimension]`, in input order. Inputs are sorted by length
    /// and run in batches of `batch_size` so that similar lengths share a batch.
    pub fn encode(&self, sentences: &[&str], batch_size: usize) -> Result<Tensor> {
        let ids = self
            .tokenizer
            .encode_ids_batch(sentences, true)
            .map_err(|e| ModelError::Input(e.to_string()))?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut rows: Vec<Option<Vec<f32>>> = vec![None; ids.len()];
        let mut width = 0;
        for chunk in order.chunks(batch_size.max(1)) {
            let seqs: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            let batch = Batch::from_sequences(&seqs, None, self.pad_id)?;
            let embeddings = self.embed(&batch)?;
            width = embeddings.dim(1)?;
            for (&i, row) in chunk.iter().zip(embeddings.to_vec2::<f32>()?) {
                rows[i] = Some(row);
            }
        }
        let flat: Vec<f32> = rows.into_iter().flatten().flatten().collect();
        Ok(Tensor::from_vec(
            flat,
            (sentences.len(), width),
            &Device::Cpu,
        )?)
    }

    /// Runs the pipeline on a tokenized batch: `[batch, dimension]`.
    pub fn embed(&self, batch: &Batch) -> Result<Tensor> {
        let out = self.model.forward(batch)?;
        let (b, s, h) = out.last_hidden_state.dims3()?;
        let hidden = out.last_hidden_state.flatten_all()?.to_vec1::<f32>()?;
        let mut x: Vec<f32> = Vec::new();
        let mut width = h;
        let mut pooled = false;
        for module in &self.modules {
            match module {
                Module::Pooling(modes) => {
                    x = pool(&hidden, &batch.attention_mask, b, s, h, modes);
                    width = h * modes.len();
                    pooled = true;
                }
                Module::Dense(linear, act) => {
                    if !pooled || linear.inp != width {
                        return Err(ModelError::Config(format!(
                            "Dense module expects {} inputs but gets {width}",
                            linear.inp
                        )));
                    }
                    x = linear.forward(&x, b, *act);
                    width = linear.out;
                }
                Module::Normalize => {
                    for row in x.chunks_exact_mut(width.max(1)) {
                        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                        row.iter_mut().for_each(|v| *v /= norm);
                    }
                }
            }
        }
        if !pooled {
            return Err(ModelError::Config(
                "modules.json has no Pooling module".into(),
            ));
        }
        Ok(Tensor::from_vec(x, (b, width), &Device::Cpu)?)
    }
}

/// `sentence_bert_config.json`'s `max_seq_length`, else the smaller of the tokenizer's
/// `model_max_length` and the model's positions (as sentence-transformers decides).
fn max_seq_length(dir: &Path, model: &Model) -> Result<usize> {
    let positions = model.config().encoder.max_position_embeddings;
    let st = dir.join("sentence_bert_config.json");
    if st.is_file()
        && let Some(n) = read_json(&st)?
            .get("max_seq_length")
            .and_then(Value::as_u64)
    {
        return Ok(n as usize);
    }
    let tc = dir.join("tokenizer_config.json");
    if tc.is_file()
        && let Some(n) = read_json(&tc)?
            .get("model_max_length")
            .and_then(Value::as_u64)
    {
        return Ok((n as usize).min(positions));
    }
    Ok(positions)
}

fn pooling_modes(path: &Path) -> Result<Vec<PoolingMode>> {
    let config = read_json(path)?;
    match config.get("pooling_mode") {
        Some(Value::String(name)) => return Ok(vec![PoolingMode::parse(name)?]),
        Some(Value::Array(names)) => {
            return names
                .iter()
                .map(|n| PoolingMode::parse(n.as_str().unwrap_or_default()))
                .collect();
        }
        _ => {}
    }
    let modes: Vec<PoolingMode> = PoolingMode::LEGACY
        .iter()
        .filter(|(key, _)| config.get(*key).and_then(Value::as_bool).unwrap_or(false))
        .map(|(_, mode)| *mode)
        .collect();
    Ok(if modes.is_empty() {
        vec![PoolingMode::Mean]
    } else {
        modes
    })
}

fn dense(dir: &Path) -> Result<Module> {
    let config = read_json(&dir.join("config.json"))?;
    let get = |key: &str| config.get(key).and_then(Value::as_u64).map(|n| n as usize);
    let (Some(inp), Some(out)) = (get("in_features"), get("out_features")) else {
        return Err(ModelError::Json {
            path: dir.join("config.json"),
            message: "Dense needs in_features and out_features".into(),
        });
    };
    let bias = config.get("bias").and_then(Value::as_bool).unwrap_or(true);
    let act_name = config
        .get("activation_function")
        .and_then(Value::as_str)
        .unwrap_or("torch.nn.modules.activation.Tanh");
    let act = match act_name.rsplit('.').next().unwrap_or_default() {
        "Tanh" => Activation::Tanh,
        "Identity" => Activation::Identity,
        "ReLU" => Activation::Relu,
        "GELU" => Activation::Gelu,
        "Sigmoid" => Activation::Sigmoid,
        "SiLU" => Activation::Silu,
        other => {
            return Err(ModelError::Config(format!(
                "Dense activation `{other}` is not supported (Tanh, Identity, ReLU, GELU, Sigmoid, SiLU)"
            )));
        }
    };
    let checkpoint = Checkpoint::from_dir(dir)?;
    let loader = WeightLoader::new(&checkpoint, "linear");
    let linear = Linear::load(&loader, Scope::Head, "linear", inp, out, bias)?;
    loader.finish()?;
    Ok(Module::Dense(linear, act))
}

/// Pools padded hidden states `[b, s, h]` with the attention mask; modes are concatenated.
fn pool(
    hidden: &[f32],
    mask: &[u32],
    b: usize,
    s: usize,
    h: usize,
    modes: &[PoolingMode],
) -> Vec<f32> {
    let width = h * modes.len();
    let mut out = vec![0.0f32; b * width];
    for row in 0..b {
        let tokens: Vec<usize> = (0..s).filter(|&t| mask[row * s + t] != 0).collect();
        let vector = |t: usize| &hidden[(row * s + t) * h..(row * s + t + 1) * h];
        for (m, mode) in modes.iter().enumerate() {
            let dst = &mut out[row * width + m * h..row * width + (m + 1) * h];
            match mode {
                PoolingMode::Cls => {
                    if let Some(&t) = tokens.first() {
                        dst.copy_from_slice(vector(t));
                    }
                }
                PoolingMode::LastToken => {
                    if let Some(&t) = tokens.last() {
                        dst.copy_from_slice(vector(t));
                    }
                }
                PoolingMode::Max => {
                    dst.fill(f32::NEG_INFINITY);
                    for &t in &tokens {
                        dst.iter_mut()
                            .zip(vector(t))
                            .for_each(|(a, x)| *a = a.max(*x));
                    }
                }
                PoolingMode::Mean | PoolingMode::MeanSqrtLen | PoolingMode::WeightedMean => {
                    let mut total = 0.0f32;
                    for (i, &t) in tokens.iter().enumerate() {
                        let w = if *mode == PoolingMode::WeightedMean {
                            (i + 1) as f32
                        } else {
                            1.0
                        };
                        total += w;
                        dst.iter_mut().zip(vector(t)).for_each(|(a, x)| *a += w * x);
                    }
                    let denominator = match mode {
                        PoolingMode::MeanSqrtLen => total.max(1e-9).sqrt(),
                        _ => total.max(1e-9),
                    };
                    dst.iter_mut().for_each(|a| *a /= denominator);
                }
            }
        }
    }
    out
}
