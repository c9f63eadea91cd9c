//! Names the Hub API is built on: repository types, repository ids, file paths inside a
//! repository, commit ids and timestamps.
//!
//! Invariant: every value of [`RepoId`] and every path returned by [`validate_repo_path`] is safe to
//! use as a key and to print in a URL or an HTML page after escaping; none can climb out of a
//! repository (`..`), name git internals (`.git`) or smuggle control characters.

use crate::error::ApiError;

/// The three kinds of repository the Hub hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepoType {
    /// A model repository (the default; no URL prefix).
    Model,
    /// A dataset repository (`datasets/` prefix).
    Dataset,
    /// A Space repository (`spaces/` prefix). Stored and served like the others; nothing runs.
    Space,
}

impl RepoType {
    /// Parses the singular form used in request bodies (`model`, `dataset`, `space`).
    pub fn from_singular(s: &str) -> Option<Self> {
        match s {
            "model" => Some(Self::Model),
            "dataset" => Some(Self::Dataset),
            "space" => Some(Self::Space),
            _ => None,
        }
    }

    /// Parses the plural form used in `/api/{type}s/...` routes and URL prefixes.
    pub fn from_plural(s: &str) -> Option<Self> {
        match s {
            "models" => Some(Self::Model),
            "datasets" => Some(Self::Dataset),
            "spaces" => Some(Self::Space),
            _ => None,
        }
    }

    /// `model`, `dataset` or `space`.
    pub fn singular(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Dataset => "dataset",
            Self::Space => "space",
        }
    }

    /// `models`, `datasets` or `spaces`.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Model => "models",
            Self::Dataset => "datasets",
            Self::Space => "spaces",
        }
    }

    /// The prefix of non-API URLs: empty for models, `datasets/` or `spaces/` otherwise.
    pub fn url_prefix(self) -> &'static str {
        match self {
            Self::Model => "",
            Self::Dataset => "datasets/",
            Self::Space => "spaces/",
        }
    }
}

/// Namespaces that would make URLs ambiguous (`/datasets/...`, `/api/...`).
const RESERVED_NAMESPACES: &[&str] = &[
    "api",
    "datasets",
    "spaces",
    "models",
    "kernels",
    "buckets",
    "organizations",
    "settings",
    "static",
    "new",
];

/// A validated `namespace/name` repository id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoId {
    /// The owner: a user name.
    pub namespace: String,
    /// The repository name.
    pub name: String,
}

impl RepoId {
    /// Validates both parts of a repository id the way the Hub does: 1 to 96 characters of
    /// `[A-Za-z0-9._-]`, starting with a letter or digit, no `--` or `..`, no `.git` suffix, and
    /// a namespace that is not a reserved URL word.
    pub fn new(namespace: &str, name: &str) -> Result<Self, ApiError> {
        validate_name_part(namespace, "namespace")?;
        validate_name_part(name, "name")?;
        if RESERVED_NAMESPACES.contains(&namespace.to_ascii_lowercase().as_str()) {
            return Err(ApiError::bad_request(format!(
                "'{namespace}' is a reserved name and cannot be used as a namespace"
            )));
        }
        Ok(Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// Parses `namespace/name`.
    pub fn parse(id: &str) -> Result<Self, ApiError> {
        match id.split_once('/') {
            Some((ns, name)) => Self::new(ns, name),
            None => Err(ApiError::bad_request(format!(
                "repository id '{}' must have the form namespace/name",
                printable(id)
            ))),
        }
    }
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

fn validate_name_part(part: &str, what: &str) -> Result<(), ApiError> {
    let ok_chars = part
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let first_ok = part
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if part.is_empty()
        || part.len() > 96
        || !ok_chars
        || !first_ok
        || part.contains("--")
        || part.contains("..")
        || part.ends_with(".git")
        || part.ends_with('.')
        || part.ends_with('-')
    {
        return Err(ApiError::bad_request(format!(
            "invalid repository {what} '{}': use 1-96 characters of letters, digits, '.', '_' and '-', \
             starting with a letter or digit, without '--' or '..'",
            printable(part)
        )));
    }
    Ok(())
}

/// Validates a file path inside a repository: relative, `/`-separated, no empty, `.` or `..`
/// components, no `.git` component, no control characters or backslashes, at most 1024 bytes.
pub fn validate_repo_path(path: &str) -> Result<&str, ApiError> {
    let bad = |why: &str| {
        Err(ApiError::bad_request(format!(
            "invalid path in repository '{}': {why}",
            printable(path)
        )))
    };
    if path.is_empty() {
        return bad("the path is empty");
    }
    if path.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return bad("absolute paths are not allowed");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return bad("control characters and backslashes are not allowed");
    }
    for component in path.split('/') {
        match component {
            "" => return bad("empty path component"),
            "." | ".." => return bad("'.' and '..' components are not allowed"),
            ".git" => return bad("'.git' is reserved"),
            _ => {}
        }
    }
    Ok(path)
}

/// True for a full commit id: exactly 40 lowercase hexadecimal characters.
pub fn is_commit_id(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True for a lowercase hex string of the given length range.
pub fn is_hex(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Branch and tag names: git ref rules, simplified (no `..`, no control characters, no spaces,
/// no `~^:?*[\`, no leading or trailing `/` or `.`, no `//`, not ending in `.lock`).
pub fn validate_ref_name(name: &str) -> Result<&str, ApiError> {
    let invalid = name.is_empty()
        || name.len() > 200
        || name.contains("..")
        || name.contains("//")
        || name.contains("@{")
        || name.starts_with(['/', '.', '-'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if invalid {
        return Err(ApiError::bad_request(format!(
            "invalid branch or tag name '{}'",
            printable(name)
        )));
    }
    Ok(name)
}

/// Makes untrusted text safe to put in a single-line ASCII message (headers, logs).
pub fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.chars().count() > 200 {
        out.push_str("...");
    }
    out
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats milliseconds since the epoch as the Hub does: `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn iso8601(unix_millis: i64) -> String {
    let secs = unix_millis.div_euclid(1000);
    let millis = unix_millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn repo_ids_follow_hub_rules() {
        assert!(RepoId::parse("acme/tiny-bert").is_ok());
        assert!(RepoId::parse("acme/Tiny_BERT.v2").is_ok());
        for bad in [
            "tiny",
            "a/b/c",
            "acme/../x",
            "acme/x--y",
            "api/x",
            "datasets/x",
            "acme/.hidden",
            "acme/x.git",
            "ac me/x",
            "acme/",
            "/x",
            "acme/x\n",
        ] {
            assert!(RepoId::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn paths_cannot_escape() {
        assert!(validate_repo_path("sub/dir/file.txt").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "../x",
            "a//b",
            "./a",
            ".git/config",
            "a\\b",
            "a\0b",
        ] {
            assert!(validate_repo_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn dates_use_millis_and_z() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_708_341_972_123), "2024-02-19T11:26:12.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn commit_ids_are_40_lower_hex() {
        assert!(is_commit_id("2439f60ef33a0d46d85da5001d52aeda5b00ce9f"));
        assert!(!is_commit_id("2439F60EF33A0D46D85DA5001D52AEDA5B00CE9F"));
        assert!(!is_commit_id("main"));
    }
}
