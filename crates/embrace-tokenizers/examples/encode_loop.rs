//! A profiling harness: encode a corpus in a loop with one tokenizer, nothing else, so that
//! `perf record` sees only embrace. Prints MB/s and the allocations per text in the loop
//! (allocations and reallocations, counted by a wrapper around the system allocator).
//!
//! `cargo run --release -p embrace-tokenizers --example encode_loop -- <tokenizer.json> <text file> [ids|full|batch] [seconds]`
//! (`batch`: ids of all lines in one parallel call, on rayon's threads).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The system allocator, counting allocations: the harness reports allocations per text, since
/// in a long-running process with a fragmented heap each one costs far more than here.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; the counter has no effect on the memory handed out.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as this function's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as this function's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as this function's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
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
    let per_text = (ALLOCATIONS.load(Ordering::Relaxed) - allocations) as f64
        / (rounds * docs.len()).max(1) as f64;
    println!(
        "{mode}: {mbps:.2} MB/s over {rounds} rounds of {bytes} bytes, {per_text:.2} allocations per text"
    );
    Ok(())
}
