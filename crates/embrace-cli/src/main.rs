//! `embrace`: the command line of Embrace, the HuggingFace ecosystem in Rust.
//!
//! Each subcommand lives in its own module under `commands/`; this file only parses the command
//! line, sets up logging and turns errors into one clear message and a non-zero exit status.

mod commands;

use clap::{ArgAction, Parser, Subcommand};
use std::process::ExitCode;

/// Embrace: HuggingFace's tokenizers, models, datasets, pipelines, training and hub, in Rust.
///
/// Files are compatible with HuggingFace's (tokenizer.json, config.json, safetensors, the hub
/// cache), so models and tokenizers made for `transformers` work as they are.
#[derive(Debug, Parser)]
#[command(name = "embrace", version, about, long_about, propagate_version = true)]
#[command(after_help = "Examples:\n  \
    embrace tokenize --tokenizer path/to/model \"Hello world!\"\n  \
    embrace tokenize --tokenizer sentence-transformers/all-MiniLM-L6-v2 \"From the HF cache\"\n  \
    embrace tokenize --tokenizer tokenizer.json --file inputs.txt > encodings.jsonl\n  \
    embrace decode --tokenizer path/to/model --skip-special-tokens 101 7592 2088 999 102\n  \
    embrace pipeline sentiment-analysis --model path/to/model \"This support reply is very clear\"\n  \
    embrace pipeline fill-mask \"The capital of France is [MASK].\"\n  \
    embrace pipeline ner --model path/to/ner --aggregation-strategy simple \"John lives in Paris\"\n  \
    embrace pipeline sentence-similarity \"A cat sits\" \"A kitten rests\" \"Stocks fell\"\n  \
    embrace hub serve --addr 127.0.0.1:8000 --data ./hub-data")]
struct Cli {
    /// More logging (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    /// Less logging (-q errors only, -qq nothing).
    #[arg(short, long, action = ArgAction::Count, global = true, conflicts_with = "verbose")]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Turn text into token ids, tokens, offsets and masks (one JSON object per input).
    Tokenize(commands::tokenize::Args),
    /// Turn token ids back into text.
    Decode(commands::decode::Args),
    /// Fine-tune a model on a dataset (text classification).
    Train(commands::train::Args),
    /// Inspect, convert and split datasets (CSV, JSON, Parquet, text, save_to_disk folders).
    Datasets(commands::datasets::Args),
    /// Manage the Hugging Face cache shared with Python (import local folders).
    Cache(commands::cache::Args),
    /// Run a task on texts: sentiment, NER, fill-mask, QA, zero-shot, embeddings, similarity,
    /// text generation.
    Pipeline(Box<commands::pipeline::Args>),
    /// Chat with a language model (GGUF or transformers folder), replies streamed.
    Chat(commands::chat::Args),
    /// Run a self-hosted model and dataset hub that Hugging Face clients use unchanged.
    Hub(commands::hub::Args),
    /// Download a repository or some of its files into the Hugging Face cache (resumable).
    Download(commands::hub_client::DownloadArgs),
    /// Upload a folder to a hub repository in one commit.
    Upload(commands::hub_client::UploadArgs),
    /// Save a hub token (checked with the hub) where Python's huggingface_hub reads it too.
    Login(commands::hub_client::LoginArgs),
    /// Show the account of the current token (JSON).
    Whoami,
}

fn init_logging(verbose: u8, quiet: u8, default_level: &str) {
    let level = match (verbose, quiet) {
        (_, q) if q >= 2 => "off",
        (_, 1) => "error",
        (0, _) => default_level,
        (1, _) => "info",
        (2, _) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server logs its requests by default; the other commands only warn.
    let default_level = if matches!(cli.command, Command::Hub(_)) {
        "info"
    } else {
        "warn"
    };
    init_logging(cli.verbose, cli.quiet, default_level);
    let result = match cli.command {
        Command::Tokenize(args) => commands::tokenize::run(args),
        Command::Decode(args) => commands::decode::run(args),
        Command::Pipeline(args) => commands::pipeline::run(*args),
        Command::Chat(args) => commands::chat::run(args),
        Command::Cache(args) => commands::cache::run(args),
        Command::Datasets(args) => commands::datasets::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Hub(args) => commands::hub::run(args),
        Command::Download(args) => commands::hub_client::download(args),
        Command::Upload(args) => commands::hub_client::upload(args),
        Command::Login(args) => commands::hub_client::login(args),
        Command::Whoami => commands::hub_client::whoami(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`embrace tokenize ... | head`) is not an error worth reporting.
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
