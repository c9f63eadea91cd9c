//! The Rust `hf-hub` crate (0.4, the line candle and tokenizers pin, and the strictest client:
//! it sizes files with a `Range: bytes=0-0` probe) downloading from our server.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::{TestHub, post_json, request};
use serde_json::json;

#[test]
fn hf_hub_sync_api_downloads_and_reads_info() {
    let hub = TestHub::start();
    assert_eq!(
        post_json(
            &format!("{}/api/repos/create", hub.url),
            Some(&hub.alice),
            &json!({ "name": "rust" })
        )
        .status,
        200
    );
    let config = br#"{"model_type": "bert", "hidden_size": 32}"#;
    let weights: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let body = [
        json!({ "key": "header", "value": { "summary": "add files" } }),
        json!({ "key": "file", "value": { "path": "config.json", "content": b64(config), "encoding": "base64" } }),
        json!({ "key": "file", "value": { "path": "nested/weights.bin", "content": b64(&weights), "encoding": "base64" } }),
        json!({ "key": "file", "value": { "path": "empty.txt", "content": "", "encoding": "base64" } }),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect::<Vec<_>>()
    .join("\n");
    let c = request(
        "POST",
        &format!("{}/api/models/alice/rust/commit/main", hub.url),
        Some(&hub.alice),
        &[],
        Some(body.as_bytes()),
    );
    assert_eq!(c.status, 200, "{}", c.text());
    let commit = c.json()["commitOid"].as_str().unwrap().to_string();

    let cache = tempfile::tempdir().unwrap();
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_endpoint(hub.url.clone())
        .with_cache_dir(cache.path().to_path_buf())
        .with_token(Some(hub.alice_read.clone()))
        .with_progress(false)
        .build()
        .unwrap();
    let repo = api.model("alice/rust".to_string());
    let path = repo.get("config.json").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), config);
    assert!(path.to_string_lossy().contains(&format!(
        "models--alice--rust/snapshots/{commit}/config.json"
    )));
    let nested = repo.get("nested/weights.bin").unwrap();
    assert_eq!(std::fs::read(nested).unwrap(), weights);
    let empty = repo.get("empty.txt").unwrap();
    assert_eq!(std::fs::read(empty).unwrap(), b"");
    let info = repo.info().unwrap();
    assert_eq!(info.sha, commit);
    let mut files: Vec<String> = info.siblings.iter().map(|s| s.rfilename.clone()).collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            ".gitattributes",
            "config.json",
            "empty.txt",
            "nested/weights.bin"
        ]
    );
    // A missing file is an error, not a panic or an empty file.
    assert!(repo.get("missing.json").is_err());
}
