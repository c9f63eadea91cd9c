//! [`NormalizedString`]: a string being normalized, which remembers where each of its bytes came
//! from in the original input.
//!
//! Invariant: `alignments.len() == normalized.len()`, and `alignments[i]` is the byte range of the
//! original string (relative to this string's own original, i.e. before adding `original_shift`)
//! that produced normalized byte `i`. All bytes of one normalized char share one alignment.
//!
//! The alignment rules are HuggingFace's, so that offsets come out identical: a replaced char keeps
//! the alignment of the char it replaces (the first one when it also absorbs following chars), and
//! an inserted char takes the alignment of the char consumed just before it.

use std::ops::Range;

/// A normalized string with its alignment to the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedString {
    original: String,
    normalized: String,
    alignments: Vec<(usize, usize)>,
    original_shift: usize,
}

/// How the pieces matched by a split pattern are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SplitDelimiterBehavior {
    /// The delimiter is dropped.
    Removed,
    /// The delimiter becomes a piece of its own.
    Isolated,
    /// The delimiter is appended to the previous piece.
    MergedWithPrevious,
    /// The delimiter is prepended to the next piece.
    MergedWithNext,
    /// Consecutive delimiters form one piece.
    Contiguous,
}

impl From<&str> for NormalizedString {
    fn from(s: &str) -> Self {
        let mut alignments = Vec::with_capacity(s.len());
        for (b, c) in s.char_indices() {
            let len = c.len_utf8();
            alignments.extend(std::iter::repeat_n((b, b + len), len));
        }
        Self {
            original: s.to_owned(),
            normalized: s.to_owned(),
            alignments,
            original_shift: 0,
        }
    }
}

impl NormalizedString {
    /// The string `s` found at byte `shift` of a larger input (so that offsets, and rules that
    /// look at the position in the input, see where it really is).
    pub fn with_shift(s: &str, shift: usize) -> Self {
        let mut n = NormalizedString::from(s);
        n.original_shift = shift;
        n
    }

    /// The normalized text.
    pub fn get(&self) -> &str {
        &self.normalized
    }

    /// The original text this piece comes from.
    pub fn get_original(&self) -> &str {
        &self.original
    }

    /// For each byte of the normalized text, the byte range of the original it comes from
    /// (relative to this piece's original text).
    pub fn alignments(&self) -> &[(usize, usize)] {
        &self.alignments
    }

    /// Length of the normalized text in bytes.
    pub fn len(&self) -> usize {
        self.normalized.len()
    }

    /// Whether the normalized text is empty.
    pub fn is_empty(&self) -> bool {
        self.normalized.is_empty()
    }

    /// Byte range of this piece in the whole original input.
    pub fn offsets_original(&self) -> (usize, usize) {
        (
            self.original_shift,
            self.original_shift + self.original.len(),
        )
    }

    /// Converts a byte range of the normalized text into a byte range of this piece's original
    /// text (not shifted). `None` when the range is out of bounds or reversed.
    pub fn normalized_to_original(&self, range: Range<usize>) -> Option<Range<usize>> {
        if range.start == range.end {
            return Some(range);
        }
        if range.start > range.end {
            return None;
        }
        let aligned = self.alignments.get(range)?;
        let first = aligned.first()?;
        let last = aligned.last()?;
        Some(first.0..last.1)
    }

    /// A sub-piece covering the normalized byte `range`, with its alignments rebased.
    pub fn slice(&self, range: Range<usize>) -> Option<NormalizedString> {
        let normalized = self.normalized.get(range.clone())?;
        let original_range = if range.start == range.end {
            range.clone()
        } else if self.normalized.is_empty() {
            0..self.original.len()
        } else {
            self.normalized_to_original(range.clone())?
        };
        let shift = original_range.start;
        Some(Self {
            original: self.original.get(original_range)?.to_owned(),
            normalized: normalized.to_owned(),
            alignments: self
                .alignments
                .get(range)?
                .iter()
                .map(|&(s, e)| (s - shift, e - shift))
                .collect(),
            original_shift: self.original_shift + shift,
        })
    }

