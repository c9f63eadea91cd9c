//! Hand-written scanners for the common pre-tokenization regexes (GPT-2, Llama-3, Qwen2/3).
//!
//! Each scanner returns exactly the matches the regex would (leftmost-first alternation,
//! look-ahead `\s+(?!\S)` emulated by giving back one char), much faster than a backtracking
//! engine. The character classes `\p{L}`, `\p{N}` and `\s` are taken from `regex-syntax`, the
//! tables the regex engines use, so both paths agree on every char.

use regex_syntax::hir::{Class, HirKind};
use std::sync::LazyLock;

/// The pre-tokenization patterns with a hand-written scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    Gpt2,
    /// Llama-3 / cl100k style, numbers in groups of at most `max_digits`.
    Llama3 {
        /// 3 for Llama-3, 1 for Qwen.
        max_digits: usize,
    },
}

const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

impl Pattern {
    /// The scanner for `regex`, if it is one of the known patterns.
    pub(crate) fn recognize(regex: &str) -> Option<Pattern> {
        match regex {
            super::super::pre_tokenizers::byte_level::GPT2_PATTERN => Some(Pattern::Gpt2),
            LLAMA3 => Some(Pattern::Llama3 { max_digits: 3 }),
            QWEN => Some(Pattern::Llama3 { max_digits: 1 }),
            _ => None,
        }
    }
}

/// Sorted inclusive ranges of a Unicode class, as the regex engine sees it.
struct Ranges(Vec<(u32, u32)>);

impl Ranges {
    fn of(class: &str) -> Ranges {
        let hir = regex_syntax::Parser::new().parse(class);
        let mut out = Vec::new();
        if let Ok(hir) = hir
            && let HirKind::Class(Class::Unicode(c)) = hir.kind()
        {
            out = c
                .ranges()
                .iter()
                .map(|r| (r.start() as u32, r.end() as u32))
                .collect();
        }
        Ranges(out)
    }

