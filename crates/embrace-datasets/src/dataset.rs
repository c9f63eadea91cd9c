//! [`Dataset`]: a table of Arrow record batches with `datasets` features, and its transforms.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::compute;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::Value;

use crate::error::{DatasetError, Result};
use crate::features::{Feature, Features};
use crate::mapped::MappedPages;
use crate::rng::SplitMix64;
use crate::spill::{BatchSink, Collected, batch_bytes};

/// A table: Arrow record batches with `datasets` features and a fingerprint.
///
/// Transforms return new datasets; each new fingerprint hashes the previous one with the
/// transform and its arguments, as `datasets` does, so a pipeline of transforms has a stable
/// identity.
///
/// Batches may point into memory-mapped Arrow files (a loaded `save_to_disk` folder, a cache
/// entry, or a large result spilled to disk); `pages` lists those
/// mappings so that passes over the data can release the pages they have read.
#[derive(Debug, Clone)]
pub struct Dataset {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    features: Features,
    fingerprint: String,
    pages: Vec<MappedPages>,
}

/// Bytes a writer passes between two releases of the mapped pages it has read.
const RELEASE_EVERY_BYTES: usize = 64 << 20;

/// Batches processed in parallel between two releases of the input's mapped pages, per thread.
const GROUP_BATCHES_PER_THREAD: usize = 2;

fn group_len() -> usize {
    (rayon::current_num_threads() * GROUP_BATCHES_PER_THREAD).max(1)
}

/// The FNV-1a offset basis: the hash of nothing.
pub(crate) const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Continues a 64-bit FNV-1a hash `h` over `bytes` (for hashing a file chunk by chunk).
pub(crate) fn fnv_extend(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// 64-bit FNV-1a over byte strings, each followed by a 0xff separator.
fn fnv_bytes<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    parts.into_iter().fold(FNV_START, |h, part| {
        fnv_extend(fnv_extend(h, part), &[0xff])
    })
}

/// 64-bit FNV-1a, a stable hash for fingerprints.
pub(crate) fn fnv(parts: &[&str]) -> String {
    format!("{:016x}", fnv_bytes(parts.iter().map(|p| p.as_bytes())))
}

/// A seeded random permutation of `0..n` (SplitMix64 + Fisher-Yates): the same seed gives the
/// same order on every machine.
pub(crate) fn permutation(n: usize, seed: u64) -> Vec<usize> {
    SplitMix64::new(seed).permutation(n)
}

/// Rows per output batch of [`Dataset::select`] (and so of shuffle and the splits): small
/// enough for parallel transforms afterwards, large enough to keep per-batch overhead low.
const SELECT_BATCH_ROWS: usize = 8192;

/// The number of test rows of a split of `n` rows: `test_size` below 1 is a fraction (rounded
/// up), otherwise a count; both splits must keep at least one row.
fn test_rows(test_size: f64, n: usize) -> Result<usize> {
    let n_test = if test_size < 1.0 {
        (test_size * n as f64).ceil() as usize
    } else {
        test_size as usize
    };
    if test_size <= 0.0 || n_test == 0 || n_test >= n {
        return Err(DatasetError::Argument(format!(
            "test_size {test_size} leaves no rows for train or test ({n} rows)"
        )));
    }
    Ok(n_test)
}

impl Dataset {
    /// A dataset from record batches; features come from the schema's `huggingface` metadata
    /// or are inferred from the Arrow types.
    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self> {
        let features = Features::from_schema_metadata(&schema)?;
        let fingerprint = fnv(&[
            "from_batches",
            &schema.to_string(),
            &batches
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>()
                .to_string(),
        ]);
        Self::with_features(schema, batches, features, fingerprint)
    }

