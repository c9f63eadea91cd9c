//! Repositories and refs.

use rusqlite::{OptionalExtension, params};

use super::Db;
use super::commits::{FileEntry, new_commit_id};
use crate::error::Result;
use crate::ids::{RepoId, RepoType, is_commit_id, now_millis};

/// A repository row.
#[derive(Debug, Clone)]
pub struct Repo {
    /// Row id.
    pub id: i64,
    /// Model, dataset or space.
    pub repo_type: RepoType,
    /// `namespace/name` as created.
    pub repo_id: RepoId,
    /// Visible only to its owner.
    pub private: bool,
    /// Opaque 24-hex object id (the Hub's `_id`).
    pub object_id: String,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
}

/// One ref of a repository.
#[derive(Debug, Clone)]
pub struct RefEntry {
    /// Full ref name, e.g. `refs/heads/main`.
    pub name: String,
    /// The commit it points to.
    pub commit: String,
}

/// A listed repository with the head commit of `main` and its date (ms since the epoch).
pub type ListedRepo = (Repo, Option<(String, i64)>);

/// Which repositories a listing returns, before tag filters and sorting.
#[derive(Debug, Clone, Default)]
pub struct RepoFilter {
    /// Substrings that must all occur in `namespace/name` (case-insensitive).
    pub search: Vec<String>,
    /// Namespace that must match exactly.
    pub author: Option<String>,
    /// The caller's user name: their private repositories are listed too.
    pub viewer: Option<String>,
}

const REPO_COLUMNS: &str = "id, type, namespace, name, private, object_id, created_at";

fn repo_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Repo> {
    let kind: String = row.get(1)?;
    Ok(Repo {
        id: row.get(0)?,
        repo_type: RepoType::from_singular(&kind).unwrap_or(RepoType::Model),
        repo_id: RepoId {
            namespace: row.get(2)?,
            name: row.get(3)?,
        },
        private: row.get::<_, i64>(4)? != 0,
        object_id: row.get(5)?,
        created_at: row.get(6)?,
    })
}

/// The `.gitattributes` of a new repository: the Hub's default LFS patterns.
pub const DEFAULT_GITATTRIBUTES: &str = "*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.ftz filter=lfs diff=lfs merge=lfs -text
*.gguf filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.joblib filter=lfs diff=lfs merge=lfs -text
*.lfs.* filter=lfs diff=lfs merge=lfs -text
*.mlmodel filter=lfs diff=lfs merge=lfs -text
*.model filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.ot filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pb filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.rar filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
saved_model/**/* filter=lfs diff=lfs merge=lfs -text
*.tar.* filter=lfs diff=lfs merge=lfs -text
*.tar filter=lfs diff=lfs merge=lfs -text
*.tflite filter=lfs diff=lfs merge=lfs -text
*.tgz filter=lfs diff=lfs merge=lfs -text
*.wasm filter=lfs diff=lfs merge=lfs -text
*.xz filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
";

