//! Read endpoints: file downloads (`/resolve/`), repository metadata, listings, tree, paths-info,
//! refs, history, whoami and card validation.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::util::{add_next_link, json_response, read_body, read_json};
use super::{Caller, Ctx};
use crate::card::{self, RepoMeta};
use crate::db::{Commit, FileEntry, Repo, RepoFilter};
use crate::error::ApiError;
use crate::hashing::hex;
use crate::ids::{RepoId, RepoType, iso8601};

/// Files read into memory to derive metadata (README.md, config.json) are at most this large.
const META_FILE_LIMIT: u64 = 4 * 1024 * 1024;
const TREE_PAGE: usize = 1000;
const TREE_PAGE_EXPANDED: usize = 50;
const COMMITS_PAGE: usize = 50;

pub(super) async fn resolve(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    revision: &str,
    path: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    let repo = ctx.readable_repo(repo_type, repo_id).await?;
    let commit = ctx.resolve_revision(&repo, revision).await?;
    let (c, p) = (commit.clone(), path.to_string());
    let Some(file) = ctx.db(move |db| db.file(&c, &p)).await? else {
        return Err(ApiError::entry_not_found(path, Some(&commit)));
    };
    let range = if head {
        None
    } else {
        match super::util::parse_range(headers.get("range"), file.size) {
            Ok(range) => range,
            Err(()) if file.size == 0 => Some((0, 0)),
            Err(()) => {
                let mut err = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "Requested range not satisfiable",
                );
                err.extra_mut().header = Some(("content-range", format!("bytes */{}", file.size)));
                return Err(err);
            }
        }
    };
    let (status, start, end) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end),
        None => (StatusCode::OK, 0, file.size),
    };
    let body = if head {
        Body::empty()
    } else {
        ctx.state.store.stream(&file.sha256, start, end).await?
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    let etag = format!("\"{}\"", file.etag());
    let file_name = path.rsplit('/').next().unwrap_or(path);
    let ascii_name: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let pairs: [(&str, String); 8] = [
        ("x-repo-commit", commit.clone()),
        ("etag", etag.clone()),
        ("x-linked-etag", etag),
        ("x-linked-size", file.size.to_string()),
        ("accept-ranges", "bytes".to_string()),
        ("content-length", (end - start).to_string()),
        ("content-type", "application/octet-stream".to_string()),
        (
            "content-disposition",
            format!(
                "inline; filename*=UTF-8''{}; filename=\"{ascii_name}\";",
                super::util::encode_segment(file_name)
            ),
        ),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let value = if file.size == 0 {
            "bytes */0".to_string()
        } else {
            format!("bytes {start}-{}/{}", end - 1, file.size)
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert("content-range", v);
        }
    }
    Ok(response)
}

