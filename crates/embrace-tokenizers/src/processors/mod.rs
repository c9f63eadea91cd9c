//! Post-processors: add special tokens around the encoded sequence(s) (`[CLS] A [SEP] B [SEP]`)
//! and set the type ids.

mod template;

pub use template::{Piece, SpecialToken, Template, TemplateProcessing};

use crate::encoding::Encoding;
use crate::error::Result;
use crate::pre_tokenizers::byte_level::ByteLevelOptions;
use serde::{Deserialize, Serialize};

/// A post-processor as `tokenizer.json` names it in its `post_processor` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum PostProcessor {
    /// A template such as `[CLS] $A [SEP]` / `[CLS] $A [SEP] $B:1 [SEP]:1`.
    TemplateProcessing(TemplateProcessing),
    /// GPT-2's byte-level post-processing: no special tokens; optionally trims the spaces
    /// included in token offsets.
    ByteLevel(ByteLevelOptions),
    /// BERT's `[CLS] A [SEP] (B [SEP])`.
    BertProcessing {
        /// The separator token and its id.
        sep: (String, u32),
        /// The classifier token and its id.
        cls: (String, u32),
    },
    /// RoBERTa's `<s> A </s> (</s> B </s>)`, every type id 0, optional offset trimming.
    RobertaProcessing {
        /// The separator token and its id.
        sep: (String, u32),
        /// The classifier token and its id.
        cls: (String, u32),
        /// Remove leading/trailing spaces from offsets.
        #[serde(default = "yes")]
        trim_offsets: bool,
        /// Whether the pre-tokenizer added a prefix space.
        #[serde(default = "yes")]
        add_prefix_space: bool,
    },
    /// Apply post-processors in order.
    Sequence {
        /// The post-processors.
        processors: Vec<PostProcessor>,
    },
}

fn yes() -> bool {
    true
}

/// Shrinks offsets so they exclude the (byte-level) spaces at the ends of each token.
fn trim_offsets(e: &mut Encoding, add_prefix_space: bool) {
    let space = crate::pre_tokenizers::byte_level::BYTES_CHAR[b' ' as usize];
    let is_space = |c: &char| *c == space || c.is_whitespace();
    for (i, (token, offsets)) in e.tokens.iter().zip(e.offsets.iter_mut()).enumerate() {
        let mut leading = token.chars().take_while(is_space).count();
        let trailing = token.chars().rev().take_while(is_space).count();
        if leading > 0 {
            let is_first = i == 0 || offsets.0 == 0;
            if is_first && add_prefix_space && leading == 1 {
                leading = 0;
            }
            offsets.0 = (offsets.0 + leading).min(offsets.1);
        }
        if trailing > 0 && offsets.1 >= trailing {
            offsets.1 = (offsets.1 - trailing).max(offsets.0);
        }
    }
    for o in &mut e.overflowing {
        trim_offsets(o, add_prefix_space);
    }
}

/// `[open] ids [close]` as one encoding of special tokens around `e` (RoBERTa's framing).
fn frame(e: &Encoding, open: &(String, u32), close: &(String, u32), seq: usize) -> Encoding {
    let n = e.len();
    let mut out = Encoding {
        ids: Vec::with_capacity(n + 2),
        tokens: Vec::with_capacity(n + 2),
        words: Vec::with_capacity(n + 2),
        offsets: Vec::with_capacity(n + 2),
        ..Encoding::default()
    };
    out.ids.push(open.1);
    out.ids.extend_from_slice(&e.ids);
    out.ids.push(close.1);
    out.tokens.push(open.0.clone());
    out.tokens.extend_from_slice(&e.tokens);
    out.tokens.push(close.0.clone());
    out.words.push(None);
    out.words.extend_from_slice(&e.words);
    out.words.push(None);
    out.offsets.push((0, 0));
    out.offsets.extend_from_slice(&e.offsets);
    out.offsets.push((0, 0));
    out.type_ids = vec![0; n + 2];
    out.special_tokens_mask = std::iter::once(1)
        .chain(std::iter::repeat_n(0, n))
        .chain(std::iter::once(1))
        .collect();
    out.attention_mask = vec![1; n + 2];
    out.sequence_ranges.insert(seq, 1..n + 1);
    out
}

impl PostProcessor {
    /// Number of special tokens added to a single input or a pair.
    pub fn added_tokens(&self, is_pair: bool) -> usize {
        match self {
            PostProcessor::TemplateProcessing(t) => t.added_tokens(is_pair),
            PostProcessor::ByteLevel(_) => 0,
            PostProcessor::BertProcessing { .. } => {
                if is_pair {
                    3
                } else {
                    2
                }
            }
            PostProcessor::RobertaProcessing { .. } => {
                if is_pair {
                    4
                } else {
                    2
                }
            }
            PostProcessor::Sequence { processors } => {
                processors.iter().map(|p| p.added_tokens(is_pair)).sum()
            }
        }
    }

