//! The tokenizer embedded in a GGUF file, rebuilt as the equivalent `tokenizer.json`.
//!
//! llama.cpp stores a vocabulary (`tokenizer.ggml.tokens`, `token_type`, `scores`, `merges`)
//! and names its algorithm in `tokenizer.ggml.model`:
//!
//! - `gpt2`: byte-level BPE with merges; `tokenizer.ggml.pre` names the pre-tokenizer regex;
//! - `llama`: SentencePiece BPE, where pieces merge by the score of the result; the merges are
//!   derived from the scores the way transformers' SentencePiece converter does, with byte
//!   fallback for characters outside the vocabulary.
//!
//! Control and unknown tokens become special added tokens, user-defined ones plain added tokens.

use std::collections::{HashMap, HashSet};

use embrace_tokenizers::Tokenizer;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value, json};

use super::gguf::GgufMetadata;
use crate::error::{ModelError, Result};

/// llama.cpp's token types.
const TYPE_UNKNOWN: u64 = 2;
const TYPE_CONTROL: u64 = 3;
const TYPE_USER_DEFINED: u64 = 4;

/// The pre-tokenizer regexes of llama.cpp's `tokenizer.ggml.pre` values (the same as the
/// `tokenizer.json` files the models were converted from).
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn vocab_error(meta: &GgufMetadata, message: impl std::fmt::Display) -> ModelError {
    ModelError::WeightFile {
        path: meta.path().to_owned(),
        message: format!("embedded tokenizer: {message}"),
    }
}

fn byte_level(use_regex: bool) -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

fn split(pattern: &str) -> Value {
    json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false})
}

fn bpe_pre_tokenizer(meta: &GgufMetadata, pre: &str) -> Result<Value> {
    Ok(match pre {
        "default" | "gpt-2" | "gpt2" => byte_level(true),
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        "llama-bpe" | "llama3" | "smaug-bpe" => {
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_PATTERN), byte_level(false)]})
        }
        "qwen2" | "deepseek-r1-qwen" => {
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2_PATTERN), byte_level(false)]})
        }
        other => {
            return Err(vocab_error(
                meta,
                format!(
                    "pre-tokenizer `{other}` is not supported (default, gpt-2, smollm, llama-bpe, \
                     qwen2 are); pass a tokenizer.json instead"
                ),
            ));
        }
    })
}

/// SentencePiece merges from scores: every split of a piece into two pieces of the vocabulary
/// is a merge, ranked by the score of the merged piece (highest first), then by the ids of the
/// two halves. Returns the ids of the halves.
fn merges_from_scores(tokens: &[&str], scores: &[f64], mergeable: &[bool]) -> Vec<(usize, usize)> {
    let index: HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let mut found: Vec<(f64, usize, usize, usize)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        if !mergeable[id] {
            continue;
        }
        for (cut, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(cut);
            if let (Some(&l), Some(&r)) = (index.get(left), index.get(right))
                && mergeable[l]
                && mergeable[r]
            {
                found.push((scores[id], id, l, r));
            }
        }
    }
    found.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    found.into_iter().map(|(_, _, l, r)| (l, r)).collect()
}

/// The `vocab` of a BPE model, written straight from the token list (a JSON object from token
/// to id; a later duplicate keeps the first id, as HuggingFace does) without building a JSON
/// tree of a quarter of a million entries.
struct VocabJson<'a>(&'a [&'a str]);

impl Serialize for VocabJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seen = HashSet::with_capacity(self.0.len());
        let mut map = serializer.serialize_map(None)?;
        for (i, token) in self.0.iter().enumerate() {
            if seen.insert(*token) {
                map.serialize_entry(token, &i)?;
            }
        }
        map.end()
    }
}

/// The `merges` of a BPE model as `[left, right]` pairs, written without copying the strings.
enum MergesJson<'a> {
    /// Pairs as GGUF stores them.
    Pairs(Vec<(&'a str, &'a str)>),
    /// Pairs of token ids.
    Ids(&'a [&'a str], Vec<(usize, usize)>),
}