/// Derived metadata of a commit, cached in the database after the first computation. The file
/// list is read only when the metadata has to be computed and the caller did not have it.
pub(crate) async fn repo_meta(
    ctx: &Ctx,
    repo: &Repo,
    commit: &str,
    files: Option<&[FileEntry]>,
) -> Result<RepoMeta, ApiError> {
    let c = commit.to_string();
    if let Some(json) = ctx.db(move |db| db.commit_meta(&c)).await?
        && let Ok(meta) = serde_json::from_str::<RepoMeta>(&json)
    {
        return Ok(meta);
    }
    let loaded;
    let files = match files {
        Some(files) => files,
        None => {
            let c = commit.to_string();
            loaded = ctx.db(move |db| db.files(&c)).await?;
            &loaded[..]
        }
    };
    let mut readme = None;
    let mut config = None;
    for file in files {
        let slot = match file.path.as_str() {
            "README.md" => &mut readme,
            "config.json" => &mut config,
            _ => continue,
        };
        if let Ok(bytes) = ctx
            .state
            .store
            .read_small(&file.sha256, file.size, META_FILE_LIMIT)
            .await
        {
            *slot = Some(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    let meta = card::derive(repo.repo_type, files, readme.as_deref(), config.as_deref());
    if let Ok(json) = serde_json::to_string(&meta) {
        let c = commit.to_string();
        ctx.db(move |db| db.set_commit_meta(&c, &json)).await?;
    }
    Ok(meta)
}

fn sibling(file: &FileEntry, blobs: bool) -> Value {
    if !blobs {
        return json!({ "rfilename": file.path });
    }
    let mut v = json!({ "rfilename": file.path, "size": file.size, "blobId": file.git_oid });
    if file.lfs {
        v["lfs"] =
            json!({ "sha256": file.sha256, "size": file.size, "pointerSize": file.pointer_size() });
    }
    v
}

/// The repository object of the Hub API (`/api/{type}s/{id}` and list items).
pub(crate) fn repo_json(
    repo: &Repo,
    commit: Option<&Commit>,
    files: Option<&[FileEntry]>,
    meta: Option<&RepoMeta>,
    blobs: bool,
) -> Value {
    let id = repo.repo_id.to_string();
    let mut v = json!({
        "_id": repo.object_id,
        "id": id,
        "author": repo.repo_id.namespace,
        "private": repo.private,
        "gated": false,
        "disabled": false,
        "downloads": 0,
        "likes": 0,
        "createdAt": iso8601(repo.created_at),
        "tags": meta.map(|m| m.tags.clone()).unwrap_or_default(),
    });
    if repo.repo_type == RepoType::Model {
        v["modelId"] = json!(id);
    }
    if let Some(commit) = commit {
        v["sha"] = json!(commit.id);
        v["lastModified"] = json!(iso8601(commit.created_at));
    }
    if let Some(files) = files {
        v["siblings"] = Value::Array(files.iter().map(|f| sibling(f, blobs)).collect());
        if blobs {
            v["usedStorage"] = json!(files.iter().map(|f| f.size).sum::<u64>());
        }
    }
    if let Some(meta) = meta {
        if let Some(card) = &meta.card_data {
            v["cardData"] = card.clone();
        }
        if repo.repo_type == RepoType::Model {
            if let Some(task) = &meta.pipeline_tag {
                v["pipeline_tag"] = json!(task);
            }
            if let Some(lib) = &meta.library_name {
                v["library_name"] = json!(lib);
            }
            if let Some(config) = &meta.config {
                v["config"] = config.clone();
            }
            if let Some(info) = &meta.transformers_info {
                v["transformersInfo"] = info.clone();
            }
            if let Some(index) = &meta.model_index {
                v["model-index"] = index.clone();
            }
        }
    }
    v
}

pub(super) async fn repo_info(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    revision: Option<&str>,
) -> Result<Response, ApiError> {
    let repo = ctx.readable_repo(repo_type, repo_id).await?;
    let commit_id = ctx
        .resolve_revision(&repo, revision.unwrap_or("main"))
        .await?;
    let c = commit_id.clone();
    let (commit, files) = ctx
        .db(move |db| Ok((db.commit_info(&c)?, db.files(&c)?)))
        .await?;
    let commit = commit.ok_or_else(|| ApiError::revision_not_found(revision.unwrap_or("main")))?;
    let meta = repo_meta(ctx, &repo, &commit_id, Some(&files)).await?;
    let blobs = ctx.query.flag("blobs", false);
    let mut v = repo_json(&repo, Some(&commit), Some(&files), Some(&meta), blobs);
    if ctx.query.all("expand").contains(&"xetEnabled") {
        v["xetEnabled"] = json!(false);
    }
    Ok(json_response(StatusCode::OK, &v))
}

pub(super) async fn list(ctx: &Ctx, repo_type: RepoType) -> Result<Response, ApiError> {
    let q = &ctx.query;
    let filter = RepoFilter {
        search: q
            .all("search")
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        author: q
            .get("author")
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        viewer: ctx.caller.name().map(str::to_string),
    };
    let rows = ctx.db(move |db| db.list_repos(repo_type, &filter)).await?;
    let tag_filters: Vec<String> = q.all("filter").into_iter().map(str::to_string).collect();
    let full = q.flag("full", false);
    let with_card = q.flag("cardData", false) || full;
    let mut items = Vec::with_capacity(rows.len());
    for (repo, head) in rows {
        // The file list only when `full` asks for siblings; the tags come from cached metadata.
        let (commit, files) = match &head {
            Some((id, _)) => {
                let c = id.clone();
                ctx.db(move |db| {
                    let files = if full { db.files(&c)? } else { Vec::new() };
                    Ok((db.commit_info(&c)?, files))
                })
                .await?
            }
            None => (None, Vec::new()),
        };
        let meta = match &commit {
            Some(c) => Some(repo_meta(ctx, &repo, &c.id, full.then_some(&files[..])).await?),
            None => None,
        };
        let tags = meta.as_ref().map(|m| m.tags.clone()).unwrap_or_default();
        if !tag_filters.iter().all(|f| tags.contains(f)) {
            continue;
        }
        let mut v = repo_json(
            &repo,
            commit.as_ref(),
            full.then_some(&files[..]),
            meta.as_ref(),
            false,
        );
        if !with_card && let Value::Object(map) = &mut v {
            map.remove("cardData");
        }
        items.push((
            v,
            head.map(|(_, date)| date).unwrap_or(repo.created_at),
            repo.created_at,
        ));
    }
    let sort = q.get("sort").unwrap_or("lastModified");
    let ascending = q.get("direction").is_some_and(|d| d == "1");
    items.sort_by(|a, b| {
        let ord = match sort {
            "createdAt" | "created_at" => a.2.cmp(&b.2),
            "id" => a.0["id"].as_str().cmp(&b.0["id"].as_str()),
            // downloads, likes and trending are all zero here: fall back to recency.
            _ => a.1.cmp(&b.1),
        };
        if ascending { ord } else { ord.reverse() }
    });
    let page = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0)
        .unwrap_or(100)
        .min(1000);
    let offset = q.cursor();
    let total = items.len();
    let page_items: Vec<Value> = items
        .into_iter()
        .skip(offset)
        .take(page)
        .map(|(v, _, _)| v)
        .collect();
    let mut response = json_response(StatusCode::OK, &Value::Array(page_items));
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        response.headers_mut().insert("x-total-count", v);
    }
    if offset + page < total {
        add_next_link(
            response.headers_mut(),
            ctx.public_url(),
            &ctx.raw_path,
            q,
            offset + page,
        );
    }
    Ok(response)
}

/// A tree entry (file or folder) as the Hub lists it.
fn file_entry_json(file: &FileEntry) -> Value {
    let mut v =
        json!({ "type": "file", "oid": file.git_oid, "size": file.size, "path": file.path });
    if file.lfs {
        v["lfs"] =
            json!({ "oid": file.sha256, "size": file.size, "pointerSize": file.pointer_size() });
    }
    v
}

fn folder_entry_json(path: &str, files: &[FileEntry]) -> Value {
    // A stable id: the hash of the (path, blob id) pairs below the folder.
    let prefix = format!("{path}/");
    let mut hasher = Sha1::new();
    for f in files.iter().filter(|f| f.path.starts_with(&prefix)) {
        hasher.update(f.path.as_bytes());
        hasher.update(b"\0");
        hasher.update(f.git_oid.as_bytes());
    }
    json!({ "type": "directory", "oid": hex(&hasher.finalize()), "size": 0, "path": path })
}

/// Entries below `folder` (`""` = root): direct children, or every descendant if `recursive`.
fn tree_entries<'a>(
    files: &'a [FileEntry],
    folder: &str,
    recursive: bool,
) -> Vec<(String, Option<&'a FileEntry>)> {
    let prefix = if folder.is_empty() {
        String::new()
    } else {
        format!("{folder}/")
    };
    let mut entries: BTreeMap<String, Option<&'a FileEntry>> = BTreeMap::new();
    for file in files.iter().filter(|f| f.path.starts_with(&prefix)) {
        let rest = &file.path[prefix.len()..];
        let parts: Vec<&str> = rest.split('/').collect();
        let folders = if recursive {
            parts.len() - 1
        } else {
            (parts.len() - 1).min(1)
        };
        for i in 0..folders {
            entries.insert(format!("{prefix}{}", parts[..=i].join("/")), None);
        }
        if recursive || parts.len() == 1 {
            entries.insert(file.path.clone(), Some(file));
        }
    }
    entries.into_iter().collect()
}

