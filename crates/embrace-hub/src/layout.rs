//! Writing the cache layout `huggingface_hub` reads: atomic files, relative snapshot symlinks,
//! hex digests, and walking a local folder the way uploads and imports see it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Lowercase hexadecimal of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A number unique within this process, for temporary file names.
pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Writes `dest` through a unique temporary file in the same folder, flushed to disk, then
/// renamed: readers see the old content or the new one, never a part.
pub(crate) fn write_atomic(
    dest: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let folder = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = folder.join(format!(".{name}.{}.{}.tmp", std::process::id(), unique()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        write(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&temp, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Writes `refs/<revision>` (no trailing newline) unless it already holds `commit`, and makes
/// sure `snapshots/<commit>/` exists (a ref to a missing snapshot is "corrupted" for scan-cache).
pub(crate) fn write_ref(repo_dir: &Path, revision: &str, commit: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(repo_dir.join("snapshots").join(commit))?;
    let path = repo_dir.join("refs").join(revision);
    if std::fs::read_to_string(&path).is_ok_and(|c| c.trim() == commit) {
        return Ok(());
    }
    write_atomic(&path, |f| f.write_all(commit.as_bytes()))
}

/// Links `snapshots/<commit>/<path>` to `blobs/<blob>` with a relative symlink (a copy where
/// symlinks are unavailable), replacing whatever was there.
pub(crate) fn link_snapshot(
    repo_dir: &Path,
    commit: &str,
    path: &str,
    blob: &str,
) -> std::io::Result<PathBuf> {
    let link = repo_dir.join("snapshots").join(commit).join(path);
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let ups = path.split('/').count() + 1;
    let target = format!("{}blobs/{blob}", "../".repeat(ups));
    // Create under a unique name, then rename over the entry: concurrent writers of the same
    // entry never see each other's half-made link.
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = link.with_file_name(format!(".{name}.{}.{}.link", std::process::id(), unique()));
    link_or_copy(&target, &repo_dir.join("blobs").join(blob), &temp)?;
    if let Err(e) = std::fs::rename(&temp, &link) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(link)
}

#[cfg(unix)]
fn link_or_copy(target: &str, _blob: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn link_or_copy(_target: &str, blob: &Path, link: &Path) -> std::io::Result<()> {
    // Without symlinks, huggingface_hub copies the blob into the snapshot.
    std::fs::copy(blob, link).map(|_| ())
}

/// Every regular file under `dir` (following symlinks, as snapshot entries are; skipping `.git`
/// and `.cache`), as (relative `/`-separated path, absolute path), sorted by path.
pub fn walk(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_owned())];
    while let Some((prefix, folder)) = stack.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            let meta = std::fs::metadata(&path)?;
            if meta.is_dir() {
                if name != ".git" && name != ".cache" {
                    stack.push((rel, path));
                }
            } else if meta.is_file() {
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Python's `fnmatch` (as `huggingface_hub` filters files with allow/ignore patterns): `*`
/// matches any run of characters including `/`, `?` one character, `[...]` a class; a pattern
/// ending in `/` means everything under that folder.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let pattern = if pattern.ends_with('/') {
        format!("{pattern}*")
    } else {
        pattern.to_string()
    };
    matches(pattern.as_bytes(), name.as_bytes())
}

fn matches(p: &[u8], t: &[u8]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some(b'*') => (0..=t.len()).any(|i| matches(&p[1..], &t[i..])),
        Some(b'?') => !t.is_empty() && matches(&p[1..], &t[1..]),
        Some(b'[') => match p.iter().skip(1).position(|&b| b == b']').map(|i| i + 1) {
            None => t.first() == Some(&b'[') && matches(&p[1..], &t[1..]),
            Some(close) => {
                let Some(&c) = t.first() else { return false };
                let mut class = &p[1..close];
                let negate = class.first() == Some(&b'!');
                if negate {
                    class = &class[1..];
                }
                let mut found = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == b'-' {
                        found |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        found |= class[i] == c;
                        i += 1;
                    }
                }
                found != negate && matches(&p[close + 1..], &t[1..])
            }
        },
        Some(&b) => t.first() == Some(&b) && matches(&p[1..], &t[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_like_python() {
        assert!(fnmatch("*.json", "config.json"));
        assert!(fnmatch("*.json", "sub/config.json"));
        assert!(fnmatch("onnx/", "onnx/model.onnx"));
        assert!(!fnmatch("onnx/", "model.onnx"));
        assert!(fnmatch(
            "model-0000?.safetensors",
            "model-00001.safetensors"
        ));
        assert!(fnmatch("[!.]*", "README.md"));
        assert!(!fnmatch("[!.]*", ".gitattributes"));
    }
}
