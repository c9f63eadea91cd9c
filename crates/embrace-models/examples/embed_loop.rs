//! all-MiniLM-L6-v2 embeddings in a loop, for profilers (`perf record`).
//!
//! ```text
//! cargo run --release -p embrace-models --example embed_loop -- short|long BATCH SECONDS
//! ```
//!
//! `short` embeds prose lines (~10-40 tokens), `long` ~1400-character windows (truncated to 256
//! tokens), `BATCH` at a time, for about `SECONDS`; it prints sentences per second.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use embrace_assets::bench::{prose_lines, prose_windows};
use embrace_models::sentence_transformers::SentenceTransformer;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).map_or("short", String::as_str);
    let batch: usize = args.get(2).map_or(1, |b| b.parse().unwrap());
    let seconds: f64 = args.get(3).map_or(10.0, |s| s.parse().unwrap());
    let model_dir = embrace_assets::require("all-minilm-l6-v2", "modules.json");
    let model = SentenceTransformer::from_pretrained(model_dir.parent().unwrap().to_str().unwrap())
        .unwrap();
    let lines = prose_lines().unwrap();
    let texts: Vec<String> = match kind {
        "long" => prose_windows(&lines, 64, 1400),
        _ => lines.iter().take(256).cloned().collect(),
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    model.encode(&refs[..batch.min(refs.len())], batch).unwrap();
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed().as_secs_f64() < seconds {
        for chunk in refs.chunks(batch) {
            std::hint::black_box(model.encode(chunk, batch).unwrap());
            done += chunk.len();
        }
    }
    let rate = done as f64 / start.elapsed().as_secs_f64();
    println!("{kind} batch {batch}: {rate:.1} sentences/s");
}
