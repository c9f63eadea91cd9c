//! `map` with a tokenizer: the columns transformers models and the trainer take.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Builder, Int32Builder, ListBuilder, RecordBatch, StringArray};
use arrow::compute;
use arrow::datatypes::{DataType, Field, Schema};
use embrace_tokenizers::{OffsetType, Tokenizer};

use crate::dataset::Dataset;
use crate::error::{DatasetError, Result};

fn list_i32(rows: impl Iterator<Item = Vec<i32>>) -> ArrayRef {
    let mut b = ListBuilder::new(Int32Builder::new());
    for row in rows {
        b.values().append_slice(&row);
        b.append(true);
    }
    Arc::new(b.finish())
}

fn list_i8(rows: impl Iterator<Item = Vec<i8>>) -> ArrayRef {
    let mut b = ListBuilder::new(Int8Builder::new());
    for row in rows {
        b.values().append_slice(&row);
        b.append(true);
    }
    Arc::new(b.finish())
}

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
            let inputs: Vec<(&str, Option<&str>)> =
                text.iter().map(|t| (t.unwrap_or(""), None)).collect();
            let encodings = tokenizer
                .encode_batch(&inputs, true, OffsetType::Byte)
                .map_err(|e| DatasetError::Argument(format!("tokenize: {e}")))?;
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
            columns.push(list_i32(
                encodings
                    .iter()
                    .map(|e| e.ids().iter().map(|&i| i as i32).collect()),
            ));
            fields.push(Field::new(
                "token_type_ids",
                DataType::List(item(DataType::Int8)),
                true,
            ));
            columns.push(list_i8(
                encodings
                    .iter()
                    .map(|e| e.type_ids().iter().map(|&i| i as i8).collect()),
            ));
            fields.push(Field::new(
                "attention_mask",
                DataType::List(item(DataType::Int8)),
                true,
            ));
            columns.push(list_i8(
                encodings
                    .iter()
                    .map(|e| e.attention_mask().iter().map(|&i| i as i8).collect()),
            ));
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
                .map_err(|e| DatasetError::arrow("tokenize", e))
        })
    }
}
