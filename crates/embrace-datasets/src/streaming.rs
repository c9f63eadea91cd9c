//! Streaming datasets (`datasets`' `IterableDataset`): rows read lazily from files larger than
//! memory, through a chain of transforms, with a position that can be saved and resumed.
//!
//! - Sources: CSV / TSV, JSON Lines, Parquet and text files, read in record batches of
//!   [`STREAM_BATCH`] rows (memory stays bounded by a batch plus the shuffle buffer).
//! - Transforms, applied lazily in order: [`IterableDataset::map`], [`IterableDataset::filter`],
//!   [`IterableDataset::skip`], [`IterableDataset::take`] and
//!   [`IterableDataset::shuffle`] (file order shuffled, then a seeded buffer, as `datasets`
//!   does); [`StreamIter::batches`] groups rows.
//! - Resuming: [`StreamIter::state_dict`] is JSON (file, row in the file, every transform's
//!   counters, the shuffle buffer and its generator); [`IterableDataset::iter_from`] continues
//!   exactly where it was, so the rows after a resume equal those of an uninterrupted pass.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use serde_json::{Map, Value, json};

use crate::dataset::{Dataset, permutation};
use crate::error::{DatasetError, Result};
use crate::rng::SplitMix64;

/// Rows per record batch read from a file.
pub const STREAM_BATCH: usize = 1024;

/// One row.
pub type Example = Map<String, Value>;

type MapFn = Arc<dyn Fn(Example) -> Result<Example> + Send + Sync>;
type FilterFn = Arc<dyn Fn(&Example) -> bool + Send + Sync>;

/// A file format that can be streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv(u8),
    Json,
    Parquet,
    Text,
}

impl Format {
    fn of(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        Ok(match ext.as_str() {
            "csv" => Self::Csv(b','),
            "tsv" => Self::Csv(b'\t'),
            "json" | "jsonl" | "ndjson" => Self::Json,
            "parquet" => Self::Parquet,
            "txt" | "text" => Self::Text,
            _ => {
                return Err(DatasetError::Argument(format!(
                    "{}: cannot stream this file type (csv, tsv, jsonl, parquet, txt can be)",
                    path.display()
                )));
            }
        })
    }
}

#[derive(Clone)]
enum Op {
    Map(MapFn),
    Filter(FilterFn),
    Skip(usize),
    Take(usize),
    Shuffle { seed: u64, buffer: usize },
}

/// A lazily read dataset over files.
#[derive(Clone)]
pub struct IterableDataset {
    files: Vec<PathBuf>,
    ops: Vec<Op>,
}

impl std::fmt::Debug for IterableDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IterableDataset")
            .field("files", &self.files)
            .field("transforms", &self.ops.len())
            .finish()
    }
}

impl IterableDataset {
    /// Streams `files` in order (each one's format from its extension).
    pub fn from_files(files: &[PathBuf]) -> Result<Self> {
        if files.is_empty() {
            return Err(DatasetError::Argument("no files to stream".into()));
        }
        for f in files {
            Format::of(f)?;
            if !f.is_file() {
                return Err(DatasetError::Argument(format!(
                    "{} does not exist",
                    f.display()
                )));
            }
        }
        Ok(Self {
            files: files.to_vec(),
            ops: Vec::new(),
        })
    }

