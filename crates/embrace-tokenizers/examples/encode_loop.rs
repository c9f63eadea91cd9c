//! A profiling harness: encode a corpus in a loop with one tokenizer, nothing else, so that
//! `perf record` sees only embrace. Prints MB/s.
//!
//! `cargo run --release -p embrace-tokenizers --example encode_loop -- <tokenizer.json> <text file> [ids|full|batch] [seconds]`
//! (`batch`: ids of all lines in one parallel call, on rayon's threads).

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [tokenizer, corpus, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: encode_loop <tokenizer.json> <text file> [ids|full|batch] [seconds]".into(),
        );
    };
    let mode = rest.first().map_or("ids", String::as_str);
    let seconds: f64 = rest.get(1).map_or(Ok(5.0), |s| s.parse())?;
    let load = Instant::now();
    let mut t = embrace_tokenizers::Tokenizer::from_path(tokenizer)?;
    println!("load: {:.1} ms", load.elapsed().as_secs_f64() * 1e3);
    t.with_truncation(None)?;
    t.with_padding(None);
    let text = std::fs::read_to_string(corpus)?;
    let docs: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let bytes: usize = docs.iter().map(|d| d.len()).sum();
    let start = Instant::now();
    let mut rounds = 0;
    while start.elapsed().as_secs_f64() < seconds {
        if mode == "batch" {
            std::hint::black_box(t.encode_ids_batch(&docs, true)?);
        }
        for d in docs.iter().filter(|_| mode != "batch") {
            if mode == "full" {
                std::hint::black_box(t.encode(d, None, true)?);
            } else {
                std::hint::black_box(t.encode_ids(d, true)?);
            }
        }
        rounds += 1;
    }
    let mbps = (bytes * rounds) as f64 / 1e6 / start.elapsed().as_secs_f64();
    println!("{mode}: {mbps:.2} MB/s over {rounds} rounds of {bytes} bytes");
    Ok(())
}
