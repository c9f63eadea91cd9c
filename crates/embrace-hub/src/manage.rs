//! Managing the cache: listing repos and revisions with sizes (like `hf cache ls`), deleting a
//! revision or a repo without touching blobs other revisions use, and verifying blob contents
//! against their names (git SHA-1 or SHA-256).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use sha1::Digest as _;

use crate::cache::Cache;
use crate::repo::{RepoId, RepoType};

/// What went wrong while scanning or changing the cache.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// Reading or deleting a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The repo or revision is not in the cache.
    #[error("{0}")]
    NotCached(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ManageError + '_ {
    move |source| ManageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One cached revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRevision {
    /// The commit hash (the snapshot folder's name).
    pub commit: String,
    /// Branch / tag names pointing at it (`refs/…`).
    pub refs: Vec<String>,
    /// Files in the snapshot.
    pub files: usize,
    /// Bytes of the blobs the snapshot uses.
    pub size: u64,
}

/// One cached repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRepo {
    /// Its type.
    pub repo_type: RepoType,
    /// Its id (`org/name`).
    pub repo_id: String,
    /// Its folder.
    pub path: PathBuf,
    /// Bytes of all its blobs.
    pub size: u64,
    /// Its revisions, by commit.
    pub revisions: Vec<CachedRevision>,
    /// Interrupted downloads (`blobs/*.incomplete`).
    pub incomplete: usize,
}

/// A blob whose content does not match its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptBlob {
    /// The repo.
    pub repo_id: String,
    /// A snapshot path that uses it.
    pub file: String,
    /// The blob's name (expected hash).
    pub expected: String,
    /// The hash of its content (empty if it is missing).
    pub found: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn files_under(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => files_under(&path, &rel, out),
            Ok(_) => out.push((rel, path)),
            Err(_) => {}
        }
    }
}

