//! The SentencePiece-Unigram fast path (XLM-R, multilingual-e5, T5-style files): `Precompiled`
//! (optionally followed by collapsing runs of spaces), `Metaspace` with splitting, `Unigram`.
//!
//! It applies to printable-ASCII segments when the precompiled map leaves printable ASCII alone,
//! which is the common case for English text; anything else takes the general pipeline. The
//! normalized text is built directly with the alignment HuggingFace gives each char: a `▁` that
//! replaces a space aligns to that space (to the last space of a collapsed run), a prepended `▁`
//! to the first char.

use super::TokenSink;
use crate::error::Result;
use crate::models::{Token, Unigram};
use crate::normalizers::{Normalizer, ReplacePattern};
use crate::pre_tokenizers::{Metaspace, PrependScheme};

/// What the fast path needs to know about the configuration.
#[derive(Debug, Clone)]
pub(crate) struct SentencePiece {
    metaspace: Metaspace,
    /// Runs of two or more spaces become one space first.
    collapse_spaces: bool,
}

impl SentencePiece {
    /// The fast path for this normalizer and Metaspace, if it applies.
    pub(crate) fn detect(normalizer: Option<&Normalizer>, metaspace: &Metaspace) -> Option<Self> {
        if !metaspace.split {
            return None;
        }
        let identity_on_ascii = |n: &Normalizer| match n {
            Normalizer::Precompiled {
                precompiled_charsmap,
            } => precompiled_charsmap.is_ascii_identity(),
            _ => false,
        };
        let collapse_spaces = match normalizer {
            Some(n) if identity_on_ascii(n) => false,
            Some(Normalizer::Sequence { normalizers }) => match normalizers.as_slice() {
                [p] if identity_on_ascii(p) => false,
                [
                    p,
                    Normalizer::Replace {
                        pattern: ReplacePattern::Regex(source, Ok(_)),
                        content,
                    },
                ] if identity_on_ascii(p) && source == " {2,}" && content == " " => true,
                _ => return None,
            },
            _ => return None,
        };
        Some(SentencePiece {
            metaspace: metaspace.clone(),
            collapse_spaces,
        })
    }

    /// Whether `segment` can take this path.
    pub(crate) fn accepts(segment: &str) -> bool {
        segment.bytes().all(|b| (0x20..0x7f).contains(&b))
    }

    /// Encodes one printable-ASCII segment that starts at byte `shift` of the input.
    pub(crate) fn segment(
        &self,
        model: &Unigram,
        segment: &str,
        shift: usize,
        out: &mut dyn TokenSink,
        word: &mut u32,
    ) -> Result<()> {
        let rep = self.metaspace.replacement;
        // Normalized text, and the original byte range each normalized byte comes from.
        let mut text = String::with_capacity(segment.len() + 8);
        let mut origin: Vec<(usize, usize)> = Vec::with_capacity(segment.len() + 8);
        let bytes = segment.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b' ' {
                let mut end = i + 1;
                if self.collapse_spaces {
                    while end < bytes.len() && bytes[end] == b' ' {
                        end += 1;
                    }
                }
                // One `▁`, aligned to the last space it stands for.
                text.push(rep);
                origin.extend(std::iter::repeat_n((end - 1, end), rep.len_utf8()));
                i = end;
            } else {
                text.push(char::from(bytes[i]));
                origin.push((i, i + 1));
                i += 1;
            }
        }
        if text.is_empty() {
            return Ok(());
        }
        let prepend = match self.metaspace.prepend_scheme {
            PrependScheme::Always => true,
            PrependScheme::First => shift == 0,
            PrependScheme::Never => false,
        };
        if prepend && !text.starts_with(rep) {
            let first = origin[0];
            text.insert(0, rep);
            origin.splice(0..0, std::iter::repeat_n(first, rep.len_utf8()));
        }
        // Words start at each `▁` (merged with what follows).
        let mut starts: Vec<usize> = text.match_indices(rep).map(|(k, _)| k).collect();
        if starts.first() != Some(&0) {
            starts.insert(0, 0);
        }
        let mut tokens: Vec<Token> = Vec::new();
        for (k, &ws) in starts.iter().enumerate() {
            let we = starts.get(k + 1).copied().unwrap_or(text.len());
            tokens.clear();
            model.tokenize(&text[ws..we], &mut tokens)?;
            for t in &tokens {
                let (s, e) = (ws + t.offsets.0, ws + t.offsets.1);
                let start = origin.get(s).map_or(0, |r| r.0);
                let end = e
                    .checked_sub(1)
                    .and_then(|p| origin.get(p))
                    .map_or(start, |r| r.1);
                out.push(t.id, "", &t.value, (shift + start, shift + end), *word);
            }
            *word += 1;
        }
        Ok(())
    }
}
