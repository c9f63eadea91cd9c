//! The decoder-only forward pass (GPT-2, the Llama family, Gemma 3) with a KV cache.

use candle_core::Tensor;

use super::config::{DecoderConfig, DecoderFamily, LayerAttention};
use super::layers::{
    AttentionShape, Embedding, KvCache, Linear, Norm, Rotary, attend, last_row, softcap,
    split_heads, with_f32_values,
};
use super::weights::DecoderWeights;
use crate::activation::Activation;
use crate::error::{ModelError, Result};
use crate::kernels::{gelu_table, ggml_cpu, math, pool};

/// The MLP of a layer.
#[derive(Debug, Clone)]
enum Mlp {
    /// `down(act(gate(x)) * up(x))`: SiLU (Llama family) or tanh-GELU (Gemma).
    Gated {
        gate: Linear,
        up: Linear,
        down: Linear,
        gelu: Option<Gelu>,
        /// SiLU with llama.cpp's arithmetic ([`ggml_cpu::swiglu`]).
        ggml_silu: bool,
    },
    /// `proj(gelu_tanh(fc(x)))` (GPT-2).
    Plain {
        fc: Linear,
        proj: Linear,
        gelu: Gelu,
    },
}

/// How a layer computes the tanh-approximated GELU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gelu {
    /// Evaluated in f32 (transformers' `gelu_pytorch_tanh` / `gelu_new`).
    Exact,
    /// Read from llama.cpp's f16 table (GGUF models).
    F16Table,
}

impl Gelu {
    fn new(config: &DecoderConfig) -> Self {
        if config.gelu_f16_table {
            Self::F16Table
        } else {
            Self::Exact
        }
    }

    /// `gelu(x)`, in one parallel pass.
    fn apply(self, x: &Tensor) -> Result<Tensor> {
        let mut values = x.flatten_all()?.to_vec1::<f32>()?;
        let chunk = pool::chunk_len(values.len(), 4096);
        pool::for_each_chunk_mut(&mut values, chunk, |_, part| match self {
            Self::Exact => math::add_bias_activation(part, &[], Activation::GeluTanh),
            Self::F16Table => gelu_table::gelu_in_place(part),
        });
        Ok(Tensor::from_vec(values, x.shape(), x.device())?)
    }

    /// `gelu(gate) * up`, fused in one parallel pass.
    fn gated(self, gate: &Tensor, up: &Tensor) -> Result<Tensor> {
        let mut values = gate.flatten_all()?.to_vec1::<f32>()?;
        with_f32_values(up, |up_values| {
            let chunk = pool::chunk_len(values.len(), 4096);
            pool::for_each_chunk_mut(&mut values, chunk, |start, part| {
                let up = &up_values[start..start + part.len()];
                match self {
                    Self::Exact => math::gated_activation(part, up, Activation::GeluTanh),
                    Self::F16Table => gelu_table::geglu_in_place(part, up),
                }
            });
        })?;
        Ok(Tensor::from_vec(values, gate.shape(), gate.device())?)
    }
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Gated {
                gate,
                up,
                down,
                gelu,
                ggml_silu,
            } => {
                let g = gate.forward(x)?;
                let u = up.forward(x)?;
                let h = match gelu {
                    Some(gelu) => gelu.gated(&g, &u)?,
                    None if *ggml_silu => {
                        let mut values = g.flatten_all()?.to_vec1::<f32>()?;
                        ggml_cpu::swiglu(&mut values, &u.flatten_all()?.to_vec1::<f32>()?);
                        Tensor::from_vec(values, g.shape(), g.device())?
                    }
                    None => (g.silu()? * u)?,
                };
                down.forward(&h)
            }
            Self::Plain { fc, proj, gelu } => proj.forward(&gelu.apply(&fc.forward(x)?)?),
        }
    }
}

/// How a layer computes queries, keys and values.
#[derive(Debug, Clone)]
enum Projections {
    Separate { q: Linear, k: Linear, v: Linear },
    Fused(Linear),
}

/// One decoder layer.
#[derive(Debug, Clone)]
struct Block {
    attention: LayerAttention,
    attn_norm: Norm,
    qkv: Projections,
    q_norm: Option<Norm>,
    k_norm: Option<Norm>,
    o: Linear,
    post_attn_norm: Option<Norm>,
    mlp_norm: Norm,
    post_mlp_norm: Option<Norm>,
    mlp: Mlp,
}

