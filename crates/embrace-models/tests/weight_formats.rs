//! Weight files in every shape transformers writes them: sharded safetensors with an index,
//! f16 and bf16 tensors, legacy `gamma`/`beta` names (SPLADE, in the conformance test) and
//! PyTorch `.bin` (also there). Outputs are compared with the single-file f32 checkpoint.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use embrace_models::{Batch, Model, Task};

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/models/tiny")
        .join(name)
}

fn logits(dir: &Path) -> Vec<f32> {
    let model =
        Model::from_pretrained(dir.to_string_lossy(), Task::SequenceClassification).unwrap();
    let batch = Batch::from_sequences(&[&[2, 17, 33, 41, 3], &[2, 60, 3]], None, 0).unwrap();
    let out = model.forward(&batch).unwrap().logits.unwrap();
    out.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn scratch_with_config(from: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        tiny(from).join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    dir
}

fn tensors(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(tiny(name).join("model.safetensors"), &Device::Cpu).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn sharded_safetensors_with_an_index_load_like_one_file() {
    let want = logits(&tiny("bert-seq-cls"));
    let all = tensors("bert-seq-cls");
    let dir = scratch_with_config("bert-seq-cls");
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (file, group) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        let shard: HashMap<String, Tensor> = group
            .iter()
            .map(|n| ((*n).clone(), all[*n].clone()))
            .collect();
        candle_core::safetensors::save(&shard, dir.path().join(file)).unwrap();
        for n in group {
            weight_map.insert((*n).clone(), file.into());
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    assert_eq!(max_diff(&logits(dir.path()), &want), 0.0);

    // An index that points outside the folder is refused.
    let evil = serde_json::json!({"weight_map": {"x": "../../etc/passwd"}});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        evil.to_string(),
    )
    .unwrap();
    let message =
        Model::from_pretrained(dir.path().to_string_lossy(), Task::SequenceClassification)
            .unwrap_err()
            .to_string();
    assert!(message.contains("plain file name"), "{message}");
}

#[test]
fn f16_and_bf16_checkpoints_load_as_f32() {
    let want = logits(&tiny("bert-seq-cls"));
    for (dtype, tolerance) in [(DType::F16, 5e-3), (DType::BF16, 5e-2)] {
        let all: HashMap<String, Tensor> = tensors("bert-seq-cls")
            .into_iter()
            .map(|(n, t)| (n, t.to_dtype(dtype).unwrap()))
            .collect();
        let dir = scratch_with_config("bert-seq-cls");
        candle_core::safetensors::save(&all, dir.path().join("model.safetensors")).unwrap();
        let diff = max_diff(&logits(dir.path()), &want);
        assert!(diff < tolerance, "{dtype:?}: max diff {diff}");
    }
}
