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
use crate::error::{ModelError, Result};
use crate::kernels::cached_attention::{CausalShape, LayerCache, causal_attention};
use crate::kernels::ggml_cpu;
use crate::kernels::pool;
use crate::kernels::quant::q4_1::BlockQ4_1;
use crate::kernels::quant::q4_k::BlockQ4K;
use crate::kernels::quant::q5_0::BlockQ5_0;
use crate::kernels::quant::q6_k::BlockQ6K;
use crate::kernels::quant::q8_0::BlockQ8_0;
use crate::kernels::quant::super_blocks::{SuperBlockFormat, SuperBlockMatrix};
use crate::kernels::quant::{BlockFormat, QuantLinear, QuantMatrix};

/// Calls `f` with `x`'s values in row-major order as f32: borrowed from the tensor's storage when
/// it is a contiguous f32 CPU tensor (the usual case: no copy), else from a converted copy.
pub(crate) fn with_f32_values<R>(x: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let x = x
        .to_device(&Device::Cpu)?
        .to_dtype(candle_core::DType::F32)?
        .contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let values = match (&*storage, layout.contiguous_offsets()) {
        (candle_core::Storage::Cpu(candle_core::CpuStorage::F32(data)), Some((start, end))) => {
            &data[start..end]
        }
        _ => {
            return Err(ModelError::Input(
                "expected contiguous f32 values on the CPU".into(),
            ));
        }
    };
    Ok(f(values))
}

/// A linear projection `x · Wᵀ + b` whose weight is dense f32 or quantized.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

/// How a projection's weight is stored and multiplied.
#[derive(Debug, Clone)]
enum Weight {
    /// Dense, or a GGUF type candle multiplies with SIMD code.
    Candle(QMatMul),
    /// GGUF `Q4_1`, `Q5_0`, `Q8_0`, `Q4_K` or `Q6_K`, multiplied as llama.cpp does (see
    /// [`crate::kernels::quant`]).
    Ggml(Arc<dyn QuantLinear>),
}

