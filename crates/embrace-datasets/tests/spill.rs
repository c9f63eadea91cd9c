//! Results spilled to memory-mapped files equal results kept in memory, and leave no files.
//!
//! This binary sets the process-wide in-memory limit, so it holds a single test.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use arrow::array::{Array, AsArray, BooleanArray};
use embrace_datasets::{Dataset, Loaded, load_from_disk, read_csv, read_parquet};
use serde_json::Value;

/// The pipeline's result at each step, as JSON rows.
fn run_pipeline(csv: &Path, out: &Path) -> Vec<Vec<Value>> {
    let tok_dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/pipelines/models/bert-cls");
    let tokenizer = embrace_tokenizers::Tokenizer::from_path(&tok_dir).unwrap();
    let all = |d: &Dataset| d.rows(0, d.num_rows()).unwrap();
    let mut steps = Vec::new();
    let ds = read_csv(csv, b',').unwrap();
    steps.push(all(&ds));
    let ds = ds.tokenize(&tokenizer, "text").unwrap();
    steps.push(all(&ds));
    let ds = ds
        .filter_batches("at least 6 tokens", |b| {
            let ids = b.column_by_name("input_ids").unwrap().as_list::<i32>();
            Ok((0..ids.len())
                .map(|i| Some(ids.value_length(i) >= 6))
                .collect::<BooleanArray>())
        })
        .unwrap();
    steps.push(all(&ds));
    let ds = ds.shuffle(7).unwrap();
    steps.push(all(&ds));
    let (train, test) = ds.train_test_split(0.25, Some(3)).unwrap();
    steps.push(all(&train));
    steps.push(all(&test));
    let labels = train
        .select_columns(&["label", "text"])
        .unwrap()
        .class_encode_column("label")
        .unwrap();
    steps.push(all(&labels));
    let both = Dataset::concatenate(&[&train, &test]).unwrap();
    steps.push(all(&both));
    train.to_parquet(&out.join("train.parquet")).unwrap();
    steps.push(all(&read_parquet(&out.join("train.parquet")).unwrap()));
    train.save_to_disk(&out.join("saved")).unwrap();
    let Loaded::Dataset(saved) = load_from_disk(&out.join("saved")).unwrap() else {
        panic!("a dataset was saved")
    };
    steps.push(all(&saved));
    steps
}

#[test]
fn spilled_results_equal_in_memory_results_and_leave_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    let words = [
        "alpha", "beta", "gamma", "delta", "paris", "john", "went", "to",
    ];
    let mut text = String::from("text,label\n");
    for i in 0..3000usize {
        let n = 1 + i % 11;
        let sentence: Vec<&str> = (0..n)
            .map(|k| words[(i * 7 + k * 3) % words.len()])
            .collect();
        text.push_str(&format!(
            "\"{} \"\"{i}\"\"\",{}\n",
            sentence.join(" "),
            ["pos", "neg", "neu"][i % 3]
        ));
    }
    std::fs::write(&csv, text).unwrap();

    let (memory_out, spill_out) = (dir.path().join("memory"), dir.path().join("spill"));
    std::fs::create_dir_all(&memory_out).unwrap();
    std::fs::create_dir_all(&spill_out).unwrap();
    embrace_datasets::set_in_memory_max_size(usize::MAX);
    let in_memory = run_pipeline(&csv, &memory_out);
    // Every non-empty result now goes through a spill file.
    embrace_datasets::set_in_memory_max_size(0);
    let spilled = run_pipeline(&csv, &spill_out);
    assert_eq!(in_memory.len(), spilled.len());
    for (step, (a, b)) in in_memory.iter().zip(&spilled).enumerate() {
        assert!(!a.is_empty(), "step {step} has rows");
        assert_eq!(a, b, "step {step} differs when spilled");
    }

    // Spill files are unlinked as soon as they are mapped.
    let spill_dir = std::env::var_os("EMBRACE_DATASETS_SPILL_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            embrace_datasets::TransformCache::from_env()
                .dir()
                .map(|d| d.join("spill"))
        })
        .unwrap_or_else(std::env::temp_dir);
    assert!(spill_dir.is_dir(), "results were spilled to {spill_dir:?}");
    let prefix = format!("spill-{}-", std::process::id());
    let left: Vec<String> = std::fs::read_dir(&spill_dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "spill files left behind: {left:?}");
}
