//! The glob patterns of `.gitattributes` and `.gitignore`, as git matches them (the common
//! subset: `*`, `**`, `?`, `[...]`, anchored patterns with a `/`, folder patterns ending in `/`;
//! negation `!` in `.gitignore`).

/// Whether `pattern` matches the repository path `path` under git's rules: a pattern without a
/// slash (other than a trailing one) matches the base name at any depth; otherwise it matches the
/// whole path from the root.
pub fn git_pattern_matches(pattern: &str, path: &str) -> bool {
    let (pattern, dir_only) = match pattern.strip_suffix('/') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    if pattern.is_empty() {
        return false;
    }
    let anchored = pattern.contains('/');
    let pattern = pattern.trim_start_matches('/');
    if dir_only {
        // A folder pattern matches every path below a matching folder.
        let components: Vec<&str> = path.split('/').collect();
        for end in 1..components.len() {
            let folder = components[..end].join("/");
            let target = if anchored {
                folder.as_str()
            } else {
                components[end - 1]
            };
            if glob_match(pattern.as_bytes(), target.as_bytes()) {
                return true;
            }
        }
        return false;
    }
    if anchored {
        glob_match(pattern.as_bytes(), path.as_bytes())
    } else {
        let base = path.rsplit('/').next().unwrap_or(path);
        glob_match(pattern.as_bytes(), base.as_bytes())
    }
}

/// Matches with `*` (no `/`), `**` (anything), `?` and `[...]` classes.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') => {
            if pattern.get(1) == Some(&b'*') {
                let mut rest = &pattern[2..];
                if rest.first() == Some(&b'/') {
                    // `**/` also matches zero folders.
                    if glob_match(&rest[1..], text) {
                        return true;
                    }
                    rest = &pattern[2..];
                }
                (0..=text.len()).any(|i| glob_match(rest, &text[i..]))
            } else {
                let rest = &pattern[1..];
                for i in 0..=text.len() {
                    if glob_match(rest, &text[i..]) {
                        return true;
                    }
                    if i < text.len() && text[i] == b'/' {
                        break;
                    }
                }
                false
            }
        }
        Some(b'?') => !text.is_empty() && text[0] != b'/' && glob_match(&pattern[1..], &text[1..]),
        Some(b'[') => {
            let Some(close) = pattern
                .iter()
                .skip(1)
                .position(|&b| b == b']')
                .map(|p| p + 1)
            else {
                return text.first() == Some(&b'[') && glob_match(&pattern[1..], &text[1..]);
            };
            let Some(&c) = text.first() else {
                return false;
            };
            let mut class = &pattern[1..close];
            let negate = matches!(class.first(), Some(b'!' | b'^'));
            if negate {
                class = &class[1..];
            }
            let mut found = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    found |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    found |= class[i] == c;
                    i += 1;
                }
            }
            found != negate && c != b'/' && glob_match(&pattern[close + 1..], &text[1..])
        }
        Some(&p) => text.first() == Some(&p) && glob_match(&pattern[1..], &text[1..]),
    }
}

/// The patterns a `.gitattributes` file routes to LFS (`filter=lfs`).
pub fn lfs_patterns(gitattributes: &str) -> Vec<String> {
    gitattributes
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let pattern = parts.next()?;
            parts
                .any(|attr| attr == "filter=lfs")
                .then(|| pattern.to_string())
        })
        .collect()
}

/// Whether a `.gitignore` file ignores a path (last matching pattern wins; `!` re-includes).
pub fn gitignore_ignores(gitignore: &str, path: &str) -> bool {
    let mut ignored = false;
    for line in gitignore.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (negated, pattern) = match line.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, line),
        };
        if git_pattern_matches(pattern, path) {
            ignored = !negated;
        }
    }
    ignored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitattributes_patterns() {
        assert!(git_pattern_matches("*.bin", "weights.bin"));
        assert!(git_pattern_matches("*.bin", "sub/dir/weights.bin"));
        assert!(!git_pattern_matches("*.bin", "weights.binary"));
        assert!(git_pattern_matches("*.tar.*", "a.tar.gz"));
        assert!(git_pattern_matches(
            "*tfevents*",
            "runs/events.out.tfevents.1"
        ));
        assert!(git_pattern_matches(
            "saved_model/**/*",
            "saved_model/x/y.pb"
        ));
        assert!(git_pattern_matches("/top.txt", "top.txt"));
        assert!(!git_pattern_matches("/top.txt", "a/top.txt"));
        assert!(git_pattern_matches("data/*.csv", "data/a.csv"));
        assert!(!git_pattern_matches("data/*.csv", "data/x/a.csv"));
        assert!(git_pattern_matches("file[0-9].txt", "file7.txt"));
    }

    #[test]
    fn lfs_patterns_are_read() {
        let attrs = "*.bin filter=lfs diff=lfs merge=lfs -text\n# comment\n*.txt text\n";
        assert_eq!(lfs_patterns(attrs), vec!["*.bin"]);
    }

    #[test]
    fn gitignore_with_negation_and_folders() {
        let ignore = "*.log\n!keep.log\nlogs/\n";
        assert!(gitignore_ignores(ignore, "a.log"));
        assert!(!gitignore_ignores(ignore, "keep.log"));
        assert!(gitignore_ignores(ignore, "logs/x.txt"));
        assert!(!gitignore_ignores(ignore, "src/main.rs"));
    }
}
