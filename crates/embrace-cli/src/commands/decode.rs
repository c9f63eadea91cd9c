//! `embrace decode`: token ids back to text.

use anyhow::Result;
use std::io::Write;

/// Arguments of `embrace decode`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A tokenizer.json, a model folder (tokenizer.json, vocab.json + merges.txt, or vocab.txt),
    /// a BERT vocab.txt, a tiktoken rank file named after its encoding (cl100k_base.tiktoken), or
    /// a repo id (org/name[@revision]) already in the Hugging Face cache ($HF_HUB_CACHE).
    #[arg(long, short = 't')]
    tokenizer: String,
    /// Leave out special tokens such as [CLS] and [SEP].
    #[arg(long)]
    skip_special_tokens: bool,
    /// The token ids.
    #[arg(required = true, num_args = 1..)]
    ids: Vec<u32>,
}

/// Runs `embrace decode`.
pub fn run(args: Args) -> Result<()> {
    let tokenizer = super::load_tokenizer(&args.tokenizer)?;
    let text = tokenizer.decode(&args.ids, args.skip_special_tokens);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}
