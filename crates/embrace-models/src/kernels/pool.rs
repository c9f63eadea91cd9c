//! Data-parallel loops on candle's barrier pool.
//!
//! The decode loop of a language model runs hundreds of small steps per token. candle's barrier
//! pool suits them: its workers spin for a while between calls (waking sleeping threads would
//! cost more than a step), the calling thread works too, and candle's own operations use the
//! same threads, so no two pools compete for the cores. With `CANDLE_NUM_THREADS=1` (or one
//! core) everything runs on the caller.

use std::sync::Mutex;

/// Threads that share the work: the pool's workers and the caller.
pub(crate) fn threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// Calls `f(start, chunk)` for every `chunk_len`-long chunk of `data` (the last may be
/// shorter; `start` is the index of its first item), spread over the pool's threads.
/// `chunk_len` must be positive.
pub(crate) fn for_each_chunk_mut<T: Send>(
    data: &mut [T],
    chunk_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    assert!(chunk_len > 0, "chunks must not be empty");
    let pool = candle_core::utils::barrier_pool();
    if pool.n_workers() == 0 || data.len() <= chunk_len {
        data.chunks_mut(chunk_len)
            .enumerate()
            .for_each(|(i, c)| f(i * chunk_len, c));
        return;
    }
    let chunks: Vec<Mutex<&mut [T]>> = data.chunks_mut(chunk_len).map(Mutex::new).collect();
    pool.execute_chunked(chunks.len(), |range| {
        for i in range {
            // Each index is handed out once, so its lock is never contended.
            let mut chunk = chunks[i].lock().unwrap_or_else(|e| e.into_inner());
            f(i * chunk_len, &mut chunk);
        }
    });
}

/// A chunk length for `items` items: four chunks per thread (enough for the threads to balance
/// their load), but at least `min` items.
pub(crate) fn chunk_len(items: usize, min: usize) -> usize {
    items.div_ceil(threads() * 4).max(min).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_is_visited_once() {
        let mut data = vec![0u32; 1000];
        for_each_chunk_mut(&mut data, 7, |start, c| {
            for (k, v) in c.iter_mut().enumerate() {
                *v += (start + k) as u32;
            }
        });
        assert!(data.iter().enumerate().all(|(i, &v)| v == i as u32));
    }
}
