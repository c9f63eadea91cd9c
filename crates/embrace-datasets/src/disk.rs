//! `save_to_disk` / `load_from_disk` in the folder format of `datasets`: Arrow IPC stream
//! shards `data-0000i-of-0000n.arrow`, `dataset_info.json`, `state.json`, and for a
//! `DatasetDict` a `dataset_dict.json` with one sub-folder per split. Python's
//! `datasets.load_from_disk` opens what this writes, and the reverse.

use std::path::Path;

use arrow::ipc::writer::StreamWriter;
use serde_json::{Value, json};

use crate::dataset::{Dataset, DatasetDict};
use crate::error::{DatasetError, Result};
use crate::features::Features;
use crate::io::write_atomic;
use crate::mapped::read_ipc_stream;
use crate::spill::batch_bytes;

/// Bytes per shard file (datasets shards by size, 500 MB; small datasets get one shard).
const MAX_SHARD_BYTES: usize = 500 << 20;

/// Rows per record batch in a shard (`datasets`' default `writer_batch_size`): a reader that
/// memory-maps the shard validates and touches one batch at a time.
pub(crate) const WRITER_BATCH_ROWS: usize = 1000;

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(DatasetError::io(path))?;
    serde_json::from_str(&text)
        .map_err(|e| DatasetError::Metadata(format!("{}: {e}", path.display())))
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| DatasetError::Metadata(e.to_string()))?;
    write_atomic(path, |f| {
        std::io::Write::write_all(f, text.as_bytes()).map_err(DatasetError::io(path))
    })
}

impl Dataset {
    /// Saves in the `datasets` folder format.
    pub fn save_to_disk(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(DatasetError::io(dir))?;
        let rows = self.num_rows();
        let bytes: usize = self.batches().iter().map(batch_bytes).sum::<usize>().max(1);
        let shards = bytes.div_ceil(MAX_SHARD_BYTES).max(1).min(rows.max(1));
        let mut files = Vec::new();
        for s in 0..shards {
            let start = rows * s / shards;
            let end = rows * (s + 1) / shards;
            let name = format!("data-{s:05}-of-{shards:05}.arrow");
            let path = dir.join(&name);
            write_atomic(&path, |file| {
                let mut writer =
                    StreamWriter::try_new(std::io::BufWriter::new(file), self.schema())
                        .map_err(|e| DatasetError::arrow(name.clone(), e))?;
                self.for_each_slice(start, end, WRITER_BATCH_ROWS, |part| {
                    writer
                        .write(part)
                        .map_err(|e| DatasetError::arrow(name.clone(), e))
                })?;
                writer
                    .finish()
                    .map_err(|e| DatasetError::arrow(name.clone(), e))?;
                let mut out = writer
                    .into_inner()
                    .map_err(|e| DatasetError::arrow(name.clone(), e))?;
                std::io::Write::flush(&mut out).map_err(DatasetError::io(&path))
            })?;
            files.push(json!({"filename": name}));
        }
        write_json(
            &dir.join("dataset_info.json"),
            &json!({"citation": "", "description": "", "features": self.features().to_json(), "homepage": "", "license": ""}),
        )?;
        write_json(
            &dir.join("state.json"),
            &json!({
                "_data_files": files,
                "_fingerprint": self.fingerprint(),
                "_format_columns": null,
                "_format_kwargs": {},
                "_format_type": null,
                "_output_all_columns": false,
                "_split": null,
            }),
        )
    }
}

impl DatasetDict {
    /// Saves every split in its sub-folder, plus `dataset_dict.json`.
    pub fn save_to_disk(&self, dir: &Path) -> Result<()> {
        for (name, split) in &self.0 {
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                return Err(DatasetError::Argument(format!(
                    "invalid split name {name:?}"
                )));
            }
            split.save_to_disk(&dir.join(name))?;
        }
        write_json(
            &dir.join("dataset_dict.json"),
            &json!({"splits": self.splits()}),
        )
    }
}