    /// Like [`Self::single_ids`], written into `out`: the special tokens before the sequence,
    /// then `sequence` appends the sequence's ids, then the special tokens after it. One buffer,
    /// no copy of the sequence.
    pub(crate) fn single_ids_into<E>(
        &self,
        out: &mut Vec<u32>,
        sequence: impl FnOnce(&mut Vec<u32>) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            PostProcessor::TemplateProcessing(t) => t.single_ids_into(out, sequence),
            PostProcessor::BertProcessing { sep, cls }
            | PostProcessor::RobertaProcessing { sep, cls, .. } => {
                out.push(cls.1);
                sequence(out)?;
                out.push(sep.1);
                Ok(())
            }
            PostProcessor::ByteLevel(_) => sequence(out),
            PostProcessor::Sequence { .. } => {
                let mut ids = Vec::new();
                sequence(&mut ids)?;
                out.extend(self.single_ids(ids));
                Ok(())
            }
        }
    }

    /// The ids of a single sequence with the special tokens added (what [`Self::process`] gives
    /// for one sequence, ids only).
    pub fn single_ids(&self, ids: Vec<u32>) -> Vec<u32> {
        match self {
            PostProcessor::ByteLevel(_) => ids,
            PostProcessor::Sequence { processors } => {
                processors.iter().fold(ids, |ids, p| p.single_ids(ids))
            }
            _ => {
                let mut out = Vec::with_capacity(ids.len() + self.added_tokens(false));
                let _ = self.single_ids_into(&mut out, |out| {
                    out.extend_from_slice(&ids);
                    Ok::<(), std::convert::Infallible>(())
                });
                out
            }
        }
    }

    /// Adds the special tokens and merges a pair into one encoding.
    pub fn process(
        &self,
        encoding: Encoding,
        pair: Option<Encoding>,
        add_special_tokens: bool,
    ) -> Result<Encoding> {
        let mut encodings: Vec<Encoding> = std::iter::once(encoding).chain(pair).collect();
        for (i, e) in encodings.iter_mut().enumerate() {
            e.set_sequence_id(i);
            for o in &mut e.overflowing {
                o.set_sequence_id(i);
            }
            e.set_type_ids(i as u32);
        }
        let parts = self.process_encodings(encodings, add_special_tokens);
        Ok(Encoding::merge(parts, false))
    }

    /// One step of post-processing: encodings in, encodings (parts to merge) out.
    pub(crate) fn process_encodings(
        &self,
        mut encodings: Vec<Encoding>,
        add_special_tokens: bool,
    ) -> Vec<Encoding> {
        match self {
            PostProcessor::TemplateProcessing(t) => t.apply(encodings, add_special_tokens),
            PostProcessor::BertProcessing { sep, cls } => {
                TemplateProcessing::bert(sep.clone(), cls.clone())
                    .apply(encodings, add_special_tokens)
            }
            PostProcessor::ByteLevel(ByteLevelOptions {
                add_prefix_space,
                trim_offsets: trim,
                ..
            }) => {
                for (i, e) in encodings.iter_mut().enumerate() {
                    if *trim {
                        trim_offsets(e, *add_prefix_space);
                    }
                    e.set_sequence_id(i);
                }
                encodings
            }
            PostProcessor::RobertaProcessing {
                sep,
                cls,
                trim_offsets: trim,
                add_prefix_space,
            } => {
                for e in &mut encodings {
                    if *trim {
                        trim_offsets(e, *add_prefix_space);
                    }
                    e.set_type_ids(0);
                }
                if !add_special_tokens {
                    return encodings;
                }
                encodings
                    .iter_mut()
                    .enumerate()
                    .map(|(i, e)| {
                        let open = if i == 0 { cls } else { sep };
                        let mut framed = frame(e, open, sep, i);
                        framed.overflowing = std::mem::take(&mut e.overflowing)
                            .iter()
                            .map(|o| frame(o, open, sep, i))
                            .collect();
                        framed
                    })
                    .collect()
            }
            PostProcessor::Sequence { processors } => processors
                .iter()
                .fold(encodings, |e, p| p.process_encodings(e, add_special_tokens)),
        }
    }
}

/// What happens without a post-processor: the sequences are concatenated as they are.
pub(crate) fn default_process(encoding: Encoding, pair: Option<Encoding>) -> Encoding {
    match pair {
        None => encoding,
        Some(pair) => {
            let mut out = Encoding::default();
            for (i, mut e) in [encoding, pair].into_iter().enumerate() {
                e.set_sequence_id(i);
                out.merge_with(e, false);
            }
            out
        }
    }
}
