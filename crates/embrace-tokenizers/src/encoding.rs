//! [`Encoding`]: the output of the tokenizer for one input (single sequence or pair), and the
//! operations on it: merging, truncation with overflow, padding.

use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Token range of each sequence of an encoding: sequence 0 (first input) and 1 (pair). Stored
/// inline: an encoding never has more than two sequences.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SequenceRanges([Option<Range<usize>>; 2]);

impl SequenceRanges {
    pub(crate) fn insert(&mut self, seq: usize, range: Range<usize>) {
        if let Some(slot) = self.0.get_mut(seq) {
            *slot = Some(range);
        }
    }
    pub(crate) fn get(&self, seq: usize) -> Option<&Range<usize>> {
        self.0.get(seq).and_then(Option::as_ref)
    }
    pub(crate) fn len(&self) -> usize {
        self.0.iter().flatten().count()
    }
    pub(crate) fn clear(&mut self) {
        self.0 = [None, None];
    }
    fn iter(&self) -> impl Iterator<Item = (usize, &Range<usize>)> {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (i, r)))
    }
    fn values_mut(&mut self) -> impl Iterator<Item = &mut Range<usize>> {
        self.0.iter_mut().flatten()
    }
}

/// Which side truncation or padding applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Direction {
    /// The start of the sequence.
    Left,
    /// The end of the sequence.
    #[default]
    Right,
}

/// Everything the tokenizer knows about each token of one input.
///
/// Invariant: every per-token vector has the same length. Offsets are byte offsets into the
/// input string that produced the token (each sequence of a pair has its own input); special and
/// padding tokens have `(0, 0)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoding {
    pub(crate) ids: Vec<u32>,
    pub(crate) type_ids: Vec<u32>,
    pub(crate) tokens: Vec<String>,
    pub(crate) words: Vec<Option<u32>>,
    pub(crate) offsets: Vec<(usize, usize)>,
    pub(crate) special_tokens_mask: Vec<u32>,
    pub(crate) attention_mask: Vec<u32>,
    pub(crate) overflowing: Vec<Encoding>,
    /// Token range of each sequence (0 = first, 1 = pair).
    pub(crate) sequence_ranges: SequenceRanges,
}

impl Encoding {
    /// Token ids.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
    /// Token type ids (segment ids).
    pub fn type_ids(&self) -> &[u32] {
        &self.type_ids
    }
    /// Token strings.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }
    /// Index of the word each token belongs to, `None` for special and padding tokens.
    pub fn word_ids(&self) -> &[Option<u32>] {
        &self.words
    }
    /// Byte offsets of each token in its input string.
    pub fn offsets(&self) -> &[(usize, usize)] {
        &self.offsets
    }
    /// 1 for special (and padding) tokens, 0 otherwise.
    pub fn special_tokens_mask(&self) -> &[u32] {
        &self.special_tokens_mask
    }
    /// 1 for real tokens, 0 for padding.
    pub fn attention_mask(&self) -> &[u32] {
        &self.attention_mask
    }
    /// The parts cut off by truncation, each a full encoding (with special tokens).
    pub fn overflowing(&self) -> &[Encoding] {
        &self.overflowing
    }
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    /// Whether there is no token.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// Number of sequences (1 for a single input, 2 for a pair).
    pub fn n_sequences(&self) -> usize {
        self.sequence_ranges.len().max(1)
    }

    /// Which sequence each token belongs to (`None` for special and padding tokens).
    ///
    /// This follows HuggingFace exactly, quirks included: sequences are looked up as `0..n` where
    /// `n` is the number of known ranges, and a missing range means "every token" (so an encoding
    /// that never went through a post-processor reports all its tokens, padding included, as 0).
    pub fn sequence_ids(&self) -> Vec<Option<usize>> {
        let mut out = vec![None; self.len()];
        for seq in 0..self.n_sequences() {
            let range = self
                .sequence_ranges
                .get(seq)
                .cloned()
                .unwrap_or(0..self.len());
            for slot in out.get_mut(range).into_iter().flatten() {
                *slot = Some(seq);
            }
        }
        out
    }

    pub(crate) fn set_sequence_id(&mut self, id: usize) {
        self.sequence_ranges.clear();
        self.sequence_ranges.insert(id, 0..self.len());
    }

    pub(crate) fn set_type_ids(&mut self, type_id: u32) {
        self.type_ids = vec![type_id; self.len()];
    }

    /// Converts every offset (and those of the overflowing parts) with `f`.
    pub(crate) fn map_offsets(&mut self, f: &impl Fn((usize, usize)) -> (usize, usize)) {
        for o in &mut self.offsets {
            *o = f(*o);
        }
        for e in &mut self.overflowing {
            e.map_offsets(f);
        }
    }

