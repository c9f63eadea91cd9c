//! Helpers shared by the CLI tests that run `embrace` as a user does, against a private hub
//! cache.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `embrace` binary with `args`, its hub cache under `hf_home`, offline.
pub fn embrace(args: &[&str], hf_home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_embrace"))
        .args(args)
        .env("HF_HOME", hf_home)
        .env_remove("HF_HUB_CACHE")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

/// A tiny pipeline model committed with the goldens (`tests/golden/pipelines/models/<name>`).
pub fn tiny(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/pipelines/models")
        .join(name)
        .display()
        .to_string()
}
