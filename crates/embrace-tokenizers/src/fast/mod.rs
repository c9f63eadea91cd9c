//! Fast paths for the most common pipelines, chosen when a tokenizer is loaded.
//!
//! The general pipeline builds a [`NormalizedString`](crate::normalized::NormalizedString) with a
//! byte-level alignment for every piece of text, which is exact but costly. For the pipeline
//! shapes that cover most models, the same result is computed straight on the input:
//!
//! - **BERT** (`BertNormalizer` + `BertPreTokenizer` + `WordPiece`, see [`bert`]): each
//!   whitespace-separated run is normalized char by char into a buffer that remembers where every
//!   byte came from; BERT's rules never look across ASCII whitespace. Char properties come from a
//!   per-process table, WordPiece results from a per-thread cache of recent words.
//! - **Byte-level BPE** (GPT-2, Llama-3, Qwen): no normalization (or NFC on text that already is
//!   in NFC), a known split pattern scanned by hand ([`scanner`]), BPE on raw bytes, and a small
//!   per-thread cache of recent words ([`crate::word_cache`]). Without offsets to map back, text
//!   that is not in NFC is normalized first and takes the same path.
//! - **SentencePiece-Unigram** (XLM-R and kin, see [`sentencepiece`]): text the precompiled map
//!   cannot change is used as it is, other text is normalized by the map first.
//!
//! Added tokens are found on the raw text first, exactly as in the general pipeline, and any
//! segment a fast path cannot take goes through the general pipeline. A fast path is only chosen
//! when the configuration guarantees identical output; the golden tests run every record through
//! both paths.

mod bert;
pub(crate) mod scanner;
mod sentencepiece;

use crate::added_vocabulary::AddedVocabulary;
use crate::error::Result;
use crate::models::{Bpe, Model};
use crate::normalized::SplitDelimiterBehavior;
use crate::normalizers::{BertNormalizer, Normalizer};
use crate::pre_tokenizers::byte_level::{BYTES_CHAR, ByteLevelOptions};
use crate::pre_tokenizers::{PreTokenizer, SplitPattern};
use crate::word_cache::{self, ThreadCache, WordCache};
use scanner::Pattern;
use std::cell::RefCell;
use unicode_normalization_alignments::UnicodeNormalization;

/// Bytes of text a fast path's per-thread scratch buffers may keep between calls; a longer text
/// grows them, and they are dropped afterwards, so memory stays bounded on long inputs.
pub(crate) const RETAINED_SCRATCH: usize = 64 * 1024;

/// A token as the encoder collects it: id, string, byte offsets in the input, word index.
pub(crate) type RawToken = (u32, String, (usize, usize), Option<u32>);

/// Where the encoder puts the tokens it finds, in order.
pub(crate) trait TokenSink {
    /// One token; its string is `prefix` followed by `text`, its offsets are bytes of the input.
    fn push(&mut self, id: u32, prefix: &str, text: &str, offsets: (usize, usize), word: u32);

    /// Whether the sink uses token strings and offsets (else they need not be computed).
    fn wants_details(&self) -> bool {
        true
    }

    /// The id of one token, for a sink that does not want details.
    fn push_id(&mut self, id: u32) {
        self.push(id, "", "", (0, 0), 0);
    }

    /// How many tokens the sink holds.
    fn len(&self) -> usize;

    /// Drops the tokens after the first `len` (to encode a stretch again another way).
    fn truncate(&mut self, len: usize);
}

impl TokenSink for Vec<RawToken> {
    fn push(&mut self, id: u32, prefix: &str, text: &str, offsets: (usize, usize), word: u32) {
        let value = if prefix.is_empty() {
            text.to_owned()
        } else {
            let mut v = String::with_capacity(prefix.len() + text.len());
            v.push_str(prefix);
            v.push_str(text);
            v
        };
        Vec::push(self, (id, value, offsets, Some(word)));
    }

    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }
}

/// A sink that keeps only the ids (no strings are built).
pub(crate) struct IdSink<'a>(pub(crate) &'a mut Vec<u32>);

