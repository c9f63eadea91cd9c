//! Where a decoder's tensors come from: a transformers checkpoint (safetensors / `.bin`) or a
//! GGUF file, behind one naming scheme.
//!
//! The model asks for *logical* names (`embed`, `layers.3.q`, `final_norm` …); each source maps
//! them to its own convention (`model.layers.3.self_attn.q_proj.weight`, `blk.3.attn_q.weight`).

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::quantized::QTensor;
use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};

use super::config::DecoderFamily;
use super::gguf::gguf_error;
use super::layers::{Embedding, Linear, own_format_from_reader};
use crate::error::{ModelError, Result};
use crate::kernels::quant::QuantLinear;
use crate::weights::Checkpoint;

/// A source of decoder tensors addressed by logical names.
pub(crate) trait DecoderWeights {
    /// Whether the logical tensor (`.weight`) exists.
    fn has(&self, logical: &str) -> bool;
    /// A dense vector (norm weight or bias), dequantized, of `len` values.
    fn vector(&self, logical: &str, suffix: &str, len: usize) -> Result<Tensor>;
    /// A projection with weight `[out, in]`, and its bias when `bias` is set.
    fn linear(&self, logical: &str, out: usize, input: usize, bias: bool) -> Result<Linear>;
    /// An embedding table `[rows, cols]`.
    fn embedding(&self, logical: &str, rows: usize, cols: usize) -> Result<Embedding>;
}

fn missing(name: String) -> ModelError {
    ModelError::MissingWeights {
        missing: vec![name],
        unexpected: Vec::new(),
    }
}

fn check_shape(name: &str, found: &[usize], expected: &[usize]) -> Result<()> {
    if found != expected {
        return Err(ModelError::ShapeMismatch {
            name: name.to_owned(),
            expected: expected.to_vec(),
            found: found.to_vec(),
        });
    }
    Ok(())
}

/// The transformers names of a family.
fn transformers_name(family: DecoderFamily, logical: &str) -> String {
    let mut parts = logical.splitn(3, '.');
    let first = parts.next().unwrap_or_default();
    if first == "layers" {
        let index = parts.next().unwrap_or_default();
        let part = parts.next().unwrap_or_default();
        let gemma = family == DecoderFamily::Gemma3;
        let tail = match (family, part) {
            (DecoderFamily::Gpt2, "attn_norm") => "ln_1",
            (DecoderFamily::Gpt2, "qkv") => "attn.c_attn",
            (DecoderFamily::Gpt2, "o") => "attn.c_proj",
            (DecoderFamily::Gpt2, "mlp_norm") => "ln_2",
            (DecoderFamily::Gpt2, "fc") => "mlp.c_fc",
            (DecoderFamily::Gpt2, "proj") => "mlp.c_proj",
            (_, "attn_norm") => "input_layernorm",
            (_, "q") => "self_attn.q_proj",
            (_, "k") => "self_attn.k_proj",
            (_, "v") => "self_attn.v_proj",
            (_, "o") => "self_attn.o_proj",
            (_, "q_norm") => "self_attn.q_norm",
            (_, "k_norm") => "self_attn.k_norm",
            (_, "post_attn_norm") => "post_attention_layernorm",
            (_, "mlp_norm") if gemma => "pre_feedforward_layernorm",
            (_, "mlp_norm") => "post_attention_layernorm",
            (_, "post_mlp_norm") => "post_feedforward_layernorm",
            (_, "gate") => "mlp.gate_proj",
            (_, "up") => "mlp.up_proj",
            (_, "down") => "mlp.down_proj",
            (_, other) => other,
        };
        return match family {
            DecoderFamily::Gpt2 => format!("transformer.h.{index}.{tail}"),
            _ => format!("model.layers.{index}.{tail}"),
        };
    }
    match (family, logical) {
        (DecoderFamily::Gpt2, "embed") => "transformer.wte".into(),
        (DecoderFamily::Gpt2, "positions") => "transformer.wpe".into(),
        (DecoderFamily::Gpt2, "final_norm") => "transformer.ln_f".into(),
        (_, "embed") => "model.embed_tokens".into(),
        (_, "final_norm") => "model.norm".into(),
        (_, other) => other.into(),
    }
}

