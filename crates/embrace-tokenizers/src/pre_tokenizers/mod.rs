//! Pre-tokenizers: split the normalized text into words before the model sees it.

pub mod byte_level;
mod onig;
mod scripts_table;

use crate::models::Token;
use crate::normalized::{NormalizedString, SplitDelimiterBehavior};
use byte_level::{BYTES_CHAR, ByteLevelOptions, GPT2_PATTERN};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;
use unicode_categories::UnicodeCategories;

/// One piece of a [`PreTokenizedString`]: a slice of the text and, once the model ran (or for an
/// added token), its tokens (offsets relative to the piece's normalized text).
#[derive(Debug, Clone)]
pub struct Split {
    /// The text of the piece.
    pub normalized: NormalizedString,
    /// Its tokens, once known.
    pub tokens: Option<Vec<Token>>,
}

/// A text split into pieces that are tokenized independently.
#[derive(Debug, Clone)]
pub struct PreTokenizedString {
    /// The whole original input.
    pub original: String,
    /// The pieces, in order.
    pub splits: Vec<Split>,
}

impl From<&str> for PreTokenizedString {
    fn from(s: &str) -> Self {
        Self {
            original: s.to_owned(),
            splits: vec![Split {
                normalized: NormalizedString::from(s),
                tokens: None,
            }],
        }
    }
}

impl PreTokenizedString {
    /// Replaces every piece that has no tokens yet by the pieces `f` makes of it. Empty pieces
    /// are dropped.
    pub fn split<F>(&mut self, mut f: F)
    where
        F: FnMut(NormalizedString) -> Vec<Split>,
    {
        let mut out = Vec::with_capacity(self.splits.len());
        for split in self.splits.drain(..) {
            if split.tokens.is_some() {
                out.push(split);
                continue;
            }
            out.extend(
                f(split.normalized)
                    .into_iter()
                    .filter(|s| !s.normalized.is_empty()),
            );
        }
        self.splits = out;
    }

    /// Splits every untokenized piece with `pieces`.
    pub fn split_pieces<F>(&mut self, mut pieces: F)
    where
        F: FnMut(&NormalizedString) -> Vec<NormalizedString>,
    {
        self.split(|n| {
            pieces(&n)
                .into_iter()
                .map(|normalized| Split {
                    normalized,
                    tokens: None,
                })
                .collect()
        });
    }
}

/// A pre-tokenizer as `tokenizer.json` names it in its `pre_tokenizer` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum PreTokenizer {
    /// Split on whitespace (removed) and punctuation (isolated), as BERT does.
    BertPreTokenizer,
    /// Split into runs of word characters and runs of other non-space characters (`\w+|[^\w\s]+`).
    Whitespace,
    /// Split on whitespace, removing it.
    WhitespaceSplit,
    /// Split on punctuation.
    Punctuation {
        /// How punctuation is kept.
        #[serde(default = "isolated")]
        behavior: SplitDelimiterBehavior,
    },
    /// Split on digits.
    Digits {
        /// Each digit on its own (else runs of digits).
        #[serde(default)]
        individual_digits: bool,
    },
    /// GPT-2's byte-level pre-tokenizer: optional prefix space, the GPT-2 split pattern, then
    /// every byte mapped to a printable char.
    ByteLevel(ByteLevelOptions),
    /// Split on a string or a regular expression.
    Split {
        /// What to split on.
        pattern: SplitPattern,
        /// What happens to the matches.
        behavior: SplitDelimiterBehavior,
        /// Split on what does not match instead.
        #[serde(default)]
        invert: bool,
    },
    /// SentencePiece-style: spaces become `▁` and words start at each `▁`.
    Metaspace(Metaspace),
    /// Split on one char, removing it.
    CharDelimiterSplit {
        /// The delimiter.
        delimiter: char,
    },
    /// Split where the Unicode script changes (Hiragana and Katakana count as Han; spaces join
    /// either side).
    UnicodeScripts,
    /// Split into pieces of `length` chars.
    FixedLength {
        /// Chars per piece.
        #[serde(default = "five")]
        length: usize,
    },
    /// Apply pre-tokenizers in order.
    Sequence {
        /// The pre-tokenizers.
        pretokenizers: Vec<PreTokenizer>,
    },
}

/// The pattern of a `Split` pre-tokenizer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "SplitPatternJson", into = "SplitPatternJson")]
pub struct SplitPattern {
    source: SplitPatternJson,
    regex: CompiledPattern,
}

impl PartialEq for SplitPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// `{"String": ...}` or `{"Regex": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum SplitPatternJson {
    String(String),
    Regex(String),
}

