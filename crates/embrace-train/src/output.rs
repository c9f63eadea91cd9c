//! Writing a trained model folder: `config.json` with the labels, the weights (full, or a
//! head-only file pointing at its base model), the base model's tokenizer files, and JSON
//! reports, each written atomically.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use embrace_models::{AutoConfig, Checkpoint};
use serde_json::{Value, json};

use crate::error::{Result, TrainError};

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes through a temporary file, flushed, then renamed into place.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = path.with_extension(format!("{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&temp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(io_err(path))
}

/// [`write_file`] of pretty-printed JSON.
pub(crate) fn write_json(path: &Path, value: &Value) -> Result<()> {
    write_file(
        path,
        serde_json::to_string_pretty(value)
            .unwrap_or_default()
            .as_bytes(),
    )
}

/// Writes tensors as safetensors through a temporary file and a rename.
pub(crate) fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let temp = path.with_extension("safetensors.tmp");
    candle_core::safetensors::save(tensors, &temp)?;
    std::fs::rename(&temp, path).map_err(io_err(path))
}

/// `config.json`: the base model's config for `architecture`, with the labels.
pub(crate) fn write_config(
    out: &Path,
    config: &AutoConfig,
    architecture: &str,
    labels: &[String],
    problem_type: Option<&str>,
) -> Result<()> {
    let mut cfg = config.raw.clone();
    cfg.insert("architectures".into(), json!([architecture]));
    cfg.insert(
        "id2label".into(),
        Value::Object(
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i.to_string(), json!(l)))
                .collect(),
        ),
    );
    cfg.insert(
        "label2id".into(),
        Value::Object(
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.clone(), json!(i)))
                .collect(),
        ),
    );
    if let Some(p) = problem_type {
        cfg.insert("problem_type".into(), json!(p));
    }
    write_json(&out.join("config.json"), &Value::Object(cfg))
}

/// The weights: with `head_only`, the `trained` tensors in `head.safetensors` and an
/// `embrace_head.json` naming `base_model` (the `trained_modules` listed there); otherwise the
/// full checkpoint, the base's encoder tensors (its pooler and buffers left out) under `bert.`
/// as transformers saves them, plus the trained ones.
pub(crate) fn write_weights(
    out: &Path,
    base_model: &str,
    base: &Checkpoint,
    mut trained: HashMap<String, Tensor>,
    trained_modules: &[&str],
    head_only: bool,
) -> Result<()> {
    if head_only {
        save_tensors(&trained, &out.join("head.safetensors"))?;
        return write_json(
            &out.join("embrace_head.json"),
            &json!({"base_model": base_model, "head": "head.safetensors", "trained": trained_modules}),
        );
    }
    for name in base.names() {
        if name.ends_with("position_ids") || name.contains("pooler") {
            continue;
        }
        let key = if name.starts_with("bert.") {
            name.to_owned()
        } else {
            format!("bert.{name}")
        };
        let shape = base.shape(name).unwrap_or_default().to_vec();
        trained.insert(
            key,
            Tensor::from_vec(base.read_f32(name)?, shape, &Device::Cpu)?,
        );
    }
    save_tensors(&trained, &out.join("model.safetensors"))
}

/// Copies the base model's tokenizer files.
pub(crate) fn copy_tokenizer_files(base_dir: &Path, out: &Path) -> Result<()> {
    for file in [
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
    ] {
        let src = base_dir.join(file);
        if src.is_file() {
            std::fs::copy(&src, out.join(file)).map_err(io_err(&src))?;
        }
    }
    Ok(())
}

/// Starts an empty `<out>/training_log.jsonl` (a rerun into the same folder starts over).
pub(crate) fn start_log(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let path = out.join("training_log.jsonl");
    std::fs::write(&path, b"").map_err(io_err(&path))
}

/// Appends one JSON object as a line to `<out>/training_log.jsonl` (created with the folder),
/// so a run can be followed with `tail -f` while it trains.
pub(crate) fn append_log(out: &Path, entry: &Value) -> Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let path = out.join("training_log.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    writeln!(file, "{entry}").map_err(io_err(&path))
}