/// Tensors of a transformers checkpoint.
pub(crate) struct CheckpointWeights<'a> {
    checkpoint: &'a Checkpoint,
    family: DecoderFamily,
}

impl<'a> CheckpointWeights<'a> {
    pub(crate) fn new(checkpoint: &'a Checkpoint, family: DecoderFamily) -> Self {
        Self { checkpoint, family }
    }

    /// The stored name: with the base-model prefix, or without it (a bare `LlamaModel` /
    /// `GPT2Model` checkpoint).
    fn stored(&self, logical: &str, suffix: &str) -> Option<String> {
        let full = format!("{}.{suffix}", transformers_name(self.family, logical));
        if self.checkpoint.shape(&full).is_some() {
            return Some(full);
        }
        let bare = full
            .strip_prefix("model.")
            .or_else(|| full.strip_prefix("transformer."))?;
        self.checkpoint
            .shape(bare)
            .is_some()
            .then(|| bare.to_owned())
    }

    fn read(&self, logical: &str, suffix: &str, shape: &[usize]) -> Result<Tensor> {
        let name = self.stored(logical, suffix).ok_or_else(|| {
            missing(format!(
                "{}.{suffix}",
                transformers_name(self.family, logical)
            ))
        })?;
        read_tensor(self.checkpoint, &name, shape)
    }
}

/// Reads a checkpoint tensor as f32, checking its shape.
pub(crate) fn read_tensor(checkpoint: &Checkpoint, name: &str, shape: &[usize]) -> Result<Tensor> {
    let found = checkpoint
        .shape(name)
        .ok_or_else(|| missing(name.to_owned()))?
        .to_vec();
    check_shape(name, &found, shape)?;
    let data = checkpoint.read_f32(name)?;
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

impl DecoderWeights for CheckpointWeights<'_> {
    fn has(&self, logical: &str) -> bool {
        self.stored(logical, "weight").is_some()
    }

    fn vector(&self, logical: &str, suffix: &str, len: usize) -> Result<Tensor> {
        self.read(logical, suffix, &[len])
    }

    fn linear(&self, logical: &str, out: usize, input: usize, bias: bool) -> Result<Linear> {
        // GPT-2 stores `Conv1D` weights as `[in, out]`.
        let weight = if self.family == DecoderFamily::Gpt2 && logical.starts_with("layers.") {
            self.read(logical, "weight", &[input, out])?
                .t()?
                .contiguous()?
        } else {
            self.read(logical, "weight", &[out, input])?
        };
        let bias = if bias {
            Some(self.read(logical, "bias", &[out])?)
        } else {
            None
        };
        Ok(Linear::dense(weight, bias))
    }

    fn embedding(&self, logical: &str, rows: usize, cols: usize) -> Result<Embedding> {
        Ok(Embedding::Dense(self.read(
            logical,
            "weight",
            &[rows, cols],
        )?))
    }
}

/// The llama.cpp names.
fn gguf_name(logical: &str) -> String {
    let mut parts = logical.splitn(3, '.');
    let first = parts.next().unwrap_or_default();
    if first == "layers" {
        let index = parts.next().unwrap_or_default();
        let part = parts.next().unwrap_or_default();
        let tail = match part {
            "attn_norm" => "attn_norm",
            "q" => "attn_q",
            "k" => "attn_k",
            "v" => "attn_v",
            "qkv" => "attn_qkv",
            "o" => "attn_output",
            "q_norm" => "attn_q_norm",
            "k_norm" => "attn_k_norm",
            "post_attn_norm" => "post_attention_norm",
            "mlp_norm" => "ffn_norm",
            "post_mlp_norm" => "post_ffw_norm",
            "gate" => "ffn_gate",
            "up" => "ffn_up",
            "down" => "ffn_down",
            other => other,
        };
        return format!("blk.{index}.{tail}");
    }
    match logical {
        "embed" => "token_embd".into(),
        "positions" => "position_embd".into(),
        "final_norm" => "output_norm".into(),
        "lm_head" => "output".into(),
        other => other.into(),
    }
}

