//! Write endpoints: create / delete / configure repositories, preupload, commits (NDJSON parsed as
//! a stream), branches and tags.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::Ctx;
use super::util::{json_response, read_json};
use crate::db::{CommitError, CommitRequest, FileEntry, Op, Repo};
use crate::error::ApiError;
use crate::glob::{git_pattern_matches, gitignore_ignores, lfs_patterns};
use crate::hashing::{git_blob_id, lfs_pointer};
use crate::ids::{RepoId, RepoType, is_hex, printable, validate_ref_name, validate_repo_path};

const JSON_LIMIT: usize = 64 << 20;

fn repo_url(ctx: &Ctx, repo_type: RepoType, repo_id: &RepoId) -> String {
    format!("{}/{}{}", ctx.public_url(), repo_type.url_prefix(), repo_id)
}

/// Stores content as a blob and records it; returns the file entry for a regular file.
async fn store_regular(ctx: &Ctx, path: &str, content: &[u8]) -> Result<FileEntry, ApiError> {
    let staged = ctx.state.store.stage_bytes(content).await?;
    ctx.state.store.ingest(&staged).await?;
    let (sha, size) = (staged.sha256.clone(), staged.size);
    ctx.db(move |db| db.add_blob(&sha, size)).await?;
    Ok(FileEntry {
        path: path.to_string(),
        size: staged.size,
        sha256: staged.sha256,
        git_oid: git_blob_id(content),
        lfs: false,
    })
}

fn body_repo_type(v: &Value) -> Result<RepoType, ApiError> {
    match v["type"].as_str() {
        None => Ok(RepoType::Model),
        Some(t) => RepoType::from_singular(t).ok_or_else(|| {
            ApiError::bad_request(format!("unknown repository type '{}'", printable(t)))
        }),
    }
}

fn body_repo_id(ctx: &Ctx, v: &Value) -> Result<RepoId, ApiError> {
    let name = v["name"]
        .as_str()
        .ok_or_else(|| ApiError::bad_request("missing 'name'"))?;
    // Some clients send the full id as the name.
    if let Some((ns, n)) = name.split_once('/') {
        return RepoId::new(ns, n);
    }
    let namespace = match v["organization"].as_str() {
        Some(org) if !org.is_empty() => org.to_string(),
        _ => ctx
            .caller
            .name()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "You must be authenticated to do this",
                )
            })?
            .to_string(),
    };
    RepoId::new(&namespace, name)
}

pub(super) async fn create_repo(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let v = read_json(body, JSON_LIMIT).await?;
    let repo_type = body_repo_type(&v)?;
    let repo_id = body_repo_id(ctx, &v)?;
    let author = ctx.require_write(&repo_id.namespace)?.user.name.clone();
    let private = v["private"].as_bool().unwrap_or(false)
        || v["visibility"].as_str().is_some_and(|s| s == "private");
    let gitattributes = store_regular(
        ctx,
        ".gitattributes",
        crate::db::DEFAULT_GITATTRIBUTES.as_bytes(),
    )
    .await?;
    let id = repo_id.clone();
    let created = ctx
        .db(move |db| db.create_repo(repo_type, &id, private, &author, &gitattributes))
        .await?;
    let Some(repo) = created else {
        let mut err = ApiError::conflict(format!(
            "You already created this {} repo",
            repo_type.singular()
        ));
        err.extra_mut()
            .body
            .insert("url".into(), json!(repo_url(ctx, repo_type, &repo_id)));
        return Err(err);
    };
    tracing::info!("created {} repository {repo_id}", repo_type.singular());
    Ok(json_response(
        StatusCode::OK,
        &json!({ "url": repo_url(ctx, repo_type, &repo_id), "name": repo_id.to_string(), "id": repo.object_id }),
    ))
}

pub(super) async fn delete_repo(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let v = read_json(body, JSON_LIMIT).await?;
    let repo_type = body_repo_type(&v)?;
    let repo_id = body_repo_id(ctx, &v)?;
    let repo = ctx.writable_repo(repo_type, &repo_id).await?;
    ctx.db(move |db| db.delete_repo(&repo)).await?;
    tracing::info!("deleted {} repository {repo_id}", repo_type.singular());
    Ok(json_response(StatusCode::OK, &json!({})))
}

