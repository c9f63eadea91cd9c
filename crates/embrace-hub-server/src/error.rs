//! Errors: the library's own error type for set-up and storage, and [`ApiError`], an HTTP error
//! shaped the way Hub clients parse it (status, `X-Error-Code`, `X-Error-Message`, JSON body).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::ids::printable;

/// Failures of the server's storage and metadata layers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem or network I/O failure.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A SQLite failure.
    #[error("metadata database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An object store failure.
    #[error("object store error: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// Invalid configuration or arguments (unknown user, bad role, duplicate name...).
    #[error("{0}")]
    Invalid(String),
}

/// Result with the server's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error answer of the Hub API.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Value of `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`), if any.
    pub code: Option<&'static str>,
    /// Human-readable message (header and JSON body).
    pub message: String,
    /// Rarely used parts, boxed to keep the error small.
    pub extra: Option<Box<ErrorExtra>>,
}

/// Optional parts of an [`ApiError`].
#[derive(Debug, Clone, Default)]
pub struct ErrorExtra {
    /// `X-Repo-Commit` to send along (only for `EntryNotFound` on `/resolve/`).
    pub repo_commit: Option<String>,
    /// Extra header, e.g. `Content-Range` on 416.
    pub header: Option<(&'static str, String)>,
    /// Extra fields of the JSON body (e.g. `url` on a 409 from repo creation).
    pub body: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    /// An error with a status and message and no error code.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code: None,
            message: message.into(),
            extra: None,
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404 Not Found (no error code: routes that do not exist).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409 Conflict.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 413 Payload Too Large.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// 500 Internal Server Error; the details go to the log, not to the client.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {err}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }

    /// `RepoNotFound`: 401 for anonymous callers, 404 for authenticated ones, as the Hub does.
    pub fn repo_not_found(authenticated: bool) -> Self {
        let status = if authenticated {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::UNAUTHORIZED
        };
        Self {
            code: Some("RepoNotFound"),
            ..Self::new(
                status,
                "Repository not found. Check the repository id, and pass a token if the repository is private.",
            )
        }
    }

    /// `RevisionNotFound` (404).
    pub fn revision_not_found(revision: &str) -> Self {
        Self {
            code: Some("RevisionNotFound"),
            ..Self::not_found(format!("Invalid rev id: {}", printable(revision)))
        }
    }

    /// `EntryNotFound` (404), with the commit the revision resolved to.
    pub fn entry_not_found(path: &str, commit: Option<&str>) -> Self {
        let mut err = Self {
            code: Some("EntryNotFound"),
            ..Self::not_found(format!("Entry not found: {}", printable(path)))
        };
        if let Some(commit) = commit {
            err.extra_mut().repo_commit = Some(commit.to_string());
        }
        err
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid(message) => ApiError::bad_request(message),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.message });
        let extra = self.extra.map(|e| *e).unwrap_or_default();
        if let Some(map) = body.as_object_mut() {
            map.extend(extra.body);
        }
        let body = body.to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if let Some(code) = self.code {
            headers.insert("x-error-code", HeaderValue::from_static(code));
        }
        if let Ok(value) = HeaderValue::from_str(&printable(&self.message)) {
            headers.insert("x-error-message", value);
        }
        if let Some(commit) = extra.repo_commit
            && let Ok(value) = HeaderValue::from_str(&commit)
        {
            headers.insert("x-repo-commit", value);
        }
        if let Some((name, value)) = extra.header
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            headers.insert(name, value);
        }
        response
    }
}

impl ApiError {
    /// The optional parts, created on first use.
    pub fn extra_mut(&mut self) -> &mut ErrorExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// The same error with another message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}
