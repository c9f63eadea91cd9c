//! The encoder-decoder forward pass (T5, BART) with a decoder KV cache and cross-attention
//! keys / values computed once per input.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::config::{FeedForwardActivation, Seq2SeqConfig, Seq2SeqFamily, relative_bucket};
use crate::causal::layers::{Linear, Norm, split_heads};
use crate::causal::weights::read_tensor;
use crate::error::{ModelError, Result};
use crate::generation::Decoding;
use crate::weights::Checkpoint;

/// Multi-head attention projections.
#[derive(Debug, Clone)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
}

/// The feed-forward block.
#[derive(Debug, Clone)]
enum FeedForward {
    Plain {
        wi: Linear,
        wo: Linear,
    },
    Gated {
        wi0: Linear,
        wi1: Linear,
        wo: Linear,
    },
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    attention: Attention,
    attention_norm: Norm,
    ff: FeedForward,
    ff_norm: Norm,
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    attention: Attention,
    attention_norm: Norm,
    cross: Attention,
    cross_norm: Norm,
    ff: FeedForward,
    ff_norm: Norm,
}

/// Family-specific embeddings and output.
#[derive(Debug, Clone)]
enum Flavor {
    T5 {
        /// `[buckets, heads]` tables of layer 0.
        encoder_bias: Vec<f32>,
        decoder_bias: Vec<f32>,
        encoder_final: Norm,
        decoder_final: Norm,
    },
    Bart {
        /// Position tables; row `offset + p` is position `p`.
        encoder_positions: Tensor,
        decoder_positions: Tensor,
        offset: usize,
        /// BART normalises the embeddings; Marian does not.
        encoder_embed_norm: Option<Norm>,
        decoder_embed_norm: Option<Norm>,
        final_logits_bias: Tensor,
    },
}

/// An encoder-decoder LM (`AutoModelForSeq2SeqLM`).
#[derive(Debug, Clone)]
pub struct Seq2SeqLm {
    config: Seq2SeqConfig,
    embed: Tensor,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    lm_head: Linear,
    flavor: Flavor,
}

/// The decoder's state: self-attention caches and the cross-attention keys / values.
#[derive(Debug, Clone)]
pub struct Seq2SeqState {
    self_kv: Vec<Option<(Tensor, Tensor)>>,
    cross_kv: Arc<Vec<(Tensor, Tensor)>>,
    len: usize,
}

/// The names a family stores its tensors under.
struct Names<'a> {
    checkpoint: &'a Checkpoint,
    prefix: &'static str,
}

impl Names<'_> {
    fn resolve(&self, name: &str) -> String {
        let full = format!("{}{name}", self.prefix);
        if self.checkpoint.shape(&full).is_some() {
            full
        } else {
            name.to_owned()
        }
    }

    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        read_tensor(self.checkpoint, &self.resolve(name), shape)
    }

    fn has(&self, name: &str) -> bool {
        self.checkpoint.shape(&self.resolve(name)).is_some()
    }

    fn linear(&self, name: &str, out: usize, input: usize, bias: bool) -> Result<Linear> {
        let weight = self.tensor(&format!("{name}.weight"), &[out, input])?;
        let bias = bias
            .then(|| self.tensor(&format!("{name}.bias"), &[out]))
            .transpose()?;
        Ok(Linear::dense(weight, bias))
    }

    fn rms(&self, name: &str, len: usize, eps: f64) -> Result<Norm> {
        Ok(Norm::Rms {
            weight: self.tensor(&format!("{name}.weight"), &[len])?,
            eps: eps as f32,
            ggml: false,
        })
    }

    fn layer_norm(&self, name: &str, len: usize, eps: f64) -> Result<Norm> {
        Ok(Norm::Layer {
            weight: self.tensor(&format!("{name}.weight"), &[len])?,
            bias: self.tensor(&format!("{name}.bias"), &[len])?,
            eps: eps as f32,
        })
    }
}

fn activate(x: &Tensor, activation: FeedForwardActivation) -> Result<Tensor> {
    Ok(match activation {
        FeedForwardActivation::Relu => x.relu()?,
        FeedForwardActivation::GeluTanh => x.gelu()?,
        FeedForwardActivation::Gelu => x.gelu_erf()?,
        FeedForwardActivation::Silu => x.silu()?,
    })
}

