//! Reading and writing files: CSV, JSON Lines (and JSON arrays), Parquet, plain text.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read, Seek, Write};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use crate::dataset::{Dataset, fnv};
use crate::error::{DatasetError, Result};
use crate::spill::BatchSink;

const BATCH: usize = 8192;

/// Encoded bytes buffered before a Parquet row group is written out.
const PARQUET_ROW_GROUP_BYTES: usize = 64 << 20;

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(DatasetError::io(path))
}

fn origin(path: &Path) -> String {
    path.display().to_string()
}

/// Loads a file by its extension: `.csv`, `.tsv`, `.json` / `.jsonl`, `.parquet`, `.arrow` (an
/// Arrow IPC stream, memory-mapped), `.txt`.
pub fn load_file(path: &Path) -> Result<Dataset> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" => read_csv(path, b','),
        "tsv" => read_csv(path, b'\t'),
        "json" | "jsonl" | "ndjson" => read_json(path),
        "parquet" => read_parquet(path),
        "txt" | "text" => read_text(path),
        "arrow" => Dataset::from_arrow_file(path),
        _ => Err(DatasetError::Argument(format!(
            "{}: unknown format (use .csv, .tsv, .json, .jsonl, .parquet, .arrow or .txt)",
            path.display()
        ))),
    }
}

/// A CSV file with a header row; column types are inferred (from the first 10,000 rows).
/// The file is parsed as a stream, a large table going straight to a memory-mapped spill
/// file. Invalid UTF-8 is an error that names the line (see [`read_csv_lossy`]).
pub fn read_csv(path: &Path, delimiter: u8) -> Result<Dataset> {
    let file = std::io::BufReader::new(open(path)?);
    match parse_csv(file, delimiter, &origin(path)) {
        Ok(dataset) => named(dataset, path),
        Err(e) => Err(invalid_utf8_line(path)?.unwrap_or(e)),
    }
}

/// The error for the first invalid UTF-8 in `path`, naming its line; `None` if it is valid.
fn invalid_utf8_line(path: &Path) -> Result<Option<DatasetError>> {
    let bytes = std::fs::read(path).map_err(DatasetError::io(path))?;
    let Err(e) = std::str::from_utf8(&bytes) else {
        return Ok(None);
    };
    let line = bytes[..e.valid_up_to()]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1;
    Ok(Some(DatasetError::Argument(format!(
        "{}: line {line} is not valid UTF-8 (read it with lossy decoding, e.g. \
         `embrace datasets … --lossy-utf8`, to replace bad bytes with U+FFFD)",
        path.display()
    ))))
}

/// [`read_csv`], replacing invalid UTF-8 sequences with U+FFFD (as Python's
/// `errors="replace"`).
pub fn read_csv_lossy(path: &Path, delimiter: u8) -> Result<Dataset> {
    let bytes = std::fs::read(path).map_err(DatasetError::io(path))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    named(
        parse_csv(Cursor::new(text.into_bytes()), delimiter, &origin(path))?,
        path,
    )
}

fn parse_csv(mut input: impl Read + Seek, delimiter: u8, origin: &str) -> Result<Dataset> {
    let format = arrow::csv::reader::Format::default()
        .with_header(true)
        .with_delimiter(delimiter);
    let (schema, _) = format
        .infer_schema(&mut input, Some(10_000))
        .map_err(|e| DatasetError::arrow(origin, e))?;
    input.rewind().map_err(|e| DatasetError::arrow(origin, e))?;
    let schema = Arc::new(schema);
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(BATCH)
        .build(input)
        .map_err(|e| DatasetError::arrow(origin, e))?;
    let mut sink = BatchSink::new(schema.clone());
    for batch in reader {
        sink.push(batch.map_err(|e| DatasetError::arrow(origin, e))?)?;
    }
    let collected = sink.finish()?;
    Ok(Dataset::from_batches(schema, collected.batches)?.with_pages(collected.pages))
}

/// JSON Lines (one object per line), or a file holding one JSON array of objects.
pub fn read_json(path: &Path) -> Result<Dataset> {
    let bytes = std::fs::read(path).map_err(DatasetError::io(path))?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let rows: Vec<serde_json::Value> =
            serde_json::from_slice(&bytes).map_err(|e| DatasetError::arrow(origin(path), e))?;
        let text: String = rows.iter().map(|r| r.to_string() + "\n").collect();
        return named(read_json_bytes(text.as_bytes(), &origin(path))?, path);
    }
    named(read_json_bytes(&bytes, &origin(path))?, path)
}

