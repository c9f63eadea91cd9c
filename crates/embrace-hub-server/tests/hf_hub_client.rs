//! The Rust `hf-hub` crate (0.4, the line candle and tokenizers pin, and the strictest client:
//! it sizes files with a `Range: bytes=0-0` probe) downloading from our server.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestHub, create_with_files};

#[test]
fn hf_hub_sync_api_downloads_and_reads_info() {
    let hub = TestHub::start();
    let config = br#"{"model_type": "bert", "hidden_size": 32}"#;
    let weights: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let commit = create_with_files(
        &hub,
        "rust",
        "add files",
        &[
            ("config.json", config),
            ("nested/weights.bin", &weights),
            ("empty.txt", b""),
        ],
    );

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
