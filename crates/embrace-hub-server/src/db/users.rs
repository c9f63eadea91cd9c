//! Users and access tokens.

use rusqlite::OptionalExtension;

use super::Db;
use crate::error::{Error, Result};
use crate::hashing::sha256_hex;
use crate::ids::now_millis;

/// A hub user. Each user owns the namespace of the same name.
#[derive(Debug, Clone)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Login name (the namespace).
    pub name: String,
    /// Display name.
    pub fullname: String,
    /// Contact address, if given.
    pub email: Option<String>,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
}

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read public repositories and the user's own private ones.
    Read,
    /// Also create, commit to, configure and delete the user's repositories.
    Write,
}

impl Role {
    /// Parses `read` or `write`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            other => Err(Error::Invalid(format!(
                "unknown token role '{other}': use read or write"
            ))),
        }
    }

    /// `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// A valid token and the user it belongs to.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// The token's owner.
    pub user: User,
    /// The token's role.
    pub role: Role,
    /// The token's display name.
    pub name: String,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        name: row.get(1)?,
        fullname: row.get(2)?,
        email: row.get(3)?,
        created_at: row.get(4)?,
    })
}

impl Db {
    /// Adds a user; the name must be a valid, unused namespace.
    pub fn add_user(
        &self,
        name: &str,
        fullname: Option<&str>,
        email: Option<&str>,
    ) -> Result<User> {
        crate::ids::RepoId::new(name, "x").map_err(|e| Error::Invalid(e.message))?;
        self.write(|conn| {
            let exists: bool = conn
                .query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(()))
                .optional()?
                .is_some();
            if exists {
                return Err(Error::Invalid(format!("user '{name}' already exists")));
            }
            let now = now_millis();
            conn.execute(
                "INSERT INTO users (name, fullname, email, created_at) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![name, fullname.unwrap_or(name), email, now],
            )?;
            Ok(User {
                id: conn.last_insert_rowid(),
                name: name.to_string(),
                fullname: fullname.unwrap_or(name).to_string(),
                email: email.map(str::to_string),
                created_at: now,
            })
        })
    }

    /// Looks a user up by name.
    pub fn user(&self, name: &str) -> Result<Option<User>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT id, name, fullname, email, created_at FROM users WHERE name = ?1",
                    [name],
                    user_from_row,
                )
                .optional()?)
        })
    }

    /// Creates a token for a user and returns it in plain text (the only time it is visible).
    pub fn create_token(&self, user: &str, role: Role, name: &str) -> Result<String> {
        let owner = self
            .user(user)?
            .ok_or_else(|| Error::Invalid(format!("no user named '{user}'")))?;
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let token: String = std::iter::once("hf_".to_string())
            .chain((0..34).map(|_| {
                let i = rand::random_range(0..ALPHABET.len());
                (ALPHABET[i] as char).to_string()
            }))
            .collect();
        self.write(|conn| {
            conn.execute(
                "INSERT INTO tokens (user_id, name, role, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![owner.id, name, role.as_str(), sha256_hex(token.as_bytes()), now_millis()],
            )?;
            Ok(())
        })?;
        Ok(token)
    }

    /// Resolves a bearer token; `None` if it is unknown.
    pub fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>> {
        let hash = sha256_hex(token.as_bytes());
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT u.id, u.name, u.fullname, u.email, u.created_at, t.role, t.name, t.created_at \
                     FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
                    [hash],
                    |row| {
                        let role: String = row.get(5)?;
                        Ok(TokenInfo {
                            user: user_from_row(row)?,
                            role: if role == "write" { Role::Write } else { Role::Read },
                            name: row.get(6)?,
                            created_at: row.get(7)?,
                        })
                    },
                )
                .optional()?)
        })
    }
}
