//! Dataset repositories on a hub: `load_dataset("org/name")` and `push_to_hub`, with the file
//! layout and split rules of Hugging Face `datasets`.
//!
//! Loading reads the dataset card's `configs` (the default config's `data_files`, per split, with
//! globs) when there is one, and otherwise assigns data files to splits by the keywords
//! `datasets` looks for in file and folder names (`train`/`training`, `validation`/`valid`/
//! `val`/`dev`, `test`/`testing`/`eval`/`evaluation`); files without a keyword form `train`.
//! Pushing writes one Parquet file per split as `data/<split>-00000-of-00001.parquet` (features
//! in the Parquet metadata, as `datasets` writes them) and a card whose `configs` names them.

use std::path::Path;

use embrace_hub::{
    CommitInfo, DownloadOptions, HubClient, RepoId, RepoType, UploadOptions, fnmatch,
};
use serde_json::Value;

use crate::dataset::{Dataset, DatasetDict};
use crate::error::{DatasetError, Result};

const DATA_EXTENSIONS: &[&str] = &[
    "parquet", "csv", "tsv", "json", "jsonl", "ndjson", "txt", "arrow",
];
const SPLIT_KEYWORDS: &[(&str, &[&str])] = &[
    ("train", &["train", "training"]),
    ("validation", &["validation", "valid", "val", "dev"]),
    ("test", &["test", "testing", "eval", "evaluation"]),
];

fn is_data_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    !name.starts_with('.')
        && !path.split('/').any(|c| c.starts_with('.'))
        && name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| DATA_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// The split a file name implies, by `datasets`' keywords (delimited by `-._ `, digits or `/`).
