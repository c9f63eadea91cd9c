//! Repository metadata, file listings, `whoami` and `login`.

use serde_json::Value;

use super::{HubClient, HubError, Target, encode_segment, error_for, io_err};
use crate::repo::RepoId;

/// One file of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFileInfo {
    /// Path relative to the repository root.
    pub path: String,
    /// Size in bytes, when the server told.
    pub size: Option<u64>,
    /// SHA-256 of LFS files.
    pub lfs_sha256: Option<String>,
}

/// What `GET /api/{type}s/{id}/revision/{rev}` says.
#[derive(Debug, Clone)]
pub struct RepoInfo {
    /// The commit the revision resolves to.
    pub sha: String,
    /// The files at that commit.
    pub siblings: Vec<RepoFileInfo>,
    /// Whether the repository is private.
    pub private: bool,
    /// The whole JSON answer (card data, tags, pipeline tag...).
    pub raw: Value,
}

/// The account a token belongs to.
#[derive(Debug, Clone)]
pub struct WhoAmI {
    /// User name (the default namespace).
    pub name: String,
    /// Organisations.
    pub orgs: Vec<String>,
    /// The token's role (`read`, `write`, `fineGrained`), if reported.
    pub role: Option<String>,
    /// The whole JSON answer.
    pub raw: Value,
}

impl HubClient {
    /// GETs a JSON API URL, mapping errors for `repo` / `revision`.
    /// Sends a request about `repo` and returns the answer's body and headers, mapping an error
    /// answer (status and `X-Error-Code`) to a [`HubError`].
    pub(crate) fn exchange(
        &self,
        request: reqwest::blocking::RequestBuilder,
        url: &str,
        repo: &RepoId,
        revision: &str,
    ) -> Result<(String, reqwest::header::HeaderMap), HubError> {
        let response = self.send(self.authorize(request), url)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().map_err(|source| HubError::Network {
            url: url.to_string(),
            source,
        })?;
        if status >= 400 {
            let target = Target {
                repo,
                revision,
                path: None,
                endpoint: &self.config.endpoint,
            };
            return Err(error_for(status, &headers, &body, url, &target));
        }
        Ok((body, headers))
    }

    pub(crate) fn get_json(
        &self,
        url: &str,
        repo: &RepoId,
        revision: &str,
    ) -> Result<(Value, reqwest::header::HeaderMap), HubError> {
        let (body, headers) = self.exchange(self.http.get(url), url, repo, revision)?;
        let value = serde_json::from_str(&body)
            .map_err(|e| HubError::Invalid(format!("{url} answered invalid JSON: {e}")))?;
        Ok((value, headers))
    }

