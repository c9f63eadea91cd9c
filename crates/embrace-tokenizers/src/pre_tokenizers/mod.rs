//! Pre-tokenizers: split the normalized text into words before the model sees it.

use crate::models::Token;
use crate::normalized::{NormalizedString, SplitDelimiterBehavior};
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
    /// Apply pre-tokenizers in order.
    Sequence {
        /// The pre-tokenizers.
        pretokenizers: Vec<PreTokenizer>,
    },
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
    regex::Regex::new(r"\w+|[^\w\s]+").unwrap()
});

/// Matches of a regex in the format [`NormalizedString::split_by_matches`] takes.
pub(crate) fn regex_matches(re: &regex::Regex, s: &str) -> Vec<((usize, usize), bool)> {
    if s.is_empty() {
        return vec![((0, 0), false)];
    }
    let mut out = Vec::new();
    let mut last = 0;
    for m in re.find_iter(s) {
        if m.start() == m.end() {
            continue;
        }
        if last < m.start() {
            out.push(((last, m.start()), false));
        }
        out.push(((m.start(), m.end()), true));
        last = m.end();
    }
    if last < s.len() {
        out.push(((last, s.len()), false));
    }
    out
}

impl PreTokenizer {
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
            PreTokenizer::Sequence { pretokenizers } => {
                for p in pretokenizers {
                    p.pre_tokenize(pre);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
