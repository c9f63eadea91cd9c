//! Commits, their file maps and history.

use rusqlite::{OptionalExtension, params};
use sha1::{Digest, Sha1};

use super::Db;
use super::repos::{Repo, escape_like};
use crate::error::Result;
use crate::hashing::hex;
use crate::ids::now_millis;

/// A commit row.
#[derive(Debug, Clone)]
pub struct Commit {
    /// 40-hex id.
    pub id: String,
    /// Parent commit, `None` for the initial commit.
    pub parent: Option<String>,
    /// Summary line.
    pub title: String,
    /// Longer description (may be empty).
    pub message: String,
    /// Name of the user who made it.
    pub author: String,
    /// Time, ms since the epoch.
    pub created_at: i64,
}

/// A file of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the repository root.
    pub path: String,
    /// Content length in bytes.
    pub size: u64,
    /// SHA-256 of the content: the blob's name in the store.
    pub sha256: String,
    /// Git blob id: of the content for regular files, of the LFS pointer for LFS files.
    pub git_oid: String,
    /// Stored through LFS (changes the ETag clients see: SHA-256 instead of the git blob id).
    pub lfs: bool,
}

impl FileEntry {
    /// The ETag clients key their cache with: the SHA-256 for LFS files, the git blob id otherwise.
    pub fn etag(&self) -> &str {
        if self.lfs {
            &self.sha256
        } else {
            &self.git_oid
        }
    }

    /// Byte length of the LFS pointer text.
    pub fn pointer_size(&self) -> usize {
        crate::hashing::lfs_pointer(&self.sha256, self.size).len()
    }
}

/// One change of a commit.
#[derive(Debug, Clone)]
pub enum Op {
    /// Add or replace a file.
    Put(FileEntry),
    /// Delete a file (it must exist).
    Delete(String),
    /// Delete everything under a folder.
    DeleteFolder(String),
}

/// A commit to apply to a branch.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// Full ref name of the branch, e.g. `refs/heads/main`.
    pub branch: String,
    /// If set, the branch head must be this commit (or start with it: 5 to 40 hex).
    pub expected_parent: Option<String>,
    /// Summary line.
    pub title: String,
    /// Description.
    pub message: String,
    /// Author's user name.
    pub author: String,
    /// The changes, applied in order.
    pub ops: Vec<Op>,
}

/// Why a commit was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// The branch does not exist.
    NoBranch,
    /// The branch head is not the expected parent (HTTP 412).
    Stale {
        /// The current head.
        head: String,
    },
    /// A deleted file does not exist.
    MissingFile(String),
    /// A file would sit where a folder is, or the other way round.
    PathConflict(String),
}

pub(crate) fn new_commit_id(parent: Option<&str>, salt: &str, title: &str, time: i64) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!(
        "parent {}\nsalt {salt}\ntime {time}\nnonce {}\n\n{title}",
        parent.unwrap_or(""),
        rand::random::<u64>()
    ));
    hex(&hasher.finalize())
}

const FILE_COLUMNS: &str = "path, size, sha256, git_oid, lfs";

fn file_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FileEntry> {
    Ok(FileEntry {
        path: row.get(0)?,
        size: row.get::<_, i64>(1)? as u64,
        sha256: row.get(2)?,
        git_oid: row.get(3)?,
        lfs: row.get::<_, i64>(4)? != 0,
    })
}

fn commit_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Commit> {
    Ok(Commit {
        id: row.get(0)?,
        parent: row.get(1)?,
        title: row.get(2)?,
        message: row.get(3)?,
        author: row.get(4)?,
        created_at: row.get(5)?,
    })
}

