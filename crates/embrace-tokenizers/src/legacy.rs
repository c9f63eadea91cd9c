//! Tokenizer formats older than `tokenizer.json` that users still have: GPT-2's `vocab.json` +
//! `merges.txt`, and tiktoken rank files (`*.tiktoken`: one `base64(bytes) rank` line per token).
//!
//! Each is turned into the equivalent `tokenizer.json` pipeline (byte-level BPE), so everything
//! else (fast paths, offsets, decoding, saving as `tokenizer.json`) works the same.

use crate::added_vocabulary::AddedToken;
use crate::decoders::Decoder;
use crate::error::{Error, Result};
use crate::models::{Bpe, BpeOptions, Model, Vocab, parse_merge_lines};
use crate::normalized::SplitDelimiterBehavior;
use crate::pre_tokenizers::byte_level::{BYTES_CHAR, ByteLevelOptions};
use crate::pre_tokenizers::{PreTokenizer, SplitPattern};
use crate::processors::PostProcessor;
use crate::tokenizer::{Tokenizer, TokenizerFile};
use base64::Engine as _;
use rustc_hash::FxHashMap;
use std::path::Path;

/// The tiktoken encodings whose split pattern and special tokens are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TiktokenEncoding {
    /// GPT-2 / GPT-3 (`r50k_base`).
    R50k,
    /// Codex (`p50k_base`).
    P50k,
    /// GPT-3.5 / GPT-4 (`cl100k_base`).
    Cl100k,
    /// GPT-4o (`o200k_base`).
    O200k,
}

impl TiktokenEncoding {
    /// The encoding a file stem such as `cl100k_base` names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim_end_matches(".tiktoken") {
            "r50k_base" | "gpt2" => Some(Self::R50k),
            "p50k_base" => Some(Self::P50k),
            "cl100k_base" => Some(Self::Cl100k),
            "o200k_base" => Some(Self::O200k),
            _ => None,
        }
    }

    fn special_tokens(self) -> &'static [(&'static str, u32)] {
        match self {
            Self::R50k | Self::P50k => &[("<|endoftext|>", 50256)],
            Self::Cl100k => &[
                ("<|endoftext|>", 100257),
                ("<|fim_prefix|>", 100258),
                ("<|fim_middle|>", 100259),
                ("<|fim_suffix|>", 100260),
                ("<|endofprompt|>", 100276),
            ],
            Self::O200k => &[("<|endoftext|>", 199999), ("<|endofprompt|>", 200018)],
        }
    }

    /// The pre-tokenizer: the encoding's split pattern, then the byte-level mapping.
    fn pre_tokenizer(self) -> PreTokenizer {
        const CL100K: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        const O200K: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        let byte_level = |use_regex| {
            PreTokenizer::ByteLevel(ByteLevelOptions {
                add_prefix_space: false,
                trim_offsets: true,
                use_regex,
            })
        };
        let pattern = match self {
            Self::R50k | Self::P50k => return byte_level(true),
            Self::Cl100k => CL100K,
            Self::O200k => O200K,
        };
        PreTokenizer::Sequence {
            pretokenizers: vec![
                PreTokenizer::Split {
                    pattern: SplitPattern::regex(pattern),
                    behavior: SplitDelimiterBehavior::Isolated,
                    invert: false,
                },
                byte_level(false),
            ],
        }
    }
}

/// GPT-2's byte-level string of raw token bytes.
fn byte_level_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| BYTES_CHAR[b as usize]).collect()
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

fn byte_level_tokenizer(
    bpe: Bpe,
    pre_tokenizer: PreTokenizer,
    added: Vec<AddedToken>,
) -> Result<Tokenizer> {
    Tokenizer::from_file_parts(TokenizerFile {
        version: "1.0".into(),
        truncation: None,
        padding: None,
        added_tokens: added,
        normalizer: None,
        pre_tokenizer: Some(pre_tokenizer),
        model: Model::BPE(bpe),
        post_processor: Some(PostProcessor::ByteLevel(ByteLevelOptions {
            add_prefix_space: true,
            trim_offsets: false,
            use_regex: true,
        })),
        decoder: Some(Decoder::ByteLevel(ByteLevelOptions {
            add_prefix_space: true,
            trim_offsets: true,
            use_regex: true,
        })),
    })
}

