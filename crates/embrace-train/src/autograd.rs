//! A BERT encoder with a sequence-classification head built from candle's differentiable
//! operations, so that every weight can be trained (full fine-tuning) and gradients flow to the
//! input of every layer (the basis of adapters such as LoRA).
//!
//! The inference kernels of `embrace-models` are faster but compute no gradients; this module
//! mirrors `transformers`' `BertForSequenceClassification` operation by operation instead, and
//! its gradients are checked against PyTorch (golden file from `tools/oracle/gen_train.py`).
//! Parameters keep their `transformers` names (`bert.encoder.layer.0.attention.self.query.weight`),
//! so a trained model saves to a checkpoint `transformers` loads.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{D, DType, Device, Tensor, Var};
use embrace_models::activation::Activation;
use embrace_models::config::EncoderConfig;

use crate::error::{Result, TrainError};

/// Trainable `BertForSequenceClassification` parameters, by `transformers` name.
pub struct TrainableBert {
    config: EncoderConfig,
    params: BTreeMap<String, Var>,
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
    /// checkpoint without `classifier.*` gets a new classifier with `num_labels` outputs,
    /// initialised as `transformers` does (normal(0, 0.02), zero bias).
    pub fn from_safetensors(
        path: &Path,
        config: EncoderConfig,
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
            params.insert(name, Var::from_tensor(&tensor.to_dtype(DType::F32)?)?);
        }
        if !params.contains_key("classifier.weight") {
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
        let model = Self { config, params };
        for layer in 0..model.config.num_layers {
            model.get(&format!(
                "bert.encoder.layer.{layer}.attention.self.query.weight"
            ))?;
        }
        model.get("bert.pooler.dense.weight")?;
        Ok(model)
    }

    fn get(&self, name: &str) -> Result<&Tensor> {
        self.params
            .get(name)
            .map(|v| v.as_tensor())
            .ok_or_else(|| TrainError::Config(format!("the checkpoint has no tensor {name}")))
    }

    /// The trainable variables with their names.
    pub fn named_vars(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.params.iter().map(|(n, v)| (n.as_str(), v))
    }

    fn linear(&self, x: &Tensor, prefix: &str) -> Result<Tensor> {
        let w = self.get(&format!("{prefix}.weight"))?;
        let b = self.get(&format!("{prefix}.bias"))?;
        Ok(x.broadcast_matmul(&w.t()?)?.broadcast_add(b)?)
    }

    fn layer_norm(&self, x: &Tensor, prefix: &str) -> Result<Tensor> {
        let gamma = self.get(&format!("{prefix}.weight"))?;
        let beta = self.get(&format!("{prefix}.bias"))?;
        let mean = x.mean_keepdim(D::Minus1)?;
        let centered = x.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centered.broadcast_div(&(var + self.config.layer_norm_eps)?.sqrt()?)?;
        Ok(normed.broadcast_mul(gamma)?.broadcast_add(beta)?)
    }

    fn activation(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self.config.hidden_act {
            Activation::Gelu => x.gelu_erf()?,
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

    /// The classification logits `f32 [batch, num_labels]` of a batch.
    pub fn forward(&self, batch: &TrainBatch) -> Result<Tensor> {
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
        let mut x = self.layer_norm(&embedded, "bert.embeddings.LayerNorm")?;
        // Additive mask: 0 for tokens, the most negative f32 for padding, as transformers does.
        let mask_bias = ((batch.attention_mask.ones_like()? - &batch.attention_mask)?
            * f64::from(f32::MIN))?
        .reshape((b, 1, 1, s))?;
        let scale = 1.0 / (hd as f64).sqrt();
        for layer in 0..self.config.num_layers {
            let p = format!("bert.encoder.layer.{layer}");
            let split = |t: Tensor| -> Result<Tensor> {
                Ok(t.reshape((b, s, heads, hd))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let q = split(self.linear(&x, &format!("{p}.attention.self.query"))?)?;
            let k = split(self.linear(&x, &format!("{p}.attention.self.key"))?)?;
            let v = split(self.linear(&x, &format!("{p}.attention.self.value"))?)?;
            let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(&mask_bias)?;
            let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let context = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, s, h))?;
            let attended = self.linear(&context, &format!("{p}.attention.output.dense"))?;
            x = self.layer_norm(
                &(attended + &x)?,
                &format!("{p}.attention.output.LayerNorm"),
            )?;
            let inner = self.activation(&self.linear(&x, &format!("{p}.intermediate.dense"))?)?;
            let out = self.linear(&inner, &format!("{p}.output.dense"))?;
            x = self.layer_norm(&(out + &x)?, &format!("{p}.output.LayerNorm"))?;
        }
        let first = x.narrow(1, 0, 1)?.squeeze(1)?;
        let pooled = self.linear(&first, "bert.pooler.dense")?.tanh()?;
        self.linear(&pooled, "classifier")
    }

    /// Mean cross-entropy of the logits against `u32` labels.
    pub fn loss(&self, batch: &TrainBatch, labels: &Tensor) -> Result<Tensor> {
        let logits = self.forward(batch)?;
        Ok(candle_nn::loss::cross_entropy(&logits, labels)?)
    }
}
