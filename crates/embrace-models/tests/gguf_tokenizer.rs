//! Tokenizers rebuilt from GGUF metadata against llama.cpp's own test vectors: the
//! `ggml-vocab-*.gguf` files of llama.cpp (asset `llama-cpp-vocab`) come with inputs (`.inp`) and
//! the ids llama.cpp's reference tokenizer produces (`.out`, written from the HF tokenizer).
#![allow(clippy::unwrap_used)]

use embrace_models::causal::{gguf_tokenizer, read_gguf_metadata};

const SEPARATOR: &str = "\n__ggml_vocab_test__\n";

fn check(vocab: &str) -> (usize, Vec<String>) {
    let file = embrace_assets::require("llama-cpp-vocab", format!("ggml-vocab-{vocab}.gguf"));
    let meta = read_gguf_metadata(&file).unwrap();
    let tokenizer = gguf_tokenizer(&meta).unwrap();
    let inputs = std::fs::read_to_string(file.with_extension("gguf.inp")).unwrap();
    let outputs = std::fs::read_to_string(file.with_extension("gguf.out")).unwrap();
    let mut texts: Vec<&str> = inputs.split(SEPARATOR).collect();
    // The file ends with the separator, which leaves an empty last piece.
    if texts.last() == Some(&"") {
        texts.pop();
    }
    let mut expected: Vec<&str> = outputs.split('\n').collect();
    if expected.last() == Some(&"") {
        expected.pop();
    }
    assert_eq!(
        texts.len(),
        expected.len(),
        "{vocab}: inputs and outputs differ in number"
    );
    let mut failures = Vec::new();
    for (text, want) in texts.iter().zip(&expected) {
        let got = tokenizer.encode_ids(text, false).unwrap();
        let got = got.iter().map(|i| format!(" {i}")).collect::<String>();
        if got.trim() != want.trim() {
            failures.push(format!(
                "{text:?}: got [{}] want [{}]",
                got.trim(),
                want.trim()
            ));
        }
    }
    (expected.len(), failures)
}

#[test]
fn gguf_vocabularies_match_llama_cpp() {
    // Byte-level BPE (GPT-2, Llama 3, Qwen2) and SentencePiece BPE (Llama 2, Phi-3).
    for vocab in ["gpt-2", "llama-bpe", "qwen2", "llama-spm", "phi-3"] {
        let (total, failures) = check(vocab);
        assert!(total > 10, "{vocab}: only {total} test vectors");
        eprintln!("{vocab}: {total} vectors, {} differ", failures.len());
        assert!(
            failures.is_empty(),
            "{vocab}: {} of {total} differ:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
