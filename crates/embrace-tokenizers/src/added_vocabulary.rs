//! Added tokens: strings matched in the raw (or normalized) text before the model runs, such as
//! `[CLS]`, `<|endoftext|>` or user-added words.

use crate::models::{Model, Token};
use crate::normalized::NormalizedString;
use crate::normalizers::Normalizer;
use crate::pre_tokenizers::{PreTokenizedString, Split};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// A token added to the vocabulary, with its matching options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedToken {
    /// Its id.
    pub id: u32,
    /// The text to match.
    pub content: String,
    /// Only match when it is a whole word.
    #[serde(default)]
    pub single_word: bool,
    /// Also swallow the whitespace on its left.
    #[serde(default)]
    pub lstrip: bool,
    /// Also swallow the whitespace on its right.
    #[serde(default)]
    pub rstrip: bool,
    /// Match against the normalized text (else against the raw text).
    #[serde(default = "yes")]
    pub normalized: bool,
    /// A special token (skipped by `decode(skip_special_tokens)`).
    #[serde(default)]
    pub special: bool,
}

fn yes() -> bool {
    true
}

impl AddedToken {
    /// A special token matched on the raw text, as tokenizers add `[CLS]` or `<|endoftext|>`.
    pub fn special(content: impl Into<String>, id: u32) -> Self {
        AddedToken {
            id,
            content: content.into(),
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: false,
            special: true,
        }
    }
}

/// A matcher over one set of added tokens.
#[derive(Debug, Clone)]
struct Matcher {
    automaton: AhoCorasick,
    ids: Vec<u32>,
}

/// The added tokens of a tokenizer and the automata that find them.
#[derive(Debug, Clone, Default)]
pub struct AddedVocabulary {
    tokens: Vec<AddedToken>,
    by_content: FxHashMap<String, u32>,
    by_id: FxHashMap<u32, usize>,
    special: FxHashSet<String>,
    /// Normalized form of the `normalized` tokens whose normalization changes them; decoding
    /// uses it (as HuggingFace does) so that decoders can undo the normalization.
    decode_forms: FxHashMap<u32, String>,
    raw_matcher: Option<Matcher>,
    normalized_matcher: Option<Matcher>,
}

fn build_matcher(patterns: Vec<(String, u32)>) -> Result<Option<Matcher>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let (strings, ids): (Vec<String>, Vec<u32>) = patterns.into_iter().unzip();
    let automaton = AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&strings)
        .map_err(|e| format!("cannot build the added-token matcher: {e}"))?;
    Ok(Some(Matcher { automaton, ids }))
}

/// Whether `c` is a regex `\w` character (Unicode word character).
fn is_word_char(c: char) -> bool {
    static WORD: LazyLock<regex::Regex> = LazyLock::new(|| {
        #[allow(clippy::unwrap_used)] // a constant pattern
        regex::Regex::new(r"^\w$").unwrap()
    });
    let mut buf = [0u8; 4];
    WORD.is_match(c.encode_utf8(&mut buf))
}

impl AddedVocabulary {
    /// Builds the added vocabulary; `normalizer` normalizes the tokens marked `normalized`.
    pub fn new(tokens: Vec<AddedToken>, normalizer: Option<&Normalizer>) -> Result<Self, String> {
        let mut v = AddedVocabulary::default();
        for t in tokens {
            if t.content.is_empty() {
                continue;
            }
            if t.special {
                v.special.insert(t.content.clone());
            }
            v.by_content.insert(t.content.clone(), t.id);
            v.by_id.insert(t.id, v.tokens.len());
            v.tokens.push(t);
        }
        let mut raw = Vec::new();
        let mut normalized = Vec::new();
        let mut decode_forms = FxHashMap::default();
        for t in &v.tokens {
            if t.normalized {
                let pattern =
                    normalizer.map_or_else(|| t.content.clone(), |n| n.normalize_str(&t.content));
                if pattern != t.content {
                    decode_forms.insert(t.id, pattern.clone());
                }
                if !pattern.is_empty() {
                    normalized.push((pattern, t.id));
                }
            } else {
                raw.push((t.content.clone(), t.id));
            }
        }
        v.decode_forms = decode_forms;
        v.raw_matcher = build_matcher(raw)?;
        v.normalized_matcher = build_matcher(normalized)?;
        Ok(v)
    }

    /// The added tokens, in file order.
    pub fn tokens(&self) -> &[AddedToken] {
        &self.tokens
    }

    /// Id of an added token.
    pub fn token_to_id(&self, content: &str) -> Option<u32> {
        self.by_content.get(content).copied()
    }

    /// Added token of an id.
    pub fn id_to_token(&self, id: u32) -> Option<&AddedToken> {
        self.by_id.get(&id).and_then(|&i| self.tokens.get(i))
    }

    /// Whether some added token is matched on normalized text.
    pub(crate) fn has_normalized_tokens(&self) -> bool {
        self.normalized_matcher.is_some()
    }

