//! Conformance with `transformers`: tiny random checkpoints of every architecture x head and the
//! real MiniLM / SPLADE models, against outputs recorded by `tools/oracle/gen_models.py`.
//!
//! Every comparison is the max absolute difference over real (unpadded) positions, on the
//! padded batch and on each sequence run alone; the bound is 1e-4 (f32).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use embrace_models::sentence_transformers::SentenceTransformer;
use embrace_models::{Batch, Model, Task};

const TOLERANCE: f32 = 1e-4;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/models")
}

fn load_golden(dir: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join("golden.safetensors"), &Device::Cpu).unwrap()
}

fn ints(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|v| v as u32)
        .collect()
}

fn floats(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Max |got - want| over rows whose mask is 1 (`mask` has one entry per row of `width`).
fn max_diff(got: &Tensor, want: &Tensor, mask: Option<&[u32]>) -> f32 {
    assert_eq!(got.dims(), want.dims(), "shapes differ");
    let (g, w) = (floats(got), floats(want));
    let rows = mask.map_or(1, |m| m.len());
    let width = g.len() / rows;
    let mut worst = 0.0f32;
    for r in 0..rows {
        if mask.is_some_and(|m| m[r] == 0) {
            continue;
        }
        for i in r * width..(r + 1) * width {
            worst = worst.max((g[i] - w[i]).abs());
        }
    }
    worst
}

fn check(what: &str, got: &Tensor, want: &Tensor, mask: Option<&[u32]>) {
    let diff = max_diff(got, want, mask);
    eprintln!("{what}: max abs diff {diff:.2e}");
    assert!(
        diff <= TOLERANCE,
        "{what}: max abs diff {diff:e} > {TOLERANCE:e}"
    );
}

fn task_of(name: &str) -> Task {
    let head = name.split_once('-').map(|(_, h)| h).unwrap_or(name);
    let head = head.strip_prefix("roberta-").unwrap_or(head);
    match head {
        h if h.starts_with("base") => Task::Base,
        h if h.starts_with("seq-cls") => Task::SequenceClassification,
        h if h.starts_with("token-cls") => Task::TokenClassification,
        h if h.starts_with("qa") => Task::QuestionAnswering,
        h if h.starts_with("masked-lm") => Task::MaskedLm,
        h if h.starts_with("multiple-choice") => Task::MultipleChoice,
        other => panic!("unknown head in {name}: {other}"),
    }
}

/// Compares every output the golden file has for one forward pass (`prefix` = "" or "single.i.").
fn compare_outputs(
    name: &str,
    prefix: &str,
    golden: &HashMap<String, Tensor>,
    out: &embrace_models::ModelOutput,
    mask: &[u32],
) {
    let hidden_key = if golden.contains_key(&format!("{prefix}last_hidden_state")) {
        format!("{prefix}last_hidden_state")
    } else {
        format!("{prefix}hidden_states.last")
    };
    check(
        &format!("{name} {hidden_key}"),
        &out.last_hidden_state,
        &golden[&hidden_key],
        Some(mask),
    );
    if let Some(want) = golden.get(&format!("{prefix}pooler_output")) {
        check(
            &format!("{name} pooler"),
            out.pooler_output.as_ref().unwrap(),
            want,
            None,
        );
    }
    for (key, got) in [
        ("start_logits", &out.start_logits),
        ("end_logits", &out.end_logits),
    ] {
        if let Some(want) = golden.get(&format!("{prefix}{key}")) {
            check(
                &format!("{name} {prefix}{key}"),
                got.as_ref().unwrap(),
                want,
                Some(mask),
            );
        }
    }
    if let Some(want) = golden.get(&format!("{prefix}logits")) {
        let got = out.logits.as_ref().unwrap();
        // Per-token logits are masked; per-sequence logits are compared whole.
        let token_level = want.rank() == 3;
        check(
            &format!("{name} {prefix}logits"),
            got,
            want,
            token_level.then_some(mask),
        );
    }
}

#[test]
fn tiny_checkpoints_match_transformers() {
    let root = golden_dir().join("tiny");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.len() >= 36,
        "expected every architecture x head, found {}",
        names.len()
    );
    for name in &names {
        let dir = root.join(name);
        let task = task_of(name);
        let model = Model::from_pretrained(dir.to_string_lossy(), task)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let golden = load_golden(&dir);
        let ids_t = &golden["input_ids"];
        let dims = ids_t.dims().to_vec();
        let seq = *dims.last().unwrap();
        let rows = ids_t.elem_count() / seq;
        let ids = ints(ids_t);
        let mask = ints(&golden["attention_mask"]);
        let types = golden.get("token_type_ids").map(ints);
        let batch = Batch::new(ids.clone(), mask.clone(), types.clone(), rows, seq).unwrap();
        let out = if task == Task::MultipleChoice {
            model.forward_choices(&batch, dims[1]).unwrap()
        } else {
            model.forward(&batch).unwrap()
        };
        compare_outputs(name, "", &golden, &out, &mask);

        // Each sequence (or example, for multiple choice) alone, without padding.
        for i in 0.. {
            let prefix = format!("single.{i}.");
            let Some(hidden) = golden
                .get(&format!("{prefix}hidden_states.last"))
                .or_else(|| golden.get(&format!("{prefix}last_hidden_state")))
            else {
                break;
            };
            let (rows_i, len) = (hidden.dim(0).unwrap(), hidden.dim(1).unwrap());
            let first_row = if task == Task::MultipleChoice {
                i * rows_i
            } else {
                i
            };
            let take = |v: &[u32]| -> Vec<u32> {
                (first_row..first_row + rows_i)
                    .flat_map(|r| v[r * seq..r * seq + len].to_vec())
                    .collect()
            };
            let single_mask = take(&mask);
            let single = Batch::new(
                take(&ids),
                single_mask.clone(),
                types.as_deref().map(take),
                rows_i,
                len,
            )
            .unwrap();
            let out = if task == Task::MultipleChoice {
                model.forward_choices(&single, rows_i).unwrap()
            } else {
                model.forward(&single).unwrap()
            };
            compare_outputs(name, &prefix, &golden, &out, &single_mask);
        }
    }
}