/// The last commit (from `head` backwards, at most `limit` commits) that changed a file.
async fn last_commit_for(ctx: &Ctx, head: &str, path: &str) -> Result<Option<Commit>, ApiError> {
    let (h, p) = (head.to_string(), path.to_string());
    ctx.db(move |db| {
        let (history, _) = db.history(&h, 0, 1000)?;
        let mut previous: Option<Commit> = None;
        let mut current_oid = db.file(&h, &p)?.map(|f| f.git_oid);
        for commit in history {
            let oid = db.file(&commit.id, &p)?.map(|f| f.git_oid);
            if oid != current_oid {
                return Ok(previous);
            }
            current_oid = oid;
            previous = Some(commit);
        }
        Ok(previous)
    })
    .await
}

async fn expand_entry(ctx: &Ctx, head: &str, entry: &mut Value) -> Result<(), ApiError> {
    if entry["type"] == "file"
        && let Some(path) = entry["path"].as_str()
        && let Some(c) = last_commit_for(ctx, head, path).await?
    {
        entry["lastCommit"] =
            json!({ "id": c.id, "title": c.title, "date": iso8601(c.created_at) });
    }
    Ok(())
}

pub(super) async fn tree(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    revision: &str,
    path: &str,
) -> Result<Response, ApiError> {
    let repo = ctx.readable_repo(repo_type, repo_id).await?;
    let commit = ctx.resolve_revision(&repo, revision).await?;
    let c = commit.clone();
    let files = ctx.db(move |db| db.files(&c)).await?;
    let recursive = ctx.query.flag("recursive", false);
    let expand = ctx.query.flag("expand", false);
    let is_folder = path.is_empty()
        || files
            .iter()
            .any(|f| f.path.starts_with(&format!("{path}/")));
    if !is_folder {
        return Err(ApiError::entry_not_found(path, None));
    }
    let entries = tree_entries(&files, path, recursive);
    let page = if expand {
        TREE_PAGE_EXPANDED
    } else {
        TREE_PAGE
    };
    let offset = ctx.query.cursor();
    let mut out = Vec::new();
    for (entry_path, file) in entries.iter().skip(offset).take(page) {
        let mut v = match file {
            Some(f) => file_entry_json(f),
            None => folder_entry_json(entry_path, &files),
        };
        if expand {
            expand_entry(ctx, &commit, &mut v).await?;
        }
        out.push(v);
    }
    let mut response = json_response(StatusCode::OK, &Value::Array(out));
    if offset + page < entries.len() {
        add_next_link(
            response.headers_mut(),
            ctx.public_url(),
            &ctx.raw_path,
            &ctx.query,
            offset + page,
        );
    }
    Ok(response)
}

