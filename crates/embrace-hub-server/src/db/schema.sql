-- Metadata of the hub. Blob bytes live in the blob store; this database says which blobs make up
-- which commit of which repository, where every ref points, and who may do what.
PRAGMA foreign_keys = ON;

CREATE TABLE IF NOT EXISTS users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    fullname    TEXT NOT NULL,
    email       TEXT,
    created_at  INTEGER NOT NULL
);

-- Tokens are stored as SHA-256 hashes; the plain token is shown once, at creation.
CREATE TABLE IF NOT EXISTS tokens (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('read', 'write')),
    hash        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS repos (
    id          INTEGER PRIMARY KEY,
    type        TEXT NOT NULL,
    namespace   TEXT NOT NULL COLLATE NOCASE,
    name        TEXT NOT NULL COLLATE NOCASE,
    private     INTEGER NOT NULL DEFAULT 0,
    object_id   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (type, namespace, name)
);

-- A commit is immutable: its parent, message and the full file map in `files`.
CREATE TABLE IF NOT EXISTS commits (
    id          TEXT PRIMARY KEY,
    repo_id     INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    parent      TEXT,
    title       TEXT NOT NULL,
    message     TEXT NOT NULL,
    author      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS commits_by_repo ON commits (repo_id);

CREATE TABLE IF NOT EXISTS files (
    commit_id   TEXT NOT NULL REFERENCES commits(id) ON DELETE CASCADE,
    path        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    git_oid     TEXT NOT NULL,
    lfs         INTEGER NOT NULL,
    PRIMARY KEY (commit_id, path)
) WITHOUT ROWID;

-- Full ref names: refs/heads/<branch>, refs/tags/<tag>, refs/pr/<n>, refs/convert/<name>.
CREATE TABLE IF NOT EXISTS refs (
    repo_id     INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    commit_id   TEXT NOT NULL,
    PRIMARY KEY (repo_id, name)
) WITHOUT ROWID;

-- Every blob that was completely stored and verified.
CREATE TABLE IF NOT EXISTS blobs (
    sha256      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL
) WITHOUT ROWID;

-- LFS objects a repository uploaded (or already references): an LFS pointer may only name these,
-- so knowing a hash does not give access to another repository's content.
CREATE TABLE IF NOT EXISTS repo_lfs (
    repo_id     INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    sha256      TEXT NOT NULL,
    PRIMARY KEY (repo_id, sha256)
) WITHOUT ROWID;

-- Derived repository metadata (card data, tags, pipeline tag) per commit, computed on first use.
CREATE TABLE IF NOT EXISTS commit_meta (
    commit_id   TEXT PRIMARY KEY REFERENCES commits(id) ON DELETE CASCADE,
    json        TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