impl FeedForward {
    fn forward(&self, x: &Tensor, activation: FeedForwardActivation) -> Result<Tensor> {
        match self {
            Self::Plain { wi, wo } => wo.forward(&activate(&wi.forward(x)?, activation)?),
            Self::Gated { wi0, wi1, wo } => {
                let h = (activate(&wi0.forward(x)?, activation)? * wi1.forward(x)?)?;
                wo.forward(&h)
            }
        }
    }
}

/// Softmax attention of `q` `[h, tq, d]` over `k` / `v` `[h, tk, d]`, with an additive bias
/// broadcast over `[h, tq, tk]`; returns `[tq, h * d]`.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, bias: Option<&Tensor>) -> Result<Tensor> {
    let (h, tq, d) = q.dims3()?;
    let mut scores = q.matmul(&k.t()?)?;
    if scale != 1.0 {
        scores = (scores * scale)?;
    }
    if let Some(b) = bias {
        scores = scores.broadcast_add(b)?;
    }
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    Ok(probs
        .matmul(&v.contiguous()?)?
        .transpose(0, 1)?
        .reshape((tq, h * d))?)
}

/// Marian's sinusoidal position table `[positions, dim]`: sines of the even angles in the
/// first half, cosines of the odd ones in the second (computed in f64, as transformers does
/// with numpy).
fn sinusoidal_positions(positions: usize, dim: usize) -> Result<Tensor> {
    let half = dim.div_ceil(2);
    let mut table = vec![0f32; positions * dim];
    for p in 0..positions {
        for j in 0..dim {
            let angle = p as f64 / 10_000f64.powf((2 * (j / 2)) as f64 / dim as f64);
            if j % 2 == 0 {
                table[p * dim + j / 2] = angle.sin() as f32;
            } else {
                table[p * dim + half + j / 2] = angle.cos() as f32;
            }
        }
    }
    Ok(Tensor::from_vec(table, (positions, dim), &Device::Cpu)?)
}

