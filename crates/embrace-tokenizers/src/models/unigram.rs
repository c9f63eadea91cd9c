//! Unigram: the SentencePiece model that picks the most probable segmentation (Viterbi).

use super::{Token, Vocab};
use crate::error::{Error, Result};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Score penalty of an unknown char relative to the least likely piece (as SentencePiece).
const UNK_PENALTY: f64 = 10.0;

/// The Unigram model.
#[derive(Debug, Clone, PartialEq)]
pub struct Unigram {
    /// The vocabulary.
    pub vocab: Vocab,
    /// Log-probability of each piece, by id.
    pub scores: Vec<f64>,
    /// Id of the unknown piece.
    pub unk_id: Option<u32>,
    /// Represent unknown pieces by their UTF-8 bytes as `<0xXX>` tokens.
    pub byte_fallback: bool,
    min_score: f64,
    max_piece_len: usize,
}

#[derive(Serialize, Deserialize)]
struct UnigramConfig {
    #[serde(default)]
    unk_id: Option<u32>,
    vocab: Vec<(String, f64)>,
    #[serde(default)]
    byte_fallback: bool,
}

impl<'de> Deserialize<'de> for Unigram {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let c = UnigramConfig::deserialize(deserializer)?;
        Unigram::new(c.vocab, c.unk_id, c.byte_fallback)
            .map_err(|e| D::Error::custom(e.to_string()))
    }
}

impl Serialize for Unigram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        UnigramConfig {
            unk_id: self.unk_id,
            vocab: self
                .vocab
                .iter()
                .map(|(t, id)| (t.to_owned(), self.scores[id as usize]))
                .collect(),
            byte_fallback: self.byte_fallback,
        }
        .serialize(serializer)
    }
}

#[derive(Debug, Clone, Copy)]
struct Node {
    id: u32,
    score: f64,
    start: Option<usize>,
}

impl Unigram {
    /// Builds a Unigram model from (piece, score) pairs; ids are positions.
    pub fn new(
        pieces: Vec<(String, f64)>,
        unk_id: Option<u32>,
        byte_fallback: bool,
    ) -> Result<Self> {
        if let Some(unk) = unk_id {
            if unk as usize >= pieces.len() {
                return Err(Error::Invalid(format!(
                    "unk_id {unk} is outside the vocabulary of {} pieces",
                    pieces.len()
                )));
            }
        }
        let min_score = pieces.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let max_piece_len = pieces.iter().map(|p| p.0.len()).max().unwrap_or(0);
        let scores = pieces.iter().map(|p| p.1).collect();
        // Duplicated pieces keep their first id, as HuggingFace's map insertion order does not
        // matter for well-formed files; later ids still decode.
        let vocab = Vocab::from_pairs(
            pieces
                .into_iter()
                .enumerate()
                .rev()
                .map(|(i, (t, _))| (t, i as u32)),
        );
        Ok(Unigram {
            vocab,
            scores,
            unk_id,
            byte_fallback,
            min_score,
            max_piece_len,
        })
    }

    /// The most probable segmentation of `text` (unknown chars fused), as byte ranges with ids.
    fn viterbi(&self, text: &str) -> Result<Vec<(usize, usize, u32)>> {
        let n = text.len();
        let unk_score = self.min_score - UNK_PENALTY;
        let mut best = vec![
            Node {
                id: 0,
                score: 0.0,
                start: None,
            };
            n + 1
        ];
        let mut start = 0;
        while start < n {
            let here = best[start].score;
            let char_len = text[start..].chars().next().map_or(1, char::len_utf8);
            let mut has_single = false;
            for (offset, c) in text[start..].char_indices() {
                let end = start + offset + c.len_utf8();
                if end - start > self.max_piece_len {
                    break;
                }
                let Some(id) = self.vocab.id(&text[start..end]) else {
                    continue;
                };
                let candidate = self.scores[id as usize] + here;
                let node = &mut best[end];
                if node.start.is_none() || candidate > node.score {
                    *node = Node {
                        id,
                        score: candidate,
                        start: Some(start),
                    };
                }
                if end - start == char_len {
                    has_single = true;
                }
            }
            if !has_single {
                let unk_id = self.unk_id.ok_or_else(|| Error::MissingUnk {
                    piece: text[start..start + char_len].to_owned(),
                })?;
                let candidate = unk_score + here;
                let node = &mut best[start + char_len];
                if node.start.is_none() || candidate > node.score {
                    *node = Node {
                        id: unk_id,
                        score: candidate,
                        start: Some(start),
                    };
                }
            }
            start += char_len;
        }
        // Walk back, fusing consecutive unknowns.
        let mut out: Vec<(usize, usize, u32)> = Vec::new();
        let mut end = n;
        while end > 0 {
            let node = best[end];
            let s = node.start.unwrap_or(0);
            let is_unk = Some(node.id) == self.unk_id;
            match out.last_mut() {
                Some(last) if is_unk && Some(last.2) == self.unk_id => last.0 = s,
                _ => out.push((s, end, node.id)),
            }
            end = s;
        }
        out.reverse();
        Ok(out)
    }

    /// Tokenizes one word, appending to `out`.
    pub fn tokenize(&self, word: &str, out: &mut Vec<Token>) -> Result<()> {
        if word.is_empty() {
            return Ok(());
        }
        for (s, e, _) in self.viterbi(word)? {
            let piece = &word[s..e];
            if let Some(id) = self.vocab.id(piece) {
                out.push(Token {
                    id,
                    value: piece.to_owned(),
                    offsets: (s, e),
                });
                continue;
            }
            if self.byte_fallback {
                let bytes: Option<Vec<Token>> = piece
                    .bytes()
                    .map(|b| {
                        let value = format!("<0x{b:02X}>");
                        self.vocab.id(&value).map(|id| Token {
                            id,
                            value,
                            offsets: (s, e),
                        })
                    })
                    .collect();
                if let Some(bytes) = bytes {
                    out.extend(bytes);
                    continue;
                }
            }
            let id = self.unk_id.ok_or_else(|| Error::MissingUnk {
                piece: piece.to_owned(),
            })?;
            // As in HuggingFace, an unknown piece keeps its own text as token string.
            out.push(Token {
                id,
                value: piece.to_owned(),
                offsets: (s, e),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_most_probable_segmentation() {
        let pieces = vec![
            ("<unk>".to_owned(), 0.0),
            ("a".to_owned(), -1.0),
            ("b".to_owned(), -1.0),
            ("ab".to_owned(), -1.5),
        ];
        let m = Unigram::new(pieces, Some(0), false).unwrap();
        let mut out = Vec::new();
        m.tokenize("abxxa", &mut out).unwrap();
        let v: Vec<(&str, u32)> = out.iter().map(|t| (t.value.as_str(), t.id)).collect();
        assert_eq!(v, [("ab", 3), ("xx", 0), ("a", 1)]);
    }
}
