//! The metadata database (SQLite): users and tokens, repositories, commits with their file maps,
//! refs, stored blobs.
//!
//! Invariants:
//! - A commit row and all its `files` rows are written in one transaction, and the ref moves in
//!   the same transaction, so readers see either the old head or the new one, never a half commit.
//! - Ref updates are compare-and-swap inside an immediate (write-locked) transaction: a commit
//!   that names a parent which is no longer the head fails with [`CommitError::Stale`].
//! - Every `files` row names a blob listed in `blobs` (callers ingest blobs before committing).

mod commits;
mod repos;
mod users;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

pub use commits::{Commit, CommitError, CommitRequest, FileEntry, Op};
pub use repos::{DEFAULT_GITATTRIBUTES, RefEntry, Repo, RepoFilter};
pub use users::{Role, TokenInfo, User};

use crate::error::{Error, Result};

const SCHEMA: &str = include_str!("schema.sql");
const READERS: usize = 4;

/// Handle on the metadata database: one writer connection and a few reader connections (WAL
/// mode lets them read while a write is in progress).
pub struct Db {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl Db {
    /// Opens (creating if needed) `<data_dir>/hub.sqlite` and applies the schema.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("hub.sqlite");
        let writer = Connection::open(&path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.busy_timeout(std::time::Duration::from_secs(30))?;
        writer.execute_batch(SCHEMA)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(std::time::Duration::from_secs(30))?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            readers.push(Mutex::new(conn));
        }
        Ok(Self {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a reader connection.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let conn = self.readers[i]
            .lock()
            .map_err(|_| Error::Invalid("database reader lock poisoned".into()))?;
        f(&conn)
    }

    /// Runs `f` on the writer connection.
    pub fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self
            .writer
            .lock()
            .map_err(|_| Error::Invalid("database writer lock poisoned".into()))?;
        f(&mut conn)
    }

    /// A server-wide secret (for signing upload URLs), created on first use.
    pub fn secret(&self, key: &str) -> Result<String> {
        self.write(|conn| {
            if let Some(value) = conn
                .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?
            {
                return Ok(value);
            }
            let value = crate::hashing::hex(&rand::random::<[u8; 32]>());
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                [key, value.as_str()],
            )?;
            Ok(value)
        })
    }

    /// Records a stored blob.
    pub fn add_blob(&self, sha256: &str, size: u64) -> Result<()> {
        self.write(|conn| {
            conn.execute(
                "INSERT OR IGNORE INTO blobs (sha256, size) VALUES (?1, ?2)",
                rusqlite::params![sha256, size as i64],
            )?;
            Ok(())
        })
    }

    /// The size of a stored blob, if it is stored.
    pub fn blob_size(&self, sha256: &str) -> Result<Option<u64>> {
        self.read(|conn| {
            Ok(conn
                .query_row("SELECT size FROM blobs WHERE sha256 = ?1", [sha256], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?
                .map(|s| s as u64))
        })
    }
}

#[cfg(test)]
mod tests;
