//! A BERT encoder with a sequence- or token-classification head built from candle's
//! differentiable operations, so that every weight can be trained (full fine-tuning) and
//! gradients flow to the input of every layer (the basis of adapters such as LoRA).
//!
//! The inference kernels of `embrace-models` are faster but compute no gradients; this module
//! mirrors `transformers`' `BertForSequenceClassification` and `BertForTokenClassification`
//! operation by operation instead, and its gradients are checked against PyTorch (golden files
//! from `tools/oracle/gen_train.py`).
//! Parameters keep their `transformers` names (`bert.encoder.layer.0.attention.self.query.weight`),
//! so a trained model saves to a checkpoint `transformers` loads.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use embrace_models::activation::Activation;
use embrace_models::config::EncoderConfig;
use embrace_models::cpu::MatrixView;

use crate::error::{Result, TrainError};

/// The task head on the encoder, as `transformers` builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainHead {
    /// `BertForSequenceClassification`: the pooler (tanh of a dense layer on the first token)
    /// and a classifier; logits `[batch, labels]`, one label per sequence.
    Sequence,
    /// `BertForTokenClassification`: a classifier on every token's state (no pooler); logits
    /// `[batch, seq, labels]`, one label per token, `-100` for tokens without one.
    Token,
}

impl TrainHead {
    /// The `transformers` class of a model with this head.
    pub fn architecture(self) -> &'static str {
        match self {
            TrainHead::Sequence => "BertForSequenceClassification",
            TrainHead::Token => "BertForTokenClassification",
        }
    }

    /// PEFT's `task_type` for an adapter on this head.
    pub fn peft_task_type(self) -> &'static str {
        match self {
            TrainHead::Sequence => "SEQ_CLS",
            TrainHead::Token => "TOKEN_CLS",
        }
    }
}

/// The label `transformers` ignores in a token-classification loss.
pub const IGNORED_LABEL: i64 = -100;

/// Dropout probabilities in training mode, as `transformers`' BERT applies them: `hidden` after
/// the embeddings and after each attention-output and feed-forward projection (before the
/// residual sum), `attention` on the attention probabilities, `classifier` before the
/// classifier. All zero means no dropout.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DropoutRates {
    /// `hidden_dropout_prob`.
    pub hidden: f64,
    /// `attention_probs_dropout_prob`.
    pub attention: f64,
    /// `classifier_dropout`, or `hidden_dropout_prob` when the config has none.
    pub classifier: f64,
}

impl DropoutRates {
    /// The rates of a `config.json` (transformers' BERT defaults, 0.1, for missing keys).
    pub fn from_config(raw: &serde_json::Map<String, serde_json::Value>) -> Self {
        let rate = |key: &str| raw.get(key).and_then(serde_json::Value::as_f64);
        let hidden = rate("hidden_dropout_prob").unwrap_or(0.1);
        Self {
            hidden,
            attention: rate("attention_probs_dropout_prob").unwrap_or(0.1),
            classifier: rate("classifier_dropout").unwrap_or(hidden),
        }
    }
}

/// Seeded dropout masks for one forward pass (the same seed gives the same masks, so a
/// resumed run repeats the interrupted one).
struct DropoutMasks {
    rates: DropoutRates,
    rng: crate::rng::Rng,
}

/// `x` through dropout at the rate `rate` picks from `masks` (unchanged without masks).
fn dropout(
    masks: &mut Option<&mut DropoutMasks>,
    x: Tensor,
    rate: fn(&DropoutRates) -> f64,
) -> Result<Tensor> {
    match masks.as_deref_mut() {
        Some(m) => {
            let p = rate(&m.rates);
            m.apply(&x, p)
        }
        None => Ok(x),
    }
}

impl DropoutMasks {
    /// The dropout operation for rate `p` with the next seed, or none for `p <= 0` (which
    /// draws no seed).
    fn op(&mut self, p: f64) -> Option<Dropout> {
        (p > 0.0).then(|| Dropout {
            p: p.min(1.0),
            seed: self.rng.next_u64(),
        })
    }

    /// Zeroes each element with probability `p` and scales the others by `1 / (1 - p)`.
    fn apply(&mut self, x: &Tensor, p: f64) -> Result<Tensor> {
        if p >= 1.0 {
            return Ok(x.zeros_like()?);
        }
        match self.op(p) {
            Some(op) => Ok(x.contiguous()?.apply_op1(op)?),
            None => Ok(x.clone()),
        }
    }
}

/// Elements per independently seeded run of the dropout mask.
const DROPOUT_CHUNK: usize = 4096;

/// Dropout as one operation whose mask is never stored: the forward pass and the backward pass
/// draw the same mask from `seed` (chunk `k` of the flattened tensor from its own generator,
/// seeded by `seed` and `k`, so the mask does not depend on how chunks are spread over threads),
/// and the gradient is `grad · mask`.
pub(crate) struct Dropout {
    p: f64,
    seed: u64,
}