pub(super) async fn paths_info(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    revision: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let repo = ctx.readable_repo(repo_type, repo_id).await?;
    let commit = ctx.resolve_revision(&repo, revision).await?;
    let is_json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let (paths, expand): (Vec<String>, bool) = if is_json {
        let v = read_json(body, 16 << 20).await?;
        let paths = v["paths"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        (paths, v["expand"].as_bool().unwrap_or(false))
    } else {
        let bytes = read_body(body, 16 << 20).await?;
        let pairs = super::util::parse_form(&String::from_utf8_lossy(&bytes));
        let paths = pairs
            .iter()
            .filter(|(k, _)| k == "paths")
            .map(|(_, v)| v.clone())
            .collect();
        let expand = pairs
            .iter()
            .any(|(k, v)| k == "expand" && matches!(v.to_ascii_lowercase().as_str(), "1" | "true"));
        (paths, expand)
    };
    let c = commit.clone();
    let files = ctx.db(move |db| db.files(&c)).await?;
    let mut out = Vec::new();
    for path in paths {
        let path = path.trim_matches('/');
        if let Some(file) = files.iter().find(|f| f.path == path) {
            let mut v = file_entry_json(file);
            if expand {
                expand_entry(ctx, &commit, &mut v).await?;
            }
            out.push(v);
        } else if !path.is_empty()
            && files
                .iter()
                .any(|f| f.path.starts_with(&format!("{path}/")))
        {
            out.push(folder_entry_json(path, &files));
        }
    }
    Ok(json_response(StatusCode::OK, &Value::Array(out)))
}

pub(super) async fn refs(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
) -> Result<Response, ApiError> {
    let repo = ctx.readable_repo(repo_type, repo_id).await?;
    let r = repo.clone();
    let refs = ctx.db(move |db| db.refs(&r)).await?;
    let mut groups: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for key in ["branches", "tags", "converts", "pullRequests"] {
        groups.insert(key, Vec::new());
    }
    for r in &refs {
        let (group, name) = if let Some(n) = r.name.strip_prefix("refs/heads/") {
            ("branches", n)
        } else if let Some(n) = r.name.strip_prefix("refs/tags/") {
            ("tags", n)
        } else if let Some(n) = r.name.strip_prefix("refs/convert/") {
            ("converts", n)
        } else if let Some(n) = r.name.strip_prefix("refs/pr/") {
            ("pullRequests", n)
        } else {
            continue;
        };
        if let Some(list) = groups.get_mut(group) {
            list.push(json!({ "name": name, "ref": r.name, "targetCommit": r.commit }));
        }
    }
    let mut v = json!({});
    for (key, list) in groups {
        if key != "pullRequests" || ctx.query.flag("include_prs", false) {
            v[key] = Value::Array(list);
        }
    }
    Ok(json_response(StatusCode::OK, &v))
}

pub(super) async fn commits(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    revision: &str,
) -> Result<Response, ApiError> {
    let repo = ctx.readable_repo(repo_type, repo_id).await?;
    let commit = ctx.resolve_revision(&repo, revision).await?;
    let offset = ctx.query.cursor();
    let (history, more) = ctx
        .db(move |db| db.history(&commit, offset, COMMITS_PAGE))
        .await?;
    let formatted = ctx.query.all("expand").contains(&"formatted");
    let items: Vec<Value> = history
        .iter()
        .map(|c| {
            let mut v = json!({
                "id": c.id,
                "title": c.title,
                "message": c.message,
                "date": iso8601(c.created_at),
                "authors": [{ "user": c.author, "avatar": "" }],
            });
            if formatted {
                v["formatted"] = json!({
                    "title": super::util::html_escape(&c.title),
                    "message": super::util::html_escape(&c.message),
                });
            }
            v
        })
        .collect();
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    if more {
        add_next_link(
            response.headers_mut(),
            ctx.public_url(),
            &ctx.raw_path,
            &ctx.query,
            offset + COMMITS_PAGE,
        );
    }
    Ok(response)
}

pub(super) async fn discussions(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
) -> Result<Response, ApiError> {
    ctx.readable_repo(repo_type, repo_id).await?;
    // Discussions are not hosted here; an empty, well-formed list keeps clients working.
    Ok(json_response(
        StatusCode::OK,
        &json!({ "discussions": [], "count": 0, "start": 0, "numClosedDiscussions": 0 }),
    ))
}

pub(super) fn whoami(ctx: &Ctx) -> Result<Response, ApiError> {
    let Caller::User(token) = &ctx.caller else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Invalid credentials in Authorization header",
        ));
    };
    let user = &token.user;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "type": "user",
            "id": format!("{:024x}", user.id),
            "name": user.name,
            "fullname": user.fullname,
            "email": user.email,
            "emailVerified": user.email.is_some(),
            "avatarUrl": "",
            "isPro": false,
            "canPay": false,
            "periodEnd": null,
            "orgs": [],
            "auth": {
                "type": "access_token",
                "accessToken": {
                    "displayName": token.name,
                    "role": token.role.as_str(),
                    "createdAt": iso8601(token.created_at),
                },
            },
        }),
    ))
}

pub(super) async fn validate_yaml(body: Body) -> Result<Response, ApiError> {
    let v = read_json(body, 16 << 20).await?;
    let content = v["content"].as_str().unwrap_or("");
    let (errors, warnings) = card::validate(content);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let to_list = |items: Vec<String>| {
        items
            .into_iter()
            .map(|m| json!({ "message": m }))
            .collect::<Vec<_>>()
    };
    Ok(json_response(
        status,
        &json!({ "errors": to_list(errors), "warnings": to_list(warnings) }),
    ))
}
