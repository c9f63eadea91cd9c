//! CPU kernels of the inference path, on plain `f32` slices.
//!
//! The forward passes of this crate run on these few fused kernels instead of one tensor
//! operation per step: a transformer layer is three or four matrix products (through the `gemm`
//! crate, the engine behind candle's CPU matmul) and a handful of single-pass kernels that fuse
//! what frameworks run as separate operations (bias + activation, residual + bias + LayerNorm,
//! scale + mask + softmax inside attention). That removes the per-operation overhead and the
//! extra passes over memory that make candle slower than PyTorch on BERT-class models.
//!
//! Invariants: every kernel checks the slice lengths it is given against the dimensions it is
//! told (a mismatch is a bug in the caller and panics with a message, it can never read out of
//! bounds); the math functions are accurate to a few ULP of `f32` (checked against `f64` in the
//! tests), far below the 1e-4 tolerance of the conformance tests.

pub(crate) mod attention;
pub(crate) mod cached_attention;
pub(crate) mod gelu_table;
pub(crate) mod ggml_cpu;
pub(crate) mod math;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod quant;
pub(crate) mod rowdot;

pub(crate) use attention::{AttentionShape, attention};
pub(crate) use matmul::linear;
pub(crate) use norm::{add_bias_residual_layer_norm, layer_norm};
