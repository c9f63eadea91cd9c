//! SentencePiece's precompiled normalization map (`precompiled_charsmap`): a double-array trie
//! (darts-clone format) from UTF-8 sequences to replacement strings.
//!
//! Behaviour follows HuggingFace exactly, including its SentencePiece quirks: text is processed
//! grapheme by grapheme; a grapheme shorter than 6 bytes is looked up whole, otherwise char by char;
//! and a lookup takes the *shortest* key that prefixes the chunk.

use crate::normalized::NormalizedString;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unicode_segmentation::UnicodeSegmentation;

/// The `Precompiled` normalizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precompiled {
    source: String,
    trie: Vec<u32>,
    normalized: Vec<u8>,
    /// The map leaves every printable ASCII char alone (checked once), so printable ASCII text
    /// needs no lookup at all.
    ascii_identity: bool,
}

impl Precompiled {
    /// Parses a base64 `precompiled_charsmap`.
    pub fn from_base64(source: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(source)
            .map_err(|e| format!("precompiled_charsmap is not valid base64: {e}"))?;
        if bytes.is_empty() {
            return Ok(Precompiled {
                source: source.to_owned(),
                trie: Vec::new(),
                normalized: Vec::new(),
                ascii_identity: true,
            });
        }
        let head: [u8; 4] = bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or("precompiled_charsmap is too short")?;
        let trie_size = u32::from_le_bytes(head) as usize;
        let trie_bytes = bytes
            .get(4..4 + trie_size)
            .ok_or("precompiled_charsmap: the trie is longer than the data")?;
        let trie = trie_bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let normalized = bytes[4 + trie_size..].to_vec();
        let mut map = Precompiled {
            source: source.to_owned(),
            trie,
            normalized,
            ascii_identity: false,
        };
        map.ascii_identity = (0x20u8..0x7f).all(|b| {
            let s = [b];
            let c = std::str::from_utf8(&s).unwrap_or_default();
            map.transform(c).is_none_or(|n| n == c)
        });
        Ok(map)
    }

    /// Whether the map leaves every printable ASCII char unchanged.
    pub fn is_ascii_identity(&self) -> bool {
        self.ascii_identity
    }

    /// Value of the shortest key of the trie that prefixes `key`.
    fn shortest_prefix_value(&self, key: &[u8]) -> Option<u32> {
        let unit = |pos: usize| self.trie.get(pos).copied();
        let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
        let mut pos = offset(unit(0)?);
        for &c in key {
            if c == 0 {
                return None;
            }
            pos ^= c as usize;
            let u = unit(pos)?;
            if u & ((1 << 31) | 0xFF) != c as u32 {
                return None;
            }
            pos ^= offset(u);
            if (u >> 8) & 1 == 1 {
                return Some(unit(pos)? & ((1 << 31) - 1));
            }
        }
        None
    }

    /// The replacement of `chunk`, if the map has one.
    fn transform(&self, chunk: &str) -> Option<&str> {
        let start = self.shortest_prefix_value(chunk.as_bytes())? as usize;
        let rest = self.normalized.get(start..)?;
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).ok()
    }

    /// Normalizes `s` in place.
    pub fn normalize(&self, s: &mut NormalizedString) {
        if self.trie.is_empty()
            || (self.ascii_identity && s.get().bytes().all(|b| (0x20..0x7f).contains(&b)))
        {
            return;
        }
        let mut dest: Vec<(char, isize)> = Vec::with_capacity(s.len());
        let mut modified = false;
        for grapheme in s.get().graphemes(true) {
            if grapheme.len() < 6
                && let Some(norm) = self.transform(grapheme)
            {
                modified = true;
                replace(&mut dest, grapheme, norm);
                continue;
            }
            for (i, c) in grapheme.char_indices() {
                let part = &grapheme[i..i + c.len_utf8()];
                match self.transform(part) {
                    Some(norm) => {
                        modified = true;
                        replace(&mut dest, part, norm);
                    }
                    None => dest.push((c, 0)),
                }
            }
        }
        if modified {
            s.transform(dest, 0);
        }
    }
}

/// Appends the changes that replace `old` by `new` (HuggingFace's bookkeeping, quirks included:
/// when `new` is shorter, the removal is charged to the last change already recorded).
fn replace(dest: &mut Vec<(char, isize)>, old: &str, new: &str) {
    let diff = new.chars().count() as isize - old.chars().count() as isize;
    dest.extend(new.chars().map(|c| (c, 0)));
    if diff > 0 {
        for (_, change) in dest.iter_mut().rev().take(diff as usize) {
            *change = 1;
        }
    } else if diff < 0
        && let Some((_, change)) = dest.last_mut()
    {
        *change += diff;
    }
}

impl Serialize for Precompiled {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.source.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Precompiled {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Precompiled::from_base64(&source).map_err(serde::de::Error::custom)
    }
}
