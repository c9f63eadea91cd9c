//! The HTTP front: one dispatcher that routes on the raw (still percent-encoded) path, so that an
//! encoded `%2F` in a revision never splits a segment, then hands over to the handlers of each
//! part of the API.

mod lfs;
pub(crate) mod read;
mod route;
pub(crate) mod util;
mod write;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};

use crate::config::ServerConfig;
use crate::db::{Db, Repo, Role, TokenInfo};
use crate::error::ApiError;
use crate::ids::{RepoId, RepoType};
use crate::storage::BlobStore;
pub(crate) use read::repo_meta as read_meta;
pub use route::Route;

/// Everything a request handler needs.
pub struct AppState {
    /// Metadata.
    pub db: Arc<Db>,
    /// Blob bytes.
    pub store: BlobStore,
    /// Settings.
    pub config: ServerConfig,
    /// Key for signing LFS upload URLs.
    pub signing_key: Vec<u8>,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No token.
    Anonymous,
    /// A valid token.
    User(TokenInfo),
}

impl Caller {
    /// The user name, if authenticated.
    pub fn name(&self) -> Option<&str> {
        match self {
            Caller::Anonymous => None,
            Caller::User(t) => Some(&t.user.name),
        }
    }

    fn owns(&self, namespace: &str) -> bool {
        self.name()
            .is_some_and(|n| n.eq_ignore_ascii_case(namespace))
    }
}

