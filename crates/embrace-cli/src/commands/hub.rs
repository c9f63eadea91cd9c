//! `embrace hub`: run a self-hosted hub server and administer its users and tokens.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use embrace_hub_server::{Db, Hub, Role, ServerConfig, StorageConfig};

/// Run and administer a self-hosted model and dataset hub.
///
/// The server speaks the Hugging Face Hub HTTP API: point `HF_ENDPOINT` at it and
/// `huggingface_hub`, `transformers`, `datasets`, `hf-hub` and `embrace` work unchanged. A fresh
/// data directory needs no set-up; create a user and a write token to upload.
#[derive(Debug, Parser)]
#[command(after_help = "Examples:\n  \
    embrace hub user add alice --data ./hub-data\n  \
    embrace hub token create --user alice --role write --data ./hub-data\n  \
    embrace hub serve --addr 127.0.0.1:8000 --data ./hub-data\n  \
    HF_ENDPOINT=http://127.0.0.1:8000 HF_TOKEN=hf_... HF_HUB_DISABLE_XET=1 \\\n    \
    python -c 'import huggingface_hub as h; h.upload_folder(repo_id=\"alice/m\", folder_path=\".\")'")]
pub struct Args {
    #[command(subcommand)]
    command: HubCommand,
}

#[derive(Debug, Subcommand)]
enum HubCommand {
    /// Serve the hub API and web UI until SIGTERM or Ctrl-C (then finish running requests).
    Serve(ServeArgs),
    /// Manage users (each user owns the namespace of the same name).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage access tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Parser)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Data directory (metadata database, blobs, upload staging); created if missing.
    #[arg(long, env = "EMBRACE_HUB_DATA")]
    data: PathBuf,
    /// URL clients reach the server at (behind a proxy: the proxy's URL, with any path prefix).
    /// Defaults to http://<addr>.
    #[arg(long, env = "EMBRACE_HUB_PUBLIC_URL")]
    public_url: Option<String>,
    /// Blob storage: `file:///dir` or `s3://bucket[/prefix]` through object_store (S3 needs a
    /// build with the `s3` feature and the usual AWS_* variables). Default: <data>/blobs.
    #[arg(long, env = "EMBRACE_HUB_STORAGE")]
    storage: Option<String>,
    /// Files of at least this many bytes go through LFS.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    lfs_threshold: u64,
    /// Largest commit body accepted, in bytes (inline files travel base64-encoded in it).
    #[arg(long, default_value_t = 1 << 30)]
    max_commit_bytes: u64,
    /// Largest LFS file accepted, in bytes.
    #[arg(long, default_value_t = 100 << 30)]
    max_lfs_bytes: u64,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user.
    Add {
        /// User name (also the namespace of their repositories).
        name: String,
        /// Data directory of the hub.
        #[arg(long, env = "EMBRACE_HUB_DATA")]
        data: PathBuf,
        /// Display name.
        #[arg(long)]
        fullname: Option<String>,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; the token is printed on the last line of the output.
    Create {
        /// The user the token acts as.
        #[arg(long)]
        user: String,
        /// `read` (download public and own private repos) or `write` (also create and upload).
        #[arg(long, default_value = "read")]
        role: String,
        /// A name to recognise the token by (shown by `whoami`).
        #[arg(long, default_value = "cli")]
        name: String,
        /// Data directory of the hub.
        #[arg(long, env = "EMBRACE_HUB_DATA")]
        data: PathBuf,
    },
}

/// Runs `embrace hub`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        HubCommand::Serve(serve_args) => serve(serve_args),
        HubCommand::User {
            command:
                UserCommand::Add {
                    name,
                    data,
                    fullname,
                    email,
                },
        } => {
            let db = Db::open(&data)
                .with_context(|| format!("opening the hub data in {}", data.display()))?;
            let user = db.add_user(&name, fullname.as_deref(), email.as_deref())?;
            println!("added user {}", user.name);
            Ok(())
        }
        HubCommand::Token {
            command:
                TokenCommand::Create {
                    user,
                    role,
                    name,
                    data,
                },
        } => {
            let db = Db::open(&data)
                .with_context(|| format!("opening the hub data in {}", data.display()))?;
            let role = Role::parse(&role)?;
            let token = db.create_token(&user, role, &name)?;
            eprintln!(
                "created a {} token '{name}' for {user}; it is shown only once:",
                role.as_str()
            );
            println!("{token}");
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("http://{}", args.addr));
    let mut config = ServerConfig::new(&args.data, public_url.clone());
    config.lfs_threshold = args.lfs_threshold;
    config.max_commit_bytes = args.max_commit_bytes;
    config.max_lfs_bytes = args.max_lfs_bytes;
    if let Some(storage) = args.storage {
        config.storage = StorageConfig::ObjectStore(storage);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let hub = Hub::open(config)
            .with_context(|| format!("opening the hub data in {}", args.data.display()))?;
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("listening on {}", args.addr))?;
        tracing::info!(
            "serving the hub at {public_url} (listening on {})",
            args.addr
        );
        eprintln!(
            "embrace hub: serving at {public_url} (data in {})",
            args.data.display()
        );
        hub.serve(listener, shutdown_signal())
            .await
            .context("serving")?;
        tracing::info!("shut down cleanly");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
