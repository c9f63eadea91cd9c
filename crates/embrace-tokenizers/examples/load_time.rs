//! Times loading a tokenizer file: `cargo run --release -p embrace-tokenizers --example load_time -- <tokenizer.json> [runs]`.
//! Prints the fastest and the median of `runs` loads (default 15) in milliseconds.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or("usage: load_time <tokenizer.json> [runs]")?;
    let runs: usize = args.get(1).map_or(Ok(15), |s| s.parse())?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let tokenizer = embrace_tokenizers::Tokenizer::from_path(path)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        drop(tokenizer);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "load {path}: fastest {:.1} ms, median {:.1} ms ({} runs)",
        times[0],
        times[times.len() / 2],
        times.len()
    );
    Ok(())
}
