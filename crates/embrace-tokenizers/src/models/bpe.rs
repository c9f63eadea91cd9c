//! BPE: byte-pair encoding with ranked merges (GPT-2, Llama, Qwen, Mistral, ...).
//!
//! A word starts as one symbol per char (or per byte with byte fallback); the pair of adjacent
//! symbols with the lowest merge rank is merged, leftmost first, until no pair can merge. A heap of
//! candidate merges with lazy invalidation keeps this `O(n log n)` per word.

use super::{Token, Vocab};
use crate::error::{Error, Result};
use rustc_hash::FxHashMap;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The BPE model.
#[derive(Debug, Clone, PartialEq)]
pub struct Bpe {
    /// The vocabulary.
    pub vocab: Vocab,
    /// The merges, in rank order, as ids of their two parts.
    merge_pairs: Vec<(u32, u32)>,
    /// (left id, right id) -> (rank, merged id).
    merge_map: FxHashMap<(u32, u32), (u32, u32)>,
    /// Token for chars that cannot be represented.
    pub unk_token: Option<String>,
    unk_id: Option<u32>,
    /// Prefix of every symbol but the first of a word.
    pub continuing_subword_prefix: Option<String>,
    /// Suffix of the last symbol of a word.
    pub end_of_word_suffix: Option<String>,
    /// Fuse consecutive unknown chars into one unknown token.
    pub fuse_unk: bool,
    /// Represent unknown chars by their UTF-8 bytes as `<0xXX>` tokens.
    pub byte_fallback: bool,
    /// A word that is in the vocabulary is one token, whatever the merges say.
    pub ignore_merges: bool,
    /// Ids of the `<0xXX>` byte tokens, when present.
    byte_ids: Option<Box<[u32; 256]>>,
}

/// `tokenizer.json` shape of a BPE model, as read (merge strings borrowed from the input when
/// they have no escapes).
#[derive(Deserialize)]
struct BpeConfigIn<'a> {
    #[serde(default)]
    dropout: Option<f32>,
    #[serde(default)]
    unk_token: Option<String>,
    #[serde(default)]
    continuing_subword_prefix: Option<String>,
    #[serde(default)]
    end_of_word_suffix: Option<String>,
    #[serde(default)]
    fuse_unk: bool,
    #[serde(default)]
    byte_fallback: bool,
    #[serde(default)]
    ignore_merges: bool,
    vocab: Vocab,
    #[serde(borrow)]
    merges: Merges<'a>,
}

/// `tokenizer.json` shape of a BPE model, as written.
#[derive(Serialize)]
struct BpeConfigOut<'a> {
    dropout: Option<f32>,
    unk_token: &'a Option<String>,
    continuing_subword_prefix: &'a Option<String>,
    end_of_word_suffix: &'a Option<String>,
    fuse_unk: bool,
    byte_fallback: bool,
    ignore_merges: bool,
    vocab: &'a Vocab,
    merges: Vec<(&'a str, &'a str)>,
}

/// Merges as either `["a b", ...]` (legacy) or `[["a", "b"], ...]`, read as a stream (an
/// untagged enum would first copy the whole list into an intermediate tree).
struct Merges<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Merges<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{SeqAccess, Visitor};

        /// One merge: `"a b"` or `["a", "b"]`.
        struct Entry<'a>((Cow<'a, str>, Cow<'a, str>));
        impl<'de: 'a, 'a> Deserialize<'de> for Entry<'a> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V<'a>(std::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                    type Value = Entry<'a>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a merge: \"left right\" or [\"left\", \"right\"]")
                    }
                    fn visit_borrowed_str<E: serde::de::Error>(
                        self,
                        v: &'de str,
                    ) -> Result<Entry<'a>, E> {
                        let (a, b) = split_merge(v).map_err(E::custom)?;
                        Ok(Entry((Cow::Borrowed(a), Cow::Borrowed(b))))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Entry<'a>, E> {
                        let (a, b) = split_merge(v).map_err(E::custom)?;
                        Ok(Entry((Cow::Owned(a.to_owned()), Cow::Owned(b.to_owned()))))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Entry<'a>, A::Error> {
                        let a: Part<'a> = seq
                            .next_element()?
                            .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                        let b: Part<'a> = seq
                            .next_element()?
                            .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                        if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                            return Err(A::Error::invalid_length(3, &self));
                        }
                        Ok(Entry((a.0, b.0)))
                    }
                }
                deserializer.deserialize_any(V(std::marker::PhantomData))
            }
        }

        /// One side of a merge pair.
        struct Part<'a>(Cow<'a, str>);
        impl<'de: 'a, 'a> Deserialize<'de> for Part<'a> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V<'a>(std::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                    type Value = Part<'a>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a token string")
                    }
                    fn visit_borrowed_str<E: serde::de::Error>(
                        self,
                        v: &'de str,
                    ) -> Result<Part<'a>, E> {
                        Ok(Part(Cow::Borrowed(v)))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Part<'a>, E> {
                        Ok(Part(Cow::Owned(v.to_owned())))
                    }
                }
                deserializer.deserialize_str(V(std::marker::PhantomData))
            }
        }

        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Merges<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of merges")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Merges<'a>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(Entry(pair)) = seq.next_element()? {
                    out.push(pair);
                }
                Ok(Merges(out))
            }
        }
        deserializer.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// Splits a legacy `"left right"` merge.
