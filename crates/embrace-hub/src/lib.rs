//! Hub client and local cache.
//!
//! This crate is where a repo id and a revision become local files: the HTTP client of the Hub
//! API (download, upload, repo management) and the `~/.cache/huggingface/hub` layout shared with
//! Python `huggingface_hub`, configured by the environment variables HF users know (`HF_HOME`,
//! `HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_OFFLINE`). It sits below every other layer.
//!
//! Status: planned (issue "Hub client"); nothing is implemented yet.
#![deny(missing_docs)]