#[test]
fn real_models_match_transformers() {
    for (name, asset, task) in [
        ("all-minilm-l6-v2", "all-minilm-l6-v2", Task::Base),
        ("splade-tiny", "splade-tiny", Task::MaskedLm),
    ] {
        let model_dir = embrace_assets::require(asset, "config.json");
        let model_dir = model_dir.parent().unwrap();
        let model = Model::from_pretrained(model_dir.to_string_lossy(), task).unwrap();
        let golden = load_golden(&golden_dir().join("real").join(name));
        let ids_t = &golden["input_ids"];
        let (rows, seq) = ids_t.dims2().unwrap();
        let ids = ints(ids_t);
        let mask = ints(&golden["attention_mask"]);
        let types = golden.get("token_type_ids").map(ints);
        let batch = Batch::new(ids.clone(), mask.clone(), types.clone(), rows, seq).unwrap();
        let out = model.forward(&batch).unwrap();
        check(
            &format!("{name} last_hidden_state"),
            &out.last_hidden_state,
            &golden["last_hidden_state"],
            Some(&mask),
        );
        if let Some(want) = golden.get("logits_stride97") {
            let logits = out.logits.as_ref().unwrap();
            let vocab = logits.dim(2).unwrap();
            let columns: Vec<u32> = (0..vocab as u32).step_by(97).collect();
            let index = Tensor::new(columns.as_slice(), &Device::Cpu).unwrap();
            let strided = logits.index_select(&index, 2).unwrap();
            check(&format!("{name} logits"), &strided, want, Some(&mask));
        }
    }
}

#[test]
fn sentence_embeddings_match_sentence_transformers() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(golden_dir().join("sentence-transformers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5);
    let minilm = embrace_assets::require("all-minilm-l6-v2", "modules.json");
    let minilm_golden = golden_dir().join("real/all-minilm-l6-v2");
    for (model_dir, golden_dir) in dirs
        .iter()
        .map(|d| (d.clone(), d.clone()))
        .chain([(minilm.parent().unwrap().to_owned(), minilm_golden)])
    {
        let name = golden_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let st = SentenceTransformer::from_pretrained(model_dir.to_string_lossy()).unwrap();
        let golden = load_golden(&golden_dir);
        let inputs: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(golden_dir.join("inputs.json")).unwrap())
                .unwrap();
        let texts: Vec<String> = inputs
            .get("texts")
            .unwrap_or(&inputs)
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let got = st.encode(&refs, 2).unwrap();
        let want = &golden["sentence_embedding"];
        check(&format!("{name} sentence_embedding"), &got, want, None);
        // Cosine similarity per sentence, the acceptance measure for MiniLM.
        let (g, w) = (
            got.to_vec2::<f32>().unwrap(),
            want.to_vec2::<f32>().unwrap(),
        );
        for (a, b) in g.iter().zip(&w) {
            let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
            let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(
                dot / (na * nb) >= 0.99999,
                "{name}: cosine {}",
                dot / (na * nb)
            );
        }
    }
}
