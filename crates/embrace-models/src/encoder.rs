//! The post-LayerNorm transformer encoder of BERT, RoBERTa, XLM-RoBERTa, ELECTRA and DistilBERT.
//!
//! The five architectures compute the same layer (attention, add & norm, feed-forward, add &
//! norm) and differ in tensor names, position numbering, token types and ELECTRA's embedding
//! projection; [`Layout`] captures those differences so one implementation serves them all.

use crate::activation::Activation;
use crate::config::{EncoderConfig, ModelType};
use crate::error::Result;
use crate::input::{Packed, PositionRule};
use crate::kernels::{self, AttentionShape};
use crate::layers::{Linear, Norm, Scope};
use crate::weights::WeightLoader;

/// Tensor names and rules of one architecture family.
struct Layout {
    /// Prefix of layer `i`'s tensors, e.g. `encoder.layer.{i}.`.
    layer: fn(usize) -> String,
    query: &'static str,
    key: &'static str,
    value: &'static str,
    attention_out: &'static str,
    attention_norm: &'static str,
    ffn_in: &'static str,
    ffn_out: &'static str,
    output_norm: &'static str,
}

const BERT_LAYOUT: Layout = Layout {
    layer: |i| format!("encoder.layer.{i}."),
    query: "attention.self.query",
    key: "attention.self.key",
    value: "attention.self.value",
    attention_out: "attention.output.dense",
    attention_norm: "attention.output.LayerNorm",
    ffn_in: "intermediate.dense",
    ffn_out: "output.dense",
    output_norm: "output.LayerNorm",
};

const DISTILBERT_LAYOUT: Layout = Layout {
    layer: |i| format!("transformer.layer.{i}."),
    query: "attention.q_lin",
    key: "attention.k_lin",
    value: "attention.v_lin",
    attention_out: "attention.out_lin",
    attention_norm: "sa_layer_norm",
    ffn_in: "ffn.lin1",
    ffn_out: "ffn.lin2",
    output_norm: "output_layer_norm",
};

/// Token, position and segment embeddings followed by a LayerNorm (and ELECTRA's projection).
pub(crate) struct Embeddings {
    /// `[vocab, embedding_size]`; also the tied MLM decoder.
    pub word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    norm: Norm,
    project: Option<Linear>,
    width: usize,
    vocab: usize,
    max_positions: usize,
    type_vocab: usize,
    pub rule: PositionRule,
}

impl Embeddings {
    fn load(w: &WeightLoader<'_>, kind: ModelType, c: &EncoderConfig) -> Result<Self> {
        let e = c.embedding_size;
        let word = w.base("embeddings.word_embeddings.weight", &[c.vocab_size, e])?;
        let position = w.base(
            "embeddings.position_embeddings.weight",
            &[c.max_position_embeddings, e],
        )?;
        let token_type = if c.type_vocab_size > 0 {
            w.base(
                "embeddings.token_type_embeddings.weight",
                &[c.type_vocab_size, e],
            )?
        } else {
            Vec::new()
        };
        let norm = Norm::load(
            w,
            Scope::Base,
            "embeddings.LayerNorm",
            e,
            c.layer_norm_eps,
            true,
        )?;
        let project = if kind == ModelType::Electra && e != c.hidden_size {
            Some(Linear::load(
                w,
                Scope::Base,
                "embeddings_project",
                e,
                c.hidden_size,
                true,
            )?)
        } else {
            None
        };
        let rule = match kind {
            ModelType::Roberta | ModelType::XlmRoberta => PositionRule::Roberta {
                padding_idx: c.pad_token_id,
            },
            _ => PositionRule::PaddedIndex,
        };
        Ok(Self {
            word,
            position,
            token_type,
            norm,
            project,
            width: e,
            vocab: c.vocab_size,
            max_positions: c.max_position_embeddings,
            type_vocab: c.type_vocab_size,
            rule,
        })
    }