pub(crate) fn read_json_bytes(bytes: &[u8], origin: &str) -> Result<Dataset> {
    let mut cursor = Cursor::new(bytes);
    let (schema, _) = arrow::json::reader::infer_json_schema_from_seekable(&mut cursor, None)
        .map_err(|e| DatasetError::arrow(origin, e))?;
    cursor
        .rewind()
        .map_err(|e| DatasetError::arrow(origin, e))?;
    let schema = Arc::new(schema);
    let reader = arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(BATCH)
        .build(BufReader::new(cursor))
        .map_err(|e| DatasetError::arrow(origin, e))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DatasetError::arrow(origin, e))?;
    Dataset::from_batches(schema, batches)
}

/// A Parquet file (features from its `huggingface` metadata when `datasets` wrote it).
pub fn read_parquet(path: &Path) -> Result<Dataset> {
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open(path)?)
            .map_err(|e| DatasetError::arrow(origin(path), e))?;
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(BATCH)
        .build()
        .map_err(|e| DatasetError::arrow(origin(path), e))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DatasetError::arrow(origin(path), e))?;
    named(Dataset::from_batches(schema, batches)?, path)
}

/// A text file: one row per line, in a `text` column (as `datasets`' text loader).
pub fn read_text(path: &Path) -> Result<Dataset> {
    let reader = BufReader::new(open(path)?);
    let mut lines = Vec::new();
    for line in reader.lines() {
        lines.push(line.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => DatasetError::Argument(format!(
                "{}: line {} is not valid UTF-8",
                path.display(),
                lines.len() + 1
            )),
            _ => DatasetError::Io {
                path: path.to_owned(),
                source: e,
            },
        })?);
    }
    let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(lines))])
        .map_err(|e| DatasetError::arrow(origin(path), e))?;
    named(Dataset::from_batches(schema, vec![batch])?, path)
}

/// Gives a freshly loaded dataset a fingerprint from its file (path, size, modification time).
pub(crate) fn named(dataset: Dataset, path: &Path) -> Result<Dataset> {
    let meta = std::fs::metadata(path).map_err(DatasetError::io(path))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let fingerprint = fnv(&[
        "file",
        &path.display().to_string(),
        &meta.len().to_string(),
        &modified.to_string(),
    ]);
    Ok(dataset.with_fingerprint(fingerprint))
}

/// Writes through a temporary file in the same folder, flushed, then renamed: the destination
/// is either the old file or the complete new one.
pub(crate) fn write_atomic(dest: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let folder = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(DatasetError::io(folder))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&temp).map_err(DatasetError::io(&temp))?;
        write(&mut file)?;
        file.flush().map_err(DatasetError::io(&temp))?;
        file.sync_all().map_err(DatasetError::io(&temp))?;
        std::fs::rename(&temp, dest).map_err(DatasetError::io(dest))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

impl Dataset {
    /// Writes a Parquet file (snappy-compressed, with the `huggingface` features metadata so that
    /// `datasets` reads the same features back).
    pub fn to_parquet(&self, path: &Path) -> Result<()> {
        write_atomic(path, |file| {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY)
                .build();
            let mut writer =
                parquet::arrow::ArrowWriter::try_new(file, self.schema().clone(), Some(props))
                    .map_err(|e| DatasetError::arrow(origin(path), e))?;
            // The stored batches whole (no row limit).
            self.for_each_slice(0, self.num_rows(), usize::MAX, |batch| {
                writer
                    .write(batch)
                    .map_err(|e| DatasetError::arrow(origin(path), e))?;
                // Bound the memory of the row group being built: a large dataset becomes
                // several row groups instead of one buffered whole.
                if writer.in_progress_size() > PARQUET_ROW_GROUP_BYTES {
                    writer
                        .flush()
                        .map_err(|e| DatasetError::arrow(origin(path), e))?;
                }
                Ok(())
            })?;
            writer
                .close()
                .map_err(|e| DatasetError::arrow(origin(path), e))?;
            Ok(())
        })
    }

    /// Writes a CSV file with a header row.
    pub fn to_csv(&self, path: &Path) -> Result<()> {
        write_atomic(path, |file| {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(file);
            for batch in self.batches() {
                writer
                    .write(batch)
                    .map_err(|e| DatasetError::arrow(origin(path), e))?;
            }
            Ok(())
        })
    }

    /// Writes JSON Lines (one object per row).
    pub fn to_json(&self, path: &Path) -> Result<()> {
        write_atomic(path, |file| {
            let rows = self.rows(0, self.num_rows())?;
            let mut out = std::io::BufWriter::new(file);
            for row in rows {
                serde_json::to_writer(&mut out, &row)
                    .map_err(|e| DatasetError::arrow(origin(path), e))?;
                out.write_all(b"\n").map_err(DatasetError::io(path))?;
            }
            out.flush().map_err(DatasetError::io(path))
        })
    }
}