    fn slice(&self, range: Range<usize>) -> Encoding {
        Encoding {
            ids: self.ids[range.clone()].to_vec(),
            type_ids: self.type_ids[range.clone()].to_vec(),
            tokens: self.tokens[range.clone()].to_vec(),
            words: self.words[range.clone()].to_vec(),
            offsets: self.offsets[range.clone()].to_vec(),
            special_tokens_mask: self.special_tokens_mask[range.clone()].to_vec(),
            attention_mask: self.attention_mask[range].to_vec(),
            overflowing: Vec::new(),
            sequence_ranges: SequenceRanges::default(),
        }
    }

    /// Keeps at most `max_len` tokens; the rest goes to `overflowing`, in windows that repeat
    /// `stride` tokens of the previous window. Requires `stride < max_len` when truncating.
    pub(crate) fn truncate(
        &mut self,
        max_len: usize,
        stride: usize,
        direction: Direction,
    ) -> Result<(), String> {
        let len = self.len();
        if max_len >= len {
            return Ok(());
        }
        if max_len == 0 {
            let whole = std::mem::take(self);
            self.overflowing.push(whole);
            return Ok(());
        }
        if stride >= max_len {
            return Err(format!(
                "stride ({stride}) must be strictly less than the maximum length available for the \
                 sequence ({max_len}, after subtracting special tokens)"
            ));
        }
        self.sequence_ranges.clear();
        let step = max_len - stride;
        let mut parts = Vec::new();
        match direction {
            Direction::Right => {
                let mut start = 0;
                loop {
                    let stop = (start + max_len).min(len);
                    parts.push(start..stop);
                    if stop == len {
                        break;
                    }
                    start += step;
                }
            }
            Direction::Left => {
                let mut stop = len;
                loop {
                    let start = stop.saturating_sub(max_len);
                    parts.push(start..stop);
                    if start == 0 || stop <= step {
                        break;
                    }
                    stop -= step;
                }
            }
        }
        let mut main = self.slice(parts[0].clone());
        main.overflowing = parts[1..].iter().map(|r| self.slice(r.clone())).collect();
        *self = main;
        Ok(())
    }

    /// Appends `pair` to `self`. Overflowing parts are combined pairwise, as HuggingFace does.
    pub(crate) fn merge_with(&mut self, pair: Encoding, growing_offsets: bool) {
        let mut overflowings = Vec::new();
        for self_o in &self.overflowing {
            let mut n = self_o.clone();
            n.merge_with(pair.clone(), growing_offsets);
            overflowings.push(n);
            for other_o in &pair.overflowing {
                let mut n = self_o.clone();
                n.merge_with(other_o.clone(), growing_offsets);
                overflowings.push(n);
            }
        }
        for other_o in &pair.overflowing {
            let mut n = self.clone();
            n.merge_with(other_o.clone(), growing_offsets);
            overflowings.push(n);
        }
        let shift = self.len();
        for (seq, r) in pair.sequence_ranges.iter() {
            self.sequence_ranges
                .insert(seq, r.start + shift..r.end + shift);
        }
        self.ids.extend(pair.ids);
        self.type_ids.extend(pair.type_ids);
        self.tokens.extend(pair.tokens);
        self.words.extend(pair.words);
        let start = if growing_offsets {
            self.offsets.last().map_or(0, |o| o.1)
        } else {
            0
        };
        self.offsets.extend(
            pair.offsets
                .into_iter()
                .map(|(s, e)| (s + start, e + start)),
        );
        self.special_tokens_mask.extend(pair.special_tokens_mask);
        self.attention_mask.extend(pair.attention_mask);
        self.overflowing = overflowings;
    }

    /// Merges encodings in order.
    pub(crate) fn merge(encodings: Vec<Encoding>, growing_offsets: bool) -> Encoding {
        let total: usize = encodings.iter().map(Encoding::len).sum();
        let mut out = Encoding::with_capacity(total);
        for e in encodings {
            out.merge_with(e, growing_offsets);
        }
        out
    }

    /// An empty encoding with room for `n` tokens.
    fn with_capacity(n: usize) -> Encoding {
        Encoding {
            ids: Vec::with_capacity(n),
            type_ids: Vec::with_capacity(n),
            tokens: Vec::with_capacity(n),
            words: Vec::with_capacity(n),
            offsets: Vec::with_capacity(n),
            special_tokens_mask: Vec::with_capacity(n),
            attention_mask: Vec::with_capacity(n),
            ..Encoding::default()
        }
    }

