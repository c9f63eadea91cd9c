//! Compatibility with HuggingFace `datasets` (goldens from `tools/oracle/gen_datasets.py`) and
//! the behaviour of loaders and transforms.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field};
use embrace_datasets::{Dataset, DatasetDict, Feature, Loaded, load_file, load_from_disk};
use serde_json::{Value, json};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/datasets")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(golden().join("saved.rows.json")).unwrap())
        .unwrap()
}

fn single(dir: &Path) -> Dataset {
    match load_from_disk(dir).unwrap() {
        Loaded::Dataset(d) => d,
        Loaded::Dict(_) => panic!("expected a dataset"),
    }
}

#[test]
fn reads_what_python_datasets_saved() {
    let ds = single(&golden().join("saved"));
    let want = expected();
    assert_eq!(Value::Array(ds.rows(0, 100).unwrap()), want["rows"]);
    assert_eq!(ds.features().to_json(), want["features"]);
    assert!(matches!(ds.features().get("label"), Some(Feature::ClassLabel(n)) if n.len() == 3));
    assert_eq!(ds.fingerprint().len(), 16);

    let Loaded::Dict(dict) = load_from_disk(&golden().join("dict")).unwrap() else {
        panic!("a dict")
    };
    assert_eq!(dict.splits(), vec!["train", "test"]);
    let (train, test) = (dict.get("train").unwrap(), dict.get("test").unwrap());
    assert_eq!((train.num_rows(), test.num_rows()), (3, 2));
    let mut all: Vec<String> = train
        .rows(0, 9)
        .unwrap()
        .iter()
        .chain(test.rows(0, 9).unwrap().iter())
        .map(|r| r.to_string())
        .collect();
    let mut want_rows: Vec<String> = want["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    all.sort();
    want_rows.sort();
    assert_eq!(all, want_rows);

    let parquet = load_file(&golden().join("table.parquet")).unwrap();
    assert_eq!(Value::Array(parquet.rows(0, 100).unwrap()), want["rows"]);
    assert_eq!(parquet.features().to_json(), want["features"]);
}

#[test]
fn save_to_disk_round_trips_in_the_datasets_layout() {
    let ds = single(&golden().join("saved"));
    let dir = tempfile::tempdir().unwrap();
    ds.save_to_disk(dir.path()).unwrap();
    for file in [
        "data-00000-of-00001.arrow",
        "dataset_info.json",
        "state.json",
    ] {
        assert!(dir.path().join(file).is_file(), "{file}");
    }
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["_data_files"],
        json!([{"filename": "data-00000-of-00001.arrow"}])
    );
    let info: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dataset_info.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(info["features"], expected()["features"]);
    let again = single(dir.path());
    assert_eq!(again.rows(0, 100).unwrap(), ds.rows(0, 100).unwrap());
    assert_eq!(again.features(), ds.features());
    // The schema metadata holds the features the way datasets writes it.
    let meta: Value = serde_json::from_str(&again.schema().metadata()["huggingface"]).unwrap();
    assert_eq!(meta["info"]["features"], expected()["features"]);

    let (train, test) = ds.train_test_split(0.4, Some(7)).unwrap();
    let dict = DatasetDict(vec![("train".into(), train), ("test".into(), test)]);
    let dict_dir = tempfile::tempdir().unwrap();
    dict.save_to_disk(dict_dir.path()).unwrap();
    let Loaded::Dict(back) = load_from_disk(dict_dir.path()).unwrap() else {
        panic!("a dict")
    };
    assert_eq!(back.splits(), vec!["train", "test"]);
    assert_eq!(back.get("test").unwrap().num_rows(), 2);

    let pq = dir.path().join("t.parquet");
    ds.to_parquet(&pq).unwrap();
    let from_pq = load_file(&pq).unwrap();
    assert_eq!(from_pq.rows(0, 100).unwrap(), ds.rows(0, 100).unwrap());
    assert_eq!(from_pq.features(), ds.features());
}