fn split_of(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    let stem = lower.rsplit_once('.').map_or(lower.as_str(), |(s, _)| s);
    let tokens: Vec<&str> = stem
        .split(|c: char| matches!(c, '-' | '.' | '_' | ' ' | '/') || c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .collect();
    SPLIT_KEYWORDS
        .iter()
        .find(|(_, words)| tokens.iter().any(|t| words.contains(t)))
        .map(|(split, _)| *split)
}

/// The `configs` entry to use: the one marked `default`, else `config_name: default`, else the
/// first.
fn default_config(card: &Value) -> Option<&Value> {
    let configs = card.get("configs")?.as_array()?;
    configs
        .iter()
        .find(|c| c["default"].as_bool() == Some(true))
        .or_else(|| configs.iter().find(|c| c["config_name"] == "default"))
        .or_else(|| configs.first())
}

fn as_patterns(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Split name → data files, from the card's `configs` or the naming rules.
fn resolve_splits(files: &[String], card: Option<&Value>) -> Result<Vec<(String, Vec<String>)>> {
    let matching = |patterns: &[String], base: &str| -> Vec<String> {
        let mut out: Vec<String> = files
            .iter()
            .filter(|f| {
                patterns.iter().any(|p| {
                    let p = if base.is_empty() {
                        p.clone()
                    } else {
                        format!("{base}/{p}")
                    };
                    f.as_str() == p || fnmatch(&p, f)
                })
            })
            .cloned()
            .collect();
        out.sort();
        out
    };
    if let Some(config) = card.and_then(default_config) {
        let base = config["data_dir"]
            .as_str()
            .unwrap_or("")
            .trim_matches('/')
            .to_string();
        let data_files = &config["data_files"];
        let mut splits = Vec::new();
        match data_files {
            Value::Array(entries) if entries.iter().all(Value::is_object) => {
                for entry in entries {
                    let split = entry["split"].as_str().unwrap_or("train").to_string();
                    splits.push((split, matching(&as_patterns(&entry["path"]), &base)));
                }
            }
            Value::Null if !base.is_empty() => {
                let under: Vec<String> = files
                    .iter()
                    .filter(|f| f.starts_with(&format!("{base}/")) && is_data_file(f))
                    .cloned()
                    .collect();
                return resolve_splits(&under, None);
            }
            Value::Null => {}
            other => splits.push(("train".to_string(), matching(&as_patterns(other), &base))),
        }
        if !splits.is_empty() {
            for (split, matched) in &splits {
                if matched.is_empty() {
                    return Err(DatasetError::Metadata(format!(
                        "the dataset card's configs name no existing file for split {split:?}"
                    )));
                }
            }
            return Ok(splits);
        }
    }
    let data: Vec<&String> = files.iter().filter(|f| is_data_file(f)).collect();
    let mut splits: Vec<(String, Vec<String>)> = Vec::new();
    for (split, _) in SPLIT_KEYWORDS {
        let matched: Vec<String> = data
            .iter()
            .filter(|f| split_of(f) == Some(*split))
            .map(|f| (*f).clone())
            .collect();
        if !matched.is_empty() {
            splits.push((split.to_string(), matched));
        }
    }
    if splits.is_empty() && !data.is_empty() {
        splits.push(("train".to_string(), data.into_iter().cloned().collect()));
    }
    Ok(splits)
}

fn read_card(snapshot: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(snapshot.join("README.md")).ok()?;
    let rest = text.trim_start().strip_prefix("---")?;
    let end = rest.find("\n---")?;
    serde_yaml::from_str::<Value>(&rest[..end]).ok()
}

/// Loads a dataset repository (`org/name`) at a revision as a [`DatasetDict`], downloading its
/// data files into the shared cache (`datasets.load_dataset(repo)` on a repository without a
/// loading script).
pub fn load_hub_dataset(client: &HubClient, repo: &str, revision: &str) -> Result<DatasetDict> {
    let repo_id =
        RepoId::new(RepoType::Dataset, repo).map_err(|e| DatasetError::Argument(e.to_string()))?;
    let options = DownloadOptions {
        revision: revision.to_string(),
        ..DownloadOptions::default()
    };
    let snapshot = client.snapshot_download(&repo_id, &options)?;
    let files: Vec<String> = embrace_hub::walk(&snapshot)
        .map_err(DatasetError::io(&snapshot))?
        .into_iter()
        .map(|(rel, _)| rel)
        .collect();
    let card = read_card(&snapshot);
    let splits = resolve_splits(&files, card.as_ref())?;
    if splits.is_empty() {
        return Err(DatasetError::Argument(format!(
            "{repo} has no data files ({} are read)",
            DATA_EXTENSIONS.join(", ")
        )));
    }
    let mut out = Vec::new();
    for (split, paths) in splits {
        let parts: Vec<Dataset> = paths
            .iter()
            .map(|p| crate::io::load_file(&snapshot.join(p)))
            .collect::<Result<_>>()?;
        let refs: Vec<&Dataset> = parts.iter().collect();
        let dataset = if refs.len() == 1 {
            parts[0].clone()
        } else {
            Dataset::concatenate(&refs)?
        };
        out.push((split, dataset));
    }
    Ok(DatasetDict(out))
}

/// Pushes splits to a dataset repository (created if missing) in one commit: Parquet files
/// under `data/` and a card whose `configs` maps each split to its file.
pub fn push_to_hub(
    dict: &DatasetDict,
    client: &HubClient,
    repo: &str,
    private: bool,
) -> Result<CommitInfo> {
    let repo_id =
        RepoId::new(RepoType::Dataset, repo).map_err(|e| DatasetError::Argument(e.to_string()))?;
    if dict.0.is_empty() {
        return Err(DatasetError::Argument("nothing to push: no splits".into()));
    }
    let staging =
        std::env::temp_dir().join(format!("embrace-push-{}-{}", std::process::id(), unique()));
    let result = (|| {
        let data = staging.join("data");
        std::fs::create_dir_all(&data).map_err(DatasetError::io(&data))?;
        let mut data_files = String::new();
        let mut split_info = String::new();
        for (split, dataset) in &dict.0 {
            if split.is_empty() || !split.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(DatasetError::Argument(format!(
                    "invalid split name {split:?}"
                )));
            }
            dataset.to_parquet(&data.join(format!("{split}-00000-of-00001.parquet")))?;
            data_files.push_str(&format!("  - split: {split}\n    path: data/{split}-*\n"));
            split_info.push_str(&format!(
                "  - name: {split}\n    num_examples: {}\n",
                dataset.num_rows()
            ));
        }
        let card = format!(
            "---\nconfigs:\n- config_name: default\n  data_files:\n{data_files}dataset_info:\n  splits:\n{split_info}---\n\n\
             # {repo}\n\nPushed with Embrace. Load it with `datasets.load_dataset(\"{repo}\")` or \
             `embrace datasets head hf://datasets/{repo}`.\n"
        );
        std::fs::write(staging.join("README.md"), card).map_err(DatasetError::io(&staging))?;
        client.create_repo(&repo_id, private, true)?;
        let options = UploadOptions {
            commit_message: "Upload dataset".into(),
            ..UploadOptions::default()
        };
        Ok(client.upload_folder(&repo_id, &staging, &options)?)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Parses `hf://datasets/org/name[@revision]` into (repo, revision).
pub fn parse_hub_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("hf://datasets/")?;
    let (repo, revision) = rest.split_once('@').unwrap_or((rest, "main"));
    Some((repo.trim_end_matches('/').to_string(), revision.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splits_from_file_names_like_datasets() {
        let files = names(&[
            "README.md",
            ".gitattributes",
            "data/train-00000-of-00001.parquet",
            "data/test-00000-of-00001.parquet",
            "data/validation-00000-of-00001.parquet",
        ]);
        let s = resolve_splits(&files, None).unwrap();
        assert_eq!(
            s.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            vec!["train", "validation", "test"]
        );
        let s = resolve_splits(&names(&["train.csv", "dev.csv", "eval.csv"]), None).unwrap();
        assert_eq!(s[1], ("validation".to_string(), names(&["dev.csv"])));
        assert_eq!(s[2], ("test".to_string(), names(&["eval.csv"])));
        let s = resolve_splits(&names(&["tweets.csv", "more.jsonl"]), None).unwrap();
        assert_eq!(
            s,
            vec![("train".to_string(), names(&["tweets.csv", "more.jsonl"]))]
        );
        assert_eq!(
            split_of("latest.csv"),
            None,
            "a keyword must be a whole token"
        );
    }

    #[test]
    fn splits_from_card_configs() {
        let card: Value = serde_yaml::from_str(
            "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: custom/a*.csv\n  - split: test\n    path: [custom/b.csv]\n",
        )
        .unwrap();
        let files = names(&[
            "custom/a1.csv",
            "custom/a2.csv",
            "custom/b.csv",
            "train.csv",
        ]);
        let s = resolve_splits(&files, Some(&card)).unwrap();
        assert_eq!(
            s[0],
            (
                "train".to_string(),
                names(&["custom/a1.csv", "custom/a2.csv"])
            )
        );
        assert_eq!(s[1], ("test".to_string(), names(&["custom/b.csv"])));
        let bad: Value =
            serde_yaml::from_str("configs:\n- config_name: default\n  data_files: nope/*.csv\n")
                .unwrap();
        assert!(resolve_splits(&files, Some(&bad)).is_err());
    }

    #[test]
    fn hub_uris() {
        assert_eq!(
            parse_hub_uri("hf://datasets/org/ds@v1"),
            Some(("org/ds".into(), "v1".into()))
        );
        assert_eq!(
            parse_hub_uri("hf://datasets/org/ds"),
            Some(("org/ds".into(), "main".into()))
        );
        assert_eq!(parse_hub_uri("data/local"), None);
    }
}
