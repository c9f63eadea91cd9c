//! `embrace pipeline`: one command from raw text to a task's answer, shaped like
//! `transformers.pipeline`'s output.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use embrace_pipelines::{Aggregation, Input, Options, Pipeline, PipelineTask, ScoreFunction, TopK};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// Arguments of `embrace pipeline`.
///
/// Inputs are the TEXT arguments, or the lines of --file, or standard input (one per line). With
/// one input the output is that input's result; with several, a JSON array (or, with
/// `--format jsonl`, one line per input, streamed in constant memory).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task: feature-extraction, sentence-similarity, text-classification (or
    /// sentiment-analysis), token-classification (or ner), fill-mask, question-answering,
    /// zero-shot-classification, text-generation, summarization, translation (or
    /// translation_xx_to_yy), text2text-generation.
    task: String,
    /// A model folder or a repo id in the Hugging Face cache (org/name). Without it, the task's
    /// default model is used, where one exists offline.
    #[arg(long, short = 'm')]
    model: Option<String>,
    /// The revision of a repo id (branch, tag or commit).
    #[arg(long)]
    revision: Option<String>,
    /// Inputs per forward pass (inputs are sorted by length so that batches are even).
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Number of labels / predictions / answers to return, or "all".
    #[arg(long)]
    top_k: Option<String>,
    /// text-classification: softmax, sigmoid or none (default: as the model's config says).
    #[arg(long)]
    function_to_apply: Option<String>,
    /// token-classification: none, simple, first, average or max.
    #[arg(long, default_value = "none")]
    aggregation_strategy: String,
    /// token-classification: labels to leave out (comma-separated; default O).
    #[arg(long, value_delimiter = ',')]
    ignore_labels: Option<Vec<String>>,
    /// fill-mask: only consider these tokens (comma-separated).
    #[arg(long, value_delimiter = ',')]
    targets: Option<Vec<String>>,
    /// zero-shot-classification: the labels to choose from (comma-separated).
    #[arg(long, value_delimiter = ',')]
    candidate_labels: Vec<String>,
    /// zero-shot-classification: the hypothesis, with {} where the label goes.
    #[arg(long, default_value = "This example is {}.")]
    hypothesis_template: String,
    /// zero-shot-classification: labels are independent (several may be true).
    #[arg(long)]
    multi_label: bool,
    /// question-answering: the context the inputs (questions) are answered from.
    #[arg(long)]
    context: Option<String>,
    /// question-answering: tokens shared by consecutive windows of a long context (default: half
    /// a window, at most 128).
    #[arg(long)]
    doc_stride: Option<usize>,
    /// question-answering: the longest answer, in tokens.
    #[arg(long, default_value_t = 15)]
    max_answer_len: usize,
    /// question-answering: tokens per question + context window (default: the model's, ≤ 384).
    #[arg(long)]
    max_seq_len: Option<usize>,
    /// question-answering: allow "no answer".
    #[arg(long)]
    handle_impossible_answer: bool,
    /// text-generation: new tokens to generate at most (default: the model's setting, else 256).
    #[arg(long, help_heading = "Generation")]
    max_new_tokens: Option<usize>,
    /// text-generation: sample instead of taking the most likely token (see --temperature,
    /// --top-k, --top-p, --min-p, --seed).
    #[arg(long, help_heading = "Generation")]
    do_sample: bool,
    /// text-generation: sampling temperature.
    #[arg(long, help_heading = "Generation")]
    temperature: Option<f64>,
    /// text-generation: nucleus sampling probability mass.
    #[arg(long, help_heading = "Generation")]
    top_p: Option<f64>,
    /// text-generation: drop tokens less likely than this times the most likely one.
    #[arg(long, help_heading = "Generation")]
    min_p: Option<f64>,
    /// text-generation: > 1 discourages repeating tokens.
    #[arg(long, help_heading = "Generation")]
    repetition_penalty: Option<f64>,
    /// text-generation: beam search with this many beams.
    #[arg(long, help_heading = "Generation")]
    num_beams: Option<usize>,
    /// text-generation: seed of the sampler (same seed, same text).
    #[arg(long, help_heading = "Generation")]
    seed: Option<u64>,
    /// text-generation: stop after this text (repeatable).
    #[arg(long = "stop", help_heading = "Generation")]
    stop_strings: Vec<String>,
    /// text-generation: any other generate() setting, as KEY=VALUE with a JSON value
    /// (e.g. --generate no_repeat_ngram_size=3); repeatable.
    #[arg(
        long = "generate",
        value_name = "KEY=VALUE",
        help_heading = "Generation"
    )]
    generate: Vec<String>,
    /// text-generation: return only the continuation, not the prompt followed by it.
    #[arg(long, help_heading = "Generation")]
    no_full_text: bool,
    /// text-generation: print the text to standard output as it is generated, instead of JSON.
    #[arg(long, help_heading = "Generation")]
    stream: bool,
    /// Output: json (one document) or jsonl (one line per input, streamed).
    #[arg(long, default_value = "json")]
    format: String,
    /// Print an evidence card for the run (request, token statistics, truncation, timings,
    /// output validation, checks, next action) to standard error as JSON.
    #[arg(long)]
    trace: bool,
    /// Write the evidence card to this file instead of standard error (implies --trace).
    #[arg(long, value_name = "PATH")]
    trace_file: Option<PathBuf>,
    /// Inputs are JSON values, one per line or argument (e.g. {"text": …, "text_pair": …}).
    #[arg(long)]
    json_input: bool,
    /// Read inputs from a file, one per line.
    #[arg(long, short = 'f', conflicts_with = "texts")]
    file: Option<PathBuf>,
    /// The inputs. sentence-similarity: the source sentence, then the sentences to compare.
    texts: Vec<String>,
}

