//! BERT's normalizer.

use super::unicode::{is_nonspacing_mark, nfd};
use crate::normalized::NormalizedString;
use serde::{Deserialize, Serialize};
use unicode_categories::UnicodeCategories;

/// BERT's text cleaning, as HuggingFace's `BertNormalizer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BertNormalizer {
    /// Remove control characters and turn every whitespace into a plain space.
    #[serde(default = "yes")]
    pub clean_text: bool,
    /// Put spaces around CJK ideographs so that each becomes a word.
    #[serde(default = "yes")]
    pub handle_chinese_chars: bool,
    /// Strip accents; `None` means "when lowercasing".
    #[serde(default)]
    pub strip_accents: Option<bool>,
    /// Lowercase the text.
    #[serde(default = "yes")]
    pub lowercase: bool,
}

fn yes() -> bool {
    true
}

impl Default for BertNormalizer {
    fn default() -> Self {
        Self {
            clean_text: true,
            handle_chinese_chars: true,
            strip_accents: None,
            lowercase: true,
        }
    }
}

/// BERT's notion of whitespace: Unicode White_Space plus tab, newline and carriage return.
fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// BERT's notion of control characters: categories C* (Unicode 9.0, as HuggingFace) except tab,
/// newline and carriage return.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

/// What BERT's text cleaning does with a char.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BertCharKind {
    /// Removed (NUL, U+FFFD, control chars).
    Removed,
    /// Becomes a space.
    Whitespace,
    /// Kept.
    Other,
}

/// BERT's cleaning of one char (`clean_text`).
pub(crate) fn bert_char_kind(c: char) -> BertCharKind {
    if c == '\0' || c == '\u{fffd}' || is_control(c) {
        BertCharKind::Removed
    } else if is_whitespace(c) {
        BertCharKind::Whitespace
    } else {
        BertCharKind::Other
    }
}

/// CJK Unified Ideographs and their extensions, as BERT defines "Chinese characters".
pub(crate) fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

impl BertNormalizer {
    /// Normalizes `s` in place.
    pub fn normalize(&self, s: &mut NormalizedString) {
        let ascii = s.get().is_ascii();
        if self.clean_text {
            if ascii {
                s.filter(|c| {
                    !(c == '\0' || (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r')))
                });
            } else {
                s.filter(|c| !(c == '\0' || c == '\u{fffd}' || is_control(c)));
            }
            s.map(|c| if is_whitespace(c) { ' ' } else { c });
        }
        if self.handle_chinese_chars && !ascii && s.get().chars().any(is_chinese_char) {
            s.flat_map(|c| {
                if is_chinese_char(c) {
                    vec![' ', c, ' ']
                } else {
                    vec![c]
                }
            });
        }
        if self.strip_accents.unwrap_or(self.lowercase) && !s.get().is_ascii() {
            nfd(s);
            s.filter(|c| !is_nonspacing_mark(c));
        }
        if self.lowercase {
            s.lowercase();
        }
    }
}