impl Dropout {
    /// `x · mask`, the mask holding `0` with probability `p` and `1 / (1 - p)` otherwise.
    pub(crate) fn apply(&self, x: &[f32]) -> Vec<f32> {
        let keep = (1.0 / (1.0 - self.p)) as f32;
        // One 64-bit draw gives four 16-bit uniforms, each compared with p·2¹⁶ (the drop
        // probability is p to within 2⁻¹⁶; a draw per element was most of dropout's time).
        let threshold = (self.p * 65_536.0).round() as u64;
        embrace_models::cpu::par_fill(x.len(), DROPOUT_CHUNK, |start, out| {
            let k = start / DROPOUT_CHUNK;
            let mut rng =
                crate::rng::Rng::new(self.seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let src = &x[start..start + out.len()];
            for (quad, values) in out.chunks_mut(4).zip(src.chunks(4)) {
                let bits = rng.next_u64();
                for (j, (o, &v)) in quad.iter_mut().zip(values).enumerate() {
                    let draw = (bits >> (16 * j)) & 0xFFFF;
                    // Without a branch (a 10% drop rate mispredicts): the value's bits are
                    // cleared for a dropped element, giving exactly 0.0.
                    let kept = u32::from(draw >= threshold).wrapping_neg();
                    *o = f32::from_bits(v.to_bits() & kept) * keep;
                }
            }
        })
    }
}

impl candle_core::CustomOp1 for Dropout {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        Ok((
            candle_core::CpuStorage::F32(self.apply(x)),
            layout.shape().clone(),
        ))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let same = Dropout {
            p: self.p,
            seed: self.seed,
        };
        Ok(Some(grad_res.contiguous()?.apply_op1(same)?))
    }
}

/// `BertFor{Sequence,Token}Classification` parameters by `transformers` name, each either
/// trainable (a [`Var`]) or frozen (a plain tensor, which costs no gradient), plus optional LoRA
/// adapters.
pub struct TrainableBert {
    config: EncoderConfig,
    head: TrainHead,
    dropout: DropoutRates,
    params: BTreeMap<String, Var>,
    frozen: BTreeMap<String, Tensor>,
    lora: Option<LoraSettings>,
}

/// LoRA settings as PEFT's `LoraConfig` names them.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSettings {
    /// Rank `r` of the update `B·A`.
    pub rank: usize,
    /// `lora_alpha`: the update is scaled by `alpha / r`.
    pub alpha: f64,
    /// Linear layers that get an adapter, by their last name part (`query`, `value`, ...).
    pub target_modules: Vec<String>,
}

impl LoraSettings {
    /// The scale of the update, `alpha / r`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }
}

/// A padded batch for the trainable model.
pub struct TrainBatch {
    /// Token ids, `u32 [batch, seq]`.
    pub input_ids: Tensor,
    /// Segment ids, `u32 [batch, seq]`.
    pub token_type_ids: Tensor,
    /// 1 for real tokens, 0 for padding, `f32 [batch, seq]`.
    pub attention_mask: Tensor,
}

