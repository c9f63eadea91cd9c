//! Fine-tuning a tiny BERT end to end, fully and with LoRA: the loss falls, a separable task is
//! learnt, and the outputs have the layout `transformers` / `peft` load.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use embrace_datasets::Dataset;
use embrace_train::autograd::LoraSettings;
use embrace_train::{
    Adaptation, TextClassificationJob, TrainingArguments, fine_tune_text_classification,
};
use serde_json::json;

fn base() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/pipelines/models/bert-cls")
        .display()
        .to_string()
}

fn toy(n: usize, offset: usize) -> Dataset {
    let good = ["good", "great", "love", "happy"];
    let bad = ["bad", "sad", "not good", "not happy"];
    let rows: Vec<_> = (0..n)
        .map(|i| {
            let j = i + offset;
            let positive = j.is_multiple_of(2);
            let word = if positive { good[j / 2 % 4] } else { bad[j / 2 % 4] };
            json!({ "text": format!("this movie is very {word}"), "label": if positive { "pos" } else { "neg" } })
        })
        .collect();
    Dataset::from_json_rows(&rows)
        .unwrap()
        .class_encode_column("label")
        .unwrap()
}

fn job(out: &std::path::Path) -> TextClassificationJob {
    let args = TrainingArguments {
        num_train_epochs: 8,
        per_device_train_batch_size: 8,
        learning_rate: 5e-3,
        logging_steps: 4,
        max_length: 32,
        ..TrainingArguments::default()
    };
    TextClassificationJob {
        base_model: base(),
        train: toy(64, 0),
        validation: Some(toy(16, 1)),
        test: Some(toy(16, 3)),
        text_column: "text".into(),
        label_column: "label".into(),
        args,
        output_dir: out.to_path_buf(),
        head_only: false,
        dataset_name: Some("toy".into()),
    }
}

fn losses(log: &[serde_json::Value]) -> Vec<f64> {
    log.iter().filter_map(|e| e["loss"].as_f64()).collect()
}

#[test]
fn full_fine_tuning_learns_and_writes_a_transformers_folder() {
    let out = tempfile::tempdir().unwrap();
    let report = fine_tune_text_classification(&job(out.path()), &Adaptation::Full).unwrap();
    let l = losses(&report.log_history);
    assert!(
        l.last().unwrap() < &(l[0] * 0.5),
        "loss did not fall: {l:?}"
    );
    assert!(
        report.test.as_ref().unwrap().accuracy >= 0.9,
        "{:?}",
        report.test
    );
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "README.md",
        "trainer_state.json",
        "training_log.jsonl",
    ] {
        assert!(out.path().join(file).is_file(), "{file}");
    }
    let tensors = candle_core::safetensors::load(
        out.path().join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert!(tensors.contains_key("bert.encoder.layer.0.attention.self.query.weight"));
    assert!(tensors.contains_key("classifier.weight"));
}

