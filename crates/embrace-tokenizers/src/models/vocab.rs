//! [`Vocab`]: a token <-> id map, serialized as a JSON object ordered by id.

use rustc_hash::FxHashMap;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// A vocabulary: token strings and their ids, both ways.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocab {
    ids: FxHashMap<String, u32>,
    tokens: Vec<Option<String>>,
}

impl Vocab {
    /// Builds a vocabulary from (token, id) pairs. A later duplicate token wins, as in a JSON map.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, u32)>) -> Self {
        let mut v = Vocab::default();
        for (token, id) in pairs {
            v.insert(token, id);
        }
        v
    }

    fn insert(&mut self, token: String, id: u32) {
        let idx = id as usize;
        if self.tokens.len() <= idx {
            self.tokens.resize(idx + 1, None);
        }
        self.tokens[idx] = Some(token.clone());
        self.ids.insert(token, id);
    }

    /// Id of `token`.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// Token string of `id`.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).and_then(|t| t.as_deref())
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// (token, id) pairs ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.as_deref().map(|t| (t, i as u32)))
    }
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
                let n = access.size_hint().unwrap_or(0);
                v.ids.reserve(n);
                v.tokens.reserve(n);
                while let Some((token, id)) = access.next_entry::<String, u32>()? {
                    if id > 16_000_000 {
                        return Err(serde::de::Error::custom(format!(
                            "token id {id} of {token:?} is implausibly large"
                        )));
                    }
                    v.insert(token, id);
                }
                Ok(v)
            }
        }
        deserializer.deserialize_map(V)
    }
}
