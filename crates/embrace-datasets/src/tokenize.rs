//! `map` with a tokenizer: the columns transformers models and the trainer take.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Builder, Int32Builder, ListBuilder, RecordBatch, StringArray};
use arrow::compute;
use arrow::datatypes::{DataType, Field, Schema};
use embrace_tokenizers::{OffsetType, Tokenizer};

use crate::dataset::Dataset;
use crate::error::{DatasetError, Result};

/// Texts encoded at a time within a record batch: padding to the longest (when the tokenizer
/// pads) applies per chunk, as it applies per `map` batch of 1000 rows in `datasets`.
const ENCODE_CHUNK: usize = 1000;

impl Dataset {
    /// Tokenizes a text column (in parallel, with the tokenizer's own truncation and padding)
    /// and adds `input_ids`, `token_type_ids` and `attention_mask` list columns, typed as
    /// `datasets` types them after a tokenizer `map` (int32 ids, int8 masks). Null texts become
    /// empty strings.
    pub fn tokenize(&self, tokenizer: &Tokenizer, text_column: &str) -> Result<Self> {
        let name = format!("tokenize:{text_column}");
        self.map_batches(&name, |batch| {
            let column = batch
                .column_by_name(text_column)
                .ok_or_else(|| DatasetError::Column(format!("no column `{text_column}`")))?;
            let text = compute::cast(column, &DataType::Utf8)
                .map_err(|e| DatasetError::arrow("tokenize", e))?;
            let text = text.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                DatasetError::Column(format!("column `{text_column}` is not text"))
            })?;
            // Encode in chunks so that only one chunk's full encodings (tokens, offsets) are
            // alive at a time; only the three columns are kept.
            let mut ids = ListBuilder::new(Int32Builder::new());
            let mut type_ids = ListBuilder::new(Int8Builder::new());
            let mut mask = ListBuilder::new(Int8Builder::new());
            let texts: Vec<&str> = text.iter().map(|t| t.unwrap_or("")).collect();
            for chunk in texts.chunks(ENCODE_CHUNK) {
                let inputs: Vec<(&str, Option<&str>)> = chunk.iter().map(|&t| (t, None)).collect();
                let encodings = tokenizer
                    .encode_batch(&inputs, true, OffsetType::Byte)
                    .map_err(|e| DatasetError::Argument(format!("tokenize: {e}")))?;
                for e in &encodings {
                    ids.values().extend(e.ids().iter().map(|&i| Some(i as i32)));
                    ids.append(true);
                    type_ids
                        .values()
                        .extend(e.type_ids().iter().map(|&i| Some(i as i8)));
                    type_ids.append(true);
                    mask.values()
                        .extend(e.attention_mask().iter().map(|&i| Some(i as i8)));
                    mask.append(true);
                }
            }
            let mut fields: Vec<Field> = Vec::new();
            let mut columns: Vec<ArrayRef> = Vec::new();
            for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
                if !matches!(
                    f.name().as_str(),
                    "input_ids" | "token_type_ids" | "attention_mask"
                ) {
                    fields.push(f.as_ref().clone());
                    columns.push(c.clone());
                }
            }
            let item = |t: DataType| Arc::new(Field::new("item", t, true));
            fields.push(Field::new(
                "input_ids",
                DataType::List(item(DataType::Int32)),
                true,
            ));
            columns.push(Arc::new(ids.finish()));
            fields.push(Field::new(
                "token_type_ids",
                DataType::List(item(DataType::Int8)),
                true,
            ));
            columns.push(Arc::new(type_ids.finish()));
            fields.push(Field::new(
                "attention_mask",
                DataType::List(item(DataType::Int8)),
                true,
            ));
            columns.push(Arc::new(mask.finish()));
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
                .map_err(|e| DatasetError::arrow("tokenize", e))
        })
    }
}
