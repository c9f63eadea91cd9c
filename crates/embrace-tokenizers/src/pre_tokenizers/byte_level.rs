//! GPT-2's byte-level mapping: every byte becomes a printable char, so any text can be tokenized
//! with a vocabulary of 256 base symbols.

use std::sync::LazyLock;

/// byte -> char of GPT-2's byte-level alphabet.
pub static BYTES_CHAR: LazyLock<[char; 256]> = LazyLock::new(|| {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(256 + n).unwrap_or('\u{FFFD}');
            n += 1;
            c
        };
    }
    table
});

/// char -> byte, the inverse of [`BYTES_CHAR`] (`None` for chars outside the alphabet).
pub fn char_byte(c: char) -> Option<u8> {
    // The alphabet lies below U+0144: a direct table (0xFFFF = not in the alphabet).
    static TABLE: LazyLock<[u16; 0x144]> = LazyLock::new(|| {
        let mut table = [0xFFFF_u16; 0x144];
        for (b, &c) in BYTES_CHAR.iter().enumerate() {
            if let Some(slot) = table.get_mut(c as usize) {
                *slot = b as u16;
            }
        }
        table
    });
    TABLE.get(c as usize).and_then(|&b| u8::try_from(b).ok())
}

/// The options of GPT-2's byte-level components, shared by the pre-tokenizer, the
/// post-processor and the decoder of that name (`tokenizer.json` gives each its own copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ByteLevelOptions {
    /// Pre-tokenizer: add a space in front of each piece that does not start with one.
    /// Post-processor: that space was added (it is kept when trimming the first token).
    #[serde(default = "yes")]
    pub add_prefix_space: bool,
    /// Post-processor: remove leading/trailing spaces from offsets.
    #[serde(default = "yes")]
    pub trim_offsets: bool,
    /// Pre-tokenizer: split with the GPT-2 pattern.
    #[serde(default = "yes")]
    pub use_regex: bool,
}

fn yes() -> bool {
    true
}

/// GPT-2's pre-tokenization pattern.
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_is_a_bijection() {
        assert_eq!(BYTES_CHAR[b' ' as usize], 'Ġ');
        assert_eq!(BYTES_CHAR[b'\n' as usize], 'Ċ');
        for b in 0..=255u8 {
            assert_eq!(char_byte(BYTES_CHAR[b as usize]), Some(b));
        }
    }
}