pub(super) async fn settings(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    body: Body,
) -> Result<Response, ApiError> {
    let repo = ctx.writable_repo(repo_type, repo_id).await?;
    let v = read_json(body, JSON_LIMIT).await?;
    if let Some(gated) = v.get("gated")
        && gated != &json!(false)
    {
        return Err(ApiError::bad_request(
            "gated repositories are not supported by this hub",
        ));
    }
    let private = v["private"]
        .as_bool()
        .or_else(|| v["visibility"].as_str().map(|s| s == "private"));
    if let Some(private) = private {
        ctx.db(move |db| db.set_private(&repo, private)).await?;
    }
    Ok(json_response(StatusCode::OK, &json!({})))
}

/// The text of a small file at a commit, if present.
async fn small_file(ctx: &Ctx, commit: &str, path: &str) -> Result<Option<String>, ApiError> {
    let (c, p) = (commit.to_string(), path.to_string());
    let Some(file) = ctx.db(move |db| db.file(&c, &p)).await? else {
        return Ok(None);
    };
    let bytes = ctx
        .state
        .store
        .read_small(&file.sha256, file.size, 1 << 20)
        .await?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

pub(super) async fn preupload(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    revision: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let repo = ctx.writable_repo(repo_type, repo_id).await?;
    let commit = ctx.resolve_revision(&repo, revision).await?;
    let v = read_json(body, JSON_LIMIT).await?;
    let lfs = lfs_patterns(
        &small_file(ctx, &commit, ".gitattributes")
            .await?
            .unwrap_or_default(),
    );
    let gitignore = match v["gitIgnore"].as_str() {
        Some(text) => Some(text.to_string()),
        None => small_file(ctx, &commit, ".gitignore").await?,
    };
    let c = commit.clone();
    let existing = ctx.db(move |db| db.files(&c)).await?;
    let threshold = ctx.state.config.lfs_threshold;
    let mut out = Vec::new();
    for file in v["files"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let path = file["path"].as_str().unwrap_or("");
        validate_repo_path(path)?;
        let size = file["size"].as_u64().unwrap_or(0);
        let sample = file["sample"]
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .unwrap_or_default();
        let is_lfs = size > 0
            && (size >= threshold
                || sample.contains(&0)
                || lfs.iter().any(|p| git_pattern_matches(p, path)));
        let mut entry = json!({
            "path": path,
            "uploadMode": if is_lfs { "lfs" } else { "regular" },
            "shouldIgnore": gitignore.as_deref().is_some_and(|g| gitignore_ignores(g, path)),
        });
        if let Some(current) = existing.iter().find(|f| f.path == path) {
            entry["oid"] = json!(if is_lfs {
                &current.sha256
            } else {
                &current.git_oid
            });
        }
        out.push(entry);
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "files": out, "commitOid": commit }),
    ))
}

/// Parses one NDJSON line of a commit into an operation (or the header).
enum Line {
    Header {
        summary: String,
        description: String,
        parent: Option<String>,
    },
    Op(Op),
}