    /// Pads to `target` tokens (and the overflowing parts too).
    pub(crate) fn pad(
        &mut self,
        target: usize,
        pad_id: u32,
        pad_type_id: u32,
        pad_token: &str,
        direction: Direction,
    ) {
        for o in &mut self.overflowing {
            o.pad(target, pad_id, pad_type_id, pad_token, direction);
        }
        if self.len() >= target {
            return;
        }
        let n = target - self.len();
        match direction {
            Direction::Left => {
                fn prepend<T: Clone>(v: &mut Vec<T>, n: usize, x: T) {
                    v.splice(0..0, std::iter::repeat_n(x, n));
                }
                prepend(&mut self.ids, n, pad_id);
                prepend(&mut self.type_ids, n, pad_type_id);
                prepend(&mut self.tokens, n, pad_token.to_owned());
                prepend(&mut self.words, n, None);
                prepend(&mut self.attention_mask, n, 0);
                prepend(&mut self.special_tokens_mask, n, 1);
                prepend(&mut self.offsets, n, (0, 0));
                for r in self.sequence_ranges.values_mut() {
                    *r = r.start + n..r.end + n;
                }
            }
            Direction::Right => {
                self.ids.extend(std::iter::repeat_n(pad_id, n));
                self.type_ids.extend(std::iter::repeat_n(pad_type_id, n));
                self.tokens
                    .extend(std::iter::repeat_n(pad_token.to_owned(), n));
                self.words.extend(std::iter::repeat_n(None, n));
                self.attention_mask.extend(std::iter::repeat_n(0, n));
                self.special_tokens_mask.extend(std::iter::repeat_n(1, n));
                self.offsets.extend(std::iter::repeat_n((0, 0), n));
            }
        }
    }

    /// An encoding of the given tokens, all attended, none special.
    pub(crate) fn from_tokens(
        tokens: impl IntoIterator<Item = (u32, String, (usize, usize), Option<u32>)>,
        type_id: u32,
    ) -> Encoding {
        let tokens = tokens.into_iter();
        let mut e = Encoding::with_capacity(tokens.size_hint().0);
        for (id, token, offsets, word) in tokens {
            e.ids.push(id);
            e.tokens.push(token);
            e.offsets.push(offsets);
            e.words.push(word);
        }
        let n = e.ids.len();
        e.type_ids = vec![type_id; n];
        e.special_tokens_mask = vec![0; n];
        e.attention_mask = vec![1; n];
        e
    }
}

/// Converts byte offsets into char offsets of `text`, exactly as HuggingFace's Python binding
/// does (an offset that does not start on a byte of `text` is left unchanged).
pub(crate) fn char_offset_converter(text: &str) -> impl Fn((usize, usize)) -> (usize, usize) + '_ {
    // byte index -> char index, for every byte of every char.
    let mut map = Vec::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        map.extend(std::iter::repeat_n(i, c.len_utf8()));
    }
    move |(s, e)| {
        let Some(&start) = map.get(s) else {
            return (s, e);
        };
        match map.get(e) {
            Some(&end) => (start, end),
            None => {
                let last = e
                    .checked_sub(1)
                    .and_then(|p| map.get(p))
                    .copied()
                    .unwrap_or(start + 1);
                (start, last + 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(n: u32) -> Encoding {
        Encoding::from_tokens(
            (0..n).map(|i| (i, format!("t{i}"), (i as usize, i as usize + 1), Some(i))),
            0,
        )
    }

    #[test]
    fn truncate_right_with_stride() {
        let mut e = enc(10);
        e.truncate(4, 1, Direction::Right).unwrap();
        assert_eq!(e.ids(), [0, 1, 2, 3]);
        let parts: Vec<Vec<u32>> = e.overflowing().iter().map(|o| o.ids().to_vec()).collect();
        assert_eq!(parts, vec![vec![3, 4, 5, 6], vec![6, 7, 8, 9]]);
    }

    #[test]
    fn truncate_left() {
        let mut e = enc(10);
        e.truncate(4, 0, Direction::Left).unwrap();
        assert_eq!(e.ids(), [6, 7, 8, 9]);
        let parts: Vec<Vec<u32>> = e.overflowing().iter().map(|o| o.ids().to_vec()).collect();
        assert_eq!(parts, vec![vec![2, 3, 4, 5], vec![0, 1]]);
    }

    #[test]
    fn pad_left_shifts_sequence_ranges() {
        let mut e = enc(2);
        e.set_sequence_id(0);
        e.pad(4, 0, 0, "[PAD]", Direction::Left);
        assert_eq!(e.attention_mask(), [0, 0, 1, 1]);
        assert_eq!(e.sequence_ids(), vec![None, None, Some(0), Some(0)]);
    }

    #[test]
    fn char_offsets_match_python() {
        let conv = char_offset_converter("aé b");
        assert_eq!(conv((1, 3)), (1, 2));
        assert_eq!(conv((4, 5)), (3, 4));
        assert_eq!(conv((5, 5)), (5, 5));
    }
}