    /// Repository metadata at a revision (the default branch when `None`).
    pub fn repo_info(&self, repo: &RepoId, revision: Option<&str>) -> Result<RepoInfo, HubError> {
        let url = match revision {
            Some(rev) => format!(
                "{}/revision/{}?blobs=true",
                self.api_url(repo),
                encode_segment(rev)
            ),
            None => format!("{}?blobs=true", self.api_url(repo)),
        };
        let (raw, _) = self.get_json(&url, repo, revision.unwrap_or("main"))?;
        let sha = raw["sha"]
            .as_str()
            .filter(|s| s.len() == 40)
            .ok_or_else(|| HubError::Invalid(format!("{url} has no commit sha")))?
            .to_string();
        let siblings = raw["siblings"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|s| {
                        Some(RepoFileInfo {
                            path: s["rfilename"].as_str()?.to_string(),
                            size: s["size"].as_u64(),
                            lfs_sha256: s["lfs"]["sha256"].as_str().map(str::to_string),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(RepoInfo {
            sha,
            siblings,
            private: raw["private"].as_bool().unwrap_or(false),
            raw,
        })
    }

    /// Every file path of a revision, from the recursive tree listing (following `Link` pages).
    pub fn list_files(&self, repo: &RepoId, revision: &str) -> Result<Vec<String>, HubError> {
        let mut url = format!(
            "{}/tree/{}?recursive=true&expand=false",
            self.api_url(repo),
            encode_segment(revision)
        );
        let mut out = Vec::new();
        loop {
            let (page, headers) = self.get_json(&url, repo, revision)?;
            for entry in page.as_array().map(Vec::as_slice).unwrap_or_default() {
                if entry["type"] == "file"
                    && let Some(path) = entry["path"].as_str()
                {
                    out.push(path.to_string());
                }
            }
            match next_link(&headers) {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// The account of the configured token (`GET /api/whoami-v2`).
    pub fn whoami(&self) -> Result<WhoAmI, HubError> {
        if self.config.token.is_none() {
            return Err(HubError::Unauthorized {
                message: "no token: set HF_TOKEN or run `embrace login`".into(),
            });
        }
        let url = format!("{}/api/whoami-v2", self.config.endpoint);
        let response = self.send(self.authorize(self.http.get(&url)), &url)?;
        let status = response.status().as_u16();
        let body = response.text().map_err(|source| HubError::Network {
            url: url.clone(),
            source,
        })?;
        if status == 401 {
            return Err(HubError::Unauthorized {
                message: "Invalid credentials in Authorization header".into(),
            });
        }
        if status >= 400 {
            return Err(HubError::Http {
                status,
                url,
                message: body.chars().take(200).collect(),
            });
        }
        let raw: Value = serde_json::from_str(&body)
            .map_err(|e| HubError::Invalid(format!("whoami answered invalid JSON: {e}")))?;
        Ok(WhoAmI {
            name: raw["name"].as_str().unwrap_or_default().to_string(),
            orgs: raw["orgs"]
                .as_array()
                .map(|o| {
                    o.iter()
                        .filter_map(|x| x["name"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            role: raw["auth"]["accessToken"]["role"]
                .as_str()
                .map(str::to_string),
            raw,
        })
    }

    /// Validates a token with `whoami` and stores it in the token file (`$HF_HOME/token`, or
    /// `HF_TOKEN_PATH`), where Python's `huggingface_hub` reads it too.
    pub fn login(&mut self, token: &str) -> Result<WhoAmI, HubError> {
        self.config.token = Some(token.trim().to_string());
        let me = self.whoami()?;
        let path = self.config.token_path.clone();
        crate::layout::write_atomic(&path, |f| {
            use std::io::Write;
            f.write_all(token.trim().as_bytes())
        })
        .map_err(io_err(&path))?;
        Ok(me)
    }
}

/// A branch, tag or pull request of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRef {
    /// Short name (`main`, `v1.0`, `1`).
    pub name: String,
    /// Full ref (`refs/heads/main`).
    pub reference: String,
    /// The commit it points to.
    pub target_commit: String,
}

/// The refs of a repository.
#[derive(Debug, Clone, Default)]
pub struct GitRefs {
    /// Branches.
    pub branches: Vec<GitRef>,
    /// Tags.
    pub tags: Vec<GitRef>,
    /// Pull requests.
    pub pull_requests: Vec<GitRef>,
}

/// One commit of a repository's history.
#[derive(Debug, Clone)]
pub struct CommitEntry {
    /// Commit id.
    pub id: String,
    /// Summary.
    pub title: String,
    /// Date (ISO 8601).
    pub date: String,
    /// Author user names.
    pub authors: Vec<String>,
}

impl HubClient {
    /// Sends a JSON body and parses the JSON answer, mapping error answers.
    pub(crate) fn send_json(
        &self,
        method: reqwest::Method,
        url: &str,
        body: &Value,
        repo: &RepoId,
        revision: &str,
    ) -> Result<Value, HubError> {
        let request = self
            .http
            .request(method, url)
            .header("content-type", "application/json")
            .body(body.to_string());
        let (text, _) = self.exchange(request, url, repo, revision)?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Deletes a repository (`missing_ok`: a missing one is not an error).
    pub fn delete_repo(&self, repo: &RepoId, missing_ok: bool) -> Result<(), HubError> {
        let (namespace, name) = repo.id().split_once('/').unwrap_or(("", repo.id()));
        let mut body = serde_json::json!({ "name": name, "organization": namespace });
        if repo.repo_type() != crate::RepoType::Model {
            body["type"] = serde_json::json!(match repo.repo_type() {
                crate::RepoType::Dataset => "dataset",
                _ => "space",
            });
        }
        let url = format!("{}/api/repos/delete", self.config.endpoint);
        match self.send_json(reqwest::Method::DELETE, &url, &body, repo, "main") {
            Err(HubError::RepoNotFound { .. }) if missing_ok => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Branches, tags and pull requests.
    pub fn list_refs(&self, repo: &RepoId) -> Result<GitRefs, HubError> {
        let url = format!("{}/refs?include_prs=1", self.api_url(repo));
        let (v, _) = self.get_json(&url, repo, "main")?;
        let list = |key: &str| {
            v[key]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|r| GitRef {
                            name: r["name"].as_str().unwrap_or_default().to_string(),
                            reference: r["ref"].as_str().unwrap_or_default().to_string(),
                            target_commit: r["targetCommit"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(GitRefs {
            branches: list("branches"),
            tags: list("tags"),
            pull_requests: list("pullRequests"),
        })
    }

    /// The history of a revision, newest first (all pages).
    pub fn list_commits(
        &self,
        repo: &RepoId,
        revision: &str,
    ) -> Result<Vec<CommitEntry>, HubError> {
        let mut url = format!(
            "{}/commits/{}",
            self.api_url(repo),
            encode_segment(revision)
        );
        let mut out = Vec::new();
        loop {
            let (page, headers) = self.get_json(&url, repo, revision)?;
            for c in page.as_array().map(Vec::as_slice).unwrap_or_default() {
                out.push(CommitEntry {
                    id: c["id"].as_str().unwrap_or_default().to_string(),
                    title: c["title"].as_str().unwrap_or_default().to_string(),
                    date: c["date"].as_str().unwrap_or_default().to_string(),
                    authors: c["authors"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x["user"].as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
            match next_link(&headers) {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// Creates a branch at a revision (default: the head of `main`).
    pub fn create_branch(
        &self,
        repo: &RepoId,
        branch: &str,
        starting_point: Option<&str>,
    ) -> Result<(), HubError> {
        let url = format!("{}/branch/{}", self.api_url(repo), encode_segment(branch));
        let body = match starting_point {
            Some(rev) => serde_json::json!({ "startingPoint": rev }),
            None => serde_json::json!({}),
        };
        self.send_json(reqwest::Method::POST, &url, &body, repo, branch)
            .map(|_| ())
    }

    /// Tags a revision.
    pub fn create_tag(&self, repo: &RepoId, tag: &str, revision: &str) -> Result<(), HubError> {
        let url = format!("{}/tag/{}", self.api_url(repo), encode_segment(revision));
        self.send_json(
            reqwest::Method::POST,
            &url,
            &serde_json::json!({ "tag": tag }),
            repo,
            revision,
        )
        .map(|_| ())
    }
}

/// The `rel="next"` URL of a `Link` header.
pub(crate) fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',')
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| {
            let start = part.find('<')? + 1;
            let end = part.find('>')?;
            Some(part[start..end].to_string())
        })
}