impl TrainableBert {
    /// Loads every tensor of a BERT `model.safetensors` as a trainable variable (f32). A base
    /// checkpoint without a `classifier` for `num_labels` outputs gets a new one, initialised as
    /// `transformers` does (normal(0, 0.02), zero bias). A token-classification head has no
    /// pooler: the checkpoint's pooler, if any, is left out (as `transformers` leaves it).
    pub fn from_safetensors(
        path: &Path,
        config: EncoderConfig,
        head: TrainHead,
        num_labels: usize,
        seed: u64,
    ) -> Result<Self> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)?;
        let mut params = BTreeMap::new();
        for (name, tensor) in tensors {
            let name = if name.starts_with("bert.") || name.starts_with("classifier.") {
                name
            } else {
                format!("bert.{name}")
            };
            // Legacy gamma/beta names of old checkpoints.
            let name = name
                .replace("LayerNorm.gamma", "LayerNorm.weight")
                .replace("LayerNorm.beta", "LayerNorm.bias");
            if head == TrainHead::Token && name.starts_with("bert.pooler.") {
                continue;
            }
            params.insert(name, Var::from_tensor(&tensor.to_dtype(DType::F32)?)?);
        }
        // A new classifier when the checkpoint has none, or one for another number of labels.
        let fits = params
            .get("classifier.weight")
            .is_some_and(|w| w.as_tensor().dims().first() == Some(&num_labels));
        if !fits {
            let h = config.hidden_size;
            let mut rng = crate::rng::Rng::new(seed);
            let w: Vec<f32> = (0..num_labels * h)
                .map(|_| (rng.normal() * 0.02) as f32)
                .collect();
            params.insert(
                "classifier.weight".into(),
                Var::from_tensor(&Tensor::from_vec(w, (num_labels, h), &Device::Cpu)?)?,
            );
            params.insert(
                "classifier.bias".into(),
                Var::zeros(num_labels, DType::F32, &Device::Cpu)?,
            );
        }
        let model = Self {
            config,
            head,
            dropout: DropoutRates::default(),
            params,
            frozen: BTreeMap::new(),
            lora: None,
        };
        for layer in 0..model.config.num_layers {
            model.get(&format!(
                "bert.encoder.layer.{layer}.attention.self.query.weight"
            ))?;
        }
        if head == TrainHead::Sequence {
            model.get("bert.pooler.dense.weight")?;
        }
        Ok(model)
    }

    fn get(&self, name: &str) -> Result<&Tensor> {
        self.params
            .get(name)
            .map(|v| v.as_tensor())
            .or_else(|| self.frozen.get(name))
            .ok_or_else(|| TrainError::Config(format!("the checkpoint has no tensor {name}")))
    }

    /// The trainable variables with their names.
    pub fn named_vars(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.params.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Every tensor (trainable or frozen) with its name, for saving.
    pub fn named_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut all: BTreeMap<String, Tensor> = self.frozen.clone();
        for (n, v) in &self.params {
            all.insert(n.clone(), v.as_tensor().clone());
        }
        all
    }

    /// Sets the dropout of [`Self::training_loss`] (none by default).
    pub fn set_dropout(&mut self, rates: DropoutRates) {
        self.dropout = rates;
    }

    /// The task head.
    pub fn head(&self) -> TrainHead {
        self.head
    }

    /// The LoRA settings, if adapters were added.
    pub fn lora(&self) -> Option<&LoraSettings> {
        self.lora.as_ref()
    }

    /// Freezes every parameter except those whose name satisfies `keep`.
    pub fn freeze_except(&mut self, keep: impl Fn(&str) -> bool) {
        let names: Vec<String> = self.params.keys().filter(|n| !keep(n)).cloned().collect();
        for name in names {
            if let Some(var) = self.params.remove(&name) {
                self.frozen.insert(name, var.as_tensor().detach());
            }
        }
    }

    /// Adds LoRA adapters to the target linear layers of every encoder layer, as PEFT does:
    /// `A` (`r × in`) from a Kaiming-uniform draw (bound `1/sqrt(in)`), `B` (`out × r`) zeros, so the
    /// model is unchanged until training moves `B`. Then freezes everything except the adapters
    /// and the classifier (PEFT's `modules_to_save` for sequence and token classification).
    pub fn add_lora(&mut self, settings: LoraSettings, seed: u64) -> Result<()> {
        if settings.rank == 0 {
            return Err(TrainError::Config("LoRA rank must be at least 1".into()));
        }
        let mut rng = crate::rng::Rng::new(seed);
        for layer in 0..self.config.num_layers {
            for target in &settings.target_modules {
                let prefix = lora_prefix(layer, target).ok_or_else(|| {
                    TrainError::Config(format!("unknown LoRA target module {target:?} (use query, key, value, attention.output.dense, intermediate.dense or output.dense)"))
                })?;
                let (out_dim, in_dim) = self.get(&format!("{prefix}.weight"))?.dims2()?;
                let bound = 1.0 / (in_dim as f64).sqrt();
                let a: Vec<f32> = (0..settings.rank * in_dim)
                    .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
                    .collect();
                let a = Tensor::from_vec(a, (settings.rank, in_dim), &Device::Cpu)?;
                self.params
                    .insert(format!("{prefix}.lora_A.weight"), Var::from_tensor(&a)?);
                self.params.insert(
                    format!("{prefix}.lora_B.weight"),
                    Var::zeros((out_dim, settings.rank), DType::F32, &Device::Cpu)?,
                );
            }
        }
        self.lora = Some(settings);
        self.freeze_except(|n| n.contains(".lora_") || n.starts_with("classifier."));
        Ok(())
    }

    /// Replaces a LoRA matrix (for loading an adapter, or a test that fixes the init).
    pub fn set_lora_tensor(&mut self, name: &str, value: &Tensor) -> Result<()> {
        let var = self
            .params
            .get(name)
            .ok_or_else(|| TrainError::Config(format!("no LoRA tensor {name}")))?;
        var.set(value)?;
        Ok(())
    }

    fn linear(&self, x: &Tensor, prefix: &str) -> Result<Tensor> {
        let name = format!("{prefix}.weight");
        let w = self.get(&name)?;
        let b = self.get(&format!("{prefix}.bias"))?;
        // Weight and bias each trainable (a `Var`) or frozen: frozen ones go through
        // `FrozenLinear` or `LoraLinear`, which compute no gradient for them.
        let bias_name = format!("{prefix}.bias");
        let adapter = self.lora.as_ref().and_then(|lora| {
            let a = self.params.get(&format!("{prefix}.lora_A.weight"))?;
            let bm = self.params.get(&format!("{prefix}.lora_B.weight"))?;
            Some((lora.scale(), a, bm))
        });
        let frozen = !self.params.contains_key(&name) && !self.params.contains_key(&bias_name);
        if let (true, Some((scale, a, bm))) = (frozen, adapter) {
            let op = LoraLinear {
                weight: w.contiguous()?,
                bias: b.contiguous()?,
                scale: scale as f32,
            };
            return Ok(x
                .contiguous()?
                .apply_op3(a.as_tensor(), bm.as_tensor(), op)?);
        }
        let mut y = if self.params.contains_key(&name) {
            x.broadcast_matmul(&w.t()?)?.broadcast_add(b)?
        } else if self.params.contains_key(&bias_name) {
            // A frozen weight: its gradient would be computed and thrown away by a plain matmul.
            x.contiguous()?
                .apply_op1(FrozenLinear {
                    weight: w.contiguous()?,
                    bias: None,
                })?
                .broadcast_add(b)?
        } else {
            x.contiguous()?.apply_op1(FrozenLinear {
                weight: w.contiguous()?,
                bias: Some(b.clone()),
            })?
        };
        if let Some((scale, a, bm)) = adapter {
            let update = x
                .broadcast_matmul(&a.as_tensor().t()?)?
                .broadcast_matmul(&bm.as_tensor().t()?)?;
            y = (y + (update * scale)?)?;
        }
        Ok(y)
    }

    fn layer_norm(&self, x: &Tensor, prefix: &str) -> Result<Tensor> {
        let gamma = self.get(&format!("{prefix}.weight"))?;
        let beta = self.get(&format!("{prefix}.bias"))?;
        Ok(x.contiguous()?.apply_op3(
            gamma,
            beta,
            LayerNorm {
                eps: self.config.layer_norm_eps as f32,
            },
        )?)
    }

    fn activation(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self.config.hidden_act {
            Activation::Gelu => x.contiguous()?.apply_op1(GeluErf)?,
            Activation::GeluTanh => x.gelu()?,
            Activation::Relu => x.relu()?,
            Activation::Silu => x.silu()?,
            Activation::Tanh => x.tanh()?,
            Activation::QuickGelu => (x * candle_nn::ops::sigmoid(&(x * 1.702)?)?)?,
            other => {
                return Err(TrainError::Config(format!(
                    "activation {other:?} is not supported for training"
                )));
            }
        })
    }

    /// The logits of a batch: `f32 [batch, num_labels]` for a sequence head,
    /// `f32 [batch, seq, num_labels]` for a token head.
    /// (Evaluation mode: no dropout.)
    pub fn forward(&self, batch: &TrainBatch) -> Result<Tensor> {
        self.forward_with(batch, None)
    }

    fn forward_with(
        &self,
        batch: &TrainBatch,
        mut masks: Option<&mut DropoutMasks>,
    ) -> Result<Tensor> {
        let x = self.encode(batch, &mut masks)?;
        let mut drop = |x: Tensor, rate: fn(&DropoutRates) -> f64| dropout(&mut masks, x, rate);
        match self.head {
            TrainHead::Sequence => {
                let first = x.narrow(1, 0, 1)?.squeeze(1)?;
                let pooled = self.linear(&first, "bert.pooler.dense")?.tanh()?;
                self.linear(&drop(pooled, |r| r.classifier)?, "classifier")
            }
            TrainHead::Token => self.linear(&drop(x, |r| r.classifier)?, "classifier"),
        }
    }

    /// The encoder's last hidden state, `f32 [batch, seq, hidden]`, with dropout from `masks`
    /// at each of transformers' sites (none in evaluation mode).
    fn encode(&self, batch: &TrainBatch, masks: &mut Option<&mut DropoutMasks>) -> Result<Tensor> {
        let (b, s) = batch.input_ids.dims2()?;
        let h = self.config.hidden_size;
        let heads = self.config.num_heads;
        let hd = h / heads;
        let flat_ids = batch.input_ids.flatten_all()?;
        let words = self
            .get("bert.embeddings.word_embeddings.weight")?
            .index_select(&flat_ids, 0)?;
        let positions = self
            .get("bert.embeddings.position_embeddings.weight")?
            .narrow(0, 0, s)?;
        let types = self
            .get("bert.embeddings.token_type_embeddings.weight")?
            .index_select(&batch.token_type_ids.flatten_all()?, 0)?;
        let embedded = words
            .reshape((b, s, h))?
            .broadcast_add(&positions)?
            .add(&types.reshape((b, s, h))?)?;
        let mut x = dropout(
            masks,
            self.layer_norm(&embedded, "bert.embeddings.LayerNorm")?,
            |r| r.hidden,
        )?;
        // Padding keys are left out of every softmax, as transformers' additive mask (the most
        // negative f32) does.
        let keys: Vec<bool> = batch
            .attention_mask
            .flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .map(|&m| m != 0.0)
            .collect();
        let keys = std::sync::Arc::new(keys);
        let scale = 1.0 / (hd as f64).sqrt();
        for layer in 0..self.config.num_layers {
            let p = format!("bert.encoder.layer.{layer}");
            let q = self.linear(&x, &format!("{p}.attention.self.query"))?;
            let k = self.linear(&x, &format!("{p}.attention.self.key"))?;
            let v = self.linear(&x, &format!("{p}.attention.self.value"))?;
            let attention = crate::attention::SelfAttention {
                batch: b,
                seq: s,
                heads,
                scale: scale as f32,
                keys: keys.clone(),
                dropout: masks.as_deref_mut().and_then(|m| m.op(m.rates.attention)),
            };
            let context =
                q.contiguous()?
                    .apply_op3(&k.contiguous()?, &v.contiguous()?, attention)?;
            let attended = dropout(
                masks,
                self.linear(&context, &format!("{p}.attention.output.dense"))?,
                |r| r.hidden,
            )?;
            x = self.layer_norm(
                &(attended + &x)?,
                &format!("{p}.attention.output.LayerNorm"),
            )?;
            let inner = self.activation(&self.linear(&x, &format!("{p}.intermediate.dense"))?)?;
            let out = dropout(
                masks,
                self.linear(&inner, &format!("{p}.output.dense"))?,
                |r| r.hidden,
            )?;
            x = self.layer_norm(&(out + &x)?, &format!("{p}.output.LayerNorm"))?;
        }
        Ok(x)
    }

    /// Mean cross-entropy of the logits against the labels, as `transformers` computes the
    /// loss of the head: `u32 [batch]` classes for a sequence head; `i64 [batch, seq]` classes
    /// for a token head, where [`IGNORED_LABEL`] (`-100`) marks tokens left out of the mean.
    ///
    /// (The gradient flows to the trainable parameters only.)
    pub fn loss(&self, batch: &TrainBatch, labels: &Tensor) -> Result<Tensor> {
        self.loss_of(self.forward(batch)?, labels)
    }

    /// [`Self::loss`] in training mode: dropout at the rates of [`Self::set_dropout`], with
    /// masks drawn from `seed`.
    pub fn training_loss(&self, batch: &TrainBatch, labels: &Tensor, seed: u64) -> Result<Tensor> {
        let mut masks = DropoutMasks {
            rates: self.dropout,
            rng: crate::rng::Rng::new(seed),
        };
        self.loss_of(self.forward_with(batch, Some(&mut masks))?, labels)
    }

    fn loss_of(&self, logits: Tensor, labels: &Tensor) -> Result<Tensor> {
        match self.head {
            TrainHead::Sequence => Ok(candle_nn::loss::cross_entropy(&logits, labels)?),
            TrainHead::Token => {
                let (b, s, k) = logits.dims3()?;
                if labels.dims() != [b, s] {
                    return Err(TrainError::Config(format!(
                        "token labels have shape {:?}, the batch is [{b}, {s}]",
                        labels.dims()
                    )));
                }
                let flat = labels
                    .to_dtype(DType::I64)?
                    .flatten_all()?
                    .to_vec1::<i64>()?;
                let mut rows = Vec::new();
                let mut targets = Vec::new();
                for (i, &label) in flat.iter().enumerate() {
                    if label == IGNORED_LABEL {
                        continue;
                    }
                    let class = u32::try_from(label)
                        .ok()
                        .filter(|&c| (c as usize) < k)
                        .ok_or_else(|| {
                            TrainError::Config(format!(
                                "token label {label} is outside the {k} classes"
                            ))
                        })?;
                    rows.push(i as u32);
                    targets.push(class);
                }
                if rows.is_empty() {
                    return Err(TrainError::Config(
                        "a batch has no labelled token (every label is -100)".into(),
                    ));
                }
                let n = rows.len();
                let dev = logits.device();
                let picked = logits
                    .reshape((b * s, k))?
                    .index_select(&Tensor::from_vec(rows, n, dev)?, 0)?;
                let targets = Tensor::from_vec(targets, n, dev)?;
                Ok(candle_nn::loss::cross_entropy(&picked, &targets)?)
            }
        }
    }
}

