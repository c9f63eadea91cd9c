//! One training step of the trainable BERT against PyTorch: the loss and the gradient of every
//! parameter of a tiny random `BertForSequenceClassification` (golden file written by
//! `tools/oracle/gen_train.py`).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use embrace_models::AutoConfig;
use embrace_train::autograd::{LoraSettings, TrainBatch, TrainHead, TrainableBert};

fn golden(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden")
        .join(rel)
}

#[test]
fn one_step_gradients_match_pytorch() {
    let dir = golden("models/tiny/bert-seq-cls");
    let config = AutoConfig::from_file(&dir.join("config.json")).unwrap();
    let model = TrainableBert::from_safetensors(
        &dir.join("model.safetensors"),
        config.encoder.clone(),
        TrainHead::Sequence,
        config.num_labels,
        0,
    )
    .unwrap();
    let inputs =
        candle_core::safetensors::load(dir.join("golden.safetensors"), &Device::Cpu).unwrap();
    let expected =
        candle_core::safetensors::load(golden("train/bert-seq-cls-step.safetensors"), &Device::Cpu)
            .unwrap();
    let batch = TrainBatch {
        input_ids: inputs["input_ids"].to_dtype(DType::U32).unwrap(),
        token_type_ids: inputs["token_type_ids"].to_dtype(DType::U32).unwrap(),
        attention_mask: inputs["attention_mask"].to_dtype(DType::F32).unwrap(),
    };
    let labels = expected["labels"].to_dtype(DType::U32).unwrap();
    let loss = model.loss(&batch, &labels).unwrap();
    let want_loss = expected["loss"].to_scalar::<f32>().unwrap();
    let got_loss = loss.to_scalar::<f32>().unwrap();
    assert!(
        (got_loss - want_loss).abs() < 1e-5,
        "loss {got_loss} vs {want_loss}"
    );
    let grads = loss.backward().unwrap();
    let mut checked = 0;
    let mut worst = (0f32, String::new());
    for (name, var) in model.named_vars() {
        let Some(want) = expected.get(&format!("grad.{name}")) else {
            panic!("no PyTorch gradient for {name}");
        };
        let got = grads
            .get(var)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        assert_eq!(got.dims(), want.dims(), "{name}");
        let diff = max_abs(&(got - want).unwrap());
        if diff > worst.0 {
            worst = (diff, name.to_string());
        }
        assert_relative(name, diff, want);
        checked += 1;
    }
    eprintln!(
        "{checked} gradients, max abs difference {} ({})",
        worst.0, worst.1
    );
    assert_eq!(
        checked,
        expected.len() - 2,
        "every PyTorch parameter has a gradient here"
    );
    assert!(
        worst.0 < 1e-4,
        "gradient of {} differs by {}",
        worst.1,
        worst.0
    );
}

/// The largest absolute value of a tensor.
fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The absolute bound (1e-4) alone would pass a gradient off by a factor of two when the
/// whole gradient is smaller than 1e-4 (the attention's query and key gradients of a random
/// tiny model are): each gradient must also be within 0.1% of its largest PyTorch value (plus
/// 1e-9 for gradients that are zero in exact arithmetic, such as the key bias's, which
/// PyTorch computes as rounding noise near 1e-12).
fn assert_relative(name: &str, diff: f32, want: &Tensor) {
    let largest = max_abs(want);
    eprintln!(
        "{name}: {:.2e} of {largest:.2e}",
        diff / largest.max(f32::MIN_POSITIVE)
    );
    assert!(
        diff <= 1e-3 * largest + 1e-9,
        "{name}: differs by {diff}, {:.2e} of its largest value {largest}",
        diff / largest
    );
}

#[test]
fn lora_step_gradients_match_peft() {
    lora_step_matches_peft(
        "models/tiny/bert-seq-cls",
        "train/bert-seq-cls-lora-step.safetensors",
        TrainHead::Sequence,
        DType::U32,
    );
}

/// The token head's loss leaves out tokens labelled -100 ([CLS], padding, word pieces after
/// the first), as `BertForTokenClassification` does.
#[test]
fn token_classification_lora_step_gradients_match_peft() {
    lora_step_matches_peft(
        "models/tiny/bert-token-cls",
        "train/bert-token-cls-lora-step.safetensors",
        TrainHead::Token,
        DType::I64,
    );
}

fn lora_step_matches_peft(model_dir: &str, step_file: &str, head: TrainHead, labels: DType) {
    let dir = golden(model_dir);
    let config = AutoConfig::from_file(&dir.join("config.json")).unwrap();
    let mut model = TrainableBert::from_safetensors(
        &dir.join("model.safetensors"),
        config.encoder.clone(),
        head,
        config.num_labels,
        0,
    )
    .unwrap();
    let settings = LoraSettings {
        rank: 4,
        alpha: 8.0,
        target_modules: vec!["query".into(), "value".into()],
    };
    model.add_lora(settings, 0).unwrap();
    let inputs =
        candle_core::safetensors::load(dir.join("golden.safetensors"), &Device::Cpu).unwrap();
    let expected = candle_core::safetensors::load(golden(step_file), &Device::Cpu).unwrap();
    // Start from PEFT's values (lora_B is non-zero in the golden so that lora_A gets a gradient).
    for (key, value) in &expected {
        if let Some(name) = key.strip_prefix("init.")
            && name.contains(".lora_")
        {
            model.set_lora_tensor(name, value).unwrap();
        }
    }
    let trainable: Vec<String> = model.named_vars().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        trainable.len(),
        10,
        "8 LoRA matrices and the classifier: {trainable:?}"
    );
    let batch = TrainBatch {
        input_ids: inputs["input_ids"].to_dtype(DType::U32).unwrap(),
        token_type_ids: inputs["token_type_ids"].to_dtype(DType::U32).unwrap(),
        attention_mask: inputs["attention_mask"].to_dtype(DType::F32).unwrap(),
    };
    let loss = model
        .loss(&batch, &expected["labels"].to_dtype(labels).unwrap())
        .unwrap();
    let (got, want) = (
        loss.to_scalar::<f32>().unwrap(),
        expected["loss"].to_scalar::<f32>().unwrap(),
    );
    assert!((got - want).abs() < 1e-5, "loss {got} vs {want}");
    let grads = loss.backward().unwrap();
    let mut worst = 0f32;
    for (name, var) in model.named_vars() {
        let want = &expected[&format!("grad.{name}")];
        let got = grads.get(var).unwrap();
        let diff = max_abs(&(got - want).unwrap());
        let scale = max_abs(want);
        assert!(
            scale > 0.0,
            "{name}: PyTorch gradient is zero, the test would prove nothing"
        );
        worst = worst.max(diff);
        assert!(diff < 1e-4, "{name}: {diff}");
        assert_relative(name, diff, want);
    }
    eprintln!("LoRA gradients: max abs difference {worst}");
}
