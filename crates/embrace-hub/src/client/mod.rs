//! The HTTP client of the Hub API: downloads into the shared cache (`hf_hub_download`,
//! `snapshot_download`), uploads (`create_repo`, `upload_folder`), repository metadata and
//! `whoami`, with the semantics of `huggingface_hub`.
//!
//! Invariants:
//! - Nothing half-written is ever visible in the cache: a blob is downloaded to
//!   `blobs/<etag>.incomplete`, checked (length, and SHA-256 or git blob id), flushed and renamed;
//!   only then is the snapshot symlink created.
//! - An interrupted download keeps its `.incomplete` file and the next attempt resumes it with a
//!   `Range` request.
//! - Two processes downloading the same blob serialise on `.locks/<repo folder>/<etag>.lock`.
//! - With `HF_HUB_OFFLINE=1` no request is sent at all.

mod api;
mod download;
mod upload;

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::HeaderMap;

use crate::cache::{Cache, CacheError};
use crate::config::HubConfig;
use crate::repo::RepoType;

pub use api::{CommitEntry, GitRef, GitRefs, RepoFileInfo, RepoInfo, WhoAmI};
pub use download::DownloadOptions;
pub use upload::{CommitInfo, UploadOptions};

/// What can go wrong talking to a hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Offline mode (`HF_HUB_OFFLINE=1`) and the file is not in the cache.
    #[error(
        "{what} is not in the cache at {cache} and offline mode is on (HF_HUB_OFFLINE=1): \
         download it once with network access"
    )]
    NotCached {
        /// What was asked for.
        what: String,
        /// The cache folder.
        cache: String,
    },
    /// The repository does not exist, or is private and the token (if any) cannot see it.
    #[error(
        "repository {repo} not found on {endpoint}: check the id, and pass a token (HF_TOKEN or `embrace login`) if it is private"
    )]
    RepoNotFound {
        /// The repository id.
        repo: String,
        /// The server.
        endpoint: String,
    },
    /// The revision (branch, tag or commit) does not exist.
    #[error("revision {revision:?} not found in {repo}")]
    RevisionNotFound {
        /// The repository id.
        repo: String,
        /// The revision asked for.
        revision: String,
    },
    /// The file does not exist at that revision.
    #[error("{path} does not exist in {repo} at revision {revision}")]
    EntryNotFound {
        /// The repository id.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The file path.
        path: String,
    },
    /// The token was refused.
    #[error(
        "the server refused the token ({message}): check HF_TOKEN or run `embrace login` again"
    )]
    Unauthorized {
        /// The server's message.
        message: String,
    },
    /// The token is valid but may not do this.
    #[error("forbidden: {message}")]
    Forbidden {
        /// The server's message.
        message: String,
    },
    /// A commit's parent is no longer the branch head.
    #[error("the branch moved since the parent commit was read ({message}); fetch and retry")]
    Conflict {
        /// The server's message.
        message: String,
    },
    /// Any other HTTP error.
    #[error("HTTP {status} from {url}: {message}")]
    Http {
        /// Status code.
        status: u16,
        /// The URL.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The connection failed or dropped.
    #[error("network error talking to {url}: {source}")]
    Network {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// A download ended early (the partial file is kept and resumed by the next attempt).
    #[error("download of {path} stopped after {received} of {expected} bytes; run again to resume")]
    Incomplete {
        /// The file path.
        path: String,
        /// Bytes on disk.
        received: u64,
        /// Expected size.
        expected: u64,
    },
    /// Downloaded bytes do not hash to the expected value (the download is discarded).
    #[error(
        "checksum mismatch for {path}: expected {expected}, got {actual}; the download was discarded"
    )]
    ChecksumMismatch {
        /// The file path.
        path: String,
        /// Expected digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// The server is not a Hub API server (a required header is missing).
    #[error("{url} does not answer like a Hugging Face Hub (missing {header} header)")]
    NotAHub {
        /// The URL.
        url: String,
        /// The missing header.
        header: &'static str,
    },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A bad cache request (invalid path or revision).
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Invalid input (e.g. a malformed server answer).
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> HubError + '_ {
    move |source| HubError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A client for one hub endpoint and one cache.
pub struct HubClient {
    config: HubConfig,
    cache: Cache,
    http: Client,
    progress: bool,
}

impl HubClient {
    /// A client configured from the environment (`HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`,
    /// `HF_TOKEN`, `HF_HUB_OFFLINE`, `HF_HUB_DISABLE_PROGRESS_BARS`).
    pub fn from_env() -> Result<Self, HubError> {
        let mut client = Self::new(HubConfig::from_env())?;
        client.progress = !std::env::var("HF_HUB_DISABLE_PROGRESS_BARS")
            .is_ok_and(|v| matches!(v.to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE"));
        Ok(client)
    }

    /// A client with an explicit configuration (no progress bars).
    pub fn new(config: HubConfig) -> Result<Self, HubError> {
        // rustls needs one process-wide crypto provider; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(None)
            .user_agent(concat!(
                "embrace/",
                env!("CARGO_PKG_VERSION"),
                "; hf_hub/compatible; rust"
            ))
            .build()
            .map_err(|e| HubError::Invalid(format!("cannot create the HTTP client: {e}")))?;
        Ok(Self {
            cache: Cache::from_config(&config),
            config,
            http,
            progress: false,
        })
    }

    /// Shows progress bars on downloads and uploads.
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.config.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request, mapping connection failures.
    fn send(&self, request: RequestBuilder, url: &str) -> Result<Response, HubError> {
        if self.config.offline {
            return Err(HubError::NotCached {
                what: url.to_string(),
                cache: self.cache.dir().display().to_string(),
            });
        }
        request.send().map_err(|source| HubError::Network {
            url: url.to_string(),
            source,
        })
    }

    /// `{endpoint}/api/{type}s/{id}`.
    fn api_url(&self, repo: &crate::RepoId) -> String {
        format!(
            "{}/api/{}/{}",
            self.config.endpoint,
            repo.repo_type().plural(),
            repo.id()
        )
    }

    /// `{endpoint}/{prefix}{id}`.
    fn repo_url(&self, repo: &crate::RepoId) -> String {
        let prefix = match repo.repo_type() {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
            RepoType::Space => "spaces/",
        };
        format!("{}/{prefix}{}", self.config.endpoint, repo.id())
    }
}

/// What a request was about, to name it in errors.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) repo: &'a crate::RepoId,
    pub(crate) revision: &'a str,
    pub(crate) path: Option<&'a str>,
    pub(crate) endpoint: &'a str,
}

/// Maps an error answer to a [`HubError`] using status and `X-Error-Code`.
pub(crate) fn error_for(
    status: u16,
    headers: &HeaderMap,
    body: &str,
    url: &str,
    target: &Target<'_>,
) -> HubError {
    let Target {
        repo,
        revision,
        path,
        endpoint,
    } = *target;
    let code = headers
        .get("x-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let message = headers
        .get("x-error-message")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    match (status, code) {
        (_, "RepoNotFound") => HubError::RepoNotFound {
            repo: repo.to_string(),
            endpoint: endpoint.to_string(),
        },
        (_, "RevisionNotFound") => HubError::RevisionNotFound {
            repo: repo.to_string(),
            revision: revision.to_string(),
        },
        (_, "EntryNotFound") => HubError::EntryNotFound {
            repo: repo.to_string(),
            revision: revision.to_string(),
            path: path.unwrap_or("").to_string(),
        },
        (401, _) => HubError::Unauthorized { message },
        (403, _) => HubError::Forbidden { message },
        (412, _) => HubError::Conflict { message },
        _ => HubError::Http {
            status,
            url: url.to_string(),
            message,
        },
    }
}

/// Percent-encodes one URL path segment (a revision: `refs/pr/1` → `refs%2Fpr%2F1`).
pub(crate) fn encode_segment(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// Percent-encodes a repository path, keeping `/`.
pub(crate) fn encode_path(s: &str) -> String {
    s.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}
