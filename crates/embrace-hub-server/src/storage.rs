//! Content-addressed blob storage.
//!
//! Every file a repository holds is stored once, named by the SHA-256 of its content. Uploads are
//! first written to a temporary file in `<data>/tmp`, hashed while they arrive, flushed to disk
//! and only then moved into the store under their hash ([`BlobStore::ingest`]). A blob therefore
//! becomes visible only complete and verified; a crash leaves at most a temporary file, which
//! [`BlobStore::clean_temp`] removes at the next start.
//!
//! Two backends: the local filesystem (`<data>/blobs/sha256/ab/<hash>`, the default, served with
//! large sequential reads) and any [`object_store::ObjectStore`] (S3-compatible storage with the
//! `s3` feature; the in-memory and local stores of `object_store` are used in tests).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::{Error, Result};

/// Size of the reads used to stream a blob to a client.
const READ_CHUNK: usize = 256 * 1024;
/// Part size for multipart puts to an object store.
const PUT_PART: usize = 8 * 1024 * 1024;

/// Where blob bytes live.
#[derive(Clone)]
enum Backend {
    /// `<root>/sha256/<2 hex>/<64 hex>` on the local filesystem.
    Local(PathBuf),
    /// An object store, objects named `sha256/<2 hex>/<64 hex>`.
    Object(Arc<dyn ObjectStore>),
}

/// The blob store plus the temporary directory uploads are staged in.
#[derive(Clone)]
pub struct BlobStore {
    backend: Backend,
    tmp_dir: PathBuf,
}

/// A staged upload: a complete, flushed temporary file and its hash.
#[derive(Debug)]
pub struct StagedBlob {
    /// Path of the temporary file.
    pub path: PathBuf,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Content length.
    pub size: u64,
}

impl BlobStore {
    /// Blobs on the local filesystem under `<data_dir>/blobs`, staging in `<data_dir>/tmp`.
    pub fn local(data_dir: &Path) -> Result<Self> {
        let root = data_dir.join("blobs");
        std::fs::create_dir_all(root.join("sha256"))?;
        let tmp_dir = data_dir.join("tmp");
        std::fs::create_dir_all(&tmp_dir)?;
        Ok(Self {
            backend: Backend::Local(root),
            tmp_dir,
        })
    }

    /// Blobs in an object store, staging in `<data_dir>/tmp`.
    pub fn object(store: Arc<dyn ObjectStore>, data_dir: &Path) -> Result<Self> {
        let tmp_dir = data_dir.join("tmp");
        std::fs::create_dir_all(&tmp_dir)?;
        Ok(Self {
            backend: Backend::Object(store),
            tmp_dir,
        })
    }

