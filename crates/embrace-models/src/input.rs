//! Model inputs: a padded batch as transformers takes it, and its packed (unpadded) form.

use std::ops::Range;

use candle_core::Tensor;
use embrace_tokenizers::Encoding;

use crate::error::{ModelError, Result};

/// A batch of token sequences, padded to one length as `transformers` takes it.
///
/// Rows are sequences, stored row-major. Positions where `attention_mask` is 0 are padding: they
/// are skipped by the forward pass, and their rows in the outputs are zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Token ids, `[batch_size * seq_len]`.
    pub input_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding, `[batch_size * seq_len]`.
    pub attention_mask: Vec<u32>,
    /// Segment ids (`token_type_ids`), `[batch_size * seq_len]`; all zero when absent.
    pub token_type_ids: Option<Vec<u32>>,
    /// Number of sequences.
    pub batch_size: usize,
    /// Padded length of every sequence.
    pub seq_len: usize,
}

impl Batch {
    /// A batch from row-major padded arrays; checks that the lengths agree.
    pub fn new(
        input_ids: Vec<u32>,
        attention_mask: Vec<u32>,
        token_type_ids: Option<Vec<u32>>,
        batch_size: usize,
        seq_len: usize,
    ) -> Result<Self> {
        let n = batch_size * seq_len;
        if input_ids.len() != n || attention_mask.len() != n {
            return Err(ModelError::Input(format!(
                "input_ids has {} and attention_mask {} values for a {batch_size}x{seq_len} batch",
                input_ids.len(),
                attention_mask.len()
            )));
        }
        if let Some(types) = &token_type_ids
            && types.len() != n
        {
            return Err(ModelError::Input(format!(
                "token_type_ids has {} values for a {batch_size}x{seq_len} batch",
                types.len()
            )));
        }
        Ok(Self {
            input_ids,
            attention_mask,
            token_type_ids,
            batch_size,
            seq_len,
        })
    }

    /// A right-padded batch from unpadded sequences (and their segment ids, if any).
    pub fn from_sequences(
        sequences: &[&[u32]],
        type_ids: Option<&[&[u32]]>,
        pad_id: u32,
    ) -> Result<Self> {
        let seq_len = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let batch_size = sequences.len();
        let mut input_ids = vec![pad_id; batch_size * seq_len];
        let mut attention_mask = vec![0; batch_size * seq_len];
        for (row, seq) in sequences.iter().enumerate() {
            input_ids[row * seq_len..row * seq_len + seq.len()].copy_from_slice(seq);
            attention_mask[row * seq_len..row * seq_len + seq.len()].fill(1);
        }
        let token_type_ids = match type_ids {
            None => None,
            Some(types) => {
                if types.len() != batch_size {
                    return Err(ModelError::Input(
                        "one token_type_ids row per sequence".into(),
                    ));
                }
                let mut out = vec![0; batch_size * seq_len];
                for (row, (t, s)) in types.iter().zip(sequences).enumerate() {
                    if t.len() != s.len() {
                        return Err(ModelError::Input(format!(
                            "sequence {row} has {} ids but {} token_type_ids",
                            s.len(),
                            t.len()
                        )));
                    }
                    out[row * seq_len..row * seq_len + t.len()].copy_from_slice(t);
                }
                Some(out)
            }
        };
        Self::new(
            input_ids,
            attention_mask,
            token_type_ids,
            batch_size,
            seq_len,
        )
    }

    /// A batch from tokenizer encodings, right-padded to the longest (the padding already in
    /// the encodings, if any, is kept with its attention mask).
    /// Takes encodings or references to them (`&[Encoding]` or `&[&Encoding]`), so callers
    /// holding references need not copy.
    pub fn from_encodings<E: std::borrow::Borrow<Encoding>>(
        encodings: &[E],
        pad_id: u32,
    ) -> Result<Self> {
        let seq_len = encodings
            .iter()
            .map(|e| e.borrow().len())
            .max()
            .unwrap_or(0);
        let batch_size = encodings.len();
        let mut input_ids = vec![pad_id; batch_size * seq_len];
        let mut attention_mask = vec![0; batch_size * seq_len];
        let mut types = vec![0; batch_size * seq_len];
        for (row, e) in encodings.iter().enumerate() {
            let e = e.borrow();
            let at = row * seq_len;
            input_ids[at..at + e.len()].copy_from_slice(e.ids());
            attention_mask[at..at + e.len()].copy_from_slice(e.attention_mask());
            types[at..at + e.len()].copy_from_slice(e.type_ids());
        }
        Self::new(input_ids, attention_mask, Some(types), batch_size, seq_len)
    }