impl Tokenizer {
    /// Builds a GPT-2 style tokenizer from `vocab.json` (token -> id) and `merges.txt`, as
    /// `GPT2TokenizerFast` does: byte-level BPE, GPT-2 split pattern, no prefix space, and
    /// `<|endoftext|>` as special token when the vocabulary has it.
    pub fn from_gpt2_files(
        vocab_json: impl AsRef<Path>,
        merges_txt: impl AsRef<Path>,
    ) -> Result<Self> {
        let vocab_path = vocab_json.as_ref();
        let vocab_text = read(vocab_path)?;
        let de = &mut serde_json::Deserializer::from_str(&vocab_text);
        let vocab: Vocab = serde_path_to_error::deserialize(de).map_err(Error::from_json)?;
        let merges_path = merges_txt.as_ref();
        let merges_text = read(merges_path)?;
        let merges = parse_merge_lines(merges_text.lines().filter(|l| !l.is_empty()))
            .map_err(|m| Error::Invalid(format!("{}: {m}", merges_path.display())))?;
        let added = vocab
            .id("<|endoftext|>")
            .map(|id| AddedToken::special("<|endoftext|>", id))
            .into_iter()
            .collect();
        let bpe = Bpe::new(vocab, merges, BpeOptions::default())?;
        let pre = PreTokenizer::ByteLevel(ByteLevelOptions {
            add_prefix_space: false,
            trim_offsets: true,
            use_regex: true,
        });
        byte_level_tokenizer(bpe, pre, added)
    }

    /// Builds a tokenizer from a tiktoken rank file. The merges are derived from the ranks as
    /// `transformers` does: every split of a token into two tokens becomes a merge, ranked by the
    /// token's rank, so BPE merges in the same order tiktoken does.
    pub fn from_tiktoken_file(path: impl AsRef<Path>, encoding: TiktokenEncoding) -> Result<Self> {
        let path = path.as_ref();
        let text = read(path)?;
        let mut ranks: Vec<(Vec<u8>, u32)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = || {
                Error::Invalid(format!(
                    "{}: line {} is not `base64 rank`",
                    path.display(),
                    i + 1
                ))
            };
            let (b64, rank) = line.split_once(' ').ok_or_else(bad)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| bad())?;
            let rank: u32 = rank.trim().parse().map_err(|_| bad())?;
            ranks.push((bytes, rank));
        }
        ranks.sort_by_key(|&(_, r)| r);
        let by_bytes: FxHashMap<&[u8], u32> =
            ranks.iter().map(|(b, r)| (b.as_slice(), *r)).collect();
        let mut merges: Vec<(u32, u32, u32, String, String)> = Vec::new();
        for (bytes, rank) in &ranks {
            if bytes.len() < 2 {
                continue;
            }
            let mut local: Vec<(u32, u32, u32, String, String)> = (1..bytes.len())
                .filter_map(|i| {
                    let (l, r) = bytes.split_at(i);
                    Some((
                        *rank,
                        *by_bytes.get(l)?,
                        *by_bytes.get(r)?,
                        byte_level_string(l),
                        byte_level_string(r),
                    ))
                })
                .collect();
            local.sort_by_key(|m| (m.1, m.2));
            merges.extend(local);
        }
        merges.sort_by_key(|m| m.0);
        let vocab = Vocab::from_pairs(ranks.iter().map(|(b, r)| (byte_level_string(b), *r)));
        let merges = merges.into_iter().map(|m| (m.3, m.4)).collect();
        let bpe = Bpe::new(vocab, merges, BpeOptions::default())?;
        let added = encoding
            .special_tokens()
            .iter()
            .map(|&(content, id)| AddedToken::special(content, id))
            .collect();
        byte_level_tokenizer(bpe, encoding.pre_tokenizer(), added)
    }
}