    /// A dataset with explicit features (their Arrow types must match the batches').
    pub fn with_features(
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        features: Features,
        fingerprint: String,
    ) -> Result<Self> {
        let stored = features.to_schema()?;
        let schema = if schema.fields().len() == stored.fields().len()
            && schema
                .fields()
                .iter()
                .zip(stored.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
        {
            Arc::new(stored)
        } else {
            schema
        };
        let batches = batches
            .into_iter()
            .map(|b| {
                RecordBatch::try_new(schema.clone(), b.columns().to_vec())
                    .map_err(|e| DatasetError::arrow("schema", e))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            schema,
            batches,
            features,
            fingerprint,
            pages: Vec::new(),
        })
    }

    /// The same dataset under another fingerprint.
    pub(crate) fn with_fingerprint(mut self, fingerprint: String) -> Self {
        self.fingerprint = fingerprint;
        self
    }

    /// Also lists `pages` among the mappings this dataset's batches point into.
    pub(crate) fn with_pages(mut self, pages: impl IntoIterator<Item = MappedPages>) -> Self {
        self.pages.extend(pages);
        self.pages.retain(MappedPages::is_alive);
        self
    }

    /// Releases the resident pages of the mapped files behind this dataset (they are read
    /// back from the page cache on the next access). Passes over large data call this as they
    /// go, so memory use stays bounded by what is being processed, not by the data's size.
    pub(crate) fn release_pages(&self) {
        for p in &self.pages {
            p.release();
        }
    }

    /// Runs `f` on every batch, in parallel a group at a time and in order, collecting the
    /// outputs in a [`BatchSink`] (spilled to disk when large) and releasing the input's pages
    /// after each group. The result's schema is the first output's, without metadata (this
    /// dataset's when there is no batch).
    fn transform_batches(
        &self,
        f: impl Fn(&RecordBatch) -> Result<RecordBatch> + Sync,
    ) -> Result<Collected> {
        use rayon::prelude::*;
        let mut sink: Option<BatchSink> = None;
        for group in self.batches.chunks(group_len()) {
            let outputs = group.par_iter().map(&f).collect::<Result<Vec<_>>>()?;
            for batch in outputs {
                sink.get_or_insert_with(|| {
                    BatchSink::new(Arc::new(Schema::new(batch.schema().fields().clone())))
                })
                .push(batch)?;
            }
            self.release_pages();
        }
        sink.unwrap_or_else(|| BatchSink::new(self.schema.clone()))
            .finish()
    }

    /// Calls `f` on the rows `start..end` as slices of at most `max_rows` rows (see
    /// [`Dataset::slices`]), releasing the mapped pages behind them every
    /// [`RELEASE_EVERY_BYTES`] passed: the loop of every writer.
    pub(crate) fn for_each_slice(
        &self,
        start: usize,
        end: usize,
        max_rows: usize,
        mut f: impl FnMut(&RecordBatch) -> Result<()>,
    ) -> Result<()> {
        let mut since_release = 0;
        for slice in self.slices(start, end, max_rows) {
            f(&slice)?;
            since_release += batch_bytes(&slice);
            if since_release >= RELEASE_EVERY_BYTES {
                self.release_pages();
                since_release = 0;
            }
        }
        Ok(())
    }

    /// A dataset from JSON rows (objects), with inferred types.
    pub fn from_json_rows(rows: &[Value]) -> Result<Self> {
        let text: String = rows.iter().map(|r| r.to_string() + "\n").collect();
        crate::io::read_json_bytes(text.as_bytes(), "rows")
    }

    /// The Arrow schema (with the `huggingface` metadata).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The record batches.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The features.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The fingerprint: a hash of how this dataset was made.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Column names.
    pub fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The rows `start..end` as slices of the stored batches (no copy), each at most
    /// `max_rows` long.
    pub(crate) fn slices(&self, start: usize, end: usize, max_rows: usize) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        let mut offset = 0;
        for batch in &self.batches {
            let (b_start, b_end) = (offset, offset + batch.num_rows());
            offset = b_end;
            let (from, to) = (start.max(b_start), end.min(b_end));
            let mut row = from;
            while row < to {
                let n = (to - row).min(max_rows.max(1));
                out.push(batch.slice(row - b_start, n));
                row += n;
            }
        }
        out
    }

    /// All rows in one batch.
    pub fn to_batch(&self) -> Result<RecordBatch> {
        compute::concat_batches(&self.schema, &self.batches)
            .map_err(|e| DatasetError::arrow("concat", e))
    }

    /// A dataset made from this one by `step` (the fingerprint's transform and arguments).
    fn derive(
        &self,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        features: Features,
        step: &[&str],
    ) -> Result<Self> {
        let mut parts = vec![self.fingerprint.as_str()];
        parts.extend_from_slice(step);
        Ok(Self::with_features(schema, batches, features, fnv(&parts))?
            .with_pages(self.pages.iter().cloned()))
    }

