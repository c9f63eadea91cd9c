//! Every pipeline task against transformers' pipeline output (`tests/golden/pipelines`, made by
//! `tools/oracle/gen_pipelines.py`): labels, order and spans exact, scores within 1e-4.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use embrace_pipelines::{Aggregation, Input, Options, Pipeline, ScoreFunction, TopK};
use serde_json::Value;

const TOLERANCE: f64 = 1e-4;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/pipelines")
}

fn model_dir(name: &str) -> PathBuf {
    match name.strip_prefix("asset:") {
        Some(asset) => embrace_assets::require(asset, "config.json")
            .parent()
            .unwrap()
            .to_owned(),
        None => golden().join("models").join(name),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
        other => panic!("not strings: {other}"),
    }
}

fn options(case: &Value) -> Options {
    let mut o = Options::default();
    let opts = case["options"].as_object().cloned().unwrap_or_default();
    for (key, value) in &opts {
        match key.as_str() {
            "top_k" => {
                o.top_k = match value {
                    Value::Null => TopK::All,
                    v => TopK::K(v.as_u64().unwrap() as usize),
                }
            }
            "function_to_apply" => {
                o.function_to_apply = Some(match value.as_str().unwrap() {
                    "softmax" => ScoreFunction::Softmax,
                    "sigmoid" => ScoreFunction::Sigmoid,
                    _ => ScoreFunction::None,
                })
            }
            "aggregation_strategy" => {
                o.aggregation_strategy = Aggregation::parse(value.as_str().unwrap()).unwrap()
            }
            "ignore_labels" => o.ignore_labels = Some(strings(value)),
            "targets" => o.targets = Some(strings(value)),
            "candidate_labels" => o.candidate_labels = strings(value),
            "hypothesis_template" => o.hypothesis_template = value.as_str().unwrap().to_owned(),
            "multi_label" => o.multi_label = value.as_bool().unwrap(),
            "max_answer_len" => o.max_answer_len = value.as_u64().unwrap() as usize,
            "handle_impossible_answer" => o.handle_impossible_answer = value.as_bool().unwrap(),
            "max_seq_len" => o.max_seq_len = Some(value.as_u64().unwrap() as usize),
            "doc_stride" => o.doc_stride = Some(value.as_u64().unwrap() as usize),
            "align_to_words" => o.align_to_words = value.as_bool().unwrap(),
            // Embrace always truncates to the model's limit (transformers fails instead).
            "truncation" => {}
            "tokenize_kwargs" => {
                o.max_length = value
                    .get("max_length")
                    .and_then(Value::as_u64)
                    .map(|n| n as usize)
            }
            other => panic!("option {other} is not mapped in this test"),
        }
    }
    if case["task"] == "feature-extraction" {
        // transformers' pipeline returns token vectors even for sentence-transformers models.
        o.sentence_embeddings = Some(false);
    }
    o
}

/// Compares JSON values: numbers within TOLERANCE, everything else exactly.
fn compare(path: &str, got: &Value, want: &Value, worst: &mut f64) -> Result<(), String> {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            let both_ints = got.is_u64() && want.is_u64();
            let diff = (a - b).abs();
            if both_ints && a != b || diff > TOLERANCE {
                return Err(format!("{path}: {a} vs {b}"));
            }
            *worst = worst.max(diff);
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err(format!("{path}: {} items vs {}", a.len(), b.len()));
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(&format!("{path}[{i}]"), x, y, worst)?;
            }
            Ok(())
        }
        (Value::Object(a), Value::Object(b)) => {
            let mut ka: Vec<&String> = a.keys().collect();
            let mut kb: Vec<&String> = b.keys().collect();
            ka.sort();
            kb.sort();
            if ka != kb {
                return Err(format!("{path}: keys {ka:?} vs {kb:?}"));
            }
            for k in ka {
                compare(&format!("{path}.{k}"), &a[k], &b[k], worst)?;
            }
            Ok(())
        }
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{path}: {a} vs {b}")),
    }
}