    /// A short name of the backend for logs.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Local(root) => format!("local filesystem at {}", root.display()),
            Backend::Object(store) => format!("object store {store}"),
        }
    }

    /// Removes leftovers of interrupted uploads. Called once at start-up, before serving.
    pub fn clean_temp(&self) -> Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.tmp_dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A new, empty temporary file for an upload.
    pub async fn temp_file(&self) -> Result<(PathBuf, tokio::fs::File)> {
        let name = format!(
            "{:016x}{:016x}.part",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let path = self.tmp_dir.join(name);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok((path, file))
    }

    /// Moves a staged, flushed temporary file into the store under its hash. Idempotent: a blob
    /// that already exists is kept and the staged copy removed.
    pub async fn ingest(&self, staged: &StagedBlob) -> Result<()> {
        match &self.backend {
            Backend::Local(root) => {
                let target = local_path(root, &staged.sha256);
                let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
                tokio::fs::create_dir_all(&dir).await?;
                if tokio::fs::try_exists(&target).await? {
                    tokio::fs::remove_file(&staged.path).await?;
                    return Ok(());
                }
                tokio::fs::rename(&staged.path, &target).await?;
                // Make the rename itself durable.
                let dir_handle = tokio::fs::File::open(&dir).await?;
                dir_handle.sync_all().await?;
                Ok(())
            }
            Backend::Object(store) => {
                let location = object_path(&staged.sha256);
                let mut file = tokio::fs::File::open(&staged.path).await?;
                if staged.size <= PUT_PART as u64 {
                    let mut buf = Vec::with_capacity(staged.size as usize);
                    file.read_to_end(&mut buf).await?;
                    store.put(&location, PutPayload::from(buf)).await?;
                } else {
                    let upload = store.put_multipart(&location).await?;
                    let mut writer = WriteMultipart::new_with_chunk_size(upload, PUT_PART);
                    let mut buf = vec![0u8; PUT_PART];
                    loop {
                        let n = file.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        writer.wait_for_capacity(4).await?;
                        writer.write(&buf[..n]);
                    }
                    writer.finish().await?;
                }
                drop(file);
                tokio::fs::remove_file(&staged.path).await?;
                Ok(())
            }
        }
    }

    /// True if the blob is stored.
    pub async fn exists(&self, sha256: &str) -> Result<bool> {
        match &self.backend {
            Backend::Local(root) => Ok(tokio::fs::try_exists(local_path(root, sha256)).await?),
            Backend::Object(store) => match store.head(&object_path(sha256)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Streams bytes `start..end` (end exclusive) of a blob as an HTTP body, without loading the
    /// blob into memory.
    pub async fn stream(&self, sha256: &str, start: u64, end: u64) -> Result<Body> {
        match &self.backend {
            Backend::Local(root) => {
                let mut file = tokio::fs::File::open(local_path(root, sha256)).await?;
                if start > 0 {
                    file.seek(std::io::SeekFrom::Start(start)).await?;
                }
                let reader = file.take(end.saturating_sub(start));
                let stream = tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK);
                Ok(Body::from_stream(stream))
            }
            Backend::Object(store) => {
                if start == end {
                    return Ok(Body::empty());
                }
                let options = GetOptions::new().with_range(Some(start..end));
                let result = store.get_opts(&object_path(sha256), options).await?;
                let stream = result
                    .into_stream()
                    .map(|chunk| chunk.map_err(std::io::Error::other));
                Ok(Body::from_stream(stream))
            }
        }
    }

    /// Reads a whole blob into memory, refusing blobs larger than `limit` bytes.
    pub async fn read_small(&self, sha256: &str, size: u64, limit: u64) -> Result<Bytes> {
        if size > limit {
            return Err(Error::Invalid(format!(
                "blob {sha256} has {size} bytes, more than the {limit} read into memory"
            )));
        }
        match &self.backend {
            Backend::Local(root) => Ok(Bytes::from(
                tokio::fs::read(local_path(root, sha256)).await?,
            )),
            Backend::Object(store) => Ok(store.get(&object_path(sha256)).await?.bytes().await?),
        }
    }

    /// Stages bytes already in memory (inline commit files) as a temporary file.
    pub async fn stage_bytes(&self, content: &[u8]) -> Result<StagedBlob> {
        use tokio::io::AsyncWriteExt;
        let (path, mut file) = self.temp_file().await?;
        file.write_all(content).await?;
        file.sync_all().await?;
        Ok(StagedBlob {
            path,
            sha256: crate::hashing::sha256_hex(content),
            size: content.len() as u64,
        })
    }
}

fn local_path(root: &Path, sha256: &str) -> PathBuf {
    root.join("sha256").join(&sha256[..2]).join(sha256)
}

fn object_path(sha256: &str) -> object_store::path::Path {
    object_store::path::Path::from(format!("sha256/{}/{sha256}", &sha256[..2]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;

    async fn roundtrip(store: BlobStore) {
        let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let staged = store.stage_bytes(&content).await.unwrap();
        let sha = staged.sha256.clone();
        assert!(!store.exists(&sha).await.unwrap());
        store.ingest(&staged).await.unwrap();
        assert!(store.exists(&sha).await.unwrap());
        assert!(!staged.path.exists(), "the staged file is consumed");
        let body = store.stream(&sha, 10, 5000).await.unwrap();
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], &content[10..5000]);
        let all = store
            .read_small(&sha, content.len() as u64, 1 << 20)
            .await
            .unwrap();
        assert_eq!(&all[..], &content[..]);
        // Ingesting the same content again is harmless.
        let again = store.stage_bytes(&content).await.unwrap();
        store.ingest(&again).await.unwrap();
    }

    #[tokio::test]
    async fn local_store_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        roundtrip(BlobStore::local(dir.path()).unwrap()).await;
    }

    #[tokio::test]
    async fn object_store_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Arc::new(object_store::memory::InMemory::new());
        roundtrip(BlobStore::object(memory, dir.path()).unwrap()).await;
    }

    #[tokio::test]
    async fn leftovers_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let (path, _) = store.temp_file().await.unwrap();
        assert!(path.exists());
        assert_eq!(store.clean_temp().unwrap(), 1);
        assert!(!path.exists());
    }
}
