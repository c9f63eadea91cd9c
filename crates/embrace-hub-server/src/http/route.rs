//! Maps a method and a raw request path to a [`Route`].

use axum::http::Method;
use percent_encoding::percent_decode_str;

use crate::error::ApiError;
use crate::ids::{RepoId, RepoType, validate_repo_path};
use crate::ui::Page;

/// Every endpoint of the server.
#[derive(Debug, Clone)]
pub enum Route {
    /// `HEAD|GET /{pfx}{ns}/{name}/resolve/{rev}/{path}`.
    Resolve {
        repo_type: RepoType,
        repo_id: RepoId,
        revision: String,
        path: String,
    },
    /// `GET /api/{type}s/{ns}/{name}[/revision/{rev}]`.
    RepoInfo {
        repo_type: RepoType,
        repo_id: RepoId,
        revision: Option<String>,
    },
    /// `GET /api/{type}s`.
    List { repo_type: RepoType },
    /// `GET /api/{type}s/{ns}/{name}/tree/{rev}[/{path}]`.
    Tree {
        repo_type: RepoType,
        repo_id: RepoId,
        revision: String,
        path: String,
    },
    /// `POST /api/{type}s/{ns}/{name}/paths-info/{rev}`.
    PathsInfo {
        repo_type: RepoType,
        repo_id: RepoId,
        revision: String,
    },
    /// `GET /api/{type}s/{ns}/{name}/refs`.
    Refs {
        repo_type: RepoType,
        repo_id: RepoId,
    },
    /// `GET /api/{type}s/{ns}/{name}/commits/{rev}`.
    Commits {
        repo_type: RepoType,
        repo_id: RepoId,
        revision: String,
    },
    /// `GET /api/{type}s/{ns}/{name}/discussions`.
    Discussions {
        repo_type: RepoType,
        repo_id: RepoId,
    },
    /// `GET /api/whoami-v2`.
    WhoAmI,
    /// `POST /api/validate-yaml`.
    ValidateYaml,
    /// `POST /api/repos/create`.
    CreateRepo,
    /// `DELETE /api/repos/delete`.
    DeleteRepo,
    /// `PUT /api/{type}s/{ns}/{name}/settings`.
    Settings {
        repo_type: RepoType,
        repo_id: RepoId,
    },
    /// `POST /api/{type}s/{ns}/{name}/preupload/{rev}`.
    Preupload {
        repo_type: RepoType,
        repo_id: RepoId,
        revision: String,
    },
    /// `POST /api/{type}s/{ns}/{name}/commit/{rev}`.
    Commit {
        repo_type: RepoType,
        repo_id: RepoId,
        revision: String,
    },
    /// `POST /api/{type}s/{ns}/{name}/branch/{branch}`.
    CreateBranch {
        repo_type: RepoType,
        repo_id: RepoId,
        branch: String,
    },
    /// `DELETE /api/{type}s/{ns}/{name}/branch/{branch}`.
    DeleteBranch {
        repo_type: RepoType,
        repo_id: RepoId,
        branch: String,
    },
    /// `POST /api/{type}s/{ns}/{name}/tag/{rev}` (tag name in the body).
    CreateTag {
        repo_type: RepoType,
        repo_id: RepoId,
        revision: String,
    },
    /// `DELETE /api/{type}s/{ns}/{name}/tag/{tag}`.
    DeleteTag {
        repo_type: RepoType,
        repo_id: RepoId,
        tag: String,
    },
    /// `POST /{pfx}{ns}/{name}.git/info/lfs/objects/batch`.
    LfsBatch {
        repo_type: RepoType,
        repo_id: RepoId,
    },
    /// `PUT /api/lfs-upload/{signed token}`.
    LfsUpload { token: String },
    /// `POST /api/{type}s/{ns}/{name}/lfs/verify`.
    LfsVerify {
        repo_type: RepoType,
        repo_id: RepoId,
    },
    /// A web page.
    Ui(Page),
}

fn decode(segment: &str) -> Result<String, ApiError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            ApiError::bad_request("the request path is not valid UTF-8 after percent-decoding")
        })
}

fn join_path(segments: &[&str]) -> Result<String, ApiError> {
    let decoded: Vec<String> = segments
        .iter()
        .map(|s| decode(s))
        .collect::<Result<_, _>>()?;
    Ok(decoded.join("/"))
}