    fn with(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    /// Transforms every row.
    pub fn map(self, f: impl Fn(Example) -> Result<Example> + Send + Sync + 'static) -> Self {
        self.with(Op::Map(Arc::new(f)))
    }

    /// Keeps the rows for which `keep` is true.
    pub fn filter(self, keep: impl Fn(&Example) -> bool + Send + Sync + 'static) -> Self {
        self.with(Op::Filter(Arc::new(keep)))
    }

    /// Skips the first `n` rows.
    pub fn skip(self, n: usize) -> Self {
        self.with(Op::Skip(n))
    }

    /// Stops after `n` rows.
    pub fn take(self, n: usize) -> Self {
        self.with(Op::Take(n))
    }

    /// Shuffles approximately: the file order is permuted with `seed`, and rows pass through a
    /// buffer of `buffer_size` from which a seeded random one is emitted each time.
    pub fn shuffle(self, seed: u64, buffer_size: usize) -> Self {
        self.with(Op::Shuffle {
            seed,
            buffer: buffer_size.max(1),
        })
    }

    /// The file order: permuted by the first shuffle's seed, if any.
    fn file_order(&self) -> Vec<usize> {
        match self.ops.iter().find_map(|op| match op {
            Op::Shuffle { seed, .. } => Some(*seed),
            _ => None,
        }) {
            Some(seed) => permutation(self.files.len(), seed),
            None => (0..self.files.len()).collect(),
        }
    }

    /// Iterates from the start.
    pub fn iter(&self) -> Result<StreamIter<'_>> {
        let stages = self
            .ops
            .iter()
            .map(|op| match op {
                Op::Skip(n) => Stage::Skip(*n),
                Op::Take(n) => Stage::Take(*n),
                Op::Shuffle { seed, .. } => Stage::Shuffle {
                    buffer: Vec::new(),
                    rng: SplitMix64::new(*seed),
                    draining: false,
                },
                Op::Map(_) | Op::Filter(_) => Stage::Stateless,
            })
            .collect();
        Ok(StreamIter {
            dataset: self,
            order: self.file_order(),
            file: 0,
            row_in_file: 0,
            reader: None,
            pending: std::collections::VecDeque::new(),
            stages,
            done: false,
        })
    }

    /// Iterates from a position saved by [`StreamIter::state_dict`].
    pub fn iter_from(&self, state: &Value) -> Result<StreamIter<'_>> {
        let bad = |what: &str| DatasetError::Argument(format!("invalid stream state: {what}"));
        let mut it = self.iter()?;
        let file = state["file"].as_u64().ok_or_else(|| bad("file"))? as usize;
        let row = state["row_in_file"]
            .as_u64()
            .ok_or_else(|| bad("row_in_file"))? as usize;
        let stages = state["stages"].as_array().ok_or_else(|| bad("stages"))?;
        if stages.len() != it.stages.len() || file > self.files.len() {
            return Err(bad("it belongs to another chain of transforms or files"));
        }
        for (stage, saved) in it.stages.iter_mut().zip(stages) {
            match stage {
                Stage::Skip(n) | Stage::Take(n) => {
                    *n = saved["left"].as_u64().ok_or_else(|| bad("left"))? as usize;
                }
                Stage::Shuffle {
                    buffer,
                    rng,
                    draining,
                } => {
                    *rng = SplitMix64::from_state(
                        saved["rng"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .ok_or_else(|| bad("rng"))?,
                    );
                    *draining = saved["draining"].as_bool().unwrap_or(false);
                    *buffer = saved["buffer"]
                        .as_array()
                        .ok_or_else(|| bad("buffer"))?
                        .iter()
                        .map(|v| v.as_object().cloned().ok_or_else(|| bad("buffer row")))
                        .collect::<Result<_>>()?;
                }
                Stage::Stateless => {}
            }
        }
        it.file = file;
        it.done = state["done"].as_bool().unwrap_or(false);
        // Re-open the file and skip the rows already read.
        if file < self.files.len() {
            it.open(file)?;
            for _ in 0..row {
                if it.next_source_row()?.is_none() {
                    break;
                }
            }
        }
        Ok(it)
    }
}

/// The state of one transform while iterating.
enum Stage {
    Stateless,
    Skip(usize),
    Take(usize),
    Shuffle {
        buffer: Vec<Example>,
        rng: SplitMix64,
        draining: bool,
    },
}