async fn parse_line(ctx: &Ctx, repo: &Repo, line: &[u8]) -> Result<Line, ApiError> {
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| ApiError::bad_request(format!("invalid commit line (not JSON): {e}")))?;
    let value = &v["value"];
    let path = || -> Result<String, ApiError> {
        let p = value["path"]
            .as_str()
            .ok_or_else(|| ApiError::bad_request("missing 'path' in commit operation"))?;
        let p = p.trim_start_matches("./").trim_start_matches('/');
        Ok(validate_repo_path(p)?.to_string())
    };
    match v["key"].as_str() {
        Some("header") => {
            let summary = value["summary"].as_str().unwrap_or("").trim().to_string();
            let parent = value["parentCommit"].as_str().map(str::to_string);
            if let Some(p) = &parent
                && !is_hex(p, 5, 40)
            {
                return Err(ApiError::bad_request(
                    "parentCommit must be 5 to 40 lowercase hex characters",
                ));
            }
            Ok(Line::Header {
                summary,
                description: value["description"].as_str().unwrap_or("").to_string(),
                parent,
            })
        }
        Some("file") => {
            let path = path()?;
            let content = value["content"].as_str().unwrap_or("");
            let bytes = match value["encoding"].as_str().unwrap_or("base64") {
                "base64" => base64::engine::general_purpose::STANDARD
                    .decode(content)
                    .map_err(|e| {
                        ApiError::bad_request(format!("invalid base64 content for '{path}': {e}"))
                    })?,
                "utf-8" | "utf8" => content.as_bytes().to_vec(),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown encoding '{}'",
                        printable(other)
                    )));
                }
            };
            Ok(Line::Op(Op::Put(store_regular(ctx, &path, &bytes).await?)))
        }
        Some("lfsFile") => {
            let path = path()?;
            let oid = value["oid"].as_str().unwrap_or("");
            if !is_hex(oid, 64, 64) {
                return Err(ApiError::bad_request(format!(
                    "invalid LFS oid for '{path}'"
                )));
            }
            let (r, o) = (repo.clone(), oid.to_string());
            let stored = ctx.db(move |db| db.repo_lfs_size(&r, &o)).await?;
            let size = match (stored, value["size"].as_u64()) {
                (Some(stored), Some(declared)) if stored != declared => {
                    return Err(ApiError::bad_request(format!(
                        "LFS object {oid} has {stored} bytes, not {declared}"
                    )));
                }
                (Some(stored), _) => stored,
                (None, _) => {
                    return Err(ApiError::bad_request(format!(
                        "LFS object {oid} for '{path}' was not uploaded to this repository"
                    )));
                }
            };
            Ok(Line::Op(Op::Put(FileEntry {
                git_oid: git_blob_id(lfs_pointer(oid, size).as_bytes()),
                path,
                size,
                sha256: oid.to_string(),
                lfs: true,
            })))
        }
        Some("deletedFile") => Ok(Line::Op(Op::Delete(path()?))),
        Some("deletedFolder") => {
            let p = value["path"].as_str().unwrap_or("").trim_end_matches('/');
            Ok(Line::Op(Op::DeleteFolder(
                validate_repo_path(p)?.to_string(),
            )))
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown commit operation '{}'",
            printable(other)
        ))),
        None => Err(ApiError::bad_request("commit line without 'key'")),
    }
}

pub(super) async fn commit(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    revision: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let repo = ctx.writable_repo(repo_type, repo_id).await?;
    let create_pr = ctx.query.flag("create_pr", false);
    let branch = revision
        .strip_prefix("refs/heads/")
        .unwrap_or(revision)
        .to_string();
    let author = ctx
        .require_write(&repo.repo_id.namespace)?
        .user
        .name
        .clone();
    let limit = ctx.state.config.max_commit_bytes;

    // Parse the body as a stream of lines; inline files are stored as they arrive.
    let mut stream = body.into_data_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut total: u64 = 0;
    let mut header = None;
    let mut ops = Vec::new();
    loop {
        let chunk = stream.next().await;
        let done = chunk.is_none();
        if let Some(chunk) = chunk {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(format!("could not read the commit body: {e}"))
            })?;
            total += chunk.len() as u64;
            if total > limit {
                return Err(ApiError::too_large(format!(
                    "commit body larger than {limit} bytes; upload large files through LFS"
                )));
            }
            buffer.extend_from_slice(&chunk);
        }
        let mut start = 0;
        while let Some(pos) = buffer[start..].iter().position(|&b| b == b'\n') {
            let line = &buffer[start..start + pos];
            start += pos + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match parse_line(ctx, &repo, line).await? {
                Line::Header {
                    summary,
                    description,
                    parent,
                } => header = Some((summary, description, parent)),
                Line::Op(op) => ops.push(op),
            }
        }
        buffer.drain(..start);
        if done {
            if !buffer.iter().all(u8::is_ascii_whitespace) {
                let line = std::mem::take(&mut buffer);
                match parse_line(ctx, &repo, &line).await? {
                    Line::Header {
                        summary,
                        description,
                        parent,
                    } => header = Some((summary, description, parent)),
                    Line::Op(op) => ops.push(op),
                }
            }
            break;
        }
    }
    let Some((summary, description, parent)) = header else {
        return Err(ApiError::bad_request("the commit has no header line"));
    };
    if summary.is_empty() {
        return Err(ApiError::bad_request("the commit summary is empty"));
    }
    for op in &ops {
        if let Op::Put(file) = op
            && file.lfs
        {
            let (r, sha) = (repo.clone(), file.sha256.clone());
            ctx.db(move |db| db.link_lfs(&r, &sha)).await?;
        }
    }
    // The ref the commit lands on: the branch, an existing pull request (`refs/pr/N`), or a new
    // pull request opened from the parent commit (or the branch head) with `create_pr=1`.
    let (target, expected_parent, pr_number) = if create_pr {
        let base = match &parent {
            Some(p) if p.len() == 40 => ctx.resolve_revision(&repo, p).await?,
            _ => ctx.resolve_revision(&repo, &branch).await?,
        };
        let r = repo.clone();
        let n = ctx.db(move |db| db.create_pr_ref(&r, &base)).await?;
        (format!("refs/pr/{n}"), None, Some(n))
    } else if branch.starts_with("refs/pr/") {
        (branch.clone(), parent, None)
    } else {
        (format!("refs/heads/{branch}"), parent, None)
    };
    let request = CommitRequest {
        branch: target.clone(),
        expected_parent,
        title: summary,
        message: description,
        author,
        ops,
    };
    let r = repo.clone();
    let outcome = ctx.db(move |db| db.commit(&r, &request)).await?;
    let commit = match outcome {
        Ok(commit) => commit,
        Err(CommitError::NoBranch) => return Err(ApiError::revision_not_found(revision)),
        Err(CommitError::Stale { head }) => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                format!(
                    "A commit has happened since. Please refresh and try again. (branch head is {head})"
                ),
            ));
        }
        Err(CommitError::MissingFile(path)) => {
            return Err(ApiError::entry_not_found(&path, None).with_message(format!(
                "A file with this name doesn't exist: {}",
                printable(&path)
            )));
        }
        Err(CommitError::PathConflict(path)) => {
            return Err(ApiError::bad_request(format!(
                "'{}' would be both a file and a folder",
                printable(&path)
            )));
        }
    };
    tracing::info!("commit {} on {repo_id}@{target}", commit.id);
    let pull_request_url =
        pr_number.map(|n| format!("{}/discussions/{n}", repo_url(ctx, repo_type, repo_id)));
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "success": true,
            "commitOid": commit.id,
            "commitUrl": format!("{}/commit/{}", repo_url(ctx, repo_type, repo_id), commit.id),
            "hookOutput": "",
            "pullRequestUrl": pull_request_url,
        }),
    ))
}