/// What `load_from_disk` found.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// A single dataset.
    Dataset(Dataset),
    /// Named splits.
    Dict(DatasetDict),
}

fn load_dataset_dir(dir: &Path) -> Result<Dataset> {
    let state = read_json(&dir.join("state.json"))?;
    let files = state["_data_files"].as_array().ok_or_else(|| {
        DatasetError::Metadata(format!("{}: state.json has no _data_files", dir.display()))
    })?;
    let mut schema = None;
    let mut batches = Vec::new();
    let mut pages = Vec::new();
    for f in files {
        let name = f["filename"].as_str().unwrap_or_default();
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(DatasetError::Metadata(format!(
                "state.json names an invalid data file {name:?}"
            )));
        }
        let (file_schema, file_batches, file_pages) = read_ipc_stream(&dir.join(name))?;
        schema.get_or_insert(file_schema);
        batches.extend(file_batches);
        pages.push(file_pages);
    }
    let schema = schema
        .ok_or_else(|| DatasetError::Metadata(format!("{}: no data files", dir.display())))?;
    let features = match read_json(&dir.join("dataset_info.json")) {
        Ok(info) if info.get("features").is_some_and(|f| !f.is_null()) => {
            Features::from_json(&info["features"])?
        }
        _ => Features::from_schema_metadata(&schema)?,
    };
    let fingerprint = state["_fingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(Dataset::with_features(schema, batches, features, fingerprint)?.with_pages(pages))
}

impl Dataset {
    /// Opens one Arrow IPC stream file, such as a `datasets` cache file (`cache-*.arrow`) or a
    /// `save_to_disk` shard, memory-mapped (`datasets.Dataset.from_file`). Features come from the
    /// schema's `huggingface` metadata, or are inferred from the Arrow types.
    pub fn from_arrow_file(path: &Path) -> Result<Dataset> {
        let (schema, batches, pages) = read_ipc_stream(path)?;
        let dataset = Dataset::from_batches(schema, batches)?.with_pages([pages]);
        crate::io::named(dataset, path)
    }
}

/// Loads a folder written by `save_to_disk` (from `datasets` or from Embrace).
pub fn load_from_disk(dir: &Path) -> Result<Loaded> {
    let dict = dir.join("dataset_dict.json");
    if dict.is_file() {
        let meta = read_json(&dict)?;
        let splits = meta["splits"]
            .as_array()
            .ok_or_else(|| DatasetError::Metadata(format!("{}: no splits", dict.display())))?;
        let mut out = Vec::new();
        for s in splits {
            let name = s.as_str().unwrap_or_default();
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                return Err(DatasetError::Metadata(format!(
                    "invalid split name {name:?}"
                )));
            }
            out.push((name.to_owned(), load_dataset_dir(&dir.join(name))?));
        }
        return Ok(Loaded::Dict(DatasetDict(out)));
    }
    if dir.join("state.json").is_file() {
        return Ok(Loaded::Dataset(load_dataset_dir(dir)?));
    }
    Err(DatasetError::Argument(format!(
        "{} is not a saved dataset (no state.json or dataset_dict.json)",
        dir.display()
    )))
}

/// Opens a path as users pass one: a `save_to_disk` folder (a Dataset or a DatasetDict) or a
/// data file by extension ([`crate::load_file`]); with `lossy_utf8`, invalid UTF-8 in CSV/TSV
/// files becomes U+FFFD instead of an error.
pub fn load_path(path: &Path, lossy_utf8: bool) -> Result<Loaded> {
    if path.is_dir() {
        return load_from_disk(path);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    Ok(Loaded::Dataset(match ext.as_str() {
        "csv" if lossy_utf8 => crate::io::read_csv_lossy(path, b',')?,
        "tsv" if lossy_utf8 => crate::io::read_csv_lossy(path, b'\t')?,
        _ => crate::io::load_file(path)?,
    }))
}