/// Reads record batches of one file.
enum Reader {
    Batches(
        Box<dyn Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>> + Send>,
    ),
    Lines(std::io::Lines<BufReader<File>>),
}

/// An iterator over a streamed dataset's rows.
pub struct StreamIter<'a> {
    dataset: &'a IterableDataset,
    order: Vec<usize>,
    /// Index into `order` of the file being read.
    file: usize,
    row_in_file: usize,
    reader: Option<(Reader, Vec<String>)>,
    pending: std::collections::VecDeque<Example>,
    stages: Vec<Stage>,
    done: bool,
}

fn open_reader(path: &Path) -> Result<Reader> {
    let origin = path.display().to_string();
    let open = || File::open(path).map_err(DatasetError::io(path));
    Ok(match Format::of(path)? {
        Format::Csv(delimiter) => {
            let mut file = open()?;
            let format = arrow::csv::reader::Format::default()
                .with_header(true)
                .with_delimiter(delimiter);
            let (schema, _) = format
                .infer_schema(&mut file, Some(10_000))
                .map_err(|e| DatasetError::arrow(&origin, e))?;
            file.rewind().map_err(DatasetError::io(path))?;
            let reader = arrow::csv::ReaderBuilder::new(Arc::new(schema))
                .with_format(format)
                .with_batch_size(STREAM_BATCH)
                .build(BufReader::new(file))
                .map_err(|e| DatasetError::arrow(&origin, e))?;
            Reader::Batches(Box::new(reader))
        }
        Format::Json => {
            let (schema, _) =
                arrow::json::reader::infer_json_schema(BufReader::new(open()?), Some(10_000))
                    .map_err(|e| DatasetError::arrow(&origin, e))?;
            let reader = arrow::json::ReaderBuilder::new(Arc::new(schema))
                .with_batch_size(STREAM_BATCH)
                .build(BufReader::new(open()?))
                .map_err(|e| DatasetError::arrow(&origin, e))?;
            Reader::Batches(Box::new(reader))
        }
        Format::Parquet => {
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open()?)
                    .map_err(|e| DatasetError::arrow(&origin, e))?
                    .with_batch_size(STREAM_BATCH)
                    .build()
                    .map_err(|e| DatasetError::arrow(&origin, e))?;
            Reader::Batches(Box::new(reader))
        }
        Format::Text => Reader::Lines(BufReader::new(open()?).lines()),
    })
}