#[derive(Debug, Clone)]
enum CompiledPattern {
    Fancy(Box<fancy_regex::Regex>),
    Invalid(String),
}

impl From<SplitPatternJson> for SplitPattern {
    fn from(source: SplitPatternJson) -> Self {
        let pattern = match &source {
            SplitPatternJson::String(s) => fancy_regex::escape(s).into_owned(),
            SplitPatternJson::Regex(r) => onig::compat(r),
        };
        let regex = match fancy_regex::Regex::new(&pattern) {
            Ok(r) => CompiledPattern::Fancy(Box::new(r)),
            Err(e) => CompiledPattern::Invalid(format!("invalid split pattern {pattern:?}: {e}")),
        };
        SplitPattern { source, regex }
    }
}

impl From<SplitPattern> for SplitPatternJson {
    fn from(p: SplitPattern) -> Self {
        p.source
    }
}

impl SplitPattern {
    /// A regular-expression pattern.
    pub fn regex(pattern: &str) -> Self {
        SplitPatternJson::Regex(pattern.to_owned()).into()
    }

    /// The source of a regex pattern (`None` for a string pattern).
    pub(crate) fn source_regex(&self) -> Option<&str> {
        match &self.source {
            SplitPatternJson::Regex(r) => Some(r),
            SplitPatternJson::String(_) => None,
        }
    }

    /// Why the pattern cannot be used, if it cannot.
    pub fn error(&self) -> Option<&str> {
        match &self.regex {
            CompiledPattern::Invalid(e) => Some(e),
            CompiledPattern::Fancy(_) => None,
        }
    }

    /// Matches in the format [`NormalizedString::split_by_matches`] takes.
    fn matches(&self, s: &str) -> Vec<((usize, usize), bool)> {
        match &self.regex {
            CompiledPattern::Fancy(re) => fancy_matches(re, s),
            CompiledPattern::Invalid(_) => vec![((0, s.len()), false)],
        }
    }
}

/// Matches of a fancy regex (with look-around) in split format.
pub(crate) fn fancy_matches(re: &fancy_regex::Regex, s: &str) -> Vec<((usize, usize), bool)> {
    split_format(
        s.len(),
        re.find_iter(s).flatten().map(|m| (m.start(), m.end())),
    )
}

/// The pieces of a string of `len` bytes around the (start, end) of each match, in the format
/// [`NormalizedString::split_by_matches`] takes: every byte covered once, matches flagged.
/// Empty matches are ignored.
fn split_format(
    len: usize,
    ranges: impl Iterator<Item = (usize, usize)>,
) -> Vec<((usize, usize), bool)> {
    if len == 0 {
        return vec![((0, 0), false)];
    }
    let mut out = Vec::new();
    let mut last = 0;
    for (start, end) in ranges.filter(|(s, e)| s < e) {
        if last < start {
            out.push(((last, start), false));
        }
        out.push(((start, end), true));
        last = end;
    }
    if last < len {
        out.push(((last, len), false));
    }
    out
}

/// When the Metaspace pre-tokenizer adds a `▁` in front of a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrependScheme {
    /// Always.
    Always,
    /// Only for the first piece of the input.
    First,
    /// Never.
    Never,
}

/// The Metaspace pre-tokenizer (also the decoder of the same name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "MetaspaceJson", into = "MetaspaceJson")]
pub struct Metaspace {
    /// The char that stands for a space (`▁`).
    pub replacement: char,
    /// When to prepend it.
    pub prepend_scheme: PrependScheme,
    /// Split into words at each replacement char.
    pub split: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MetaspaceJson {
    replacement: char,
    #[serde(default, skip_serializing)]
    add_prefix_space: Option<bool>,
    #[serde(default)]
    prepend_scheme: Option<PrependScheme>,
    #[serde(default = "yes")]
    split: bool,
}

impl From<MetaspaceJson> for Metaspace {
    fn from(j: MetaspaceJson) -> Self {
        let prepend_scheme = j.prepend_scheme.unwrap_or(match j.add_prefix_space {
            Some(false) => PrependScheme::Never,
            _ => PrependScheme::Always,
        });
        Metaspace {
            replacement: j.replacement,
            prepend_scheme,
            split: j.split,
        }
    }
}

impl From<Metaspace> for MetaspaceJson {
    fn from(m: Metaspace) -> Self {
        MetaspaceJson {
            replacement: m.replacement,
            add_prefix_space: None,
            prepend_scheme: Some(m.prepend_scheme),
            split: m.split,
        }
    }
}

fn yes() -> bool {
    true
}

fn five() -> usize {
    5
}

/// The script of `c` as the UnicodeScripts pre-tokenizer sees it, from the same data as
/// HuggingFace (SentencePiece's table, see `scripts_table`): Hiragana, Katakana and U+30FC
/// count as Han; a space, and a code point the table does not list, have no script (they never
/// start a piece).
fn script_of(c: char) -> Option<u8> {
    use scripts_table::{HAN, HIRAGANA, KATAKANA, SCRIPT_RANGES};
    let cp = c as u32;
    if c == ' ' {
        return None;
    }
    if cp == 0x30FC {
        return Some(HAN);
    }
    let &(first, _, script) = SCRIPT_RANGES.get(SCRIPT_RANGES.partition_point(|r| r.1 < cp))?;
    if first > cp {
        return None;
    }
    Some(if script == HIRAGANA || script == KATAKANA {
        HAN
    } else {
        script
    })
}

fn isolated() -> SplitDelimiterBehavior {
    SplitDelimiterBehavior::Isolated
}

/// BERT's punctuation: ASCII punctuation plus Unicode categories P* (Unicode 9.0, as HuggingFace).
pub(crate) fn is_bert_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

static WHITESPACE_RE: LazyLock<regex::Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern, checked by the tests
    // HuggingFace runs this one with the Rust regex crate, so it keeps the regex `\w`.
    regex::Regex::new(r"\w+|[^\w\s]+").unwrap()
});

