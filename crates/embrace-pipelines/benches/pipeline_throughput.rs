//! Many inputs through a pipeline: Embrace next to `transformers.pipeline` (PyTorch CPU).
//!
//! ```text
//! cargo bench -p embrace-pipelines --bench pipeline_throughput [-- --inputs 10000 --threads 1,2]
//! ```
//!
//! fill-mask with SPLADE-tiny (top 5) over prose lines with one word masked (or, with `--task
//! text-classification --model DIR`, a classifier over the plain lines), the same file for both
//! sides, streamed (Embrace: `Pipeline::run_iter` in chunks; transformers: a generator with
//! `batch_size`). Both run in their own process (this binary in worker mode, and
//! `tools/oracle/bench_pipelines.py` in the oracle venv) and report wall time and peak RSS.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Instant;

use embrace_assets::bench::{peak_rss_kb, prose_lines, repo_root, run_worker};
use embrace_pipelines::{Input, Options, Pipeline, TopK};
use serde_json::{Value, json};

const BATCH: usize = 32;

/// `n` prose lines, with their third word replaced by `[MASK]` when `mask`.
fn inputs(n: usize, mask: bool) -> Vec<String> {
    let lines = prose_lines().unwrap();
    (0..n)
        .map(|i| {
            let mut words: Vec<&str> = lines[i % lines.len()].split_whitespace().collect();
            let at = 2 + (i / lines.len()) % (words.len() - 2);
            if mask {
                words[at] = "[MASK]";
            }
            words.join(" ")
        })
        .collect()
}

fn worker(task: &str, model: &str, path: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.split('\n').collect();
    let options = Options {
        top_k: if task == "fill-mask" {
            TopK::K(5)
        } else {
            TopK::Default
        },
        ..Options::default()
    };
    let pipeline = Pipeline::builder(task)
        .model(model)
        .batch_size(BATCH)
        .options(options)
        .build()
        .unwrap();
    pipeline
        .run_many(
            &lines[..8]
                .iter()
                .map(|l| Input::text(*l))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let start = Instant::now();
    let mut count = 0;
    for out in pipeline.run_iter(lines.iter().map(|l| Input::text(*l)), BATCH * 16) {
        std::hint::black_box(out.unwrap());
        count += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"seconds": seconds, "inputs": count, "peak_rss_kb": peak_rss_kb()})
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--worker") {
        worker(&args[i + 1], &args[i + 2], &args[i + 3]);
        return;
    }
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let n: usize = arg("--inputs").map_or(10_000, |v| v.parse().unwrap());
    let threads: Vec<usize> = arg("--threads").map_or(vec![1, 2], |v| {
        v.split(',').map(|t| t.parse().unwrap()).collect()
    });
    let task = arg("--task").unwrap_or_else(|| "fill-mask".into());
    let model = match arg("--model") {
        Some(m) => m,
        None => embrace_assets::require("splade-tiny", "config.json")
            .parent()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
    };
    let path =
        std::env::temp_dir().join(format!("embrace-pipeline-bench-{}.txt", std::process::id()));
    std::fs::write(&path, inputs(n, task == "fill-mask").join("\n")).unwrap();
    let python = repo_root().join("tools/oracle/.venv/bin/python");
    let script = repo_root().join("tools/oracle/bench_pipelines.py");
    let exe = std::env::current_exe().unwrap();
    println!("{task}, {model}, {n} inputs, batch {BATCH} (inputs/s; ratio = ours / transformers)");
    println!(
        "{:>7} {:>12} {:>14} {:>8} {:>22}",
        "threads", "embrace", "transformers", "ratio", "peak RSS (ours/theirs)"
    );
    for t in threads {
        let mut ours = Command::new(&exe);
        ours.args(["--worker", &task, &model, &path.to_string_lossy()])
            .env("RAYON_NUM_THREADS", t.to_string());
        let ours = run_worker(ours).expect("embrace worker");
        let theirs = python.is_file().then(|| {
            let mut py = Command::new(&python);
            py.arg(&script)
                .args([
                    task.as_str(),
                    &model,
                    &path.to_string_lossy(),
                    &t.to_string(),
                    &BATCH.to_string(),
                ])
                .args((task == "fill-mask").then_some("5"))
                .env("OMP_NUM_THREADS", t.to_string())
                .env("HF_HUB_OFFLINE", "1")
                .env("TOKENIZERS_PARALLELISM", "false");
            run_worker(py)
        });
        let rate = |v: &Value| v["inputs"].as_f64().unwrap() / v["seconds"].as_f64().unwrap();
        let rss = |v: &Value| v["peak_rss_kb"].as_f64().unwrap() / 1024.0;
        match theirs.flatten() {
            Some(th) => println!(
                "{t:>7} {:>12.0} {:>14.0} {:>7.2}x {:>14.0}MB/{:.0}MB",
                rate(&ours),
                rate(&th),
                rate(&ours) / rate(&th),
                rss(&ours),
                rss(&th)
            ),
            None => println!(
                "{t:>7} {:>12.0} {:>14} {:>8} {:>14.0}MB",
                rate(&ours),
                "-",
                "-",
                rss(&ours)
            ),
        }
    }
    let _ = std::fs::remove_file(&path);
}
