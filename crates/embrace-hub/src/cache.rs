//! Reading the hub cache shared with Python `huggingface_hub`:
//! `<cache>/<type>s--<namespace>--<name>/{refs,snapshots,blobs,.no_exist}`.

use crate::config::HubConfig;
use crate::repo::RepoId;
use std::path::{Component, Path, PathBuf};

/// What the cache knows about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLookup {
    /// The file is cached at this path (inside the snapshot).
    Found(PathBuf),
    /// The server said the file does not exist at that commit (a `.no_exist` marker).
    NoExist,
    /// The cache has no answer; only the server can tell.
    Missing,
}

/// A request the cache refuses to look up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// A file path that is absolute or leaves the repository (`..`).
    #[error("invalid file path {0:?}: it must be relative and stay inside the repository")]
    InvalidPath(String),
    /// A revision that cannot name a ref file.
    #[error("invalid revision {0:?}")]
    InvalidRevision(String),
}

/// The hub cache folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    dir: PathBuf,
}

/// Whether `path` is relative and has only normal components.
fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Cache {
    /// The cache at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    /// The cache the configuration names.
    pub fn from_config(config: &HubConfig) -> Self {
        Cache::new(config.cache_dir.clone())
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder of one repository.
    pub fn repo_dir(&self, repo: &RepoId) -> PathBuf {
        self.dir.join(repo.cache_folder())
    }

    /// The commit a revision stands for: the revision itself when it is a commit hash, else the
    /// content of `refs/<revision>`.
    pub fn resolve_commit(
        &self,
        repo: &RepoId,
        revision: &str,
    ) -> Result<Option<String>, CacheError> {
        if is_commit(revision) {
            return Ok(Some(revision.to_owned()));
        }
        if !is_safe_relative(revision) {
            return Err(CacheError::InvalidRevision(revision.to_owned()));
        }
        let commit = std::fs::read_to_string(self.repo_dir(repo).join("refs").join(revision))
            .ok()
            .map(|c| c.trim().to_owned())
            .filter(|c| is_commit(c));
        Ok(commit)
    }

    /// The snapshot folder of a revision, if the cache has one.
    pub fn snapshot_dir(
        &self,
        repo: &RepoId,
        revision: &str,
    ) -> Result<Option<PathBuf>, CacheError> {
        Ok(self.resolve_commit(repo, revision)?.and_then(|commit| {
            let dir = self.repo_dir(repo).join("snapshots").join(commit);
            dir.is_dir().then_some(dir)
        }))
    }

    /// Looks a file up without any network access, as `try_to_load_from_cache` does.
    pub fn lookup(
        &self,
        repo: &RepoId,
        revision: &str,
        filename: &str,
    ) -> Result<CacheLookup, CacheError> {
        if !is_safe_relative(filename) {
            return Err(CacheError::InvalidPath(filename.to_owned()));
        }
        let Some(commit) = self.resolve_commit(repo, revision)? else {
            return Ok(CacheLookup::Missing);
        };
        let repo_dir = self.repo_dir(repo);
        let file = repo_dir.join("snapshots").join(&commit).join(filename);
        // A snapshot entry is a symlink to a blob: it counts only if the blob is there.
        if file.is_file() {
            return Ok(CacheLookup::Found(file));
        }
        if repo_dir
            .join(".no_exist")
            .join(&commit)
            .join(filename)
            .exists()
        {
            return Ok(CacheLookup::NoExist);
        }
        Ok(CacheLookup::Missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "2439f60ef33a0d46d85da5001d52aeda5b00ce9f";

    /// A cache laid out as `huggingface_hub` writes it: blobs, relative symlinks, refs without a
    /// trailing newline, a `.no_exist` marker, and a PR ref.
    fn fixture(root: &Path) -> (Cache, RepoId) {
        let repo = RepoId::model("acme/tiny-bert").unwrap();
        let cache = Cache::new(root);
        let dir = cache.repo_dir(&repo);
        std::fs::create_dir_all(dir.join("blobs")).unwrap();
        std::fs::create_dir_all(dir.join("refs/refs/pr")).unwrap();
        std::fs::create_dir_all(dir.join("snapshots").join(COMMIT).join("sub")).unwrap();
        std::fs::create_dir_all(dir.join(".no_exist").join(COMMIT)).unwrap();
        std::fs::write(
            dir.join("blobs/2f9618c3a19b9a61add74f70bfb121335aeef666"),
            "{}",
        )
        .unwrap();
        std::fs::write(dir.join("refs/main"), COMMIT).unwrap();
        std::fs::write(dir.join("refs/refs/pr/1"), COMMIT).unwrap();
        std::os::unix::fs::symlink(
            "../../blobs/2f9618c3a19b9a61add74f70bfb121335aeef666",
            dir.join("snapshots").join(COMMIT).join("config.json"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "../../../blobs/missing-blob",
            dir.join("snapshots").join(COMMIT).join("sub/broken.bin"),
        )
        .unwrap();
        std::fs::write(
            dir.join(".no_exist")
                .join(COMMIT)
                .join("adapter_config.json"),
            "",
        )
        .unwrap();
        (cache, repo)
    }

    #[test]
    fn finds_files_by_branch_commit_and_pr() {
        let root = std::env::temp_dir().join(format!("embrace-hub-cache-{}", std::process::id()));
        let (cache, repo) = fixture(&root);
        for revision in ["main", COMMIT, "refs/pr/1"] {
            match cache.lookup(&repo, revision, "config.json").unwrap() {
                CacheLookup::Found(p) => assert_eq!(std::fs::read_to_string(p).unwrap(), "{}"),
                other => panic!("{revision}: {other:?}"),
            }
        }
        assert_eq!(
            cache.lookup(&repo, "main", "adapter_config.json").unwrap(),
            CacheLookup::NoExist
        );
        assert_eq!(
            cache.lookup(&repo, "main", "sub/broken.bin").unwrap(),
            CacheLookup::Missing
        );
        assert_eq!(
            cache.lookup(&repo, "v2", "config.json").unwrap(),
            CacheLookup::Missing
        );
        assert!(cache.snapshot_dir(&repo, "main").unwrap().is_some());
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn refuses_paths_that_leave_the_repository() {
        let cache = Cache::new("/nonexistent");
        let repo = RepoId::model("a/b").unwrap();
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "a\\b"] {
            assert!(
                matches!(
                    cache.lookup(&repo, "main", bad),
                    Err(CacheError::InvalidPath(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            cache.lookup(&repo, "../../x", "f"),
            Err(CacheError::InvalidRevision(_))
        ));
    }
}
