//! WordLevel: each word is one token.

use super::{Token, Vocab};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The WordLevel model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordLevel {
    /// The vocabulary.
    pub vocab: Vocab,
    /// Token for unknown words.
    #[serde(default = "default_unk")]
    pub unk_token: String,
}

fn default_unk() -> String {
    "<unk>".into()
}

impl WordLevel {
    /// Tokenizes one word, appending to `out`.
    pub fn tokenize(&self, word: &str, out: &mut Vec<Token>) -> Result<()> {
        let (id, value) = match self.vocab.id(word) {
            Some(id) => (id, word.to_owned()),
            None => match self.vocab.id(&self.unk_token) {
                Some(id) => (id, self.unk_token.clone()),
                None => {
                    return Err(Error::MissingUnk {
                        piece: word.to_owned(),
                    });
                }
            },
        };
        out.push(Token {
            id,
            value,
            offsets: (0, word.len()),
        });
        Ok(())
    }
}
