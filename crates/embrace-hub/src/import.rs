//! Importing a local model folder into the hub cache, laid out exactly as `huggingface_hub`
//! lays out downloads, so that Python and Embrace then resolve it by repo id without a network.
//!
//! Blobs are named as the Hub names them (git blob SHA-1 for regular files, SHA-256 for files
//! stored with LFS: weights and anything of 10 MiB or more); snapshot entries are relative
//! symlinks to the blobs; `refs/<revision>` holds the commit. An imported folder has no commit
//! on any hub, so its commit id is derived from the files (SHA-1 over the sorted
//! `path blob` lines): importing the same files again gives the same commit.
//!
//! Every file is written to a unique temporary name, flushed and renamed into place, so an
//! interrupted import never leaves a half-written blob or ref behind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::layout::{hex, walk, write_atomic};

use sha1::Digest as _;

use crate::cache::Cache;
use crate::repo::RepoId;

/// File extensions the Hub stores with LFS by default (its `.gitattributes`).
const LFS_EXTENSIONS: [&str; 16] = [
    "safetensors",
    "bin",
    "pt",
    "pth",
    "ckpt",
    "onnx",
    "gguf",
    "h5",
    "msgpack",
    "pb",
    "tflite",
    "ot",
    "model",
    "npy",
    "npz",
    "zip",
];

/// Files of this size or larger are stored with LFS whatever their name.
const LFS_MIN_SIZE: u64 = 10 * 1024 * 1024;

/// What went wrong during an import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source is not a folder.
    #[error("{0} is not a folder")]
    NotAFolder(PathBuf),
    /// The folder holds no file.
    #[error("{0} holds no file to import")]
    Empty(PathBuf),
    /// The revision cannot name a ref.
    #[error("invalid revision {0:?}: use a branch or tag name such as main")]
    InvalidRevision(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One imported file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedFile {
    /// The path inside the repository (`/`-separated).
    pub path: String,
    /// The blob name (git SHA-1, or SHA-256 for LFS files).
    pub blob: String,
    /// Whether the Hub would store it with LFS.
    pub lfs: bool,
    /// Its size in bytes.
    pub size: u64,
}

/// The result of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The commit the revision now points to.
    pub commit: String,
    /// The snapshot folder.
    pub snapshot: PathBuf,
    /// The files, sorted by path.
    pub files: Vec<ImportedFile>,
}

/// Git's blob id of a file: SHA-1 of `blob <len>\0<bytes>`; and its SHA-256.
fn hashes(path: &Path, size: u64) -> Result<(String, String), ImportError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut git = sha1::Sha1::new();
    git.update(format!("blob {size}\0").as_bytes());
    let mut sha256 = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        git.update(&buf[..n]);
        sha256.update(&buf[..n]);
    }
    Ok((hex(&git.finalize()), hex(&sha256.finalize())))
}

fn is_lfs(path: &str, size: u64) -> bool {
    size >= LFS_MIN_SIZE
        || path
            .rsplit_once('.')
            .is_some_and(|(_, ext)| LFS_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

impl Cache {
    /// Imports the files of `dir` as `repo` at `revision` (a branch or tag name).
    pub fn import_folder(
        &self,
        repo: &RepoId,
        revision: &str,
        dir: &Path,
    ) -> Result<ImportReport, ImportError> {
        if !dir.is_dir() {
            return Err(ImportError::NotAFolder(dir.to_owned()));
        }
        if revision.is_empty()
            || revision.contains("..")
            || revision.starts_with('/')
            || revision.contains('\\')
            || (revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(ImportError::InvalidRevision(revision.to_owned()));
        }
        let sources = walk(dir).map_err(io(dir))?;
        if sources.is_empty() {
            return Err(ImportError::Empty(dir.to_owned()));
        }
        let repo_dir = self.repo_dir(repo);
        let blobs = repo_dir.join("blobs");
        let mut files = Vec::with_capacity(sources.len());
        for (rel, path) in &sources {
            let size = std::fs::metadata(path).map_err(io(path))?.len();
            let (git, sha256) = hashes(path, size)?;
            let lfs = is_lfs(rel, size);
            let blob = if lfs { sha256 } else { git };
            let dest = blobs.join(&blob);
            if !dest.is_file() {
                write_atomic(&dest, |out| {
                    let mut src = std::fs::File::open(path)?;
                    std::io::copy(&mut src, out).map(|_| ())
                })
                .map_err(io(&dest))?;
            }
            files.push(ImportedFile {
                path: rel.clone(),
                blob,
                lfs,
                size,
            });
        }
        let mut commit_hash = sha1::Sha1::new();
        commit_hash.update(b"embrace-import\n");
        for f in &files {
            commit_hash.update(format!("{} {}\n", f.path, f.blob).as_bytes());
        }
        let commit = hex(&commit_hash.finalize());
        let snapshot = repo_dir.join("snapshots").join(&commit);
        for f in &files {
            let link = snapshot.join(&f.path);
            crate::layout::link_snapshot(&repo_dir, &commit, &f.path, &f.blob)
                .map_err(io(&link))?;
        }
        let ref_path = repo_dir.join("refs").join(revision);
        write_atomic(&ref_path, |out| out.write_all(commit.as_bytes())).map_err(io(&ref_path))?;
        Ok(ImportReport {
            commit,
            snapshot,
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheLookup;

    #[test]
    fn imported_folder_resolves_like_a_download() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(
            src.path().join("config.json"),
            b"{\"model_type\": \"bert\"}\n",
        )
        .unwrap();
        std::fs::create_dir_all(src.path().join("1_Pooling")).unwrap();
        std::fs::write(src.path().join("1_Pooling/config.json"), b"{}").unwrap();
        std::fs::write(src.path().join("model.safetensors"), b"weights").unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(cache_dir.path());
        let repo = RepoId::model("acme/tiny").unwrap();
        let report = cache.import_folder(&repo, "main", src.path()).unwrap();

        // git blob id of "{}" is 9e26dfeeb6e641a33dae4961196235bdb965b21b.
        let pooling = report
            .files
            .iter()
            .find(|f| f.path == "1_Pooling/config.json")
            .unwrap();
        assert_eq!(pooling.blob, "9e26dfeeb6e641a33dae4961196235bdb965b21b");
        let weights = report
            .files
            .iter()
            .find(|f| f.path == "model.safetensors")
            .unwrap();
        assert!(weights.lfs);
        assert_eq!(weights.blob.len(), 64);

        let link = report.snapshot.join("1_Pooling/config.json");
        assert_eq!(
            std::fs::read_link(&link).unwrap().to_string_lossy(),
            "../../../blobs/9e26dfeeb6e641a33dae4961196235bdb965b21b"
        );
        assert_eq!(
            cache
                .lookup(&repo, "main", "1_Pooling/config.json")
                .unwrap(),
            CacheLookup::Found(link)
        );
        let refs = std::fs::read_to_string(cache.repo_dir(&repo).join("refs/main")).unwrap();
        assert_eq!(refs, report.commit);

        // Same files, same commit; a re-import is idempotent.
        let again = cache.import_folder(&repo, "main", src.path()).unwrap();
        assert_eq!(again.commit, report.commit);
        assert!(cache.import_folder(&repo, "../x", src.path()).is_err());
        assert!(
            cache
                .import_folder(&repo, "main", &src.path().join("missing"))
                .is_err()
        );
    }
}
