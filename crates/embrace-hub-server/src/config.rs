//! Server settings.

use std::path::PathBuf;

/// Where blob bytes are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// `<data>/blobs` on the local filesystem (the default).
    Local,
    /// An `object_store` URL: `file:///absolute/dir`, or `s3://bucket[/prefix]` (needs the `s3`
    /// feature; endpoint and credentials come from the usual `AWS_*` variables, e.g.
    /// `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ALLOW_HTTP` for MinIO).
    ObjectStore(String),
}

/// Everything the server needs to know.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Directory for the metadata database, local blobs and upload staging.
    pub data_dir: PathBuf,
    /// The URL clients use to reach the server (scheme, host, port, optional path prefix; no
    /// trailing slash). Every URL the server emits (pagination links, upload links, repo URLs)
    /// is built from it.
    pub public_url: String,
    /// Files of at least this many bytes are uploaded through LFS (preupload answer).
    pub lfs_threshold: u64,
    /// Largest accepted commit body (inline files are base64 in it).
    pub max_commit_bytes: u64,
    /// Largest accepted LFS object.
    pub max_lfs_bytes: u64,
    /// Blob storage backend.
    pub storage: StorageConfig,
}

impl ServerConfig {
    /// Defaults for a data directory and public URL: 10 MiB LFS threshold, 1 GiB commit bodies,
    /// 100 GiB LFS objects, local blob storage.
    pub fn new(data_dir: impl Into<PathBuf>, public_url: impl Into<String>) -> Self {
        Self {
            data_dir: data_dir.into(),
            public_url: public_url.into().trim_end_matches('/').to_string(),
            lfs_threshold: 10 * 1024 * 1024,
            max_commit_bytes: 1 << 30,
            max_lfs_bytes: 100 << 30,
            storage: StorageConfig::Local,
        }
    }
}