    /// The rows at `indices`, in that order. Rows are gathered straight from the stored
    /// batches (no concatenation first) into batches of at most 8192 rows
    /// (`SELECT_BATCH_ROWS`), in parallel.
    pub fn select(&self, indices: &[usize]) -> Result<Self> {
        use rayon::prelude::*;
        let n = self.num_rows();
        if let Some(bad) = indices.iter().find(|&&i| i >= n) {
            return Err(DatasetError::Argument(format!(
                "index {bad} is out of range for {n} rows"
            )));
        }
        // starts[b] is the first row of batch b.
        let starts: Vec<usize> = self
            .batches
            .iter()
            .scan(0, |row, b| {
                let start = *row;
                *row += b.num_rows();
                Some(start)
            })
            .collect();
        let locate = |i: usize| {
            let b = starts.partition_point(|&s| s <= i) - 1;
            (b, i - starts[b])
        };
        let columns: Vec<Vec<&dyn Array>> = (0..self.schema.fields().len())
            .map(|c| self.batches.iter().map(|b| b.column(c).as_ref()).collect())
            .collect();
        // Random rows touch pages all over a mapped input (and the kernel maps whole folios
        // around each touch), so rows are gathered one column at a time, each column into its
        // own sink, releasing the input's pages after every round: what is resident is at most
        // about one input column, not the whole table.
        let chunks: Vec<&[usize]> = indices.chunks(SELECT_BATCH_ROWS).collect();
        let mut gathered: Vec<Vec<ArrayRef>> = Vec::with_capacity(columns.len());
        let mut pages = Vec::new();
        for (c, sources) in columns.iter().enumerate() {
            let schema = Arc::new(Schema::new(vec![self.schema.field(c).clone()]));
            let mut sink = BatchSink::new(schema.clone());
            for round in chunks.chunks(group_len()) {
                let outputs = round
                    .par_iter()
                    .map(|chunk| {
                        let pairs: Vec<(usize, usize)> = chunk.iter().map(|&i| locate(i)).collect();
                        let array = compute::interleave(sources, &pairs)
                            .map_err(|e| DatasetError::arrow("select", e))?;
                        RecordBatch::try_new(schema.clone(), vec![array])
                            .map_err(|e| DatasetError::arrow("select", e))
                    })
                    .collect::<Result<Vec<_>>>()?;
                for batch in outputs {
                    sink.push(batch)?;
                }
                self.release_pages();
            }
            let collected = sink.finish()?;
            pages.extend(collected.pages);
            gathered.push(
                collected
                    .batches
                    .iter()
                    .map(|b| b.column(0).clone())
                    .collect(),
            );
        }
        // Every column's sink holds one batch per chunk, in order.
        let batches = (0..chunks.len())
            .map(|k| {
                RecordBatch::try_new(
                    self.schema.clone(),
                    gathered.iter().map(|column| column[k].clone()).collect(),
                )
                .map_err(|e| DatasetError::arrow("select", e))
            })
            .collect::<Result<Vec<_>>>()?;
        let key = format!(
            "{:016x}",
            indices
                .iter()
                .fold(FNV_START, |h, &i| fnv_extend(h, &(i as u64).to_le_bytes()))
        );
        Ok(self
            .derive(
                self.schema.clone(),
                batches,
                self.features.clone(),
                &["select", &key],
            )?
            .with_pages(pages))
    }

    /// The first `n` rows.
    pub fn take(&self, n: usize) -> Result<Self> {
        self.select(&(0..n.min(self.num_rows())).collect::<Vec<_>>())
    }

    /// All rows but the first `n`.
    pub fn skip(&self, n: usize) -> Result<Self> {
        self.select(&(n.min(self.num_rows())..self.num_rows()).collect::<Vec<_>>())
    }

    /// The rows in a seeded random order.
    pub fn shuffle(&self, seed: u64) -> Result<Self> {
        self.select(&permutation(self.num_rows(), seed))
    }

    /// The rows for which `keep(row)` is true; rows are given as JSON objects.
    pub fn filter(&self, keep: impl Fn(&serde_json::Map<String, Value>) -> bool) -> Result<Self> {
        let rows = self.rows(0, self.num_rows())?;
        let mask: Vec<bool> = rows
            .iter()
            .map(|r| r.as_object().is_some_and(&keep))
            .collect();
        let mut rows_before = 0;
        let batches = self
            .batches
            .iter()
            .map(|b| {
                let keep =
                    BooleanArray::from(mask[rows_before..rows_before + b.num_rows()].to_vec());
                rows_before += b.num_rows();
                compute::filter_record_batch(b, &keep).map_err(|e| DatasetError::arrow("filter", e))
            })
            .collect::<Result<Vec<_>>>()?;
        self.derive(
            self.schema.clone(),
            batches,
            self.features.clone(),
            &["filter"],
        )
    }