impl TokenSink for IdSink<'_> {
    fn push(&mut self, id: u32, _: &str, _: &str, _: (usize, usize), _: u32) {
        self.0.push(id);
    }

    fn wants_details(&self) -> bool {
        false
    }

    fn push_id(&mut self, id: u32) {
        self.0.push(id);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
}

/// Encodes a piece of text with the general pipeline (no raw added-token matching), with offsets
/// shifted by `shift`, continuing the word count.
pub(crate) trait GeneralPath {
    fn encode_plain(
        &self,
        text: &str,
        shift: usize,
        out: &mut dyn TokenSink,
        word: &mut u32,
    ) -> Result<()>;
}

/// A fast path chosen for a tokenizer.
#[derive(Debug, Clone)]
pub(crate) enum FastPath {
    Bert(bert::BertFast),
    SentencePiece(Box<sentencepiece::SentencePiece>),
    ByteLevelBpe(Box<ByteBpe>),
}

/// What the byte-level BPE fast path needs beyond the model itself.
#[derive(Debug, Clone)]
pub(crate) struct ByteBpe {
    pattern: Pattern,
    /// The normalizer is NFC: segments are encoded as they are and checked after (see
    /// [`FastPath::encode`]).
    nfc: bool,
    /// Id of each single byte.
    byte_ids: [Option<u32>; 256],
    cache_id: u64,
}

thread_local! {
    /// The byte-level BPE results of recent words, for the tokenizer that used the thread last.
    static BPE_CACHE: RefCell<ThreadCache> = RefCell::default();
}

impl FastPath {
    /// The fast path for this configuration, if one applies.
    pub(crate) fn detect(
        normalizer: Option<&Normalizer>,
        pre_tokenizer: Option<&PreTokenizer>,
        model: &Model,
        added: &AddedVocabulary,
    ) -> Option<FastPath> {
        match (normalizer, pre_tokenizer, model) {
            // Added tokens matched on normalized text would need BERT's normalization first.
            (Some(Normalizer::BertNormalizer(_)), ..) if added.has_normalized_tokens() => None,
            (
                Some(Normalizer::BertNormalizer(
                    n @ BertNormalizer {
                        clean_text: true, ..
                    },
                )),
                Some(PreTokenizer::BertPreTokenizer),
                Model::WordPiece(_),
            ) => Some(FastPath::Bert(bert::BertFast::new(*n))),
            (None | Some(Normalizer::NFC), Some(pre), Model::BPE(bpe)) => {
                let pattern = byte_level_pattern(pre)?;
                if !bpe.has_plain_symbols() || bpe.byte_fallback || bpe.unk_token.is_some() {
                    return None;
                }
                let nfc = normalizer.is_some();
                Some(FastPath::ByteLevelBpe(Box::new(ByteBpe::new(
                    bpe, pattern, nfc,
                ))))
            }
            (n, Some(PreTokenizer::Metaspace(m)), Model::Unigram(_))
                if !added.has_normalized_tokens() =>
            {
                sentencepiece::SentencePiece::detect(n, m)
                    .map(|sp| FastPath::SentencePiece(Box::new(sp)))
            }
            (Some(Normalizer::Sequence { normalizers }), Some(pre), Model::BPE(_))
                if normalizers.is_empty() =>
            {
                FastPath::detect(None, Some(pre), model, added)
            }
            _ => None,
        }
    }

