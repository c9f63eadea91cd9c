//! Arrow-backed datasets compatible with HuggingFace `datasets`.
//!
//! - [`Dataset`] and [`DatasetDict`]: Arrow record batches with `datasets` [`Features`]
//!   (`Value`, `ClassLabel`, `List`, dicts) stored in the schema metadata as `datasets` stores
//!   them;
//! - loaders for CSV / TSV, JSON Lines and JSON arrays, Parquet and plain text ([`load_file`]);
//! - transforms (select, take / skip, seeded shuffle, filter, batched map, select / remove /
//!   rename columns, unique, class_encode_column, cast, train_test_split), each with a
//!   fingerprint, and a [`TransformCache`] that stores results by fingerprint (corrupt entries
//!   are detected and recomputed);
//! - [`IterableDataset`]: streaming over files larger than memory (map, filter, skip / take,
//!   buffered shuffle, batches) with a resumable position;
//! - export to Parquet, CSV and JSON Lines, and [`Dataset::save_to_disk`] /
//!   [`load_from_disk`] in the folder format of `datasets` (Python reads ours, we read its).
//!
//! ```no_run
//! use embrace_datasets::{load_file, Dataset};
//! let tweets = load_file("tweets.csv".as_ref())?.class_encode_column("sentiment")?;
//! let (train, test) = tweets.train_test_split(0.2, Some(42))?;
//! train.save_to_disk("data/train".as_ref())?;
//! # Ok::<(), embrace_datasets::DatasetError>(())
//! ```
#![deny(missing_docs)]

pub mod cache;
mod dataset;
mod disk;
pub mod error;
pub mod features;
mod hub;
mod io;
mod mapped;
pub mod rng;
mod spill;
pub mod streaming;
mod tokenize;

pub use cache::TransformCache;
pub use dataset::{Dataset, DatasetDict};
pub use disk::{Loaded, load_from_disk, load_path};
pub use error::{DatasetError, Result};
pub use features::{Feature, Features};
pub use hub::{load_hub_dataset, parse_hub_uri, push_to_hub};
pub use io::{load_file, read_csv, read_csv_lossy, read_json, read_parquet, read_text};
pub use spill::set_in_memory_max_size;
pub use streaming::{Example, IterableDataset, StreamIter};