/// The `transformers` name prefix of a LoRA target in a BERT layer.
fn lora_prefix(layer: usize, target: &str) -> Option<String> {
    let part = match target {
        "query" | "key" | "value" => format!("attention.self.{target}"),
        "attention.output.dense" | "intermediate.dense" | "output.dense" => target.to_string(),
        _ => return None,
    };
    Some(format!("bert.encoder.layer.{layer}.{part}"))
}

/// Runs `f` on a CPU tensor's f32 values, in row-major order (copied first only when the
/// tensor is not contiguous).
pub(crate) fn with_values<T>(
    t: &Tensor,
    op: &str,
    f: impl FnOnce(&[f32]) -> T,
) -> candle_core::Result<T> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(cpu) => Ok(f(contiguous_f32(cpu, layout, op)?)),
        _ => candle_core::bail!("{op} runs on the CPU"),
    }
}

/// The values of a custom op's input: f32, contiguous (the callers make it so).
pub(crate) fn contiguous_f32<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let candle_core::CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op} expects f32 inputs");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op} expects a contiguous input");
    };
    Ok(&data[start..end])
}

/// LayerNorm over the last dimension, `(x - μ)/√(σ² + ε)·γ + β`, forward and backward in one
/// pass per row each (candle's composite took nine operations forward and more backward, each
/// with its own temporary tensor).
struct LayerNorm {
    eps: f32,
}