fn not_found() -> ApiError {
    ApiError::not_found("Not Found: no such endpoint")
}

impl Route {
    /// Routes a request.
    pub fn parse(method: &Method, raw_path: &str) -> Result<Self, ApiError> {
        let trimmed = raw_path.strip_prefix('/').unwrap_or(raw_path);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let segs: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        let get = *method == Method::GET || *method == Method::HEAD;
        let post = *method == Method::POST;
        let delete = *method == Method::DELETE;
        let put = *method == Method::PUT;

        if segs.first() == Some(&"api") {
            return Self::parse_api(method, &segs[1..]);
        }

        // Non-API routes: optional type prefix.
        let (repo_type, rest) = match segs.first().copied() {
            Some("datasets") if segs.len() >= 3 => (RepoType::Dataset, &segs[1..]),
            Some("spaces") if segs.len() >= 3 => (RepoType::Space, &segs[1..]),
            Some("models") if segs.len() == 1 && get => {
                return Ok(Route::Ui(Page::List(RepoType::Model)));
            }
            Some("datasets") if segs.len() == 1 && get => {
                return Ok(Route::Ui(Page::List(RepoType::Dataset)));
            }
            Some("spaces") if segs.len() == 1 && get => {
                return Ok(Route::Ui(Page::List(RepoType::Space)));
            }
            None if get => return Ok(Route::Ui(Page::Home)),
            _ => (RepoType::Model, &segs[..]),
        };
        if rest.len() == 6
            && rest[1].ends_with(".git")
            && rest[2..] == ["info", "lfs", "objects", "batch"]
        {
            if !post {
                return Err(not_found());
            }
            let name = decode(&rest[1][..rest[1].len() - 4])?;
            let repo_id = RepoId::new(&decode(rest[0])?, &name)?;
            return Ok(Route::LfsBatch { repo_type, repo_id });
        }
        if rest.len() < 2 {
            return Err(not_found());
        }
        let repo_id = RepoId::new(&decode(rest[0])?, &decode(rest[1])?)?;
        match &rest[2..] {
            ["resolve", rev, path @ ..] if get && !path.is_empty() => {
                let path = join_path(path)?;
                validate_repo_path(&path)?;
                Ok(Route::Resolve {
                    repo_type,
                    repo_id,
                    revision: decode(rev)?,
                    path,
                })
            }
            [] if get => Ok(Route::Ui(Page::Repo {
                repo_type,
                repo_id,
                revision: None,
                path: String::new(),
            })),
            ["tree", rev, path @ ..] if get => Ok(Route::Ui(Page::Repo {
                repo_type,
                repo_id,
                revision: Some(decode(rev)?),
                path: join_path(path)?,
            })),
            ["blob", rev, path @ ..] if get && !path.is_empty() => Ok(Route::Ui(Page::Blob {
                repo_type,
                repo_id,
                revision: decode(rev)?,
                path: join_path(path)?,
            })),
            ["commits", rev] if get => Ok(Route::Ui(Page::Commits {
                repo_type,
                repo_id,
                revision: decode(rev)?,
            })),
            ["commit", oid] if get => Ok(Route::Ui(Page::Repo {
                repo_type,
                repo_id,
                revision: Some(decode(oid)?),
                path: String::new(),
            })),
            _ if !(get || post || delete || put) => Err(ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
            )),
            _ => Err(not_found()),
        }
    }

    fn parse_api(method: &Method, segs: &[&str]) -> Result<Self, ApiError> {
        let get = *method == Method::GET || *method == Method::HEAD;
        let post = *method == Method::POST;
        let delete = *method == Method::DELETE;
        let put = *method == Method::PUT;
        match segs {
            ["whoami-v2"] if get => return Ok(Route::WhoAmI),
            ["validate-yaml"] if post => return Ok(Route::ValidateYaml),
            ["repos", "create"] if post => return Ok(Route::CreateRepo),
            ["repos", "delete"] if delete => return Ok(Route::DeleteRepo),
            ["lfs-upload", token] if put => {
                return Ok(Route::LfsUpload {
                    token: decode(token)?,
                });
            }
            _ => {}
        }
        let Some(repo_type) = segs.first().and_then(|s| RepoType::from_plural(s)) else {
            return Err(not_found());
        };
        if segs.len() == 1 {
            return if get {
                Ok(Route::List { repo_type })
            } else {
                Err(not_found())
            };
        }
        if segs.len() < 3 {
            return Err(not_found());
        }
        let repo_id = RepoId::new(&decode(segs[1])?, &decode(segs[2])?)?;
        let route = match &segs[3..] {
            [] if get => Route::RepoInfo {
                repo_type,
                repo_id,
                revision: None,
            },
            ["revision", rev] if get => Route::RepoInfo {
                repo_type,
                repo_id,
                revision: Some(decode(rev)?),
            },
            ["tree", rev, path @ ..] if get => {
                let path = join_path(path)?;
                if !path.is_empty() {
                    validate_repo_path(&path)?;
                }
                Route::Tree {
                    repo_type,
                    repo_id,
                    revision: decode(rev)?,
                    path,
                }
            }
            ["paths-info", rev] if post => Route::PathsInfo {
                repo_type,
                repo_id,
                revision: decode(rev)?,
            },
            ["refs"] if get => Route::Refs { repo_type, repo_id },
            ["commits", rev] if get => Route::Commits {
                repo_type,
                repo_id,
                revision: decode(rev)?,
            },
            ["discussions"] if get => Route::Discussions { repo_type, repo_id },
            ["settings"] if put => Route::Settings { repo_type, repo_id },
            ["preupload", rev] if post => Route::Preupload {
                repo_type,
                repo_id,
                revision: decode(rev)?,
            },
            ["commit", rev] if post => Route::Commit {
                repo_type,
                repo_id,
                revision: decode(rev)?,
            },
            ["branch", name] if post => Route::CreateBranch {
                repo_type,
                repo_id,
                branch: decode(name)?,
            },
            ["branch", name] if delete => Route::DeleteBranch {
                repo_type,
                repo_id,
                branch: decode(name)?,
            },
            ["tag", rev] if post => Route::CreateTag {
                repo_type,
                repo_id,
                revision: decode(rev)?,
            },
            ["tag", tag] if delete => Route::DeleteTag {
                repo_type,
                repo_id,
                tag: decode(tag)?,
            },
            ["lfs", "verify"] if post => Route::LfsVerify { repo_type, repo_id },
            _ => return Err(not_found()),
        };
        Ok(route)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(method: Method, path: &str) -> Result<Route, ApiError> {
        Route::parse(&method, path)
    }

    #[test]
    fn encoded_slashes_stay_in_one_segment() {
        match parse(
            Method::GET,
            "/acme/bert/resolve/refs%2Fpr%2F1/sub/dir/w.bin",
        )
        .unwrap()
        {
            Route::Resolve { revision, path, .. } => {
                assert_eq!(revision, "refs/pr/1");
                assert_eq!(path, "sub/dir/w.bin");
            }
            other => panic!("{other:?}"),
        }
        match parse(Method::GET, "/api/datasets/acme/ds/tree/main/data%2Ftrain").unwrap() {
            Route::Tree {
                repo_type, path, ..
            } => {
                assert_eq!(repo_type, RepoType::Dataset);
                assert_eq!(path, "data/train");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn traversal_and_bad_ids_are_rejected() {
        assert!(
            parse(
                Method::GET,
                "/acme/bert/resolve/main/..%2F..%2Fetc%2Fpasswd"
            )
            .is_err()
        );
        assert!(parse(Method::GET, "/acme/bert/resolve/main/a/../b").is_err());
        assert!(parse(Method::GET, "/api/models/acme/bad..name").is_err());
        assert!(parse(Method::GET, "/api/models/ac%0Ame/x").is_err());
    }

    #[test]
    fn lfs_batch_and_datasets_prefix() {
        assert!(matches!(
            parse(Method::POST, "/datasets/acme/ds.git/info/lfs/objects/batch").unwrap(),
            Route::LfsBatch {
                repo_type: RepoType::Dataset,
                ..
            }
        ));
        assert!(matches!(
            parse(Method::GET, "/datasets").unwrap(),
            Route::Ui(Page::List(RepoType::Dataset))
        ));
        assert!(matches!(
            parse(Method::GET, "/datasets/acme/ds").unwrap(),
            Route::Ui(Page::Repo {
                repo_type: RepoType::Dataset,
                ..
            })
        ));
    }
}