pub(super) async fn create_branch(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    branch: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let repo = ctx.writable_repo(repo_type, repo_id).await?;
    let branch =
        validate_ref_name(branch.strip_prefix("refs/heads/").unwrap_or(branch))?.to_string();
    let v = read_json(body, JSON_LIMIT).await?;
    let start = v["startingPoint"].as_str().unwrap_or("main").to_string();
    let commit = ctx.resolve_revision(&repo, &start).await?;
    let name = format!("refs/heads/{branch}");
    let created = ctx
        .db(move |db| db.create_ref(&repo, &name, &commit))
        .await?;
    if !created {
        return Err(ApiError::conflict(format!(
            "Reference already exists: {branch}"
        )));
    }
    Ok(json_response(StatusCode::OK, &json!({})))
}

pub(super) async fn delete_branch(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    branch: &str,
) -> Result<Response, ApiError> {
    let repo = ctx.writable_repo(repo_type, repo_id).await?;
    let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    if branch == "main" {
        return Err(ApiError::forbidden(
            "the default branch 'main' cannot be deleted",
        ));
    }
    let name = format!("refs/heads/{branch}");
    if !ctx.db(move |db| db.delete_ref(&repo, &name)).await? {
        return Err(ApiError::revision_not_found(branch));
    }
    Ok(json_response(StatusCode::OK, &json!({})))
}

pub(super) async fn create_tag(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    revision: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let repo = ctx.writable_repo(repo_type, repo_id).await?;
    let v = read_json(body, JSON_LIMIT).await?;
    let tag = v["tag"]
        .as_str()
        .ok_or_else(|| ApiError::bad_request("missing 'tag'"))?;
    let tag = validate_ref_name(tag)?.to_string();
    let commit = ctx.resolve_revision(&repo, revision).await?;
    let name = format!("refs/tags/{tag}");
    if !ctx
        .db(move |db| db.create_ref(&repo, &name, &commit))
        .await?
    {
        return Err(ApiError::conflict(format!("Tag already exists: {tag}")));
    }
    Ok(json_response(StatusCode::OK, &json!({})))
}

pub(super) async fn delete_tag(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    tag: &str,
) -> Result<Response, ApiError> {
    let repo = ctx.writable_repo(repo_type, repo_id).await?;
    let tag = tag.strip_prefix("refs/tags/").unwrap_or(tag);
    let name = format!("refs/tags/{tag}");
    if !ctx.db(move |db| db.delete_ref(&repo, &name)).await? {
        return Err(ApiError::revision_not_found(tag));
    }
    Ok(json_response(StatusCode::OK, &json!({})))
}