/// Tensors of a GGUF file, each read from the file when the model asks for it (quantized
/// blocks stay quantized). A tensor that Embrace's kernels re-lay out is dropped as soon as its
/// copy is built, so loading never holds the file's data twice.
pub(crate) struct GgufWeights<'a> {
    path: &'a Path,
    content: &'a Content,
    reader: Mutex<BufReader<File>>,
}

impl<'a> GgufWeights<'a> {
    pub(crate) fn new(path: &'a Path, content: &'a Content, reader: BufReader<File>) -> Self {
        Self {
            path,
            content,
            reader: Mutex::new(reader),
        }
    }

    fn get(&self, logical: &str, suffix: &str, shape: &[usize]) -> Result<GgufTensor> {
        let name = format!("{}.{suffix}", gguf_name(logical));
        let info = self
            .content
            .tensor_infos
            .get(&name)
            .ok_or_else(|| missing(name.clone()))?;
        check_shape(&name, info.shape.dims(), shape)?;
        let error = |message: String| gguf_error(self.path, format!("tensor `{name}`: {message}"));
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        if let &[rows, cols] = info.shape.dims() {
            let start = self.content.tensor_data_offset.saturating_add(info.offset);
            reader
                .seek(SeekFrom::Start(start))
                .map_err(|e| error(e.to_string()))?;
            let own =
                own_format_from_reader(info.ggml_dtype, rows, cols, &mut *reader).map_err(|e| {
                    match e.kind() {
                        std::io::ErrorKind::UnexpectedEof => {
                            error("the file ends inside the tensor's data (truncated?)".into())
                        }
                        _ => error(e.to_string()),
                    }
                })?;
            if let Some(own) = own {
                return Ok(GgufTensor::Own(own));
            }
        }
        let tensor = self
            .content
            .tensor(&mut *reader, &name, &Device::Cpu)
            .map_err(|e| error(e.to_string()))?;
        Ok(GgufTensor::Candle(Arc::new(tensor)))
    }
}

/// A GGUF tensor as loaded: one of Embrace's own matrices, read straight from the file, or a
/// candle tensor.
enum GgufTensor {
    Own(Arc<dyn QuantLinear>),
    Candle(Arc<QTensor>),
}

impl GgufTensor {
    /// The candle tensor (vectors are never read as own matrices).
    fn candle(self, name: &str) -> Result<Arc<QTensor>> {
        match self {
            Self::Candle(t) => Ok(t),
            Self::Own(_) => Err(ModelError::Input(format!("`{name}` is not a vector"))),
        }
    }
}

impl DecoderWeights for GgufWeights<'_> {
    fn has(&self, logical: &str) -> bool {
        self.content
            .tensor_infos
            .contains_key(&format!("{}.weight", gguf_name(logical)))
    }

    fn vector(&self, logical: &str, suffix: &str, len: usize) -> Result<Tensor> {
        Ok(self
            .get(logical, suffix, &[len])?
            .candle(logical)?
            .dequantize(&Device::Cpu)?)
    }

    fn linear(&self, logical: &str, out: usize, input: usize, bias: bool) -> Result<Linear> {
        let weight = self.get(logical, "weight", &[out, input])?;
        let bias = if bias {
            Some(self.vector(logical, "bias", out)?)
        } else {
            None
        };
        match weight {
            GgufTensor::Own(own) => Ok(Linear::shared(own, bias)),
            GgufTensor::Candle(weight) => Linear::quantized(weight, bias),
        }
    }

    fn embedding(&self, logical: &str, rows: usize, cols: usize) -> Result<Embedding> {
        Ok(match self.get(logical, "weight", &[rows, cols])? {
            GgufTensor::Own(own) => Embedding::Ggml(own),
            GgufTensor::Candle(table) if table.dtype().block_size() == 1 => {
                Embedding::Dense(table.dequantize(&Device::Cpu)?)
            }
            GgufTensor::Candle(table) => Embedding::Quantized(table),
        })
    }
}
