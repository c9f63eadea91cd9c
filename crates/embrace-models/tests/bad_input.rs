//! Bad input gets a clear error, never a panic: unknown architectures, inconsistent configs,
//! shape mismatches, missing tensors, truncated or corrupted weight files, bad inputs.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use embrace_models::{Batch, Model, ModelError, Task};

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/models/tiny")
        .join(name)
}

/// A scratch copy of a tiny model folder.
fn copy_of(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(tiny(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

fn load(dir: &Path, task: Task) -> Result<Model, ModelError> {
    Model::from_pretrained(dir.to_string_lossy(), task)
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, config.to_string()).unwrap();
}

#[test]
fn unknown_model_type_names_the_supported_ones() {
    let dir = copy_of("bert-base");
    edit_config(dir.path(), |c| c["model_type"] = "gpt-j".into());
    let message = load(dir.path(), Task::Base).unwrap_err().to_string();
    assert!(message.contains("gpt-j"), "{message}");
    for supported in [
        "bert",
        "distilbert",
        "electra",
        "modernbert",
        "roberta",
        "xlm-roberta",
    ] {
        assert!(message.contains(supported), "{message}");
    }
}

#[test]
fn shape_mismatch_names_the_tensor_and_both_shapes() {
    let dir = copy_of("bert-base");
    edit_config(dir.path(), |c| c["intermediate_size"] = 40.into());
    let message = load(dir.path(), Task::Base).unwrap_err().to_string();
    assert!(
        message.contains("encoder.layer.0.intermediate.dense.weight"),
        "{message}"
    );
    assert!(
        message.contains("[37, 32]") && message.contains("[40, 32]"),
        "{message}"
    );
}

#[test]
fn missing_head_weights_are_listed_with_the_unused_ones() {
    // A base checkpoint loaded for token classification has no classifier.
    let message = load(&tiny("bert-base"), Task::TokenClassification)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("classifier.weight") && message.contains("classifier.bias"),
        "{message}"
    );
    // A seq-cls checkpoint loaded as MaskedLM lacks the MLM head and leaves the classifier unused.
    let err = load(&tiny("bert-seq-cls"), Task::MaskedLm).unwrap_err();
    let ModelError::MissingWeights {
        missing,
        unexpected,
    } = &err
    else {
        panic!("{err}");
    };
    assert!(
        missing.iter().any(|m| m.starts_with("cls.predictions")),
        "{err}"
    );
    assert!(unexpected.iter().any(|u| u == "classifier.weight"), "{err}");
}

#[test]
fn base_model_loads_from_task_checkpoints_and_reports_unused_tensors() {
    let model = load(&tiny("bert-masked-lm"), Task::Base).unwrap();
    assert!(
        model
            .unused_weights()
            .iter()
            .any(|n| n.starts_with("cls.predictions"))
    );
    let model = load(&tiny("roberta-seq-cls"), Task::Base).unwrap();
    assert!(
        model
            .unused_weights()
            .iter()
            .any(|n| n.starts_with("classifier."))
    );
}

#[test]
fn broken_configs_are_errors() {
    for (text, expect) in [
        ("{", "not valid JSON"),
        ("[]", "not a JSON object"),
        (
            r#"{"model_type": "bert", "num_attention_heads": 5}"#,
            "multiple",
        ),
        (
            r#"{"model_type": "bert", "hidden_act": "mystery"}"#,
            "mystery",
        ),
        (
            r#"{"model_type": "bert", "id2label": {"x": "A"}}"#,
            "id2label",
        ),
        (r#"{"hidden_size": 4}"#, "model_type"),
    ] {
        let dir = copy_of("bert-base");
        std::fs::write(dir.path().join("config.json"), text).unwrap();
        let message = load(dir.path(), Task::Base).unwrap_err().to_string();
        assert!(message.contains(expect), "{text}: {message}");
        assert!(message.contains("config.json"), "names the file: {message}");
    }
}

#[test]
fn no_weights_and_missing_paths_are_errors() {
    let dir = copy_of("bert-base");
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let message = load(dir.path(), Task::Base).unwrap_err().to_string();
    assert!(
        message.contains("no weights") && message.contains("model.safetensors"),
        "{message}"
    );
    let message = Model::from_pretrained("/definitely/not/here", Task::Base)
        .unwrap_err()
        .to_string();
    assert!(message.contains("not found"), "{message}");
}

/// Every truncation and many corruptions of a weight file give an error or (for data bytes) a
/// model; never a panic.
fn corrupt_weights(name: &str, file: &str) {
    let original = std::fs::read(tiny(name).join(file)).unwrap();
    let dir = copy_of(name);
    let path = dir.path().join(file);
    let mut cuts: Vec<usize> = (0..original.len().min(4096)).step_by(7).collect();
    cuts.extend((0..original.len()).step_by(original.len() / 50 + 1));
    cuts.push(original.len() - 1);
    for cut in cuts {
        std::fs::write(&path, &original[..cut]).unwrap();
        let result = load(dir.path(), Task::SequenceClassification);
        assert!(
            result.is_err(),
            "{file} truncated at {cut} of {} loaded",
            original.len()
        );
    }
    // Flip bytes, one position at a time, over the header and a sample of the rest.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut positions: Vec<usize> = (0..original.len().min(2048)).collect();
    for _ in 0..200 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        positions.push((state % original.len() as u64) as usize);
    }
    for at in positions {
        let mut bytes = original.clone();
        bytes[at] ^= 0x5A;
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(model) = load(dir.path(), Task::SequenceClassification) {
            // A corrupted value, not structure: the model must still run.
            let batch = Batch::from_sequences(&[&[2, 7, 9, 3]], None, 0).unwrap();
            model.forward(&batch).unwrap();
        }
    }
}

#[test]
fn corrupted_safetensors_never_panic() {
    corrupt_weights("bert-seq-cls", "model.safetensors");
}

#[test]
fn corrupted_pytorch_bin_never_panics() {
    corrupt_weights("bert-seq-cls-bin", "pytorch_model.bin");
}

#[test]
fn bad_inputs_are_errors() {
    let model = load(&tiny("bert-seq-cls"), Task::SequenceClassification).unwrap();
    let too_big = Batch::from_sequences(&[&[2, 500, 3]], None, 0).unwrap();
    let message = model.forward(&too_big).unwrap_err().to_string();
    assert!(
        message.contains("500") && message.contains("99"),
        "{message}"
    );
    let long: Vec<u32> = (0..80).map(|i| 5 + i % 90).collect();
    let message = model
        .forward(&Batch::from_sequences(&[&long], None, 0).unwrap())
        .unwrap_err()
        .to_string();
    assert!(message.contains("position"), "{message}");
    let bad_type = Batch::from_sequences(&[&[2, 7, 3]], Some(&[&[0, 5, 0]]), 0).unwrap();
    assert!(model.forward(&bad_type).is_err());
    assert!(Batch::new(vec![1, 2, 3], vec![1, 1], None, 1, 3).is_err());
    // An empty batch and an all-padding row are fine.
    let empty = Batch::from_sequences(&[], None, 0).unwrap();
    assert_eq!(
        model.forward(&empty).unwrap().logits.unwrap().dims(),
        &[0, 3]
    );
    let padded = Batch::new(vec![2, 7, 3, 0, 0, 0], vec![1, 1, 1, 0, 0, 0], None, 2, 3).unwrap();
    let logits = model.forward(&padded).unwrap().logits.unwrap();
    assert_eq!(logits.dims(), &[2, 3]);
}
