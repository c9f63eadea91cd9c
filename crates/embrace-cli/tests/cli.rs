//! The `embrace` binary, run as a user runs it.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use serde_json::Value;
use std::process::{Command, Output};

fn embrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_embrace"))
        .args(args)
        .output()
        .unwrap()
}

fn minilm() -> String {
    embrace_assets::require("all-minilm-l6-v2", ".")
        .display()
        .to_string()
}

#[test]
fn help_lists_the_commands() {
    let out = embrace(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for cmd in ["tokenize", "decode"] {
        assert!(help.contains(cmd), "{help}");
    }
    let out = embrace(&["--version"]);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("embrace ")
    );
}

#[test]
fn tokenize_writes_one_json_object_per_input_with_hf_keys() {
    let out = embrace(&[
        "tokenize",
        "--tokenizer",
        &minilm(),
        "--padding",
        "none",
        "Hello world!",
        "Second",
    ]);
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
    assert_eq!(lines.len(), 2);
    let first = &lines[0];
    for key in [
        "input_ids",
        "tokens",
        "offsets",
        "attention_mask",
        "token_type_ids",
        "special_tokens_mask",
        "word_ids",
    ] {
        assert!(first.get(key).is_some(), "missing {key}");
    }
    assert_eq!(
        first["input_ids"],
        serde_json::json!([101, 7592, 2088, 999, 102])
    );
    assert_eq!(
        first["offsets"],
        serde_json::json!([[0, 0], [0, 5], [6, 11], [11, 12], [0, 0]])
    );
    assert_eq!(first["word_ids"], serde_json::json!([null, 0, 1, 2, null]));
}

#[test]
fn tokenizer_file_settings_apply_unless_overridden() {
    // all-MiniLM's tokenizer.json pads to 128.
    let out = embrace(&["tokenize", "-t", &minilm(), "Hi"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["input_ids"].as_array().unwrap().len(), 128);
    let out = embrace(&[
        "tokenize",
        "-t",
        &minilm(),
        "--padding",
        "none",
        "--max-length",
        "3",
        "one two three four",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["input_ids"], serde_json::json!([101, 2028, 102]));
    assert!(v["overflowing"].as_array().is_some_and(|o| !o.is_empty()));
}

#[test]
fn file_inputs_and_pairs() {
    let dir = std::env::temp_dir().join(format!("embrace-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("inputs.txt");
    std::fs::write(&file, "first line\n\nthird line\n").unwrap();
    let out = embrace(&[
        "tokenize",
        "-t",
        &minilm(),
        "--padding",
        "none",
        "--pair",
        "the pair",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "empty lines are inputs too");
    assert_eq!(
        lines[1]["input_ids"],
        serde_json::json!([101, 102, 1996, 3940, 102])
    );
    assert_eq!(
        lines[1]["token_type_ids"],
        serde_json::json!([0, 0, 1, 1, 1])
    );

    std::fs::write(&file, b"fine\n\xff\xfe broken\n").unwrap();
    let out = embrace(&[
        "tokenize",
        "-t",
        &minilm(),
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line 2 is not valid UTF-8"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn decode_round_trips() {
    let out = embrace(&[
        "decode",
        "-t",
        &minilm(),
        "--skip-special-tokens",
        "101",
        "7592",
        "2088",
        "999",
        "102",
    ]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "hello world!\n");
}

#[test]
fn errors_are_one_clear_line_with_causes_and_fail() {
    let out = embrace(&["tokenize", "-t", "/no/such/tokenizer.json", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: tokenizer \"/no/such/tokenizer.json\" not found"),
        "{err}"
    );

    let dir = std::env::temp_dir().join(format!("embrace-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("tokenizer.json");
    std::fs::write(
        &bad,
        r#"{"model": {"type": "WordPiece", "vocab": {"a": -1}}}"#,
    )
    .unwrap();
    let out = embrace(&["tokenize", "-t", bad.to_str().unwrap(), "x"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cannot load tokenizer"), "{err}");
    assert!(
        err.contains("caused by: invalid tokenizer definition at `model.vocab.a`"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn repo_ids_resolve_through_the_shared_hub_cache() {
    // A cache laid out as huggingface_hub writes it.
    let root = std::env::temp_dir().join(format!("embrace-cli-hub-{}", std::process::id()));
    let repo = root.join("models--acme--tiny-bert");
    let commit = "2439f60ef33a0d46d85da5001d52aeda5b00ce9f";
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
    std::fs::copy(
        embrace_assets::require("all-minilm-l6-v2", "tokenizer.json"),
        repo.join("blobs/cafe"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../../blobs/cafe",
        repo.join("snapshots").join(commit).join("tokenizer.json"),
    )
    .unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();

    let run = |spec: &str| {
        Command::new(env!("CARGO_BIN_EXE_embrace"))
            .args(["tokenize", "-t", spec, "--padding", "none", "Hello world!"])
            .env("HF_HUB_CACHE", &root)
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap()
    };
    for spec in ["acme/tiny-bert", &format!("acme/tiny-bert@{commit}")] {
        let out = run(spec);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["input_ids"],
            serde_json::json!([101, 7592, 2088, 999, 102])
        );
    }
    let out = run("acme/not-cached");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("is not in the cache"), "{err}");
    assert!(err.contains("offline mode is on"), "{err}");
    std::fs::remove_dir_all(&root).ok();
}