/// The generate() overrides of the command line.
fn generation_options(args: &Args) -> Result<serde_json::Map<String, Value>> {
    use serde_json::json;
    let mut map = embrace_pipelines::parse_generate_overrides(&args.generate)?;
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            map.insert(key.to_owned(), v);
        }
    };
    set("max_new_tokens", args.max_new_tokens.map(|v| json!(v)));
    set("do_sample", args.do_sample.then(|| json!(true)));
    set("temperature", args.temperature.map(|v| json!(v)));
    set("top_p", args.top_p.map(|v| json!(v)));
    set("min_p", args.min_p.map(|v| json!(v)));
    set(
        "repetition_penalty",
        args.repetition_penalty.map(|v| json!(v)),
    );
    set("num_beams", args.num_beams.map(|v| json!(v)));
    set("seed", args.seed.map(|v| json!(v)));
    set(
        "stop_strings",
        (!args.stop_strings.is_empty()).then(|| json!(args.stop_strings)),
    );
    if let Some(k) = args
        .top_k
        .as_deref()
        .filter(|_| args.task == "text-generation")
    {
        let k: usize = k
            .parse()
            .with_context(|| format!("--top-k {k:?} is not a number"))?;
        map.insert("top_k".into(), json!(k));
    }
    Ok(map)
}

/// Whether the task decodes text (its --top-k is a sampling setting, not a label count).
fn generates(task: &str) -> bool {
    matches!(
        task,
        "text-generation" | "summarization" | "text2text-generation"
    ) || task.starts_with("translation")
}

