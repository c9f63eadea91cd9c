//! `TemplateProcessing`: special tokens placed by a template.

use crate::encoding::Encoding;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which input a template piece stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SequenceId {
    /// The first sequence.
    A,
    /// The second sequence of a pair.
    B,
}

/// One element of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Piece {
    /// An input sequence.
    Sequence {
        /// Which one.
        id: SequenceId,
        /// The type id its tokens get.
        type_id: u32,
    },
    /// A special token, by its name in `special_tokens`.
    SpecialToken {
        /// Its name.
        id: String,
        /// The type id it gets.
        type_id: u32,
    },
}

/// A template: a list of pieces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Template(pub Vec<Piece>);

/// A special token of a template; it may expand to several ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecialToken {
    /// Its name.
    pub id: String,
    /// Its ids.
    pub ids: Vec<u32>,
    /// Its token strings (as many as ids).
    pub tokens: Vec<String>,
}

/// The `TemplateProcessing` post-processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateProcessing {
    /// Template for a single sequence.
    pub single: Template,
    /// Template for a pair.
    pub pair: Template,
    /// The special tokens the templates name.
    #[serde(default)]
    pub special_tokens: BTreeMap<String, SpecialToken>,
}

impl TemplateProcessing {
    /// BERT's template.
    pub fn bert(sep: (String, u32), cls: (String, u32)) -> Self {
        let special = |name: &str, type_id| Piece::SpecialToken {
            id: name.to_owned(),
            type_id,
        };
        let seq = |id, type_id| Piece::Sequence { id, type_id };
        let single = Template(vec![
            special(&cls.0, 0),
            seq(SequenceId::A, 0),
            special(&sep.0, 0),
        ]);
        let pair = Template(vec![
            special(&cls.0, 0),
            seq(SequenceId::A, 0),
            special(&sep.0, 0),
            seq(SequenceId::B, 1),
            special(&sep.0, 1),
        ]);
        let mut special_tokens = BTreeMap::new();
        for (name, id) in [cls, sep] {
            special_tokens.insert(
                name.clone(),
                SpecialToken {
                    id: name.clone(),
                    ids: vec![id],
                    tokens: vec![name],
                },
            );
        }
        Self {
            single,
            pair,
            special_tokens,
        }
    }

    /// Checks that every special token the templates name is defined.
    pub fn validate(&self) -> Result<(), String> {
        for piece in self.single.0.iter().chain(&self.pair.0) {
            if let Piece::SpecialToken { id, .. } = piece {
                match self.special_tokens.get(id) {
                    None => {
                        return Err(format!(
                            "template names special token {id:?} which `special_tokens` does not define"
                        ));
                    }
                    Some(t) if t.ids.len() != t.tokens.len() => {
                        return Err(format!(
                            "special token {id:?} has {} ids but {} tokens",
                            t.ids.len(),
                            t.tokens.len()
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Number of special tokens the template adds.
    pub fn added_tokens(&self, is_pair: bool) -> usize {
        let template = if is_pair { &self.pair } else { &self.single };
        template
            .0
            .iter()
            .map(|p| match p {
                Piece::SpecialToken { id, .. } => {
                    self.special_tokens.get(id).map_or(0, |t| t.ids.len())
                }
                Piece::Sequence { .. } => 0,
            })
            .sum()
    }

    /// Writes the ids of a single sequence with the template's special tokens into `out`;
    /// `sequence` appends the sequence's ids where the template first places it.
    pub(crate) fn single_ids_into<E>(
        &self,
        out: &mut Vec<u32>,
        sequence: impl FnOnce(&mut Vec<u32>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut sequence = Some(sequence);
        let mut first: Option<(usize, usize)> = None;
        for piece in &self.single.0 {
            match piece {
                Piece::Sequence { .. } => match (sequence.take(), first) {
                    (Some(f), _) => {
                        let start = out.len();
                        f(out)?;
                        first = Some((start, out.len()));
                    }
                    // A template that repeats the sequence copies it.
                    (None, Some((s, e))) => out.extend_from_within(s..e),
                    (None, None) => {}
                },
                Piece::SpecialToken { id, .. } => {
                    if let Some(t) = self.special_tokens.get(id) {
                        out.extend_from_slice(&t.ids);
                    }
                }
            }
        }
        Ok(())
    }

    /// The ids of a single sequence with the template's special tokens.
    pub fn single_ids(&self, ids: Vec<u32>) -> Vec<u32> {
        let mut out = Vec::with_capacity(ids.len() + self.added_tokens(false));
        let _ = self.single_ids_into(&mut out, |out| {
            out.extend_from_slice(&ids);
            Ok::<(), std::convert::Infallible>(())
        });
        out
    }

    /// Applies the template: the parts (special tokens and sequences) in order, to be merged.
    pub fn apply(&self, encodings: Vec<Encoding>, add_special_tokens: bool) -> Vec<Encoding> {
        let template = if encodings.len() == 2 {
            &self.pair
        } else {
            &self.single
        };
        let mut encodings: Vec<Option<Encoding>> = encodings.into_iter().map(Some).collect();
        let mut parts = Vec::with_capacity(template.0.len());
        for (k, piece) in template.0.iter().enumerate() {
            match piece {
                Piece::Sequence { id, type_id } => {
                    let i = usize::from(*id == SequenceId::B);
                    // Move the sequence into place on its last use; copy it only if it repeats.
                    let used_again = template.0[k + 1..]
                        .iter()
                        .any(|p| matches!(p, Piece::Sequence { id: other, .. } if other == id));
                    let Some(slot) = encodings.get_mut(i) else {
                        continue;
                    };
                    let e = if used_again {
                        slot.clone()
                    } else {
                        slot.take()
                    };
                    if let Some(mut e) = e {
                        e.set_type_ids(*type_id);
                        e.set_sequence_id(i);
                        parts.push(e);
                    }
                }
                Piece::SpecialToken { id, type_id } => {
                    if !add_special_tokens {
                        continue;
                    }
                    let Some(tok) = self.special_tokens.get(id) else {
                        continue;
                    };
                    let n = tok.ids.len();
                    parts.push(Encoding {
                        ids: tok.ids.clone(),
                        type_ids: vec![*type_id; n],
                        tokens: tok.tokens.clone(),
                        words: vec![None; n],
                        offsets: vec![(0, 0); n],
                        special_tokens_mask: vec![1; n],
                        attention_mask: vec![1; n],
                        ..Encoding::default()
                    });
                }
            }
        }
        parts
    }
}
