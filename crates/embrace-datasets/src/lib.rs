//! Arrow-backed datasets.
//!
//! This crate is where tabular and text data live: `Dataset` and `DatasetDict` over Arrow record
//! batches, loaders for CSV, JSON, Parquet, Arrow and text, transforms (map, filter, shuffle,
//! split, ...) with a fingerprinted cache, streaming datasets, and `save_to_disk` in the same
//! on-disk format as Python `datasets`. It sits beside the model layer and below pipelines and
//! training.
//!
//! Status: planned (issue "Datasets"); nothing is implemented yet.
#![deny(missing_docs)]