    /// The embedded tokens `[tokens, hidden]`.
    fn forward(&self, packed: &Packed) -> Result<Vec<f32>> {
        let e = self.width;
        let mut out = vec![0.0f32; packed.len() * e];
        for (t, row) in out.chunks_exact_mut(e).enumerate() {
            let id = packed.ids[t] as usize;
            let pos = packed.positions[t] as usize;
            let typ = packed.type_ids[t] as usize;
            check_index("input id", id, self.vocab)?;
            check_index("position", pos, self.max_positions)?;
            row.copy_from_slice(&self.word[id * e..(id + 1) * e]);
            row.iter_mut()
                .zip(&self.position[pos * e..(pos + 1) * e])
                .for_each(|(x, p)| *x += p);
            if self.type_vocab > 0 {
                check_index("token type id", typ, self.type_vocab)?;
                row.iter_mut()
                    .zip(&self.token_type[typ * e..(typ + 1) * e])
                    .for_each(|(x, p)| *x += p);
            }
        }
        self.norm.apply(&mut out);
        Ok(match &self.project {
            Some(p) => p.forward(&out, packed.len(), Activation::Identity),
            None => out,
        })
    }
}

pub(crate) fn check_index(what: &str, index: usize, size: usize) -> Result<()> {
    if index >= size {
        return Err(crate::error::ModelError::Input(format!(
            "{what} {index} is out of range (the model has {size})"
        )));
    }
    Ok(())
}

/// One post-LN transformer layer with Q, K and V fused into one projection.
struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    ffn_in: Linear,
    ffn_out: Linear,
    output_norm: Norm,
}

impl Layer {
    fn load(w: &WeightLoader<'_>, layout: &Layout, i: usize, c: &EncoderConfig) -> Result<Self> {
        let p = (layout.layer)(i);
        let h = c.hidden_size;
        let linear = |name: &str, inp, out| {
            Linear::load(w, Scope::Base, &format!("{p}{name}"), inp, out, true)
        };
        let norm = |name: &str| {
            Norm::load(
                w,
                Scope::Base,
                &format!("{p}{name}"),
                h,
                c.layer_norm_eps,
                true,
            )
        };
        Ok(Self {
            qkv: Linear::concat(&[
                linear(layout.query, h, h)?,
                linear(layout.key, h, h)?,
                linear(layout.value, h, h)?,
            ]),
            attention_out: linear(layout.attention_out, h, h)?,
            attention_norm: norm(layout.attention_norm)?,
            ffn_in: linear(layout.ffn_in, h, c.intermediate_size)?,
            ffn_out: linear(layout.ffn_out, c.intermediate_size, h)?,
            output_norm: norm(layout.output_norm)?,
        })
    }

    fn forward(
        &self,
        x: Vec<f32>,
        packed: &Packed,
        shape: AttentionShape,
        act: Activation,
    ) -> Vec<f32> {
        let rows = packed.len();
        let qkv = self.qkv.forward(&x, rows, Activation::Identity);
        let context = kernels::attention(&qkv, &packed.sequences, shape);
        drop(qkv);
        let mut attended = self.attention_out.matmul(&context, rows);
        let n = &self.attention_norm;
        kernels::add_bias_residual_layer_norm(
            &mut attended,
            &self.attention_out.bias,
            &x,
            &n.gamma,
            &n.beta,
            n.eps,
        );
        drop(x);
        let inner = self.ffn_in.forward(&attended, rows, act);
        let mut out = self.ffn_out.matmul(&inner, rows);
        let n = &self.output_norm;
        kernels::add_bias_residual_layer_norm(
            &mut out,
            &self.ffn_out.bias,
            &attended,
            &n.gamma,
            &n.beta,
            n.eps,
        );
        out
    }
}

/// The encoder: embeddings and layers, producing the last hidden state of packed tokens.
pub(crate) struct PostLnEncoder {
    pub embeddings: Embeddings,
    layers: Vec<Layer>,
    shape: AttentionShape,
    act: Activation,
}

impl PostLnEncoder {
    pub fn load(w: &WeightLoader<'_>, kind: ModelType, c: &EncoderConfig) -> Result<Self> {
        let layout = if kind == ModelType::DistilBert {
            &DISTILBERT_LAYOUT
        } else {
            &BERT_LAYOUT
        };
        let embeddings = Embeddings::load(w, kind, c)?;
        let layers = (0..c.num_layers)
            .map(|i| Layer::load(w, layout, i, c))
            .collect::<Result<_>>()?;
        Ok(Self {
            embeddings,
            layers,
            shape: AttentionShape {
                hidden: c.hidden_size,
                heads: c.num_heads,
                half_window: None,
            },
            act: c.hidden_act,
        })
    }

    /// The last hidden state `[tokens, hidden]` of the packed tokens.
    pub fn forward(&self, packed: &Packed) -> Result<Vec<f32>> {
        let mut x = self.embeddings.forward(packed)?;
        for layer in &self.layers {
            x = layer.forward(x, packed, self.shape, self.act);
        }
        Ok(x)
    }
}
