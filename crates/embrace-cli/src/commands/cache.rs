//! `embrace cache`: the Hugging Face cache shared with Python.

use std::path::PathBuf;

use anyhow::{Context, Result};
use embrace_hub::{Cache, HubConfig, RepoId, RepoType};

/// Arguments of `embrace cache` (the cache is `HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`, shared with Python).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CacheCommand {
    /// List cached repos with their revisions, refs and sizes (as `hf cache ls`).
    Ls {
        /// One JSON object per repo instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a revision (its snapshot, refs, and blobs no other revision uses) or a whole repo.
    Rm {
        /// The repo id (org/name).
        repo: String,
        /// A commit or ref to delete; without it the whole repo goes.
        #[arg(long)]
        revision: Option<String>,
        /// model, dataset or space.
        #[arg(long, default_value = "model")]
        repo_type: String,
    },
    /// Recompute every cached blob's hash and report those that do not match (exit 1 if any).
    Verify,
    /// Import a local folder into the cache as a repo at a revision, so that Embrace and Python
    /// (transformers, sentence-transformers, huggingface_hub) load it by repo id, offline.
    ///
    /// Example: embrace cache import sentence-transformers/all-MiniLM-L6-v2 ./all-MiniLM-L6-v2
    Import {
        /// The repo id to import as (org/name).
        repo: String,
        /// The folder with the files.
        folder: PathBuf,
        /// The branch or tag the import becomes.
        #[arg(long, default_value = "main")]
        revision: String,
        /// model or dataset.
        #[arg(long, default_value = "model")]
        repo_type: String,
    },
}

pub(crate) fn repo_type(name: &str) -> Result<RepoType> {
    Ok(match name {
        "model" => RepoType::Model,
        "dataset" => RepoType::Dataset,
        "space" => RepoType::Space,
        other => anyhow::bail!("--repo-type {other:?}: use model, dataset or space"),
    })
}

fn human(bytes: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

/// Runs the `cache` command.
pub fn run(args: Args) -> Result<()> {
    let cache = Cache::from_config(&HubConfig::from_env());
    match args.command {
        CacheCommand::Ls { json } => {
            let repos = cache.scan()?;
            if json {
                for r in &repos {
                    let revisions: Vec<_> = r
                        .revisions
                        .iter()
                        .map(|v| serde_json::json!({"commit": v.commit, "refs": v.refs, "files": v.files, "size": v.size}))
                        .collect();
                    println!(
                        "{}",
                        serde_json::json!({"repo_id": r.repo_id, "repo_type": r.repo_type.plural(), "size": r.size, "path": r.path, "revisions": revisions, "incomplete": r.incomplete})
                    );
                }
            } else {
                println!(
                    "{:<48} {:>8} {:>10}  REVISIONS (refs)",
                    "REPO ID", "TYPE", "SIZE"
                );
                for r in &repos {
                    let revs: Vec<String> = r
                        .revisions
                        .iter()
                        .map(|v| {
                            format!(
                                "{}{}",
                                &v.commit[..v.commit.len().min(8)],
                                if v.refs.is_empty() {
                                    String::new()
                                } else {
                                    format!(" ({})", v.refs.join(", "))
                                }
                            )
                        })
                        .collect();
                    println!(
                        "{:<48} {:>8} {:>10}  {}",
                        r.repo_id,
                        r.repo_type.plural().trim_end_matches('s'),
                        human(r.size),
                        revs.join("; ")
                    );
                }
                println!(
                    "{} repo(s), {} in {}",
                    repos.len(),
                    human(repos.iter().map(|r| r.size).sum()),
                    cache.dir().display()
                );
            }
            Ok(())
        }
        CacheCommand::Rm {
            repo,
            revision,
            repo_type: kind,
        } => {
            let id = RepoId::new(repo_type(&kind)?, &repo)?;
            let freed = match &revision {
                Some(rev) => cache.delete_revision(&id, rev)?,
                None => cache.delete_repo(&id)?,
            };
            println!(
                "{}",
                serde_json::json!({"repo": id.to_string(), "revision": revision, "freed": freed})
            );
            Ok(())
        }
        CacheCommand::Verify => {
            let bad = cache.verify()?;
            for b in &bad {
                println!(
                    "{}",
                    serde_json::json!({"repo": b.repo_id, "file": b.file, "expected": b.expected, "found": b.found})
                );
            }
            if bad.is_empty() {
                eprintln!("every cached blob matches its hash");
                Ok(())
            } else {
                anyhow::bail!(
                    "{} corrupted blob(s); delete them with `embrace cache rm` and download again",
                    bad.len()
                )
            }
        }
        CacheCommand::Import {
            repo,
            folder,
            revision,
            repo_type,
        } => {
            let id = RepoId::new(self::repo_type(&repo_type)?, &repo)?;
            let report = cache
                .import_folder(&id, &revision, &folder)
                .with_context(|| format!("cannot import {} as {id}", folder.display()))?;
            let size: u64 = report.files.iter().map(|f| f.size).sum();
            println!(
                "{}",
                serde_json::json!({
                    "repo": id.to_string(),
                    "revision": revision,
                    "commit": report.commit,
                    "snapshot": report.snapshot,
                    "files": report.files.len(),
                    "bytes": size,
                })
            );
            Ok(())
        }
    }
}
