//! A self-hostable model and dataset hub.
//!
//! This crate is where the server side of sharing lives: the Hub HTTP API (resolve, repo
//! metadata, tree, commits, LFS, refs, auth) so that stock HuggingFace clients work against it
//! unchanged, with content-addressed blobs behind `object_store` and metadata in SQLite. It
//! stands on its own and depends on no other Embrace crate.
//!
//! Status: planned (issue "Hub server"); nothing is implemented yet.
#![deny(missing_docs)]
