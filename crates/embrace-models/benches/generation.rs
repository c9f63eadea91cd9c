//! GGUF text generation: Embrace next to llama.cpp (through llama-cpp-python) on the same files.
//!
//! ```text
//! tools/llamacpp/setup            # once: builds llama.cpp from the llama-cpp-python sdist
//! cargo bench -p embrace-models --bench generation [-- --threads 1,2 --models smollm2,gemma3 --runs 3]
//! ```
//!
//! For each model and thread count, one worker process per engine, one after the other:
//! prompt processing (a 128-token prompt in one pass; one warm-up, then the best of `--runs`,
//! default 3: more runs filter a noisy machine's slow phases) and decode (64 greedy steps after
//! that prompt, one token at a time; best of `--runs`), both in tokens per
//! second, and each process's peak RSS. Both engines spin-wait between threads, so numbers
//! for more than one thread only mean something on an otherwise idle machine. The prompt is the same English text on both sides, cut
//! to 128 tokens by each engine's own tokenizer (the same vocabulary). Without
//! `tools/llamacpp/.venv` only Embrace's side runs.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Instant;

use embrace_assets::bench::{peak_rss_kb, repo_root, run_worker};
use embrace_models::causal::{gguf_tokenizer, load_causal_lm};
use embrace_models::generation::Decoding;
use serde_json::{Value, json};

const TEXT: &str = "The quick brown fox jumps over the lazy dog while the sun sets slowly behind the distant hills, and the villagers gather in the square to tell old stories about the river. ";

fn model_file(name: &str) -> std::path::PathBuf {
    match name {
        "smollm2" => embrace_assets::require(
            "smollm2-135m-instruct-q4_1",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        "gemma3" => embrace_assets::require("gemma3-270m-q4_k_m", "gemma-3-270m-q4_k_m.gguf"),
        other => panic!("unknown model {other} (smollm2, gemma3)"),
    }
}

fn worker(name: &str, threads: usize, runs: usize) {
    // Threads come from RAYON_NUM_THREADS / CANDLE_NUM_THREADS, set by the parent: the GGUF
    // kernels run on candle's spinning barrier pool, which they size.
    let path = model_file(name);
    let started = Instant::now();
    let lm = load_causal_lm(path.to_str().unwrap()).unwrap();
    let load_s = started.elapsed().as_secs_f64();
    let tokenizer = gguf_tokenizer(lm.gguf.as_ref().unwrap()).unwrap();
    let mut ids = tokenizer.encode_ids(&TEXT.repeat(20), true).unwrap();
    ids.truncate(128);
    let model = &lm.model;
    let pp = || {
        let t = Instant::now();
        let (state, logits) = model.prefill(&ids).unwrap();
        (t.elapsed().as_secs_f64(), state, logits)
    };
    pp();
    let pp_best = (0..runs).map(|_| pp().0).fold(f64::INFINITY, f64::min);
    let tg = || {
        let (_, mut state, mut logits) = pp();
        let t = Instant::now();
        for _ in 0..64 {
            let next = logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i as u32)
                .unwrap();
            logits = model.step(&mut state, next).unwrap();
        }
        t.elapsed().as_secs_f64()
    };
    let tg_best = (0..runs).map(|_| tg()).fold(f64::INFINITY, f64::min);
    println!(
        "{}",
        json!({"model": name, "n_threads": threads, "load_s": load_s,
               "pp_tok_s": ids.len() as f64 / pp_best, "tg_tok_s": 64.0 / tg_best,
               "peak_rss_mib": peak_rss_kb() as f64 / 1024.0})
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .map_or(3, |i| args[i + 1].parse().expect("--runs takes a number"))
        .max(1);
    if let Some(i) = args.iter().position(|a| a == "--worker") {
        worker(&args[i + 1], args[i + 2].parse().unwrap(), runs);
        return;
    }
    let list = |flag: &str, default: &str| -> Vec<String> {
        args.iter()
            .position(|a| a == flag)
            .map_or(default, |i| args[i + 1].as_str())
            .split(',')
            .map(str::to_owned)
            .collect()
    };
    let threads = list("--threads", "1,2");
    let models = list("--models", "smollm2,gemma3");
    let python = repo_root().join("tools/llamacpp/.venv/bin/python");
    let script = repo_root().join("tools/llamacpp/bench.py");
    let exe = std::env::current_exe().unwrap();
    println!("GGUF generation, tokens/s (ratio = Embrace / llama.cpp; peak RSS in MiB)");
    println!(
        "{:>8} {:>3} {:>22} {:>22} {:>16}",
        "model", "thr", "prompt (128)", "decode (64)", "peak RSS"
    );
    for model in &models {
        for n in &threads {
            let mut ours = Command::new(&exe);
            ours.args(["--worker", model, n, "--runs", &runs.to_string()])
                .env("RAYON_NUM_THREADS", n)
                .env("CANDLE_NUM_THREADS", n);
            let ours = run_worker(ours).expect("embrace worker");
            let theirs: Option<Value> = if python.is_file() {
                let mut py = Command::new(&python);
                py.arg(&script)
                    .args(["--worker", model, n, "--runs", &runs.to_string()]);
                run_worker(py)
            } else {
                None
            };
            let cell = |key: &str| -> String {
                let a = ours[key].as_f64().unwrap_or(0.0);
                match theirs.as_ref().and_then(|t| t[key].as_f64()) {
                    Some(b) => format!("{a:.0} vs {b:.0} ({:.2}x)", a / b),
                    None => format!("{a:.0}"),
                }
            };
            println!(
                "{:>8} {:>3} {:>22} {:>22} {:>16}",
                model,
                n,
                cell("pp_tok_s"),
                cell("tg_tok_s"),
                cell("peak_rss_mib")
            );
        }
    }
}
