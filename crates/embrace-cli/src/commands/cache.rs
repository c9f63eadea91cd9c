//! `embrace cache`: the Hugging Face cache shared with Python.

use std::path::PathBuf;

use anyhow::{Context, Result};
use embrace_hub::{Cache, HubConfig, RepoId, RepoType};

/// Arguments of `embrace cache`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CacheCommand {
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

/// Runs the `cache` command.
pub fn run(args: Args) -> Result<()> {
    let cache = Cache::from_config(&HubConfig::from_env());
    match args.command {
        CacheCommand::Import {
            repo,
            folder,
            revision,
            repo_type,
        } => {
            let kind = match repo_type.as_str() {
                "model" => RepoType::Model,
                "dataset" => RepoType::Dataset,
                other => anyhow::bail!("--repo-type {other:?}: use model or dataset"),
            };
            let id = RepoId::new(kind, &repo)?;
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
