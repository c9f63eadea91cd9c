//! Post-processors: add special tokens around the encoded sequence(s) (`[CLS] A [SEP] B [SEP]`)
//! and set the type ids.

mod template;

pub use template::{Piece, SpecialToken, Template, TemplateProcessing};

use crate::encoding::Encoding;
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// A post-processor as `tokenizer.json` names it in its `post_processor` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum PostProcessor {
    /// A template such as `[CLS] $A [SEP]` / `[CLS] $A [SEP] $B:1 [SEP]:1`.
    TemplateProcessing(TemplateProcessing),
    /// BERT's `[CLS] A [SEP] (B [SEP])`.
    BertProcessing {
        /// The separator token and its id.
        sep: (String, u32),
        /// The classifier token and its id.
        cls: (String, u32),
    },
}

impl PostProcessor {
    /// Number of special tokens added to a single input or a pair.
    pub fn added_tokens(&self, is_pair: bool) -> usize {
        match self {
            PostProcessor::TemplateProcessing(t) => t.added_tokens(is_pair),
            PostProcessor::BertProcessing { .. } => {
                if is_pair {
                    3
                } else {
                    2
                }
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
        match self {
            PostProcessor::TemplateProcessing(t) => {
                Ok(t.process(encoding, pair, add_special_tokens))
            }
            PostProcessor::BertProcessing { sep, cls } => {
                let t = TemplateProcessing::bert(sep.clone(), cls.clone());
                Ok(t.process(encoding, pair, add_special_tokens))
            }
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
