//! Bad input gets a clear error, never a panic; saved tokenizers load back identical; random text
//! encodes exactly as HuggingFace's own Rust crate does (an in-process differential test).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use embrace_tokenizers::{Error, Tokenizer};
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/tokenizers")
}

/// The real tokenizer files the goldens cover: (name, path).
fn real_tokenizers() -> Vec<(&'static str, PathBuf)> {
    vec![
        (
            "bert",
            embrace_assets::require("all-minilm-l6-v2", "tokenizer.json"),
        ),
        ("gpt2", golden_dir().join("gpt2/tokenizer.json")),
        (
            "llama2",
            embrace_assets::require("tokenizer-llama2", "l2_supercat_tokenizer_config.json"),
        ),
        (
            "llama3",
            embrace_assets::require("tokenizer-llama3", "tokenizer.json"),
        ),
        (
            "mistral",
            embrace_assets::require("tokenizer-mistral", "tokenizer.json"),
        ),
        (
            "qwen3",
            embrace_assets::require("tokenizer-qwen3", "tokenizer.json"),
        ),
        (
            "o200k",
            embrace_assets::require("tokenizer-o200k", "tokenizer.json"),
        ),
        (
            "deepseek-v3",
            embrace_assets::require("tokenizer-deepseek-v3", "tokenizer.json"),
        ),
        (
            "xlm-r",
            embrace_assets::require("tokenizer-xlm-roberta", "tokenizer.json"),
        ),
    ]
}

fn json_error(doc: &str) -> (String, String) {
    match doc.parse::<Tokenizer>() {
        Err(Error::Json { path, message }) => (path, message),
        Err(e) => panic!("expected a JSON error, got {e}"),
        Ok(_) => panic!("expected an error"),
    }
}

const MINIMAL: &str = r#"{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1}}}"#;

#[test]
fn minimal_file_loads() {
    let t: Tokenizer = MINIMAL.parse().unwrap();
    assert_eq!(t.encode("a", None, true).unwrap().ids(), [1]);
}

