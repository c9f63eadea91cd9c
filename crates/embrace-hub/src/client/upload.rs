//! Uploads: `create_repo` and `upload_folder` (preupload, git-lfs batch with the signed PUT, and
//! one NDJSON commit), as `huggingface_hub` does them without Xet.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};
use sha1::Digest;

use super::{HubClient, HubError, encode_segment, io_err};
use crate::layout::{fnmatch, hex, walk};
use crate::repo::{RepoId, RepoType};

/// Options of [`HubClient::upload_folder`].
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Branch to commit to (default `main`).
    pub revision: String,
    /// Commit summary.
    pub commit_message: String,
    /// Commit description.
    pub commit_description: String,
    /// If set, the commit fails (412) unless the branch head is this commit.
    pub parent_commit: Option<String>,
    /// Only files matching one of these patterns (all if empty).
    pub allow_patterns: Vec<String>,
    /// Skip files matching one of these patterns.
    pub ignore_patterns: Vec<String>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            revision: "main".into(),
            commit_message: "Upload folder using embrace".into(),
            commit_description: String::new(),
            parent_commit: None,
            allow_patterns: Vec::new(),
            ignore_patterns: Vec::new(),
        }
    }
}

/// The result of a commit.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    /// The new commit (or the current head when nothing changed).
    pub commit_oid: String,
    /// Its URL on the hub.
    pub commit_url: String,
    /// Files sent (new or changed).
    pub uploaded: Vec<String>,
    /// Files skipped because the hub already had them.
    pub unchanged: Vec<String>,
}

/// A local file about to be uploaded.
struct LocalFile {
    path: String,
    abs: std::path::PathBuf,
    size: u64,
    sha256: String,
    git_oid: String,
    sample: Vec<u8>,
}

fn describe(abs: &Path, rel: &str) -> Result<LocalFile, HubError> {
    let mut file = std::fs::File::open(abs).map_err(io_err(abs))?;
    let size = file.metadata().map_err(io_err(abs))?.len();
    let mut sha256 = sha2::Sha256::new();
    let mut git = sha1::Sha1::new();
    git.update(format!("blob {size}\0").as_bytes());
    let mut sample = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err(abs))?;
        if n == 0 {
            break;
        }
        if sample.len() < 512 {
            let take = (512 - sample.len()).min(n);
            sample.extend_from_slice(&buf[..take]);
        }
        sha256.update(&buf[..n]);
        git.update(&buf[..n]);
    }
    Ok(LocalFile {
        path: rel.to_string(),
        abs: abs.to_path_buf(),
        size,
        sha256: hex(&sha256.finalize()),
        git_oid: hex(&git.finalize()),
        sample,
    })
}

impl HubClient {
    /// Creates a repository (`exist_ok`: an existing one is not an error). Returns its URL.
    pub fn create_repo(
        &self,
        repo: &RepoId,
        private: bool,
        exist_ok: bool,
    ) -> Result<String, HubError> {
        let (namespace, name) = repo.id().split_once('/').unwrap_or(("", repo.id()));
        let mut body = json!({ "name": name, "private": private });
        if !namespace.is_empty() {
            body["organization"] = json!(namespace);
        }
        match repo.repo_type() {
            RepoType::Model => {}
            RepoType::Dataset => body["type"] = json!("dataset"),
            RepoType::Space => {
                body["type"] = json!("space");
                body["sdk"] = json!("static");
            }
        }
        let url = format!("{}/api/repos/create", self.config.endpoint);
        let answer = match self.send_json(reqwest::Method::POST, &url, &body, repo, "main") {
            Err(HubError::Http { status: 409, .. }) if exist_ok => Value::Null,
            Err(HubError::Http {
                status: 409, url, ..
            }) => {
                return Err(HubError::Http {
                    status: 409,
                    url,
                    message: format!("{repo} already exists"),
                });
            }
            other => other?,
        };
        Ok(answer["url"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| self.repo_url(repo)))
    }

    /// Uploads the files of a local folder in one commit: unchanged files are skipped, large or
    /// binary files go through LFS (streamed from disk), the others inline.
    pub fn upload_folder(
        &self,
        repo: &RepoId,
        folder: &Path,
        options: &UploadOptions,
    ) -> Result<CommitInfo, HubError> {
        let mut files = Vec::new();
        for (rel, abs) in walk(folder).map_err(io_err(folder))? {
            let keep = (options.allow_patterns.is_empty()
                || options.allow_patterns.iter().any(|p| fnmatch(p, &rel)))
                && !options.ignore_patterns.iter().any(|p| fnmatch(p, &rel));
            if keep {
                files.push(describe(&abs, &rel)?);
            }
        }
        if files.is_empty() {
            return Err(HubError::Invalid(format!(
                "no files to upload in {}",
                folder.display()
            )));
        }
        self.commit_files(repo, files, options)
    }

    /// Uploads one local file as `path_in_repo` in one commit.
    pub fn upload_file(
        &self,
        repo: &RepoId,
        local: &Path,
        path_in_repo: &str,
        options: &UploadOptions,
    ) -> Result<CommitInfo, HubError> {
        let file = describe(local, path_in_repo.trim_start_matches('/'))?;
        self.commit_files(repo, vec![file], options)
    }

