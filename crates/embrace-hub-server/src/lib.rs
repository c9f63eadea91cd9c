//! A self-hostable model and dataset hub that speaks the Hugging Face Hub HTTP API.
//!
//! Stock clients (`huggingface_hub`, `transformers`, `datasets`, the Rust `hf-hub` crate) work
//! against it by setting `HF_ENDPOINT`. The layers, from the bottom:
//!
//! - [`ids`]: repository ids, paths, revisions and dates, validated at the edge;
//! - [`hashing`]: git blob ids, SHA-256 and LFS pointers, the names clients cache files by;
//! - [`storage`]: content-addressed blobs (local filesystem or any `object_store`), written to a
//!   temporary file, flushed, then renamed into place;
//! - [`db`]: metadata in SQLite (users, tokens, repositories, immutable commits, refs moved by
//!   compare-and-swap);
//! - [`card`]: model and dataset cards (front matter, derived tags);
//! - `http`: the API routes, and [`ui`]: the server-rendered web pages.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use embrace_hub_server::{Hub, ServerConfig};
//! let hub = Hub::open(ServerConfig::new("/var/lib/embrace-hub", "http://127.0.0.1:8000"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! hub.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod card;
pub mod config;
pub mod db;
pub mod error;
mod glob;
pub mod hashing;
mod http;
pub mod ids;
pub mod storage;
pub mod ui;

use std::future::Future;
use std::sync::Arc;

pub use config::{ServerConfig, StorageConfig};
pub use db::{Db, Role};
pub use error::{Error, Result};

use storage::BlobStore;

/// An opened hub: database, blob store and settings, ready to serve.
pub struct Hub {
    state: Arc<http::AppState>,
}

impl Hub {
    /// Opens (creating if needed) the hub in `config.data_dir`: applies the database schema,
    /// removes leftovers of interrupted uploads and loads the URL-signing key.
    pub fn open(config: ServerConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir)?;
        let db = Arc::new(Db::open(&config.data_dir)?);
        let store = open_store(&config)?;
        let removed = store.clean_temp()?;
        if removed > 0 {
            tracing::warn!("removed {removed} incomplete upload(s) left by an earlier run");
        }
        let key = db.secret("upload_signing_key")?;
        tracing::info!("blobs: {}", store.describe());
        Ok(Self {
            state: Arc::new(http::AppState {
                db,
                store,
                config,
                signing_key: key.into_bytes(),
            }),
        })
    }

    /// The metadata database (for user and token administration).
    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// The axum router of the API and web UI.
    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// Serves on a bound listener until `shutdown` completes, then finishes in-flight requests.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// A hub served from a background thread with its own runtime (tests, embedding in another
/// program). Dropping it shuts the server down gracefully and waits for it.
pub struct BackgroundHub {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hub {
    /// Serves on an already bound listener from a new thread, until the returned handle is
    /// stopped or dropped.
    pub fn spawn(self, listener: std::net::TcpListener) -> std::io::Result<BackgroundHub> {
        listener.set_nonblocking(true)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let served = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        self.serve(listener, async {
                            let _ = rx.await;
                        })
                        .await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = served {
                    tracing::error!("background hub stopped: {e}");
                }
            });
        });
        Ok(BackgroundHub {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl BackgroundHub {
    /// Stops accepting, finishes running requests and waits for the server thread.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BackgroundHub {
    fn drop(&mut self) {
        self.stop();
    }
}

fn open_store(config: &ServerConfig) -> Result<BlobStore> {
    match &config.storage {
        StorageConfig::Local => BlobStore::local(&config.data_dir),
        StorageConfig::ObjectStore(url) => {
            if let Some(path) = url.strip_prefix("file://") {
                std::fs::create_dir_all(path)?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(path)?;
                return BlobStore::object(Arc::new(store), &config.data_dir);
            }
            if let Some(rest) = url.strip_prefix("s3://") {
                return open_s3(rest, &config.data_dir);
            }
            Err(Error::Invalid(format!(
                "unsupported storage URL '{url}': use file:///dir or s3://bucket"
            )))
        }
    }
}

#[cfg(feature = "s3")]
fn open_s3(bucket_and_prefix: &str, data_dir: &std::path::Path) -> Result<BlobStore> {
    let (bucket, prefix) = bucket_and_prefix
        .split_once('/')
        .unwrap_or((bucket_and_prefix, ""));
    let s3 = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()?;
    let store: Arc<dyn object_store::ObjectStore> = if prefix.is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
    };
    BlobStore::object(store, data_dir)
}

#[cfg(not(feature = "s3"))]
fn open_s3(_: &str, _: &std::path::Path) -> Result<BlobStore> {
    Err(Error::Invalid(
        "this build has no S3 support: rebuild with the `s3` feature of embrace-hub-server".into(),
    ))
}
