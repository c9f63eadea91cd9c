//! The per-thread cache of recent words: a word's bytes -> its tokens, for the models whose result
//! depends on the word alone (byte-level BPE, WordPiece, Unigram).
//!
//! Once a text's vocabulary has been seen, every word is a cache hit, so the probe is the hot
//! path. It is built to stay in the CPU's caches:
//!
//! - Pieces of at most 7 bytes (about 88% of English pieces) live in an open-addressing table of
//!   16-byte slots: the key is the piece's bytes and length packed into a `u64`, read with one
//!   load where the text allows it. Pieces of 8 to 15 bytes use the same table shape with a
//!   two-word key (24-byte slots); longer ones (rare) a hash map of boxed bytes.
//! - A slot's value holds one or two tokens inline ([`Packed`]); longer token lists go to a shared
//!   spill vector that the value points into.
//!
//! Invariants: a key is never 0 (its top byte is the piece length, at least 1), so 0 marks an
//! empty slot; tables are powers of two and at most three quarters full; the whole cache is emptied when it
//! holds [`CAPACITY`] words or its spill vector is full, so memory stays bounded on endless unique
//! input.

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most words the cache holds before it is emptied.
pub(crate) const CAPACITY: usize = 32_768;
/// Longer pieces are not cached (HuggingFace's BPE cache has the same bound, in chars).
pub(crate) const MAX_LEN: usize = 256;
/// Most spilled tokens kept before the cache is emptied.
const SPILL_CAPACITY: usize = 8 * CAPACITY;
/// Slots of a table when it is first used.
const INITIAL_SLOTS: usize = 1024;

/// A word's tokens packed in 64 bits. The top two bits say how:
/// - `01`: one token, its id in the low 32 bits (its length is the piece's);
/// - `10`: two tokens, ids in bits 0..24 and 24..48, the first one's byte length in bits 48..52;
/// - `11`: `count` tokens at `start` in the spill vector (start in bits 0..32, count 32..48).
///
/// Bit 61 is the caller's mark ([`WordCache::insert_marked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed(u64);

const ONE: u64 = 1 << 62;
const TWO: u64 = 2 << 62;
const SPILLED: u64 = 3 << 62;
/// A flag the caller keeps with a word (byte-level BPE: the word has a char NFC may change).
const MARK: u64 = 1 << 61;
const ID24: u32 = (1 << 24) - 1;

impl Packed {
    /// Packs `tokens` (id, byte length), spilling them if they do not fit.
    fn new(tokens: &[(u32, u32)], spill: &mut Vec<(u32, u32)>) -> Packed {
        match *tokens {
            [(id, _)] => Packed(ONE | u64::from(id)),
            [(a, la), (b, _)] if a <= ID24 && b <= ID24 && la < 16 => {
                Packed(TWO | u64::from(a) | (u64::from(b) << 24) | (u64::from(la) << 48))
            }
            _ => {
                let start = spill.len() as u64;
                spill.extend_from_slice(tokens);
                Packed(SPILLED | start | ((tokens.len() as u64) << 32))
            }
        }
    }

    /// Calls `f(id, byte length)` for each token of a piece of `len` bytes, in order.
    #[inline]
    fn for_each(self, len: u32, spill: &[(u32, u32)], mut f: impl FnMut(u32, u32)) {
        let v = self.0;
        match v & SPILLED {
            ONE => f(v as u32, len),
            TWO => {
                let la = ((v >> 48) & 0xF) as u32;
                f((v as u32) & ID24, la);
                f(((v >> 24) as u32) & ID24, len - la);
            }
            _ => {
                let start = (v as u32) as usize;
                let count = ((v >> 32) & 0xFFFF) as usize;
                for &(id, l) in spill.get(start..start + count).unwrap_or_default() {
                    f(id, l);
                }
            }
        }
    }
}

/// A key of an open-addressing table: never 0 for a real piece.
trait Key: Copy + Eq + Default {
    fn slot_hash(self) -> u64;
}