    /// A batch from `[batch, seq]` integer tensors (any integer dtype).
    pub fn from_tensors(
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        token_type_ids: Option<&Tensor>,
    ) -> Result<Self> {
        let (batch_size, seq_len) = input_ids.dims2()?;
        let flat = |t: &Tensor| -> Result<Vec<u32>> {
            if t.dims() != [batch_size, seq_len] {
                return Err(ModelError::Input(format!(
                    "tensor of shape {:?} does not match input_ids {:?}",
                    t.dims(),
                    [batch_size, seq_len]
                )));
            }
            let values = t
                .flatten_all()?
                .to_dtype(candle_core::DType::I64)?
                .to_vec1::<i64>()?;
            values
                .into_iter()
                .map(|v| {
                    u32::try_from(v)
                        .map_err(|_| ModelError::Input(format!("negative or huge id {v}")))
                })
                .collect()
        };
        let ids = flat(input_ids)?;
        let mask = match attention_mask {
            Some(m) => flat(m)?,
            None => vec![1; ids.len()],
        };
        let types = token_type_ids.map(flat).transpose()?;
        Self::new(ids, mask, types, batch_size, seq_len)
    }

    /// The real length of each sequence (its number of attended tokens).
    pub fn lengths(&self) -> Vec<usize> {
        if self.seq_len == 0 {
            return vec![0; self.batch_size];
        }
        self.attention_mask
            .chunks_exact(self.seq_len)
            .map(|row| row.iter().filter(|&&m| m != 0).count())
            .collect()
    }
}

/// How an architecture numbers positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PositionRule {
    /// The index in the padded row (BERT, DistilBERT, ELECTRA, ModernBERT).
    PaddedIndex,
    /// RoBERTa's rule: `padding_idx + 1 + (number of non-pad ids before)`, `padding_idx` for pads.
    Roberta { padding_idx: u32 },
}

/// The attended tokens of a batch, packed without padding.
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    /// For each packed token, its index in the padded `[batch * seq_len]` layout.
    pub token_index: Vec<usize>,
    /// The packed token range of each sequence.
    pub sequences: Vec<Range<usize>>,
    /// Token ids.
    pub ids: Vec<u32>,
    /// Segment ids.
    pub type_ids: Vec<u32>,
    /// Position ids.
    pub positions: Vec<u32>,
}

impl Packed {
    pub(crate) fn new(batch: &Batch, rule: PositionRule) -> Self {
        let total: usize = batch.attention_mask.iter().filter(|&&m| m != 0).count();
        let mut packed = Self {
            token_index: Vec::with_capacity(total),
            sequences: Vec::with_capacity(batch.batch_size),
            ids: Vec::with_capacity(total),
            type_ids: Vec::with_capacity(total),
            positions: Vec::with_capacity(total),
        };
        for row in 0..batch.batch_size {
            let start = packed.ids.len();
            let mut roberta_count = 0u32;
            for col in 0..batch.seq_len {
                let at = row * batch.seq_len + col;
                let id = batch.input_ids[at];
                let position = match rule {
                    PositionRule::PaddedIndex => col as u32,
                    PositionRule::Roberta { padding_idx } => {
                        if id == padding_idx {
                            padding_idx
                        } else {
                            roberta_count += 1;
                            padding_idx + roberta_count
                        }
                    }
                };
                if batch.attention_mask[at] == 0 {
                    continue;
                }
                packed.token_index.push(at);
                packed.ids.push(id);
                packed
                    .type_ids
                    .push(batch.token_type_ids.as_ref().map_or(0, |t| t[at]));
                packed.positions.push(position);
            }
            packed.sequences.push(start..packed.ids.len());
        }
        packed
    }

    /// Splits the batch into groups of whole consecutive sequences of at most `budget` tokens
    /// each (a longer sequence forms a group alone), for the encoder only: `token_index` is
    /// left empty in the parts.
    pub(crate) fn split(&self, budget: usize) -> Vec<Packed> {
        let mut parts = Vec::new();
        let mut first = 0;
        while first < self.sequences.len() {
            let start = self.sequences[first].start;
            let mut last = first + 1;
            while last < self.sequences.len() && self.sequences[last].end - start <= budget {
                last += 1;
            }
            let end = self.sequences[last - 1].end;
            parts.push(Packed {
                token_index: Vec::new(),
                sequences: self.sequences[first..last]
                    .iter()
                    .map(|r| r.start - start..r.end - start)
                    .collect(),
                ids: self.ids[start..end].to_vec(),
                type_ids: self.type_ids[start..end].to_vec(),
                positions: self.positions[start..end].to_vec(),
            });
            first = last;
        }
        parts
    }

    /// Number of packed tokens.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}
