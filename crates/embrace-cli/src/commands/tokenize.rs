//! `embrace tokenize`: text to ids, tokens, offsets and masks, as JSON lines.

use anyhow::{Context, Result, bail};
use embrace_tokenizers::{
    Encoding, OffsetType, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams,
};
use serde::Serialize;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

/// Arguments of `embrace tokenize`.
///
/// Writes one JSON object per input with the keys HuggingFace uses: input_ids, tokens, offsets
/// (character offsets into the input, as the Python binding returns), attention_mask,
/// token_type_ids, special_tokens_mask, word_ids (and overflowing, when truncation cut the input).
/// Truncation and padding follow the tokenizer file unless the flags below override them.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A tokenizer.json, a model folder (tokenizer.json, vocab.json + merges.txt, or vocab.txt),
    /// a BERT vocab.txt, a tiktoken rank file named after its encoding (cl100k_base.tiktoken), or
    /// a repo id (org/name[@revision]) already in the Hugging Face cache ($HF_HUB_CACHE).
    #[arg(long, short = 't')]
    tokenizer: String,
    /// Second sequence of a pair (encoded with every input).
    #[arg(long)]
    pair: Option<String>,
    /// Do not add special tokens ([CLS], [SEP], <s>, ...).
    #[arg(long)]
    no_special_tokens: bool,
    /// Read inputs from a file, one per line (split on \n only; empty lines are inputs too).
    #[arg(long, short = 'f', conflicts_with = "texts")]
    file: Option<PathBuf>,
    /// Truncate to at most this many tokens (special tokens included).
    #[arg(long, conflicts_with = "no_truncation")]
    max_length: Option<usize>,
    /// Turn off the truncation configured in the tokenizer file.
    #[arg(long)]
    no_truncation: bool,
    /// Padding: "none", "longest" (longest input of the batch) or a fixed length.
    #[arg(long)]
    padding: Option<String>,
    /// Number of inputs encoded together (in parallel; "longest" padding applies per batch).
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
    /// The texts to tokenize (standard input, one per line, when neither texts nor --file).
    texts: Vec<String>,
}

#[derive(Serialize)]
struct Record<'a> {
    input_ids: &'a [u32],
    tokens: &'a [String],
    offsets: &'a [(usize, usize)],
    attention_mask: &'a [u32],
    token_type_ids: &'a [u32],
    special_tokens_mask: &'a [u32],
    word_ids: &'a [Option<u32>],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    overflowing: Vec<Record<'a>>,
}

impl<'a> Record<'a> {
    fn new(e: &'a Encoding) -> Self {
        Record {
            input_ids: e.ids(),
            tokens: e.tokens(),
            offsets: e.offsets(),
            attention_mask: e.attention_mask(),
            token_type_ids: e.type_ids(),
            special_tokens_mask: e.special_tokens_mask(),
            word_ids: e.word_ids(),
            overflowing: e.overflowing().iter().map(Record::new).collect(),
        }
    }
}

/// Splits `bytes` into lines on `\n` (a final `\n` ends the last line), checking UTF-8 per line.
fn lines_of(bytes: &[u8], origin: &str) -> Result<Vec<String>> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            String::from_utf8(line.to_vec())
                .with_context(|| format!("{origin}: line {} is not valid UTF-8", i + 1))
        })
        .collect()
}

fn apply_overrides(tokenizer: &mut Tokenizer, args: &Args) -> Result<()> {
    if args.no_truncation {
        tokenizer.with_truncation(None)?;
    }
    if let Some(max_length) = args.max_length {
        let base = tokenizer.truncation().cloned().unwrap_or(TruncationParams {
            direction: Default::default(),
            max_length,
            strategy: Default::default(),
            stride: 0,
        });
        tokenizer.with_truncation(Some(TruncationParams { max_length, ..base }))?;
    }
    if let Some(padding) = &args.padding {
        let strategy = match padding.as_str() {
            "none" => None,
            "longest" => Some(PaddingStrategy::BatchLongest),
            n => Some(PaddingStrategy::Fixed(n.parse().with_context(|| {
                format!("--padding takes none, longest or a length, not {n:?}")
            })?)),
        };
        let params = strategy.map(|strategy| {
            let base = tokenizer.padding().cloned().unwrap_or(PaddingParams {
                strategy,
                direction: Default::default(),
                pad_to_multiple_of: None,
                pad_id: tokenizer
                    .token_to_id("[PAD]")
                    .or_else(|| tokenizer.token_to_id("<pad>"))
                    .unwrap_or(0),
                pad_type_id: 0,
                pad_token: "[PAD]".into(),
            });
            PaddingParams { strategy, ..base }
        });
        tokenizer.with_padding(params);
    }
    Ok(())
}

/// Runs `embrace tokenize`.
pub fn run(args: Args) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let mut tokenizer = super::load_tokenizer(&args.tokenizer)?;
    apply_overrides(&mut tokenizer, &args)?;
    let inputs: Vec<String> = if let Some(path) = &args.file {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        lines_of(&bytes, &path.display().to_string())?
    } else if !args.texts.is_empty() {
        args.texts.clone()
    } else {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        lines_of(&bytes, "standard input")?
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    for chunk in inputs.chunks(args.batch_size) {
        let batch: Vec<(&str, Option<&str>)> = chunk
            .iter()
            .map(|t| (t.as_str(), args.pair.as_deref()))
            .collect();
        let encodings = tokenizer
            .encode_batch(&batch, !args.no_special_tokens, OffsetType::Char)
            .context("tokenization failed")?;
        for e in &encodings {
            serde_json::to_writer(&mut out, &Record::new(e))?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_newline_only() {
        let l = lines_of(b"a\r\n\nb\n", "x").unwrap();
        assert_eq!(l, ["a\r", "", "b"]);
        assert!(lines_of(b"", "x").unwrap().is_empty());
        assert_eq!(lines_of(b"\n", "x").unwrap(), [""]);
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = lines_of(b"ok\n\xff\n", "in.txt").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