    /// Batched filter (`datasets`' `filter(batched=True)`): `keep` returns one boolean per row
    /// of a record batch (null drops the row). Batches are filtered in parallel; `name`
    /// identifies the predicate in the fingerprint.
    pub fn filter_batches(
        &self,
        name: &str,
        keep: impl Fn(&RecordBatch) -> Result<BooleanArray> + Sync,
    ) -> Result<Self> {
        let collected = self.transform_batches(|b| {
            let mask = keep(b)?;
            if mask.len() != b.num_rows() {
                return Err(DatasetError::Argument(format!(
                    "filter `{name}` returned {} values for a batch of {} rows",
                    mask.len(),
                    b.num_rows()
                )));
            }
            if mask.null_count() == 0 && mask.true_count() == b.num_rows() {
                return Ok(b.clone()); // every row kept: share the batch
            }
            compute::filter_record_batch(b, &mask).map_err(|e| DatasetError::arrow("filter", e))
        })?;
        Ok(self
            .derive(
                self.schema.clone(),
                collected.batches,
                self.features.clone(),
                &["filter", name],
            )?
            .with_pages(collected.pages))
    }

    /// Applies `f` to every record batch (batched map): it may add, replace or remove columns.
    /// Batches are mapped in parallel on all cores; their order is kept.
    pub fn map_batches(
        &self,
        name: &str,
        f: impl Fn(&RecordBatch) -> Result<RecordBatch> + Sync,
    ) -> Result<Self> {
        let collected = self.transform_batches(f)?;
        let mut features = Features::from_schema(&collected.schema)?;
        // Columns that kept their type keep their feature (ClassLabel names survive a map).
        for (n, f) in features.0.iter_mut() {
            if let Some(old) = self.features.get(n)
                && old.arrow_type().ok() == f.arrow_type().ok()
            {
                *f = old.clone();
            }
        }
        // `with_features` re-labels the batches with the features' schema.
        Ok(self
            .derive(
                collected.schema,
                collected.batches,
                features,
                &["map", name],
            )?
            .with_pages(collected.pages))
    }

    fn column_index(&self, name: &str) -> Result<usize> {
        self.schema.index_of(name).map_err(|_| {
            DatasetError::Column(format!(
                "no column `{name}`; columns: {}",
                self.column_names().join(", ")
            ))
        })
    }

    /// Column `i` over all rows, as one array.
    fn concat_column(&self, i: usize) -> Result<ArrayRef> {
        let parts: Vec<&dyn Array> = self.batches.iter().map(|b| b.column(i).as_ref()).collect();
        if parts.is_empty() {
            return Ok(arrow::array::new_empty_array(
                self.schema.field(i).data_type(),
            ));
        }
        compute::concat(&parts).map_err(|e| DatasetError::arrow("concat", e))
    }

