//! Models: turn one pre-tokenized word into tokens (ids, values and offsets).

mod bpe;
mod unigram;
mod vocab;
mod wordlevel;
mod wordpiece;

pub use bpe::{Bpe, BpeOptions, parse_merge_lines};
pub use unigram::Unigram;
pub use vocab::Vocab;
pub use wordlevel::WordLevel;
pub use wordpiece::WordPiece;

use crate::error::Result;
use serde::{Deserialize, Serialize};

/// A token produced by a model: its id, its string and its byte offsets in the word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Id in the vocabulary.
    pub id: u32,
    /// The token string.
    pub value: String,
    /// Byte range in the (normalized) word it came from.
    pub offsets: (usize, usize),
}

/// A model as `tokenizer.json` names it in its `model` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Model {
    /// Greedy longest-match-first subwords (BERT).
    WordPiece(WordPiece),
    /// One token per word.
    WordLevel(WordLevel),
    /// Byte-pair encoding.
    BPE(Bpe),
    /// SentencePiece's unigram language model.
    Unigram(Unigram),
}

impl Model {
    /// Tokenizes one word.
    pub fn tokenize(&self, word: &str, out: &mut Vec<Token>) -> Result<()> {
        match self {
            Model::WordPiece(m) => m.tokenize(word, out),
            Model::WordLevel(m) => m.tokenize(word, out),
            Model::BPE(m) => m.tokenize(word, out),
            Model::Unigram(m) => m.tokenize(word, out),
        }
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Vocab {
        match self {
            Model::WordPiece(m) => &m.vocab,
            Model::WordLevel(m) => &m.vocab,
            Model::BPE(m) => &m.vocab,
            Model::Unigram(m) => &m.vocab,
        }
    }

    /// Id of a token string.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.vocab().id(token)
    }

    /// Token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.vocab().token(id)
    }
}
