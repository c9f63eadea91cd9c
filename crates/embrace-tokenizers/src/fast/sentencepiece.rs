//! The SentencePiece-Unigram fast path (XLM-R, multilingual-e5, T5-style files): `Precompiled`
//! (optionally followed by collapsing runs of spaces), `Metaspace` with splitting, `Unigram`.
//!
//! Text that the precompiled map cannot change (no key of the map starts at any of its chars) is
//! used as it is; other text is normalized by the map first. The normalized text is built
//! directly with the alignment HuggingFace gives each char: a `▁` that
//! replaces a space aligns to that space (to the last space of a collapsed run), a prepended `▁`
//! to the first char.

use super::TokenSink;
use crate::error::Result;
use crate::models::Unigram;
use crate::normalized::NormalizedString;
use crate::normalizers::{Normalizer, Precompiled, ReplacePattern};
use crate::pre_tokenizers::{Metaspace, PrependScheme};
use std::cell::RefCell;

/// Buffers of one segment, kept per thread so that encoding allocates nothing per text.
#[derive(Default)]
struct Scratch {
    /// The normalized text.
    text: String,
    /// For every byte of `text`, the byte range of the original char it comes from.
    origin: Vec<(usize, usize)>,
    /// Where the words of `text` start.
    starts: Vec<usize>,
}

impl Scratch {
    /// Drops buffers grown past [`super::RETAINED_SCRATCH`] by one long text, so that a thread
    /// does not hold that memory for good.
    fn release_if_large(&mut self) {
        if self.text.capacity() > super::RETAINED_SCRATCH {
            *self = Scratch::default();
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// What the fast path needs to know about the configuration.
#[derive(Debug, Clone)]
pub(crate) struct SentencePiece {
    metaspace: Metaspace,
    /// The precompiled normalization map.
    precompiled: Precompiled,
    /// Runs of two or more spaces become one space first.
    collapse_spaces: bool,
}

impl SentencePiece {
    /// The fast path for this normalizer and Metaspace, if it applies.
    pub(crate) fn detect(normalizer: Option<&Normalizer>, metaspace: &Metaspace) -> Option<Self> {
        if !metaspace.split {
            return None;
        }
        let precompiled = |n: &Normalizer| match n {
            Normalizer::Precompiled {
                precompiled_charsmap,
            } => Some(precompiled_charsmap.clone()),
            _ => None,
        };
        let (precompiled, collapse_spaces) = match normalizer {
            Some(Normalizer::Sequence { normalizers }) => match normalizers.as_slice() {
                [p] => (precompiled(p)?, false),
                [
                    p,
                    Normalizer::Replace {
                        pattern: ReplacePattern::Regex(source, Ok(_)),
                        content,
                    },
                ] if source == " {2,}" && content == " " => (precompiled(p)?, true),
                _ => return None,
            },
            Some(n) => (precompiled(n)?, false),
            None => return None,
        };
        Some(SentencePiece {
            metaspace: metaspace.clone(),
            precompiled,
            collapse_spaces,
        })
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
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let Scratch {
                text,
                origin,
                starts,
            } = &mut *scratch;
            text.clear();
            origin.clear();
            starts.clear();
            // The precompiled map first: nothing to do when no key of the map starts at any
            // char of the segment; otherwise it runs on its own, and its alignment is read back
            // per char.
            if self.precompiled.leaves_alone(segment) {
                let chars = segment
                    .char_indices()
                    .map(|(i, c)| (c, (i, i + c.len_utf8())));
                self.collect(chars, text, origin);
            } else {
                let mut normalized = NormalizedString::from(segment);
                self.precompiled.normalize(&mut normalized);
                let align = normalized.alignments();
                let chars = normalized
                    .get()
                    .char_indices()
                    .map(|(i, c)| (c, align.get(i).copied().unwrap_or((0, 0))));
                self.collect(chars, text, origin);
            }
            let result = self.words(model, text, origin, starts, shift, out, word);
            scratch.release_if_large();
            result
        })
    }

    /// Appends the normalized chars to `text` with Metaspace's replacement for spaces (runs
    /// collapsed if configured), and for every byte the original range it comes from.
    fn collect(
        &self,
        chars: impl Iterator<Item = (char, (usize, usize))>,
        text: &mut String,
        origin: &mut Vec<(usize, usize)>,
    ) {
        let rep = self.metaspace.replacement;
        let mut chars = chars.peekable();
        while let Some((c, range)) = chars.next() {
            if c == ' ' {
                // A run of spaces collapses to its last one (HuggingFace aligns the replacement
                // to the last char it replaces); the space becomes the replacement char.
                let mut last = range;
                if self.collapse_spaces {
                    while let Some(&(' ', r)) = chars.peek() {
                        last = r;
                        chars.next();
                    }
                }
                text.push(rep);
                origin.extend(std::iter::repeat_n(last, rep.len_utf8()));
            } else {
                text.push(c);
                origin.extend(std::iter::repeat_n(range, c.len_utf8()));
            }
        }
    }

    /// Metaspace's words of the normalized `text` through the model.
    #[allow(clippy::too_many_arguments)]
    fn words(
        &self,
        model: &Unigram,
        text: &mut String,
        origin: &mut Vec<(usize, usize)>,
        starts: &mut Vec<usize>,
        shift: usize,
        out: &mut dyn TokenSink,
        word: &mut u32,
    ) -> Result<()> {
        let rep = self.metaspace.replacement;
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
        starts.extend(text.match_indices(rep).map(|(k, _)| k));
        if starts.first() != Some(&0) {
            starts.insert(0, 0);
        }
        for (k, &ws) in starts.iter().enumerate() {
            let we = starts.get(k + 1).copied().unwrap_or(text.len());
            let word_index = *word;
            model.tokenize_into(&text[ws..we], |id, value, (s, e)| {
                let (s, e) = (ws + s, ws + e);
                let start = origin.get(s).map_or(0, |r| r.0);
                let end = e
                    .checked_sub(1)
                    .and_then(|p| origin.get(p))
                    .map_or(start, |r| r.1);
                out.push(id, "", value, (shift + start, shift + end), word_index);
            })?;
            *word += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fast::IdSink;

    #[test]
    fn a_long_text_leaves_no_large_buffers_behind() {
        let model = Unigram::new(
            vec![
                ("<unk>".into(), 0.0),
                ("▁".into(), -1.0),
                ("a".into(), -2.0),
            ],
            Some(0),
            false,
        )
        .unwrap();
        let sp = SentencePiece {
            metaspace: Metaspace {
                replacement: '▁',
                prepend_scheme: PrependScheme::Always,
                split: true,
            },
            precompiled: Precompiled::from_base64("").unwrap(),
            collapse_spaces: false,
        };
        let long = "a ".repeat(200_000);
        let mut ids = Vec::new();
        let mut word = 0;
        sp.segment(&model, &long, 0, &mut IdSink(&mut ids), &mut word)
            .unwrap();
        assert!(ids.len() >= 400_000, "{}", ids.len());
        SCRATCH.with(|s| {
            let s = s.borrow();
            assert!(s.text.capacity() <= crate::fast::RETAINED_SCRATCH);
            assert!(s.origin.capacity() <= crate::fast::RETAINED_SCRATCH);
        });
        // A short text keeps its buffers for the next call.
        sp.segment(&model, "a a", 0, &mut IdSink(&mut ids), &mut word)
            .unwrap();
        SCRATCH.with(|s| assert!(s.borrow().text.capacity() > 0));
    }
}