/// The blob a snapshot entry resolves to (its symlink target, or the file itself).
fn blob_of(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

fn parse_folder(name: &str) -> Option<(RepoType, String)> {
    let (kind, rest) = name.split_once("--")?;
    let repo_type = match kind {
        "models" => RepoType::Model,
        "datasets" => RepoType::Dataset,
        "spaces" => RepoType::Space,
        _ => return None,
    };
    Some((repo_type, rest.replace("--", "/")))
}

impl Cache {
    /// Every cached repo with its revisions and sizes, sorted by id.
    pub fn scan(&self) -> Result<Vec<CachedRepo>, ManageError> {
        let mut repos = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.dir()) else {
            return Ok(repos);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((repo_type, repo_id)) = parse_folder(&name) else {
                continue;
            };
            let path = entry.path();
            let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut ref_files = Vec::new();
            files_under(&path.join("refs"), "", &mut ref_files);
            for (rev, file) in ref_files {
                if let Ok(commit) = std::fs::read_to_string(&file) {
                    refs.entry(commit.trim().to_owned()).or_default().push(rev);
                }
            }
            let mut blob_sizes: BTreeMap<PathBuf, u64> = BTreeMap::new();
            let mut incomplete = 0;
            for blob in std::fs::read_dir(path.join("blobs"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let p = blob.path();
                if p.to_string_lossy().ends_with(".incomplete") {
                    incomplete += 1;
                }
                let size = blob.metadata().map(|m| m.len()).unwrap_or(0);
                blob_sizes.insert(std::fs::canonicalize(&p).unwrap_or(p), size);
            }
            let mut revisions = Vec::new();
            for snap in std::fs::read_dir(path.join("snapshots"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let commit = snap.file_name().to_string_lossy().into_owned();
                let mut files = Vec::new();
                files_under(&snap.path(), "", &mut files);
                let used: BTreeSet<PathBuf> = files.iter().map(|(_, p)| blob_of(p)).collect();
                let size =
                    used.iter()
                        .map(|b| {
                            blob_sizes.get(b).copied().unwrap_or_else(|| {
                                std::fs::metadata(b).map(|m| m.len()).unwrap_or(0)
                            })
                        })
                        .sum();
                revisions.push(CachedRevision {
                    refs: refs.remove(&commit).unwrap_or_default(),
                    commit,
                    files: files.len(),
                    size,
                });
            }
            revisions.sort_by(|a, b| a.commit.cmp(&b.commit));
            repos.push(CachedRepo {
                repo_type,
                repo_id,
                size: blob_sizes.values().sum(),
                path,
                revisions,
                incomplete,
            });
        }
        repos.sort_by(|a, b| {
            (a.repo_id.as_str(), a.repo_type.plural())
                .cmp(&(b.repo_id.as_str(), b.repo_type.plural()))
        });
        Ok(repos)
    }

    /// Deletes one revision (a commit, or a ref name) of a repo: its snapshot, the refs that
    /// point at it, and the blobs no other snapshot uses. Returns the bytes freed.
    pub fn delete_revision(&self, repo: &RepoId, revision: &str) -> Result<u64, ManageError> {
        let commit = self
            .resolve_commit(repo, revision)
            .ok()
            .flatten()
            .ok_or_else(|| {
                ManageError::NotCached(format!("{repo} has no cached revision {revision:?}"))
            })?;
        let dir = self.repo_dir(repo);
        let snapshot = dir.join("snapshots").join(&commit);
        if !snapshot.is_dir() {
            return Err(ManageError::NotCached(format!(
                "{repo} has no snapshot {commit}"
            )));
        }
        let mut doomed = Vec::new();
        files_under(&snapshot, "", &mut doomed);
        let doomed: BTreeSet<PathBuf> = doomed.iter().map(|(_, p)| blob_of(p)).collect();
        let mut kept = BTreeSet::new();
        for other in std::fs::read_dir(dir.join("snapshots"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if other.file_name().to_string_lossy() != commit {
                let mut files = Vec::new();
                files_under(&other.path(), "", &mut files);
                kept.extend(files.iter().map(|(_, p)| blob_of(p)));
            }
        }
        std::fs::remove_dir_all(&snapshot).map_err(io(&snapshot))?;
        let mut freed = 0;
        for blob in doomed.difference(&kept) {
            if blob.starts_with(dir.join("blobs"))
                || blob.starts_with(std::fs::canonicalize(dir.join("blobs")).unwrap_or_default())
            {
                freed += std::fs::metadata(blob).map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(blob).map_err(io(blob))?;
            }
        }
        let mut refs = Vec::new();
        files_under(&dir.join("refs"), "", &mut refs);
        for (_, file) in refs {
            if std::fs::read_to_string(&file).is_ok_and(|c| c.trim() == commit) {
                std::fs::remove_file(&file).map_err(io(&file))?;
            }
        }
        let _ = std::fs::remove_dir_all(dir.join(".no_exist").join(&commit));
        Ok(freed)
    }

    /// Deletes a whole repo from the cache. Returns the bytes freed.
    pub fn delete_repo(&self, repo: &RepoId) -> Result<u64, ManageError> {
        let dir = self.repo_dir(repo);
        if !dir.is_dir() {
            return Err(ManageError::NotCached(format!(
                "{repo} is not in the cache at {}",
                self.dir().display()
            )));
        }
        let mut blobs = Vec::new();
        files_under(&dir.join("blobs"), "", &mut blobs);
        let freed = blobs
            .iter()
            .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        Ok(freed)
    }

    /// Recomputes the hash of every blob the snapshots use and reports those whose content
    /// does not match their name (git SHA-1 for 40-hex names, SHA-256 for 64-hex names), or
    /// that are missing.
    pub fn verify(&self) -> Result<Vec<CorruptBlob>, ManageError> {
        let mut bad = Vec::new();
        for repo in self.scan()? {
            let mut checked = BTreeSet::new();
            for rev in &repo.revisions {
                let mut files = Vec::new();
                files_under(
                    &repo.path.join("snapshots").join(&rev.commit),
                    "",
                    &mut files,
                );
                for (rel, path) in files {
                    let blob = blob_of(&path);
                    if !checked.insert(blob.clone()) {
                        continue;
                    }
                    let expected = blob
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let is_hex = expected.bytes().all(|b| b.is_ascii_hexdigit());
                    if !is_hex || !(expected.len() == 40 || expected.len() == 64) {
                        continue; // not a content-addressed blob (e.g. a copied file)
                    }
                    let found = match std::fs::File::open(&blob) {
                        Err(_) => String::new(),
                        Ok(mut f) => {
                            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                            let mut git = sha1::Sha1::new();
                            git.update(format!("blob {size}\0").as_bytes());
                            let mut sha = sha2::Sha256::new();
                            let mut buf = vec![0u8; 1 << 20];
                            loop {
                                let n = f.read(&mut buf).map_err(io(&blob))?;
                                if n == 0 {
                                    break;
                                }
                                git.update(&buf[..n]);
                                sha.update(&buf[..n]);
                            }
                            if expected.len() == 40 {
                                hex(&git.finalize())
                            } else {
                                hex(&sha.finalize())
                            }
                        }
                    };
                    if found != expected {
                        bad.push(CorruptBlob {
                            repo_id: repo.repo_id.clone(),
                            file: format!("{}/{rel}", rev.commit),
                            expected,
                            found,
                        });
                    }
                }
            }
        }
        Ok(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_delete_and_verify() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("config.json"), b"{}").unwrap();
        std::fs::write(src.path().join("model.safetensors"), b"weights v1").unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(cache_dir.path());
        let repo = RepoId::model("acme/tiny").unwrap();
        let v1 = cache.import_folder(&repo, "v1", src.path()).unwrap();
        std::fs::write(src.path().join("model.safetensors"), b"weights v2!").unwrap();
        let v2 = cache.import_folder(&repo, "main", src.path()).unwrap();

        let repos = cache.scan().unwrap();
        assert_eq!(repos.len(), 1);
        assert_eq!(repos[0].repo_id, "acme/tiny");
        assert_eq!(repos[0].revisions.len(), 2);
        assert_eq!(repos[0].size, 2 + 10 + 11);
        let main = repos[0]
            .revisions
            .iter()
            .find(|r| r.commit == v2.commit)
            .unwrap();
        assert_eq!(main.refs, vec!["main"]);
        assert_eq!(main.size, 2 + 11);
        assert!(cache.verify().unwrap().is_empty());

        // Corrupt a blob: verify names it.
        let weights = v2
            .files
            .iter()
            .find(|f| f.path == "model.safetensors")
            .unwrap();
        std::fs::write(
            cache.repo_dir(&repo).join("blobs").join(&weights.blob),
            b"tampered",
        )
        .unwrap();
        let bad = cache.verify().unwrap();
        assert_eq!(bad.len(), 1);
        assert!(bad[0].file.ends_with("model.safetensors"));

        // Deleting v1 frees only its own weights blob (config.json is shared).
        let freed = cache.delete_revision(&repo, "v1").unwrap();
        assert_eq!(freed, 10);
        assert!(!cache.repo_dir(&repo).join("refs/v1").exists());
        assert!(
            cache
                .repo_dir(&repo)
                .join("snapshots")
                .join(&v2.commit)
                .join("config.json")
                .is_file()
        );
        assert!(
            !cache
                .repo_dir(&repo)
                .join("snapshots")
                .join(&v1.commit)
                .exists()
        );
        assert!(cache.delete_revision(&repo, "v1").is_err());
        assert!(cache.delete_repo(&repo).unwrap() > 0);
        assert!(cache.scan().unwrap().is_empty());
    }
}