/// A causal mask `[1, tq, tk]` for queries at positions `start..start + tq`.
fn causal_mask(start: usize, tq: usize, tk: usize) -> Result<Tensor> {
    let mask: Vec<f32> = (0..tq)
        .flat_map(|i| {
            (0..tk).map(move |j| {
                if j <= start + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Ok(Tensor::from_vec(mask, (1, tq, tk), &Device::Cpu)?)
}

impl Seq2SeqLm {
    /// Builds the model from its configuration and checkpoint.
    pub fn load(config: Seq2SeqConfig, checkpoint: &Checkpoint) -> Result<Self> {
        let c = &config;
        let (d, inner, ff) = (c.d_model, c.num_heads * c.head_dim, c.d_ff);
        match c.family {
            Seq2SeqFamily::T5 => {
                let n = Names {
                    checkpoint,
                    prefix: "",
                };
                let attention = |p: &str| -> Result<Attention> {
                    Ok(Attention {
                        q: n.linear(&format!("{p}.q"), inner, d, false)?,
                        k: n.linear(&format!("{p}.k"), inner, d, false)?,
                        v: n.linear(&format!("{p}.v"), inner, d, false)?,
                        o: n.linear(&format!("{p}.o"), d, inner, false)?,
                    })
                };
                let feed_forward = |p: &str| -> Result<FeedForward> {
                    Ok(if c.gated {
                        FeedForward::Gated {
                            wi0: n.linear(&format!("{p}.wi_0"), ff, d, false)?,
                            wi1: n.linear(&format!("{p}.wi_1"), ff, d, false)?,
                            wo: n.linear(&format!("{p}.wo"), d, ff, false)?,
                        }
                    } else {
                        FeedForward::Plain {
                            wi: n.linear(&format!("{p}.wi"), ff, d, false)?,
                            wo: n.linear(&format!("{p}.wo"), d, ff, false)?,
                        }
                    })
                };
                let encoder = (0..c.encoder_layers)
                    .map(|i| {
                        let p = format!("encoder.block.{i}.layer");
                        Ok(EncoderLayer {
                            attention: attention(&format!("{p}.0.SelfAttention"))?,
                            attention_norm: n.rms(&format!("{p}.0.layer_norm"), d, c.eps)?,
                            ff: feed_forward(&format!("{p}.1.DenseReluDense"))?,
                            ff_norm: n.rms(&format!("{p}.1.layer_norm"), d, c.eps)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let decoder = (0..c.decoder_layers)
                    .map(|i| {
                        let p = format!("decoder.block.{i}.layer");
                        Ok(DecoderLayer {
                            attention: attention(&format!("{p}.0.SelfAttention"))?,
                            attention_norm: n.rms(&format!("{p}.0.layer_norm"), d, c.eps)?,
                            cross: attention(&format!("{p}.1.EncDecAttention"))?,
                            cross_norm: n.rms(&format!("{p}.1.layer_norm"), d, c.eps)?,
                            ff: feed_forward(&format!("{p}.2.DenseReluDense"))?,
                            ff_norm: n.rms(&format!("{p}.2.layer_norm"), d, c.eps)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let bias = |p: &str| -> Result<Vec<f32>> {
                    Ok(n.tensor(
                        &format!(
                            "{p}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
                        ),
                        &[c.relative_buckets, c.num_heads],
                    )?
                    .flatten_all()?
                    .to_vec1()?)
                };
                let embed = n.tensor("shared.weight", &[c.vocab_size, d])?;
                // The head is `lm_head.weight` when stored (T5 v1.1 / Flan-T5), else the shared
                // table; the decoder output is scaled by d_model^-0.5 when configured so.
                let head = if n.has("lm_head.weight") || !c.tie_word_embeddings {
                    n.tensor("lm_head.weight", &[c.vocab_size, d])?
                } else {
                    embed.clone()
                };
                let head = if c.scale_decoder_outputs {
                    (head * (d as f64).powf(-0.5))?
                } else {
                    head
                };
                let lm_head = Linear::dense(head, None);
                Ok(Self {
                    flavor: Flavor::T5 {
                        encoder_bias: bias("encoder")?,
                        decoder_bias: bias("decoder")?,
                        encoder_final: n.rms("encoder.final_layer_norm", d, c.eps)?,
                        decoder_final: n.rms("decoder.final_layer_norm", d, c.eps)?,
                    },
                    embed,
                    encoder,
                    decoder,
                    lm_head,
                    config,
                })
            }
            Seq2SeqFamily::Bart | Seq2SeqFamily::Marian => {
                let marian = c.family == Seq2SeqFamily::Marian;
                let n = Names {
                    checkpoint,
                    prefix: "model.",
                };
                let attention = |p: &str| -> Result<Attention> {
                    Ok(Attention {
                        q: n.linear(&format!("{p}.q_proj"), inner, d, true)?,
                        k: n.linear(&format!("{p}.k_proj"), inner, d, true)?,
                        v: n.linear(&format!("{p}.v_proj"), inner, d, true)?,
                        o: n.linear(&format!("{p}.out_proj"), d, inner, true)?,
                    })
                };
                let feed_forward = |p: &str| -> Result<FeedForward> {
                    Ok(FeedForward::Plain {
                        wi: n.linear(&format!("{p}.fc1"), ff, d, true)?,
                        wo: n.linear(&format!("{p}.fc2"), d, ff, true)?,
                    })
                };
                let encoder = (0..c.encoder_layers)
                    .map(|i| {
                        let p = format!("encoder.layers.{i}");
                        Ok(EncoderLayer {
                            attention: attention(&format!("{p}.self_attn"))?,
                            attention_norm: n.layer_norm(
                                &format!("{p}.self_attn_layer_norm"),
                                d,
                                c.eps,
                            )?,
                            ff: feed_forward(&p)?,
                            ff_norm: n.layer_norm(&format!("{p}.final_layer_norm"), d, c.eps)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let decoder = (0..c.decoder_layers)
                    .map(|i| {
                        let p = format!("decoder.layers.{i}");
                        Ok(DecoderLayer {
                            attention: attention(&format!("{p}.self_attn"))?,
                            attention_norm: n.layer_norm(
                                &format!("{p}.self_attn_layer_norm"),
                                d,
                                c.eps,
                            )?,
                            cross: attention(&format!("{p}.encoder_attn"))?,
                            cross_norm: n.layer_norm(
                                &format!("{p}.encoder_attn_layer_norm"),
                                d,
                                c.eps,
                            )?,
                            ff: feed_forward(&p)?,
                            ff_norm: n.layer_norm(&format!("{p}.final_layer_norm"), d, c.eps)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let embed = n.tensor("shared.weight", &[c.vocab_size, d])?;
                let lm_head = if n.has("lm_head.weight") && !c.tie_word_embeddings {
                    n.linear("lm_head", c.vocab_size, d, false)?
                } else {
                    Linear::dense(embed.clone(), None)
                };
                let final_logits_bias = if n.has("final_logits_bias") {
                    n.tensor("final_logits_bias", &[1, c.vocab_size])?
                        .squeeze(0)?
                } else {
                    Tensor::zeros(c.vocab_size, candle_core::DType::F32, &Device::Cpu)?
                };
                let (encoder_positions, decoder_positions, offset) = if marian {
                    let table = sinusoidal_positions(c.max_position_embeddings, d)?;
                    (table.clone(), table, 0)
                } else {
                    let rows = c.max_position_embeddings + 2;
                    (
                        n.tensor("encoder.embed_positions.weight", &[rows, d])?,
                        n.tensor("decoder.embed_positions.weight", &[rows, d])?,
                        2,
                    )
                };
                let embed_norm = |p: &str| -> Result<Option<Norm>> {
                    (!marian).then(|| n.layer_norm(p, d, c.eps)).transpose()
                };
                Ok(Self {
                    flavor: Flavor::Bart {
                        encoder_positions,
                        decoder_positions,
                        offset,
                        encoder_embed_norm: embed_norm("encoder.layernorm_embedding")?,
                        decoder_embed_norm: embed_norm("decoder.layernorm_embedding")?,
                        final_logits_bias,
                    },
                    embed,
                    encoder,
                    decoder,
                    lm_head,
                    config,
                })
            }
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Seq2SeqConfig {
        &self.config
    }

    fn embed(&self, ids: &[u32]) -> Result<Tensor> {
        let c = &self.config;
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(ModelError::Input(format!(
                "token id {bad} is outside the vocabulary of {} tokens",
                c.vocab_size
            )));
        }
        let x = self
            .embed
            .index_select(&Tensor::new(ids, &Device::Cpu)?, 0)?;
        Ok(if c.scale_embedding {
            (x * (c.d_model as f64).sqrt())?
        } else {
            x
        })
    }

    /// T5's relative position bias `[heads, tq, tk]` for queries at `start..start + tq`.
    fn position_bias(
        &self,
        table: &[f32],
        start: usize,
        tq: usize,
        tk: usize,
        bidirectional: bool,
    ) -> Result<Tensor> {
        let c = &self.config;
        let heads = c.num_heads;
        let mut bias = vec![0f32; heads * tq * tk];
        for i in 0..tq {
            for j in 0..tk {
                let relative = j as i64 - (start + i) as i64;
                let bucket = relative_bucket(
                    relative,
                    bidirectional,
                    c.relative_buckets,
                    c.relative_max_distance,
                );
                for h in 0..heads {
                    bias[(h * tq + i) * tk + j] = table[bucket * heads + h];
                }
            }
        }
        Ok(Tensor::from_vec(bias, (heads, tq, tk), &Device::Cpu)?)
    }

    fn heads(&self, x: &Tensor) -> Result<Tensor> {
        split_heads(x, self.config.num_heads, self.config.head_dim)
    }

    /// Runs the encoder over one input; returns `[tokens, d_model]`.
    pub fn encode(&self, ids: &[u32]) -> Result<Tensor> {
        if ids.is_empty() {
            return Err(ModelError::Input("the encoder input is empty".into()));
        }
        let c = &self.config;
        let t = ids.len();
        let mut x = self.embed(ids)?;
        let scale = match c.family {
            Seq2SeqFamily::T5 => 1.0,
            Seq2SeqFamily::Bart | Seq2SeqFamily::Marian => (c.head_dim as f64).powf(-0.5),
        };
        let bias = match &self.flavor {
            Flavor::T5 { encoder_bias, .. } => {
                Some(self.position_bias(encoder_bias, 0, t, t, true)?)
            }
            Flavor::Bart {
                encoder_positions,
                encoder_embed_norm,
                offset,
                ..
            } => {
                if t > c.max_position_embeddings {
                    return Err(ModelError::Input(format!(
                        "the input has {t} tokens, more than the model's {} positions",
                        c.max_position_embeddings
                    )));
                }
                x = (x + encoder_positions.narrow(0, *offset, t)?)?;
                if let Some(norm) = encoder_embed_norm {
                    x = norm.forward(&x)?;
                }
                None
            }
        };
        for layer in &self.encoder {
            x = match c.family {
                Seq2SeqFamily::T5 => {
                    let h = layer.attention_norm.forward(&x)?;
                    let a = &layer.attention;
                    let out = attend(
                        &self.heads(&a.q.forward(&h)?)?,
                        &self.heads(&a.k.forward(&h)?)?,
                        &self.heads(&a.v.forward(&h)?)?,
                        scale,
                        bias.as_ref(),
                    )?;
                    let x = (x + a.o.forward(&out)?)?;
                    let h = layer.ff_norm.forward(&x)?;
                    (&x + layer.ff.forward(&h, c.activation)?)?
                }
                Seq2SeqFamily::Bart | Seq2SeqFamily::Marian => {
                    let a = &layer.attention;
                    let out = attend(
                        &self.heads(&a.q.forward(&x)?)?,
                        &self.heads(&a.k.forward(&x)?)?,
                        &self.heads(&a.v.forward(&x)?)?,
                        scale,
                        None,
                    )?;
                    let x = layer.attention_norm.forward(&(x + a.o.forward(&out)?)?)?;
                    layer
                        .ff_norm
                        .forward(&(&x + layer.ff.forward(&x, c.activation)?)?)?
                }
            };
        }
        if let Flavor::T5 { encoder_final, .. } = &self.flavor {
            x = encoder_final.forward(&x)?;
        }
        Ok(x)
    }

    /// A decoder state over an encoder output (cross-attention keys and values computed once).
    pub fn start(&self, encoder_output: &Tensor) -> Result<Seq2SeqState> {
        let cross_kv = self
            .decoder
            .iter()
            .map(|layer| {
                Ok((
                    self.heads(&layer.cross.k.forward(encoder_output)?)?,
                    self.heads(&layer.cross.v.forward(encoder_output)?)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Seq2SeqState {
            self_kv: vec![None; self.decoder.len()],
            cross_kv: Arc::new(cross_kv),
            len: 0,
        })
    }

    /// Runs decoder tokens after the state's positions; returns the logits of every new token
    /// `[tokens, vocab]`.
    pub fn decode(&self, ids: &[u32], state: &mut Seq2SeqState) -> Result<Tensor> {
        if ids.is_empty() {
            return Err(ModelError::Input("no decoder tokens to run".into()));
        }
        let c = &self.config;
        let (t, start) = (ids.len(), state.len);
        let total = start + t;
        let mut x = self.embed(ids)?;
        let (scale, self_bias) = match &self.flavor {
            Flavor::T5 { decoder_bias, .. } => {
                let bias = self.position_bias(decoder_bias, start, t, total, false)?;
                (
                    1.0,
                    Some(bias.broadcast_add(&causal_mask(start, t, total)?)?),
                )
            }
            Flavor::Bart {
                decoder_positions,
                decoder_embed_norm,
                offset,
                ..
            } => {
                if total > c.max_position_embeddings {
                    return Err(ModelError::Input(format!(
                        "the output reached the model's {} positions",
                        c.max_position_embeddings
                    )));
                }
                x = (x + decoder_positions.narrow(0, start + offset, t)?)?;
                if let Some(norm) = decoder_embed_norm {
                    x = norm.forward(&x)?;
                }
                let mask = (t > 1).then(|| causal_mask(start, t, total)).transpose()?;
                ((c.head_dim as f64).powf(-0.5), mask)
            }
        };
        let t5 = c.family == Seq2SeqFamily::T5;
        for (i, layer) in self.decoder.iter().enumerate() {
            // Self-attention over the cache.
            let h = if t5 {
                layer.attention_norm.forward(&x)?
            } else {
                x.clone()
            };
            let a = &layer.attention;
            let (k, v) = (
                self.heads(&a.k.forward(&h)?)?,
                self.heads(&a.v.forward(&h)?)?,
            );
            let (k, v) = match state.self_kv[i].take() {
                None => (k, v),
                Some((ck, cv)) => (Tensor::cat(&[&ck, &k], 1)?, Tensor::cat(&[&cv, &v], 1)?),
            };
            state.self_kv[i] = Some((k.clone(), v.clone()));
            let out = attend(
                &self.heads(&a.q.forward(&h)?)?,
                &k,
                &v,
                scale,
                self_bias.as_ref(),
            )?;
            x = (x + a.o.forward(&out)?)?;
            if !t5 {
                x = layer.attention_norm.forward(&x)?;
            }
            // Cross-attention over the encoder output.
            let h = if t5 {
                layer.cross_norm.forward(&x)?
            } else {
                x.clone()
            };
            let (ck, cv) = &state.cross_kv[i];
            let out = attend(
                &self.heads(&layer.cross.q.forward(&h)?)?,
                ck,
                cv,
                scale,
                None,
            )?;
            x = (x + layer.cross.o.forward(&out)?)?;
            if !t5 {
                x = layer.cross_norm.forward(&x)?;
            }
            // Feed-forward.
            x = if t5 {
                let h = layer.ff_norm.forward(&x)?;
                (&x + layer.ff.forward(&h, c.activation)?)?
            } else {
                layer
                    .ff_norm
                    .forward(&(&x + layer.ff.forward(&x, c.activation)?)?)?
            };
        }
        state.len = total;
        Ok(match &self.flavor {
            Flavor::T5 { decoder_final, .. } => {
                self.lm_head.forward(&decoder_final.forward(&x)?)?
            }
            Flavor::Bart {
                final_logits_bias, ..
            } => self.lm_head.forward(&x)?.broadcast_add(final_logits_bias)?,
        })
    }

    /// A decoding session over one encoded input, for [`crate::generation::generate`].
    pub fn session(&self, input: &[u32]) -> Result<Seq2SeqSession<'_>> {
        let encoder_output = self.encode(input)?;
        Ok(Seq2SeqSession {
            model: self,
            encoder_output,
        })
    }
}

/// One encoded input, ready to decode.
#[derive(Debug, Clone)]
pub struct Seq2SeqSession<'a> {
    model: &'a Seq2SeqLm,
    encoder_output: Tensor,
}

impl Seq2SeqSession<'_> {
    /// The encoder's output `[tokens, d_model]`.
    pub fn encoder_output(&self) -> &Tensor {
        &self.encoder_output
    }
}

fn last_logits(logits: &Tensor) -> Result<Vec<f32>> {
    let t = logits.dim(0)?;
    Ok(logits.get(t - 1)?.to_vec1()?)
}

impl Decoding for Seq2SeqSession<'_> {
    type State = Seq2SeqState;

    fn prefill(&self, prompt: &[u32]) -> Result<(Seq2SeqState, Vec<f32>)> {
        let mut state = self.model.start(&self.encoder_output)?;
        let logits = self.model.decode(prompt, &mut state)?;
        Ok((state, last_logits(&logits)?))
    }

    fn step(&self, state: &mut Seq2SeqState, token: u32) -> Result<Vec<f32>> {
        last_logits(&self.model.decode(&[token], state)?)
    }

    fn context_length(&self) -> usize {
        match self.model.config.family {
            // Relative positions have no hard limit.
            Seq2SeqFamily::T5 => usize::MAX / 2,
            Seq2SeqFamily::Bart | Seq2SeqFamily::Marian => {
                self.model.config.max_position_embeddings
            }
        }
    }
}