fn options(args: &Args) -> Result<Options> {
    let generating = generates(&args.task);
    let mut o = Options {
        top_k: match args.top_k.as_deref() {
            _ if generating => TopK::Default,
            None => TopK::Default,
            Some("all") => TopK::All,
            Some(k) => TopK::K(
                k.parse()
                    .with_context(|| format!("--top-k {k:?} is not a number or \"all\""))?,
            ),
        },
        aggregation_strategy: Aggregation::parse(&args.aggregation_strategy).with_context(
            || {
                format!(
                    "--aggregation-strategy {:?}: use none, simple, first, average or max",
                    args.aggregation_strategy
                )
            },
        )?,
        ignore_labels: args.ignore_labels.clone(),
        targets: args.targets.clone(),
        candidate_labels: args.candidate_labels.clone(),
        hypothesis_template: args.hypothesis_template.clone(),
        multi_label: args.multi_label,
        context: args.context.clone(),
        doc_stride: args.doc_stride,
        max_answer_len: args.max_answer_len,
        max_seq_len: args.max_seq_len,
        handle_impossible_answer: args.handle_impossible_answer,
        generate: generation_options(args)?,
        return_full_text: args.no_full_text.then_some(false),
        ..Options::default()
    };
    o.function_to_apply = match args.function_to_apply.as_deref() {
        None => None,
        Some("softmax") => Some(ScoreFunction::Softmax),
        Some("sigmoid") => Some(ScoreFunction::Sigmoid),
        Some("none") => Some(ScoreFunction::None),
        Some(other) => bail!("--function-to-apply {other:?}: use softmax, sigmoid or none"),
    };
    Ok(o)
}

fn parse_input(line: &str, json: bool) -> Result<Input> {
    if json {
        let value: Value =
            serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
        Ok(Input::from_json(&value)?)
    } else {
        Ok(Input::text(line))
    }
}