fn split_merge(line: &str) -> Result<(&str, &str), String> {
    // A byte loop: merges are a few bytes long, shorter than a search routine's setup.
    let bytes = line.as_bytes();
    let mut spaces = bytes.iter().enumerate().filter(|&(_, &b)| b == b' ');
    match (spaces.next(), spaces.next()) {
        (Some((i, _)), None) => Ok((&line[..i], &line[i + 1..])),
        _ => Err(format!("{line:?} is not two tokens separated by one space")),
    }
}

impl<'de> Deserialize<'de> for Bpe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let c = BpeConfigIn::deserialize(deserializer)?;
        if c.dropout.is_some_and(|d| d > 0.0) {
            return Err(D::Error::custom(
                "BPE dropout is not supported (it makes tokenization random); set it to null",
            ));
        }
        Bpe::build(
            c.vocab,
            &c.merges.0,
            BpeOptions {
                unk_token: c.unk_token,
                continuing_subword_prefix: c.continuing_subword_prefix,
                end_of_word_suffix: c.end_of_word_suffix,
                fuse_unk: c.fuse_unk,
                byte_fallback: c.byte_fallback,
                ignore_merges: c.ignore_merges,
            },
        )
        .map_err(|e| D::Error::custom(e.to_string()))
    }
}

impl Serialize for Bpe {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        BpeConfigOut {
            dropout: None,
            unk_token: &self.unk_token,
            continuing_subword_prefix: &self.continuing_subword_prefix,
            end_of_word_suffix: &self.end_of_word_suffix,
            fuse_unk: self.fuse_unk,
            byte_fallback: self.byte_fallback,
            ignore_merges: self.ignore_merges,
            vocab: &self.vocab,
            merges: self.merges().collect(),
        }
        .serialize(serializer)
    }
}

/// Parses `merges.txt` lines (`a b`; a `#version` line is skipped).
pub fn parse_merge_lines<'a>(
    lines: impl Iterator<Item = &'a str>,
) -> Result<Vec<(String, String)>, String> {
    lines
        .filter(|l| !l.starts_with("#version"))
        .enumerate()
        .map(|(i, line)| {
            split_merge(line)
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .map_err(|e| format!("merge {}: {e}", i + 1))
        })
        .collect()
}

/// Options of a BPE model besides its vocabulary and merges.
#[derive(Debug, Clone, Default)]
pub struct BpeOptions {
    /// Token for chars that cannot be represented.
    pub unk_token: Option<String>,
    /// Prefix of every symbol but the first of a word.
    pub continuing_subword_prefix: Option<String>,
    /// Suffix of the last symbol of a word.
    pub end_of_word_suffix: Option<String>,
    /// Fuse consecutive unknown chars.
    pub fuse_unk: bool,
    /// `<0xXX>` byte tokens for unknown chars.
    pub byte_fallback: bool,
    /// Whole words in the vocabulary skip the merges.
    pub ignore_merges: bool,
}

#[derive(Debug, Clone, Copy)]
struct Symbol {
    id: u32,
    prev: isize,
    next: isize,
    /// Byte length in the word; 0 once merged into its left neighbour.
    len: usize,
}