#[test]
fn malformed_json_names_the_path() {
    let (path, message) = json_error(r#"{"model": {"type": "WordPiece", "vocab": {"a": "one"}}}"#);
    assert_eq!(path, "model.vocab.a");
    assert!(message.contains("expected u32"), "{message}");

    // Tagged components (normalizers, pre-tokenizers, ...) are located to the component.
    let (path, message) = json_error(
        r#"{"normalizer": {"type": "Strip", "strip_left": 3}, "model": {"type": "WordLevel", "vocab": {}}}"#,
    );
    assert!(path.starts_with("normalizer"), "{path}");
    assert!(message.contains("boolean"), "{message}");

    let (path, message) =
        json_error(r#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}}"#);
    assert_eq!(path, "model.merges[0]");
    assert!(message.contains("two tokens"), "{message}");

    let (_, message) = json_error(r#"{"model": {"type": "WordPiece", "vocab": {"a": 1}"#);
    assert!(message.contains("EOF"), "{message}");
}

#[test]
fn unknown_component_names_itself() {
    let (path, message) = json_error(
        r#"{"pre_tokenizer": {"type": "Frobnicate"}, "model": {"type": "WordLevel", "vocab": {}}}"#,
    );
    assert!(path.starts_with("pre_tokenizer"), "{path}");
    assert!(message.contains("Frobnicate"), "{message}");
    let (path, message) = json_error(r#"{"model": {"type": "Magic", "vocab": {}}}"#);
    assert!(path.starts_with("model"), "{path}");
    assert!(message.contains("Magic"), "{message}");
}

#[test]
fn invalid_regex_and_inconsistent_files_are_errors() {
    let (path, message) = json_error(
        r#"{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"},
            "model": {"type": "WordLevel", "vocab": {}}}"#,
    );
    assert_eq!(path, "pre_tokenizer");
    assert!(message.contains("unclosed"), "{message}");
    let (path, message) = json_error(
        r#"{"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[X]", "type_id": 0}}],
            "pair": [], "special_tokens": {}}, "model": {"type": "WordLevel", "vocab": {}}}"#,
    );
    assert_eq!(path, "post_processor");
    assert!(message.contains("[X]"), "{message}");
    // A model without unknown token meeting an unknown word: an error, not a panic.
    let t: Tokenizer =
        r#"{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}}}"#
            .parse()
            .unwrap();
    assert!(matches!(
        t.encode("b", None, false),
        Err(Error::MissingUnk { .. })
    ));
}

#[test]
fn missing_file_is_an_io_error() {
    match Tokenizer::from_file("/nonexistent/tokenizer.json") {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("tokenizer.json")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn saved_tokenizers_load_back_identical() {
    let texts = [
        "Hello world! It's 2026.",
        "  Déjà vu — 日本語のテキスト 🤗 <s> [CLS] <|endoftext|>",
        "",
    ];
    let dir = std::env::temp_dir().join(format!("embrace-roundtrip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, path) in real_tokenizers() {
        let original = Tokenizer::from_file(&path).unwrap();
        let saved = dir.join(format!("{name}.json"));
        original.save(&saved, false).unwrap();
        let reloaded = Tokenizer::from_file(&saved).unwrap();
        assert_eq!(
            original.to_json(false).unwrap(),
            reloaded.to_json(false).unwrap(),
            "{name}: saving is not stable"
        );
        for text in texts {
            let a = original.encode(text, Some("pair text"), true).unwrap();
            let b = reloaded.encode(text, Some("pair text"), true).unwrap();
            assert_eq!(a, b, "{name}: {text:?}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A deterministic generator of nasty strings.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn text(&mut self) -> String {
        const PIECES: &[&str] = &[
            "the",
            " quick",
            " Brown",
            "fox",
            "'s",
            "'LL",
            " don't",
            "123",
            "4567",
            "3.14",
            " ",
            "  ",
            "\t",
            "\n",
            "\r\n",
            "\u{a0}",
            "\u{3000}",
            "\u{2003}",
            "!",
            "?!",
            "...",
            "--",
            "(",
            ")",
            "[CLS]",
            "<s>",
            "</s>",
            "<|endoftext|>",
            "<unk>",
            "é",
            "e\u{301}",
            "ﬁ",
            "ß",
            "İ",
            "Ω",
            "日本",
            "語",
            "中文",
            "한국어",
            "ไทย",
            "עברית",
            "العربية",
            "हिन्दी",
            "🤗",
            "👍🏽",
            "👨\u{200d}👩\u{200d}👧",
            "\u{0}",
            "\u{7f}",
            "\u{200b}",
            "\u{feff}",
            "\u{fffd}",
            "▁",
            "Ġ",
            "##",
            "\u{10ffff}",
            "\u{e000}",
            "a\u{5ae}\u{300}b",
            "①",
            "²",
        ];
        let n = self.below(12);
        let mut s = String::new();
        for _ in 0..n {
            if self.below(10) == 0 {
                // A random scalar value.
                let c = char::from_u32(self.below(0x30000) as u32).unwrap_or('x');
                s.push(c);
            } else {
                s.push_str(PIECES[self.below(PIECES.len())]);
            }
        }
        s
    }
}

#[test]
fn random_text_matches_huggingface_and_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // EMBRACE_RANDOM_CASES raises the count for a longer run.
    let cases = std::env::var("EMBRACE_RANDOM_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(250);
    let inputs: Vec<String> = (0..cases).map(|_| rng.text()).collect();
    let mut problems = Vec::new();
    for (name, path) in real_tokenizers() {
        let mut ours = Tokenizer::from_file(&path).unwrap();
        let mut theirs = hf_tokenizers::Tokenizer::from_file(&path).unwrap();
        ours.with_truncation(None).unwrap();
        ours.with_padding(None);
        theirs.with_truncation(None).unwrap();
        theirs.with_padding(None);
        for text in &inputs {
            let a = ours.encode_char_offsets(text, None, true).unwrap();
            let b = theirs.encode_char_offsets(text.as_str(), true).unwrap();
            if a.ids() != b.get_ids()
                || a.offsets() != b.get_offsets()
                || a.word_ids() != b.get_word_ids()
            {
                problems.push(format!(
                    "{name}: {text:?}\n  ids {:?} vs {:?}\n  offsets {:?} vs {:?}",
                    a.ids(),
                    b.get_ids(),
                    a.offsets(),
                    b.get_offsets()
                ));
                continue;
            }
            for skip in [false, true] {
                let da = ours.decode(a.ids(), skip);
                let db = theirs.decode(b.get_ids(), skip).unwrap();
                if da != db {
                    problems.push(format!(
                        "{name}: decode({skip}) of {text:?}: {da:?} vs {db:?}"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences; first:\n{}",
        problems.len(),
        problems[..problems.len().min(6)].join("\n")
    );
}

/// The SentencePiece fast path skips the precompiled map on text that `leaves_alone` clears; the
/// map must then indeed change nothing, on XLM-R's real map, over the golden inputs and random
/// text (combining marks after ASCII, compatibility chars, controls).
#[test]
fn precompiled_leaves_alone_only_text_it_does_not_change() {
    use embrace_tokenizers::normalized::NormalizedString;
    use embrace_tokenizers::normalizers::Precompiled;
    let path = embrace_assets::require("tokenizer-xlm-roberta", "tokenizer.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let normalizer = &json["normalizer"];
    let maps: Vec<&serde_json::Value> = std::iter::once(normalizer)
        .chain(normalizer["normalizers"].as_array().into_iter().flatten())
        .filter(|n| n["type"] == "Precompiled")
        .collect();
    let map: Precompiled = serde_json::from_value(maps[0]["precompiled_charsmap"].clone()).unwrap();

    let mut texts: Vec<String> = Vec::new();
    for file in [
        "prose",
        "multilingual",
        "unicode",
        "adversarial",
        "llamacpp",
    ] {
        let lines = std::fs::read_to_string(golden_dir().join(format!("inputs/{file}.jsonl")));
        for line in lines.unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            texts.push(v["text"].as_str().unwrap().to_owned());
        }
    }
    let mut rng = Rng(7);
    texts.extend((0..3000).map(|_| rng.text()));

    let mut alone = 0;
    for text in &texts {
        if !map.leaves_alone(text) {
            continue;
        }
        alone += 1;
        let mut n = NormalizedString::from(text.as_str());
        map.normalize(&mut n);
        assert_eq!(n.get(), text, "left alone but normalized: {text:?}");
        assert_eq!(
            n.alignments(),
            NormalizedString::from(text.as_str()).alignments(),
            "{text:?}"
        );
    }
    // Both outcomes occur, so the check above is not vacuous.
    assert!(alone > texts.len() / 4, "{alone} of {}", texts.len());
    assert!(alone < texts.len(), "{alone} of {}", texts.len());
}
