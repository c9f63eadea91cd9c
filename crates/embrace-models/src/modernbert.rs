//! ModernBERT: a pre-LayerNorm encoder with rotary positions, GeGLU feed-forward layers, no
//! biases by default, and sliding-window attention on most layers.

use crate::activation::Activation;
use crate::config::{EncoderConfig, ModernBertOptions};
use crate::encoder::check_index;
use crate::error::{ModelError, Result};
use crate::input::Packed;
use crate::kernels::{self, AttentionShape, attention::apply_rope, math};
use crate::layers::{Linear, Norm, Scope};
use crate::weights::WeightLoader;

struct Layer {
    /// `None` on layer 0, where transformers uses an identity.
    attn_norm: Option<Norm>,
    wqkv: Linear,
    wo: Linear,
    mlp_norm: Norm,
    /// `[2 * intermediate, hidden]`: the input half then the gate half.
    wi: Linear,
    mlp_out: Linear,
    global: bool,
}

/// The ModernBERT encoder (`model.` in task checkpoints).
pub(crate) struct ModernBertEncoder {
    word: Vec<f32>,
    embed_norm: Norm,
    layers: Vec<Layer>,
    final_norm: Norm,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    vocab: usize,
    act: Activation,
    options: ModernBertOptions,
}

impl ModernBertEncoder {
    pub fn load(w: &WeightLoader<'_>, c: &EncoderConfig) -> Result<Self> {
        let options = c
            .modernbert
            .clone()
            .ok_or_else(|| ModelError::Config("ModernBERT options missing".into()))?;
        let h = c.hidden_size;
        let i = c.intermediate_size;
        let eps = c.layer_norm_eps;
        let norm = |name: &str| Norm::load(w, Scope::Base, name, h, eps, options.norm_bias);
        let layers = (0..c.num_layers)
            .map(|n| {
                let p = format!("layers.{n}.");
                Ok(Layer {
                    attn_norm: if n == 0 {
                        None
                    } else {
                        Some(norm(&format!("{p}attn_norm"))?)
                    },
                    wqkv: Linear::load(
                        w,
                        Scope::Base,
                        &format!("{p}attn.Wqkv"),
                        h,
                        3 * h,
                        options.attention_bias,
                    )?,
                    wo: Linear::load(
                        w,
                        Scope::Base,
                        &format!("{p}attn.Wo"),
                        h,
                        h,
                        options.attention_bias,
                    )?,
                    mlp_norm: norm(&format!("{p}mlp_norm"))?,
                    wi: Linear::load(
                        w,
                        Scope::Base,
                        &format!("{p}mlp.Wi"),
                        h,
                        2 * i,
                        options.mlp_bias,
                    )?,
                    mlp_out: Linear::load(
                        w,
                        Scope::Base,
                        &format!("{p}mlp.Wo"),
                        i,
                        h,
                        options.mlp_bias,
                    )?,
                    global: options.global_layers[n],
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            word: w.base("embeddings.tok_embeddings.weight", &[c.vocab_size, h])?,
            embed_norm: norm("embeddings.norm")?,
            layers,
            final_norm: norm("final_norm")?,
            hidden: h,
            heads: c.num_heads,
            intermediate: i,
            vocab: c.vocab_size,
            act: c.hidden_act,
            options,
        })
    }

    /// The token-embedding matrix (tied to the MLM decoder).
    pub fn word_embeddings(&self) -> &[f32] {
        &self.word
    }

    /// The last hidden state `[tokens, hidden]` (after the final norm).
    pub fn forward(&self, packed: &Packed) -> Result<Vec<f32>> {
        let (h, rows) = (self.hidden, packed.len());
        let mut x = vec![0.0f32; rows * h];
        for (row, &id) in x.chunks_exact_mut(h).zip(&packed.ids) {
            check_index("input id", id as usize, self.vocab)?;
            row.copy_from_slice(&self.word[id as usize * h..(id as usize + 1) * h]);
        }
        self.embed_norm.apply(&mut x);
        for layer in &self.layers {
            // attention block: x += Wo(attn(norm(x)))
            let normed = match &layer.attn_norm {
                Some(n) => {
                    let mut y = x.clone();
                    n.apply(&mut y);
                    y
                }
                None => x.clone(),
            };
            let mut qkv = layer.wqkv.forward(&normed, rows, Activation::Identity);
            drop(normed);
            let theta = if layer.global {
                self.options.global_rope_theta
            } else {
                self.options.local_rope_theta
            };
            apply_rope(&mut qkv, h, self.heads, &packed.positions, theta);
            let shape = AttentionShape {
                hidden: h,
                heads: self.heads,
                half_window: (!layer.global).then_some(self.options.local_attention / 2),
            };
            let context = kernels::attention(&qkv, &packed.sequences, shape);
            drop(qkv);
            let attended = layer.wo.forward(&context, rows, Activation::Identity);
            x.iter_mut().zip(&attended).for_each(|(a, b)| *a += b);
            // MLP block: x += Wo(act(input) * gate)
            let mut normed = x.clone();
            layer.mlp_norm.apply(&mut normed);
            let wide = layer.wi.forward(&normed, rows, Activation::Identity);
            let inter = self.intermediate;
            let mut gated = vec![0.0f32; rows * inter];
            for (out, both) in gated
                .chunks_exact_mut(inter)
                .zip(wide.chunks_exact(2 * inter))
            {
                out.copy_from_slice(&both[..inter]);
                math::add_bias_activation(out, &[], self.act);
                out.iter_mut()
                    .zip(&both[inter..])
                    .for_each(|(a, g)| *a *= g);
            }
            let mlp = layer.mlp_out.forward(&gated, rows, Activation::Identity);
            x.iter_mut().zip(&mlp).for_each(|(a, b)| *a += b);
        }
        self.final_norm.apply(&mut x);
        Ok(x)
    }
}