    /// Replaces the normalized bytes in `range` by the chars of `dest`.
    ///
    /// Each item is `(char, change)`: `change == 0` replaces the next char of the range, `change > 0`
    /// inserts a char, `change < 0` replaces the next char and also removes the `-change` chars after
    /// it. The first `initial_offset` chars of the range are removed before anything else.
    pub fn transform_range(
        &mut self,
        range: Range<usize>,
        dest: impl IntoIterator<Item = (char, isize)>,
        initial_offset: usize,
    ) {
        let mut replaced = self.normalized[range.clone()].chars();
        let initial_removed: usize = (&mut replaced)
            .take(initial_offset)
            .map(char::len_utf8)
            .sum();
        let mut offset = range.start + initial_removed;
        let mut alignments = Vec::with_capacity(range.len());
        let mut normalized = String::with_capacity(range.len());
        for (c, changes) in dest {
            let align = if changes > 0 {
                if offset == 0 {
                    (0, 0)
                } else {
                    self.alignments[offset - 1]
                }
            } else {
                self.alignments.get(offset).copied().unwrap_or((0, 0))
            };
            if changes <= 0 {
                offset += replaced.next().map_or(0, char::len_utf8);
            }
            if changes < 0 {
                offset += (&mut replaced)
                    .take(changes.unsigned_abs())
                    .map(char::len_utf8)
                    .sum::<usize>();
            }
            alignments.extend(std::iter::repeat_n(align, c.len_utf8()));
            normalized.push(c);
        }
        self.alignments.splice(range.clone(), alignments);
        self.normalized.replace_range(range, &normalized);
    }

    /// [`Self::transform_range`] over the whole string.
    pub fn transform(
        &mut self,
        dest: impl IntoIterator<Item = (char, isize)>,
        initial_offset: usize,
    ) {
        self.transform_range(0..self.normalized.len(), dest, initial_offset);
    }

    /// Keeps only the chars for which `keep` is true.
    pub fn filter(&mut self, keep: impl Fn(char) -> bool) -> &mut Self {
        if self.normalized.chars().all(&keep) {
            return self;
        }
        let mut removed: isize = 0;
        let mut removed_start = 0;
        let mut transforms = Vec::with_capacity(self.normalized.len());
        let mut last: Option<char> = None;
        for c in self.normalized.chars() {
            if keep(c) {
                match last {
                    Some(lc) => transforms.push((lc, -removed)),
                    None => removed_start = removed as usize,
                }
                last = Some(c);
                removed = 0;
            } else {
                removed += 1;
            }
        }
        if let Some(lc) = last {
            transforms.push((lc, -removed));
        } else {
            removed_start = removed as usize;
        }
        self.transform(transforms, removed_start);
        self
    }

    /// Maps every char through `f` (one char in, one char out).
    pub fn map(&mut self, f: impl Fn(char) -> char) -> &mut Self {
        if self.normalized.chars().all(|c| f(c) == c) {
            return self;
        }
        let dest: Vec<(char, isize)> = self.normalized.chars().map(|c| (f(c), 0)).collect();
        self.transform(dest, 0);
        self
    }

    /// Replaces every char by the chars `f` produces for it (the first replaces, the others are
    /// inserted after it).
    pub fn flat_map<I: IntoIterator<Item = char>>(&mut self, f: impl Fn(char) -> I) -> &mut Self {
        let mut dest = Vec::with_capacity(self.normalized.len());
        for c in self.normalized.chars() {
            for (i, out) in f(c).into_iter().enumerate() {
                dest.push((out, isize::from(i > 0)));
            }
        }
        self.transform(dest, 0);
        self
    }

    /// Unicode lowercase (with HF's alignment of multi-char lowercase forms).
    pub fn lowercase(&mut self) -> &mut Self {
        if self.normalized.is_ascii() {
            if self.normalized.bytes().any(|b| b.is_ascii_uppercase()) {
                self.normalized.make_ascii_lowercase();
            }
            return self;
        }
        self.flat_map(char::to_lowercase)
    }

