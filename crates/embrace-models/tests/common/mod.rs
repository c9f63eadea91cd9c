//! Helpers shared by the generation tests: the tiny checkpoints of
//! `tests/golden/generation/tiny/<arch>` and their golden tensors.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

/// The folder of a tiny checkpoint.
pub fn dir(arch: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/generation/tiny")
        .join(arch)
}

/// The golden tensors of a tiny checkpoint.
pub fn golden(arch: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir(arch).join("golden.safetensors"), &Device::Cpu).unwrap()
}

/// An integer tensor as token ids.
pub fn ids(t: &Tensor) -> Vec<u32> {
    t.to_dtype(DType::I64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|x| x as u32)
        .collect()
}

/// The rows of a 2-D integer tensor as token ids.
pub fn rows(t: &Tensor) -> Vec<Vec<u32>> {
    (0..t.dim(0).unwrap())
        .map(|i| ids(&t.get(i).unwrap()))
        .collect()
}

/// The largest absolute difference between two tensors of one shape.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
