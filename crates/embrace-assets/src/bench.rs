//! Helpers the side-by-side benchmarks share: the prose corpus they feed both engines, and the
//! worker-process plumbing (each engine runs in its own process, which reports its timings and
//! peak memory as one JSON line).

use std::path::PathBuf;
use std::process::Command;

/// The repository root (benchmarks run from their crate folder).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The English prose lines of the tokenizer goldens (`tests/golden/tokenizers/inputs/prose.jsonl`)
/// with at least four words: the texts every benchmark feeds both sides.
pub fn prose_lines() -> std::io::Result<Vec<String>> {
    let path = repo_root().join("tests/golden/tokenizers/inputs/prose.jsonl");
    let text = std::fs::read_to_string(&path)?;
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["text"].as_str().map(str::to_owned))
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: bad line {l}", path.display()),
                    )
                })
        })
        .filter(|t| {
            t.as_ref()
                .map_or(true, |t| t.split_whitespace().count() >= 4)
        })
        .collect()
}

/// `count` texts of at least `min_chars` characters, each joining consecutive `lines` from a
/// different starting line (wrapping around): long inputs for model benchmarks.
pub fn prose_windows(lines: &[String], count: usize, min_chars: usize) -> Vec<String> {
    if lines.is_empty() {
        return Vec::new();
    }
    (0..count)
        .map(|start| {
            let mut text = String::new();
            let mut i = start;
            while text.len() < min_chars {
                text.push_str(&lines[i % lines.len()]);
                text.push(' ');
                i += 1;
            }
            text
        })
        .collect()
}

/// This process's peak resident memory in KiB (Linux `VmHWM`; 0 where unavailable).
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs a worker process and parses the JSON object on the last line of its output; `None`
/// (with the worker's stderr printed) when it fails.
pub fn run_worker(mut command: Command) -> Option<serde_json::Value> {
    let output = command.output().ok()?;
    if !output.status.success() {
        eprintln!("worker failed: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last()?).ok()
}