/// Matches of a regex in the format [`NormalizedString::split_by_matches`] takes.
pub(crate) fn regex_matches(re: &regex::Regex, s: &str) -> Vec<((usize, usize), bool)> {
    split_format(s.len(), re.find_iter(s).map(|m| (m.start(), m.end())))
}

impl PreTokenizer {
    /// The first problem that makes this pre-tokenizer unusable (an invalid regex), if any.
    pub fn error(&self) -> Option<&str> {
        match self {
            PreTokenizer::Split { pattern, .. } => pattern.error(),
            PreTokenizer::Sequence { pretokenizers } => {
                pretokenizers.iter().find_map(PreTokenizer::error)
            }
            _ => None,
        }
    }

    /// Splits the untokenized pieces of `pre`.
    pub fn pre_tokenize(&self, pre: &mut PreTokenizedString) {
        use SplitDelimiterBehavior::*;
        match self {
            PreTokenizer::BertPreTokenizer => {
                pre.split_pieces(|n| {
                    n.split_by_matches(n.char_matches(char::is_whitespace), Removed)
                });
                pre.split_pieces(|n| {
                    n.split_by_matches(n.char_matches(is_bert_punctuation), Isolated)
                });
            }
            PreTokenizer::Whitespace => {
                pre.split_pieces(|n| {
                    let m = regex_matches(&WHITESPACE_RE, n.get())
                        .into_iter()
                        .map(|(o, is_match)| (o, !is_match))
                        .collect();
                    n.split_by_matches(m, Removed)
                });
            }
            PreTokenizer::WhitespaceSplit => {
                pre.split_pieces(|n| {
                    n.split_by_matches(n.char_matches(char::is_whitespace), Removed)
                });
            }
            PreTokenizer::Punctuation { behavior } => {
                pre.split_pieces(|n| {
                    n.split_by_matches(n.char_matches(is_bert_punctuation), *behavior)
                });
            }
            PreTokenizer::Digits { individual_digits } => {
                let behavior = if *individual_digits {
                    Isolated
                } else {
                    Contiguous
                };
                pre.split_pieces(|n| {
                    n.split_by_matches(n.char_matches(|c| c.is_numeric()), behavior)
                });
            }
            PreTokenizer::ByteLevel(ByteLevelOptions {
                add_prefix_space,
                use_regex,
                ..
            }) => {
                static GPT2: LazyLock<SplitPattern> =
                    LazyLock::new(|| SplitPattern::regex(GPT2_PATTERN));
                pre.split_pieces(|n| {
                    let mut n = n.clone();
                    if *add_prefix_space && !n.get().starts_with(' ') {
                        n.prepend(" ");
                    }
                    if *use_regex {
                        n.split_by_matches(GPT2.matches(n.get()), Isolated)
                    } else {
                        vec![n]
                    }
                });
                for split in pre.splits.iter_mut().filter(|s| s.tokens.is_none()) {
                    to_byte_level(&mut split.normalized);
                }
            }
            PreTokenizer::Split {
                pattern,
                behavior,
                invert,
            } => {
                pre.split_pieces(|n| {
                    let mut m = pattern.matches(n.get());
                    if *invert {
                        for (_, is_match) in &mut m {
                            *is_match = !*is_match;
                        }
                    }
                    n.split_by_matches(m, *behavior)
                });
            }
            PreTokenizer::Metaspace(m) => {
                let rep = m.replacement.to_string();
                pre.split_pieces(|n| {
                    let mut n = n.clone();
                    n.replace_literal(" ", &rep);
                    let prepend = match m.prepend_scheme {
                        PrependScheme::Always => true,
                        PrependScheme::First => n.offsets_original().0 == 0,
                        PrependScheme::Never => false,
                    };
                    if prepend && !n.get().starts_with(m.replacement) {
                        n.prepend(&rep);
                    }
                    if m.split {
                        let matches = n.char_matches(|c| c == m.replacement);
                        n.split_by_matches(matches, MergedWithNext)
                    } else {
                        vec![n]
                    }
                });
            }
            PreTokenizer::CharDelimiterSplit { delimiter } => {
                pre.split_pieces(|n| {
                    n.split_by_matches(n.char_matches(|c| c == *delimiter), Removed)
                });
            }
            PreTokenizer::UnicodeScripts => {
                pre.split_pieces(|n| {
                    // As in HuggingFace, pieces start at each script change, the first one
                    // included, so spaces before the first scripted char are dropped.
                    let text = n.get();
                    let mut bounds = Vec::new();
                    let mut last = None;
                    for (i, c) in text.char_indices() {
                        let script = script_of(c);
                        if script.is_some() && last != script {
                            bounds.push(i);
                        }
                        if script.is_some() {
                            last = script;
                        }
                    }
                    bounds.push(text.len());
                    bounds
                        .windows(2)
                        .filter_map(|w| n.slice(w[0]..w[1]))
                        .collect()
                });
            }
            PreTokenizer::FixedLength { length } => {
                let length = (*length).max(1);
                pre.split_pieces(|n| {
                    let text = n.get();
                    let starts: Vec<usize> = text
                        .char_indices()
                        .map(|(i, _)| i)
                        .step_by(length)
                        .collect();
                    starts
                        .iter()
                        .enumerate()
                        .filter_map(|(k, &s)| {
                            n.slice(s..starts.get(k + 1).copied().unwrap_or(text.len()))
                        })
                        .collect()
                });
            }
            PreTokenizer::Sequence { pretokenizers } => {
                for p in pretokenizers {
                    p.pre_tokenize(pre);
                }
            }
        }
    }
}

