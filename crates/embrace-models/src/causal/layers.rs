//! The building blocks of a decoder layer, on candle tensors: projections that are dense or
//! GGUF-quantized, normalisation, rotary embeddings and cached attention.
//!
//! Shapes: activations are `[tokens, features]` for one sequence (no batch dimension: batched
//! generation runs each sequence with its own cache, so padding is never computed); attention
//! works on `[heads, tokens, head_dim]`.

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use super::config::{LayerAttention, RopeConfig, RopeLayout};
use crate::error::Result;

/// A linear projection `x · Wᵀ + b` whose weight is dense f32 or quantized.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    weight: QMatMul,
    bias: Option<Tensor>,
}

impl Linear {
    /// A dense projection from a `[out, in]` weight.
    pub(crate) fn dense(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            weight: QMatMul::Tensor(weight),
            bias,
        }
    }

    /// A projection from a GGUF tensor (dequantized once when it is f32 / f16 / bf16).
    ///
    /// candle multiplies Q4_0, Q8_0 and the K-quants with AVX2 but Q4_1, Q5_0, Q5_1 and Q8_1 with
    /// scalar code (about 10x slower); those are re-quantized once to Q8_0, whose 8-bit blocks
    /// hold the 4- and 5-bit values with an error far below their own quantization step.
    pub(crate) fn quantized(weight: Arc<QTensor>, bias: Option<Tensor>) -> Result<Self> {
        use candle_core::quantized::GgmlDType;
        let weight = match weight.dtype() {
            GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_1 => {
                let dense = weight.dequantize(&Device::Cpu)?;
                Arc::new(QTensor::quantize(&dense, GgmlDType::Q8_0)?)
            }
            _ => weight,
        };
        Ok(Self {
            weight: QMatMul::from_arc(weight)?,
            bias,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.weight.forward(x)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// The token embedding table, dense or quantized (rows are dequantized on lookup).
#[derive(Debug, Clone)]
pub(crate) enum Embedding {
    Dense(Tensor),
    Quantized(Arc<QTensor>),
}

impl Embedding {
    pub(crate) fn forward(&self, ids: &[u32]) -> Result<Tensor> {
        let ids = Tensor::new(ids, &Device::Cpu)?;
        Ok(match self {
            Self::Dense(table) => table.index_select(&ids, 0)?,
            Self::Quantized(table) => table.embedding(&ids)?,
        })
    }

    /// The output projection that shares this table (tied embeddings).
    pub(crate) fn as_linear(&self) -> Result<Linear> {
        Ok(match self {
            Self::Dense(table) => Linear::dense(table.clone(), None),
            Self::Quantized(table) => Linear::quantized(table.clone(), None)?,
        })
    }
}

/// RMSNorm or LayerNorm over the last dimension.
#[derive(Debug, Clone)]
pub(crate) enum Norm {
    Rms {
        weight: Tensor,
        eps: f32,
    },
    Layer {
        weight: Tensor,
        bias: Tensor,
        eps: f32,
    },
}

impl Norm {
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.contiguous()?;
        Ok(match self {
            Self::Rms { weight, eps } => candle_nn::ops::rms_norm(&x, weight, *eps)?,
            Self::Layer { weight, bias, eps } => {
                candle_nn::ops::layer_norm(&x, weight, bias, *eps)?
            }
        })
    }
}

/// Rotary position embeddings for one base frequency.
#[derive(Debug, Clone)]
pub(crate) struct Rotary {
    inverse_frequencies: Vec<f32>,
    layout: RopeLayout,
}

impl Rotary {
    pub(crate) fn new(config: &RopeConfig, head_dim: usize, layout: RopeLayout) -> Self {
        Self {
            inverse_frequencies: config.inverse_frequencies(head_dim),
            layout,
        }
    }

    /// `cos` and `sin` tables `[tokens, head_dim / 2]` for positions `start..start + tokens`.
    pub(crate) fn tables(&self, start: usize, tokens: usize) -> Result<(Tensor, Tensor)> {
        let half = self.inverse_frequencies.len();
        let mut cos = Vec::with_capacity(tokens * half);
        let mut sin = Vec::with_capacity(tokens * half);
        for position in start..start + tokens {
            for &f in &self.inverse_frequencies {
                let angle = position as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        Ok((
            Tensor::from_vec(cos, (tokens, half), &Device::Cpu)?,
            Tensor::from_vec(sin, (tokens, half), &Device::Cpu)?,
        ))
    }

    /// Rotates `[heads, tokens, head_dim]`.
    pub(crate) fn apply(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let x = x.unsqueeze(0)?.contiguous()?;
        let y = match self.layout {
            RopeLayout::Halves => candle_nn::rotary_emb::rope(&x, cos, sin)?,
            RopeLayout::Interleaved => candle_nn::rotary_emb::rope_i(&x, cos, sin)?,
        };
        Ok(y.squeeze(0)?)
    }
}

/// Keys and values of the positions seen so far, per layer.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// An empty cache for `layers` layers.
    pub fn new(layers: usize) -> Self {
        Self {
            layers: vec![None; layers],
            len: 0,
        }
    }

    /// How many positions are cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every cached position.
    pub fn clear(&mut self) {
        self.layers.iter_mut().for_each(|l| *l = None);
        self.len = 0;
    }

    /// Appends a layer's new keys and values `[kv_heads, tokens, head_dim]`; returns all of them.
    fn append(&mut self, layer: usize, k: Tensor, v: Tensor) -> Result<(Tensor, Tensor)> {
        let entry = &mut self.layers[layer];
        let (k, v) = match entry.take() {
            None => (k, v),
            Some((ck, cv)) => (Tensor::cat(&[&ck, &k], 1)?, Tensor::cat(&[&cv, &v], 1)?),
        };
        *entry = Some((k.clone(), v.clone()));
        Ok((k, v))
    }

    pub(crate) fn advance(&mut self, tokens: usize) {
        self.len += tokens;
    }
}

/// Self-attention settings shared by the layers of one model.
#[derive(Debug, Clone)]
pub(crate) struct AttentionShape {
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) scale: f64,
    pub(crate) softcap: Option<f64>,
}

/// Causal attention of `t` new queries over the cached and new keys.
///
/// `q` is `[heads, t, d]`, `k` / `v` are `[kv_heads, t, d]` (already rotated); the cache gets
/// the new keys. Returns `[t, heads * d]`.
pub(crate) fn attend(
    shape: &AttentionShape,
    layer: usize,
    pattern: LayerAttention,
    q: &Tensor,
    k: Tensor,
    v: Tensor,
    cache: &mut KvCache,
) -> Result<Tensor> {
    let start = cache.len();
    let t = q.dim(1)?;
    let (k, v) = cache.append(layer, k, v)?;
    let total = k.dim(1)?;
    let (k, v) = if shape.heads == shape.kv_heads {
        (k, v)
    } else {
        let rep = shape.heads / shape.kv_heads;
        let repeat = |x: Tensor| -> Result<Tensor> {
            Ok(x.unsqueeze(1)?
                .expand((shape.kv_heads, rep, total, shape.head_dim))?
                .reshape((shape.heads, total, shape.head_dim))?)
        };
        (repeat(k)?, repeat(v)?)
    };
    let mut scores = (q.contiguous()?.matmul(&k.t()?)? * shape.scale)?;
    if let Some(cap) = shape.softcap {
        scores = ((scores / cap)?.tanh()? * cap)?;
    }
    // Query i sits at position start + i; key j is visible when j <= start + i and, for
    // sliding layers, start + i - j < window.
    let window = match pattern {
        LayerAttention::Full => usize::MAX,
        LayerAttention::Sliding(w) => w,
    };
    let needs_mask = t > 1 || start + t > window;
    if needs_mask {
        let mut mask = Vec::with_capacity(t * total);
        for i in 0..t {
            let position = start + i;
            for j in 0..total {
                let visible = j <= position && position - j < window;
                mask.push(if visible { 0f32 } else { f32::NEG_INFINITY });
            }
        }
        let mask = Tensor::from_vec(mask, (1, t, total), &Device::Cpu)?;
        scores = scores.broadcast_add(&mask)?;
    }
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    let out = probs.matmul(&v.contiguous()?)?; // [heads, t, d]
    Ok(out
        .transpose(0, 1)?
        .reshape((t, shape.heads * shape.head_dim))?)
}

/// Splits `[t, heads * d]` into `[heads, t, d]`.
pub(crate) fn split_heads(x: &Tensor, heads: usize, head_dim: usize) -> Result<Tensor> {
    let t = x.dim(0)?;
    Ok(x.reshape((t, heads, head_dim))?
        .transpose(0, 1)?
        .contiguous()?)
}

/// `tanh` soft-capping of logits.
pub(crate) fn softcap(x: &Tensor, cap: f64) -> Result<Tensor> {
    Ok(((x / cap)?.tanh()? * cap)?)
}

/// The last row of `[t, n]` as `[1, n]`.
pub(crate) fn last_row(x: &Tensor) -> Result<Tensor> {
    let t = x.dim(0)?;
    Ok(x.narrow(0, t - 1, 1)?)
}
