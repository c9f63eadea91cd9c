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
use crate::word_cache::{self, ThreadCache, WordCache};
use std::cell::RefCell;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU16, Ordering};
use unicode_normalization_alignments::UnicodeNormalization;
use unicode_normalization_alignments::char::canonical_combining_class;

/// What BERT's rules need to know about one char, as bit flags. The Unicode category tables are
/// lists searched by bisection (up to seven searches per char for punctuation alone), so each
/// char of the Basic Multilingual Plane is looked up once per process and remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CharProps(u16);

impl CharProps {
    const KNOWN: u16 = 1;
    const REMOVED: u16 = 1 << 1;
    const WHITESPACE: u16 = 1 << 2;
    const PUNCTUATION: u16 = 1 << 3;
    const NONSPACING: u16 = 1 << 4;
    const COMBINING: u16 = 1 << 5;
    const DECOMPOSES: u16 = 1 << 6;
    const CHINESE: u16 = 1 << 7;
    const LOWERCASE_CHANGES: u16 = 1 << 8;

    fn compute(c: char) -> CharProps {
        let mut bits = Self::KNOWN;
        let mut set = |flag: u16, on: bool| {
            if on {
                bits |= flag;
            }
        };
        match bert_char_kind(c) {
            BertCharKind::Removed => set(Self::REMOVED, true),
            BertCharKind::Whitespace => set(Self::WHITESPACE, true),
            BertCharKind::Other => {}
        }
        set(Self::PUNCTUATION, is_bert_punctuation(c));
        set(Self::NONSPACING, is_nonspacing_mark(c));
        set(Self::COMBINING, canonical_combining_class(c) != 0);
        set(
            Self::DECOMPOSES,
            !std::iter::once(c)
                .nfd()
                .map(|(d, _)| d)
                .eq(std::iter::once(c)),
        );
        set(Self::CHINESE, is_chinese_char(c));
        set(
            Self::LOWERCASE_CHANGES,
            !c.to_lowercase().eq(std::iter::once(c)),
        );
        CharProps(bits)
    }

    /// The properties of `c`, from the per-process table for the Basic Multilingual Plane.
    /// Threads may fill a slot at the same time; they store the same value.
    #[inline]
    fn of(c: char) -> CharProps {
        static TABLE: LazyLock<Box<[AtomicU16]>> =
            LazyLock::new(|| (0..0x10000).map(|_| AtomicU16::new(0)).collect());
        match TABLE.get(c as usize) {
            Some(slot) => match slot.load(Ordering::Relaxed) {
                0 => {
                    let props = Self::compute(c);
                    slot.store(props.0, Ordering::Relaxed);
                    props
                }
                bits => CharProps(bits),
            },
            None => Self::compute(c),
        }
    }

    #[inline]
    fn has(self, flag: u16) -> bool {
        self.0 & flag != 0
    }
}

/// ASCII whitespace that BERT keeps (as a space) and the pre-tokenizer then removes.
fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The BERT fast path of one tokenizer: its normalizer, and the id of its per-thread cache of
/// WordPiece results.
#[derive(Debug, Clone)]
pub(crate) struct BertFast {
    normalizer: BertNormalizer,
    cache_id: u64,
}

thread_local! {
    /// The WordPiece results of recent words, for the tokenizer that used the thread last.
    static WORDPIECE_CACHE: RefCell<BertThread> = RefCell::default();
}

