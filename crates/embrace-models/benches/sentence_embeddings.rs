//! all-MiniLM-L6-v2 sentence embeddings: Embrace next to sentence-transformers (PyTorch CPU).
//!
//! ```text
//! cargo bench -p embrace-models --bench sentence_embeddings [-- --threads 1,2 --quick]
//! ```
//!
//! For each thread count, two worker processes run the same scenarios on the same texts: this
//! binary in worker mode (`RAYON_NUM_THREADS`), and `tools/oracle/bench_sentence_transformers.py`
//! in the oracle venv (`torch.set_num_threads`). Scenarios: batch 1 (latency, one call per
//! sentence) and batch 32 (throughput), on short prose (~10-40 tokens, mixed lengths) and on
//! long inputs truncated to 256 tokens. Both sides include tokenization. The table reports
//! sentences per second, the latency ratio (ours / PyTorch, lower is better), the throughput
//! ratio (ours / PyTorch, higher is better) and each process's peak RSS. Without the venv only
//! Embrace's side runs.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Instant;

use embrace_assets::bench::{peak_rss_kb, prose_lines, prose_windows, repo_root, run_worker};
use embrace_models::sentence_transformers::SentenceTransformer;
use serde_json::{Value, json};

/// The benchmark texts: short prose lines and ~1400-character windows (more than 256 tokens).
fn scenarios(quick: bool) -> Value {
    let lines = prose_lines().unwrap();
    let long = prose_windows(&lines, 64, 1400);
    let short: Vec<String> = lines.iter().cycle().take(256).cloned().collect();
    let (n_short_1, n_long_1, repeat) = if quick { (16, 4, 1) } else { (64, 16, 3) };
    json!({
        "warmup": short[..8],
        "scenarios": [
            {"name": "short b1", "batch_size": 1, "texts": short[..n_short_1], "repeat": repeat},
            {"name": "short b32", "batch_size": 32, "texts": short, "repeat": repeat},
            {"name": "long b1", "batch_size": 1, "texts": long[..n_long_1], "repeat": repeat},
            {"name": "long b32", "batch_size": 32, "texts": long, "repeat": repeat},
        ]
    })
}

/// Worker mode: run the scenarios with Embrace and print the same JSON as the Python side.
fn worker(model_dir: &str, spec_path: &str) {
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(spec_path).unwrap()).unwrap();
    let model = SentenceTransformer::from_pretrained(model_dir).unwrap();
    let texts = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect()
    };
    let warm = texts(&spec["warmup"]);
    let warm: Vec<&str> = warm.iter().map(String::as_str).collect();
    model.encode(&warm, 8).unwrap();
    let mut results = serde_json::Map::new();
    for sc in spec["scenarios"].as_array().unwrap() {
        let owned = texts(&sc["texts"]);
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        let batch = sc["batch_size"].as_u64().unwrap() as usize;
        let mut best = f64::INFINITY;
        for _ in 0..sc["repeat"].as_u64().unwrap() {
            let start = Instant::now();
            if batch == 1 {
                for text in &refs {
                    std::hint::black_box(model.encode(&[text], 1).unwrap());
                }
            } else {
                std::hint::black_box(model.encode(&refs, batch).unwrap());
            }
            best = best.min(start.elapsed().as_secs_f64());
        }
        results.insert(
            sc["name"].as_str().unwrap().to_owned(),
            json!({"seconds": best, "sentences": refs.len()}),
        );
    }
    println!(
        "{}",
        json!({"scenarios": results, "peak_rss_kb": peak_rss_kb(), "max_seq_length": model.max_seq_length()})
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--worker") {
        worker(&args[i + 1], &args[i + 2]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let threads: Vec<usize> = args
        .iter()
        .position(|a| a == "--threads")
        .map(|i| args[i + 1].split(',').map(|n| n.parse().unwrap()).collect())
        .unwrap_or_else(|| vec![1, 2]);
    let model_dir = embrace_assets::require("all-minilm-l6-v2", "modules.json");
    let model_dir = model_dir.parent().unwrap().to_string_lossy().into_owned();
    let spec_path = std::env::temp_dir().join(format!("embrace-bench-{}.json", std::process::id()));
    std::fs::write(&spec_path, scenarios(quick).to_string()).unwrap();
    let venv_python = repo_root().join("tools/oracle/.venv/bin/python");
    let script = repo_root().join("tools/oracle/bench_sentence_transformers.py");
    let exe = std::env::current_exe().unwrap();

    println!("all-MiniLM-L6-v2 sentence embeddings (sentences/s; ratio = ours vs PyTorch)");
    println!(
        "{:>7} {:>10} {:>12} {:>12} {:>22}",
        "threads", "scenario", "embrace", "pytorch", "ratio"
    );
    for &n in &threads {
        let mut ours = Command::new(&exe);
        ours.args(["--worker", &model_dir, &spec_path.to_string_lossy()])
            .env("RAYON_NUM_THREADS", n.to_string());
        let ours = run_worker(ours).expect("embrace worker");
        let theirs = if venv_python.is_file() {
            let mut py = Command::new(&venv_python);
            py.arg(&script)
                .args([
                    &model_dir,
                    &spec_path.to_string_lossy().into_owned(),
                    &n.to_string(),
                ])
                .env("OMP_NUM_THREADS", n.to_string())
                .env("HF_HUB_OFFLINE", "1")
                .env("TOKENIZERS_PARALLELISM", "false");
            run_worker(py)
        } else {
            None
        };
        for name in ["short b1", "short b32", "long b1", "long b32"] {
            let rate = |v: &Value| {
                let s = &v["scenarios"][name];
                s["sentences"].as_f64().unwrap() / s["seconds"].as_f64().unwrap()
            };
            let ours_rate = rate(&ours);
            let (theirs_text, ratio) = match &theirs {
                Some(t) => {
                    let r = rate(t);
                    let ratio = if name.ends_with("b1") {
                        format!("latency x{:.2}", r / ours_rate)
                    } else {
                        format!("throughput x{:.2}", ours_rate / r)
                    };
                    (format!("{r:.1}"), ratio)
                }
                None => ("-".into(), "-".into()),
            };
            println!("{n:>7} {name:>10} {ours_rate:>12.1} {theirs_text:>12} {ratio:>22}");
        }
        let rss = |v: &Value| v["peak_rss_kb"].as_f64().unwrap() / 1024.0;
        match &theirs {
            Some(t) => println!(
                "{n:>7} {:>10} {:>10.0}MB {:>10.0}MB {:>22}",
                "peak RSS",
                rss(&ours),
                rss(t),
                format!("x{:.2}", rss(&ours) / rss(t))
            ),
            None => println!("{n:>7} {:>10} {:>10.0}MB", "peak RSS", rss(&ours)),
        }
    }
    let _ = std::fs::remove_file(&spec_path);
}
