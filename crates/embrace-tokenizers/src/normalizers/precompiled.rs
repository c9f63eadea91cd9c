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

    /// Whether the map leaves `s` unchanged for certain. Lookups start at chars: a whole
    /// grapheme, or one char. So `s` is left alone when at every char `c`, followed by `d`:
    /// - both are printable ASCII and the map leaves printable ASCII alone (a grapheme of its
    ///   own, mapped to itself); or
    /// - no key of the trie starts with `c d` (so none matches a grapheme starting with `c`,
    ///   and none is `c` alone), or, at the last char, none is `c` alone.
    pub fn leaves_alone(&self, s: &str) -> bool {
        if self.trie.is_empty() {
            return true;
        }
        let printable = |c: char| (' '..='~').contains(&c);
        let mut buf = [0u8; 8];
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            let next = chars.peek().copied();
            if self.ascii_identity && printable(c) && next.is_none_or(printable) {
                continue;
            }
            let mut len = c.encode_utf8(&mut buf).len();
            if let Some(d) = next {
                len += d.encode_utf8(&mut buf[len..]).len();
            }
            match (self.walk(&buf[..len]), next) {
                (Walk::NoPath, _) | (Walk::Prefix, None) => {}
                _ => return false,
            }
        }
        true
    }

    /// Value of the shortest key of the trie that prefixes `key`.
    fn shortest_prefix_value(&self, key: &[u8]) -> Option<u32> {
        match self.walk(key) {
            Walk::Value(v) => Some(v),
            Walk::NoPath | Walk::Prefix => None,
        }
    }

    /// Walks the double-array trie along `key` until the first key that ends on the way.
    fn walk(&self, key: &[u8]) -> Walk {
        let unit = |pos: usize| self.trie.get(pos).copied();
        let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
        let Some(root) = unit(0) else {
            return Walk::NoPath;
        };
        let mut pos = offset(root);
        for &c in key {
            if c == 0 {
                return Walk::NoPath;
            }
            pos ^= c as usize;
            match unit(pos) {
                Some(u) if u & ((1 << 31) | 0xFF) == c as u32 => {
                    pos ^= offset(u);
                    if (u >> 8) & 1 == 1 {
                        return match unit(pos) {
                            Some(v) => Walk::Value(v & ((1 << 31) - 1)),
                            None => Walk::NoPath,
                        };
                    }
                }
                _ => return Walk::NoPath,
            }
        }
        Walk::Prefix
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
            if grapheme.len() < 6 {
                if let Some(norm) = self.transform(grapheme) {
                    modified = true;
                    replace(&mut dest, grapheme, norm);
                    continue;
                }
                // A one-char grapheme was just looked up as that char.
                let mut chars = grapheme.chars();
                if let (Some(c), None) = (chars.next(), chars.next()) {
                    dest.push((c, 0));
                    continue;
                }
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

/// Where a walk along a key ends in the trie.
enum Walk {
    /// The key leaves the trie (no key starts with it).
    NoPath,
    /// A key ends on the way: its value.
    Value(u32),
    /// The whole key is a path, but no key ends on it.
    Prefix,
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