/// Rows per chunk of LayerNorm's loops on the pool. Fixed, so that the backward pass sums the
/// γ and β gradients in the same order on any number of threads.
const LAYER_NORM_ROWS: usize = 32;

impl candle_core::CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
        s3: &candle_core::CpuStorage,
        l3: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let gamma = contiguous_f32(s2, l2, self.name())?;
        let beta = contiguous_f32(s3, l3, self.name())?;
        let width = l1.shape().dims().last().copied().unwrap_or(0);
        if width == 0 || gamma.len() != width || beta.len() != width {
            candle_core::bail!("layer-norm: {width} features, {} weights", gamma.len());
        }
        let y = embrace_models::cpu::par_fill(x.len(), LAYER_NORM_ROWS * width, |start, out| {
            out.copy_from_slice(&x[start..start + out.len()]);
            embrace_models::cpu::layer_norm(out, gamma, beta, self.eps);
        });
        Ok((candle_core::CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let width = gamma.elem_count();
        let g = gamma.flatten_all()?.to_vec1::<f32>()?;
        // Each chunk of rows writes its part of dx and sums its own γ and β gradients; the
        // partial sums are added in row order afterwards.
        let partials = std::sync::Mutex::new(Vec::new());
        let dx = with_values(x, self.name(), |xs| {
            with_values(grad_res, self.name(), |dy| {
                if width == 0 || dy.len() != xs.len() || !xs.len().is_multiple_of(width) {
                    candle_core::bail!("layer-norm: gradient and input shapes differ");
                }
                Ok(embrace_models::cpu::par_fill(
                    xs.len(),
                    LAYER_NORM_ROWS * width,
                    |start, dx| {
                        let (mut dgamma, mut dbeta) = (vec![0f32; width], vec![0f32; width]);
                        let end = start + dx.len();
                        embrace_models::cpu::layer_norm_backward(
                            &xs[start..end],
                            &dy[start..end],
                            &g,
                            self.eps,
                            dx,
                            &mut dgamma,
                            &mut dbeta,
                        );
                        partials
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((start, dgamma, dbeta));
                    },
                ))
            })
        })???;
        let mut partials = partials.into_inner().unwrap_or_else(|e| e.into_inner());
        partials.sort_by_key(|(start, _, _)| *start);
        let (mut dgamma, mut dbeta) = (vec![0f32; width], vec![0f32; width]);
        for (_, pg, pb) in &partials {
            dgamma.iter_mut().zip(pg).for_each(|(a, b)| *a += b);
            dbeta.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
        }
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dgamma, gamma.shape(), dev)?),
            Some(Tensor::from_vec(dbeta, gamma.shape(), dev)?),
        ))
    }
}