/// A decoder-only language model with its LM head.
#[derive(Debug, Clone)]
pub struct CausalLm {
    config: DecoderConfig,
    embed: Embedding,
    embed_scale: Option<f64>,
    positions: Option<Tensor>,
    blocks: Vec<Block>,
    final_norm: Norm,
    lm_head: Linear,
    rotary: Rotary,
    rotary_local: Rotary,
    attention: AttentionShape,
}

fn norm(w: &dyn DecoderWeights, config: &DecoderConfig, name: &str, len: usize) -> Result<Norm> {
    let eps = config.norm_eps as f32;
    if config.family == DecoderFamily::Gpt2 {
        return Ok(Norm::Layer {
            weight: w.vector(name, "weight", len)?,
            bias: w.vector(name, "bias", len)?,
            eps,
        });
    }
    let mut weight = w.vector(name, "weight", len)?;
    if config.norm_weight_offset {
        weight = (weight + 1.0)?;
    }
    Ok(Norm::Rms {
        weight,
        eps,
        ggml: config.llama_cpp_arithmetic,
    })
}

impl CausalLm {
    /// Builds the model from a configuration and a weight source.
    pub(crate) fn load(config: DecoderConfig, w: &dyn DecoderWeights) -> Result<Self> {
        let c = &config;
        let (h, d) = (c.hidden_size, c.head_dim);
        let q_out = c.num_heads * d;
        let kv_out = c.num_kv_heads * d;
        let embed = w.embedding("embed", c.vocab_size, h)?;
        let positions = match c.family {
            DecoderFamily::Gpt2 => Some(
                w.embedding("positions", c.max_position_embeddings, h)?
                    .dequantize()?,
            ),
            _ => None,
        };
        let gemma = c.family == DecoderFamily::Gemma3;
        let mut blocks = Vec::with_capacity(c.num_layers);
        for (i, &attention) in c.layers.iter().enumerate() {
            let name = |part: &str| format!("layers.{i}.{part}");
            let block = if c.family == DecoderFamily::Gpt2 {
                Block {
                    attention,
                    attn_norm: norm(w, c, &name("attn_norm"), h)?,
                    qkv: Projections::Fused(w.linear(&name("qkv"), 3 * h, h, true)?),
                    q_norm: None,
                    k_norm: None,
                    o: w.linear(&name("o"), h, h, true)?,
                    post_attn_norm: None,
                    mlp_norm: norm(w, c, &name("mlp_norm"), h)?,
                    post_mlp_norm: None,
                    mlp: Mlp::Plain {
                        fc: w.linear(&name("fc"), c.intermediate_size, h, true)?,
                        proj: w.linear(&name("proj"), h, c.intermediate_size, true)?,
                        gelu: Gelu::new(c),
                    },
                }
            } else {
                Block {
                    attention,
                    attn_norm: norm(w, c, &name("attn_norm"), h)?,
                    qkv: Projections::Separate {
                        q: w.linear(&name("q"), q_out, h, c.qkv_bias)?,
                        k: w.linear(&name("k"), kv_out, h, c.qkv_bias)?,
                        v: w.linear(&name("v"), kv_out, h, c.qkv_bias)?,
                    },
                    q_norm: c
                        .qk_norm
                        .then(|| norm(w, c, &name("q_norm"), d))
                        .transpose()?,
                    k_norm: c
                        .qk_norm
                        .then(|| norm(w, c, &name("k_norm"), d))
                        .transpose()?,
                    o: w.linear(&name("o"), h, q_out, c.o_bias)?,
                    post_attn_norm: gemma
                        .then(|| norm(w, c, &name("post_attn_norm"), h))
                        .transpose()?,
                    mlp_norm: norm(w, c, &name("mlp_norm"), h)?,
                    post_mlp_norm: gemma
                        .then(|| norm(w, c, &name("post_mlp_norm"), h))
                        .transpose()?,
                    mlp: Mlp::Gated {
                        gate: w.linear(&name("gate"), c.intermediate_size, h, c.mlp_bias)?,
                        up: w.linear(&name("up"), c.intermediate_size, h, c.mlp_bias)?,
                        down: w.linear(&name("down"), h, c.intermediate_size, c.mlp_bias)?,
                        gelu: gemma.then(|| Gelu::new(c)),
                        ggml_silu: c.llama_cpp_arithmetic,
                    },
                }
            };
            blocks.push(block);
        }
        let final_norm = norm(w, c, "final_norm", h)?;
        let lm_head = if w.has("lm_head") || !c.tie_word_embeddings {
            w.linear("lm_head", c.vocab_size, h, false)?
        } else {
            embed.as_linear()?
        };
        let attention = AttentionShape {
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: d,
            scale: c.attention_scale,
            softcap: c.attn_logit_softcapping,
            f16: c.kv_cache_f16,
            ggml: c.llama_cpp_arithmetic,
            scale_queries: c.llama_cpp_arithmetic && gemma,
        };
        Ok(Self {
            rotary: Rotary::new(&c.rope, d, c.rope_layout, c.llama_cpp_arithmetic),
            rotary_local: Rotary::new(&c.rope_local, d, c.rope_layout, c.llama_cpp_arithmetic),
            embed_scale: gemma.then(|| (h as f64).sqrt()),
            attention,
            embed,
            positions,
            blocks,
            final_norm,
            lm_head,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// An empty KV cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.blocks.len())
    }

    /// Runs `ids` after the positions already in `cache` and returns the logits of the last
    /// token `[vocab]`, or of every new token `[tokens, vocab]` with `all_logits`.
    ///
    /// The cache grows by `ids.len()` positions.
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache, all_logits: bool) -> Result<Tensor> {
        let t = ids.len();
        if t == 0 {
            return Err(ModelError::Input("no tokens to run".into()));
        }
        let start = cache.len();
        let limit = self.config.max_position_embeddings;
        if self.positions.is_some() && start + t > limit {
            return Err(ModelError::Input(format!(
                "sequence of {} tokens is longer than the model's {limit} positions",
                start + t
            )));
        }
        if let Some(&bad) = ids
            .iter()
            .find(|&&id| id as usize >= self.config.vocab_size)
        {
            return Err(ModelError::Input(format!(
                "token id {bad} is outside the vocabulary of {} tokens",
                self.config.vocab_size
            )));
        }
        let mut x = self.embed.forward(ids)?;
        if let Some(scale) = self.embed_scale {
            x = (x * scale)?;
        }
        if let Some(table) = &self.positions {
            x = (x + table.narrow(0, start, t)?)?;
        }
        let tables = match self.config.family {
            DecoderFamily::Gpt2 => None,
            _ => Some((
                self.rotary.tables(start, t)?,
                self.rotary_local.tables(start, t)?,
            )),
        };
        for (i, block) in self.blocks.iter().enumerate() {
            let residual = x.clone();
            let hn = block.attn_norm.forward(&x)?;
            let a = &self.attention;
            let (q, k, v) = match &block.qkv {
                Projections::Separate { q, k, v } => (
                    split_heads(&q.forward(&hn)?, a.heads, a.head_dim)?,
                    split_heads(&k.forward(&hn)?, a.kv_heads, a.head_dim)?,
                    split_heads(&v.forward(&hn)?, a.kv_heads, a.head_dim)?,
                ),
                Projections::Fused(qkv) => {
                    let all = qkv.forward(&hn)?;
                    let hidden = self.config.hidden_size;
                    let part = |n: usize| -> Result<Tensor> {
                        split_heads(&all.narrow(1, n * hidden, hidden)?, a.heads, a.head_dim)
                    };
                    (part(0)?, part(1)?, part(2)?)
                }
            };
            let q = match &block.q_norm {
                Some(n) => n.forward(&q)?,
                None => q,
            };
            let k = match &block.k_norm {
                Some(n) => n.forward(&k)?,
                None => k,
            };
            let (q, k) = match &tables {
                None => (q, k),
                Some((full, local)) => {
                    let (rotary, (cos, sin)) = match block.attention {
                        LayerAttention::Full => (&self.rotary, full),
                        LayerAttention::Sliding(_)
                            if self.config.family == DecoderFamily::Gemma3 =>
                        {
                            (&self.rotary_local, local)
                        }
                        LayerAttention::Sliding(_) => (&self.rotary, full),
                    };
                    (rotary.apply(&q, cos, sin)?, rotary.apply(&k, cos, sin)?)
                }
            };
            let attn = attend(a, i, block.attention, &q, k, v, cache)?;
            let mut attn = block.o.forward(&attn)?;
            if let Some(n) = &block.post_attn_norm {
                attn = n.forward(&attn)?;
            }
            x = (residual + attn)?;
            let residual = x.clone();
            let mut m = block.mlp.forward(&block.mlp_norm.forward(&x)?)?;
            if let Some(n) = &block.post_mlp_norm {
                m = n.forward(&m)?;
            }
            x = (residual + m)?;
        }
        cache.advance(t);
        let x = if all_logits { x } else { last_row(&x)? };
        let x = self.final_norm.forward(&x)?;
        let mut logits = self.lm_head.forward(&x)?;
        if let Some(cap) = self.config.final_logit_softcapping {
            logits = softcap(&logits, cap)?;
        }
        Ok(if all_logits {
            logits
        } else {
            logits.squeeze(0)?
        })
    }
}
