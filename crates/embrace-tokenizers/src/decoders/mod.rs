//! Decoders: turn a list of token strings back into text.

use serde::{Deserialize, Serialize};

/// A decoder as `tokenizer.json` names it in its `decoder` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Decoder {
    /// WordPiece: joins continuation pieces, puts spaces before the others.
    WordPiece {
        /// The continuation prefix (`##`).
        #[serde(default = "default_prefix")]
        prefix: String,
        /// Remove spaces before punctuation and in common English contractions.
        #[serde(default = "yes")]
        cleanup: bool,
    },
    /// BPE with an end-of-word suffix: the suffix becomes a space.
    BPEDecoder {
        /// The end-of-word suffix.
        #[serde(default = "default_suffix")]
        suffix: String,
    },
    /// Concatenate all tokens into one.
    Fuse,
    /// Remove `start` chars equal to `content` at the start of each token and `stop` at its end.
    Strip {
        /// The char to strip.
        content: char,
        /// How many at the start.
        start: usize,
        /// How many at the end.
        stop: usize,
    },
    /// Replace a literal string in every token.
    Replace {
        /// What to look for.
        pattern: crate::normalizers::ReplacePattern,
        /// What to put instead.
        content: String,
    },
    /// Tokens like `<0x61>` are bytes; consecutive ones are decoded as UTF-8 (invalid bytes become
    /// U+FFFD, one per byte).
    ByteFallback,
    /// GPT-2's byte-level decoding: chars back to bytes, then UTF-8 (invalid sequences become
    /// U+FFFD).
    /// The options are kept for the file format; decoding ignores them.
    ByteLevel(crate::pre_tokenizers::byte_level::ByteLevelOptions),
    /// SentencePiece's `▁` back to spaces (the first one dropped unless the scheme is `never`).
    Metaspace(crate::pre_tokenizers::Metaspace),
    /// Connectionist temporal classification (speech models): repeated tokens collapse, padding
    /// disappears, the word delimiter becomes a space.
    CTC {
        /// The padding (blank) token.
        #[serde(default = "default_pad")]
        pad_token: String,
        /// The token between words.
        #[serde(default = "default_delimiter")]
        word_delimiter_token: String,
        /// Apply WordPiece's clean-up and turn delimiters into spaces.
        #[serde(default = "yes")]
        cleanup: bool,
    },
    /// Apply decoders in order.
    Sequence {
        /// The decoders.
        decoders: Vec<Decoder>,
    },
}

fn default_prefix() -> String {
    "##".into()
}
fn default_suffix() -> String {
    "</w>".into()
}
fn default_pad() -> String {
    "<pad>".into()
}
fn default_delimiter() -> String {
    "|".into()
}
fn yes() -> bool {
    true
}

/// WordPiece's clean-up of tokenization spaces.
pub(crate) fn cleanup(s: &str) -> String {
    s.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" do not", " don't")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

