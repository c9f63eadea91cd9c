//! Large results live on disk, not in the heap: a transform's output batches are collected in
//! memory until they exceed the in-memory limit (64 MiB unless set, see
//! [`set_in_memory_max_size`]), then streamed to an Arrow IPC file in the spill
//! folder, which is memory-mapped and unlinked at once (the data stays reachable through the
//! mapping; the disk space returns when the last batch using it is dropped). This is how
//! `datasets` keeps tables in memory-mapped cache files, without leaving files behind.
//!
//! The spill folder is `EMBRACE_DATASETS_SPILL_DIR`, else the `datasets` cache folder
//! (`HF_DATASETS_CACHE`, `HF_HOME/datasets`, `~/.cache/huggingface/datasets`), else the
//! system's temporary folder.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;

use crate::error::{DatasetError, Result};
use crate::mapped::{MappedFile, MappedPages, read_ipc_stream_mapped};

/// The in-memory limit when neither [`set_in_memory_max_size`] nor the environment sets one.
const DEFAULT_IN_MEMORY_MAX_SIZE: usize = 64 << 20;

/// `usize::MAX` means "not set": the environment or the default decides.
static IN_MEMORY_MAX_SIZE: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Sets how many bytes of a result are kept in memory before it is spilled to a
/// memory-mapped file (`datasets.config.IN_MEMORY_MAX_SIZE`; 0 spills every non-empty
/// result). Without a call, `HF_DATASETS_IN_MEMORY_MAX_SIZE` (bytes) or 64 MiB applies.
pub fn set_in_memory_max_size(bytes: usize) {
    IN_MEMORY_MAX_SIZE.store(bytes.min(usize::MAX - 1), Ordering::Relaxed);
}

fn in_memory_max_size() -> usize {
    match IN_MEMORY_MAX_SIZE.load(Ordering::Relaxed) {
        usize::MAX => std::env::var("HF_DATASETS_IN_MEMORY_MAX_SIZE")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_IN_MEMORY_MAX_SIZE),
        set => set,
    }
}

/// The Arrow bytes of a batch's rows (slices count only their own range).
pub(crate) fn batch_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0))
        .sum()
}

fn spill_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EMBRACE_DATASETS_SPILL_DIR") {
        return PathBuf::from(dir);
    }
    crate::cache::TransformCache::from_env()
        .dir()
        .map(|d| d.join("spill"))
        .unwrap_or_else(std::env::temp_dir)
}

/// Removes the spill files that processes no longer running left behind (a spill file is
/// unlinked as soon as it is mapped, so only a process killed while writing one leaves it).
/// A file is stale when its name is `spill-<pid>-<n>.arrow` and no process `<pid>` exists;
/// files of live processes, other names and every error are left alone. Linux only (where
/// `/proc` tells which processes exist).
fn sweep_stale(dir: &std::path::Path) {
    let proc_fs = std::path::Path::new("/proc/self");
    if !proc_fs.exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("spill-"))
            .and_then(|n| n.strip_suffix(".arrow"))
            .and_then(|n| n.split_once('-'))
            .filter(|(_, counter)| counter.parse::<u64>().is_ok())
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(file = %entry.path().display(), "removed a stale spill file")
                }
                Err(e) => {
                    tracing::debug!(file = %entry.path().display(), error = %e, "could not remove a stale spill file")
                }
            }
        }
    }
}

/// Collects a result's batches, in memory or spilled (see the module documentation).
pub(crate) struct BatchSink {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    bytes: usize,
    limit: usize,
    spill: Option<(PathBuf, StreamWriter<BufWriter<File>>)>,
}

/// A finished result: its schema, its batches and, when spilled, the mapping they point into.
pub(crate) struct Collected {
    pub(crate) schema: SchemaRef,
    pub(crate) batches: Vec<RecordBatch>,
    pub(crate) pages: Option<MappedPages>,
}

impl BatchSink {
    /// A sink for batches of `schema` (pushed batches are relabelled with it).
    pub(crate) fn new(schema: SchemaRef) -> Self {
        Self {
            schema,
            batches: Vec::new(),
            bytes: 0,
            limit: in_memory_max_size(),
            spill: None,
        }
    }

    /// Adds the next batch.
    pub(crate) fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let batch = if batch.schema() == self.schema {
            batch
        } else {
            RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())
                .map_err(|e| DatasetError::arrow("spill", e))?
        };
        if let Some((path, writer)) = &mut self.spill {
            return writer
                .write(&batch)
                .map_err(|e| DatasetError::arrow(path.display().to_string(), e));
        }
        self.bytes += batch_bytes(&batch);
        self.batches.push(batch);
        if self.bytes > self.limit {
            self.start_spill()?;
        }
        Ok(())
    }

    fn start_spill(&mut self) -> Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static SWEPT: std::sync::Once = std::sync::Once::new();
        let dir = spill_dir();
        std::fs::create_dir_all(&dir).map_err(DatasetError::io(&dir))?;
        SWEPT.call_once(|| sweep_stale(&dir));
        let path = dir.join(format!(
            "spill-{}-{}.arrow",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&path).map_err(DatasetError::io(&path))?;
        let origin = path.display().to_string();
        let mut writer = StreamWriter::try_new(BufWriter::new(file), &self.schema)
            .map_err(|e| DatasetError::arrow(&origin, e))?;
        for batch in self.batches.drain(..) {
            writer
                .write(&batch)
                .map_err(|e| DatasetError::arrow(&origin, e))?;
        }
        tracing::debug!(file = %path.display(), "spilling a large result to disk");
        self.spill = Some((path, writer));
        Ok(())
    }

    /// The collected batches: in memory, or memory-mapped from the spill file (which is
    /// unlinked once mapped).
    pub(crate) fn finish(self) -> Result<Collected> {
        let Some((path, mut writer)) = self.spill else {
            return Ok(Collected {
                schema: self.schema,
                batches: self.batches,
                pages: None,
            });
        };
        let result = (|| {
            let origin = path.display().to_string();
            writer
                .finish()
                .map_err(|e| DatasetError::arrow(&origin, e))?;
            let out = writer
                .into_inner()
                .map_err(|e| DatasetError::arrow(&origin, e))?;
            out.into_inner()
                .map_err(|e| DatasetError::io(&path)(e.into_error()))?;
            let mapped = MappedFile::open(&path)?;
            let (_, batches) = read_ipc_stream_mapped(&mapped, &path)?;
            Ok(Collected {
                schema: self.schema,
                batches,
                pages: Some(mapped.pages()),
            })
        })();
        // Mapped (or failed): the file's name is no longer needed either way.
        let _ = std::fs::remove_file(&path);
        result
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    #[allow(clippy::unwrap_used)]
    fn stale_spill_files_of_dead_processes_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        // Above Linux's largest pid (2^22), so no such process exists.
        let dead = dir.path().join("spill-4194400-0.arrow");
        let live = dir
            .path()
            .join(format!("spill-{}-7.arrow", std::process::id()));
        let other = dir.path().join("spill-notes.arrow");
        for f in [&dead, &live, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        super::sweep_stale(dir.path());
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
    }
}