/// Elements per chunk of an element-wise loop spread over the pool.
const ELEMENT_CHUNK: usize = 16 * 1024;

/// The exact GELU, vectorized (candle evaluates `erf` one value at a time, forward and
/// backward).
struct GeluErf;

impl candle_core::CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        let y = embrace_models::cpu::par_fill(x.len(), ELEMENT_CHUNK, |start, out| {
            out.copy_from_slice(&x[start..start + out.len()]);
            Activation::Gelu.apply_in_place(out);
        });
        Ok((candle_core::CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = with_values(arg, self.name(), |x| {
            with_values(grad_res, self.name(), |g| {
                if g.len() != x.len() {
                    candle_core::bail!("gelu-erf: {} gradients for {} inputs", g.len(), x.len());
                }
                Ok(embrace_models::cpu::par_fill(
                    x.len(),
                    ELEMENT_CHUNK,
                    |start, out| {
                        let end = start + out.len();
                        out.copy_from_slice(&g[start..end]);
                        Activation::gelu_backward_in_place(&x[start..end], out);
                    },
                ))
            })
        })???;
        Ok(Some(Tensor::from_vec(grad, arg.shape(), arg.device())?))
    }
}

/// `x · Wᵀ` with a frozen `W` `[out, in]` over the last dimension of `x`: the backward pass
/// computes only the input's gradient `grad · W` (candle's matmul would also compute the
/// weight's, a product as large as the forward one, and discard it).
struct FrozenLinear {
    weight: Tensor,
    /// A frozen bias, added in the same pass (a trainable one is added outside, where its
    /// gradient is tracked).
    bias: Option<Tensor>,
}

impl candle_core::CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let data = contiguous_f32(storage, layout, self.name())?;
        let dims = layout.shape().dims();
        let (&cols, lead) = dims
            .split_last()
            .ok_or_else(|| candle_core::Error::Msg("frozen-linear of a scalar".into()))?;
        let (out, inputs) = self.weight.dims2()?;
        if cols != inputs {
            candle_core::bail!(
                "frozen-linear: {cols} input features for a [{out}, {inputs}] weight"
            );
        }
        let rows = lead.iter().product::<usize>();
        let y = frozen_product(data, rows, &self.weight, self.bias.as_ref(), self.name())?;
        let mut shape = lead.to_vec();
        shape.push(out);
        Ok((
            candle_core::CpuStorage::F32(y),
            candle_core::Shape::from(shape),
        ))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let out = self.weight.dim(0)?;
        let rows = grad_res.elem_count() / out.max(1);
        let dx = with_values(grad_res, self.name(), |g| {
            frozen_input_grad(g, rows, &self.weight, self.name())
        })??;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// `x · Wᵀ` (+ `b`) for `x` `[rows, in]`, a frozen weight `W` `[out, in]` and an optional