impl StreamIter<'_> {
    fn open(&mut self, file: usize) -> Result<()> {
        let path = &self.dataset.files[self.order[file]];
        self.reader = Some((open_reader(path)?, Vec::new()));
        self.pending.clear();
        self.row_in_file = 0;
        Ok(())
    }

    /// The next row of the files, before any transform.
    fn next_source_row(&mut self) -> Result<Option<Example>> {
        loop {
            if let Some(row) = self.pending.pop_front() {
                self.row_in_file += 1;
                return Ok(Some(row));
            }
            if self.file >= self.order.len() {
                return Ok(None);
            }
            if self.reader.is_none() {
                self.open(self.file)?;
            }
            let path = self.dataset.files[self.order[self.file]]
                .display()
                .to_string();
            let Some((reader, _)) = self.reader.as_mut() else {
                continue;
            };
            match reader {
                Reader::Lines(lines) => match lines.next() {
                    Some(line) => {
                        let line = line.map_err(|e| DatasetError::arrow(&path, e))?;
                        let mut row = Map::new();
                        row.insert("text".into(), Value::String(line));
                        self.pending.push_back(row);
                    }
                    None => self.next_file(),
                },
                Reader::Batches(batches) => match batches.next() {
                    Some(batch) => {
                        let batch = batch.map_err(|e| DatasetError::arrow(&path, e))?;
                        let n = batch.num_rows();
                        let rows =
                            Dataset::from_batches(batch.schema(), vec![batch])?.rows(0, n)?;
                        self.pending
                            .extend(rows.into_iter().filter_map(|r| match r {
                                Value::Object(m) => Some(m),
                                _ => None,
                            }));
                    }
                    None => self.next_file(),
                },
            }
        }
    }

    fn next_file(&mut self) {
        self.file += 1;
        self.reader = None;
        self.row_in_file = 0;
    }

    /// Runs a row through the transforms from `start`; `None` when a transform drops it.
    fn through(&mut self, mut row: Example, start: usize) -> Result<Option<Example>> {
        for i in start..self.stages.len() {
            match (&self.dataset.ops[i], &mut self.stages[i]) {
                (Op::Map(f), _) => row = f(row)?,
                (Op::Filter(keep), _) if !keep(&row) => return Ok(None),
                (Op::Filter(_), _) => {}
                (_, Stage::Skip(left)) if *left > 0 => {
                    *left -= 1;
                    return Ok(None);
                }
                (_, Stage::Skip(_)) => {}
                (_, Stage::Take(left)) => {
                    if *left == 0 {
                        self.done = true;
                        return Ok(None);
                    }
                    *left -= 1;
                }
                (Op::Shuffle { buffer: size, .. }, Stage::Shuffle { buffer, rng, .. }) => {
                    if buffer.len() < *size {
                        buffer.push(row);
                        return Ok(None);
                    }
                    let i = rng.below(buffer.len());
                    row = std::mem::replace(&mut buffer[i], row);
                }
                _ => {}
            }
        }
        Ok(Some(row))
    }

    /// After the source ends: empties the first shuffle buffer that still holds rows (in a
    /// seeded random order) through the transforms after it.
    fn drain(&mut self) -> Result<Option<Example>> {
        for i in 0..self.stages.len() {
            let next = match &mut self.stages[i] {
                Stage::Shuffle {
                    buffer,
                    rng,
                    draining,
                } if !buffer.is_empty() => {
                    *draining = true;
                    let pick = rng.below(buffer.len());
                    Some(buffer.swap_remove(pick))
                }
                _ => None,
            };
            if let Some(row) = next {
                if let Some(out) = self.through(row, i + 1)? {
                    return Ok(Some(out));
                }
                return self.drain();
            }
        }
        Ok(None)
    }

    fn advance(&mut self) -> Result<Option<Example>> {
        while !self.done {
            let Some(row) = self.next_source_row()? else {
                let out = self.drain()?;
                if out.is_none() {
                    self.done = true;
                }
                return Ok(out);
            };
            if let Some(out) = self.through(row, 0)? {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }

    /// The position, as JSON, for [`IterableDataset::iter_from`].
    pub fn state_dict(&self) -> Value {
        let stages: Vec<Value> = self
            .stages
            .iter()
            .map(|s| match s {
                Stage::Stateless => json!({}),
                Stage::Skip(n) | Stage::Take(n) => json!({"left": n}),
                Stage::Shuffle {
                    buffer,
                    rng,
                    draining,
                } => {
                    json!({"buffer": buffer, "rng": rng.state().to_string(), "draining": draining})
                }
            })
            .collect();
        json!({"file": self.file, "row_in_file": self.row_in_file, "stages": stages, "done": self.done})
    }

    /// Groups rows into batches of `size` (the last may be shorter).
    pub fn batches(self, size: usize) -> impl Iterator<Item = Result<Vec<Example>>> {
        let size = size.max(1);
        let mut rows = self;
        std::iter::from_fn(move || {
            let mut batch = Vec::with_capacity(size);
            for row in rows.by_ref().take(size) {
                match row {
                    Ok(r) => batch.push(r),
                    Err(e) => return Some(Err(e)),
                }
            }
            (!batch.is_empty()).then_some(Ok(batch))
        })
    }
}

impl Iterator for StreamIter<'_> {
    type Item = Result<Example>;

    fn next(&mut self) -> Option<Self::Item> {
        self.advance().transpose()
    }
}
