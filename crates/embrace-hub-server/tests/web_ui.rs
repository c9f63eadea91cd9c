//! The web UI in a real browser: headless Chromium loads the repository page of a live server,
//! the rendered DOM shows the card and the file list, and a screenshot is taken.
//!
//! Needs Chromium (`apt-get install chromium`; `.ci/run` installs it). `EMBRACE_CHROMIUM` names
//! another binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{TestHub, create_with_files};

fn chromium() -> PathBuf {
    if let Ok(path) = std::env::var("EMBRACE_CHROMIUM") {
        return PathBuf::from(path);
    }
    for candidate in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        if std::path::Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("this test needs Chromium: `apt-get install chromium`, or set EMBRACE_CHROMIUM");
}

/// Runs headless Chromium with the flags a closed network needs; returns stdout.
fn run_chromium(args: &[String], profile: &std::path::Path) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn repo_page_in_headless_chromium() {
    let hub = TestHub::start();
    let readme = "---\nlicense: apache-2.0\nlanguage: en\ntags: [exbert]\npipeline_tag: fill-mask\n---\n\
        # Tiny BERT\n\nA *small* BERT for tests.\n\n## Evaluation\n\n| metric | value |\n|---|---|\n| accuracy | 0.91 |\n\n\
        ```python\nfrom transformers import pipeline\n```\n";
    let config = br#"{"model_type": "bert", "architectures": ["BertForMaskedLM"]}"#;
    create_with_files(
        &hub,
        "tiny-bert",
        "Add model card and weights",
        &[
            ("README.md", readme.as_bytes()),
            ("config.json", config),
            ("model.safetensors", &vec![7u8; 150_000]),
            ("onnx/model.onnx", &[1u8; 3000]),
        ],
    );

    let profile = tempfile::tempdir().unwrap();
    let page = format!("{}/alice/tiny-bert", hub.url);
    let dom = run_chromium(&["--dump-dom".to_string(), page.clone()], profile.path());
    // The rendered card.
    assert!(dom.contains("<h1>Tiny BERT</h1>"), "{dom}");
    assert!(dom.contains("<em>small</em>"));
    assert!(dom.contains("<td>accuracy</td>"));
    assert!(
        !dom.contains("license: apache-2.0"),
        "front matter must not be shown as text"
    );
    // Tags derived from the card and the files.
    for tag in ["fill-mask", "license:apache-2.0", "safetensors", "exbert"] {
        assert!(dom.contains(&format!(">{tag}<")), "tag {tag} missing");
    }
    // The file list with sizes and download links.
    for (name, size) in [
        ("README.md", "B"),
        ("config.json", "60 B"),
        ("model.safetensors", "150.0 kB"),
        ("onnx", "3.0 kB"),
    ] {
        assert!(
            dom.contains(&format!(">{name}</a>")),
            "{name} missing from the file list"
        );
        assert!(dom.contains(size), "size {size} missing");
    }
    assert!(dom.contains("/alice/tiny-bert/resolve/main/model.safetensors"));
    assert!(
        dom.contains("Add model card and weights"),
        "commit history missing"
    );

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hub-repo-page.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,1400".to_string(),
            page,
        ],
        profile.path(),
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 20_000,
        "a blank page would compress far smaller: {} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}