    /// Preupload, LFS transfers and the commit of described local files.
    fn commit_files(
        &self,
        repo: &RepoId,
        files: Vec<LocalFile>,
        options: &UploadOptions,
    ) -> Result<CommitInfo, HubError> {
        let revision = options.revision.as_str();
        // 1. Preupload: upload mode per file, ignored files, unchanged files.
        let preupload_url = format!(
            "{}/preupload/{}",
            self.api_url(repo),
            encode_segment(revision)
        );
        let mut modes = std::collections::HashMap::new();
        let mut head = String::new();
        for chunk in files.chunks(256) {
            let body = json!({ "files": chunk.iter().map(|f| json!({
                "path": f.path,
                "size": f.size,
                "sample": base64::engine::general_purpose::STANDARD.encode(&f.sample),
            })).collect::<Vec<_>>() });
            let answer =
                self.send_json(reqwest::Method::POST, &preupload_url, &body, repo, revision)?;
            head = answer["commitOid"].as_str().unwrap_or_default().to_string();
            for entry in answer["files"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let path = entry["path"].as_str().unwrap_or_default().to_string();
                let lfs = entry["uploadMode"] == "lfs";
                let ignore = entry["shouldIgnore"].as_bool().unwrap_or(false);
                let remote_oid = entry["oid"].as_str().map(str::to_string);
                modes.insert(path, (lfs, ignore, remote_oid));
            }
        }
        let mut uploaded = Vec::new();
        let mut unchanged = Vec::new();
        let mut lfs_files = Vec::new();
        let mut regular = Vec::new();
        for f in &files {
            let (lfs, ignore, remote) = modes.get(&f.path).cloned().unwrap_or((false, false, None));
            let lfs = lfs && f.size > 0;
            if ignore {
                continue;
            }
            let local_oid = if lfs { &f.sha256 } else { &f.git_oid };
            if remote.as_deref() == Some(local_oid.as_str()) {
                unchanged.push(f.path.clone());
                continue;
            }
            uploaded.push(f.path.clone());
            if lfs {
                lfs_files.push(f)
            } else {
                regular.push(f)
            }
        }
        if uploaded.is_empty() {
            return Ok(CommitInfo {
                commit_url: String::new(),
                commit_oid: head,
                uploaded,
                unchanged,
            });
        }
        // 2. LFS objects: batch, then a PUT of each missing object to its signed URL.
        if !lfs_files.is_empty() {
            let batch_url = format!("{}.git/info/lfs/objects/batch", self.repo_url(repo));
            let body = json!({
                "operation": "upload",
                "transfers": ["basic"],
                "hash_algo": "sha256",
                "objects": lfs_files.iter().map(|f| json!({ "oid": f.sha256, "size": f.size })).collect::<Vec<_>>(),
                "ref": { "name": revision },
            });
            let answer =
                self.send_json(reqwest::Method::POST, &batch_url, &body, repo, revision)?;
            for object in answer["objects"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if let Some(error) = object.get("error") {
                    return Err(HubError::Http {
                        status: error["code"].as_u64().unwrap_or(422) as u16,
                        url: batch_url.clone(),
                        message: error["message"].as_str().unwrap_or("LFS error").to_string(),
                    });
                }
                let Some(href) = object["actions"]["upload"]["href"].as_str() else {
                    continue; // already stored
                };
                let oid = object["oid"].as_str().unwrap_or_default();
                let Some(file) = lfs_files.iter().find(|f| f.sha256 == oid) else {
                    continue;
                };
                let body = std::fs::File::open(&file.abs).map_err(io_err(&file.abs))?;
                let request = self
                    .http
                    .put(href)
                    .header("content-length", file.size.to_string())
                    .body(reqwest::blocking::Body::sized(body, file.size));
                let response = self.send(request, href)?;
                let status = response.status().as_u16();
                if status >= 400 {
                    let text = response.text().unwrap_or_default();
                    return Err(HubError::Http {
                        status,
                        url: href.to_string(),
                        message: text,
                    });
                }
                if let Some(verify) = object["actions"]["verify"]["href"].as_str() {
                    self.send_json(
                        reqwest::Method::POST,
                        verify,
                        &json!({ "oid": oid, "size": file.size }),
                        repo,
                        revision,
                    )?;
                }
            }
        }
        // 3. The commit.
        let mut header =
            json!({ "summary": options.commit_message, "description": options.commit_description });
        if let Some(parent) = &options.parent_commit {
            header["parentCommit"] = json!(parent);
        }
        let mut lines = vec![json!({ "key": "header", "value": header }).to_string()];
        for f in &regular {
            let content = std::fs::read(&f.abs).map_err(io_err(&f.abs))?;
            lines.push(
                json!({ "key": "file", "value": {
                    "path": f.path,
                    "encoding": "base64",
                    "content": base64::engine::general_purpose::STANDARD.encode(content),
                } })
                .to_string(),
            );
        }
        for f in &lfs_files {
            lines.push(
                json!({ "key": "lfsFile", "value": { "path": f.path, "algo": "sha256", "oid": f.sha256, "size": f.size } })
                    .to_string(),
            );
        }
        let commit_url = format!("{}/commit/{}", self.api_url(repo), encode_segment(revision));
        let request = self
            .http
            .post(&commit_url)
            .header("content-type", "application/x-ndjson")
            .body(lines.join("\n"));
        let (text, _) = self.exchange(request, &commit_url, repo, revision)?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(CommitInfo {
            commit_oid: answer["commitOid"].as_str().unwrap_or_default().to_string(),
            commit_url: answer["commitUrl"].as_str().unwrap_or_default().to_string(),
            uploaded,
            unchanged,
        })
    }
}