#[test]
fn lora_fine_tuning_writes_a_peft_adapter() {
    let out = tempfile::tempdir().unwrap();
    let mut j = job(out.path());
    j.args.learning_rate = 2e-2;
    let lora = LoraSettings {
        rank: 4,
        alpha: 8.0,
        target_modules: vec!["query".into(), "value".into()],
    };
    let report = fine_tune_text_classification(&j, &Adaptation::Lora(lora)).unwrap();
    let l = losses(&report.log_history);
    assert!(
        l.last().unwrap() < &(l[0] * 0.7),
        "loss did not fall: {l:?}"
    );
    assert!(
        report.test.as_ref().unwrap().accuracy >= 0.8,
        "{:?}",
        report.test
    );
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 4);
    let adapter = candle_core::safetensors::load(
        out.path().join("adapter_model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    // PEFT's key layout: base_model.model.<transformers name>, LoRA matrices and the classifier only.
    assert!(
        adapter.contains_key(
            "base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight"
        )
    );
    assert!(adapter.contains_key("base_model.model.classifier.weight"));
    assert_eq!(adapter.len(), 2 * 2 * 2 + 2);
    assert!(
        !out.path().join("model.safetensors").exists(),
        "an adapter folder carries no base weights"
    );
}

/// Inference loads a trained adapter folder: the LoRA update merged into the base encoder, the
/// trained classifier and the job's labels.
#[test]
fn trained_lora_adapter_loads_for_inference() {
    use embrace_models::{Batch, Model, Task};
    let out = tempfile::tempdir().unwrap();
    let mut j = job(out.path());
    j.args.num_train_epochs = 2;
    j.args.learning_rate = 2e-2;
    let lora = LoraSettings {
        rank: 4,
        alpha: 8.0,
        target_modules: vec!["query".into(), "value".into()],
    };
    fine_tune_text_classification(&j, &Adaptation::Lora(lora)).unwrap();
    let merged =
        Model::from_pretrained(out.path().to_str().unwrap(), Task::SequenceClassification).unwrap();
    let base = Model::from_pretrained(base(), Task::SequenceClassification).unwrap();
    let seqs: Vec<&[u32]> = vec![&[2, 40, 50, 60, 3], &[2, 70, 3]];
    let batch = Batch::from_sequences(&seqs, None, 0).unwrap();
    let out = merged.forward(&batch).unwrap();
    assert_eq!(out.logits.unwrap().dims(), &[2, 2]);
    let a = out.last_hidden_state;
    let b = base.forward(&batch).unwrap().last_hidden_state;
    let moved = (&a - &b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        moved > 1e-4,
        "the merged LoRA update changed nothing in the encoder"
    );
    assert_eq!(
        merged.config().id2label.get(&0).map(String::as_str),
        Some("neg")
    );
}

/// An adapter written by Python `peft` (golden folder) loads with its LoRA update merged: the
/// loss on the golden batch equals PEFT's.
#[test]
fn python_peft_adapter_loads_and_matches_peft() {
    use embrace_models::{Batch, Model, Task};
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden");
    let tiny = golden.join("models/tiny/bert-seq-cls");
    let dir = tempfile::tempdir().unwrap();
    for file in ["adapter_model.safetensors", "adapter_config.json"] {
        std::fs::copy(
            golden.join("train/peft-adapter").join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    // The folder names its base by the path it had where it was made: point it at ours.
    let config_path = dir.path().join("adapter_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["base_model_name_or_path"] = json!(tiny.display().to_string());
    std::fs::write(&config_path, config.to_string()).unwrap();
    std::fs::copy(tiny.join("config.json"), dir.path().join("config.json")).unwrap();
    let model =
        Model::from_pretrained(dir.path().to_str().unwrap(), Task::SequenceClassification).unwrap();

    let inputs =
        candle_core::safetensors::load(tiny.join("golden.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    let step = candle_core::safetensors::load(
        golden.join("train/bert-seq-cls-lora-step.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let ids = inputs["input_ids"]
        .to_dtype(candle_core::DType::U32)
        .unwrap()
        .to_vec2::<u32>()
        .unwrap();
    let mask = inputs["attention_mask"].to_vec2::<i64>().unwrap();
    let types = inputs["token_type_ids"]
        .to_dtype(candle_core::DType::U32)
        .unwrap()
        .to_vec2::<u32>()
        .unwrap();
    let lens: Vec<usize> = mask
        .iter()
        .map(|m| m.iter().filter(|&&v| v == 1).count())
        .collect();
    let seqs: Vec<&[u32]> = ids.iter().zip(&lens).map(|(s, &l)| &s[..l]).collect();
    let type_seqs: Vec<&[u32]> = types.iter().zip(&lens).map(|(s, &l)| &s[..l]).collect();
    let batch = Batch::from_sequences(&seqs, Some(&type_seqs), 0).unwrap();
    let logits = model.forward(&batch).unwrap().logits.unwrap();
    let labels = step["labels"].to_dtype(candle_core::DType::U32).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &labels)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let want = step["loss"].to_scalar::<f32>().unwrap();
    assert!(
        (loss - want).abs() < 1e-5,
        "loss with the merged PEFT adapter {loss}, PEFT {want}"
    );
}

#[test]
fn early_stopping_ends_training_when_validation_stalls() {
    let out = tempfile::tempdir().unwrap();
    let mut j = job(out.path());
    j.args.num_train_epochs = 30;
    j.args.early_stopping_patience = Some(2);
    j.args.lr_scheduler_type = embrace_train::SchedulerType::Cosine;
    let report = fine_tune_text_classification(&j, &Adaptation::Full).unwrap();
    let stop = report
        .log_history
        .iter()
        .find_map(|e| e["early_stopping"]["epoch"].as_u64());
    let stopped_at = stop.expect("the toy task saturates long before 30 epochs");
    let best = report
        .log_history
        .iter()
        .find_map(|e| e["best_epoch"].as_u64())
        .unwrap();
    assert_eq!(stopped_at, best + 2, "stops two epochs after the best one");
}

/// The trainable weights of an output folder.
fn weights(
    dir: &std::path::Path,
    file: &str,
) -> std::collections::HashMap<String, candle_core::Tensor> {
    candle_core::safetensors::load(dir.join(file), &candle_core::Device::Cpu).unwrap()
}

#[test]
fn resuming_a_killed_run_reaches_the_same_weights() {
    // 64 examples, batch 8, accumulation 2: 4 updates per epoch, 3 epochs; checkpoints every 3.
    let configure = |out: &std::path::Path| {
        let mut j = job(out);
        j.args.num_train_epochs = 3;
        j.args.gradient_accumulation_steps = 2;
        j.args.save_steps = Some(3);
        j.args.save_total_limit = Some(2);
        // Dropout before the classifier: its masks must repeat after resuming.
        j.args.dropout = Some(0.2);
        j
    };
    let straight = tempfile::tempdir().unwrap();
    let full =
        fine_tune_text_classification(&configure(straight.path()), &Adaptation::Full).unwrap();

    // The same run, "killed" after update 7 (checkpoints 3 and 6 exist; 7 is lost), then resumed.
    let broken = tempfile::tempdir().unwrap();
    let mut killed = configure(broken.path());
    killed.args.interrupt_after_steps = Some(7);
    let e = fine_tune_text_classification(&killed, &Adaptation::Full).unwrap_err();
    assert!(e.to_string().contains("interrupted after step 7"), "{e}");
    assert!(
        broken
            .path()
            .join("checkpoint-6/optimizer.safetensors")
            .is_file()
    );
    assert!(broken.path().join("checkpoint-3").is_dir());
    let mut resumed = configure(broken.path());
    resumed.args.resume_from_checkpoint = Some("last".into());
    let again = fine_tune_text_classification(&resumed, &Adaptation::Full).unwrap();

    let (a, b) = (
        weights(straight.path(), "model.safetensors"),
        weights(broken.path(), "model.safetensors"),
    );
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        let diff = (t - &b[name])
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap();
        assert_eq!(
            diff.to_scalar::<f32>().unwrap(),
            0.0,
            "{name} differs after resuming"
        );
    }
    assert_eq!(full.test, again.test);
    assert_eq!(losses(&full.log_history), losses(&again.log_history));
    // save_total_limit 2 keeps the two newest checkpoints (9 and 12 after the resumed run).
    let mut kept: Vec<String> = std::fs::read_dir(broken.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("checkpoint-"))
        .collect();
    kept.sort();
    assert_eq!(kept, ["checkpoint-12", "checkpoint-9"]);
    // A bad checkpoint path is a clear error before training.
    let mut bad = configure(broken.path());
    bad.args.resume_from_checkpoint = Some(broken.path().join("nope").display().to_string());
    let e = fine_tune_text_classification(&bad, &Adaptation::Full).unwrap_err();
    assert!(e.to_string().contains("not a checkpoint"), "{e}");
}

/// A toy NER set in the tiny tokenizer's vocabulary: names (B-PER, I-PER) and cities (B-LOC)
/// in three sentence shapes.
fn tagged(n: usize, offset: usize) -> Vec<embrace_train::TaggedSentence> {
    let names = ["john", "mary"];
    let cities = ["paris", "london"];
    (0..n)
        .map(|i| {
            let j = i + offset;
            let (name, city) = (names[j % 2], cities[j / 2 % 2]);
            let (words, tags): (Vec<&str>, Vec<usize>) = match j % 3 {
                0 => (vec![name, "smith", "went", "to", city], vec![1, 2, 0, 0, 3]),
                1 => (vec!["this", "is", city], vec![0, 0, 3]),
                _ => (vec![name, "is", "very", "happy"], vec![1, 0, 0, 0]),
            };
            embrace_train::TaggedSentence {
                words: words.into_iter().map(String::from).collect(),
                tags,
            }
        })
        .collect()
}

fn ner_job(out: &std::path::Path) -> embrace_train::TokenClassificationJob {
    embrace_train::TokenClassificationJob {
        base_model: base(),
        labels: ["O", "B-PER", "I-PER", "B-LOC"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        train: tagged(48, 0),
        validation: tagged(12, 1),
        test: tagged(12, 2),
        args: TrainingArguments {
            num_train_epochs: 6,
            per_device_train_batch_size: 8,
            learning_rate: 2e-2,
            logging_steps: 3,
            max_length: 32,
            ..TrainingArguments::default()
        },
        output_dir: out.to_path_buf(),
        head_only: false,
        dataset_name: Some("toy-ner".into()),
    }
}

/// Predicted tags of the first sub-token of every word, from a model folder loaded for
/// inference (as `embrace pipeline ner` loads it).
fn inference_tags(dir: &std::path::Path, words: &[&str]) -> Vec<String> {
    use embrace_models::{Batch, Model, Task};
    let model = Model::from_pretrained(dir.to_str().unwrap(), Task::TokenClassification).unwrap();
    let tokenizer = embrace_tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let encoding = tokenizer
        .encode_char_offsets(&words.join(" "), None, true)
        .unwrap();
    let batch = Batch::from_encodings(std::slice::from_ref(&encoding), 0).unwrap();
    let logits = model.forward(&batch).unwrap().logits.unwrap();
    let best = logits
        .argmax(candle_core::D::Minus1)
        .unwrap()
        .to_vec2::<u32>()
        .unwrap();
    // Every word of these sentences is one token: tokens 1..=n after [CLS].
    assert_eq!(encoding.len(), words.len() + 2);
    (1..=words.len())
        .map(|t| model.config().label(best[0][t] as usize).to_string())
        .collect()
}

#[test]
fn lora_token_classification_writes_a_token_cls_adapter_that_tags_words() {
    use embrace_train::fine_tune_token_classification;
    let out = tempfile::tempdir().unwrap();
    let lora = LoraSettings {
        rank: 4,
        alpha: 8.0,
        target_modules: vec!["query".into(), "value".into()],
    };
    let report =
        fine_tune_token_classification(&ner_job(out.path()), &Adaptation::Lora(lora)).unwrap();
    let l = losses(&report.log_history);
    assert!(
        l.last().unwrap() < &(l[0] * 0.5),
        "loss did not fall: {l:?}"
    );
    assert!(report.test.f1 > 0.95, "{:?}", report.test);
    assert!(report.log_history.iter().any(|e| e["eval_f1"].is_number()));
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["task_type"], "TOKEN_CLS");
    let adapter = weights(out.path(), "adapter_model.safetensors");
    assert_eq!(
        adapter["base_model.model.classifier.weight"].dims(),
        &[4, 32]
    );
    assert_eq!(adapter.len(), 2 * 2 * 2 + 2);
    let model_config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        model_config["architectures"][0],
        "BertForTokenClassification"
    );
    assert_eq!(
        inference_tags(out.path(), &["mary", "smith", "went", "to", "london"]),
        ["B-PER", "I-PER", "O", "O", "B-LOC"]
    );
}

#[test]
fn full_token_classification_writes_a_model_without_pooler() {
    use embrace_train::fine_tune_token_classification;
    let out = tempfile::tempdir().unwrap();
    let mut job = ner_job(out.path());
    job.args.learning_rate = 5e-3;
    job.args.dropout = Some(0.1);
    let report = fine_tune_token_classification(&job, &Adaptation::Full).unwrap();
    assert!(report.test.f1 > 0.95, "{:?}", report.test);
    let tensors = weights(out.path(), "model.safetensors");
    assert!(tensors.contains_key("bert.encoder.layer.0.attention.self.query.weight"));
    assert!(
        !tensors.keys().any(|k| k.contains("pooler")),
        "BertForTokenClassification has no pooler"
    );
    assert_eq!(
        inference_tags(out.path(), &["this", "is", "paris"]),
        ["O", "O", "B-LOC"]
    );
}

#[test]
fn token_classification_rejects_bad_jobs_before_training() {
    use embrace_train::fine_tune_token_classification;
    let out = tempfile::tempdir().unwrap();
    let mut job = ner_job(out.path());
    job.train.clear();
    let e = fine_tune_token_classification(&job, &Adaptation::Full).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let mut job = ner_job(out.path());
    job.train[3].tags[0] = 9;
    let e = fine_tune_token_classification(&job, &Adaptation::Full).unwrap_err();
    assert!(e.to_string().contains("outside the 4 labels"), "{e}");
    let mut job = ner_job(out.path());
    job.args.max_length = 100_000;
    let e = fine_tune_token_classification(&job, &Adaptation::Full).unwrap_err();
    assert!(e.to_string().contains("positions"), "{e}");
    assert!(!out.path().join("config.json").exists());
}