#[test]
fn transforms_are_deterministic_and_correct() {
    let ds = single(&golden().join("saved"));
    let a = ds.shuffle(42).unwrap();
    let b = ds.shuffle(42).unwrap();
    assert_eq!(a.rows(0, 9).unwrap(), b.rows(0, 9).unwrap());
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.fingerprint(), ds.shuffle(43).unwrap().fingerprint());
    assert_eq!(a.num_rows(), 5);

    let (train, test) = ds.train_test_split(0.2, Some(1)).unwrap();
    assert_eq!((train.num_rows(), test.num_rows()), (4, 1));
    assert!(ds.train_test_split(0.0, None).is_err());
    assert!(ds.train_test_split(5.0, None).is_err());

    let positive = ds.filter(|row| row["label"] == json!(2)).unwrap();
    assert_eq!(positive.num_rows(), 1);
    assert_eq!(positive.rows(0, 1).unwrap()[0]["text"], "I love it");

    let renamed = ds.rename_column("text", "sentence").unwrap();
    assert_eq!(renamed.column_names()[0], "sentence");
    assert!(ds.rename_column("text", "label").is_err());
    let slim = ds.remove_columns(&["ids", "meta"]).unwrap();
    assert_eq!(
        slim.column_names(),
        vec!["text", "label", "score", "n", "flag"]
    );
    assert!(
        ds.select_columns(&["nope"])
            .unwrap_err()
            .to_string()
            .contains("columns: text")
    );
    assert_eq!(ds.take(2).unwrap().num_rows(), 2);
    assert_eq!(ds.skip(4).unwrap().rows(0, 1).unwrap()[0]["n"], 50);
    assert_eq!(
        ds.unique("label").unwrap(),
        vec![json!(2), json!(1), json!(0)]
    );

    let doubled = ds
        .map_batches("double_n", |batch| {
            let n = batch
                .column_by_name("n")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            let twice: Int64Array = n.iter().map(|v| v.map(|x| x * 2)).collect();
            let mut fields: Vec<Field> = batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.push(Field::new("n2", DataType::Int64, true));
            let mut cols = batch.columns().to_vec();
            cols.push(Arc::new(twice));
            Ok(
                RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), cols)
                    .unwrap(),
            )
        })
        .unwrap();
    assert_eq!(doubled.rows(0, 1).unwrap()[0]["n2"], 20);
    assert!(matches!(
        doubled.features().get("label"),
        Some(Feature::ClassLabel(_))
    ));
}

#[test]
fn loaders_read_csv_json_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    std::fs::write(
        &csv,
        "sentiment,text\npositive,good day\nnegative,bad day\npositive,\"great, really\"\n",
    )
    .unwrap();
    let ds = load_file(&csv)
        .unwrap()
        .class_encode_column("sentiment")
        .unwrap();
    assert_eq!(ds.num_rows(), 3);
    assert_eq!(
        ds.features().get("sentiment"),
        Some(&Feature::ClassLabel(vec![
            "negative".into(),
            "positive".into()
        ]))
    );
    assert_eq!(
        ds.rows(0, 3).unwrap()[2],
        json!({"sentiment": 1, "text": "great, really"})
    );

    let jsonl = dir.path().join("t.jsonl");
    std::fs::write(
        &jsonl,
        "{\"a\": 1, \"b\": \"x\"}\n{\"a\": 2, \"b\": null}\n",
    )
    .unwrap();
    assert_eq!(
        load_file(&jsonl).unwrap().rows(0, 2).unwrap()[1],
        json!({"a": 2, "b": null})
    );
    let array = dir.path().join("t.json");
    std::fs::write(&array, "[{\"a\": 1}, {\"a\": 3}]").unwrap();
    assert_eq!(load_file(&array).unwrap().num_rows(), 2);

    let txt = dir.path().join("t.txt");
    std::fs::write(&txt, "line one\nline two\n").unwrap();
    let text = load_file(&txt).unwrap();
    assert_eq!(text.column_names(), vec!["text"]);
    assert_eq!(text.num_rows(), 2);

    let out = dir.path().join("out.jsonl");
    ds.to_json(&out).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 3);
    let out_csv = dir.path().join("out.csv");
    ds.to_csv(&out_csv).unwrap();
    assert!(
        std::fs::read_to_string(&out_csv)
            .unwrap()
            .starts_with("sentiment,text\n")
    );
}