    fn contains(&self, c: char) -> bool {
        let c = c as u32;
        self.0
            .binary_search_by(|&(lo, hi)| {
                if hi < c {
                    std::cmp::Ordering::Less
                } else if lo > c {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    }
}

/// Char class of the patterns: letter, number, whitespace or other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Letter,
    Number,
    Space,
    Other,
}

struct Classes {
    letter: Ranges,
    number: Ranges,
    space: Ranges,
    ascii: [Kind; 128],
}

static CLASSES: LazyLock<Classes> = LazyLock::new(|| {
    let letter = Ranges::of(r"\p{L}");
    let number = Ranges::of(r"\p{N}");
    let space = Ranges::of(r"\s");
    let mut ascii = [Kind::Other; 128];
    for (b, slot) in ascii.iter_mut().enumerate() {
        let c = char::from(b as u8);
        *slot = if letter.contains(c) {
            Kind::Letter
        } else if number.contains(c) {
            Kind::Number
        } else if space.contains(c) {
            Kind::Space
        } else {
            Kind::Other
        };
    }
    Classes {
        letter,
        number,
        space,
        ascii,
    }
});

/// The class of every char of the Basic Multilingual Plane, computed once (64 KiB), so that
/// non-ASCII text costs a table load per char instead of three binary searches.
static BMP: LazyLock<Box<[Kind]>> = LazyLock::new(|| {
    (0..=0xFFFFu32)
        .map(|u| char::from_u32(u).map_or(Kind::Other, classify))
        .collect()
});

#[inline]
fn kind(c: char) -> Kind {
    if c.is_ascii() {
        return CLASSES.ascii[c as usize];
    }
    match BMP.get(c as usize) {
        Some(&k) => k,
        None => classify(c),
    }
}

/// The class of `c` from the Unicode tables.
fn classify(c: char) -> Kind {
    let classes = &*CLASSES;
    if classes.letter.contains(c) {
        Kind::Letter
    } else if classes.number.contains(c) {
        Kind::Number
    } else if classes.space.contains(c) {
        Kind::Space
    } else {
        Kind::Other
    }
}

/// End of the run of ASCII letters starting at `i`, eight bytes at a time (SWAR): words end at
/// data-dependent places, and finding the end without a branch per byte avoids most of the
/// mispredicted branches of a byte loop.
#[inline]
fn ascii_letters_end(bytes: &[u8], mut i: usize) -> usize {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const CASE: u64 = 0x2020_2020_2020_2020;
    while i < bytes.len() {
        let mut a = [0u8; 8];
        match bytes.get(i..i + 8) {
            Some(chunk) => a.copy_from_slice(chunk),
            // The tail, padded with zeros (not letters).
            None => a[..bytes.len() - i].copy_from_slice(&bytes[i..]),
        }
        let word = u64::from_le_bytes(a);
        // Lowercase, and high bits cleared so that the additions stay inside each byte.
        let lower = (word | CASE) & LOW7;
        // High bit of each byte: at least 'a' (0x61), at least '{' (0x7B); ASCII letters fold to
        // 'a'..='z' and nothing else in ASCII does.
        let at_least_a = lower.wrapping_add(0x1F1F_1F1F_1F1F_1F1F) & HIGH;
        let past_z = lower.wrapping_add(0x0505_0505_0505_0505) & HIGH;
        let letters = at_least_a & !past_z & !(word & HIGH);
        let run = (!letters & HIGH).trailing_zeros() / 8;
        i += run as usize;
        if run < 8 {
            return i;
        }
    }
    i
}

/// The non-ASCII char whose first byte `first` is at `i` of valid UTF-8, decoded straight from
/// the bytes (`None` for a continuation byte, which starts no char).
#[inline]
fn decode_at(bytes: &[u8], i: usize, first: u8) -> Option<char> {
    let cont = |k: usize| bytes.get(i + k).map_or(0, |&b| u32::from(b & 0x3F));
    let b = u32::from(first);
    let code = match first {
        0xC0..=0xDF => ((b & 0x1F) << 6) | cont(1),
        0xE0..=0xEF => ((b & 0x0F) << 12) | (cont(1) << 6) | cont(2),
        0xF0..=0xF7 => ((b & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3),
        _ => return None,
    };
    char::from_u32(code)
}

/// A cursor over the chars of a string.
struct Cursor<'a> {
    s: &'a str,
}

impl Cursor<'_> {
    /// The char starting at byte `i` (`None` at the end or inside a char).
    #[inline]
    fn at(&self, i: usize) -> Option<char> {
        let bytes = self.s.as_bytes();
        match *bytes.get(i)? {
            b if b < 0x80 => Some(char::from(b)),
            b => decode_at(bytes, i, b),
        }
    }
    /// End of the run of chars of `k` starting at `i`.
    #[inline]
    fn run(&self, mut i: usize, k: Kind) -> usize {
        let bytes = self.s.as_bytes();
        let ascii = &CLASSES.ascii;
        loop {
            // ASCII bytes in bulk (letters) or straight from the table.
            if k == Kind::Letter {
                i = ascii_letters_end(bytes, i);
            } else {
                while let Some(&b) = bytes.get(i) {
                    if b >= 0x80 || ascii[b as usize] != k {
                        break;
                    }
                    i += 1;
                }
            }
            // Then non-ASCII chars, decoded in place, for as long as they last.
            while let Some(&b) = bytes.get(i)
                && b >= 0x80
            {
                match decode_at(bytes, i, b) {
                    Some(c) if kind(c) == k => i += c.len_utf8(),
                    _ => return i,
                }
            }
            match bytes.get(i) {
                Some(&b) if ascii[b as usize] == k => {}
                _ => return i,
            }
        }
    }
    /// End of a run of at most `max` numbers.
    fn numbers(&self, mut i: usize, max: usize) -> usize {
        for _ in 0..max {
            match self.at(i) {
                Some(c) if kind(c) == Kind::Number => i += c.len_utf8(),
                _ => break,
            }
        }
        i
    }
    /// End of `'s|'t|'re|'ve|'m|'ll|'d` at `i` (case-insensitive if asked).
    fn contraction(&self, i: usize, insensitive: bool) -> Option<usize> {
        let rest = self.s.get(i + 1..)?;
        let mut chars = rest.chars();
        let c1 = chars.next()?;
        let c2 = chars.next();
        let eq = |c: char, lower: char| {
            if insensitive {
                c.to_lowercase().eq(std::iter::once(lower))
                    || (lower == 's' && c == '\u{17F}')
                    || (lower == 'k' && c == '\u{212A}')
            } else {
                c == lower
            }
        };
        let one = |l: char| eq(c1, l);
        let two = |l1: char, l2: char| eq(c1, l1) && c2.is_some_and(|c| eq(c, l2));
        let len = |n: usize| {
            let mut end = i + 1;
            for c in rest.chars().take(n) {
                end += c.len_utf8();
            }
            Some(end)
        };
        if one('s') || one('t') {
            return len(1);
        }
        if two('r', 'e') || two('v', 'e') {
            return len(2);
        }
        if one('m') {
            return len(1);
        }
        if two('l', 'l') {
            return len(2);
        }
        if one('d') {
            return len(1);
        }
        None
    }
    /// `\s*[\r\n]+` / `\s+(?!\S)` / `\s+` at a whitespace char `i`.
    fn whitespace(&self, i: usize, newline_rule: bool) -> usize {
        let end = self.run(i, Kind::Space);
        if newline_rule {
            // \s*[\r\n]+ : up to and including the last \r or \n of the run.
            if let Some(last) = self.s[i..end].rfind(['\r', '\n']) {
                return i + last + 1;
            }
        }
        if end == self.s.len() {
            return end;
        }
        // \s+(?!\S): give back the last whitespace char if that leaves at least one.
        let last_len = self.s[i..end].chars().next_back().map_or(0, char::len_utf8);
        if end - i > last_len {
            end - last_len
        } else {
            end
        }
    }
}

/// Calls `f(start, end)` for each match of `pattern` in `s`, in order.
pub(crate) fn scan(pattern: Pattern, s: &str, mut f: impl FnMut(usize, usize)) {
    let cur = Cursor { s };
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        // The most common piece, matched the same way by every pattern here: an optional
        // space, then letters (` ?\p{L}+`, `[^\r\n\p{L}\p{N}]?\p{L}+`), starting with an
        // ASCII one. It is found without decoding chars or trying the other alternatives.
        let letters = if b == b' ' { i + 1 } else { i };
        if bytes.get(letters).is_some_and(u8::is_ascii_alphabetic) {
            let mut end = ascii_letters_end(bytes, letters);
            if bytes.get(end).is_some_and(|&n| n >= 0x80) {
                end = cur.run(end, Kind::Letter);
            }
            f(i, end);
            i = end;
            continue;
        }
        let Some(c) = cur.at(i) else {
            break;
        };
        let end = match pattern {
            Pattern::Gpt2 => gpt2_at(&cur, i, c),
            Pattern::Llama3 { max_digits } => llama3_at(&cur, i, c, max_digits),
        };
        // Every position starts a match: each alternative set covers all chars.
        let end = end.max(i + c.len_utf8());
        f(i, end);
        i = end;
    }
}