    /// Encodes `text`: added tokens first, then the fast path on the text between them.
    ///
    /// Generic over the sink so that byte-level BPE, the tightest loop, calls it directly.
    pub(crate) fn encode<S: TokenSink>(
        &self,
        general: &impl GeneralPath,
        model: &Model,
        added: &AddedVocabulary,
        text: &str,
        out: &mut S,
        word: &mut u32,
    ) -> Result<()> {
        added.raw_matches(text, |id, (s, e)| {
            if s == e {
                return Ok(());
            }
            if let Some(id) = id {
                out.push(id, "", &text[s..e], (s, e), *word);
                *word += 1;
                return Ok(());
            }
            let segment = &text[s..e];
            match (self, model) {
                (FastPath::SentencePiece(sp), Model::Unigram(unigram)) => {
                    sp.segment(unigram, segment, s, out, word)
                }
                (FastPath::Bert(fast), Model::WordPiece(wp)) => {
                    fast.segment(general, wp, segment, s, out, word)
                }
                (FastPath::ByteLevelBpe(fast), Model::BPE(bpe)) if !fast.nfc => {
                    // No normalization: tokens matched on normalized text can be matched on the
                    // segment as it is.
                    fast.normalized_segment(bpe, added, segment, s, out, word, None)
                }
                (FastPath::ByteLevelBpe(fast), Model::BPE(bpe)) => {
                    // NFC: encoded as if NFC left the segment alone, noting any char it could
                    // change; almost always none, and then that was right. Otherwise the
                    // segment is checked in full, and encoded again if NFC does change it.
                    let (mark, first_word) = (out.len(), *word);
                    let mut unsure = false;
                    fast.normalized_segment(bpe, added, segment, s, out, word, Some(&mut unsure))?;
                    if !unsure || is_nfc(segment) {
                        return Ok(());
                    }
                    out.truncate(mark);
                    *word = first_word;
                    if out.wants_details() {
                        return general.encode_plain(segment, s, out, word);
                    }
                    // Ids only: no offsets to map back, so the NFC form can take the fast path.
                    let normalized: String = segment.chars().nfc().map(|(c, _)| c).collect();
                    let mut ignored = false;
                    fast.normalized_segment(
                        bpe,
                        added,
                        &normalized,
                        s,
                        out,
                        word,
                        Some(&mut ignored),
                    )
                }
                _ => general.encode_plain(segment, s, out, word),
            }
        })
    }
}

/// The split pattern of a byte-level pre-tokenizer without prefix space, if it has a scanner.
fn byte_level_pattern(pre: &PreTokenizer) -> Option<Pattern> {
    match pre {
        PreTokenizer::ByteLevel(ByteLevelOptions {
            add_prefix_space: false,
            use_regex: true,
            ..
        }) => Some(Pattern::Gpt2),
        PreTokenizer::Sequence { pretokenizers } => match pretokenizers.as_slice() {
            [
                PreTokenizer::Split {
                    pattern,
                    behavior: SplitDelimiterBehavior::Isolated,
                    invert: false,
                },
                PreTokenizer::ByteLevel(ByteLevelOptions {
                    add_prefix_space: false,
                    use_regex: false,
                    ..
                }),
            ] => pattern.regex_source().and_then(Pattern::recognize),
            _ => None,
        },
        _ => None,
    }
}

impl SplitPattern {
    /// The regex source, for a regex pattern.
    pub(crate) fn regex_source(&self) -> Option<&str> {
        self.source_regex()
    }
}

impl ByteBpe {
    fn new(bpe: &Bpe, pattern: Pattern, nfc: bool) -> Self {
        let mut byte_ids = [None; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            let mut buf = [0u8; 4];
            *slot = bpe.vocab.id(BYTES_CHAR[b].encode_utf8(&mut buf));
        }
        ByteBpe {
            pattern,
            nfc,
            byte_ids,
            cache_id: word_cache::new_owner_id(),
        }
    }

    /// BPE of the piece `bytes[start..end]`, a word-cache miss: (id, byte length) per token,
    /// appended to `out`, and cached when the piece is at most [`word_cache::MAX_LEN`] bytes.
    ///
    /// With `nfc` (a tokenizer whose normalizer is NFC), the flag is set when the piece has a
    /// char that is not NFC-inert; the cache remembers that with the piece.
    #[allow(clippy::too_many_arguments)]
    fn merge_word(
        &self,
        bpe: &Bpe,
        segment: &str,
        bytes: &[u8],
        (start, end): (usize, usize),
        cache: &mut WordCache,
        out: &mut Vec<(u32, u32)>,
        nfc: Option<&mut bool>,
    ) {
        let marked = match nfc {
            None => false,
            Some(unsure) => {
                let marked = !segment.get(start..end).is_some_and(all_inert);
                *unsure |= marked;
                marked
            }
        };
        let first = out.len();
        let piece = &bytes[start..end];
        if bpe.ignore_merges
            && let Some(id) = whole_piece_id(bpe, piece)
        {
            out.push((id, piece.len() as u32));
        } else {
            let initial: Vec<(u32, usize)> = piece
                .iter()
                .filter_map(|&b| self.byte_ids[b as usize].map(|id| (id, 1)))
                .collect();
            out.extend(
                bpe.merge_symbols(initial)
                    .into_iter()
                    .map(|(id, len)| (id, len as u32)),
            );
        }
        if end - start <= word_cache::MAX_LEN {
            cache.insert_marked(bytes, start, end, &out[first..], marked);
        }
    }

