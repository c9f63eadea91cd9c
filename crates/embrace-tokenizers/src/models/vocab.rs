//! [`Vocab`]: a token <-> id map, serialized as a JSON object ordered by id.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// A vocabulary: token strings and their ids, both ways.
///
/// All token strings live in one buffer; a hash table of (start, length, id) finds a string's id
/// and a table by id finds an id's string. Loading a 250k-token vocabulary thus makes a handful of
/// allocations instead of two per token.
#[derive(Clone, Default)]
pub struct Vocab {
    arena: String,
    /// Per id: (start, length) in `arena`, or `ABSENT`.
    spans: Vec<(u32, u32)>,
    table: hashbrown::HashTable<(u32, u32, u32)>,
}

const ABSENT: (u32, u32) = (u32::MAX, 0);

fn hash(s: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(s)
}

impl std::fmt::Debug for Vocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vocab({} tokens)", self.len())
    }
}

impl PartialEq for Vocab {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Vocab {}

impl Vocab {
    /// Builds a vocabulary from (token, id) pairs. A later duplicate token wins, as in a JSON map.
    pub fn from_pairs<S: AsRef<str>>(pairs: impl IntoIterator<Item = (S, u32)>) -> Self {
        let mut v = Vocab::default();
        for (token, id) in pairs {
            v.insert(token.as_ref(), id);
        }
        v
    }

    fn slice(&self, (start, len): (u32, u32)) -> &str {
        self.arena
            .get(start as usize..start as usize + len as usize)
            .unwrap_or_default()
    }

    fn reserve(&mut self, tokens: usize) {
        self.spans.reserve(tokens);
        self.table
            .reserve(tokens, |e| hash(self_slice(&self.arena, (e.0, e.1))));
        self.arena.reserve(tokens * 6);
    }

    fn insert(&mut self, token: &str, id: u32) {
        let h = hash(token);
        let arena = &self.arena;
        let existing = self
            .table
            .find_mut(h, |e| same_bytes(arena.as_bytes(), (e.0, e.1), token));
        let span = match existing {
            Some(entry) => {
                entry.2 = id;
                (entry.0, entry.1)
            }
            None => {
                let span = (self.arena.len() as u32, token.len() as u32);
                self.arena.push_str(token);
                let arena = &self.arena;
                self.table.insert_unique(h, (span.0, span.1, id), |e| {
                    hash(self_slice(arena, (e.0, e.1)))
                });
                span
            }
        };
        let idx = id as usize;
        if self.spans.len() <= idx {
            self.spans.resize(idx + 1, ABSENT);
        }
        self.spans[idx] = span;
    }

    /// Id of `token`.
    pub fn id(&self, token: &str) -> Option<u32> {
        let arena = self.arena.as_bytes();
        self.table
            .find(hash(token), |e| same_bytes(arena, (e.0, e.1), token))
            .map(|e| e.2)
    }

    /// Token string of `id`.
    pub fn token(&self, id: u32) -> Option<&str> {
        match self.spans.get(id as usize) {
            Some(&span) if span != ABSENT => Some(self.slice(span)),
            _ => None,
        }
    }

    /// Number of distinct token strings.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// (token, id) pairs ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.spans
            .iter()
            .enumerate()
            .filter(|(_, span)| **span != ABSENT)
            .map(|(i, &span)| (self.slice(span), i as u32))
    }
}

/// `arena[start..start + len]` without borrowing the whole vocabulary.
/// Whether the span `(start, len)` of the arena holds `token` (lengths first; bytes, not
/// chars, so no boundary checks).
#[inline]
fn same_bytes(arena: &[u8], (start, len): (u32, u32), token: &str) -> bool {
    len as usize == token.len()
        && arena.get(start as usize..start as usize + len as usize) == Some(token.as_bytes())
}

fn self_slice(arena: &str, (start, len): (u32, u32)) -> &str {
    arena
        .get(start as usize..start as usize + len as usize)
        .unwrap_or_default()
}

impl Serialize for Vocab {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (token, id) in self.iter() {
            map.serialize_entry(token, &id)?;
        }
        map.end()
    }
}

/// A map key read without a copy when the JSON string has no escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a token string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Vocab {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vocab;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map from token strings to integer ids")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Vocab, A::Error> {
                let mut v = Vocab::default();
                v.reserve(access.size_hint().unwrap_or(0));
                while let Some((Key(token), id)) = access.next_entry::<Key<'de>, u32>()? {
                    if id > 16_000_000 {
                        return Err(serde::de::Error::custom(format!(
                            "token id {id} of {token:?} is implausibly large"
                        )));
                    }
                    v.insert(&token, id);
                }
                Ok(v)
            }
        }
        deserializer.deserialize_map(V)
    }
}