impl Serialize for MergesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Pairs(pairs) => {
                let mut seq = serializer.serialize_seq(Some(pairs.len()))?;
                for (a, b) in pairs {
                    seq.serialize_element(&[a, b])?;
                }
                seq.end()
            }
            Self::Ids(tokens, ids) => {
                let mut seq = serializer.serialize_seq(Some(ids.len()))?;
                for &(l, r) in ids {
                    seq.serialize_element(&[tokens[l], tokens[r]])?;
                }
                seq.end()
            }
        }
    }
}

/// A BPE `model` object.
#[derive(Serialize)]
struct BpeJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    dropout: Option<f32>,
    unk_token: Option<&'a str>,
    continuing_subword_prefix: Option<&'a str>,
    end_of_word_suffix: Option<&'a str>,
    fuse_unk: bool,
    byte_fallback: bool,
    ignore_merges: bool,
    vocab: VocabJson<'a>,
    merges: MergesJson<'a>,
}

/// The `tokenizer.json` document: the small parts as a JSON tree, the model written directly.
#[derive(Serialize)]
struct FileJson<'a> {
    #[serde(flatten)]
    rest: Map<String, Value>,
    model: BpeJson<'a>,
}

fn bos_template(bos: &str, bos_id: u32) -> Value {
    let special = json!({"SpecialToken": {"id": bos, "type_id": 0}});
    json!({
        "type": "TemplateProcessing",
        "single": [special, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [special, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}
    })
}

/// Rebuilds the tokenizer a GGUF file embeds (`tokenizer.ggml.*`).
pub fn gguf_tokenizer(meta: &GgufMetadata) -> Result<Tokenizer> {
    let kind = meta
        .str("tokenizer.ggml.model")?
        .ok_or_else(|| vocab_error(meta, "`tokenizer.ggml.model` is missing"))?;
    let tokens = meta
        .strings("tokenizer.ggml.tokens")?
        .ok_or_else(|| vocab_error(meta, "`tokenizer.ggml.tokens` is missing"))?;
    let types: Vec<u64> = match meta.numbers("tokenizer.ggml.token_type")? {
        Some(t) if t.len() == tokens.len() => t.into_iter().map(|x| x as u64).collect(),
        Some(t) => {
            return Err(vocab_error(
                meta,
                format!("{} token types for {} tokens", t.len(), tokens.len()),
            ));
        }
        None => vec![1; tokens.len()],
    };
    let id = |key: &str| -> Result<Option<u32>> {
        let id = meta.u64(&format!("tokenizer.ggml.{key}"))?;
        match id {
            Some(n) if n as usize >= tokens.len() => Err(vocab_error(
                meta,
                format!("`{key}` {n} is outside the vocabulary"),
            )),
            other => Ok(other.map(|n| n as u32)),
        }
    };
    let bos = id("bos_token_id")?;
    let unk = id("unknown_token_id")?;

    let mut added = Vec::new();
    for (i, (token, &kind)) in tokens.iter().zip(&types).enumerate() {
        if matches!(kind, TYPE_UNKNOWN | TYPE_CONTROL | TYPE_USER_DEFINED) && !token.is_empty() {
            added.push(json!({
                "id": i, "content": token, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": kind != TYPE_USER_DEFINED,
            }));
        }
    }
    let add_bos = meta.bool("tokenizer.ggml.add_bos_token")?;
    let bos_token = bos.map(|b| tokens[b as usize]);

    let mut file = Map::new();
    file.insert("version".into(), json!("1.0"));
    file.insert("truncation".into(), Value::Null);
    file.insert("padding".into(), Value::Null);
    file.insert("added_tokens".into(), Value::Array(added));
    let model = match kind {
        "gpt2" => {
            let merges = meta
                .strings("tokenizer.ggml.merges")?
                .ok_or_else(|| vocab_error(meta, "`tokenizer.ggml.merges` is missing"))?;
            let merges: Vec<(&str, &str)> = merges
                .iter()
                .map(|m| {
                    m.split_once(' ')
                        .ok_or_else(|| vocab_error(meta, format!("merge {m:?} is not two tokens")))
                })
                .collect::<Result<_>>()?;
            let pre = meta.str("tokenizer.ggml.pre")?.unwrap_or("default");
            file.insert("normalizer".into(), Value::Null);
            file.insert("pre_tokenizer".into(), bpe_pre_tokenizer(meta, pre)?);
            let post = match (add_bos.unwrap_or(false), bos_token, bos) {
                (true, Some(t), Some(id)) => bos_template(t, id),
                _ => Value::Null,
            };
            file.insert("post_processor".into(), post);
            file.insert("decoder".into(), byte_level(true));
            BpeJson {
                kind: "BPE",
                dropout: None,
                unk_token: None,
                continuing_subword_prefix: None,
                end_of_word_suffix: None,
                fuse_unk: false,
                byte_fallback: false,
                ignore_merges: matches!(pre, "llama-bpe" | "llama3"),
                vocab: VocabJson(&tokens),
                merges: MergesJson::Pairs(merges),
            }
        }
        "llama" => {
            let scores = meta
                .numbers("tokenizer.ggml.scores")?
                .ok_or_else(|| vocab_error(meta, "`tokenizer.ggml.scores` is missing"))?;
            if scores.len() != tokens.len() {
                return Err(vocab_error(meta, "scores and tokens differ in length"));
            }
            // Only normal pieces take part in merges (byte, control and unused pieces do not).
            let mergeable: Vec<bool> = types.iter().map(|&t| t == 1).collect();
            let merges = merges_from_scores(&tokens, &scores, &mergeable);
            let add_space_prefix = meta
                .bool("tokenizer.ggml.add_space_prefix")?
                .unwrap_or(true);
            let replace =
                json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"});
            let normalizer = if add_space_prefix {
                json!({"type": "Sequence", "normalizers": [
                    {"type": "Prepend", "prepend": "\u{2581}"}, replace]})
            } else {
                replace
            };
            let mut decoders = vec![
                json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
                json!({"type": "ByteFallback"}),
                json!({"type": "Fuse"}),
            ];
            if add_space_prefix {
                decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
            }
            file.insert("normalizer".into(), normalizer);
            file.insert("pre_tokenizer".into(), Value::Null);
            let post = match (add_bos.unwrap_or(true), bos_token, bos) {
                (true, Some(t), Some(id)) => bos_template(t, id),
                _ => Value::Null,
            };
            file.insert("post_processor".into(), post);
            file.insert(
                "decoder".into(),
                json!({"type": "Sequence", "decoders": decoders}),
            );
            BpeJson {
                kind: "BPE",
                dropout: None,
                unk_token: unk.map(|u| tokens[u as usize]),
                continuing_subword_prefix: None,
                end_of_word_suffix: None,
                fuse_unk: true,
                byte_fallback: true,
                ignore_merges: false,
                vocab: VocabJson(&tokens),
                merges: MergesJson::Ids(&tokens, merges),
            }
        }
        other => {
            return Err(vocab_error(
                meta,
                format!("tokenizer model `{other}` is not supported (gpt2 and llama are)"),
            ));
        }
    };
    let text =
        serde_json::to_string(&FileJson { rest: file, model }).map_err(|e| vocab_error(meta, e))?;
    text.parse::<Tokenizer>().map_err(|e| vocab_error(meta, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_follow_scores() {
        let tokens = ["a", "b", "c", "ab", "abc", "bc"];
        let scores = [0.0, 0.0, 0.0, -1.0, -3.0, -2.0];
        let merges = merges_from_scores(&tokens, &scores, &[true; 6]);
        let pairs: Vec<String> = merges
            .iter()
            .map(|&(l, r)| format!("{} {}", tokens[l], tokens[r]))
            .collect();
        assert_eq!(pairs, ["a b", "b c", "a bc", "ab c"]);
    }
}
