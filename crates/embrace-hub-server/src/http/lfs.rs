//! The git-lfs batch API and the signed upload URLs it hands out.
//!
//! Python clients PUT file bytes to the `href` of the batch answer *without* an `Authorization`
//! header, so the href carries its own authorisation: an HMAC-SHA256 over (repository, oid, size,
//! expiry) with the server's signing key. The upload is hashed while it streams to a temporary
//! file and refused unless its length and SHA-256 match what was signed.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;

use super::Ctx;
use super::util::read_json;
use crate::error::ApiError;
use crate::hashing::{StreamHasher, hex};
use crate::ids::{RepoId, RepoType, is_hex, now_millis};
use crate::storage::StagedBlob;

const LINK_LIFETIME_SECS: i64 = 3600;

fn signature(key: &[u8], payload: &str) -> String {
    // HMAC accepts keys of any length; the fallback is unreachable.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(payload.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Builds the self-authorising upload token for one object.
fn upload_token(key: &[u8], repo_row: i64, oid: &str, size: u64, expires: i64) -> String {
    let payload = format!("{repo_row}.{oid}.{size}.{expires}");
    let sig = signature(key, &payload);
    format!("{payload}.{sig}")
}

/// Checks an upload token; returns (repository row id, oid, size).
fn check_token(key: &[u8], token: &str) -> Result<(i64, String, u64), ApiError> {
    let invalid = || ApiError::forbidden("invalid or expired upload link");
    let parts: Vec<&str> = token.split('.').collect();
    let [repo_row, oid, size, expires, sig] = parts[..] else {
        return Err(invalid());
    };
    let payload = format!("{repo_row}.{oid}.{size}.{expires}");
    let expected = signature(key, &payload);
    // Constant-time comparison of the hex signatures.
    let same = expected.len() == sig.len()
        && expected
            .bytes()
            .zip(sig.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    let expires: i64 = expires.parse().map_err(|_| invalid())?;
    if !same || expires * 1000 < now_millis() || !is_hex(oid, 64, 64) {
        return Err(invalid());
    }
    Ok((
        repo_row.parse().map_err(|_| invalid())?,
        oid.to_string(),
        size.parse().map_err(|_| invalid())?,
    ))
}

fn lfs_json(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [("content-type", "application/vnd.git-lfs+json")],
        value.to_string(),
    )
        .into_response()
}

pub(super) async fn batch(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    body: Body,
) -> Result<Response, ApiError> {
    let repo = ctx.writable_repo(repo_type, repo_id).await?;
    let v = read_json(body, 64 << 20).await?;
    if v["operation"].as_str() != Some("upload") {
        return Err(ApiError::bad_request(
            "only the 'upload' operation is supported; download files through /resolve/",
        ));
    }
    let max = ctx.state.config.max_lfs_bytes;
    let expires = now_millis() / 1000 + LINK_LIFETIME_SECS;
    let mut objects = Vec::new();
    for object in v["objects"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let oid = object["oid"].as_str().unwrap_or("").to_string();
        let Some(size) = object["size"].as_u64() else {
            objects.push(json!({ "oid": oid, "size": 0, "error": { "code": 422, "message": "missing size" } }));
            continue;
        };
        if !is_hex(&oid, 64, 64) {
            objects.push(json!({ "oid": oid, "size": size, "error": { "code": 422, "message": "oid must be a sha256 hex digest" } }));
            continue;
        }
        if size > max {
            objects.push(json!({ "oid": oid, "size": size, "error": {
                "code": 422, "message": format!("object of {size} bytes exceeds this hub's limit of {max} bytes") } }));
            continue;
        }
        let (r, o) = (repo.clone(), oid.clone());
        if ctx.db(move |db| db.repo_lfs_size(&r, &o)).await? == Some(size) {
            // Already stored for this repository: no actions, nothing to upload.
            objects.push(json!({ "oid": oid, "size": size }));
            continue;
        }
        let token = upload_token(&ctx.state.signing_key, repo.id, &oid, size, expires);
        objects.push(json!({
            "oid": oid,
            "size": size,
            "authenticated": true,
            "actions": {
                "upload": { "href": format!("{}/api/lfs-upload/{token}", ctx.public_url()), "header": {}, "expires_in": LINK_LIFETIME_SECS },
                "verify": { "href": format!("{}/api/{}/{}/lfs/verify", ctx.public_url(), repo_type.plural(), repo_id), "header": {} },
            },
        }));
    }
    Ok(lfs_json(
        StatusCode::OK,
        &json!({ "transfer": "basic", "objects": objects }),
    ))
}

pub(super) async fn upload(ctx: &Ctx, token: &str, body: Body) -> Result<Response, ApiError> {
    let (repo_row, oid, size) = check_token(&ctx.state.signing_key, token)?;
    let Some(repo) = ctx.db(move |db| db.repo_by_id(repo_row)).await? else {
        return Err(ApiError::forbidden(
            "the repository of this upload link no longer exists",
        ));
    };
    let (path, mut file) = ctx.state.store.temp_file().await?;
    let result = async {
        let mut hasher = StreamHasher::default();
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
            if hasher.len() + chunk.len() as u64 > size {
                return Err(ApiError::bad_request(format!(
                    "upload is larger than the announced {size} bytes"
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
        file.flush().await.map_err(ApiError::internal)?;
        file.sync_all().await.map_err(ApiError::internal)?;
        let (sha, len) = hasher.finish();
        if len != size {
            return Err(ApiError::bad_request(format!(
                "upload has {len} bytes, expected {size}"
            )));
        }
        if sha != oid {
            return Err(ApiError::bad_request(format!(
                "upload content has sha256 {sha}, expected {oid}"
            )));
        }
        Ok(())
    }
    .await;
    drop(file);
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(e);
    }
    let staged = StagedBlob {
        path,
        sha256: oid.clone(),
        size,
    };
    ctx.state.store.ingest(&staged).await?;
    let o = oid.clone();
    ctx.db(move |db| {
        db.add_blob(&o, size)?;
        db.link_lfs(&repo, &o)
    })
    .await?;
    tracing::info!("stored LFS object {oid} ({size} bytes)");
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn verify(
    ctx: &Ctx,
    repo_type: RepoType,
    repo_id: &RepoId,
    body: Body,
) -> Result<Response, ApiError> {
    let repo = ctx.writable_repo(repo_type, repo_id).await?;
    let v = read_json(body, 1 << 20).await?;
    let oid = v["oid"].as_str().unwrap_or("").to_string();
    let size = v["size"].as_u64();
    let o = oid.clone();
    let stored = ctx.db(move |db| db.repo_lfs_size(&repo, &o)).await?;
    match (stored, size) {
        (Some(s), Some(expected)) if s == expected => Ok(lfs_json(StatusCode::OK, &json!({}))),
        (Some(s), None) => Ok(lfs_json(StatusCode::OK, &json!({ "size": s }))),
        _ => Err(ApiError::not_found(format!(
            "LFS object {} is not stored for this repository",
            crate::ids::printable(&oid)
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_verify_and_reject_tampering() {
        let key = b"secret";
        let oid = "a".repeat(64);
        let expires = now_millis() / 1000 + 60;
        let token = upload_token(key, 7, &oid, 123, expires);
        assert_eq!(check_token(key, &token).unwrap(), (7, oid.clone(), 123));
        let tampered = token.replace(".123.", ".124.");
        assert!(check_token(key, &tampered).is_err());
        assert!(check_token(b"other", &token).is_err());
        let expired = upload_token(key, 7, &oid, 123, now_millis() / 1000 - 1);
        assert!(check_token(key, &expired).is_err());
    }
}
