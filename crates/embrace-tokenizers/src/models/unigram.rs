//! Unigram: the SentencePiece model that picks the most probable segmentation (Viterbi).

use super::{Token, Vocab};
use crate::error::{Error, Result};
use crate::word_cache::{self, ThreadCache};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Score penalty of an unknown char relative to the least likely piece (as SentencePiece).
const UNK_PENALTY: f64 = 10.0;

/// The Unigram model.
#[derive(Debug, Clone)]
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
    trie: Trie,
    /// Identifies this model's entries in the per-thread segmentation cache.
    cache_id: u64,
}

impl PartialEq for Unigram {
    /// Same pieces, scores and options (derived lookup structures are not compared).
    fn eq(&self, other: &Self) -> bool {
        self.vocab == other.vocab
            && self.scores == other.scores
            && self.unk_id == other.unk_id
            && self.byte_fallback == other.byte_fallback
    }
}

thread_local! {
    /// Recent segmentations (id, byte length per piece) of the model that last used this thread.
    static SEGMENT_CACHE: std::cell::RefCell<ThreadCache> = std::cell::RefCell::default();
}

/// A byte trie over the pieces, for the common-prefix search of the Viterbi pass. Nodes are
/// stored flat; each node's children are a sorted slice of `edges`.
#[derive(Debug, Clone, Default)]
struct Trie {
    /// Per node: start of its children in `edges`, their count, and the piece id ending here.
    nodes: Vec<(u32, u32, Option<u32>)>,
    edges: Vec<(u8, u32)>,
}

impl Trie {
    fn build(vocab: &Vocab) -> Trie {
        // Insert the pieces in byte order: a node's children then appear in increasing byte
        // order, and a counting sort by parent lays them out contiguously. No hashing needed.
        let mut keys: Vec<(&[u8], u32)> = vocab
            .iter()
            .filter_map(|(t, _)| vocab.id(t).map(|id| (t.as_bytes(), id)))
            .collect();
        keys.sort_unstable();
        keys.dedup_by(|a, b| a.0 == b.0);
        // Nodes in creation order: (parent, byte); node 0 is the root.
        let mut parent: Vec<(u32, u8)> = vec![(0, 0)];
        let mut ids: Vec<Option<u32>> = vec![None];
        let mut path: Vec<u32> = vec![0];
        let mut previous: &[u8] = &[];
        for &(key, id) in &keys {
            let common = key.iter().zip(previous).take_while(|(a, b)| a == b).count();
            path.truncate(common + 1);
            for &b in &key[common..] {
                let node = parent.len() as u32;
                parent.push((path[path.len() - 1], b));
                ids.push(None);
                path.push(node);
            }
            if let Some(&last) = path.last() {
                ids[last as usize] = Some(id);
            }
            previous = key;
        }
        // Counting sort of the edges by parent.
        let n = parent.len();
        let mut counts = vec![0u32; n + 1];
        for &(p, _) in &parent[1..] {
            counts[p as usize + 1] += 1;
        }
        for k in 1..=n {
            counts[k] += counts[k - 1];
        }
        let mut edges = vec![(0u8, 0u32); n.saturating_sub(1)];
        let mut next = counts.clone();
        for (child, &(p, b)) in parent.iter().enumerate().skip(1) {
            let slot = &mut next[p as usize];
            edges[*slot as usize] = (b, child as u32);
            *slot += 1;
        }
        let nodes = (0..n)
            .map(|k| (counts[k], counts[k + 1] - counts[k], ids[k]))
            .collect();
        Trie { nodes, edges }
    }

