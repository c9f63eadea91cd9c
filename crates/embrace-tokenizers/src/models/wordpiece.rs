//! WordPiece: greedy longest-match-first subwords, as BERT uses.

use super::{Token, Vocab};
use crate::error::{Error, Result};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// The WordPiece model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "WordPieceConfig", into = "WordPieceConfig")]
pub struct WordPiece {
    /// Token for words that cannot be represented.
    pub unk_token: String,
    /// Prefix marking a piece that continues a word (`##`).
    pub continuing_subword_prefix: String,
    /// Words longer than this (in chars) become the unknown token.
    pub max_input_chars_per_word: usize,
    /// The vocabulary.
    pub vocab: Vocab,
    /// Continuation pieces without their prefix, for allocation-free lookups.
    continuations: FxHashMap<String, u32>,
    unk_id: Option<u32>,
}

/// `tokenizer.json` shape of a WordPiece model.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WordPieceConfig {
    #[serde(default = "default_unk")]
    unk_token: String,
    #[serde(default = "default_prefix")]
    continuing_subword_prefix: String,
    #[serde(default = "default_max_chars")]
    max_input_chars_per_word: usize,
    vocab: Vocab,
}

fn default_unk() -> String {
    "[UNK]".into()
}
fn default_prefix() -> String {
    "##".into()
}
fn default_max_chars() -> usize {
    100
}

impl From<WordPieceConfig> for WordPiece {
    fn from(c: WordPieceConfig) -> Self {
        WordPiece::new(
            c.vocab,
            c.unk_token,
            c.continuing_subword_prefix,
            c.max_input_chars_per_word,
        )
    }
}

impl From<WordPiece> for WordPieceConfig {
    fn from(m: WordPiece) -> Self {
        WordPieceConfig {
            unk_token: m.unk_token,
            continuing_subword_prefix: m.continuing_subword_prefix,
            max_input_chars_per_word: m.max_input_chars_per_word,
            vocab: m.vocab,
        }
    }
}

impl WordPiece {
    /// Builds a WordPiece model.
    pub fn new(
        vocab: Vocab,
        unk_token: String,
        continuing_subword_prefix: String,
        max_input_chars_per_word: usize,
    ) -> Self {
        let continuations = vocab
            .iter()
            .filter_map(|(t, id)| {
                t.strip_prefix(continuing_subword_prefix.as_str())
                    .map(|rest| (rest.to_owned(), id))
            })
            .collect();
        let unk_id = vocab.id(&unk_token);
        Self {
            unk_token,
            continuing_subword_prefix,
            max_input_chars_per_word,
            vocab,
            continuations,
            unk_id,
        }
    }

    /// Reads a BERT `vocab.txt` (one token per line, id = line number).
    pub fn from_vocab_txt(text: &str) -> Self {
        let vocab = Vocab::from_pairs(
            text.lines()
                .enumerate()
                .map(|(i, l)| (l.trim_end_matches('\r').to_owned(), i as u32)),
        );
        WordPiece::new(vocab, default_unk(), default_prefix(), default_max_chars())
    }

    /// Id of the unknown token, if the vocabulary has it.
    pub(crate) fn unk_id(&self) -> Option<u32> {
        self.unk_id
    }

    /// Tokenizes one word, appending to `out`.
    pub fn tokenize(&self, word: &str, out: &mut Vec<Token>) -> Result<()> {
        self.tokenize_into(word, |id, prefix, text, offsets| {
            out.push(Token {
                id,
                value: format!("{prefix}{text}"),
                offsets,
            })
        })
    }

    /// Tokenizes one word, calling `emit(id, prefix, text, byte offsets)` for each token in
    /// order; the token string is `prefix` followed by `text`.
    pub(crate) fn tokenize_into<'a>(
        &'a self,
        word: &'a str,
        mut emit: impl FnMut(u32, &'a str, &'a str, (usize, usize)),
    ) -> Result<()> {
        let unk = || {
            self.unk_id.ok_or_else(|| Error::MissingUnk {
                piece: word.to_owned(),
            })
        };
        // A word has at most as many chars as bytes: count chars only when it might be too long.
        if word.len() > self.max_input_chars_per_word
            && word.chars().nth(self.max_input_chars_per_word).is_some()
        {
            emit(unk()?, "", &self.unk_token, (0, word.len()));
            return Ok(());
        }
        // Greedy longest-match-first; pieces are collected first because an unmatchable
        // remainder turns the whole word into the unknown token.
        let mut pieces: [(u32, usize, usize); 16] = [(0, 0, 0); 16];
        let mut spill: Vec<(u32, usize, usize)> = Vec::new();
        let mut n = 0;
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while start < end {
                let piece = &word[start..end];
                let id = if start == 0 {
                    self.vocab.id(piece)
                } else {
                    self.continuations.get(piece).copied()
                };
                if let Some(id) = id {
                    found = Some(id);
                    break;
                }
                // Step back one char.
                end -= piece.chars().next_back().map_or(1, char::len_utf8);
            }
            let Some(id) = found else {
                emit(unk()?, "", &self.unk_token, (0, word.len()));
                return Ok(());
            };
            if n < pieces.len() {
                pieces[n] = (id, start, end);
            } else {
                spill.push((id, start, end));
            }
            n += 1;
            start = end;
        }
        for &(id, start, end) in pieces.iter().take(n.min(pieces.len())).chain(spill.iter()) {
            let prefix = if start == 0 {
                ""
            } else {
                self.continuing_subword_prefix.as_str()
            };
            emit(id, prefix, &word[start..end], (start, end));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> WordPiece {
        WordPiece::from_vocab_txt("[UNK]\nun\n##aff\n##able\naff\n")
    }

    #[test]
    fn splits_longest_first() {
        let mut out = Vec::new();
        model().tokenize("unaffable", &mut out).unwrap();
        let v: Vec<&str> = out.iter().map(|t| t.value.as_str()).collect();
        assert_eq!(v, ["un", "##aff", "##able"]);
        assert_eq!(out[2].offsets, (5, 9));
    }

    #[test]
    fn unknown_word_is_one_unk() {
        let mut out = Vec::new();
        model().tokenize("unx", &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, 0);
        assert_eq!(out[0].offsets, (0, 3));
    }
}