#[test]
fn bad_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        load_from_disk(dir.path())
            .unwrap_err()
            .to_string()
            .contains("not a saved dataset")
    );
    // A truncated or corrupted arrow shard.
    let saved = golden().join("saved");
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for f in [
        "state.json",
        "dataset_info.json",
        "data-00000-of-00001.arrow",
    ] {
        std::fs::copy(saved.join(f), copy.join(f)).unwrap();
    }
    let data = std::fs::read(saved.join("data-00000-of-00001.arrow")).unwrap();
    for cut in (0..data.len()).step_by(37) {
        std::fs::write(copy.join("data-00000-of-00001.arrow"), &data[..cut]).unwrap();
        let _ = load_from_disk(&copy); // an error or a shorter table, never a panic
    }
    // state.json pointing outside the folder.
    std::fs::write(
        copy.join("state.json"),
        r#"{"_data_files": [{"filename": "../../etc/passwd"}]}"#,
    )
    .unwrap();
    assert!(
        load_from_disk(&copy)
            .unwrap_err()
            .to_string()
            .contains("invalid data file")
    );
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, [0xff, 0xfe, b'\n', 0x00]).unwrap();
    let _ = load_file(&bad);
    assert!(
        load_file(&dir.path().join("x.xlsx"))
            .unwrap_err()
            .to_string()
            .contains("unknown format")
    );
    let text = dir.path().join("bad.txt");
    std::fs::write(&text, b"ok\n\xff\xfe\n").unwrap();
    assert!(load_file(&text).unwrap_err().to_string().contains("line 2"));
}

#[test]
fn stratified_split_concatenate_and_interleave() {
    let rows: Vec<Value> = (0..100)
        .map(|i| json!({"id": i, "label": if i % 4 == 0 { "rare" } else { "common" }}))
        .collect();
    let ds = Dataset::from_json_rows(&rows).unwrap();
    let (train, test) = ds.train_test_split_stratified(0.2, 3, "label").unwrap();
    assert_eq!((train.num_rows(), test.num_rows()), (80, 20));
    let rare = |d: &Dataset| {
        d.rows(0, 100)
            .unwrap()
            .iter()
            .filter(|r| r["label"] == "rare")
            .count()
    };
    assert_eq!((rare(&train), rare(&test)), (20, 5));
    let again = ds.train_test_split_stratified(0.2, 3, "label").unwrap();
    assert_eq!(again.1.rows(0, 20).unwrap(), test.rows(0, 20).unwrap());
    let mut ids: Vec<i64> = train
        .rows(0, 100)
        .unwrap()
        .iter()
        .chain(test.rows(0, 100).unwrap().iter())
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, (0..100).collect::<Vec<_>>());

    let both = Dataset::concatenate(&[&train, &test]).unwrap();
    assert_eq!(both.num_rows(), 100);
    let mixed = Dataset::interleave(&[&ds.take(3).unwrap(), &ds.skip(98).unwrap()]).unwrap();
    let got: Vec<i64> = mixed
        .rows(0, 10)
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![0, 98, 1, 99]);
    let other = ds.select_columns(&["id"]).unwrap();
    assert!(Dataset::concatenate(&[&ds, &other]).is_err());
}

#[test]
fn tokenize_adds_model_input_columns() {
    let tok_dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/pipelines/models/bert-cls");
    let tokenizer = embrace_tokenizers::Tokenizer::from_path(&tok_dir).unwrap();
    let rows: Vec<Value> = ["john went to paris", "mary", ""]
        .iter()
        .map(|t| json!({"text": t, "label": 1}))
        .collect();
    let ds = Dataset::from_json_rows(&rows).unwrap();
    let tokenized = ds.tokenize(&tokenizer, "text").unwrap();
    assert_eq!(
        tokenized.column_names(),
        vec![
            "text",
            "label",
            "input_ids",
            "token_type_ids",
            "attention_mask"
        ]
    );
    let first = &tokenized.rows(0, 1).unwrap()[0];
    let want: Vec<u32> = tokenizer
        .encode("john went to paris", None, true)
        .unwrap()
        .ids()
        .to_vec();
    assert_eq!(first["input_ids"], json!(want));
    assert_eq!(
        tokenized.features().get("attention_mask"),
        Some(&Feature::List(Box::new(Feature::Value("int8".into()))))
    );
    assert_eq!(
        tokenized.features().get("input_ids"),
        Some(&Feature::List(Box::new(Feature::Value("int32".into()))))
    );
    // The tokenized dataset saves and loads like any other.
    let dir = tempfile::tempdir().unwrap();
    tokenized.save_to_disk(dir.path()).unwrap();
    assert_eq!(
        single(dir.path()).rows(0, 3).unwrap(),
        tokenized.rows(0, 3).unwrap()
    );
    assert!(ds.tokenize(&tokenizer, "missing").is_err());
}
