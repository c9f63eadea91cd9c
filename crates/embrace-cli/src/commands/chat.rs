//! `embrace chat`: talk with a causal LM through its chat template, replies streamed as they are
//! generated.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use embrace_pipelines::{Input, Options, Pipeline};
use serde_json::{Value, json};

/// Arguments of `embrace chat`.
///
/// Each line read from standard input is a user message; the reply is printed as it is
/// generated and the conversation is kept for the next turn. On a terminal a `>` prompt is
/// shown; `/reset` starts over, `/exit` (or end of input) quits.
///
/// Example: embrace chat --model SmolLM2-135M-Instruct.Q4_1.gguf --system "Answer briefly."
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A GGUF file, a model folder, or a repo id in the Hugging Face cache.
    #[arg(long, short = 'm')]
    model: String,
    /// A system message that opens the conversation.
    #[arg(long)]
    system: Option<String>,
    /// One message to answer, instead of reading standard input.
    #[arg(long)]
    message: Option<String>,
    /// New tokens per reply at most.
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Sample instead of taking the most likely token.
    #[arg(long)]
    do_sample: bool,
    /// Sampling temperature.
    #[arg(long)]
    temperature: Option<f64>,
    /// Nucleus sampling probability mass.
    #[arg(long)]
    top_p: Option<f64>,
    /// Seed of the sampler.
    #[arg(long)]
    seed: Option<u64>,
    /// Print the final conversation as JSON on standard error when done.
    #[arg(long)]
    json: bool,
}

/// Runs the `chat` command.
pub fn run(args: Args) -> Result<()> {
    let pipeline = Pipeline::builder("text-generation")
        .model(&args.model)
        .build()
        .context("cannot load the model")?;
    let Some(generator) = pipeline.generator() else {
        bail!("{} is not a text-generation model", args.model);
    };
    if generator.chat_template().is_none() {
        bail!(
            "{} has no chat template (tokenizer_config.json, chat_template.jinja or GGUF \
             tokenizer.chat_template); use `embrace pipeline text-generation` for plain prompts",
            args.model
        );
    }
    let mut options = Options {
        return_full_text: Some(false),
        ..Options::default()
    };
    let g = &mut options.generate;
    g.insert("max_new_tokens".into(), json!(args.max_new_tokens));
    if args.do_sample {
        g.insert("do_sample".into(), json!(true));
    }
    if let Some(t) = args.temperature {
        g.insert("temperature".into(), json!(t));
    }
    if let Some(p) = args.top_p {
        g.insert("top_p".into(), json!(p));
    }
    if let Some(s) = args.seed {
        g.insert("seed".into(), json!(s));
    }
    let mut history: Vec<Value> = Vec::new();
    let opening = || -> Vec<Value> {
        args.system
            .iter()
            .map(|s| json!({"role": "system", "content": s}))
            .collect()
    };
    history.extend(opening());
    let interactive = args.message.is_none() && std::io::stdin().is_terminal();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut messages: Box<dyn Iterator<Item = std::io::Result<String>>> = match &args.message {
        Some(m) => Box::new(std::iter::once(Ok(m.clone()))),
        None => Box::new(std::io::stdin().lock().lines()),
    };
    loop {
        if interactive {
            eprint!("> ");
        }
        let Some(line) = messages.next() else { break };
        let line = line.context("cannot read standard input")?;
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                history = opening();
                continue;
            }
            _ => {}
        }
        history.push(json!({"role": "user", "content": line}));
        let reply =
            generator.generate_one(&Input::Chat(history.clone()), &options, &mut |piece| {
                let _ = write!(out, "{piece}").and_then(|()| out.flush());
            })?;
        writeln!(out)?;
        let text = reply[0]["generated_text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        history.push(json!({"role": "assistant", "content": text}));
    }
    if args.json {
        eprintln!("{}", serde_json::to_string_pretty(&history)?);
    }
    Ok(())
}