    /// The raw (not normalized) added tokens found in `text`, as pieces covering all of it.
    pub(crate) fn raw_matches<E>(
        &self,
        text: &str,
        f: impl FnMut(Option<u32>, (usize, usize)) -> Result<(), E>,
    ) -> Result<(), E> {
        self.visit_matches(text, self.raw_matcher.as_ref(), f)
    }

    /// The normalized added tokens found in (already normalized) `text`, as covering pieces.
    pub(crate) fn normalized_matches<E>(
        &self,
        text: &str,
        f: impl FnMut(Option<u32>, (usize, usize)) -> Result<(), E>,
    ) -> Result<(), E> {
        self.visit_matches(text, self.normalized_matcher.as_ref(), f)
    }

    /// Splits an already normalized piece around the normalized added tokens.
    pub(crate) fn split_normalized(&self, n: NormalizedString) -> Vec<Split> {
        self.split_with(n, self.normalized_matcher.as_ref())
    }

    /// Whether `content` is a special token.
    pub fn is_special(&self, content: &str) -> bool {
        self.special.contains(content)
    }

    /// Finds the added tokens of `matcher` in `text`: a list of pieces covering all of it, each
    /// with the id of the token it is (or `None` for text between tokens).
    fn find_matches(
        &self,
        text: &str,
        matcher: Option<&Matcher>,
    ) -> Vec<(Option<u32>, (usize, usize))> {
        let mut out = Vec::new();
        let _ = self.visit_matches(text, matcher, |id, span| {
            out.push((id, span));
            Ok::<(), std::convert::Infallible>(())
        });
        out
    }

    /// [`Self::find_matches`] without a list: calls `f` for each piece in order, stopping at the
    /// first error.
    fn visit_matches<E>(
        &self,
        text: &str,
        matcher: Option<&Matcher>,
        mut f: impl FnMut(Option<u32>, (usize, usize)) -> Result<(), E>,
    ) -> Result<(), E> {
        if text.is_empty() {
            return f(None, (0, 0));
        }
        let Some(matcher) = matcher else {
            return f(None, (0, text.len()));
        };
        let mut done = 0;
        for m in matcher.automaton.find_iter(text) {
            let id = matcher.ids[m.pattern().as_usize()];
            let Some(token) = self.id_to_token(id) else {
                continue;
            };
            let (mut start, mut stop) = (m.start(), m.end());
            if token.single_word {
                let start_ok =
                    start == 0 || !text[..start].chars().next_back().is_some_and(is_word_char);
                let stop_ok =
                    stop == text.len() || !text[stop..].chars().next().is_some_and(is_word_char);
                if !start_ok || !stop_ok {
                    continue;
                }
            }
            if token.lstrip {
                let trimmed = text[..start].trim_end_matches(char::is_whitespace).len();
                start = trimmed.max(done);
            }
            if token.rstrip {
                stop +=
                    text[stop..].len() - text[stop..].trim_start_matches(char::is_whitespace).len();
            }
            if done < start {
                f(None, (done, start))?;
            }
            f(Some(id), (start, stop))?;
            done = stop;
        }
        if done != text.len() {
            f(None, (done, text.len()))?;
        }
        Ok(())
    }

    fn split_with(&self, n: NormalizedString, matcher: Option<&Matcher>) -> Vec<Split> {
        self.find_matches(n.get(), matcher)
            .into_iter()
            .filter_map(|(id, (s, e))| {
                let slice = n.slice(s..e)?;
                let tokens = id.map(|id| {
                    let value = slice.get().to_owned();
                    let len = value.len();
                    vec![Token {
                        id,
                        value,
                        offsets: (0, len),
                    }]
                });
                Some(Split {
                    normalized: slice,
                    tokens,
                })
            })
            .collect()
    }

    /// Finds the raw added tokens, normalizes the rest, then finds the normalized added tokens.
    pub fn extract_and_normalize(
        &self,
        normalizer: Option<&Normalizer>,
        text: &str,
    ) -> PreTokenizedString {
        let mut pre = PreTokenizedString::from(text);
        pre.split(|n| self.split_with(n, self.raw_matcher.as_ref()));
        pre.split(|mut n| {
            if let Some(normalizer) = normalizer {
                normalizer.normalize(&mut n);
            }
            self.split_with(n, self.normalized_matcher.as_ref())
        });
        pre
    }

    /// Token string for `id` as decoding sees it: the normalized form of a normalized added
    /// token, else the added token's content, else the model's token.
    pub(crate) fn decode_string<'a>(&'a self, id: u32, model: &'a Model) -> Option<&'a str> {
        self.decode_forms
            .get(&id)
            .map(String::as_str)
            .or_else(|| self.id_to_string(id, model))
    }

    /// Token string for `id`, looking at added tokens first, then the model.
    pub fn id_to_string<'a>(&'a self, id: u32, model: &'a Model) -> Option<&'a str> {
        self.id_to_token(id)
            .map(|t| t.content.as_str())
            .or_else(|| model.id_to_token(id))
    }
}
