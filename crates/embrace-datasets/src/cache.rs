//! The transform cache: a transform's result stored as `cache-<fingerprint>.arrow` (Arrow IPC)
//! with a `cache-<fingerprint>.json` sidecar, so that running the same chain of transforms again
//! loads the results instead of recomputing them (`datasets`' `load_from_cache_file`).
//!
//! The fingerprint of a result is the input's fingerprint plus the transform's description, so a
//! chain of cached transforms gets the same fingerprints on every run. Rust closures cannot be
//! hashed as Python functions are, so the caller names the transform and its arguments.
//!
//! Invariants: both files are written atomically (temporary file, fsync, rename), the sidecar
//! last; the sidecar holds the data file's size, row count and checksum, and a cache entry whose
//! data does not match them is deleted and recomputed, never returned.

use std::path::{Path, PathBuf};

use arrow::ipc::writer::StreamWriter;
use serde_json::{Value, json};

use crate::dataset::{Dataset, FNV_START, fnv, fnv_extend};
use crate::disk::WRITER_BATCH_ROWS;
use crate::error::{DatasetError, Result};
use crate::features::Features;
use crate::io::write_atomic;
use crate::mapped::{MappedFile, read_ipc_stream_mapped};

/// Bytes hashed between page releases when checking an entry.
const CHECKSUM_CHUNK: usize = 16 << 20;

/// Where transform results are cached, or nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformCache {
    dir: Option<PathBuf>,
}

impl TransformCache {
    /// A cache in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
        }
    }

    /// No caching: every transform is computed (`datasets.disable_caching()`).
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// The cache folder `datasets` uses: `HF_DATASETS_CACHE`, else `HF_HOME/datasets`, else
    /// `~/.cache/huggingface/datasets`; disabled when `HF_DATASETS_DISABLE_CACHING` is set.
    pub fn from_env() -> Self {
        if std::env::var_os("HF_DATASETS_DISABLE_CACHING").is_some() {
            return Self::disabled();
        }
        let dir = std::env::var_os("HF_DATASETS_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HF_HOME").map(|h| PathBuf::from(h).join("datasets")))
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".cache/huggingface/datasets"))
            });
        Self { dir }
    }

    /// The cache folder, if caching is on.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Returns `transform(input)`, from the cache when an intact entry exists for the input's
    /// fingerprint and `description` (the transform's name and arguments).
    pub fn apply(
        &self,
        input: &Dataset,
        description: &str,
        transform: impl FnOnce(&Dataset) -> Result<Dataset>,
    ) -> Result<Dataset> {
        let fingerprint = fnv(&[input.fingerprint(), description]);
        let Some(dir) = &self.dir else {
            return transform(input);
        };
        let data = dir.join(format!("cache-{fingerprint}.arrow"));
        let sidecar = dir.join(format!("cache-{fingerprint}.json"));
        if data.is_file() && sidecar.is_file() {
            match read_entry(&data, &sidecar, &fingerprint) {
                Ok(cached) => {
                    tracing::debug!(%fingerprint, description, "loaded from the cache");
                    return Ok(cached);
                }
                Err(e) => {
                    tracing::warn!(file = %data.display(), error = %e, "corrupt cache entry; recomputing");
                    let _ = std::fs::remove_file(&sidecar);
                    let _ = std::fs::remove_file(&data);
                }
            }
        }
        let result = transform(input)?.with_fingerprint(fingerprint.clone());
        write_entry(&result, &data, &sidecar, description)?;
        Ok(result)
    }

    /// Deletes every cache entry; returns how many files were removed.
    pub fn cleanup(&self) -> Result<usize> {
        let Some(dir) = &self.dir else {
            return Ok(0);
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(0);
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("cache-") && (name.ends_with(".arrow") || name.ends_with(".json")) {
                std::fs::remove_file(entry.path()).map_err(DatasetError::io(&entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Passes writes through to a file while counting and hashing them (the sidecar's size and
/// checksum), so a result is never held twice in memory.
struct HashingWriter<W> {
    inner: W,
    hash: u64,
    len: u64,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash = fnv_extend(self.hash, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The checksum the sidecar records: FNV-1a of the whole file followed by a 0xff separator.
fn checksum_text(hash: u64) -> String {
    format!("{:016x}", fnv_extend(hash, &[0xff]))
}

fn write_entry(result: &Dataset, data: &Path, sidecar: &Path, description: &str) -> Result<()> {
    let origin = data.display().to_string();
    let (mut hash, mut len) = (FNV_START, 0);
    write_atomic(data, |f| {
        let mut out = HashingWriter {
            inner: std::io::BufWriter::new(f),
            hash: FNV_START,
            len: 0,
        };
        {
            let mut writer = StreamWriter::try_new(&mut out, result.schema())
                .map_err(|e| DatasetError::arrow(&origin, e))?;
            result.for_each_slice(0, result.num_rows(), WRITER_BATCH_ROWS, |batch| {
                writer
                    .write(batch)
                    .map_err(|e| DatasetError::arrow(&origin, e))
            })?;
            writer
                .finish()
                .map_err(|e| DatasetError::arrow(&origin, e))?;
        }
        std::io::Write::flush(&mut out).map_err(DatasetError::io(data))?;
        (hash, len) = (out.hash, out.len);
        Ok(())
    })?;
    let meta = json!({
        "fingerprint": result.fingerprint(),
        "transform": description,
        "rows": result.num_rows(),
        "bytes": len,
        "checksum": checksum_text(hash),
        "features": result.features().to_json(),
    });
    let text = serde_json::to_string_pretty(&meta).unwrap_or_default();
    write_atomic(sidecar, |f| {
        std::io::Write::write_all(f, text.as_bytes()).map_err(DatasetError::io(sidecar))
    })
}

/// Loads an entry through a memory mapping after checking its size and checksum against the
/// sidecar (the checksum pass releases the pages it reads, so a large entry stays mapped, not
/// resident).
fn read_entry(data: &Path, sidecar: &Path, fingerprint: &str) -> Result<Dataset> {
    let bad = |why: &str| DatasetError::Metadata(format!("{}: {why}", data.display()));
    let meta: Value =
        serde_json::from_slice(&std::fs::read(sidecar).map_err(DatasetError::io(sidecar))?)
            .map_err(|_| bad("unreadable sidecar"))?;
    let file = MappedFile::open(data)?;
    if meta["bytes"].as_u64() != Some(file.bytes().len() as u64) {
        return Err(bad("size differs from the sidecar"));
    }
    let mut hash = FNV_START;
    file.for_each_chunk(CHECKSUM_CHUNK, |chunk| hash = fnv_extend(hash, chunk));
    if meta["checksum"].as_str() != Some(checksum_text(hash).as_str()) {
        return Err(bad("checksum differs from the sidecar"));
    }
    let (schema, batches) = read_ipc_stream_mapped(&file, data)?;
    let dataset = Dataset::with_features(
        schema,
        batches,
        Features::from_json(&meta["features"])?,
        fingerprint.to_owned(),
    )?
    .with_pages([file.pages()]);
    if meta["rows"].as_u64() != Some(dataset.num_rows() as u64) {
        return Err(bad("row count differs from the sidecar"));
    }
    Ok(dataset)
}