impl Linear {
    /// A dense projection from a `[out, in]` weight.
    pub(crate) fn dense(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            weight: Weight::Candle(QMatMul::Tensor(weight)),
            bias,
        }
    }

    /// A projection on a GGUF tensor that candle multiplies (dequantized once when it is f32 /
    /// f16 / bf16).
    ///
    /// `Q4_1`, `Q5_0`, `Q8_0`, `Q4_K` and `Q6_K` never come here: the loader reads them
    /// straight into Embrace's own matrices ([`own_format_from_reader`], then
    /// [`Linear::shared`]). candle multiplies Q4_0 and the other K-quants with AVX2 but Q5_1
    /// and Q8_1 with scalar code (about 10x slower); those are re-quantized once to Q8_0, whose
    /// 8-bit blocks hold the values with an error far below their own quantization step.
    pub(crate) fn quantized(weight: Arc<QTensor>, bias: Option<Tensor>) -> Result<Self> {
        use candle_core::quantized::GgmlDType;
        let weight = match weight.dtype() {
            GgmlDType::Q5_1 | GgmlDType::Q8_1 => {
                let dense = weight.dequantize(&Device::Cpu)?;
                Weight::Candle(QMatMul::from_arc(Arc::new(QTensor::quantize(
                    &dense,
                    GgmlDType::Q8_0,
                )?))?)
            }
            _ => Weight::Candle(QMatMul::from_arc(weight)?),
        };
        Ok(Self { weight, bias })
    }

    /// A projection on one of Embrace's own quantized matrices (shared, not copied).
    pub(crate) fn shared(weight: Arc<dyn QuantLinear>, bias: Option<Tensor>) -> Self {
        Self {
            weight: Weight::Ggml(weight),
            bias,
        }
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.weight {
            Weight::Candle(w) => w.forward(x)?,
            Weight::Ggml(w) => {
                let dims = x.dims().to_vec();
                let cols = *dims.last().unwrap_or(&0);
                if cols != w.cols() {
                    return Err(ModelError::Input(format!(
                        "a projection expects {} input features, got shape {dims:?}",
                        w.cols()
                    )));
                }
                let n = x.elem_count() / cols.max(1);
                let y = with_f32_values(x, |input| w.matmul(input, n))?;
                let mut out_dims = dims;
                if let Some(last) = out_dims.last_mut() {
                    *last = w.rows();
                }
                Tensor::from_vec(y, out_dims, &Device::Cpu)?
            }
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// A `[rows, cols]` GGUF matrix of type `dtype` read from `reader` straight into one of
/// Embrace's own matrices, when its block format has a kernel here (`Ok(None)` otherwise, with
/// nothing read).
pub(crate) fn own_format_from_reader(
    dtype: candle_core::quantized::GgmlDType,
    rows: usize,
    cols: usize,
    reader: &mut impl std::io::Read,
) -> std::io::Result<Option<Arc<dyn QuantLinear>>> {
    use candle_core::quantized::GgmlDType;
    fn read<B: BlockFormat>(
        reader: &mut impl std::io::Read,
        rows: usize,
        cols: usize,
    ) -> std::io::Result<Option<Arc<dyn QuantLinear>>> {
        Ok(QuantMatrix::<B>::from_reader(reader, rows, cols)?
            .map(|m| Arc::new(m) as Arc<dyn QuantLinear>))
    }
    fn read_k<B: SuperBlockFormat>(
        reader: &mut impl std::io::Read,
        rows: usize,
        cols: usize,
    ) -> std::io::Result<Option<Arc<dyn QuantLinear>>> {
        Ok(SuperBlockMatrix::<B>::from_reader(reader, rows, cols)?
            .map(|m| Arc::new(m) as Arc<dyn QuantLinear>))
    }
    match dtype {
        GgmlDType::Q4_1 => read::<BlockQ4_1>(reader, rows, cols),
        GgmlDType::Q5_0 => read::<BlockQ5_0>(reader, rows, cols),
        GgmlDType::Q8_0 => read::<BlockQ8_0>(reader, rows, cols),
        GgmlDType::Q4K => read_k::<BlockQ4K>(reader, rows, cols),
        GgmlDType::Q6K => read_k::<BlockQ6K>(reader, rows, cols),
        _ => Ok(None),
    }
}

/// The token embedding table, dense or quantized (rows are dequantized on lookup).
#[derive(Debug, Clone)]
pub(crate) enum Embedding {
    Dense(Tensor),
    Quantized(Arc<QTensor>),
    /// In one of Embrace's own formats; a tied output projection shares it.
    Ggml(Arc<dyn QuantLinear>),
}

impl Embedding {
    pub(crate) fn forward(&self, ids: &[u32]) -> Result<Tensor> {
        Ok(match self {
            Self::Dense(table) => table.index_select(&Tensor::new(ids, &Device::Cpu)?, 0)?,
            Self::Quantized(table) => table.embedding(&Tensor::new(ids, &Device::Cpu)?)?,
            Self::Ggml(table) => {
                let cols = table.cols();
                let mut out = vec![0f32; ids.len() * cols];
                for (&id, row) in ids.iter().zip(out.chunks_exact_mut(cols)) {
                    let id = id as usize;
                    if id >= table.rows() {
                        return Err(ModelError::Input(format!(
                            "token id {id} is outside the vocabulary of {}",
                            table.rows()
                        )));
                    }
                    table.dequantize_row(id, row);
                }
                Tensor::from_vec(out, (ids.len(), cols), &Device::Cpu)?
            }
        })
    }

    /// The whole table as a dense `[rows, cols]` tensor.
    pub(crate) fn dequantize(&self) -> Result<Tensor> {
        Ok(match self {
            Self::Dense(table) => table.clone(),
            Self::Quantized(table) => table.dequantize(&Device::Cpu)?,
            Self::Ggml(table) => {
                let ids: Vec<u32> = (0..table.rows() as u32).collect();
                self.forward(&ids)?
            }
        })
    }

    /// The output projection that shares this table (tied embeddings).
    pub(crate) fn as_linear(&self) -> Result<Linear> {
        Ok(match self {
            Self::Dense(table) => Linear::dense(table.clone(), None),
            Self::Quantized(table) => Linear::quantized(table.clone(), None)?,
            Self::Ggml(table) => Linear::shared(table.clone(), None),
        })
    }
}

/// RMSNorm or LayerNorm over the last dimension.
#[derive(Debug, Clone)]
pub(crate) enum Norm {
    Rms {
        weight: Tensor,
        eps: f32,
        /// llama.cpp's arithmetic ([`ggml_cpu::rms_norm`]) instead of candle's.
        ggml: bool,
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
            Self::Rms {
                weight,
                eps,
                ggml: false,
            } => candle_nn::ops::rms_norm(&x, weight, *eps)?,
            Self::Rms {
                weight,
                eps,
                ggml: true,
            } => {
                let mut values = x.flatten_all()?.to_vec1::<f32>()?;
                ggml_cpu::rms_norm(&mut values, &weight.to_vec1::<f32>()?, *eps);
                Tensor::from_vec(values, x.shape(), x.device())?
            }
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
    /// The base for llama.cpp's tables and rotation ([`ggml_cpu::rope_tables`]), when the model
    /// asks for llama.cpp's arithmetic and the rotary settings have no frequency scaling.
    ggml_base: Option<f32>,
}

impl Rotary {
    pub(crate) fn new(
        config: &RopeConfig,
        head_dim: usize,
        layout: RopeLayout,
        ggml: bool,
    ) -> Self {
        let unscaled = config.llama3.is_none() && config.linear_factor == 1.0;
        Self {
            inverse_frequencies: config.inverse_frequencies(head_dim),
            layout,
            ggml_base: (ggml && unscaled).then_some(config.theta as f32),
        }
    }

    /// `cos` and `sin` tables `[tokens, head_dim / 2]` for positions `start..start + tokens`.
    pub(crate) fn tables(&self, start: usize, tokens: usize) -> Result<(Tensor, Tensor)> {
        let half = self.inverse_frequencies.len();
        let (cos, sin) = match self.ggml_base {
            Some(base) => ggml_cpu::rope_tables(base, 2 * half, start, tokens),
            None => {
                let mut cos = Vec::with_capacity(tokens * half);
                let mut sin = Vec::with_capacity(tokens * half);
                for position in start..start + tokens {
                    for &f in &self.inverse_frequencies {
                        let angle = position as f32 * f;
                        cos.push(angle.cos());
                        sin.push(angle.sin());
                    }
                }
                (cos, sin)
            }
        };
        Ok((
            Tensor::from_vec(cos, (tokens, half), &Device::Cpu)?,
            Tensor::from_vec(sin, (tokens, half), &Device::Cpu)?,
        ))
    }

    /// Rotates `[heads, tokens, head_dim]`.
    pub(crate) fn apply(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        if self.ggml_base.is_some() {
            let tokens = x.dim(1)?;
            let dims = x.dim(2)?;
            let mut values = x.flatten_all()?.to_vec1::<f32>()?;
            let interleaved = self.layout == RopeLayout::Interleaved;
            ggml_cpu::rope(
                &mut values,
                tokens,
                dims,
                &cos.flatten_all()?.to_vec1::<f32>()?,
                &sin.flatten_all()?.to_vec1::<f32>()?,
                interleaved,
            );
            return Ok(Tensor::from_vec(values, x.shape(), x.device())?);
        }
        let x = x.unsqueeze(0)?.contiguous()?;
        let y = match self.layout {
            RopeLayout::Halves => candle_nn::rotary_emb::rope(&x, cos, sin)?,
            RopeLayout::Interleaved => candle_nn::rotary_emb::rope_i(&x, cos, sin)?,
        };
        Ok(y.squeeze(0)?)
    }
}

/// Keys and values of the positions seen so far, per layer, in buffers that grow by doubling
/// (a decode step appends in place and reads without copying).
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<LayerCache>,
    len: usize,
}

impl KvCache {
    /// An empty cache for `layers` layers.
    pub fn new(layers: usize) -> Self {
        Self {
            layers: vec![LayerCache::default(); layers],
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
        self.layers
            .iter_mut()
            .for_each(|l| *l = LayerCache::default());
        self.len = 0;
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
    /// Round the attention operands to f16, as llama.cpp's f16 KV cache does.
    pub(crate) f16: bool,
    /// Sum as llama.cpp's CPU backend does (see [`ggml_cpu`]).
    pub(crate) ggml: bool,
    /// Multiply the queries by `scale` before they are rounded to f16, and the scores by 1
    /// (llama.cpp's Gemma 3 graph; the f16 rounding of small values differs otherwise).
    pub(crate) scale_queries: bool,
}

/// `values` rounded to the nearest f16 values, ties to even (kept in f32): what storing to an
/// f16 KV cache and converting operands to f16 does. One pass on the bits, which costs far less
/// than two dtype conversions.
fn round_to_f16(values: &mut [f32]) {
    let chunk = pool::chunk_len(values.len(), 8192);
    pool::for_each_chunk_mut(values, chunk, |_, part| {
        part.iter_mut().for_each(|v| *v = round_f32_to_f16(*v))
    });
}

/// The f16 value nearest to `x` (ties to even), as an f32.
fn round_f32_to_f16(x: f32) -> f32 {
    const F16_MIN_NORMAL: f32 = 6.103_515_6e-5; // 2^-14
    const F16_MAX: f32 = 65_504.0;
    let magnitude = x.abs();
    if magnitude < F16_MIN_NORMAL {
        // Subnormal f16: a multiple of 2^-24 (exact in f32).
        const SCALE: f32 = 16_777_216.0; // 2^24
        return (x * SCALE).round_ties_even() / SCALE;
    }
    if !magnitude.is_finite() {
        return x;
    }
    // Keep 10 of the 23 mantissa bits, rounding the 13 dropped ones to nearest even.
    let bits = x.to_bits();
    let rounded = f32::from_bits((bits + 0x0fff + ((bits >> 13) & 1)) & !0x1fff);
    if rounded.abs() > F16_MAX {
        f32::INFINITY.copysign(x)
    } else {
        rounded
    }
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
    let t = q.dim(1)?;
    let values = |x: &Tensor, scale: Option<f32>| -> Result<Vec<f32>> {
        let mut values = x.flatten_all()?.to_vec1::<f32>()?;
        if let Some(s) = scale {
            values.iter_mut().for_each(|v| *v *= s);
        }
        if shape.f16 {
            round_to_f16(&mut values);
        }
        Ok(values)
    };
    let query_scale = shape.scale_queries.then_some(shape.scale as f32);
    let (q, k, v) = (
        values(q, query_scale)?,
        values(&k, None)?,
        values(&v, None)?,
    );
    let layer_cache = cache
        .layers
        .get_mut(layer)
        .ok_or_else(|| ModelError::Input(format!("the cache has no layer {layer}")))?;
    layer_cache
        .append(shape.kv_heads, shape.head_dim, &k, &v)
        .map_err(|e| ModelError::Input(format!("KV cache of layer {layer}: {e}")))?;
    let window = match pattern {
        LayerAttention::Full => usize::MAX,
        LayerAttention::Sliding(w) => w,
    };
    let out = causal_attention(
        &q,
        layer_cache,
        CausalShape {
            heads: shape.heads,
            kv_heads: shape.kv_heads,
            head_dim: shape.head_dim,
            scale: if shape.scale_queries {
                1.0
            } else {
                shape.scale as f32
            },
            softcap: shape.softcap.map(|c| c as f32),
            window,
            f16_weights: shape.f16,
            ggml: shape.ggml.then_some(t > 1),
        },
    );
    Ok(Tensor::from_vec(
        out,
        (t, shape.heads * shape.head_dim),
        &Device::Cpu,
    )?)
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

#[cfg(test)]
mod tests {
    use super::round_f32_to_f16;
    use half::f16;

    #[test]
    fn f16_rounding_equals_a_conversion_round_trip() {
        let mut state = 12_345u32;
        for i in 0..200_000u32 {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            // Random bit patterns over every exponent, plus the boundary cases.
            let x = match i {
                0 => 65_504.0,
                1 => 65_519.99,
                2 => 65_520.0,
                3 => 6.103_515_6e-5,
                4 => 2.980_232_2e-8,
                5 => -0.0,
                _ => f32::from_bits(state),
            };
            if x.is_nan() {
                continue;
            }
            let want = f16::from_f32(x).to_f32();
            assert_eq!(round_f32_to_f16(x).to_bits(), want.to_bits(), "{x:e}");
        }
    }
}