    /// Calls `f(length, id)` for every piece that prefixes `bytes`, shortest first.
    #[inline]
    fn prefixes(&self, bytes: &[u8], mut f: impl FnMut(usize, u32)) {
        let mut node = 0usize;
        for (i, &b) in bytes.iter().enumerate() {
            let Some(&(start, len, _)) = self.nodes.get(node) else {
                return;
            };
            let edges = &self.edges[start as usize..(start + len) as usize];
            match edges.binary_search_by_key(&b, |e| e.0) {
                Ok(k) => node = edges[k].1 as usize,
                Err(_) => return,
            }
            if let Some(id) = self.nodes[node].2 {
                f(i + 1, id);
            }
        }
    }
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
        if let Some(unk) = unk_id
            && unk as usize >= pieces.len()
        {
            return Err(Error::Invalid(format!(
                "unk_id {unk} is outside the vocabulary of {} pieces",
                pieces.len()
            )));
        }
        let min_score = pieces.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let scores = pieces.iter().map(|p| p.1).collect();
        // A duplicated piece encodes to its last id, as in HuggingFace; every id still decodes.
        let vocab = Vocab::from_pairs(
            pieces
                .into_iter()
                .enumerate()
                .map(|(i, (t, _))| (t, i as u32)),
        );
        let trie = Trie::build(&vocab);
        Ok(Unigram {
            vocab,
            scores,
            unk_id,
            byte_fallback,
            min_score,
            trie,
            cache_id: word_cache::new_owner_id(),
        })
    }

    /// Runs `f` on [`Self::viterbi`]'s segmentation of `word` as (id, byte length) per piece,
    /// through the per-thread cache of recent words. `f` runs under the cache's borrow, so a
    /// hit is used in place.
    fn with_segments<R>(&self, word: &str, f: impl FnOnce(&[(u32, u32)]) -> R) -> Result<R> {
        SEGMENT_CACHE.with(|cell| {
            let mut cell = cell.borrow_mut();
            let (cache, tokens) = cell.for_owner(self.cache_id);
            cache.whole_word(word.as_bytes(), tokens, |tokens| {
                for (s, e, id) in self.viterbi(word)? {
                    tokens.push((id, (e - s) as u32));
                }
                Ok(())
            })?;
            let result = f(tokens);
            cell.release_if_large();
            Ok(result)
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
            let scores = &self.scores;
            self.trie.prefixes(&text.as_bytes()[start..], |len, id| {
                let end = start + len;
                let candidate = scores[id as usize] + here;
                let node = &mut best[end];
                if node.start.is_none() || candidate > node.score {
                    *node = Node {
                        id,
                        score: candidate,
                        start: Some(start),
                    };
                }
                if len == char_len {
                    has_single = true;
                }
            });
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
        self.tokenize_into(word, |id, value, offsets| {
            out.push(Token {
                id,
                value: value.to_owned(),
                offsets,
            })
        })
    }

    /// Tokenizes one word, calling `emit(id, token string, byte offsets)` for each token.
    pub(crate) fn tokenize_into(
        &self,
        word: &str,
        mut emit: impl FnMut(u32, &str, (usize, usize)),
    ) -> Result<()> {
        if word.is_empty() {
            return Ok(());
        }
        self.with_segments(word, |segments| -> Result<()> {
            let mut e = 0;
            for &(id, len) in segments {
                let s = e;
                e = s + len as usize;
                let Some(piece) = word.get(s..e) else {
                    break;
                };
                // Known pieces keep their id (the unknown token too, when the text spells it out).
                if Some(id) != self.unk_id || self.vocab.id(piece) == Some(id) {
                    emit(id, piece, (s, e));
                    continue;
                }
                if self.byte_fallback {
                    let mut buf = String::with_capacity(6);
                    let ids: Option<Vec<u32>> = piece
                        .bytes()
                        .map(|b| {
                            buf.clear();
                            use std::fmt::Write;
                            let _ = write!(buf, "<0x{b:02X}>");
                            self.vocab.id(&buf)
                        })
                        .collect();
                    if let Some(ids) = ids {
                        for id in ids {
                            emit(id, self.vocab.token(id).unwrap_or_default(), (s, e));
                        }
                        continue;
                    }
                }
                let id = self.unk_id.ok_or_else(|| Error::MissingUnk {
                    piece: piece.to_owned(),
                })?;
                // As in HuggingFace, an unknown piece keeps its own text as token string.
                emit(id, piece, (s, e));
            }
            Ok(())
        })??;
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
