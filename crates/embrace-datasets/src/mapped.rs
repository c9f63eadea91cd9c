//! Memory-mapped Arrow IPC files: the tables of `load_from_disk` and of the transform cache
//! point into the page cache instead of being copied into the heap, as `datasets` (pyarrow)
//! memory-maps its `.arrow` files.
//!
//! Invariants:
//! - The record batches' buffers borrow the mapping (zero-copy where aligned; arrow copies
//!   the rare unaligned buffer); the mapping lives as long as any batch does.
//! - Every batch is validated by arrow as it is decoded (offsets in bounds, UTF-8), so a
//!   corrupted file is an error, never undefined behaviour. Validation touches the pages it
//!   reads; each decoded range is then released from this process's page tables
//!   (`MADV_DONTNEED` on a read-only mapping: the pages stay in the page cache and fault
//!   back in on access), so opening a file costs memory in proportion to one record batch,
//!   not to the file.
//! - As with any mapped file, the file must not be truncated or rewritten in place while
//!   mapped. Embrace never does either: every write goes to a temporary file that is renamed.

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Weak};

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamDecoder;
use memmap2::{Mmap, UncheckedAdvice};

use crate::error::{DatasetError, Result};

/// A read-only mapping of a whole file, shared by the buffers that point into it.
#[derive(Clone)]
pub(crate) struct MappedFile(Arc<Mmap>);

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MappedFile({} bytes)", self.0.len())
    }
}

/// A handle that can release a mapping's resident pages without keeping the mapping alive:
/// datasets carry these for the files their batches point into, and the mapping goes away
/// (and an unlinked spill file's disk space with it) when the last batch using it is dropped.
#[derive(Debug, Clone)]
pub(crate) struct MappedPages(Weak<Mmap>);

impl MappedPages {
    /// Whether the mapping still exists.
    pub(crate) fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }

    /// Drops the whole mapping from this process's resident pages, if it still exists.
    pub(crate) fn release(&self) {
        if let Some(map) = self.0.upgrade() {
            let file = MappedFile(map);
            file.release(0, file.bytes().len());
        }
    }
}

/// Lets `bytes::Bytes` (and so arrow's `Buffer`) own a reference to the mapping.
struct Owner(Arc<Mmap>);

impl AsRef<[u8]> for Owner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl MappedFile {
    /// Maps `path` read-only. An empty file maps to an empty slice.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(DatasetError::io(path))?;
        // SAFETY: the mapping is read-only and Embrace never modifies a file in place (writes
        // go to a temporary file that is renamed over the old one, which leaves this mapping
        // on the old inode). Another program truncating the file while it is mapped is the
        // caveat of every memory-mapped reader, pyarrow's included.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }.map_err(DatasetError::io(path))?;
        Ok(Self(Arc::new(map)))
    }

    /// A releasing handle that does not keep the mapping alive.
    pub(crate) fn pages(&self) -> MappedPages {
        MappedPages(Arc::downgrade(&self.0))
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The whole file as an arrow buffer that keeps the mapping alive.
    pub(crate) fn buffer(&self) -> Buffer {
        Buffer::from(bytes::Bytes::from_owner(Owner(self.0.clone())))
    }

    /// Drops `start..end` from this process's resident pages; the data stays readable.
    pub(crate) fn release(&self, start: usize, end: usize) {
        if end <= start || end > self.0.len() {
            return;
        }
        // SAFETY: MADV_DONTNEED on a read-only shared file mapping discards only page-table
        // entries; later reads fault the same file contents back in from the page cache. No
        // private dirty pages exist that could be lost.
        #[allow(unsafe_code)]
        let result = unsafe {
            self.0
                .unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "madvise(DONTNEED) failed; pages stay resident");
        }
    }

    /// Runs `f` over the bytes in chunks of `chunk` bytes, releasing each chunk after use, so
    /// that a pass over a large file (a checksum) keeps little of it resident.
    pub(crate) fn for_each_chunk(&self, chunk: usize, mut f: impl FnMut(&[u8])) {
        let bytes = self.bytes();
        let mut start = 0;
        while start < bytes.len() {
            let end = (start + chunk).min(bytes.len());
            f(&bytes[start..end]);
            self.release(start, end);
            start = end;
        }
    }
}

/// Reads an Arrow IPC stream (the `.arrow` files of `datasets`) through a memory mapping.
/// Returns the schema, the batches (which borrow the mapping) and a handle to release its pages. A truncated or corrupted
/// stream is an error naming `path`.
pub(crate) fn read_ipc_stream(path: &Path) -> Result<(SchemaRef, Vec<RecordBatch>, MappedPages)> {
    let file = MappedFile::open(path)?;
    let (schema, batches) = read_ipc_stream_mapped(&file, path)?;
    Ok((schema, batches, file.pages()))
}

/// [`read_ipc_stream`] over an already mapped file.
pub(crate) fn read_ipc_stream_mapped(
    file: &MappedFile,
    path: &Path,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let origin = || path.display().to_string();
    let mut buffer = file.buffer();
    let total = buffer.len();
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    let (mut previous, mut released) = (0, 0);
    while !buffer.is_empty() {
        match decoder
            .decode(&mut buffer)
            .map_err(|e| DatasetError::arrow(origin(), e))?
        {
            Some(batch) => batches.push(batch),
            None if buffer.is_empty() => break,
            None => {}
        }
        // Reading the next message touches the page where this one ended, and the kernel maps
        // a window of neighbouring pages with it; releasing from one batch back drops those too.
        let consumed = total - buffer.len();
        file.release(previous, consumed);
        (previous, released) = (released, consumed);
    }
    decoder
        .finish()
        .map_err(|e| DatasetError::arrow(origin(), e))?;
    let schema = decoder.schema().ok_or_else(|| {
        DatasetError::Metadata(format!("{}: no schema in the Arrow stream", path.display()))
    })?;
    Ok((schema, batches))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rss_file_kb() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("RssFile:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap()
    }

    #[test]
    fn release_drops_resident_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![7u8; 64 << 20]).unwrap();
        let file = MappedFile::open(&path).unwrap();
        let before = rss_file_kb();
        let sum: u64 = file.bytes().iter().step_by(4096).map(|&b| b as u64).sum();
        assert_eq!(sum, 7 * (16 << 10));
        let touched = rss_file_kb();
        file.pages().release();
        let after = rss_file_kb();
        assert!(touched > before + 60_000);
        assert!(after < touched - 60_000);
    }
}
