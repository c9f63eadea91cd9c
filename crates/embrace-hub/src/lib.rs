//! Hub client and local cache.
//!
//! This crate is where a repo id and a revision become local files: the HTTP client of the Hub
//! API (download, upload, repo management) and the `~/.cache/huggingface/hub` layout shared with
//! Python `huggingface_hub`, configured by the environment variables HF users know (`HF_HOME`,
//! `HF_HUB_CACHE`, `HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_OFFLINE`). It sits below every other layer.
//!
//! Status: [`RepoId`] parsing, [`HubConfig`] from the environment, and reading the shared cache
//! ([`Cache::lookup`]), so files that Python (or any compatible client) downloaded are found
//! without a network call. Downloading and uploading are the hub-client issue's next steps.
#![deny(missing_docs)]

mod cache;
mod config;
mod import;
mod manage;
mod repo;

pub use cache::{Cache, CacheError, CacheLookup};
pub use config::HubConfig;
pub use import::{ImportError, ImportReport, ImportedFile};
pub use manage::{CachedRepo, CachedRevision, CorruptBlob, ManageError};
pub use repo::{RepoId, RepoIdError, RepoType};
