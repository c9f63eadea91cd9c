//! Oniguruma compatibility for regular expressions read from `tokenizer.json`.
//!
//! HuggingFace runs `Split` and `Replace` patterns with Oniguruma, whose Unicode `\w` is letters,
//! marks, decimal numbers and connector punctuation, plus, below U+0100, the Latin-1 numbers
//! (`²³¹¼½¾`); the Rust regex engines' `\w` adds the join controls (U+200C, U+200D) and leaves
//! out those Latin-1 numbers. Rewriting `\w` and `\W` keeps the two engines in step (checked
//! by the synthetic goldens).

/// Onig's Unicode word class, as items usable inside a bracket class.
const WORD_ITEMS: &str = r"\p{L}\p{M}\p{Nd}\p{Pc}\x{B2}\x{B3}\x{B9}\x{BC}-\x{BE}";

/// Rewrites `\w` / `\W` to Oniguruma's meaning; everything else is copied as is.
pub(crate) fn compat(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('w') if class_depth == 0 => out.push_str(&format!("[{WORD_ITEMS}]")),
                Some('W') if class_depth == 0 => out.push_str(&format!("[^{WORD_ITEMS}]")),
                Some('w') => out.push_str(WORD_ITEMS),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' => {
                class_depth += 1;
                out.push(c);
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_word_classes_only() {
        assert_eq!(compat(r"\w+"), format!("[{WORD_ITEMS}]+"));
        assert_eq!(compat(r"[^\w\s]+"), format!(r"[^{WORD_ITEMS}\s]+"));
        assert_eq!(compat(r"\\w \d"), r"\\w \d");
        let re = regex::Regex::new(&compat(r"\w+")).unwrap();
        assert_eq!(re.find("a\u{200d}b").map(|m| m.as_str()), Some("a"));
        assert_eq!(
            re.find("\u{2460}\u{b2}").map(|m| m.as_str()),
            Some("\u{b2}")
        );
    }
}
