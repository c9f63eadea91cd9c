//! Normalizers: the first stage of the pipeline, which cleans up the raw text (Unicode
//! normalization, lowercasing, accent stripping, ...) while keeping the alignment to the original.

mod bert;
mod unicode;

pub use bert::BertNormalizer;

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
    /// Remove combining non-spacing marks (use after NFD).
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
    /// Apply normalizers in order.
    Sequence {
        /// The normalizers.
        normalizers: Vec<Normalizer>,
    },
}

/// The pattern of a `Replace` normalizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReplacePattern {
    /// A literal string.
    String(String),
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
            Normalizer::Replace { pattern, content } => match pattern {
                ReplacePattern::String(p) => {
                    s.replace_literal(p, content);
                }
            },
            Normalizer::Sequence { normalizers } => {
                for n in normalizers {
                    n.normalize(s);
                }
            }
        }
    }

    /// Normalizes a plain string (used for added tokens marked `normalized`).
    pub fn normalize_str(&self, text: &str) -> String {
        let mut s = NormalizedString::from(text);
        self.normalize(&mut s);
        s.get().to_owned()
    }
}