    /// Unicode uppercase.
    pub fn uppercase(&mut self) -> &mut Self {
        if self.normalized.is_ascii() {
            self.normalized.make_ascii_uppercase();
            return self;
        }
        self.flat_map(char::to_uppercase)
    }

    /// Removes leading and trailing whitespace.
    pub fn strip(&mut self) -> &mut Self {
        self.lrstrip(true, true)
    }

    /// Removes leading (`left`) and/or trailing (`right`) whitespace.
    pub fn lrstrip(&mut self, left: bool, right: bool) -> &mut Self {
        let leading = if left {
            self.normalized
                .chars()
                .take_while(|c| c.is_whitespace())
                .count()
        } else {
            0
        };
        let trailing = if right {
            self.normalized
                .chars()
                .rev()
                .take_while(|c| c.is_whitespace())
                .count()
        } else {
            0
        };
        if leading == 0 && trailing == 0 {
            return self;
        }
        let total = self.normalized.chars().count();
        let kept: Vec<char> = self
            .normalized
            .chars()
            .skip(leading)
            .take(total.saturating_sub(leading + trailing))
            .collect();
        let n = kept.len();
        let dest: Vec<(char, isize)> = kept
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    (c, -(trailing as isize))
                } else {
                    (c, 0)
                }
            })
            .collect();
        self.transform(dest, leading);
        self
    }

    /// Prepends `s` to the normalized text (aligned to the first char).
    pub fn prepend(&mut self, s: &str) -> &mut Self {
        let Some(first) = self.normalized.chars().next() else {
            return self;
        };
        // The first char is replaced by `s` followed by itself: the first new char replaces it,
        // the others are inserted, so all share its alignment.
        let dest: Vec<(char, isize)> = s
            .chars()
            .enumerate()
            .map(|(i, c)| (c, isize::from(i != 0)))
            .chain(std::iter::once((first, 1)))
            .collect();
        self.transform_range(0..first.len_utf8(), dest, 0);
        self
    }

    /// Appends `s` to the normalized text (aligned to the last char).
    pub fn append(&mut self, s: &str) -> &mut Self {
        let Some((b, last)) = self.normalized.char_indices().next_back() else {
            return self;
        };
        let dest: Vec<(char, isize)> = std::iter::once((last, 0))
            .chain(s.chars().map(|c| (c, 1)))
            .collect();
        self.transform_range(b..self.normalized.len(), dest, 0);
        self
    }

    /// Replaces every occurrence of `pattern` (a literal) by `content`.
    pub fn replace_literal(&mut self, pattern: &str, content: &str) -> &mut Self {
        if pattern.is_empty() {
            return self;
        }
        let matches: Vec<usize> = self
            .normalized
            .match_indices(pattern)
            .map(|(i, _)| i)
            .collect();
        self.replace_ranges(matches.into_iter().map(|i| i..i + pattern.len()), content)
    }

    /// Replaces every byte range of `ranges` (sorted, non-overlapping) by `content`.
    pub fn replace_ranges(
        &mut self,
        ranges: impl IntoIterator<Item = Range<usize>>,
        content: &str,
    ) -> &mut Self {
        let ranges: Vec<Range<usize>> = ranges.into_iter().collect();
        // Work from the end so earlier ranges stay valid. As in HuggingFace, the matched chars
        // are all removed and the new ones inserted, so they take the alignment of the last
        // removed char.
        for range in ranges.into_iter().rev() {
            let removed = self.normalized[range.clone()].chars().count();
            self.transform_range(range, content.chars().map(|c| (c, 1)), removed);
        }
        self
    }

    /// Splits into pieces around the matches of `matches` (the output of a pattern: every byte of
    /// the string covered once, in order, with a flag telling whether it is a match).
    pub fn split_by_matches(
        &self,
        matches: Vec<((usize, usize), bool)>,
        behavior: SplitDelimiterBehavior,
    ) -> Vec<NormalizedString> {
        use SplitDelimiterBehavior::*;
        let pieces: Vec<((usize, usize), bool)> = match behavior {
            Isolated => matches.into_iter().map(|(o, _)| (o, false)).collect(),
            Removed => matches,
            Contiguous => {
                let mut prev = false;
                let mut acc: Vec<((usize, usize), bool)> = Vec::new();
                for (o, is_match) in matches {
                    match acc.last_mut() {
                        Some(((_, end), _)) if is_match == prev => *end = o.1,
                        _ => acc.push((o, false)),
                    }
                    prev = is_match;
                }
                acc
            }
            MergedWithPrevious => {
                let mut prev = false;
                let mut acc: Vec<((usize, usize), bool)> = Vec::new();
                for (o, is_match) in matches {
                    match acc.last_mut() {
                        Some(((_, end), _)) if is_match && !prev => *end = o.1,
                        _ => acc.push((o, false)),
                    }
                    prev = is_match;
                }
                acc
            }
            MergedWithNext => {
                let mut prev = false;
                let mut acc: Vec<((usize, usize), bool)> = Vec::new();
                for (o, is_match) in matches.into_iter().rev() {
                    match acc.last_mut() {
                        Some(((start, _), _)) if is_match && !prev => *start = o.0,
                        _ => acc.push((o, false)),
                    }
                    prev = is_match;
                }
                acc.reverse();
                acc
            }
        };
        pieces
            .into_iter()
            .filter(|(_, remove)| !remove)
            .filter_map(|((s, e), _)| self.slice(s..e))
            .collect()
    }

    /// Matches of a char predicate, in the format [`Self::split_by_matches`] takes: each matching
    /// char is a match of its own.
    pub fn char_matches(&self, is_match: impl Fn(char) -> bool) -> Vec<((usize, usize), bool)> {
        let s = &self.normalized;
        if s.is_empty() {
            return vec![((0, 0), false)];
        }
        let mut out = Vec::new();
        let mut last = 0;
        for (b, c) in s.char_indices() {
            if is_match(c) {
                if last < b {
                    out.push(((last, b), false));
                }
                let e = b + c.len_utf8();
                out.push(((b, e), true));
                last = e;
            }
        }
        if last < s.len() {
            out.push(((last, s.len()), false));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_keeps_alignment_of_kept_chars() {
        let mut n = NormalizedString::from("a\u{0}b");
        n.filter(|c| c != '\u{0}');
        assert_eq!(n.get(), "ab");
        assert_eq!(n.normalized_to_original(1..2), Some(2..3));
    }

    #[test]
    fn strip_and_slice() {
        let mut n = NormalizedString::from("  hé  ");
        n.strip();
        assert_eq!(n.get(), "hé");
        assert_eq!(n.normalized_to_original(0..3), Some(2..5));
        let s = n.slice(1..3).unwrap();
        assert_eq!(s.get_original(), "é");
        assert_eq!(s.offsets_original(), (3, 5));
    }

    #[test]
    fn inserted_chars_share_previous_alignment() {
        let mut n = NormalizedString::from("a中");
        n.flat_map(|c| {
            if c == '中' {
                vec![' ', c, ' ']
            } else {
                vec![c]
            }
        });
        assert_eq!(n.get(), "a 中 ");
        assert_eq!(n.normalized_to_original(1..2), Some(1..4));
        assert_eq!(n.normalized_to_original(5..6), Some(1..4));
    }

    #[test]
    fn replace_literal_shrinks_and_grows() {
        let mut n = NormalizedString::from("a--b");
        n.replace_literal("--", "-");
        assert_eq!(n.get(), "a-b");
        let mut n = NormalizedString::from("a-b");
        n.replace_literal("-", "==");
        assert_eq!(n.get(), "a==b");
        assert_eq!(n.normalized_to_original(1..3), Some(1..2));
        let mut n = NormalizedString::from("a--b");
        n.replace_literal("--", "-");
        assert_eq!(n.normalized_to_original(1..2), Some(2..3));
    }
}