fn gpt2_at(cur: &Cursor<'_>, i: usize, c: char) -> usize {
    if c == '\''
        && let Some(end) = cur.contraction(i, false)
    {
        return end;
    }
    let (start, k) = if c == ' ' {
        match cur.at(i + 1) {
            Some(n) if kind(n) != Kind::Space => (i + 1, kind(n)),
            _ => (i, Kind::Space),
        }
    } else {
        (i, kind(c))
    };
    match k {
        Kind::Letter | Kind::Number | Kind::Other => cur.run(start, k),
        Kind::Space => cur.whitespace(i, false),
    }
}

fn llama3_at(cur: &Cursor<'_>, i: usize, c: char, max_digits: usize) -> usize {
    if c == '\''
        && let Some(end) = cur.contraction(i, true)
    {
        return end;
    }
    let k = kind(c);
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if k == Kind::Letter {
        return cur.run(i, Kind::Letter);
    }
    if k != Kind::Number && c != '\r' && c != '\n' {
        let next = i + c.len_utf8();
        if cur.at(next).is_some_and(|n| kind(n) == Kind::Letter) {
            return cur.run(next, Kind::Letter);
        }
    }
    // \p{N}{1,max}
    if k == Kind::Number {
        return cur.numbers(i, max_digits);
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    let other_start = if c == ' ' && cur.at(i + 1).is_some_and(|n| kind(n) == Kind::Other) {
        Some(i + 1)
    } else if k == Kind::Other {
        Some(i)
    } else {
        None
    };
    if let Some(start) = other_start {
        let mut end = cur.run(start, Kind::Other);
        while let Some(n @ ('\r' | '\n')) = cur.at(end) {
            end += n.len_utf8();
        }
        return end;
    }
    cur.whitespace(i, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: Pattern, regex: &str, inputs: &[&str]) {
        let re = fancy_regex::Regex::new(regex).unwrap();
        for s in inputs {
            let expected: Vec<(usize, usize)> = re
                .find_iter(s)
                .map(|m| m.unwrap())
                .map(|m| (m.start(), m.end()))
                .collect();
            let mut got = Vec::new();
            scan(pattern, s, |a, b| got.push((a, b)));
            assert_eq!(got, expected, "{s:?}");
        }
    }

    const INPUTS: &[&str] = &[
        "Hello world! It's a test: don't I'LL we've 12345 numbers\n\n  spaces   end  ",
        "  \t\n\r\n x\u{a0}y\u{3000}z  \u{2003}",
        "(hello) [x]... 'quote' 'S 'Ll O'NEIL 'x",
        "日本語のテキスト、中文。한국어 Ελληνικά русский 123٤٥٦",
        "emoji 🤗🤗 mixed👍🏽text \u{301}combining é e\u{301}",
        "a\r\nb\n\n\nc \n d",
        "tabs\t\tand\u{b}vertical\u{c}feeds\u{85}nel",
        "",
        " ",
        "x",
        "1,234.56 $100 +-*/ ### !!!",
        "ſ 'ſ 'K",
    ];

    #[test]
    fn letter_runs_end_where_the_byte_loop_ends() {
        for b in 0..=255u8 {
            for pos in 0..12 {
                let mut text = vec![b'x'; 12];
                text[pos] = b;
                let expected = if b.is_ascii_alphabetic() { 12 } else { pos };
                assert_eq!(ascii_letters_end(&text, 0), expected, "{b:#x} at {pos}");
                assert_eq!(ascii_letters_end(&text[..pos], 0), pos);
            }
        }
    }

    #[test]
    fn gpt2_scanner_matches_the_regex() {
        check(
            Pattern::Gpt2,
            super::super::super::pre_tokenizers::byte_level::GPT2_PATTERN,
            INPUTS,
        );
    }

    #[test]
    fn llama3_scanner_matches_the_regex() {
        check(Pattern::Llama3 { max_digits: 3 }, LLAMA3, INPUTS);
    }

    #[test]
    fn qwen_scanner_matches_the_regex() {
        check(Pattern::Llama3 { max_digits: 1 }, QWEN, INPUTS);
    }
}