    /// The schema (without metadata) with field `i` replaced by `field`.
    fn schema_with_field(&self, i: usize, field: Field) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[i] = field;
        Arc::new(Schema::new(fields))
    }

    /// The batches with column `i` replaced by `column` (all rows, in order), which is cut
    /// into the batches' row ranges; the other columns are shared, not copied. The new column
    /// is nullable and typed as `column`.
    fn replace_column(&self, i: usize, column: ArrayRef) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let name = self.schema.field(i).name();
        let schema = self.schema_with_field(i, Field::new(name, column.data_type().clone(), true));
        let mut offset = 0;
        let batches = self
            .batches
            .iter()
            .map(|b| {
                let mut columns = b.columns().to_vec();
                columns[i] = column.slice(offset, b.num_rows());
                offset += b.num_rows();
                RecordBatch::try_new(schema.clone(), columns)
                    .map_err(|e| DatasetError::arrow("replace column", e))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((schema, batches))
    }

    /// Only these columns, in this order.
    pub fn select_columns(&self, names: &[&str]) -> Result<Self> {
        let idx = names
            .iter()
            .map(|n| self.column_index(n))
            .collect::<Result<Vec<_>>>()?;
        let batches = self
            .batches
            .iter()
            .map(|b| {
                b.project(&idx)
                    .map_err(|e| DatasetError::arrow("select_columns", e))
            })
            .collect::<Result<Vec<_>>>()?;
        let schema = Arc::new(
            self.schema
                .project(&idx)
                .map_err(|e| DatasetError::arrow("select_columns", e))?,
        );
        let features = Features(idx.iter().map(|&i| self.features.0[i].clone()).collect());
        self.derive(
            schema,
            batches,
            features,
            &["select_columns", &names.join(",")],
        )
    }

    /// Without these columns.
    pub fn remove_columns(&self, names: &[&str]) -> Result<Self> {
        for n in names {
            self.column_index(n)?;
        }
        let keep: Vec<&str> = self
            .features
            .names()
            .into_iter()
            .filter(|n| !names.contains(n))
            .collect();
        self.select_columns(&keep)
    }

    /// With a column renamed.
    pub fn rename_column(&self, from: &str, to: &str) -> Result<Self> {
        let i = self.column_index(from)?;
        if from != to && self.schema.index_of(to).is_ok() {
            return Err(DatasetError::Column(format!(
                "column `{to}` already exists"
            )));
        }
        let schema = self.schema_with_field(i, self.schema.field(i).clone().with_name(to));
        let batches = self
            .batches
            .iter()
            .map(|b| {
                RecordBatch::try_new(schema.clone(), b.columns().to_vec())
                    .map_err(|e| DatasetError::arrow("rename_column", e))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut features = self.features.clone();
        features.0[i].0 = to.to_owned();
        self.derive(schema, batches, features, &["rename_column", from, to])
    }

    /// The distinct values of a column, in order of first appearance (as JSON).
    pub fn unique(&self, column: &str) -> Result<Vec<Value>> {
        let i = self.column_index(column)?;
        let mut seen = Vec::new();
        for row in self.rows(0, self.num_rows())? {
            let v = row[self.schema.field(i).name()].clone();
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        Ok(seen)
    }

    /// Turns a string column into a `ClassLabel` column (names sorted, as `datasets` does).
    pub fn class_encode_column(&self, column: &str) -> Result<Self> {
        let i = self.column_index(column)?;
        let values = compute::cast(&self.concat_column(i)?, &DataType::Utf8)
            .map_err(|e| DatasetError::arrow("class_encode_column", e))?;
        let strings = values
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| DatasetError::Column(format!("column `{column}` is not text")))?;
        let mut names: Vec<String> = strings.iter().flatten().map(str::to_owned).collect();
        names.sort();
        names.dedup();
        let ids: Int64Array = strings
            .iter()
            .map(|s| {
                s.and_then(|s| {
                    names
                        .binary_search_by(|n| n.as_str().cmp(s))
                        .ok()
                        .map(|i| i as i64)
                })
            })
            .collect();
        let (schema, batches) = self.replace_column(i, Arc::new(ids))?;
        let mut features = self.features.clone();
        features.0[i].1 = Feature::ClassLabel(names);
        self.derive(schema, batches, features, &["class_encode_column", column])
    }

    /// Casts a column to another feature (`datasets`' `cast_column`): numbers and strings
    /// convert as Arrow casts them, text labels become a `ClassLabel`'s ids. A value that does
    /// not convert is an error naming its row, never a silent null.
    pub fn cast_column(&self, column: &str, feature: Feature) -> Result<Self> {
        let i = self.column_index(column)?;
        let source = &self.concat_column(i)?;
        let fail = |row: usize, why: String| {
            DatasetError::Argument(format!("cast_column: column `{column}` row {row}: {why}"))
        };
        let cast: ArrayRef = match &feature {
            Feature::ClassLabel(names) => {
                if source.data_type() == &DataType::Utf8
                    || source.data_type() == &DataType::LargeUtf8
                {
                    let text = compute::cast(source, &DataType::Utf8)
                        .map_err(|e| DatasetError::arrow("cast_column", e))?;
                    let text = text.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                        DatasetError::Column(format!("column `{column}` is not text"))
                    })?;
                    let ids = text
                        .iter()
                        .enumerate()
                        .map(|(row, v)| match v {
                            None => Ok(None),
                            Some(v) => names
                                .iter()
                                .position(|n| n == v)
                                .map(|id| Some(id as i64))
                                .ok_or_else(|| {
                                    fail(row, format!("{v:?} is not one of the labels {names:?}"))
                                }),
                        })
                        .collect::<Result<Int64Array>>()?;
                    Arc::new(ids)
                } else {
                    let ints = compute::cast(source, &DataType::Int64)
                        .map_err(|e| DatasetError::arrow("cast_column", e))?;
                    let ints = ints.as_any().downcast_ref::<Int64Array>().ok_or_else(|| {
                        DatasetError::Column(format!("column `{column}` is not numeric"))
                    })?;
                    if let Some((row, v)) = ints.iter().enumerate().find_map(|(row, v)| {
                        v.filter(|&v| v < 0 || v as usize >= names.len())
                            .map(|v| (row, v))
                    }) {
                        return Err(fail(
                            row,
                            format!("{v} is not a class index below {}", names.len()),
                        ));
                    }
                    Arc::new(ints.clone())
                }
            }
            other => {
                let target = other.arrow_type()?;
                // A safe cast turns failures into nulls: the first new null is the bad row.
                let cast = compute::cast(source, &target).map_err(|e| {
                    DatasetError::Argument(format!(
                        "cast_column: column `{column}` ({}) cannot be cast to {target}: {e}",
                        source.data_type()
                    ))
                })?;
                if let Some(row) = (0..cast.len()).find(|&r| cast.is_null(r) && !source.is_null(r))
                {
                    let shown = arrow::util::display::array_value_to_string(source, row)
                        .unwrap_or_default();
                    return Err(fail(row, format!("{shown:?} cannot be cast to {target}")));
                }
                cast
            }
        };
        let (schema, batches) = self.replace_column(i, cast)?;
        let mut features = self.features.clone();
        let described = format!("{feature:?}");
        features.0[i].1 = feature;
        self.derive(
            schema,
            batches,
            features,
            &["cast_column", column, &described],
        )
    }

    /// Casts every column whose feature differs from `features` (`datasets`' `cast`); the
    /// column names must be the same.
    pub fn cast(&self, features: &Features) -> Result<Self> {
        let ours = self.features.names();
        let theirs = features.names();
        if ours != theirs {
            return Err(DatasetError::Argument(format!(
                "cast: the features name columns {theirs:?}, the dataset has {ours:?}"
            )));
        }
        let mut out = self.clone();
        for (name, feature) in &features.0 {
            if out
                .features
                .0
                .iter()
                .any(|(n, f)| n == name && f != feature)
            {
                out = out.cast_column(name, feature.clone())?;
            }
        }
        Ok(out)
    }

    /// Splits into train and test sets as `datasets` does: a seeded permutation, the test rows
    /// first. `test_size` below 1 is a fraction (rounded up), otherwise a row count.
    pub fn train_test_split(&self, test_size: f64, seed: Option<u64>) -> Result<(Self, Self)> {
        let n = self.num_rows();
        let n_test = test_rows(test_size, n)?;
        let order = match seed {
            Some(s) => permutation(n, s),
            None => (0..n).collect(),
        };
        Ok((
            self.select(&order[n_test..])?,
            self.select(&order[..n_test])?,
        ))
    }

    /// Like [`Dataset::train_test_split`], keeping each class's share of `column` the same in
    /// both splits (`stratify_by_column`): the test rows are allocated to classes in proportion
    /// (largest remainders first), each class's rows drawn by a seeded permutation.
    pub fn train_test_split_stratified(
        &self,
        test_size: f64,
        seed: u64,
        column: &str,
    ) -> Result<(Self, Self)> {
        let n = self.num_rows();
        let n_test = test_rows(test_size, n)?;
        self.column_index(column)?;
        let rows = self.rows(0, n)?;
        let mut classes: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let key = row[column].to_string();
            match classes.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => classes.push((key, vec![i])),
            }
        }
        // Proportional allocation with largest remainders.
        let mut alloc: Vec<(usize, f64)> = classes
            .iter()
            .map(|(_, m)| {
                let exact = n_test as f64 * m.len() as f64 / n as f64;
                (exact.floor() as usize, exact - exact.floor())
            })
            .collect();
        let mut left = n_test - alloc.iter().map(|a| a.0).sum::<usize>();
        let mut order: Vec<usize> = (0..alloc.len()).collect();
        order.sort_by(|&a, &b| alloc[b].1.total_cmp(&alloc[a].1).then(a.cmp(&b)));
        for &c in &order {
            if left == 0 {
                break;
            }
            if alloc[c].0 < classes[c].1.len() {
                alloc[c].0 += 1;
                left -= 1;
            }
        }
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (c, (_, members)) in classes.iter().enumerate() {
            let perm = permutation(members.len(), seed.wrapping_add(c as u64));
            for (j, &p) in perm.iter().enumerate() {
                if j < alloc[c].0 {
                    test.push(members[p])
                } else {
                    train.push(members[p])
                }
            }
        }
        let shuffle = |v: Vec<usize>, s: u64| -> Vec<usize> {
            permutation(v.len(), s).into_iter().map(|i| v[i]).collect()
        };
        Ok((
            self.select(&shuffle(train, seed))?,
            self.select(&shuffle(test, seed ^ 1))?,
        ))
    }

    /// The rows of several datasets with the same columns and types, one after the other.
    pub fn concatenate(parts: &[&Dataset]) -> Result<Self> {
        let first = parts
            .first()
            .ok_or_else(|| DatasetError::Argument("nothing to concatenate".into()))?;
        for p in &parts[1..] {
            if p.features.to_schema()?.fields() != first.features.to_schema()?.fields() {
                return Err(DatasetError::Column(format!(
                    "cannot concatenate datasets with different features: {:?} vs {:?}",
                    first.column_names(),
                    p.column_names()
                )));
            }
        }
        let batches: Vec<RecordBatch> = parts
            .iter()
            .flat_map(|p| p.batches.iter().cloned())
            .collect();
        let prints: Vec<&str> = parts.iter().map(|p| p.fingerprint.as_str()).collect();
        let mut key = vec!["concatenate"];
        key.extend(prints);
        Ok(Self::with_features(
            first.schema.clone(),
            batches,
            first.features.clone(),
            fnv(&key),
        )?
        .with_pages(parts.iter().flat_map(|p| p.pages.iter().cloned())))
    }

    /// Rows taken in turn from each dataset, stopping when the shortest runs out
    /// (`interleave_datasets` with `stopping_strategy="first_exhausted"`).
    pub fn interleave(parts: &[&Dataset]) -> Result<Self> {
        let all = Self::concatenate(parts)?;
        let shortest = parts.iter().map(|p| p.num_rows()).min().unwrap_or(0);
        let offsets: Vec<usize> = parts
            .iter()
            .scan(0, |acc, p| {
                let o = *acc;
                *acc += p.num_rows();
                Some(o)
            })
            .collect();
        let indices: Vec<usize> = (0..shortest)
            .flat_map(|i| offsets.iter().map(move |o| o + i))
            .collect();
        all.select(&indices)
    }

    /// Rows `start..start + count` as JSON objects.
    pub fn rows(&self, start: usize, count: usize) -> Result<Vec<Value>> {
        let end = start.saturating_add(count).min(self.num_rows());
        if start >= end {
            return Ok(Vec::new());
        }
        let mut writer = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::JsonArray>(Vec::new());
        for slice in self.slices(start, end, usize::MAX) {
            writer
                .write(&slice)
                .map_err(|e| DatasetError::arrow("rows", e))?;
        }
        writer
            .finish()
            .map_err(|e| DatasetError::arrow("rows", e))?;
        let bytes = writer.into_inner();
        let mut rows: Vec<Value> = if bytes.is_empty() {
            Vec::new()
        } else {
            serde_json::from_slice(&bytes).map_err(|e| DatasetError::arrow("rows", e))?
        };
        // arrow's JSON writer leaves out nulls; datasets shows them.
        for row in rows.iter_mut() {
            if let Value::Object(map) = row {
                for name in self.column_names() {
                    map.entry(name).or_insert(Value::Null);
                }
                let ordered: serde_json::Map<String, Value> = self
                    .column_names()
                    .into_iter()
                    .map(|n| {
                        let v = map.remove(&n).unwrap_or(Value::Null);
                        (n, v)
                    })
                    .collect();
                *map = ordered;
            }
        }
        Ok(rows)
    }
}

/// Several named splits (`train`, `validation`, `test`).
#[derive(Debug, Clone, Default)]
pub struct DatasetDict(pub Vec<(String, Dataset)>);

impl DatasetDict {
    /// A split by name.
    pub fn get(&self, split: &str) -> Option<&Dataset> {
        self.0.iter().find(|(n, _)| n == split).map(|(_, d)| d)
    }

    /// Split names in order.
    pub fn splits(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }
}
