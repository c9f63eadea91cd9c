//! Downloads into the shared cache: one file (`hf_hub_download`) or a whole revision
//! (`snapshot_download`), resumable, verified, locked against concurrent writers.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sha1::Digest;

use super::{HubClient, HubError, Target, encode_path, encode_segment, error_for, io_err};
use crate::cache::CacheLookup;
use crate::layout::{fnmatch, hex, link_snapshot, write_ref};
use crate::repo::RepoId;

/// Automatic resumes after a connection drops in the middle of a body.
const RESUME_ATTEMPTS: usize = 3;

/// Options of [`HubClient::snapshot_download`].
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Branch, tag or commit (default `main`).
    pub revision: String,
    /// Only files matching one of these `fnmatch` patterns (all files if empty).
    pub allow_patterns: Vec<String>,
    /// Skip files matching one of these patterns.
    pub ignore_patterns: Vec<String>,
    /// Files downloaded in parallel.
    pub max_workers: usize,
    /// Also place the files in this folder (as `huggingface_hub`'s `local_dir`), with the
    /// `.cache/huggingface/download/<path>.metadata` files Python uses to skip unchanged files.
    pub local_dir: Option<PathBuf>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            revision: "main".into(),
            allow_patterns: Vec::new(),
            ignore_patterns: Vec::new(),
            max_workers: 8,
            local_dir: None,
        }
    }
}

