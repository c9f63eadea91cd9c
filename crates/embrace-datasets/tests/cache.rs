//! The transform cache: a repeated chain loads from the cache, a corrupt entry is detected and
//! recomputed (never returned), disabled caching always computes, cleanup removes entries.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;

use embrace_datasets::{Dataset, TransformCache};
use serde_json::json;

fn data() -> Dataset {
    let rows: Vec<_> = (0..50)
        .map(|i| json!({"i": i, "text": format!("t{i}")}))
        .collect();
    Dataset::from_json_rows(&rows).unwrap()
}

#[test]
fn repeated_transforms_come_from_the_cache_and_corruption_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TransformCache::new(dir.path());
    let runs = Cell::new(0);
    let even = |d: &Dataset| {
        runs.set(runs.get() + 1);
        d.filter(|row| row["i"].as_i64().unwrap() % 2 == 0)
    };
    let first = cache.apply(&data(), "filter(even)", even).unwrap();
    let second = cache.apply(&data(), "filter(even)", even).unwrap();
    assert_eq!(runs.get(), 1, "the second run loads from the cache");
    assert_eq!(first.num_rows(), 25);
    assert_eq!(first.rows(0, 25).unwrap(), second.rows(0, 25).unwrap());
    assert_eq!(first.fingerprint(), second.fingerprint());
    // Another description is another entry.
    cache.apply(&data(), "filter(even, v2)", even).unwrap();
    assert_eq!(runs.get(), 2);

    // Flip one byte in the middle of the data file: detected, recomputed, right result.
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "arrow"))
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&file, &bytes).unwrap();
    let before = runs.get();
    let third = cache.apply(&data(), "filter(even)", even).unwrap();
    let fourth = cache.apply(&data(), "filter(even, v2)", even).unwrap();
    assert_eq!(
        runs.get(),
        before + 1,
        "exactly the corrupted entry was recomputed"
    );
    assert_eq!(third.rows(0, 25).unwrap(), first.rows(0, 25).unwrap());
    assert_eq!(fourth.num_rows(), 25);
    // A truncated file too.
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let fifth = cache.apply(&data(), "filter(even)", even).unwrap();
    assert_eq!(fifth.rows(0, 25).unwrap(), first.rows(0, 25).unwrap());

    assert!(cache.cleanup().unwrap() >= 4);
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn disabled_cache_always_computes() {
    let cache = TransformCache::disabled();
    let runs = Cell::new(0);
    for _ in 0..2 {
        cache
            .apply(&data(), "take(3)", |d| {
                runs.set(runs.get() + 1);
                d.take(3)
            })
            .unwrap();
    }
    assert_eq!(runs.get(), 2);
    assert_eq!(cache.cleanup().unwrap(), 0);
}