/// Runs the `pipeline` command.
pub fn run(args: Args) -> Result<()> {
    let task = PipelineTask::parse(&args.task)?;
    let model = match (&args.model, &args.revision) {
        (Some(m), Some(r)) => Some(format!("{m}@{r}")),
        (m, _) => m.clone(),
    };
    let mut builder = Pipeline::builder(&args.task)
        .batch_size(args.batch_size)
        .options(options(&args)?);
    if let Some(m) = &model {
        builder = builder.model(m);
    } else if let Ok(default) = task.default_model() {
        eprintln!(
            "note: no --model given; using {default}, the default for {}",
            task.name()
        );
    }
    let pipeline = builder.build().context("cannot set up the pipeline")?;
    let jsonl = match args.format.as_str() {
        "json" => false,
        "jsonl" => true,
        other => bail!("--format {other:?}: use json or jsonl"),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.stream {
        let Some(generator) = pipeline.generator() else {
            bail!("--stream applies to text-generation only");
        };
        let inputs = collect_inputs(&args)?;
        let options = options(&args)?;
        for input in &inputs {
            generator.generate_one(input, &options, &mut |piece| {
                // Best effort: a closed pipe ends the program on the next write anyway.
                let _ = write!(out, "{piece}").and_then(|()| out.flush());
            })?;
            writeln!(out)?;
        }
        return Ok(out.flush()?);
    }

    if task == PipelineTask::SentenceSimilarity && !args.json_input && args.file.is_none() {
        let Some((source, others)) = args.texts.split_first() else {
            bail!("sentence-similarity needs a source sentence and sentences to compare with");
        };
        let input = Input::Similarity {
            source_sentence: source.clone(),
            sentences: others.to_vec(),
        };
        serde_json::to_writer(&mut out, &pipeline.run(&input)?)?;
        writeln!(out)?;
        return Ok(out.flush()?);
    }

    if args.trace || args.trace_file.is_some() {
        // A traced run holds all its inputs: the card covers the whole run.
        let inputs = collect_inputs(&args)?;
        let output = pipeline.run_traced(&inputs)?;
        let single = inputs.len() == 1 && !jsonl;
        let values = if single {
            vec![pipeline.shape_single(&inputs[0], output.values[0].clone())]
        } else {
            output.values.clone()
        };
        write_values(&values, single, jsonl, &mut out)?;
        let card = serde_json::to_string_pretty(output.trace().to_json())?;
        match &args.trace_file {
            Some(path) => std::fs::write(path, card + "\n")
                .with_context(|| format!("cannot write the trace to {}", path.display()))?,
            None => eprintln!("{card}"),
        }
        return Ok(());
    }
    if !args.texts.is_empty() {
        let inputs = args
            .texts
            .iter()
            .map(|t| parse_input(t, args.json_input))
            .collect::<Result<Vec<_>>>()?;
        return write_all(&pipeline, &inputs, jsonl, &mut out);
    }
    let reader: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(BufReader::new(std::io::stdin())),
    };
    if !jsonl {
        let lines = reader
            .lines()
            .collect::<std::io::Result<Vec<_>>>()
            .context("cannot read the inputs")?;
        let inputs = lines
            .iter()
            .map(|l| parse_input(l, args.json_input))
            .collect::<Result<Vec<_>>>()?;
        return write_all(&pipeline, &inputs, false, &mut out);
    }
    // Streaming: chunks of inputs in, their results out, in order, in constant memory.
    let total = args.file.as_ref().and_then(|p| count_lines(p).ok());
    let bar = progress(total);
    let chunk_size = (args.batch_size * 32).max(256);
    let mut chunk = Vec::with_capacity(chunk_size);
    let mut lines = reader.lines();
    loop {
        chunk.clear();
        for line in lines.by_ref().take(chunk_size) {
            let line = line.context("cannot read the inputs")?;
            chunk.push(parse_input(&line, args.json_input)?);
        }
        if chunk.is_empty() {
            break;
        }
        for value in pipeline.run_many(&chunk)? {
            serde_json::to_writer(&mut out, &value)?;
            writeln!(out)?;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out.flush()?)
}

/// All inputs of the command line, file or standard input.
fn collect_inputs(args: &Args) -> Result<Vec<Input>> {
    let lines: Vec<String> = if !args.texts.is_empty() {
        args.texts.clone()
    } else if let Some(path) = &args.file {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .lines()
            .map(str::to_owned)
            .collect()
    } else {
        std::io::stdin()
            .lines()
            .collect::<std::io::Result<_>>()
            .context("cannot read the inputs")?
    };
    lines
        .iter()
        .map(|l| parse_input(l, args.json_input))
        .collect()
}

fn write_values(values: &[Value], single: bool, jsonl: bool, out: &mut impl Write) -> Result<()> {
    if single {
        serde_json::to_writer(&mut *out, &values[0])?;
        writeln!(out)?;
    } else if jsonl {
        for value in values {
            serde_json::to_writer(&mut *out, value)?;
            writeln!(out)?;
        }
    } else {
        serde_json::to_writer(&mut *out, values)?;
        writeln!(out)?;
    }
    Ok(out.flush()?)
}

fn write_all(
    pipeline: &Pipeline,
    inputs: &[Input],
    jsonl: bool,
    out: &mut impl Write,
) -> Result<()> {
    if inputs.len() == 1 && !jsonl {
        serde_json::to_writer(&mut *out, &pipeline.run(&inputs[0])?)?;
        writeln!(out)?;
        return Ok(out.flush()?);
    }
    let bar = progress(Some(inputs.len() as u64));
    let mut results = Vec::with_capacity(inputs.len());
    for chunk in inputs.chunks(256) {
        results.extend(pipeline.run_many(chunk)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    write_values(&results, false, jsonl, out)
}

fn count_lines(path: &std::path::Path) -> std::io::Result<u64> {
    let mut n = 0;
    for line in BufReader::new(std::fs::File::open(path)?).split(b'\n') {
        line?;
        n += 1;
    }
    Ok(n)
}

/// A progress bar on stderr for more than a few hundred inputs (hidden otherwise, and when
/// `HF_HUB_DISABLE_PROGRESS_BARS` is set).
fn progress(total: Option<u64>) -> ProgressBar {
    let hidden = std::env::var_os("HF_HUB_DISABLE_PROGRESS_BARS").is_some()
        || total.is_some_and(|t| t < 300);
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::no_length(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {pos}/{len} inputs [{elapsed_precise}] {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