/// Words of at most this many symbols are merged by scanning instead of with a heap.
const SHORT_WORD: usize = 24;

#[derive(Debug, PartialEq, Eq)]
struct Candidate {
    pos: usize,
    rank: u32,
    new_id: u32,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: lowest rank first, then leftmost.
        other
            .rank
            .cmp(&self.rank)
            .then_with(|| other.pos.cmp(&self.pos))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Bpe {
    /// Builds a BPE model; every merge's parts and result must be in the vocabulary.
    pub fn new(vocab: Vocab, merges: Vec<(String, String)>, options: BpeOptions) -> Result<Self> {
        Bpe::build(vocab, &merges, options)
    }

    /// The merges, in rank order.
    pub fn merges(&self) -> impl Iterator<Item = (&str, &str)> {
        self.merge_pairs.iter().map(|&(a, b)| {
            (
                self.vocab.token(a).unwrap_or_default(),
                self.vocab.token(b).unwrap_or_default(),
            )
        })
    }

    fn build<S: AsRef<str> + Sync>(
        vocab: Vocab,
        merges: &[(S, S)],
        options: BpeOptions,
    ) -> Result<Self> {
        let prefix_len = options
            .continuing_subword_prefix
            .as_ref()
            .map_or(0, String::len);
        // Resolving merges to ids is three lookups each; it runs in parallel (large vocabularies
        // have hundreds of thousands of merges), then the map is filled in rank order so that a
        // repeated pair keeps its first rank.
        use rayon::prelude::*;
        // Vocabularies built by BPE training give the result of merge `r` the id `base + r`;
        // when that guess holds (checked by comparing the strings), the lookup is skipped.
        let base = merges.first().and_then(|(a, b)| {
            let merged = format!(
                "{}{}",
                a.as_ref(),
                b.as_ref().get(prefix_len..).unwrap_or("")
            );
            vocab.id(&merged)
        });
        let resolved: Vec<Result<(u32, u32, u32)>> = merges
            .par_iter()
            .enumerate()
            .map_init(
                || String::with_capacity(64),
                |merged, (rank, (a, b))| {
                    let (a, b) = (a.as_ref(), b.as_ref());
                    let id = |t: &str| {
                        vocab.id(t).ok_or_else(|| {
                            Error::Invalid(format!(
                                "merge {} names {t:?}, which is not in the vocabulary",
                                rank + 1
                            ))
                        })
                    };
                    merged.clear();
                    merged.push_str(a);
                    merged.push_str(b.get(prefix_len..).unwrap_or(""));
                    let guess = base.map(|base| base + rank as u32);
                    let new_id = match guess {
                        Some(g) if vocab.token(g) == Some(merged.as_str()) => g,
                        _ => id(merged)?,
                    };
                    Ok((id(a)?, id(b)?, new_id))
                },
            )
            .collect();
        let mut merge_map = FxHashMap::default();
        merge_map.reserve(merges.len());
        let mut merge_pairs = Vec::with_capacity(merges.len());
        for (rank, r) in resolved.into_iter().enumerate() {
            let (a_id, b_id, new_id) = r?;
            merge_pairs.push((a_id, b_id));
            merge_map
                .entry((a_id, b_id))
                .or_insert((rank as u32, new_id));
        }
        let unk_id = match &options.unk_token {
            Some(t) => Some(vocab.id(t).ok_or_else(|| {
                Error::Invalid(format!("the unknown token {t:?} is not in the vocabulary"))
            })?),
            None => None,
        };
        let byte_ids = if options.byte_fallback {
            let mut ids = Box::new([u32::MAX; 256]);
            for (b, slot) in ids.iter_mut().enumerate() {
                if let Some(id) = vocab.id(&format!("<0x{b:02X}>")) {
                    *slot = id;
                }
            }
            Some(ids)
        } else {
            None
        };
        Ok(Bpe {
            vocab,
            merge_pairs,
            merge_map,
            unk_token: options.unk_token,
            unk_id,
            continuing_subword_prefix: options.continuing_subword_prefix,
            end_of_word_suffix: options.end_of_word_suffix,
            fuse_unk: options.fuse_unk,
            byte_fallback: options.byte_fallback,
            ignore_merges: options.ignore_merges,
            byte_ids,
        })
    }

    /// Initial symbols of `word`: (id, byte length) per char, with byte fallback and unknowns.
    fn initial_symbols(&self, word: &str) -> Vec<(u32, usize)> {
        let mut out = Vec::with_capacity(word.len());
        let mut unk: Option<(u32, usize)> = None;
        let mut buf = String::new();
        let mut chars = word.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let is_first = i == 0;
            let is_last = chars.peek().is_none();
            let piece = &word[i..i + c.len_utf8()];
            let plain = (is_first || self.continuing_subword_prefix.is_none())
                && (!is_last || self.end_of_word_suffix.is_none());
            let id = if plain {
                self.vocab.id(piece)
            } else {
                buf.clear();
                if let (false, Some(p)) = (is_first, &self.continuing_subword_prefix) {
                    buf.push_str(p);
                }
                buf.push_str(piece);
                if let (true, Some(s)) = (is_last, &self.end_of_word_suffix) {
                    buf.push_str(s);
                }
                self.vocab.id(&buf)
            };
            let byte_len = piece.len();
            if let Some(id) = id {
                if let Some(u) = unk.take() {
                    out.push(u);
                }
                out.push((id, byte_len));
                continue;
            }
            if let Some(byte_ids) = &self.byte_ids {
                // As in HuggingFace, the whole symbol text (prefix and suffix included) falls
                // back to bytes, and a pending unknown is not flushed first.
                let text: &str = if plain { piece } else { &buf };
                let ids: Option<Vec<u32>> = text
                    .bytes()
                    .map(|b| Some(byte_ids[b as usize]).filter(|&id| id != u32::MAX))
                    .collect();
                if let Some(ids) = ids {
                    out.extend(ids.into_iter().map(|id| (id, 1)));
                    continue;
                }
            }
            if let Some(unk_id) = self.unk_id {
                unk = match unk {
                    Some((id, len)) if self.fuse_unk => Some((id, len + byte_len)),
                    Some(prev) => {
                        out.push(prev);
                        Some((unk_id, byte_len))
                    }
                    None => Some((unk_id, byte_len)),
                };
            }
        }
        if let Some(u) = unk {
            out.push(u);
        }
        out
    }