fn is_commit(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What a `HEAD /resolve/` told us.
struct FileMetadata {
    commit: String,
    etag: String,
    size: u64,
    url: String,
}

/// The digest a blob name promises: SHA-256 for LFS (64 hex), git blob SHA-1 for regular files.
enum Verifier {
    Sha256(sha2::Sha256),
    GitSha1(sha1::Sha1),
    None,
}

impl Verifier {
    fn for_etag(etag: &str, size: u64) -> Self {
        let hexy = etag.bytes().all(|b| b.is_ascii_hexdigit());
        match etag.len() {
            64 if hexy => Verifier::Sha256(sha2::Sha256::new()),
            40 if hexy => {
                let mut h = sha1::Sha1::new();
                h.update(format!("blob {size}\0").as_bytes());
                Verifier::GitSha1(h)
            }
            _ => Verifier::None,
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Verifier::Sha256(h) => h.update(data),
            Verifier::GitSha1(h) => h.update(data),
            Verifier::None => {}
        }
    }

    fn finish(self) -> Option<String> {
        match self {
            Verifier::Sha256(h) => Some(hex(&h.finalize())),
            Verifier::GitSha1(h) => Some(hex(&h.finalize())),
            Verifier::None => None,
        }
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl HubClient {
    /// Downloads one file of a repository at a revision into the cache and returns the path of
    /// its snapshot entry (`hf_hub_download`). A cached file at a commit costs no request.
    pub fn download_file(
        &self,
        repo: &RepoId,
        path: &str,
        revision: &str,
    ) -> Result<PathBuf, HubError> {
        self.download_file_with(repo, path, revision, None)
    }

    fn download_file_with(
        &self,
        repo: &RepoId,
        path: &str,
        revision: &str,
        bars: Option<&MultiProgress>,
    ) -> Result<PathBuf, HubError> {
        let cached = self.cache.lookup(repo, revision, path)?;
        if is_commit(revision)
            && let CacheLookup::Found(p) = &cached
        {
            return Ok(p.clone());
        }
        if self.config.offline {
            return match cached {
                CacheLookup::Found(p) => Ok(p),
                CacheLookup::NoExist => Err(HubError::EntryNotFound {
                    repo: repo.to_string(),
                    revision: revision.to_string(),
                    path: path.to_string(),
                }),
                CacheLookup::Missing => Err(HubError::NotCached {
                    what: format!("{path} of {repo} at {revision}"),
                    cache: self.cache.dir().display().to_string(),
                }),
            };
        }
        let repo_dir = self.cache.repo_dir(repo);
        let meta = match self.file_metadata(repo, path, revision) {
            Ok(meta) => meta,
            // The server said the file does not exist: remember it, as Python does.
            Err((err @ HubError::EntryNotFound { .. }, Some(commit))) => {
                let marker = repo_dir.join(".no_exist").join(&commit).join(path);
                if let Some(parent) = marker.parent() {
                    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                std::fs::write(&marker, b"").map_err(io_err(&marker))?;
                if !is_commit(revision) {
                    write_ref(&repo_dir, revision, &commit).map_err(io_err(&repo_dir))?;
                }
                return Err(err);
            }
            Err((err, _)) => {
                // Unreachable server or a refusal: a cached copy still answers, like Python.
                if let CacheLookup::Found(p) = cached
                    && !matches!(err, HubError::RevisionNotFound { .. })
                {
                    tracing::warn!("{err}; using the cached copy of {path}");
                    return Ok(p);
                }
                return Err(err);
            }
        };
        if !is_commit(revision) {
            write_ref(&repo_dir, revision, &meta.commit).map_err(io_err(&repo_dir))?;
        }
        let snapshot_file = repo_dir.join("snapshots").join(&meta.commit).join(path);
        if snapshot_file.is_file() {
            return Ok(snapshot_file);
        }
        let blob = repo_dir.join("blobs").join(&meta.etag);
        if !blob.is_file() {
            self.fetch_blob(repo, path, &meta, &blob, bars)?;
        }
        link_snapshot(&repo_dir, &meta.commit, path, &meta.etag).map_err(io_err(&snapshot_file))
    }

    /// `HEAD` on `/resolve/`, following same-origin redirects. On error, the commit from
    /// `X-Repo-Commit` is returned alongside when the server sent one.
    fn file_metadata(
        &self,
        repo: &RepoId,
        path: &str,
        revision: &str,
    ) -> Result<FileMetadata, (HubError, Option<String>)> {
        let mut url = format!(
            "{}/resolve/{}/{}",
            self.repo_url(repo),
            encode_segment(revision),
            encode_path(path)
        );
        for _ in 0..10 {
            let request = self
                .authorize(self.http.head(&url))
                .header("accept-encoding", "identity");
            let response = self.send(request, &url).map_err(|e| (e, None))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let commit = header("x-repo-commit");
            if (300..400).contains(&status)
                && let Some(location) = header("location")
            {
                let same_origin = location.starts_with(&self.config.endpoint);
                if location.starts_with('/') || same_origin {
                    url = if same_origin {
                        location
                    } else {
                        format!("{}{location}", origin(&self.config.endpoint))
                    };
                    continue;
                }
                // A redirect to storage on another origin: its metadata is on this answer.
                return metadata_from(&headers, &url, location, false).map_err(|e| (e, None));
            }
            if status >= 400 {
                let err = error_for(
                    status,
                    &headers,
                    "",
                    &url,
                    &Target {
                        repo,
                        revision,
                        path: Some(path),
                        endpoint: &self.config.endpoint,
                    },
                );
                let err = match err {
                    // A 404 that carries a commit is a missing entry, whatever the code says.
                    HubError::Http { status: 404, .. } if commit.is_some() => {
                        HubError::EntryNotFound {
                            repo: repo.to_string(),
                            revision: revision.to_string(),
                            path: path.to_string(),
                        }
                    }
                    other => other,
                };
                let commit = if matches!(err, HubError::EntryNotFound { .. }) {
                    commit
                } else {
                    None
                };
                return Err((err, commit));
            }
            return metadata_from(&headers, &url, url.clone(), true).map_err(|e| (e, None));
        }
        Err((
            HubError::Invalid(format!("too many redirects for {url}")),
            None,
        ))
    }

    /// Downloads a blob under a lock, resuming `<blob>.incomplete`, verifying its digest, then
    /// renaming it into place.
    fn fetch_blob(
        &self,
        repo: &RepoId,
        path: &str,
        meta: &FileMetadata,
        blob: &Path,
        bars: Option<&MultiProgress>,
    ) -> Result<(), HubError> {
        let lock_path = self
            .cache
            .dir()
            .join(".locks")
            .join(repo.cache_folder())
            .join(format!("{}.lock", meta.etag));
        if let Some(parent) = lock_path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        // Another process may have finished the blob while we waited.
        if blob.is_file() {
            return Ok(());
        }
        if let Some(parent) = blob.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let partial = blob.with_file_name(format!("{}.incomplete", meta.etag));
        let bar = match bars {
            Some(multi) => multi.add(ProgressBar::new(meta.size)),
            None if self.progress => ProgressBar::new(meta.size),
            None => ProgressBar::hidden(),
        };
        bar.set_style(bar_style());
        bar.set_message(path.rsplit('/').next().unwrap_or(path).to_string());
        let mut attempt = 0;
        let result = loop {
            match self.fetch_into(path, meta, &partial, &bar) {
                Err(HubError::Incomplete { .. } | HubError::Network { .. })
                    if attempt < RESUME_ATTEMPTS =>
                {
                    attempt += 1;
                    tracing::warn!("download of {path} interrupted; resuming (attempt {attempt})");
                }
                other => break other,
            }
        };
        bar.finish_and_clear();
        result?;
        std::fs::rename(&partial, blob).map_err(io_err(blob))?;
        Ok(())
    }

    /// One attempt: appends to `partial` from its current length, then verifies the whole file.
    fn fetch_into(
        &self,
        path: &str,
        meta: &FileMetadata,
        partial: &Path,
        bar: &ProgressBar,
    ) -> Result<(), HubError> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(partial)
            .map_err(io_err(partial))?;
        let mut have = file.metadata().map_err(io_err(partial))?.len();
        if have > meta.size {
            file.set_len(0).map_err(io_err(partial))?;
            have = 0;
        }
        let mut verifier = Verifier::for_etag(&meta.etag, meta.size);
        if have > 0 {
            // Hash what is already on disk.
            file.seek(std::io::SeekFrom::Start(0))
                .map_err(io_err(partial))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut left = have;
            while left > 0 {
                let n = file.read(&mut buf).map_err(io_err(partial))?;
                if n == 0 {
                    break;
                }
                verifier.update(&buf[..n]);
                left -= n as u64;
            }
        }
        if have < meta.size {
            let mut request = self.http.get(&meta.url);
            if meta.url.starts_with(&self.config.endpoint) {
                request = self.authorize(request);
            }
            if have > 0 {
                tracing::info!("resuming {path} from byte {have} of {}", meta.size);
                request = request.header("range", format!("bytes={have}-"));
            }
            let mut response = self.send(request, &meta.url)?;
            let status = response.status().as_u16();
            if status >= 400 {
                return Err(HubError::Http {
                    status,
                    url: meta.url.clone(),
                    message: "download failed".into(),
                });
            }
            if have > 0 && status == 200 {
                // The server ignored the range: start over.
                file.set_len(0).map_err(io_err(partial))?;
                have = 0;
                verifier = Verifier::for_etag(&meta.etag, meta.size);
            }
            bar.set_position(have);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = match response.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(_) => break, // connection dropped: the length check below reports it
                };
                let n = n.min((meta.size - have) as usize);
                file.write_all(&buf[..n]).map_err(io_err(partial))?;
                verifier.update(&buf[..n]);
                have += n as u64;
                bar.set_position(have);
                if have == meta.size {
                    break;
                }
            }
        }
        file.sync_all().map_err(io_err(partial))?;
        if have != meta.size {
            return Err(HubError::Incomplete {
                path: path.to_string(),
                received: have,
                expected: meta.size,
            });
        }
        if let Some(actual) = verifier.finish()
            && actual != meta.etag
        {
            drop(file);
            let _ = std::fs::remove_file(partial);
            return Err(HubError::ChecksumMismatch {
                path: path.to_string(),
                expected: meta.etag.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// The local folder of a repository revision: the cached snapshot when there is one (no
    /// network call), else a fresh [`HubClient::snapshot_download`]. This is how models and
    /// tokenizers given by repo id are loaded.
    pub fn resolve_snapshot(&self, repo: &RepoId, revision: &str) -> Result<PathBuf, HubError> {
        if let Some(dir) = self.cache.snapshot_dir(repo, revision)?
            && std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some())
        {
            return Ok(dir);
        }
        let options = DownloadOptions {
            revision: revision.to_string(),
            ..DownloadOptions::default()
        };
        self.snapshot_download(repo, &options)
    }

    /// Downloads every file of a revision (filtered by patterns) and returns the snapshot folder
    /// (`snapshot_download`). Offline, returns the cached snapshot if there is one.
    pub fn snapshot_download(
        &self,
        repo: &RepoId,
        options: &DownloadOptions,
    ) -> Result<PathBuf, HubError> {
        let revision = options.revision.as_str();
        if self.config.offline {
            return self
                .cache
                .snapshot_dir(repo, revision)?
                .ok_or_else(|| HubError::NotCached {
                    what: format!("{repo} at {revision}"),
                    cache: self.cache.dir().display().to_string(),
                });
        }
        let info = self.repo_info(repo, Some(revision))?;
        let repo_dir = self.cache.repo_dir(repo);
        if !is_commit(revision) {
            write_ref(&repo_dir, revision, &info.sha).map_err(io_err(&repo_dir))?;
        }
        let mut files: Vec<String> = info.siblings.iter().map(|s| s.path.clone()).collect();
        if files.is_empty() {
            files = self.list_files(repo, &info.sha)?;
        }
        files.retain(|f| {
            (options.allow_patterns.is_empty()
                || options.allow_patterns.iter().any(|p| fnmatch(p, f)))
                && !options.ignore_patterns.iter().any(|p| fnmatch(p, f))
        });
        let multi = MultiProgress::new();
        if !self.progress {
            multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let total = multi.add(ProgressBar::new(files.len() as u64));
        total.set_style(
            ProgressStyle::with_template("Fetching {pos}/{len} files [{bar:30}] {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let next = AtomicUsize::new(0);
        let first_error: Mutex<Option<HubError>> = Mutex::new(None);
        let workers = options.max_workers.clamp(1, 64).min(files.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(i) else { break };
                        if first_error.lock().map(|e| e.is_some()).unwrap_or(true) {
                            break;
                        }
                        match self.download_file_with(repo, file, &info.sha, Some(&multi)) {
                            Ok(_) => total.inc(1),
                            Err(e) => {
                                if let Ok(mut slot) = first_error.lock() {
                                    slot.get_or_insert(e);
                                }
                                break;
                            }
                        }
                    }
                });
            }
        });
        total.finish_and_clear();
        if let Some(err) = first_error.into_inner().ok().flatten() {
            return Err(err);
        }
        let snapshot = repo_dir.join("snapshots").join(&info.sha);
        std::fs::create_dir_all(&snapshot).map_err(io_err(&snapshot))?;
        match &options.local_dir {
            Some(dir) => {
                place_in_local_dir(&snapshot, dir, &files, &info.sha)?;
                Ok(dir.clone())
            }
            None => Ok(snapshot),
        }
    }
}

/// Copies snapshot files into `local_dir` (atomically) and writes the metadata files
/// `huggingface_hub` keeps there: `.cache/huggingface/download/<path>.metadata` holding the
/// commit, the ETag and the time of the download.
fn place_in_local_dir(
    snapshot: &Path,
    local_dir: &Path,
    files: &[String],
    commit: &str,
) -> Result<(), HubError> {
    let meta_root = local_dir.join(".cache").join("huggingface");
    std::fs::create_dir_all(meta_root.join("download")).map_err(io_err(&meta_root))?;
    std::fs::write(meta_root.join(".gitignore"), "*\n").map_err(io_err(&meta_root))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    for file in files {
        let source = snapshot.join(file);
        // The blob name behind the snapshot symlink is the ETag.
        let etag = std::fs::read_link(&source)
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let dest = local_dir.join(file);
        crate::layout::write_atomic(&dest, |out| {
            let mut input = std::fs::File::open(&source)?;
            std::io::copy(&mut input, out).map(|_| ())
        })
        .map_err(io_err(&dest))?;
        let meta = meta_root.join("download").join(format!("{file}.metadata"));
        crate::layout::write_atomic(&meta, |out| write!(out, "{commit}\n{etag}\n{now}\n"))
            .map_err(io_err(&meta))?;
    }
    Ok(())
}

/// Reads the file metadata headers of a `/resolve/` answer: `X-Repo-Commit`, the ETag
/// (`X-Linked-Etag` first) and the size (`X-Linked-Size`, else `Content-Length` when the answer
/// is the file itself).
fn metadata_from(
    headers: &reqwest::header::HeaderMap,
    url: &str,
    download_url: String,
    content_length_is_size: bool,
) -> Result<FileMetadata, HubError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let missing = |header| HubError::NotAHub {
        url: url.to_string(),
        header,
    };
    let commit = header("x-repo-commit").ok_or_else(|| missing("X-Repo-Commit"))?;
    let etag = header("x-linked-etag")
        .or_else(|| header("etag"))
        .ok_or_else(|| missing("ETag"))?;
    let size = header("x-linked-size")
        .or_else(|| {
            content_length_is_size
                .then(|| header("content-length"))
                .flatten()
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(FileMetadata {
        commit,
        etag: normalize_etag(&etag),
        size,
        url: download_url,
    })
}

fn normalize_etag(etag: &str) -> String {
    etag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_and_origins() {
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(origin("http://127.0.0.1:8000/hf"), "http://127.0.0.1:8000");
        assert_eq!(origin("https://huggingface.co"), "https://huggingface.co");
    }
}
