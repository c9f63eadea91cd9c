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
    pub(crate) fn get_json(
        &self,
        url: &str,
        repo: &RepoId,
        revision: &str,
    ) -> Result<(Value, reqwest::header::HeaderMap), HubError> {
        let response = self.send(self.authorize(self.http.get(url)), url)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().map_err(|source| HubError::Network {
            url: url.to_string(),
            source,
        })?;
        if status >= 400 {
            return Err(error_for(
                status,
                &headers,
                &body,
                url,
                &Target {
                    repo,
                    revision,
                    path: None,
                    endpoint: &self.config.endpoint,
                },
            ));
        }
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