    /// Applies the merges to initial symbols given as (id, byte length); returns the merged ones.
    pub(crate) fn merge_symbols(&self, initial: Vec<(u32, usize)>) -> Vec<(u32, usize)> {
        if initial.len() <= SHORT_WORD {
            return self.merge_short(initial);
        }
        self.merge(initial)
            .into_iter()
            .map(|s| (s.id, s.len))
            .collect()
    }

    /// The same merges for a short word, by scanning for the lowest-ranked adjacent pair
    /// (leftmost on ties) each round: for a few symbols this beats maintaining a heap, and it
    /// applies the merges in exactly the heap's order.
    fn merge_short(&self, mut symbols: Vec<(u32, usize)>) -> Vec<(u32, usize)> {
        loop {
            let mut best: Option<(u32, usize, u32)> = None;
            for (pos, w) in symbols.windows(2).enumerate() {
                if let Some(&(rank, new_id)) = self.merge_map.get(&(w[0].0, w[1].0))
                    && best.is_none_or(|(r, _, _)| rank < r)
                {
                    best = Some((rank, pos, new_id));
                }
            }
            let Some((_, pos, new_id)) = best else {
                return symbols;
            };
            let right = symbols.remove(pos + 1);
            symbols[pos] = (new_id, symbols[pos].1 + right.1);
        }
    }

    /// Whether a word starts as plain chars (no continuing prefix, no end-of-word suffix).
    pub(crate) fn has_plain_symbols(&self) -> bool {
        self.continuing_subword_prefix
            .as_deref()
            .is_none_or(str::is_empty)
            && self.end_of_word_suffix.as_deref().is_none_or(str::is_empty)
    }

