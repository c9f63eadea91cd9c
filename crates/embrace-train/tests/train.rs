//! Training end to end on a tiny BERT: outputs load, runs are reproducible, head-only folders
//! equal full ones.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use embrace_datasets::Dataset;
use embrace_models::{Batch, Model, Task};
use embrace_train::{TextClassificationJob, TrainingArguments, train_text_classification};
use serde_json::json;

fn tiny_base() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/pipelines/models/bert-base")
        .to_string_lossy()
        .into_owned()
}

fn toy() -> Dataset {
    let pos = ["good", "great", "love", "nice", "happy"];
    let neg = ["bad", "awful", "hate", "terrible", "sad"];
    let rows: Vec<serde_json::Value> = (0..200)
        .map(|i| {
            let (label, words) = if i % 2 == 0 {
                ("pos", &pos)
            } else {
                ("neg", &neg)
            };
            json!({"text": format!("the movie was {} today", words[i % 5]), "label": label})
        })
        .collect();
    Dataset::from_json_rows(&rows)
        .unwrap()
        .class_encode_column("label")
        .unwrap()
}

fn job(output: PathBuf, head_only: bool) -> TextClassificationJob {
    let (train, validation) = toy().train_test_split(0.2, Some(1)).unwrap();
    TextClassificationJob {
        base_model: tiny_base(),
        train,
        validation: Some(validation.clone()),
        test: Some(validation),
        text_column: "text".into(),
        label_column: "label".into(),
        args: TrainingArguments {
            num_train_epochs: 4,
            per_device_train_batch_size: 16,
            learning_rate: 5e-3,
            logging_steps: 5,
            ..TrainingArguments::default()
        },
        output_dir: output,
        head_only,
        dataset_name: Some("toy".into()),
    }
}

fn logits(dir: &Path) -> Vec<f32> {
    let model =
        Model::from_pretrained(dir.to_string_lossy(), Task::SequenceClassification).unwrap();
    let batch = Batch::from_sequences(&[&[2, 30, 40, 50, 3], &[2, 60, 3]], None, 0).unwrap();
    model
        .forward(&batch)
        .unwrap()
        .logits
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn trains_reproducibly_and_writes_loadable_models() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let report = train_text_classification(&job(a.path().join("m"), false)).unwrap();
    assert_eq!(report.labels, vec!["neg", "pos"]);
    let first_loss = report
        .log_history
        .iter()
        .find_map(|e| e["loss"].as_f64())
        .unwrap();
    let last_loss = report
        .log_history
        .iter()
        .rev()
        .find_map(|e| e["loss"].as_f64())
        .unwrap();
    assert!(last_loss < first_loss, "loss {first_loss} -> {last_loss}");
    assert!(report.validation.as_ref().unwrap().accuracy > 0.5);
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "README.md",
        "trainer_state.json",
        "eval_results.json",
    ] {
        assert!(a.path().join("m").join(file).is_file(), "{file}");
    }
    let card = std::fs::read_to_string(a.path().join("m/README.md")).unwrap();
    assert!(card.starts_with("---\nbase_model:") && card.contains("model-index"));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.path().join("m/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["id2label"], json!({"0": "neg", "1": "pos"}));

    // Same seed, same model.
    let again = train_text_classification(&job(b.path().join("m"), false)).unwrap();
    assert_eq!(again.log_history, report.log_history);
    assert_eq!(logits(&a.path().join("m")), logits(&b.path().join("m")));

    // A head-only folder loads through its base model and equals the full one.
    let h = tempfile::tempdir().unwrap();
    train_text_classification(&job(h.path().join("m"), true)).unwrap();
    assert!(h.path().join("m/head.safetensors").is_file());
    assert!(!h.path().join("m/model.safetensors").exists());
    let size = std::fs::metadata(h.path().join("m/head.safetensors"))
        .unwrap()
        .len();
    assert!(size < 20_000, "head is {size} bytes");
    assert_eq!(logits(&h.path().join("m")), logits(&a.path().join("m")));
}

#[test]
fn misconfigured_jobs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path().join("m"), false);
    j.label_column = "nope".into();
    assert!(
        train_text_classification(&j)
            .unwrap_err()
            .to_string()
            .contains("nope")
    );
    let mut j = job(dir.path().join("m"), false);
    j.text_column = "missing".into();
    assert!(
        train_text_classification(&j)
            .unwrap_err()
            .to_string()
            .contains("missing")
    );
    let mut j = job(dir.path().join("m"), false);
    j.args.num_train_epochs = 0;
    assert!(train_text_classification(&j).is_err());
}

#[test]
fn balanced_class_weights_change_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    // On imbalanced data (1 positive in 6) the weighted run trains differently.
    let rows: Vec<serde_json::Value> = (0..120)
        .map(|i| json!({"text": format!("the movie was {} today", if i % 6 == 0 { "great" } else { "bad" }), "label": if i % 6 == 0 { "pos" } else { "neg" }}))
        .collect();
    let skewed = Dataset::from_json_rows(&rows)
        .unwrap()
        .class_encode_column("label")
        .unwrap();
    let mut a = job(dir.path().join("c"), true);
    a.train = skewed.clone();
    let mut b = a.clone();
    b.output_dir = dir.path().join("d");
    b.args.balanced_class_weights = true;
    let (ra, rb) = (
        train_text_classification(&a).unwrap(),
        train_text_classification(&b).unwrap(),
    );
    assert_ne!(ra.log_history, rb.log_history);
}

#[test]
fn token_classification_trains_and_loads_as_a_ner_model() {
    use embrace_train::{TaggedSentence, TokenClassificationJob, train_token_classification};
    let labels: Vec<String> = ["O", "B-PER", "I-PER", "B-LOC"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let sentences: Vec<TaggedSentence> = (0..60)
        .map(|i| TaggedSentence {
            words: vec![
                "john".into(),
                "smith".into(),
                "went".into(),
                "to".into(),
                if i % 2 == 0 {
                    "paris".into()
                } else {
                    "london".into()
                },
            ],
            tags: vec![1, 2, 0, 0, 3],
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let job = TokenClassificationJob {
        base_model: tiny_base(),
        labels,
        train: sentences[..40].to_vec(),
        validation: sentences[40..50].to_vec(),
        test: sentences[50..].to_vec(),
        args: TrainingArguments {
            num_train_epochs: 15,
            per_device_train_batch_size: 32,
            learning_rate: 1e-2,
            ..TrainingArguments::default()
        },
        output_dir: dir.path().join("ner"),
        head_only: true,
        dataset_name: None,
    };
    let report = train_token_classification(&job).unwrap();
    assert!(report.test.f1 > 0.5, "{:?}", report.test);
    let model = Model::from_pretrained(
        dir.path().join("ner").to_string_lossy(),
        Task::TokenClassification,
    )
    .unwrap();
    assert_eq!(model.config().label(1), "B-PER");
}