impl Key for u64 {
    #[inline]
    fn slot_hash(self) -> u64 {
        self.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// Two words rather than a `u128`, so that a slot is 24 bytes, not 32.
impl Key for [u64; 2] {
    #[inline]
    fn slot_hash(self) -> u64 {
        (self[0] ^ self[1].rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// Linear probing over a power-of-two slot array, at most three quarters full: a denser table
/// stays in the CPU's cache, which matters more than the slightly longer probes.
#[derive(Default)]
struct Table<K> {
    slots: Vec<(K, Packed)>,
    len: usize,
    shift: u32,
}

impl<K: Key> Table<K> {
    #[inline]
    fn get(&self, key: K) -> Option<Packed> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = (key.slot_hash() >> self.shift) as usize;
        loop {
            let (k, v) = self.slots[i & mask];
            if k == key {
                return Some(v);
            }
            if k == K::default() {
                return None;
            }
            i += 1;
        }
    }

    fn insert(&mut self, key: K, value: Packed) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = (key.slot_hash() >> self.shift) as usize;
        loop {
            let slot = &mut self.slots[i & mask];
            if slot.0 == K::default() {
                *slot = (key, value);
                self.len += 1;
                return;
            }
            if slot.0 == key {
                slot.1 = value;
                return;
            }
            i += 1;
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(INITIAL_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![(K::default(), Packed(0)); size]);
        self.shift = 64 - size.trailing_zeros();
        self.len = 0;
        for (k, v) in old {
            if k != K::default() {
                self.insert(k, v);
            }
        }
    }

    fn clear(&mut self) {
        if self.len > 0 {
            self.slots.fill((K::default(), Packed(0)));
            self.len = 0;
        }
    }
}

/// Recent words of one model: piece bytes -> (id, byte length) of its tokens.
#[derive(Default)]
pub(crate) struct WordCache {
    short: Table<u64>,
    medium: Table<[u64; 2]>,
    long: FxHashMap<Box<[u8]>, Packed>,
    spill: Vec<(u32, u32)>,
}

/// The piece `bytes[start..start + len]` (`len` at most 7) packed with its length.
#[inline]
fn short_key(bytes: &[u8], start: usize, len: usize) -> u64 {
    let word = match bytes.get(start..start + 8) {
        // One unaligned load where 8 bytes are readable, then the piece's bytes kept.
        Some(b) => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a) & ((1u64 << (8 * len)) - 1)
        }
        None => bytes[start..start + len]
            .iter()
            .rev()
            .fold(0u64, |k, &b| (k << 8) | u64::from(b)),
    };
    word | ((len as u64) << 56)
}

/// The piece `bytes[start..start + len]` (`len` from 8 to 15) packed with its length.
#[inline]
fn medium_key(bytes: &[u8], start: usize, len: usize) -> [u64; 2] {
    let word = match bytes.get(start..start + 16) {
        Some(b) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            u128::from_le_bytes(a) & ((1u128 << (8 * len)) - 1)
        }
        None => bytes[start..start + len]
            .iter()
            .rev()
            .fold(0u128, |k, &b| (k << 8) | u128::from(b)),
    };
    [word as u64, (word >> 64) as u64 | ((len as u64) << 56)]
}

impl WordCache {
    /// Appends the cached tokens of `bytes[start..end]` to `out`; false on a miss.
    #[inline]
    pub(crate) fn get(
        &self,
        bytes: &[u8],
        start: usize,
        end: usize,
        out: &mut Vec<(u32, u32)>,
    ) -> bool {
        self.get_with(bytes, start, end, |id, len| out.push((id, len)))
            .is_some()
    }

    /// Calls `f(id, byte length)` for each cached token of `bytes[start..end]`; on a hit, gives
    /// the word's mark (see [`Self::insert_marked`]), on a miss `None`.
    #[inline]
    pub(crate) fn get_with(
        &self,
        bytes: &[u8],
        start: usize,
        end: usize,
        f: impl FnMut(u32, u32),
    ) -> Option<bool> {
        let len = end - start;
        let found = match len {
            1..=7 => self.short.get(short_key(bytes, start, len)),
            8..=15 => self.medium.get(medium_key(bytes, start, len)),
            _ => self.long.get(&bytes[start..end]).copied(),
        };
        found.map(|packed| {
            packed.for_each(len as u32, &self.spill, f);
            packed.0 & MARK != 0
        })
    }

    /// The tokens of a whole `word` into `tokens` (emptied first): from the cache, or from
    /// `compute`, whose result is then cached (for words of 1 to [`MAX_LEN`] bytes).
    pub(crate) fn whole_word<E>(
        &mut self,
        word: &[u8],
        tokens: &mut Vec<(u32, u32)>,
        compute: impl FnOnce(&mut Vec<(u32, u32)>) -> Result<(), E>,
    ) -> Result<(), E> {
        tokens.clear();
        let cacheable = !word.is_empty() && word.len() <= MAX_LEN;
        if cacheable && self.get(word, 0, word.len(), tokens) {
            return Ok(());
        }
        compute(tokens)?;
        if cacheable {
            self.insert(word, 0, word.len(), tokens);
        }
        Ok(())
    }

    /// Remembers the tokens of `bytes[start..end]` (a non-empty piece of at most [`MAX_LEN`]).
    pub(crate) fn insert(&mut self, bytes: &[u8], start: usize, end: usize, tokens: &[(u32, u32)]) {
        self.insert_marked(bytes, start, end, tokens, false);
    }