pub(crate) use onig::compat as onig_compat;

/// Maps every byte of the normalized text to its byte-level char.
pub(crate) fn to_byte_level(n: &mut NormalizedString) {
    let s = n.get();
    let mut dest = Vec::with_capacity(s.len());
    for c in s.chars() {
        let mut buf = [0u8; 4];
        for (i, b) in c.encode_utf8(&mut buf).bytes().enumerate() {
            dest.push((BYTES_CHAR[b as usize], isize::from(i > 0)));
        }
    }
    n.transform(dest, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_come_from_huggingfaces_table() {
        let name = |c: char| script_of(c).map(|id| scripts_table::SCRIPT_NAMES[id as usize]);
        assert_eq!(name('a'), Some("Latin"));
        assert_eq!(name('\u{0954}'), Some("Devanagari")); // Inherited in current Unicode
        assert_eq!(name('\u{0951}'), Some("Inherited"));
        assert_eq!(name('ア'), Some("Han")); // Katakana counts as Han
        assert_eq!(name('\u{30FC}'), Some("Han"));
        assert_eq!(name(' '), None);
        assert_eq!(name('\u{0378}'), None); // unassigned: no script
        let ranges = &scripts_table::SCRIPT_RANGES;
        assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0));
    }

    fn words(p: &PreTokenizer, text: &str) -> Vec<(String, (usize, usize))> {
        let mut pre = PreTokenizedString::from(text);
        p.pre_tokenize(&mut pre);
        pre.splits
            .iter()
            .map(|s| {
                (
                    s.normalized.get().to_owned(),
                    s.normalized.offsets_original(),
                )
            })
            .collect()
    }

    #[test]
    fn bert_splits_whitespace_and_punctuation() {
        let w = words(&PreTokenizer::BertPreTokenizer, "Hey  friend!  How's it?");
        let names: Vec<&str> = w.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["Hey", "friend", "!", "How", "'", "s", "it", "?"]);
        assert_eq!(w[2].1, (11, 12));
    }

    #[test]
    fn whitespace_regex_splits_words_and_symbols() {
        let w = words(&PreTokenizer::Whitespace, "Hey friend!!  ok");
        let names: Vec<&str> = w.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["Hey", "friend", "!!", "ok"]);
    }
}
