//! `embrace download`, `embrace upload`, `embrace login`, `embrace whoami`: the hub client, on
//! the cache shared with Python (`HF_ENDPOINT`, `HF_HOME`, `HF_TOKEN`, `HF_HUB_OFFLINE`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use embrace_hub::{DownloadOptions, HubClient, RepoId, UploadOptions};

use super::cache::repo_type;

/// Download a repository (or some of its files) into the Hugging Face cache.
///
/// Prints the local path: the snapshot folder, or the file when one file is asked for.
/// Interrupted downloads resume; `HF_HUB_OFFLINE=1` answers from the cache only.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    embrace download sentence-transformers/all-MiniLM-L6-v2\n  \
    embrace download org/model config.json tokenizer.json --revision v1.0\n  \
    embrace download org/model --include '*.safetensors' --include '*.json'\n  \
    HF_ENDPOINT=http://127.0.0.1:8000 embrace download --repo-type dataset org/data")]
pub struct DownloadArgs {
    /// The repository id (org/name).
    repo: String,
    /// Files to download (default: the whole revision).
    files: Vec<String>,
    /// Branch, tag or commit.
    #[arg(long, default_value = "main")]
    revision: String,
    /// model, dataset or space.
    #[arg(long, default_value = "model")]
    repo_type: String,
    /// Only files matching these glob patterns (repeatable).
    #[arg(long)]
    include: Vec<String>,
    /// Skip files matching these glob patterns (repeatable).
    #[arg(long)]
    exclude: Vec<String>,
    /// Files downloaded in parallel.
    #[arg(long, default_value_t = 8)]
    max_workers: usize,
    /// Also copy the files into this folder (with huggingface_hub's `.cache/huggingface`
    /// metadata) and print it instead of the snapshot folder.
    #[arg(long)]
    local_dir: Option<PathBuf>,
}

/// Upload a local folder to a repository in one commit (created if missing).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    HF_ENDPOINT=http://127.0.0.1:8000 HF_TOKEN=hf_... embrace upload alice/my-model ./my-model")]
pub struct UploadArgs {
    /// The repository id (org/name).
    repo: String,
    /// The folder to upload.
    folder: PathBuf,
    /// model, dataset or space.
    #[arg(long, default_value = "model")]
    repo_type: String,
    /// Branch to commit to.
    #[arg(long, default_value = "main")]
    revision: String,
    /// Commit message.
    #[arg(long, default_value = "Upload folder using embrace")]
    commit_message: String,
    /// Create the repository as private.
    #[arg(long)]
    private: bool,
    /// Only files matching these glob patterns (repeatable).
    #[arg(long)]
    include: Vec<String>,
    /// Skip files matching these glob patterns (repeatable).
    #[arg(long)]
    exclude: Vec<String>,
}

/// Store a token (validated with the hub) where Python's huggingface_hub also reads it.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The token (default: read from the HF_TOKEN variable).
    #[arg(long, env = "HF_TOKEN", hide_env_values = true)]
    token: String,
}

fn client() -> Result<HubClient> {
    Ok(HubClient::from_env()?)
}

/// Runs `embrace download`.
pub fn download(args: DownloadArgs) -> Result<()> {
    let repo = RepoId::new(repo_type(&args.repo_type)?, &args.repo)?;
    let hub = client()?;
    if args.files.is_empty() || args.local_dir.is_some() {
        let allow_patterns = if args.files.is_empty() {
            args.include
        } else {
            args.files.clone()
        };
        let options = DownloadOptions {
            revision: args.revision.clone(),
            allow_patterns,
            ignore_patterns: args.exclude,
            max_workers: args.max_workers,
            local_dir: args.local_dir,
        };
        let dir = hub
            .snapshot_download(&repo, &options)
            .with_context(|| format!("downloading {repo} at {}", args.revision))?;
        println!("{}", dir.display());
    } else {
        for file in &args.files {
            let path = hub
                .download_file(&repo, file, &args.revision)
                .with_context(|| format!("downloading {file} of {repo} at {}", args.revision))?;
            println!("{}", path.display());
        }
    }
    Ok(())
}

/// Runs `embrace upload`.
pub fn upload(args: UploadArgs) -> Result<()> {
    let repo = RepoId::new(repo_type(&args.repo_type)?, &args.repo)?;
    let hub = client()?;
    hub.create_repo(&repo, args.private, true)
        .with_context(|| format!("creating {repo}"))?;
    let options = UploadOptions {
        revision: args.revision,
        commit_message: args.commit_message,
        allow_patterns: args.include,
        ignore_patterns: args.exclude,
        ..UploadOptions::default()
    };
    let info = hub
        .upload_folder(&repo, &args.folder, &options)
        .with_context(|| format!("uploading {} to {repo}", args.folder.display()))?;
    eprintln!(
        "{} file(s) uploaded, {} unchanged",
        info.uploaded.len(),
        info.unchanged.len()
    );
    println!(
        "{}",
        serde_json::json!({ "commit": info.commit_oid, "url": info.commit_url, "uploaded": info.uploaded })
    );
    Ok(())
}

/// Runs `embrace login`.
pub fn login(args: LoginArgs) -> Result<()> {
    let mut hub = client()?;
    let me = hub
        .login(&args.token)
        .context("checking the token with the hub")?;
    eprintln!(
        "logged in as {} on {}; token saved to {}",
        me.name,
        hub.config().endpoint,
        hub.config().token_path.display()
    );
    Ok(())
}

/// Runs `embrace whoami`.
pub fn whoami() -> Result<()> {
    let me = client()?.whoami()?;
    println!(
        "{}",
        serde_json::json!({ "name": me.name, "orgs": me.orgs, "role": me.role })
    );
    Ok(())
}
