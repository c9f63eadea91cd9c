//! Unicode normalization forms and accent stripping, with alignment tracking.
//!
//! Character properties deliberately follow the Unicode version HuggingFace `tokenizers` uses
//! (9.0, through the same data crates), not the newest one: a character assigned later is
//! "unassigned" there, and matching ids depends on treating it the same way.

use crate::normalized::NormalizedString;
use unicode_categories::UnicodeCategories;
use unicode_normalization_alignments::UnicodeNormalization;

/// Whether `c` is a combining non-spacing mark (category Mn).
pub(crate) fn is_nonspacing_mark(c: char) -> bool {
    c.is_mark_nonspacing()
}

/// NFD.
pub(crate) fn nfd(s: &mut NormalizedString) {
    if !s.get().is_ascii() {
        let dest: Vec<(char, isize)> = s.get().chars().nfd().collect();
        s.transform(dest, 0);
    }
}

/// NFKD.
pub(crate) fn nfkd(s: &mut NormalizedString) {
    if !s.get().is_ascii() {
        let dest: Vec<(char, isize)> = s.get().chars().nfkd().collect();
        s.transform(dest, 0);
    }
}

/// NFC.
pub(crate) fn nfc(s: &mut NormalizedString) {
    if !s.get().is_ascii() {
        let dest: Vec<(char, isize)> = s.get().chars().nfc().collect();
        s.transform(dest, 0);
    }
}

/// NFKC.
pub(crate) fn nfkc(s: &mut NormalizedString) {
    if !s.get().is_ascii() {
        let dest: Vec<(char, isize)> = s.get().chars().nfkc().collect();
        s.transform(dest, 0);
    }
}

/// The `StripAccents` normalizer: removes every combining mark (Mn, Mc and Me, Unicode 9.0),
/// unlike BERT's accent stripping, which removes only non-spacing marks.
pub(crate) fn strip_accents(s: &mut NormalizedString) {
    if !s.get().is_ascii() {
        s.filter(|c| !unicode_normalization_alignments::char::is_combining_mark(c));
    }
}