/// The axum router serving the whole API and the web UI.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let request_id = crate::hashing::hex(&rand::random::<[u8; 8]>());
    let mut response = match route_request(&state, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    tracing::info!(
        target: "embrace_hub_server::access",
        "{method} {path} {} {:.1}ms id={request_id}",
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

async fn route_request(state: &Arc<AppState>, request: Request) -> Result<Response, ApiError> {
    let route = Route::parse(request.method(), request.uri().path())?;
    let caller = authenticate(state, request.headers()).await?;
    let ctx = Ctx {
        state: state.clone(),
        caller,
        raw_path: request.uri().path().to_string(),
        query: util::Query::parse(request.uri().query()),
    };
    let (parts, body) = request.into_parts();
    let head = parts.method == Method::HEAD;
    match route {
        Route::Resolve {
            repo_type,
            repo_id,
            revision,
            path,
        } => {
            read::resolve(
                &ctx,
                repo_type,
                &repo_id,
                &revision,
                &path,
                &parts.headers,
                head,
            )
            .await
        }
        Route::RepoInfo {
            repo_type,
            repo_id,
            revision,
        } => read::repo_info(&ctx, repo_type, &repo_id, revision.as_deref()).await,
        Route::List { repo_type } => read::list(&ctx, repo_type).await,
        Route::Tree {
            repo_type,
            repo_id,
            revision,
            path,
        } => read::tree(&ctx, repo_type, &repo_id, &revision, &path).await,
        Route::PathsInfo {
            repo_type,
            repo_id,
            revision,
        } => read::paths_info(&ctx, repo_type, &repo_id, &revision, &parts.headers, body).await,
        Route::Refs { repo_type, repo_id } => read::refs(&ctx, repo_type, &repo_id).await,
        Route::Commits {
            repo_type,
            repo_id,
            revision,
        } => read::commits(&ctx, repo_type, &repo_id, &revision).await,
        Route::Discussions { repo_type, repo_id } => {
            read::discussions(&ctx, repo_type, &repo_id).await
        }
        Route::WhoAmI => read::whoami(&ctx),
        Route::ValidateYaml => read::validate_yaml(body).await,
        Route::CreateRepo => write::create_repo(&ctx, body).await,
        Route::DeleteRepo => write::delete_repo(&ctx, body).await,
        Route::Settings { repo_type, repo_id } => {
            write::settings(&ctx, repo_type, &repo_id, body).await
        }
        Route::Preupload {
            repo_type,
            repo_id,
            revision,
        } => write::preupload(&ctx, repo_type, &repo_id, &revision, body).await,
        Route::Commit {
            repo_type,
            repo_id,
            revision,
        } => write::commit(&ctx, repo_type, &repo_id, &revision, body).await,
        Route::CreateBranch {
            repo_type,
            repo_id,
            branch,
        } => write::create_branch(&ctx, repo_type, &repo_id, &branch, body).await,
        Route::DeleteBranch {
            repo_type,
            repo_id,
            branch,
        } => write::delete_branch(&ctx, repo_type, &repo_id, &branch).await,
        Route::CreateTag {
            repo_type,
            repo_id,
            revision,
        } => write::create_tag(&ctx, repo_type, &repo_id, &revision, body).await,
        Route::DeleteTag {
            repo_type,
            repo_id,
            tag,
        } => write::delete_tag(&ctx, repo_type, &repo_id, &tag).await,
        Route::LfsBatch { repo_type, repo_id } => lfs::batch(&ctx, repo_type, &repo_id, body).await,
        Route::LfsUpload { token } => lfs::upload(&ctx, &token, body).await,
        Route::LfsVerify { repo_type, repo_id } => {
            lfs::verify(&ctx, repo_type, &repo_id, body).await
        }
        Route::Ui(page) => crate::ui::render(&ctx, page).await,
    }
}

/// A request's context: the state, the caller, the raw path and the query.
pub struct Ctx {
    /// Shared state.
    pub state: Arc<AppState>,
    /// The authenticated caller.
    pub caller: Caller,
    /// The request path as sent (percent-encoded).
    pub raw_path: String,
    /// The parsed query string.
    pub query: util::Query,
}

impl Ctx {
    /// Runs a database call on the blocking pool.
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> crate::error::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let db = self.state.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }

    /// The public base URL (no trailing slash).
    pub fn public_url(&self) -> &str {
        &self.state.config.public_url
    }

    /// Loads a repository the caller may see (private ones only for their owner), or fails with
    /// `RepoNotFound` exactly as for a missing repository.
    pub async fn readable_repo(
        &self,
        repo_type: RepoType,
        repo_id: &RepoId,
    ) -> Result<Repo, ApiError> {
        let id = repo_id.clone();
        let repo = self.db(move |db| db.repo(repo_type, &id)).await?;
        let authenticated = matches!(self.caller, Caller::User(_));
        match repo {
            Some(repo) if !repo.private || self.caller.owns(&repo.repo_id.namespace) => Ok(repo),
            _ => Err(ApiError::repo_not_found(authenticated)),
        }
    }

    /// Loads a repository the caller may write to.
    pub async fn writable_repo(
        &self,
        repo_type: RepoType,
        repo_id: &RepoId,
    ) -> Result<Repo, ApiError> {
        let repo = self.readable_repo(repo_type, repo_id).await?;
        self.require_write(&repo.repo_id.namespace)?;
        Ok(repo)
    }

    /// Fails unless the caller holds a write token of the namespace's owner.
    pub fn require_write(&self, namespace: &str) -> Result<&TokenInfo, ApiError> {
        match &self.caller {
            Caller::Anonymous => Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "You must be authenticated with a write token to do this",
            )),
            Caller::User(token) if token.role != Role::Write => Err(ApiError::forbidden(format!(
                "Your token '{}' has the read role; this action needs a write token",
                token.name
            ))),
            Caller::User(token) if !self.caller.owns(namespace) => {
                Err(ApiError::forbidden(format!(
                    "You do not have write access to the '{}' namespace",
                    crate::ids::printable(namespace)
                )))
            }
            Caller::User(token) => Ok(token),
        }
    }

    /// Resolves a revision of a repository to a commit, or `RevisionNotFound`.
    pub async fn resolve_revision(&self, repo: &Repo, revision: &str) -> Result<String, ApiError> {
        let (r, rev) = (repo.clone(), revision.to_string());
        self.db(move |db| db.resolve_revision(&r, &rev))
            .await?
            .ok_or_else(|| ApiError::revision_not_found(revision))
    }
}

async fn authenticate(
    state: &Arc<AppState>,
    headers: &axum::http::HeaderMap,
) -> Result<Caller, ApiError> {
    let Some(value) = headers.get("authorization") else {
        return Ok(Caller::Anonymous);
    };
    let value = value.to_str().unwrap_or("");
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .unwrap_or("")
        .trim();
    if token.is_empty() {
        return Ok(Caller::Anonymous);
    }
    let db = state.db.clone();
    let token = token.to_string();
    let info = tokio::task::spawn_blocking(move || db.authenticate(&token))
        .await
        .map_err(ApiError::internal)??;
    match info {
        Some(info) => Ok(Caller::User(info)),
        None => Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "Invalid credentials in Authorization header",
        )),
    }
}