impl Db {
    /// Creates a repository with branch `main` holding an initial commit that adds the default
    /// `.gitattributes` (whose blob the caller must have stored). `None` if it already exists.
    pub fn create_repo(
        &self,
        repo_type: RepoType,
        repo_id: &RepoId,
        private: bool,
        author: &str,
        gitattributes: &FileEntry,
    ) -> Result<Option<Repo>> {
        self.write(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let exists = tx
                .query_row(
                    "SELECT 1 FROM repos WHERE type = ?1 AND namespace = ?2 AND name = ?3",
                    params![repo_type.singular(), repo_id.namespace, repo_id.name],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if exists {
                return Ok(None);
            }
            let now = now_millis();
            let object_id = crate::hashing::hex(&rand::random::<[u8; 12]>());
            tx.execute(
                "INSERT INTO repos (type, namespace, name, private, object_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    repo_type.singular(),
                    repo_id.namespace,
                    repo_id.name,
                    private as i64,
                    object_id,
                    now
                ],
            )?;
            let id = tx.last_insert_rowid();
            let commit = new_commit_id(None, &repo_id.to_string(), "initial commit", now);
            tx.execute(
                "INSERT INTO commits (id, repo_id, parent, title, message, author, created_at) \
                 VALUES (?1, ?2, NULL, 'initial commit', '', ?3, ?4)",
                params![commit, id, author, now],
            )?;
            tx.execute(
                "INSERT INTO files (commit_id, path, size, sha256, git_oid, lfs) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                params![
                    commit,
                    gitattributes.path,
                    gitattributes.size as i64,
                    gitattributes.sha256,
                    gitattributes.git_oid
                ],
            )?;
            tx.execute(
                "INSERT INTO refs (repo_id, name, commit_id) VALUES (?1, 'refs/heads/main', ?2)",
                params![id, commit],
            )?;
            tx.commit()?;
            Ok(Some(Repo {
                id,
                repo_type,
                repo_id: repo_id.clone(),
                private,
                object_id,
                created_at: now,
            }))
        })
    }

    /// Looks a repository up.
    pub fn repo(&self, repo_type: RepoType, repo_id: &RepoId) -> Result<Option<Repo>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {REPO_COLUMNS} FROM repos WHERE type = ?1 AND namespace = ?2 AND name = ?3"
                    ),
                    params![repo_type.singular(), repo_id.namespace, repo_id.name],
                    repo_from_row,
                )
                .optional()?)
        })
    }

    /// Deletes a repository with its commits and refs (blobs stay: they are shared by content).
    pub fn delete_repo(&self, repo: &Repo) -> Result<()> {
        self.write(|conn| {
            conn.execute("DELETE FROM repos WHERE id = ?1", [repo.id])?;
            Ok(())
        })
    }

    /// Makes a repository private or public.
    pub fn set_private(&self, repo: &Repo, private: bool) -> Result<()> {
        self.write(|conn| {
            conn.execute(
                "UPDATE repos SET private = ?1 WHERE id = ?2",
                params![private as i64, repo.id],
            )?;
            Ok(())
        })
    }

    /// Resolves a revision to a commit: a full commit id of this repository, then a branch, then a
    /// tag, then a literal `refs/...` name.
    pub fn resolve_revision(&self, repo: &Repo, revision: &str) -> Result<Option<String>> {
        self.read(|conn| {
            if is_commit_id(revision) {
                let found = conn
                    .query_row(
                        "SELECT id FROM commits WHERE id = ?1 AND repo_id = ?2",
                        params![revision, repo.id],
                        |r| r.get::<_, String>(0),
                    )
                    .optional()?;
                if found.is_some() {
                    return Ok(found);
                }
            }
            let mut candidates = vec![
                format!("refs/heads/{revision}"),
                format!("refs/tags/{revision}"),
            ];
            if revision.starts_with("refs/") {
                candidates.push(revision.to_string());
            }
            for name in candidates {
                let found = conn
                    .query_row(
                        "SELECT commit_id FROM refs WHERE repo_id = ?1 AND name = ?2",
                        params![repo.id, name],
                        |r| r.get::<_, String>(0),
                    )
                    .optional()?;
                if found.is_some() {
                    return Ok(found);
                }
            }
            Ok(None)
        })
    }

    /// All refs of a repository, sorted by name.
    pub fn refs(&self, repo: &Repo) -> Result<Vec<RefEntry>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare("SELECT name, commit_id FROM refs WHERE repo_id = ?1 ORDER BY name")?;
            let rows = stmt.query_map([repo.id], |r| {
                Ok(RefEntry {
                    name: r.get(0)?,
                    commit: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Creates a ref pointing at a commit. `false` if the ref already exists.
    pub fn create_ref(&self, repo: &Repo, name: &str, commit: &str) -> Result<bool> {
        self.write(|conn| {
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO refs (repo_id, name, commit_id) VALUES (?1, ?2, ?3)",
                params![repo.id, name, commit],
            )?;
            Ok(inserted == 1)
        })
    }

    /// Opens a pull request ref `refs/pr/<n>` at a commit, with the next free number.
    pub fn create_pr_ref(&self, repo: &Repo, commit: &str) -> Result<u64> {
        self.write(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let names: Vec<String> = {
                let mut stmt = tx.prepare(
                    "SELECT name FROM refs WHERE repo_id = ?1 AND name LIKE 'refs/pr/%'",
                )?;
                let rows = stmt.query_map([repo.id], |r| r.get::<_, String>(0))?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let next = names
                .iter()
                .filter_map(|n| n.strip_prefix("refs/pr/")?.parse::<u64>().ok())
                .max()
                .unwrap_or(0)
                + 1;
            tx.execute(
                "INSERT INTO refs (repo_id, name, commit_id) VALUES (?1, ?2, ?3)",
                params![repo.id, format!("refs/pr/{next}"), commit],
            )?;
            tx.commit()?;
            Ok(next)
        })
    }

    /// Deletes a ref. `false` if it did not exist.
    pub fn delete_ref(&self, repo: &Repo, name: &str) -> Result<bool> {
        self.write(|conn| {
            Ok(conn.execute(
                "DELETE FROM refs WHERE repo_id = ?1 AND name = ?2",
                params![repo.id, name],
            )? == 1)
        })
    }

    /// Repositories of a type matching a filter, with the head commit of `main` and its date.
    pub fn list_repos(&self, repo_type: RepoType, filter: &RepoFilter) -> Result<Vec<ListedRepo>> {
        self.read(|conn| {
            let mut sql = String::from(
                "SELECT r.id, r.type, r.namespace, r.name, r.private, r.object_id, r.created_at, \
                 c.id, c.created_at FROM repos r \
                 LEFT JOIN refs f ON f.repo_id = r.id AND f.name = 'refs/heads/main' \
                 LEFT JOIN commits c ON c.id = f.commit_id \
                 WHERE r.type = ?1 AND (r.private = 0 OR r.namespace = ?2)",
            );
            let mut args: Vec<String> = vec![
                repo_type.singular().to_string(),
                filter.viewer.clone().unwrap_or_default(),
            ];
            if let Some(author) = &filter.author {
                args.push(author.clone());
                sql.push_str(&format!(" AND r.namespace = ?{}", args.len()));
            }
            for term in &filter.search {
                args.push(format!("%{}%", escape_like(term)));
                sql.push_str(&format!(
                    " AND (r.namespace || '/' || r.name) LIKE ?{} ESCAPE '\\'",
                    args.len()
                ));
            }
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |row| {
                let repo = repo_from_row(row)?;
                let head: Option<String> = row.get(7)?;
                let date: Option<i64> = row.get(8)?;
                Ok((repo, head.zip(date)))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Db {
    /// Looks a repository up by row id.
    pub fn repo_by_id(&self, id: i64) -> Result<Option<Repo>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {REPO_COLUMNS} FROM repos WHERE id = ?1"),
                    [id],
                    repo_from_row,
                )
                .optional()?)
        })
    }
}