/// WordPiece of one word through the cache: `emit(id, prefix, text, byte offsets)` per token,
/// as [`WordPiece::tokenize_into`] calls it. A word is cached by its bytes; its tokens are
/// (id, byte length), and the unknown token (one token over the whole word) keeps its own text.
fn cached_wordpiece<'a>(
    wp: &'a WordPiece,
    cache: &mut WordCache,
    tokens: &mut Vec<(u32, u32)>,
    word: &'a str,
    mut emit: impl FnMut(u32, &'a str, &'a str, (usize, usize)),
) -> Result<()> {
    cache.whole_word(word.as_bytes(), tokens, |tokens| {
        wp.tokenize_into(word, |id, _, _, (s, e)| tokens.push((id, (e - s) as u32)))
    })?;
    let mut pos = 0;
    for &(id, len) in tokens.iter() {
        let end = pos + len as usize;
        if pos == 0 && end == word.len() && Some(id) == wp.unk_id() {
            emit(id, "", &wp.unk_token, (0, end));
        } else {
            let prefix = if pos == 0 {
                ""
            } else {
                &wp.continuing_subword_prefix
            };
            emit(
                id,
                prefix,
                word.get(pos..end).unwrap_or_default(),
                (pos, end),
            );
        }
        pos = end;
    }
    Ok(())
}

impl BertFast {
    pub(crate) fn new(normalizer: BertNormalizer) -> Self {
        BertFast {
            normalizer,
            cache_id: word_cache::new_owner_id(),
        }
    }

    /// BERT over one segment (no added tokens inside), offsets shifted by `shift`.
    pub(crate) fn segment(
        &self,
        general: &impl GeneralPath,
        wp: &WordPiece,
        segment: &str,
        shift: usize,
        out: &mut dyn TokenSink,
        word: &mut u32,
    ) -> Result<()> {
        WORDPIECE_CACHE.with(|cell| {
            let mut cell = cell.borrow_mut();
            let BertThread {
                cache: thread_cache,
                words,
                buf,
            } = &mut *cell;
            let (cache, tokens) = thread_cache.for_owner(self.cache_id);
            let mut pieces = Pieces {
                wp,
                cache,
                tokens,
                buf,
                out,
                word,
            };
            let result = self.runs(general, segment, shift, words, &mut pieces);
            cell.release_if_large();
            result
        })
    }

    fn runs(
        &self,
        general: &impl GeneralPath,
        segment: &str,
        shift: usize,
        words: &mut Words,
        pieces: &mut Pieces<'_, '_>,
    ) -> Result<()> {
        let normalizer = &self.normalizer;
        let bytes = segment.as_bytes();
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
                ascii_run(pieces, normalizer.lowercase, run, shift + start)?;
            } else if words.normalize(normalizer, run) {
                words.tokenize(pieces, shift + start)?;
            } else {
                general.encode_plain(run, shift + start, pieces.out, pieces.word)?;
            }
        }
        Ok(())
    }
}

/// Where the words of a segment go: the model and its cache, and the output.
struct Pieces<'a, 'o> {
    wp: &'a WordPiece,
    cache: &'a mut WordCache,
    tokens: &'a mut Vec<(u32, u32)>,
    /// Scratch space for a lowercased word.
    buf: &'a mut Vec<u8>,
    out: &'o mut dyn TokenSink,
    word: &'a mut u32,
}

impl Pieces<'_, '_> {
    /// WordPiece of one normalized word; `origin(s, e)` maps its byte range to input offsets.
    fn word(&mut self, text: &str, origin: impl Fn(usize, usize) -> (usize, usize)) -> Result<()> {
        let word_index = *self.word;
        let out = &mut *self.out;
        cached_wordpiece(
            self.wp,
            self.cache,
            self.tokens,
            text,
            |id, prefix, t, (s, e)| {
                out.push(id, prefix, t, origin(s, e), word_index);
            },
        )?;
        *self.word += 1;
        Ok(())
    }
}

/// A printable ASCII run: lowercase (if asked) and split at punctuation, in place.
fn ascii_run(pieces: &mut Pieces<'_, '_>, lowercase: bool, run: &str, shift: usize) -> Result<()> {
    let bytes = run.as_bytes();
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
        let piece = &run[w..end];
        if lowercase && piece.bytes().any(|b| b.is_ascii_uppercase()) {
            let mut buf = std::mem::take(pieces.buf);
            buf.clear();
            buf.extend_from_slice(piece.as_bytes());
            buf.make_ascii_lowercase();
            // ASCII bytes are valid UTF-8.
            let lowered = std::str::from_utf8(&buf).unwrap_or_default();
            let result = pieces.word(lowered, |s, e| (shift + w + s, shift + w + e));
            *pieces.buf = buf;
            result?;
        } else {
            pieces.word(piece, |s, e| (shift + w + s, shift + w + e))?;
        }
        w = end;
    }
    Ok(())
}