impl Db {
    /// Applies a commit to a branch atomically. The outer `Result` is a database failure, the
    /// inner one a refusal.
    pub fn commit(
        &self,
        repo: &Repo,
        request: &CommitRequest,
    ) -> Result<Result<Commit, CommitError>> {
        self.write(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let head: Option<String> = tx
                .query_row(
                    "SELECT commit_id FROM refs WHERE repo_id = ?1 AND name = ?2",
                    params![repo.id, request.branch],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(head) = head else {
                return Ok(Err(CommitError::NoBranch));
            };
            if let Some(expected) = &request.expected_parent
                && !head.starts_with(expected.as_str())
            {
                return Ok(Err(CommitError::Stale { head }));
            }
            let now = now_millis();
            let id = new_commit_id(Some(&head), &repo.repo_id.to_string(), &request.title, now);
            tx.execute(
                "INSERT INTO commits (id, repo_id, parent, title, message, author, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, repo.id, head, request.title, request.message, request.author, now],
            )?;
            tx.execute(
                "INSERT INTO files (commit_id, path, size, sha256, git_oid, lfs) \
                 SELECT ?1, path, size, sha256, git_oid, lfs FROM files WHERE commit_id = ?2",
                params![id, head],
            )?;
            for op in &request.ops {
                match op {
                    Op::Put(file) => {
                        tx.execute(
                            "INSERT OR REPLACE INTO files (commit_id, path, size, sha256, git_oid, lfs) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![id, file.path, file.size as i64, file.sha256, file.git_oid, file.lfs as i64],
                        )?;
                    }
                    Op::Delete(path) => {
                        let n = tx.execute(
                            "DELETE FROM files WHERE commit_id = ?1 AND path = ?2",
                            params![id, path],
                        )?;
                        if n == 0 {
                            return Ok(Err(CommitError::MissingFile(path.clone())));
                        }
                    }
                    Op::DeleteFolder(folder) => {
                        let prefix = format!("{}/", folder.trim_end_matches('/'));
                        tx.execute(
                            "DELETE FROM files WHERE commit_id = ?1 AND path LIKE ?2 ESCAPE '\\'",
                            params![id, format!("{}%", escape_like(&prefix))],
                        )?;
                    }
                }
            }
            // A path may not be both a file and a folder.
            for op in &request.ops {
                if let Op::Put(file) = op {
                    let under: bool = tx
                        .query_row(
                            "SELECT 1 FROM files WHERE commit_id = ?1 AND path LIKE ?2 ESCAPE '\\' LIMIT 1",
                            params![id, format!("{}/%", escape_like(&file.path))],
                            |_| Ok(()),
                        )
                        .optional()?
                        .is_some();
                    let mut ancestor_is_file = false;
                    let mut end = 0;
                    while let Some(pos) = file.path[end..].find('/') {
                        end += pos;
                        ancestor_is_file |= tx
                            .query_row(
                                "SELECT 1 FROM files WHERE commit_id = ?1 AND path = ?2",
                                params![id, &file.path[..end]],
                                |_| Ok(()),
                            )
                            .optional()?
                            .is_some();
                        end += 1;
                    }
                    if under || ancestor_is_file {
                        return Ok(Err(CommitError::PathConflict(file.path.clone())));
                    }
                }
            }
            tx.execute(
                "UPDATE refs SET commit_id = ?1 WHERE repo_id = ?2 AND name = ?3 AND commit_id = ?4",
                params![id, repo.id, request.branch, head],
            )?;
            tx.commit()?;
            Ok(Ok(Commit {
                id,
                parent: Some(head),
                title: request.title.clone(),
                message: request.message.clone(),
                author: request.author.clone(),
                created_at: now,
            }))
        })
    }

    /// A commit by id.
    pub fn commit_info(&self, commit: &str) -> Result<Option<Commit>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT id, parent, title, message, author, created_at FROM commits WHERE id = ?1",
                    [commit],
                    commit_from_row,
                )
                .optional()?)
        })
    }

    /// History from a commit backwards: `limit` commits after skipping `skip`, newest first.
    pub fn history(&self, commit: &str, skip: usize, limit: usize) -> Result<(Vec<Commit>, bool)> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, parent, title, message, author, created_at FROM commits WHERE id = ?1",
            )?;
            let mut out = Vec::new();
            let mut next = Some(commit.to_string());
            let mut index = 0;
            while let Some(id) = next {
                let Some(c) = stmt.query_row([&id], commit_from_row).optional()? else {
                    break;
                };
                next = c.parent.clone();
                if index >= skip {
                    if out.len() == limit {
                        return Ok((out, true));
                    }
                    out.push(c);
                }
                index += 1;
            }
            Ok((out, false))
        })
    }

    /// All files of a commit, sorted by path.
    pub fn files(&self, commit: &str) -> Result<Vec<FileEntry>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {FILE_COLUMNS} FROM files WHERE commit_id = ?1 ORDER BY path"
            ))?;
            let rows = stmt.query_map([commit], file_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// One file of a commit.
    pub fn file(&self, commit: &str, path: &str) -> Result<Option<FileEntry>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {FILE_COLUMNS} FROM files WHERE commit_id = ?1 AND path = ?2"),
                    params![commit, path],
                    file_from_row,
                )
                .optional()?)
        })
    }

    /// Files of a commit under a folder (`""` for the root), sorted by path.
    pub fn files_under(&self, commit: &str, folder: &str) -> Result<Vec<FileEntry>> {
        if folder.is_empty() {
            return self.files(commit);
        }
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {FILE_COLUMNS} FROM files WHERE commit_id = ?1 AND path LIKE ?2 ESCAPE '\\' ORDER BY path"
            ))?;
            let pattern = format!("{}/%", escape_like(folder));
            let rows = stmt.query_map(params![commit, pattern], file_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Links an LFS object to a repository (after its upload, or when a commit references it).
    pub fn link_lfs(&self, repo: &Repo, sha256: &str) -> Result<()> {
        self.write(|conn| {
            conn.execute(
                "INSERT OR IGNORE INTO repo_lfs (repo_id, sha256) VALUES (?1, ?2)",
                params![repo.id, sha256],
            )?;
            Ok(())
        })
    }

    /// The size of an LFS object the repository may reference, if any.
    pub fn repo_lfs_size(&self, repo: &Repo, sha256: &str) -> Result<Option<u64>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT b.size FROM repo_lfs l JOIN blobs b ON b.sha256 = l.sha256 \
                     WHERE l.repo_id = ?1 AND l.sha256 = ?2",
                    params![repo.id, sha256],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .map(|s| s as u64))
        })
    }

    /// Cached derived metadata of a commit.
    pub fn commit_meta(&self, commit: &str) -> Result<Option<String>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT json FROM commit_meta WHERE commit_id = ?1",
                    [commit],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    /// Stores derived metadata of a commit.
    pub fn set_commit_meta(&self, commit: &str, json: &str) -> Result<()> {
        self.write(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO commit_meta (commit_id, json) VALUES (?1, ?2)",
                params![commit, json],
            )?;
            Ok(())
        })
    }
}