    /// Byte-level BPE over a segment in normalized form: its normalized added tokens, and the
    /// text between them. Offsets are shifted by `shift`.
    ///
    /// With `nfc`, the flag is set when some char of the segment is not NFC-inert (see
    /// [`Self::word`]).
    #[allow(clippy::too_many_arguments)]
    fn normalized_segment<S: TokenSink>(
        &self,
        bpe: &Bpe,
        added: &AddedVocabulary,
        segment: &str,
        shift: usize,
        out: &mut S,
        word: &mut u32,
        mut nfc: Option<&mut bool>,
    ) -> Result<()> {
        added.normalized_matches(segment, |id, (s, e)| {
            if s == e {
                return Ok(());
            }
            match id {
                Some(id) => {
                    if let Some(unsure) = nfc.as_deref_mut() {
                        *unsure |= !all_inert(&segment[s..e]);
                    }
                    out.push(id, "", &segment[s..e], (shift + s, shift + e), *word);
                    *word += 1;
                }
                None => self.segment(
                    bpe,
                    &segment[s..e],
                    shift + s,
                    out,
                    word,
                    nfc.as_deref_mut(),
                ),
            }
            Ok(())
        })
    }

    /// Byte-level BPE over one segment (no added tokens inside), offsets shifted by `shift`.
    fn segment<S: TokenSink>(
        &self,
        bpe: &Bpe,
        segment: &str,
        shift: usize,
        out: &mut S,
        word: &mut u32,
        nfc: Option<&mut bool>,
    ) {
        let bytes = segment.as_bytes();
        // The thread's cache is borrowed once per segment; it belongs to one model at a time.
        BPE_CACHE.with(|cell| {
            let mut cell = cell.borrow_mut();
            let (cache, tokens) = cell.for_owner(self.cache_id);
            self.scan_segment(bpe, segment, bytes, shift, cache, tokens, out, word, nfc);
            cell.release_if_large();
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn scan_segment<S: TokenSink>(
        &self,
        bpe: &Bpe,
        segment: &str,
        bytes: &[u8],
        shift: usize,
        cache: &mut WordCache,
        tokens: &mut Vec<(u32, u32)>,
        out: &mut S,
        word: &mut u32,
        mut nfc: Option<&mut bool>,
    ) {
        let details = out.wants_details();
        scanner::scan(self.pattern, segment, |ps, pe| {
            // The small cache of recent words first, also under `ignore_merges`: it holds
            // whatever the piece gave before, and stays in the CPU's cache where the vocabulary
            // does not. Without details, a cached word's ids go straight to the sink.
            tokens.clear();
            let hit = if pe - ps > word_cache::MAX_LEN {
                None
            } else if details {
                cache.get_with(bytes, ps, pe, |id, len| tokens.push((id, len)))
            } else {
                cache.get_with(bytes, ps, pe, |id, _| out.push_id(id))
            };
            match hit {
                Some(marked) => {
                    if let Some(unsure) = nfc.as_deref_mut() {
                        *unsure |= marked;
                    }
                    if !details {
                        return;
                    }
                }
                None => {
                    let nfc = nfc.as_deref_mut();
                    self.merge_word(bpe, segment, bytes, (ps, pe), cache, tokens, nfc);
                    if !details {
                        for &(id, _) in tokens.iter() {
                            out.push_id(id);
                        }
                        return;
                    }
                }
            }
            let mut pos = ps;
            for &(id, len) in tokens.iter() {
                let end = pos + len as usize;
                // A token that covers part of a char is aligned to the whole char.
                let s = floor_char(segment, pos);
                let e = ceil_char(segment, end);
                let value = bpe.vocab.token(id).unwrap_or_default();
                out.push(id, "", value, (shift + s, shift + e), *word);
                pos = end;
            }
            *word += 1;
        });
    }
}

/// The vocabulary id of a whole piece (`ignore_merges`): its bytes spelled as GPT-2's byte-level
/// chars, the form the vocabulary is written in. Only a word-cache miss gets here.
fn whole_piece_id(bpe: &Bpe, piece: &[u8]) -> Option<u32> {
    let spelled: String = piece.iter().map(|&b| BYTES_CHAR[b as usize]).collect();
    bpe.vocab.id(&spelled)
}

/// Chars of the Basic Multilingual Plane that NFC leaves alone wherever they stand (quick-check
/// "yes" and combining class 0), as a bit set computed once.
static NFC_INERT: std::sync::LazyLock<Box<[u64]>> = std::sync::LazyLock::new(|| {
    use unicode_normalization_alignments::{
        IsNormalized, char::canonical_combining_class, is_nfc_quick,
    };
    let mut bits = vec![0u64; 0x10000 / 64].into_boxed_slice();
    for u in 0..0x10000u32 {
        if let Some(c) = char::from_u32(u)
            && canonical_combining_class(c) == 0
            && is_nfc_quick(std::iter::once(c)) == IsNormalized::Yes
        {
            bits[(u / 64) as usize] |= 1 << (u % 64);
        }
    }
    bits
});

/// Whether `c` is NFC-inert, by the [`NFC_INERT`] bits.
#[inline]
fn is_inert_char(inert: &[u64], c: char) -> bool {
    let u = c as usize;
    c.is_ascii() || inert.get(u / 64).is_some_and(|w| w & (1 << (u % 64)) != 0)
}

/// Whether every char of `s` is NFC-inert (then NFC leaves `s` alone).
fn all_inert(s: &str) -> bool {
    if s.is_ascii() {
        return true;
    }
    let inert = &*NFC_INERT;
    s.chars().all(|c| is_inert_char(inert, c))
}

/// Whether NFC leaves `s` unchanged.
///
/// An inert char (NFC quick-check "yes", combining class 0) is a normalization boundary: NFC
/// never changes anything across it (UAX #15, section 9). So only the stretches that start at an
/// inert char and hold some other char need the full check; for most text there is none.
fn is_nfc(s: &str) -> bool {
    if s.is_ascii() {
        return true;
    }
    let inert = &*NFC_INERT;
    let is_inert = |c: char| is_inert_char(inert, c);
    let full = unicode_normalization_alignments::is_nfc;
    let mut stretch = 0;
    let mut unsure = false;
    for (i, c) in s.char_indices() {
        if is_inert(c) {
            if unsure && !full(&s[stretch..i]) {
                return false;
            }
            stretch = i;
            unsure = false;
        } else {
            unsure = true;
        }
    }
    !unsure || full(&s[stretch..])
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::is_nfc;

    #[test]
    fn the_nfc_check_agrees_with_full_normalization() {
        let cases = [
            "plain ascii",
            "caf\u{e9}",
            "cafe\u{301}",
            "a\u{328}\u{301} ok",
            "a\u{301}\u{328} reordered",
            "\u{1100}\u{1161} jamo",
            "\u{ac00}\u{11a8} lv+t",
            "\u{ac01} lvt",
            "\u{995}\u{9c7}\u{9be} bengali o",
            "\u{995}\u{9be} bengali aa",
            "\u{f900} compatibility ideograph",
            "\u{1d15e} musical",
            "emoji \u{1f917}\u{1f3fd} and \u{301} at start",
            "\u{301}",
            "x\u{e9}y\u{65}\u{301}z",
            "\u{928}\u{93c} devanagari nukta",
            "\u{929}",
        ];
        for case in cases {
            for text in [
                case.to_owned(),
                format!("{case} {case}"),
                format!("\u{e9}{case}"),
            ] {
                assert_eq!(
                    is_nfc(&text),
                    unicode_normalization_alignments::is_nfc(&text),
                    "{text:?}"
                );
            }
        }
    }
}
