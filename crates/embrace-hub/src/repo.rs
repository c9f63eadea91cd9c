//! Repository ids (`namespace/name` or `name`) and types, as the Hub and its cache name them.

use std::fmt;

/// The kind of repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepoType {
    /// A model repository (the default).
    Model,
    /// A dataset repository.
    Dataset,
    /// A Space.
    Space,
}

impl RepoType {
    /// The plural used in cache folder names and API routes (`models`, `datasets`, `spaces`).
    pub fn plural(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
            RepoType::Space => "spaces",
        }
    }
}

/// A repo id that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid repo id {id:?}: {reason}")]
pub struct RepoIdError {
    /// The id as given.
    pub id: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A validated repository id with its type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoId {
    repo_type: RepoType,
    id: String,
}

impl RepoId {
    /// Parses `name` or `namespace/name` with the Hub's rules: letters, digits, `-`, `_`, `.`;
    /// at most 96 chars a part; no `--` or `..`; no leading or trailing `-` or `.`.
    pub fn new(repo_type: RepoType, id: &str) -> Result<Self, RepoIdError> {
        let err = |reason| RepoIdError {
            id: id.to_owned(),
            reason,
        };
        let parts: Vec<&str> = id.split('/').collect();
        if parts.is_empty() || parts.len() > 2 {
            return Err(err("expected `name` or `namespace/name`"));
        }
        for part in &parts {
            if part.is_empty() || part.len() > 96 {
                return Err(err("each part must have 1 to 96 characters"));
            }
            if !part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(err("only letters, digits, `-`, `_` and `.` are allowed"));
            }
            if part.contains("--") || part.contains("..") {
                return Err(err("`--` and `..` are not allowed"));
            }
            if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
                return Err(err("a part cannot start or end with `-` or `.`"));
            }
        }
        Ok(RepoId {
            repo_type,
            id: id.to_owned(),
        })
    }

    /// A model repo id.
    pub fn model(id: &str) -> Result<Self, RepoIdError> {
        RepoId::new(RepoType::Model, id)
    }

    /// The repo type.
    pub fn repo_type(&self) -> RepoType {
        self.repo_type
    }

    /// The id, e.g. `sentence-transformers/all-MiniLM-L6-v2`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The cache folder name: `models--namespace--name`.
    pub fn cache_folder(&self) -> String {
        format!(
            "{}--{}",
            self.repo_type.plural(),
            self.id.replace('/', "--")
        )
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_and_cache_folders() {
        let r = RepoId::model("sentence-transformers/all-MiniLM-L6-v2").unwrap();
        assert_eq!(
            r.cache_folder(),
            "models--sentence-transformers--all-MiniLM-L6-v2"
        );
        let d = RepoId::new(RepoType::Dataset, "squad").unwrap();
        assert_eq!(d.cache_folder(), "datasets--squad");
    }

    #[test]
    fn invalid_ids_are_rejected() {
        for bad in [
            "",
            "a/b/c",
            "a--b",
            "../etc",
            "a/..",
            "-a",
            "a b",
            "a/",
            "x".repeat(97).as_str(),
        ] {
            assert!(RepoId::model(bad).is_err(), "{bad:?} accepted");
        }
    }
}
