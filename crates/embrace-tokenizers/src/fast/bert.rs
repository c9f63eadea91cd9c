//! The BERT fast path: `BertNormalizer` + `BertPreTokenizer` + `WordPiece` computed straight on
//! the input, one whitespace-separated run at a time.
//!
//! BERT's normalizer works char by char (NFD decomposition, dropping non-spacing marks and
//! control chars, lowercasing, spacing CJK ideographs) and its pre-tokenizer splits at whitespace
//! and punctuation, so no rule looks across ASCII whitespace. Each normalized char is aligned to
//! the original char it comes from, as HuggingFace aligns it. The one cross-char effect of NFD,
//! canonical reordering of combining marks, only moves marks that are then dropped; a run where
//! that is not so (a reordered mark that is kept) goes through the general pipeline instead.

use super::{GeneralPath, TokenSink};
use crate::error::Result;
use crate::models::WordPiece;
use crate::normalizers::{
    BertCharKind, BertNormalizer, bert_char_kind, is_chinese_char, is_nonspacing_mark,
};
use crate::pre_tokenizers::is_bert_punctuation;
use unicode_normalization_alignments::UnicodeNormalization;

/// ASCII whitespace that BERT keeps (as a space) and the pre-tokenizer then removes.
fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// BERT over one segment (no added tokens inside), offsets shifted by `shift`.
pub(super) fn segment(
    general: &impl GeneralPath,
    wp: &WordPiece,
    normalizer: &BertNormalizer,
    segment: &str,
    shift: usize,
    out: &mut dyn TokenSink,
    word: &mut u32,
) -> Result<()> {
    let bytes = segment.as_bytes();
    let mut words = Words::default();
    let mut i = 0;
    while i < bytes.len() {
        if is_separator(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut plain = true;
        while i < bytes.len() && !is_separator(bytes[i]) {
            if !(0x20..0x7f).contains(&bytes[i]) {
                plain = false;
            }
            i += 1;
        }
        let run = &segment[start..i];
        if plain {
            ascii_run(wp, normalizer.lowercase, run, shift + start, out, word)?;
        } else if words.normalize(normalizer, run) {
            words.tokenize(wp, shift + start, out, word)?;
        } else {
            general.encode_plain(run, shift + start, out, word)?;
        }
    }
    Ok(())
}

/// A printable ASCII run: lowercase (if asked) and split at punctuation, in place.
fn ascii_run(
    wp: &WordPiece,
    lowercase: bool,
    run: &str,
    shift: usize,
    out: &mut dyn TokenSink,
    word: &mut u32,
) -> Result<()> {
    let bytes = run.as_bytes();
    let mut buf: Vec<u8> = Vec::with_capacity(32);
    let mut w = 0;
    while w < bytes.len() {
        let end = if bytes[w].is_ascii_punctuation() {
            w + 1
        } else {
            let mut e = w;
            while e < bytes.len() && !bytes[e].is_ascii_punctuation() {
                e += 1;
            }
            e
        };
        buf.clear();
        buf.extend_from_slice(&bytes[w..end]);
        if lowercase {
            buf.make_ascii_lowercase();
        }
        // ASCII bytes are valid UTF-8.
        let piece = std::str::from_utf8(&buf).unwrap_or_default();
        let word_index = *word;
        wp.tokenize_into(piece, |id, prefix, text, (s, e)| {
            out.push(id, prefix, text, (shift + w + s, shift + w + e), word_index);
        })?;
        *word += 1;
        w = end;
    }
    Ok(())
}

/// The words of one normalized run: their text, and for every normalized byte the byte range of
/// the original char it comes from (relative to the run).
#[derive(Default)]
struct Words {
    text: String,
    origin: Vec<(usize, usize)>,
    /// Byte ranges of the words in `text`.
    bounds: Vec<(usize, usize)>,
}

impl Words {
    /// Normalizes and splits `run`; false when the run needs the general pipeline.
    fn normalize(&mut self, n: &BertNormalizer, run: &str) -> bool {
        self.text.clear();
        self.origin.clear();
        self.bounds.clear();
        let strip = n.strip_accents.unwrap_or(n.lowercase);
        let mut word_start = 0;
        let close = |words: &mut Self, word_start: &mut usize| {
            if words.text.len() > *word_start {
                words.bounds.push((*word_start, words.text.len()));
            }
            *word_start = words.text.len();
        };
        let mut decomposed: Vec<char> = Vec::with_capacity(4);
        for (o, c) in run.char_indices() {
            let range = (o, o + c.len_utf8());
            match bert_char_kind(c) {
                BertCharKind::Removed => continue,
                BertCharKind::Whitespace => {
                    close(self, &mut word_start);
                    continue;
                }
                BertCharKind::Other => {}
            }
            let chinese = n.handle_chinese_chars && is_chinese_char(c);
            decomposed.clear();
            if strip {
                for (d, _) in std::iter::once(c).nfd() {
                    if is_nonspacing_mark(d) {
                        continue;
                    }
                    if unicode_normalization_alignments::char::canonical_combining_class(d) != 0 {
                        // A kept mark that NFD could reorder across chars.
                        return false;
                    }
                    decomposed.push(d);
                }
            } else {
                decomposed.push(c);
            }
            if chinese {
                // Spaced on both sides (before NFD, as in BERT): a word of its own.
                close(self, &mut word_start);
                for &d in &decomposed {
                    self.push(d, range, n.lowercase);
                }
                close(self, &mut word_start);
                continue;
            }
            for &d in &decomposed {
                if is_bert_punctuation(d) {
                    close(self, &mut word_start);
                    self.push(d, range, n.lowercase);
                    close(self, &mut word_start);
                } else {
                    self.push(d, range, n.lowercase);
                }
            }
        }
        close(self, &mut word_start);
        true
    }

    fn push(&mut self, c: char, range: (usize, usize), lowercase: bool) {
        let mut put = |c: char| {
            self.text.push(c);
            self.origin.extend(std::iter::repeat_n(range, c.len_utf8()));
        };
        if lowercase {
            c.to_lowercase().for_each(&mut put);
        } else {
            put(c);
        }
    }

    fn tokenize(
        &self,
        wp: &WordPiece,
        shift: usize,
        out: &mut dyn TokenSink,
        word: &mut u32,
    ) -> Result<()> {
        for &(ws, we) in &self.bounds {
            let word_index = *word;
            let origin = &self.origin[ws..we];
            wp.tokenize_into(&self.text[ws..we], |id, prefix, text, (s, e)| {
                let start = origin.get(s).map_or(0, |r| r.0);
                let end = origin.get(e.saturating_sub(1)).map_or(start, |r| r.1);
                out.push(id, prefix, text, (shift + start, shift + end), word_index);
            })?;
            *word += 1;
        }
        Ok(())
    }
}
