//! The hashes the Hub identifies files by.
//!
//! A regular file is named by its git blob id, `sha1("blob <len>\0" + bytes)`; an LFS file by the
//! SHA-256 of its content, and its git blob id is the id of its LFS pointer text. Clients name
//! cache blobs after these values, so they must be the real hashes.

use sha1::{Digest, Sha1};
use sha2::Sha256;

/// Lowercase hexadecimal of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// The git blob id of content.
pub fn git_blob_id(content: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", content.len()).as_bytes());
    hasher.update(content);
    hex(&hasher.finalize())
}

/// The SHA-256 of content, in hex.
pub fn sha256_hex(content: &[u8]) -> String {
    hex(&Sha256::digest(content))
}

/// The git-lfs pointer text that stands for an LFS file in git.
pub fn lfs_pointer(sha256: &str, size: u64) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

/// Streaming SHA-256 with a byte count, for uploads hashed while they arrive.
#[derive(Default)]
pub struct StreamHasher {
    sha256: Sha256,
    len: u64,
}

impl StreamHasher {
    /// Feeds a chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.sha256.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The SHA-256 hex digest and the byte count.
    pub fn finish(self) -> (String, u64) {
        (hex(&self.sha256.finalize()), self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_ids_match_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            git_blob_id(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(git_blob_id(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    }

    #[test]
    fn lfs_pointer_has_git_lfs_shape() {
        let p = lfs_pointer(&"a".repeat(64), 12);
        assert!(p.starts_with("version https://git-lfs.github.com/spec/v1\noid sha256:aaaa"));
        assert!(p.ends_with("size 12\n"));
    }
}
