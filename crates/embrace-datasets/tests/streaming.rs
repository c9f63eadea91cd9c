//! Streaming datasets: lazy transforms over files, bounded memory, and resuming from a saved
//! position gives the same rows as an uninterrupted pass.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use embrace_datasets::{Dataset, IterableDataset};
use serde_json::{Value, json};

/// Three files in three formats with rows `i` = 0..n in order.
fn files(dir: &std::path::Path, n: usize) -> Vec<PathBuf> {
    let rows: Vec<Value> = (0..n)
        .map(|i| json!({"i": i, "text": format!("row {i}")}))
        .collect();
    let third = n / 3;
    let csv = dir.join("a.csv");
    Dataset::from_json_rows(&rows[..third])
        .unwrap()
        .to_csv(&csv)
        .unwrap();
    let jsonl = dir.join("b.jsonl");
    Dataset::from_json_rows(&rows[third..2 * third])
        .unwrap()
        .to_json(&jsonl)
        .unwrap();
    let parquet = dir.join("c.parquet");
    Dataset::from_json_rows(&rows[2 * third..])
        .unwrap()
        .to_parquet(&parquet)
        .unwrap();
    vec![csv, jsonl, parquet]
}

fn ids(
    rows: impl Iterator<Item = embrace_datasets::Result<embrace_datasets::Example>>,
) -> Vec<u64> {
    rows.map(|r| r.unwrap()["i"].as_u64().unwrap()).collect()
}

#[test]
fn rows_stream_through_transforms_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ds = IterableDataset::from_files(&files(dir.path(), 3000)).unwrap();
    assert_eq!(ids(ds.iter().unwrap()), (0..3000).collect::<Vec<_>>());
    let ds = ds
        .map(|mut row| {
            let i = row["i"].as_u64().unwrap();
            row.insert("double".into(), json!(i * 2));
            Ok(row)
        })
        .filter(|row| row["i"].as_u64().unwrap() % 3 == 0)
        .skip(10)
        .take(25);
    let rows: Vec<_> = ds.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 25);
    assert_eq!(rows[0]["i"], 30);
    assert_eq!(rows[0]["double"], 60);
    assert_eq!(rows[24]["i"], 102);
    let batches: Vec<_> = ds.iter().unwrap().batches(10).map(Result::unwrap).collect();
    assert_eq!(
        batches.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 10, 5]
    );
}

#[test]
fn shuffle_is_seeded_and_a_permutation() {
    let dir = tempfile::tempdir().unwrap();
    let ds = IterableDataset::from_files(&files(dir.path(), 3000)).unwrap();
    let a = ids(ds.clone().shuffle(7, 100).iter().unwrap());
    let b = ids(ds.clone().shuffle(7, 100).iter().unwrap());
    let c = ids(ds.clone().shuffle(8, 100).iter().unwrap());
    assert_eq!(a, b, "same seed, same order");
    assert_ne!(a, c);
    assert_ne!(a, (0..3000).collect::<Vec<_>>());
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..3000).collect::<Vec<_>>(),
        "every row exactly once"
    );
}

#[test]
fn resuming_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let ds = IterableDataset::from_files(&files(dir.path(), 3000))
        .unwrap()
        .shuffle(3, 64)
        .filter(|row| row["i"].as_u64().unwrap() % 5 != 0)
        .skip(7)
        .take(2000);
    let all = ids(ds.iter().unwrap());
    assert_eq!(all.len(), 2000);
    for cut in [0, 1, 700, 1023, 1999, 2000] {
        let mut it = ds.iter().unwrap();
        let first: Vec<u64> = it
            .by_ref()
            .take(cut)
            .map(|r| r.unwrap()["i"].as_u64().unwrap())
            .collect();
        // The state survives a JSON round trip (as it would through a checkpoint file).
        let state: Value = serde_json::from_str(&it.state_dict().to_string()).unwrap();
        let rest = ids(ds.iter_from(&state).unwrap());
        assert_eq!([first, rest].concat(), all, "cut at {cut}");
    }
}

#[test]
fn bad_inputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = IterableDataset::from_files(&[dir.path().join("x.xlsx")]).unwrap_err();
    assert!(e.to_string().contains("cannot stream"), "{e}");
    let e = IterableDataset::from_files(&[dir.path().join("missing.csv")]).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"i\": 1}\nnot json\n").unwrap();
    let ds = IterableDataset::from_files(&[bad]).unwrap();
    assert!(ds.iter().unwrap().any(|r| r.is_err()));
    let ds = IterableDataset::from_files(&files(dir.path(), 30))
        .unwrap()
        .take(3);
    let e = ds.iter_from(&json!({"file": 0})).err().unwrap();
    assert!(e.to_string().contains("invalid stream state"), "{e}");
}