/// frozen bias: the product [`FrozenLinear`] computes and [`LoraLinear`] starts from.
fn frozen_product(
    x: &[f32],
    rows: usize,
    weight: &Tensor,
    bias: Option<&Tensor>,
    op: &str,
) -> candle_core::Result<Vec<f32>> {
    let (out, inp) = weight.dims2()?;
    with_values(weight, op, |w| match bias {
        Some(b) => with_values(b, op, |b| {
            if b.len() != out {
                candle_core::bail!("{op}: a bias of {} for {out} outputs", b.len());
            }
            Ok(embrace_models::cpu::linear(x, rows, w, Some(b), out, inp))
        })?,
        None => Ok(embrace_models::cpu::linear(x, rows, w, None, out, inp)),
    })?
}

/// `g · W`: the input's gradient of [`frozen_product`] from the output's gradient `g`.
fn frozen_input_grad(
    g: &[f32],
    rows: usize,
    weight: &Tensor,
    op: &str,
) -> candle_core::Result<Vec<f32>> {
    let (out, inp) = weight.dims2()?;
    with_values(weight, op, |w| {
        embrace_models::cpu::linear_input_grad(g, rows, w, out, inp)
    })
}

/// Rows per chunk when LoRA's low-rank update is added on the pool.
const LORA_ROWS: usize = 256;

/// `x · Wᵀ + b + s · (x · Aᵀ) · Bᵀ`: a frozen linear layer (weight `W` `[out, in]`, bias `b`)
/// with a LoRA adapter (`A` `[r, in]`, `B` `[out, r]`, trainable; PEFT's `lora_A` / `lora_B`)
/// as one operation over the last dimension of `x`. Built from candle operations it took five
/// (the frozen product, two small products, the scale and the sum), each with its own
/// output and gradient tensors.
struct LoraLinear {
    weight: Tensor,
    bias: Tensor,
    scale: f32,
}

/// The dimensions of a [`LoraLinear`] call: rows of `x`, inputs, outputs, rank.
struct LoraDims {
    rows: usize,
    inp: usize,
    out: usize,
    rank: usize,
}

impl LoraLinear {
    /// The call's dimensions from the lengths of `x`, `A` and `B`, checked against the weight.
    fn dims(&self, x_len: usize, a_len: usize, b_len: usize) -> candle_core::Result<LoraDims> {
        let (out, inp) = self.weight.dims2()?;
        let rank = a_len / inp.max(1);
        if inp == 0 || !x_len.is_multiple_of(inp) || a_len != rank * inp || b_len != out * rank {
            candle_core::bail!(
                "lora-linear: {x_len} inputs, A of {a_len} and B of {b_len} values for a [{out}, {inp}] weight"
            );
        }
        Ok(LoraDims {
            rows: x_len / inp,
            inp,
            out,
            rank,
        })
    }
}

/// `x · Aᵀ`, `[rows, r]`: the input projected onto the adapter's rank.
fn lora_down(x: &[f32], a: &[f32], d: &LoraDims) -> Vec<f32> {
    let mut u = vec![0f32; d.rows * d.rank];
    embrace_models::cpu::product(
        &mut u,
        MatrixView::row_major(d.rows, d.rank),
        x,
        MatrixView::row_major(d.rows, d.inp),
        a,
        MatrixView::transposed(d.inp, d.rank),
    );
    u
}

/// `dst += s · small · m` for `dst` `[rows, n]` and `small` `[rows, r]`, by row blocks on the
/// pool; `m_view` is `m` as an `[r, n]` matrix.
fn add_low_rank(dst: &mut [f32], small: &[f32], r: usize, m: &[f32], m_view: MatrixView, s: f32) {
    let n = m_view.cols;
    embrace_models::cpu::par_chunks_mut(dst, LORA_ROWS * n, |start, block| {
        let (first, rows) = (start / n, block.len() / n);
        embrace_models::cpu::product_add(
            block,
            MatrixView::row_major(rows, n),
            &small[first * r..(first + rows) * r],
            MatrixView::row_major(rows, r),
            m,
            m_view,
            s,
        );
    });
}

impl candle_core::CustomOp3 for LoraLinear {
    fn name(&self) -> &'static str {
        "lora-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
        s3: &candle_core::CpuStorage,
        l3: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let a = contiguous_f32(s2, l2, self.name())?;
        let bm = contiguous_f32(s3, l3, self.name())?;
        let d = self.dims(x.len(), a.len(), bm.len())?;
        let mut y = frozen_product(x, d.rows, &self.weight, Some(&self.bias), self.name())?;
        let u = lora_down(x, a, &d);
        // Bᵀ as an [r, out] matrix.
        let b_t = MatrixView::transposed(d.rank, d.out);
        add_low_rank(&mut y, &u, d.rank, bm, b_t, self.scale);
        let mut shape = l1.shape().dims().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = d.out;
        }
        Ok((
            candle_core::CpuStorage::F32(y),
            candle_core::Shape::from(shape),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        bm: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let name = self.name();
        let (dx, da, db) = with_values(x, name, |x| {
            with_values(a, name, |a| {
                with_values(bm, name, |bm| {
                    with_values(grad_res, name, |g| self.backward(x, a, bm, g))?
                })?
            })?
        })??;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(da, a.shape(), dev)?),
            Some(Tensor::from_vec(db, bm.shape(), dev)?),
        ))
    }
}

