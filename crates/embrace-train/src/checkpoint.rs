//! Training checkpoints (`checkpoint-<step>/` in the output folder, as transformers' Trainer
//! names them): the trainable weights, the optimizer moments, the best weights so far, and a
//! `trainer_state.json` with the step, the position in the epoch, the shuffling generator's
//! state and the log history, so that a resumed run continues exactly where the saved one was.
//!
//! Invariant: a checkpoint folder is complete or absent. It is written under a temporary name
//! and renamed into place, so a run killed while saving leaves the previous checkpoint usable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, TrainError};
use crate::output::{io_err, save_tensors, write_json};

/// Where a run stands, as saved in `trainer_state.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainerState {
    /// Optimizer updates done.
    pub global_step: usize,
    /// The epoch being trained (0-based).
    pub epoch: usize,
    /// Micro-batches of that epoch already consumed.
    pub batches_done_in_epoch: usize,
    /// The shuffling generator's state at the start of that epoch.
    pub rng_at_epoch_start: u64,
    /// Training loss summed since the last log entry, and how many batches it covers.
    pub running_loss: f64,
    /// Batches in `running_loss`.
    pub running_batches: usize,
    /// Best validation macro-F1 so far and its epoch (1-based).
    pub best_metric: Option<f64>,
    /// The epoch of `best_metric`.
    pub best_epoch: Option<usize>,
    /// The metrics of the best epoch (JSON).
    pub best_metrics: Option<Value>,
    /// Epochs since the best one (early stopping).
    pub epochs_since_best: usize,
    /// Every logged entry so far.
    pub log_history: Vec<Value>,
}

/// Saves a checkpoint under `output/checkpoint-<step>` and prunes old ones beyond `keep`.
pub(crate) fn save(
    output: &Path,
    state: &TrainerState,
    weights: &HashMap<String, Tensor>,
    optimizer: &HashMap<String, Tensor>,
    best: Option<&HashMap<String, Tensor>>,
    keep: Option<usize>,
) -> Result<PathBuf> {
    let name = format!("checkpoint-{}", state.global_step);
    let final_dir = output.join(&name);
    let temp = output.join(format!(".{name}.tmp"));
    if temp.exists() {
        std::fs::remove_dir_all(&temp).map_err(io_err(&temp))?;
    }
    std::fs::create_dir_all(&temp).map_err(io_err(&temp))?;
    save_tensors(weights, &temp.join("model.safetensors"))?;
    save_tensors(optimizer, &temp.join("optimizer.safetensors"))?;
    if let Some(best) = best {
        save_tensors(best, &temp.join("best_model.safetensors"))?;
    }
    let state_json = serde_json::to_value(state)
        .map_err(|e| TrainError::Config(format!("cannot serialise the trainer state: {e}")))?;
    write_json(&temp.join("trainer_state.json"), &state_json)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io_err(&final_dir))?;
    }
    std::fs::rename(&temp, &final_dir).map_err(io_err(&final_dir))?;
    if let Some(keep) = keep {
        let mut all = list(output)?;
        all.sort_by_key(|(step, _)| *step);
        let excess = all.len().saturating_sub(keep.max(1));
        for (_, dir) in all.into_iter().take(excess) {
            std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        }
    }
    Ok(final_dir)
}

/// The checkpoints of an output folder, by step.
fn list(output: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let Ok(entries) = std::fs::read_dir(output) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if let Some(step) = name
            .to_str()
            .and_then(|n| n.strip_prefix("checkpoint-"))
            .and_then(|s| s.parse::<usize>().ok())
            && entry.path().join("trainer_state.json").is_file()
        {
            found.push((step, entry.path()));
        }
    }
    Ok(found)
}

/// The checkpoint to resume from: `last` means the newest in `output`.
pub(crate) fn resolve(spec: &str, output: &Path) -> Result<PathBuf> {
    if spec == "last" {
        return list(output)?
            .into_iter()
            .max_by_key(|(step, _)| *step)
            .map(|(_, dir)| dir)
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "no checkpoint-<step> folder in {} to resume from",
                    output.display()
                ))
            });
    }
    let dir = PathBuf::from(spec);
    if !dir.join("trainer_state.json").is_file() {
        return Err(TrainError::Config(format!(
            "{} is not a checkpoint (no trainer_state.json)",
            dir.display()
        )));
    }
    Ok(dir)
}

/// A loaded checkpoint.
pub(crate) struct Loaded {
    pub(crate) state: TrainerState,
    pub(crate) weights: HashMap<String, Tensor>,
    pub(crate) optimizer: HashMap<String, Tensor>,
    pub(crate) best: Option<HashMap<String, Tensor>>,
}

/// Reads a checkpoint folder.
pub(crate) fn load(dir: &Path) -> Result<Loaded> {
    let read = |name: &str| -> Result<HashMap<String, Tensor>> {
        let path = dir.join(name);
        candle_core::safetensors::load(&path, &Device::Cpu)
            .map_err(|e| TrainError::Config(format!("cannot read {}: {e}", path.display())))
    };
    let state_path = dir.join("trainer_state.json");
    let text = std::fs::read_to_string(&state_path).map_err(io_err(&state_path))?;
    let state: TrainerState = serde_json::from_str(&text)
        .map_err(|e| TrainError::Config(format!("{}: {e}", state_path.display())))?;
    let best = if dir.join("best_model.safetensors").is_file() {
        Some(read("best_model.safetensors")?)
    } else {
        None
    };
    Ok(Loaded {
        state,
        weights: read("model.safetensors")?,
        optimizer: read("optimizer.safetensors")?,
        best,
    })
}
