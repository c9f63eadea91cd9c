//! Hub client and local cache.
//!
//! This crate is where a repo id and a revision become local files: the HTTP client of the Hub
//! API (download, upload, repo management) and the `~/.cache/huggingface/hub` layout shared with
//! Python `huggingface_hub`, configured by the environment variables HF users know (`HF_HOME`,
//! `HF_HUB_CACHE`, `HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_OFFLINE`). It sits below every other layer.
//!
//! - [`HubClient`]: downloads into the shared cache ([`HubClient::download_file`],
//!   [`HubClient::snapshot_download`]: resumable, verified, locked), uploads
//!   ([`HubClient::create_repo`], [`HubClient::upload_folder`]), [`HubClient::repo_info`],
//!   [`HubClient::whoami`] and [`HubClient::login`];
//! - [`Cache`]: reading the cache layout Python shares ([`Cache::lookup`]), importing local
//!   folders, listing, deleting and verifying cached repositories;
//! - [`HubConfig`]: the environment variables Hugging Face users know.
#![deny(missing_docs)]

mod cache;
mod client;
mod config;
mod import;
mod layout;
mod manage;
mod repo;

pub use cache::{Cache, CacheError, CacheLookup};
pub use client::{
    CommitEntry, CommitInfo, DownloadOptions, GitRef, GitRefs, HubClient, HubError, RepoFileInfo,
    RepoInfo, UploadOptions, WhoAmI,
};
pub use config::HubConfig;
pub use import::{ImportError, ImportReport, ImportedFile};
pub use layout::{fnmatch, walk};
pub use manage::{CachedRepo, CachedRevision, CorruptBlob, ManageError};
pub use repo::{RepoId, RepoIdError, RepoType};