    /// [`Self::insert`], with a flag that lookups give back.
    pub(crate) fn insert_marked(
        &mut self,
        bytes: &[u8],
        start: usize,
        end: usize,
        tokens: &[(u32, u32)],
        mark: bool,
    ) {
        if self.short.len + self.medium.len + self.long.len() >= CAPACITY
            || self.spill.len() + tokens.len() > SPILL_CAPACITY
        {
            self.clear();
        }
        let mut value = Packed::new(tokens, &mut self.spill);
        if mark {
            value.0 |= MARK;
        }
        let len = end - start;
        match len {
            0 => {}
            1..=7 => self.short.insert(short_key(bytes, start, len), value),
            8..=15 => self.medium.insert(medium_key(bytes, start, len), value),
            _ => {
                self.long.insert(bytes[start..end].into(), value);
            }
        }
    }

    /// Forgets every word (the tables keep their size).
    pub(crate) fn clear(&mut self) {
        self.short.clear();
        self.medium.clear();
        self.long.clear();
        self.spill.clear();
    }
}

/// A new owner id for [`ThreadCache::for_owner`] (ids are never 0, the id of no owner).
pub(crate) fn new_owner_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What a model or fast path keeps per thread: the cache of the tokenizer that used the thread last, and
/// scratch space for the tokens of one word.
#[derive(Default)]
pub(crate) struct ThreadCache {
    /// Cache id of the tokenizer that last used this thread.
    owner: u64,
    cache: WordCache,
    tokens: Vec<(u32, u32)>,
}

impl ThreadCache {
    /// The cache and scratch space for the tokenizer with cache id `owner`; another tokenizer's
    /// words are forgotten first.
    pub(crate) fn for_owner(&mut self, owner: u64) -> (&mut WordCache, &mut Vec<(u32, u32)>) {
        if self.owner != owner {
            self.cache.clear();
            self.owner = owner;
        }
        (&mut self.cache, &mut self.tokens)
    }

    /// Drops the token buffer after a very long word grew it, so that a thread does not hold
    /// that memory for good (call when done with [`Self::for_owner`]'s buffers).
    pub(crate) fn release_if_large(&mut self) {
        if self.tokens.capacity() > 4096 {
            self.tokens = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lookup(
        cache: &WordCache,
        bytes: &[u8],
        start: usize,
        end: usize,
    ) -> Option<Vec<(u32, u32)>> {
        let mut out = Vec::new();
        cache.get(bytes, start, end, &mut out).then_some(out)
    }

    #[test]
    fn every_shape_of_word_round_trips() {
        let text = b"a bb the hello, extraordinary-words and a very long piece of text here!";
        let mut cache = WordCache::default();
        // Every (start, end) up to MAX_LEN, with token lists of 1, 2 and more tokens.
        // A piece seen again replaces its entry, so the last tokens of each piece are expected.
        let mut expected = std::collections::HashMap::new();
        for start in 0..text.len() {
            for end in start + 1..=text.len().min(start + MAX_LEN) {
                let len = (end - start) as u32;
                let tokens: Vec<(u32, u32)> = match len % 3 {
                    0 => vec![((start * 31 + end) as u32, len)],
                    1 if len >= 2 => vec![(start as u32 + (1 << 20), 1), (end as u32, len - 1)],
                    _ => (0..len)
                        .map(|i| (i + start as u32 * 1000 + (1 << 25), 1))
                        .collect(),
                };
                cache.insert(text, start, end, &tokens);
                expected.insert(&text[start..end], (start, end, tokens));
            }
        }
        assert!(expected.len() > 2000);
        for (start, end, tokens) in expected.values() {
            assert_eq!(lookup(&cache, text, *start, *end).as_ref(), Some(tokens));
        }
        // The same piece found at another position (key independent of what follows it).
        let other = b"xx hello";
        assert_eq!(lookup(&cache, other, 2, 8), lookup(&cache, text, 8, 14),);
        assert_eq!(lookup(&cache, b"zzzz", 0, 4), None);
    }

    #[test]
    fn the_cache_is_emptied_when_full() {
        let mut cache = WordCache::default();
        for i in 0..CAPACITY as u32 + 10 {
            let piece = format!("{i:07}");
            cache.insert(piece.as_bytes(), 0, 7, &[(i, 7)]);
        }
        assert!(cache.short.len <= CAPACITY);
        assert!(cache.short.slots.len() <= 2 * CAPACITY);
        assert!(cache.short.len * 4 <= cache.short.slots.len() * 3);
        let last = format!("{:07}", CAPACITY + 9);
        assert_eq!(
            lookup(&cache, last.as_bytes(), 0, 7),
            Some(vec![(CAPACITY as u32 + 9, 7)])
        );
        assert_eq!(lookup(&cache, b"0000000", 0, 7), None);
    }
}