/// What the BERT fast path keeps per thread: the WordPiece cache and scratch buffers, so that
/// encoding allocates nothing per word.
#[derive(Default)]
struct BertThread {
    cache: ThreadCache,
    words: Words,
    buf: Vec<u8>,
}

impl BertThread {
    /// Drops buffers that one very long word grew past [`super::RETAINED_SCRATCH`], so that a
    /// thread does not hold that memory for good.
    fn release_if_large(&mut self) {
        if self.words.text.capacity() > super::RETAINED_SCRATCH {
            self.words = Words::default();
        }
        if self.buf.capacity() > super::RETAINED_SCRATCH {
            self.buf = Vec::new();
        }
        self.cache.release_if_large();
    }
}

/// The words of one normalized run: their text, and for every normalized byte the byte range of
/// the original char it comes from (relative to the run).
#[derive(Default)]
struct Words {
    /// The chars one input char becomes (scratch space).
    decomposed: Vec<(char, CharProps)>,
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
        // Taken out for the loop, which also borrows `self`; put back at the end (a run that
        // returns early for the general pipeline leaves a fresh one).
        let mut decomposed = std::mem::take(&mut self.decomposed);
        for (o, c) in run.char_indices() {
            let range = (o, o + c.len_utf8());
            let props = CharProps::of(c);
            if props.has(CharProps::REMOVED) {
                continue;
            }
            if props.has(CharProps::WHITESPACE) {
                close(self, &mut word_start);
                continue;
            }
            let chinese = n.handle_chinese_chars && props.has(CharProps::CHINESE);
            decomposed.clear();
            if strip {
                let mut keep = |d: char, p: CharProps| {
                    if p.has(CharProps::NONSPACING) {
                        return true;
                    }
                    if p.has(CharProps::COMBINING) {
                        // A kept mark that NFD could reorder across chars.
                        return false;
                    }
                    decomposed.push((d, p));
                    true
                };
                if props.has(CharProps::DECOMPOSES) {
                    for (d, _) in std::iter::once(c).nfd() {
                        if !keep(d, CharProps::of(d)) {
                            return false;
                        }
                    }
                } else if !keep(c, props) {
                    return false;
                }
            } else {
                decomposed.push((c, props));
            }
            if chinese {
                // Spaced on both sides (before NFD, as in BERT): a word of its own.
                close(self, &mut word_start);
                for &(d, p) in &decomposed {
                    self.push(d, p, range, n.lowercase);
                }
                close(self, &mut word_start);
                continue;
            }
            for &(d, p) in &decomposed {
                if p.has(CharProps::PUNCTUATION) {
                    close(self, &mut word_start);
                    self.push(d, p, range, n.lowercase);
                    close(self, &mut word_start);
                } else {
                    self.push(d, p, range, n.lowercase);
                }
            }
        }
        close(self, &mut word_start);
        self.decomposed = decomposed;
        true
    }

    fn push(&mut self, c: char, props: CharProps, range: (usize, usize), lowercase: bool) {
        let mut put = |c: char| {
            self.text.push(c);
            self.origin.extend(std::iter::repeat_n(range, c.len_utf8()));
        };
        if lowercase && props.has(CharProps::LOWERCASE_CHANGES) {
            c.to_lowercase().for_each(&mut put);
        } else {
            put(c);
        }
    }

    fn tokenize(&self, pieces: &mut Pieces<'_, '_>, shift: usize) -> Result<()> {
        for &(ws, we) in &self.bounds {
            let origin = &self.origin[ws..we];
            pieces.word(&self.text[ws..we], |s, e| {
                let start = origin.get(s).map_or(0, |r| r.0);
                let end = origin.get(e.saturating_sub(1)).map_or(start, |r| r.1);
                (shift + start, shift + end)
            })?;
        }
        Ok(())
    }
}