fn byte_of(token: &str) -> Option<u8> {
    let hex = token.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

impl Decoder {
    /// Decodes tokens into one string.
    pub fn decode(&self, tokens: Vec<String>) -> String {
        self.decode_chain(tokens).concat()
    }

    /// Applies this decoder to the tokens, producing new tokens (to chain decoders).
    pub fn decode_chain(&self, mut tokens: Vec<String>) -> Vec<String> {
        match self {
            Decoder::WordPiece {
                prefix,
                cleanup: clean,
            } => {
                for (i, token) in tokens.iter_mut().enumerate() {
                    if i != 0 {
                        if let Some(rest) = token.strip_prefix(prefix.as_str()) {
                            *token = rest.to_owned();
                        } else {
                            token.insert(0, ' ');
                        }
                    }
                    if *clean {
                        *token = cleanup(token);
                    }
                }
                tokens
            }
            Decoder::BPEDecoder { suffix } => {
                let n = tokens.len();
                tokens
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| t.replace(suffix.as_str(), if i + 1 == n { "" } else { " " }))
                    .collect()
            }
            Decoder::Fuse => vec![tokens.concat()],
            Decoder::Strip {
                content,
                start,
                stop,
            } => tokens
                .into_iter()
                .map(|t| {
                    let chars: Vec<char> = t.chars().collect();
                    let lead = chars
                        .iter()
                        .take(*start)
                        .take_while(|c| *c == content)
                        .count();
                    let trail = chars[lead..]
                        .iter()
                        .rev()
                        .take(*stop)
                        .take_while(|c| *c == content)
                        .count();
                    chars[lead..chars.len() - trail].iter().collect()
                })
                .collect(),
            Decoder::Replace { pattern, content } => tokens
                .into_iter()
                .map(|t| pattern.replace_all(&t, content))
                .collect(),
            Decoder::ByteFallback => {
                let mut out = Vec::with_capacity(tokens.len());
                let mut bytes: Vec<u8> = Vec::new();
                let flush = |bytes: &mut Vec<u8>, out: &mut Vec<String>| {
                    if bytes.is_empty() {
                        return;
                    }
                    match String::from_utf8(std::mem::take(bytes)) {
                        Ok(s) => out.push(s),
                        Err(e) => out.extend(std::iter::repeat_n(
                            "\u{fffd}".to_owned(),
                            e.as_bytes().len(),
                        )),
                    }
                };
                for t in tokens {
                    match byte_of(&t) {
                        Some(b) => bytes.push(b),
                        None => {
                            flush(&mut bytes, &mut out);
                            out.push(t);
                        }
                    }
                }
                flush(&mut bytes, &mut out);
                out
            }
            Decoder::ByteLevel(_) => {
                let mut bytes = Vec::new();
                for t in &tokens {
                    let mapped: Option<Vec<u8>> = t
                        .chars()
                        .map(crate::pre_tokenizers::byte_level::char_byte)
                        .collect();
                    match mapped {
                        Some(b) => bytes.extend(b),
                        None => bytes.extend_from_slice(t.as_bytes()),
                    }
                }
                vec![String::from_utf8_lossy(&bytes).into_owned()]
            }
            Decoder::Metaspace(m) => tokens
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    t.chars()
                        .filter_map(|c| {
                            if c != m.replacement {
                                Some(c)
                            } else if i == 0
                                && m.prepend_scheme != crate::pre_tokenizers::PrependScheme::Never
                            {
                                None
                            } else {
                                Some(' ')
                            }
                        })
                        .collect()
                })
                .collect(),
            Decoder::CTC {
                pad_token,
                word_delimiter_token,
                cleanup: clean,
            } => {
                tokens.dedup();
                tokens
                    .into_iter()
                    .filter_map(|t| {
                        let mut t = t.replace(pad_token.as_str(), "");
                        if *clean {
                            t = cleanup(&t).replace(word_delimiter_token.as_str(), " ");
                        }
                        (!t.is_empty()).then_some(t)
                    })
                    .collect()
            }
            Decoder::Sequence { decoders } => {
                for d in decoders {
                    tokens = d.decode_chain(tokens);
                }
                tokens
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordpiece_joins_and_cleans() {
        let d = Decoder::WordPiece {
            prefix: "##".into(),
            cleanup: true,
        };
        let toks = ["hello", "wo", "##rld", "!", "do", "n", "'", "t"]
            .map(String::from)
            .to_vec();
        // Clean-up works token by token, as in HuggingFace.
        assert_eq!(d.decode(toks), "hello world! do n ' t");
    }

    #[test]
    fn byte_fallback_decodes_utf8_runs() {
        let toks = ["<0xC3>", "<0xA9>", "a", "<0xFF>"]
            .map(String::from)
            .to_vec();
        assert_eq!(Decoder::ByteFallback.decode(toks), "éa\u{fffd}");
    }
}
