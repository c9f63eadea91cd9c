//! Normalizers: the first stage of the pipeline, which cleans up the raw text (Unicode
//! normalization, lowercasing, accent stripping, ...) while keeping the alignment to the original.

mod bert;
mod precompiled;
mod unicode;

pub use bert::BertNormalizer;
pub(crate) use bert::{BertCharKind, bert_char_kind, is_chinese_char};
pub use precompiled::Precompiled;
pub(crate) use unicode::is_nonspacing_mark;

use crate::normalized::NormalizedString;
use serde::{Deserialize, Serialize};

/// A normalizer as `tokenizer.json` names it in its `normalizer` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Normalizer {
    /// BERT's cleaning: control chars, whitespace, CJK spacing, accents, lowercase.
    BertNormalizer(BertNormalizer),
    /// Unicode canonical decomposition.
    NFD,
    /// Unicode canonical composition.
    NFC,
    /// Unicode compatibility decomposition.
    NFKD,
    /// Unicode compatibility composition.
    NFKC,
    /// Lowercase (Unicode).
    Lowercase,
    /// Remove combining marks (use after NFD).
    StripAccents,
    /// Strip whitespace on the left and/or right.
    Strip {
        /// Strip leading whitespace.
        #[serde(default)]
        strip_left: bool,
        /// Strip trailing whitespace.
        #[serde(default)]
        strip_right: bool,
    },
    /// Prepend a string.
    Prepend {
        /// The string to prepend.
        prepend: String,
    },
    /// Replace every occurrence of a literal string.
    Replace {
        /// What to look for.
        pattern: ReplacePattern,
        /// What to put instead.
        content: String,
    },
    /// SentencePiece's precompiled normalization map.
    Precompiled {
        /// The map, base64-encoded.
        precompiled_charsmap: Precompiled,
    },
    /// SentencePiece's NMT normalization: drop control chars, map odd spaces to a space.
    Nmt,
    /// Map every byte to GPT-2's byte-level alphabet.
    ByteLevel,
    /// Apply normalizers in order.
    Sequence {
        /// The normalizers.
        normalizers: Vec<Normalizer>,
    },
}

/// The pattern of a `Replace` normalizer or decoder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "ReplacePatternJson", into = "ReplacePatternJson")]
pub enum ReplacePattern {
    /// A literal string.
    String(String),
    /// A regular expression (the source, and the compiled form or why it does not compile).
    Regex(String, Result<Box<fancy_regex::Regex>, String>),
}

impl PartialEq for ReplacePattern {
    fn eq(&self, other: &Self) -> bool {
        ReplacePatternJson::from(self.clone()) == ReplacePatternJson::from(other.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum ReplacePatternJson {
    String(String),
    Regex(String),
}

impl From<ReplacePatternJson> for ReplacePattern {
    fn from(j: ReplacePatternJson) -> Self {
        match j {
            ReplacePatternJson::String(s) => ReplacePattern::String(s),
            ReplacePatternJson::Regex(r) => {
                let compiled = fancy_regex::Regex::new(&crate::pre_tokenizers::onig_compat(&r))
                    .map(Box::new)
                    .map_err(|e| format!("invalid replace pattern {r:?}: {e}"));
                ReplacePattern::Regex(r, compiled)
            }
        }
    }
}

impl From<ReplacePattern> for ReplacePatternJson {
    fn from(p: ReplacePattern) -> Self {
        match p {
            ReplacePattern::String(s) => ReplacePatternJson::String(s),
            ReplacePattern::Regex(r, _) => ReplacePatternJson::Regex(r),
        }
    }
}

impl ReplacePattern {
    /// Byte ranges of the matches in `text`.
    pub(crate) fn find(&self, text: &str) -> Vec<std::ops::Range<usize>> {
        match self {
            ReplacePattern::String(p) if p.is_empty() => Vec::new(),
            ReplacePattern::String(p) => text
                .match_indices(p.as_str())
                .map(|(i, m)| i..i + m.len())
                .collect(),
            ReplacePattern::Regex(_, Ok(re)) => re
                .find_iter(text)
                .flatten()
                .filter(|m| m.start() < m.end())
                .map(|m| m.start()..m.end())
                .collect(),
            ReplacePattern::Regex(_, Err(_)) => Vec::new(),
        }
    }

    /// Why the pattern cannot be used, if it cannot.
    pub fn error(&self) -> Option<&str> {
        match self {
            ReplacePattern::Regex(_, Err(e)) => Some(e),
            _ => None,
        }
    }

    /// Replaces every match in a plain string.
    pub(crate) fn replace_all(&self, text: &str, content: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for r in self.find(text) {
            out.push_str(&text[last..r.start]);
            out.push_str(content);
            last = r.end;
        }
        out.push_str(&text[last..]);
        out
    }
}

impl Normalizer {
    /// Normalizes `s` in place.
    pub fn normalize(&self, s: &mut NormalizedString) {
        match self {
            Normalizer::BertNormalizer(n) => n.normalize(s),
            Normalizer::NFD => unicode::nfd(s),
            Normalizer::NFKD => unicode::nfkd(s),
            Normalizer::NFC => unicode::nfc(s),
            Normalizer::NFKC => unicode::nfkc(s),
            Normalizer::Lowercase => {
                s.lowercase();
            }
            Normalizer::StripAccents => unicode::strip_accents(s),
            Normalizer::Strip {
                strip_left,
                strip_right,
            } => {
                s.lrstrip(*strip_left, *strip_right);
            }
            Normalizer::Prepend { prepend } => {
                s.prepend(prepend);
            }
            Normalizer::Replace { pattern, content } => {
                let ranges = pattern.find(s.get());
                s.replace_ranges(ranges, content);
            }
            Normalizer::Precompiled {
                precompiled_charsmap,
            } => precompiled_charsmap.normalize(s),
            Normalizer::Nmt => {
                s.filter(
                    |c| !matches!(c as u32, 0x1..=0x8 | 0xB | 0xE..=0x1F | 0x7F | 0x8F | 0x9F),
                );
                s.map(|c| match c as u32 {
                    0x9
                    | 0xA
                    | 0xC
                    | 0xD
                    | 0x1680
                    | 0x200B..=0x200F
                    | 0x2028
                    | 0x2029
                    | 0x2581
                    | 0xFEFF
                    | 0xFFFD => ' ',
                    _ => c,
                });
            }
            Normalizer::ByteLevel => crate::pre_tokenizers::to_byte_level(s),
            Normalizer::Sequence { normalizers } => {
                for n in normalizers {
                    n.normalize(s);
                }
            }
        }
    }

    /// The first problem that makes this normalizer unusable (an invalid regex), if any.
    pub fn error(&self) -> Option<&str> {
        match self {
            Normalizer::Replace { pattern, .. } => pattern.error(),
            Normalizer::Sequence { normalizers } => normalizers.iter().find_map(Normalizer::error),
            _ => None,
        }
    }

    /// Normalizes a plain string (used for added tokens marked `normalized`).
    pub fn normalize_str(&self, text: &str) -> String {
        let mut s = NormalizedString::from(text);
        self.normalize(&mut s);
        s.get().to_owned()
    }
}