impl LoraLinear {
    /// The gradients of `x`, `A` and `B` from the output's gradient `g`.
    #[allow(clippy::type_complexity)]
    fn backward(
        &self,
        x: &[f32],
        a: &[f32],
        bm: &[f32],
        g: &[f32],
    ) -> candle_core::Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let d = self.dims(x.len(), a.len(), bm.len())?;
        if g.len() != d.rows * d.out {
            candle_core::bail!(
                "lora-linear: a gradient of {} for {} x {}",
                g.len(),
                d.rows,
                d.out
            );
        }
        let s = self.scale;
        // g·B, [rows, r].
        let mut gb = vec![0f32; d.rows * d.rank];
        embrace_models::cpu::product(
            &mut gb,
            MatrixView::row_major(d.rows, d.rank),
            g,
            MatrixView::row_major(d.rows, d.out),
            bm,
            MatrixView::row_major(d.out, d.rank),
        );
        // dx = g·W + s·(g·B)·A.
        let mut dx = frozen_input_grad(g, d.rows, &self.weight, "lora-linear")?;
        add_low_rank(
            &mut dx,
            &gb,
            d.rank,
            a,
            MatrixView::row_major(d.rank, d.inp),
            s,
        );
        // dB = s·gᵀ·(x·Aᵀ), dA = s·(g·B)ᵀ·x.
        let u = lora_down(x, a, &d);
        let mut db = vec![0f32; d.out * d.rank];
        embrace_models::cpu::product_add(
            &mut db,
            MatrixView::row_major(d.out, d.rank),
            g,
            MatrixView::transposed(d.out, d.rows),
            &u,
            MatrixView::row_major(d.rows, d.rank),
            s,
        );
        let mut da = vec![0f32; d.rank * d.inp];
        embrace_models::cpu::product_add(
            &mut da,
            MatrixView::row_major(d.rank, d.inp),
            &gb,
            MatrixView::transposed(d.rank, d.rows),
            x,
            MatrixView::row_major(d.rows, d.inp),
            s,
        );
        Ok((dx, da, db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masks(p: f64, seed: u64) -> Vec<f32> {
        let mut masks = DropoutMasks {
            rates: DropoutRates::default(),
            rng: crate::rng::Rng::new(seed),
        };
        let ones = Tensor::ones((100, 1001), DType::F32, &Device::Cpu).unwrap();
        masks
            .apply(&ones, p)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn dropout_zeroes_a_fraction_p_and_keeps_the_expectation() {
        let m = masks(0.1, 7);
        assert_eq!(m.len(), 100_100);
        let zeros = m.iter().filter(|&&v| v == 0.0).count() as f64 / m.len() as f64;
        assert!((zeros - 0.1).abs() < 0.005, "{zeros}");
        let mean = m.iter().map(|&v| v as f64).sum::<f64>() / m.len() as f64;
        assert!((mean - 1.0).abs() < 0.01, "{mean}");
        assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        assert_eq!(m, masks(0.1, 7), "same seed, same masks");
        assert_ne!(m, masks(0.1, 8));
        assert!(masks(0.0, 7).iter().all(|&v| v == 1.0));
    }

    #[test]
    fn dropout_gradient_is_the_same_mask() {
        let x = Var::from_tensor(
            &Tensor::arange(1f32, 20_001f32, &Device::Cpu)
                .unwrap()
                .reshape((100, 200))
                .unwrap(),
        )
        .unwrap();
        let op = || Dropout { p: 0.3, seed: 11 };
        let y = x.as_tensor().apply_op1(op()).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = grads
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        for (i, (&gi, &yi)) in g.iter().zip(&y).enumerate() {
            // y = x · mask and d(sum y)/dx = mask.
            assert!(
                (yi - gi * (i + 1) as f32).abs() <= 1e-3 * yi.abs().max(1.0),
                "{i}"
            );
        }
        assert!(g.contains(&0.0) && g.iter().any(|&v| v > 1.0));
    }

    #[test]
    fn dropout_rates_follow_the_config() {
        let raw = serde_json::json!({"hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.05, "classifier_dropout": null});
        let rates = DropoutRates::from_config(raw.as_object().unwrap());
        assert_eq!(
            (rates.hidden, rates.attention, rates.classifier),
            (0.2, 0.05, 0.2)
        );
        let rates = DropoutRates::from_config(&serde_json::Map::new());
        assert_eq!(
            (rates.hidden, rates.attention, rates.classifier),
            (0.1, 0.1, 0.1)
        );
    }
}
