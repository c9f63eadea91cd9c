//! `embrace train token-classification`, run as a user runs it: a CoNLL file in, a LoRA
//! adapter folder out that `embrace pipeline ner` loads; the split written for a baseline; bad
//! input rejected before training.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{embrace, tiny};
use serde_json::Value;

/// Sentences in the tiny tokenizer's vocabulary: a person and a city in each.
fn conll(path: &Path, sentences: usize) {
    let (names, cities) = (["john", "mary"], ["paris", "london"]);
    let mut text = String::new();
    for i in 0..sentences {
        let (name, city) = (names[i % 2], cities[i / 2 % 2]);
        for (word, tag) in [(name, "B-PER"), ("went", "O"), ("to", "O"), (city, "B-LOC")] {
            text.push_str(&format!("{word}\t{tag}\n"));
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// `embrace train token-classification` of a LoRA adapter on the tiny BERT with `data` (the
/// data options) into `output`; returns the printed report.
fn train_lora(data: &[&str], output: &Path, hf_home: &Path) -> Value {
    let model = tiny("bert-cls");
    let mut args = vec!["train", "token-classification", "-m", &model];
    args.extend(data);
    args.extend([
        "--adapter",
        "lora",
        "--epochs",
        "6",
        "--batch-size",
        "8",
        "--learning-rate",
        "2e-2",
        "--max-length",
        "32",
        "--output",
        output.to_str().unwrap(),
    ]);
    let out = embrace(&args, hf_home);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn token_classification_trains_a_lora_adapter_that_the_ner_pipeline_loads() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("ner.txt");
    conll(&data, 40);
    let (out_dir, split) = (home.path().join("ner"), home.path().join("split"));
    let report = train_lora(
        &[
            "--train-file",
            data.to_str().unwrap(),
            "--write-split",
            split.to_str().unwrap(),
        ],
        &out_dir,
        home.path(),
    );
    assert!(report["test"]["f1"].as_f64().unwrap() > 0.9, "{report}");
    let adapter: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(adapter["task_type"], "TOKEN_CLS");
    // The split: 4 test, 4 validation and 32 training sentences, as CoNLL.
    let count = |name: &str| {
        std::fs::read_to_string(split.join(name))
            .unwrap()
            .split("\n\n")
            .filter(|s| !s.trim().is_empty())
            .count()
    };
    assert_eq!(
        (
            count("train.txt"),
            count("validation.txt"),
            count("test.txt")
        ),
        (32, 4, 4)
    );
    // Training again from the written split, with the same options, gives the same run.
    let again_dir = home.path().join("again");
    let split_file = |name: &str| split.join(name).to_str().unwrap().to_owned();
    let again = train_lora(
        &[
            "--train-file",
            &split_file("train.txt"),
            "--validation-file",
            &split_file("validation.txt"),
            "--test-file",
            &split_file("test.txt"),
        ],
        &again_dir,
        home.path(),
    );
    assert_eq!(again["test"], report["test"]);
    assert_eq!(again["validation"], report["validation"]);
    let out = embrace(
        &[
            "pipeline",
            "ner",
            "-m",
            out_dir.to_str().unwrap(),
            "--aggregation-strategy",
            "simple",
            "mary went to paris",
        ],
        home.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entities: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<(&str, &str)> = entities
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["entity_group"].as_str().unwrap(),
                e["word"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(found, [("PER", "mary"), ("LOC", "paris")]);
}

#[test]
fn token_classification_rejects_bad_input_before_training() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("ner.txt");
    conll(&data, 40);
    let run = |extra: &[&str], file: &Path| {
        let mut args = vec!["train", "token-classification", "-m"];
        let model = tiny("bert-cls");
        args.push(&model);
        args.extend(["--train-file", file.to_str().unwrap(), "--adapter", "lora"]);
        args.extend(extra);
        let output = home.path().join("out");
        args.extend(["--output", output.to_str().unwrap()]);
        let out = embrace(&args, home.path());
        assert!(!out.status.success());
        assert!(!output.join("adapter_config.json").exists());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["--max-length", "100000"], &data);
    assert!(err.contains("positions"), "{err}");
    let broken = home.path().join("broken.txt");
    std::fs::write(&broken, "john\tB-PER\nwent\n").unwrap();
    let err = run(&[], &broken);
    assert!(err.contains("line 2 has no tag"), "{err}");
}