    /// Applies the merges to the symbols.
    fn merge(&self, initial: Vec<(u32, usize)>) -> Vec<Symbol> {
        let n = initial.len();
        let mut symbols: Vec<Symbol> = initial
            .into_iter()
            .enumerate()
            .map(|(i, (id, len))| Symbol {
                id,
                prev: i as isize - 1,
                next: if i + 1 < n { i as isize + 1 } else { -1 },
                len,
            })
            .collect();
        let mut heap: BinaryHeap<Candidate> = symbols
            .windows(2)
            .enumerate()
            .filter_map(|(pos, w)| {
                self.merge_map
                    .get(&(w[0].id, w[1].id))
                    .map(|&(rank, new_id)| Candidate { pos, rank, new_id })
            })
            .collect();
        while let Some(top) = heap.pop() {
            let cur = symbols[top.pos];
            if cur.len == 0 || cur.next < 0 {
                continue;
            }
            let next_pos = cur.next as usize;
            let right = symbols[next_pos];
            match self.merge_map.get(&(cur.id, right.id)) {
                Some(&(_, new_id)) if new_id == top.new_id => {}
                _ => continue,
            }
            symbols[top.pos].id = top.new_id;
            symbols[top.pos].len += right.len;
            symbols[top.pos].next = right.next;
            symbols[next_pos].len = 0;
            if right.next >= 0 {
                symbols[right.next as usize].prev = top.pos as isize;
            }
            let merged = symbols[top.pos];
            if merged.prev >= 0 {
                let prev = symbols[merged.prev as usize];
                if let Some(&(rank, new_id)) = self.merge_map.get(&(prev.id, merged.id)) {
                    heap.push(Candidate {
                        pos: merged.prev as usize,
                        rank,
                        new_id,
                    });
                }
            }
            if merged.next >= 0 {
                let next = symbols[merged.next as usize];
                if let Some(&(rank, new_id)) = self.merge_map.get(&(merged.id, next.id)) {
                    heap.push(Candidate {
                        pos: top.pos,
                        rank,
                        new_id,
                    });
                }
            }
        }
        symbols.retain(|s| s.len != 0);
        symbols
    }

    /// Tokenizes one word, appending to `out`.
    pub fn tokenize(&self, word: &str, out: &mut Vec<Token>) -> Result<()> {
        if word.is_empty() {
            return Ok(());
        }
        if self.ignore_merges
            && let Some(id) = self.vocab.id(word)
        {
            out.push(Token {
                id,
                value: word.to_owned(),
                offsets: (0, word.len()),
            });
            return Ok(());
        }
        let mut start = 0;
        for (id, len) in self.merge_symbols(self.initial_symbols(word)) {
            let value = self.vocab.token(id).unwrap_or_default().to_owned();
            out.push(Token {
                id,
                value,
                offsets: (start, start + len),
            });
            start += len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Bpe {
        let vocab = Vocab::from_pairs(
            ["<unk>", "a", "b", "c", "ab", "bc", "abc"]
                .iter()
                .enumerate()
                .map(|(i, t)| (t.to_string(), i as u32)),
        );
        let merges = vec![("a".into(), "b".into()), ("ab".into(), "c".into())];
        Bpe::new(
            vocab,
            merges,
            BpeOptions {
                unk_token: Some("<unk>".into()),
                fuse_unk: true,
                ..BpeOptions::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn short_and_long_words_merge_alike() {
        let m = model();
        // Long enough for the heap, and the same word cut short enough for the scan.
        let long = "abcab".repeat(10);
        let mut heap = Vec::new();
        m.tokenize(&long, &mut heap).unwrap();
        let ids: Vec<u32> = heap.iter().map(|t| t.id).collect();
        assert_eq!(ids, [6, 4].repeat(10));
        let initial: Vec<(u32, usize)> =
            long.bytes().map(|b| (u32::from(b - b'a') + 1, 1)).collect();
        let by_heap: Vec<(u32, usize)> = m
            .merge(initial.clone())
            .iter()
            .map(|s| (s.id, s.len))
            .collect();
        assert_eq!(m.merge_short(initial), by_heap);
    }

    #[test]
    fn merges_by_rank() {
        let mut out = Vec::new();
        model().tokenize("abcab", &mut out).unwrap();
        let v: Vec<&str> = out.iter().map(|t| t.value.as_str()).collect();
        assert_eq!(v, ["abc", "ab"]);
        assert_eq!(out[1].offsets, (3, 5));
    }

    #[test]
    fn unknown_chars_fuse() {
        let mut out = Vec::new();
        model().tokenize("xxa", &mut out).unwrap();
        let v: Vec<(u32, (usize, usize))> = out.iter().map(|t| (t.id, t.offsets)).collect();
        assert_eq!(v, [(0, (0, 2)), (1, (2, 3))]);
    }
}
