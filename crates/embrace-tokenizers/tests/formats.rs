//! The older tokenizer formats (GPT-2 `vocab.json` + `merges.txt`, tiktoken rank files) against
//! golden ids from Python `tokenizers` and OpenAI's `tiktoken` (`tools/oracle/gen_tokenizer_formats.py`).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use embrace_tokenizers::{TiktokenEncoding, Tokenizer};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn formats_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/tokenizers/formats")
}

/// (text, ids) records of a golden file.
fn records(file: &str) -> Vec<(String, Vec<u32>)> {
    std::fs::read_to_string(formats_dir().join(file))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let ids = serde_json::from_value(v["input_ids"].clone()).unwrap();
            (v["text"].as_str().unwrap().to_owned(), ids)
        })
        .collect()
}

fn check(tokenizer: &Tokenizer, file: &str, specials: &[&str]) {
    let recs = records(file);
    assert!(!recs.is_empty());
    let mut problems = Vec::new();
    let mut checked = 0;
    for (text, expected) in &recs {
        // tiktoken's encode_ordinary reads special-token text as ordinary text; we parse it as the
        // special token (as HuggingFace does), so such texts are not comparable.
        if specials.iter().any(|s| text.contains(s)) {
            continue;
        }
        checked += 1;
        let got = tokenizer.encode_ids(text, true).unwrap();
        if &got != expected {
            problems.push(format!(
                "{text:?}\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
        // Byte-level decoding gives the text back.
        assert_eq!(&tokenizer.decode(&got, false), text);
    }
    assert!(checked > 100, "{file}: only {checked} records checked");
    assert!(
        problems.is_empty(),
        "{file}: {} differ:\n{}",
        problems.len(),
        problems[..problems.len().min(5)].join("\n")
    );
}

#[test]
fn gpt2_vocab_and_merges_files() {
    let dir = embrace_assets::require("gpt2-encoder", ".");
    let t = Tokenizer::from_gpt2_files(dir.join("encoder.json"), dir.join("vocab.bpe")).unwrap();
    check(&t, "gpt2-vocab-merges.jsonl", &["<|endoftext|>"]);
}

fn tiktoken(name: &str) {
    let path = embrace_assets::require("tiktoken-ranks", format!("{name}.tiktoken"));
    // The file name picks the encoding, through the same loader the CLI uses.
    let t = Tokenizer::from_path(&path).unwrap();
    assert!(TiktokenEncoding::from_name(name).is_some());
    check(
        &t,
        &format!("tiktoken-{name}.jsonl"),
        &["<|endoftext|>", "<|fim_", "<|endofprompt|>"],
    );
}

#[test]
fn tiktoken_r50k() {
    tiktoken("r50k_base");
}

#[test]
fn tiktoken_p50k() {
    tiktoken("p50k_base");
}

#[test]
fn tiktoken_cl100k() {
    tiktoken("cl100k_base");
}

#[test]
fn tiktoken_o200k() {
    tiktoken("o200k_base");
}

#[test]
fn bert_vocab_txt_matches_its_tokenizer_json() {
    let dir = embrace_assets::require("all-minilm-l6-v2", ".");
    let from_vocab = Tokenizer::from_path(dir.join("vocab.txt")).unwrap();
    let mut from_json = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    from_json.with_truncation(None).unwrap();
    from_json.with_padding(None);
    for text in ["Hello world!", "Déjà vu, 日本語 [MASK] don't", ""] {
        let a = from_vocab.encode(text, Some("a pair"), true).unwrap();
        let b = from_json.encode(text, Some("a pair"), true).unwrap();
        assert_eq!(a, b, "{text:?}");
        assert_eq!(
            from_vocab.decode(a.ids(), true),
            from_json.decode(b.ids(), true)
        );
    }
}