#[test]
fn every_task_matches_transformers_pipelines() {
    let text = std::fs::read_to_string(golden().join("cases.jsonl")).unwrap();
    let cases: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(cases.len() >= 90, "{} cases", cases.len());
    let mut failures = Vec::new();
    let mut worst = 0.0f64;
    let mut per_task: HashMap<String, usize> = HashMap::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let task = case["task"].as_str().unwrap();
        let pipeline = Pipeline::builder(task)
            .model(model_dir(case["model"].as_str().unwrap()).to_string_lossy())
            .options(options(case))
            .build()
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let inputs = &case["inputs"];
        let got = match inputs {
            Value::Array(items) => {
                let parsed: Vec<Input> =
                    items.iter().map(|i| Input::from_json(i).unwrap()).collect();
                let outs = pipeline
                    .run_many(&parsed)
                    .unwrap_or_else(|e| panic!("{id}: {e}"));
                // fill-mask returns a list of one input's predictions unwrapped.
                if task == "fill-mask" && outs.len() == 1 {
                    outs.into_iter().next().unwrap()
                } else {
                    Value::Array(outs)
                }
            }
            single => pipeline
                .run(&Input::from_json(single).unwrap())
                .unwrap_or_else(|e| panic!("{id}: {e}")),
        };
        match compare(id, &got, &case["output"], &mut worst) {
            Ok(()) => *per_task.entry(task.to_owned()).or_default() += 1,
            Err(e) => failures.push(format!("{e}\n   got:  {got}\n   want: {}", case["output"])),
        }
    }
    eprintln!("matched per task: {per_task:?}; worst score difference {worst:.2e}");
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn trace_reports_truncation_empty_inputs_and_validates_output() {
    let pipeline = Pipeline::builder("sentiment-analysis")
        .model(golden().join("models/bert-cls").to_string_lossy())
        .build()
        .unwrap();
    let long = "the movie ".repeat(60);
    let inputs = [
        Input::text("I love this movie"),
        Input::text(""),
        Input::text(long),
    ];
    let output = pipeline.run_traced(&inputs).unwrap();
    assert_eq!(output.values.len(), 3);
    let card = output.trace().to_json();
    assert_eq!(card["request"]["task"], "text-classification");
    assert_eq!(card["inputs"]["truncated"], serde_json::json!([2]));
    assert_eq!(card["inputs"]["empty"], serde_json::json!([1]));
    assert_eq!(card["inputs"]["tokens"]["max"], 64);
    assert_eq!(card["output_validation"]["status"], "ok");
    let checks = card["checks"].as_array().unwrap();
    let status = |name: &str| checks.iter().find(|c| c["check"] == name).unwrap()["status"].clone();
    assert_eq!(status("truncation"), "warn");
    assert_eq!(status("empty_input"), "warn");
    assert_eq!(status("label_mapping"), "ok");
    assert!(
        card["next_action"]
            .as_str()
            .unwrap()
            .contains("split long inputs")
    );
    assert!(output.trace().ok());
    for key in ["tokenize", "forward", "postprocess", "total"] {
        assert!(card["timing_ms"][key].as_f64().unwrap() >= 0.0);
    }
}

#[test]
fn run_iter_streams_in_input_order() {
    let pipeline = Pipeline::builder("text-classification")
        .model(golden().join("models/bert-cls").to_string_lossy())
        .build()
        .unwrap();
    let texts = [
        "great movie",
        "bad food",
        "john went to paris",
        "mary",
        "the end",
    ];
    let all = pipeline
        .run_many(&texts.iter().map(|t| Input::text(*t)).collect::<Vec<_>>())
        .unwrap();
    let streamed: Vec<Value> = pipeline
        .run_iter(texts.iter().map(|t| Input::text(*t)), 2)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(streamed, all);
}
