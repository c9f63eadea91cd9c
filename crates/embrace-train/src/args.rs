//! `TrainingArguments`: the settings of a training run, named as in `transformers`.

use serde::{Deserialize, Serialize};

/// Settings of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingArguments {
    /// Passes over the training data.
    pub num_train_epochs: usize,
    /// Examples per optimisation step.
    pub per_device_train_batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// AdamW weight decay (not applied to biases).
    pub weight_decay: f64,
    /// AdamW betas and epsilon.
    pub adam_beta1: f64,
    /// AdamW beta 2.
    pub adam_beta2: f64,
    /// AdamW epsilon.
    pub adam_epsilon: f64,
    /// Fraction of the steps spent warming the learning rate up linearly (then linear decay).
    pub warmup_ratio: f64,
    /// Gradient-norm clipping threshold (0 = none).
    pub max_grad_norm: f64,
    /// Seed of initialisation, shuffling and dropout: the same seed gives the same model.
    pub seed: u64,
    /// Tokens per example (longer ones are truncated).
    pub max_length: usize,
    /// Log the training loss every this many steps.
    pub logging_steps: usize,
    /// Dropout before the classifier (the model's `hidden_dropout_prob` by default).
    pub dropout: Option<f64>,
    /// Weight the loss of each class by `n / (classes * count)` so that rare classes count as
    /// much as frequent ones (scikit-learn's `class_weight="balanced"`; PyTorch's weighted
    /// cross-entropy).
    #[serde(default)]
    pub balanced_class_weights: bool,
    /// The learning-rate schedule after the warm-up (`lr_scheduler_type`).
    #[serde(default)]
    pub lr_scheduler_type: SchedulerType,
    /// Stop when the validation macro-F1 has not improved for this many epochs
    /// (`EarlyStoppingCallback(early_stopping_patience=…)`); the best epoch is kept either way.
    #[serde(default)]
    pub early_stopping_patience: Option<usize>,
    /// Micro-batches whose gradients are summed (each loss divided by this) before one
    /// optimizer update: the effective batch is this times the batch size.
    #[serde(default = "one")]
    pub gradient_accumulation_steps: usize,
    /// Save a checkpoint (`checkpoint-<step>/`) every this many optimizer updates.
    #[serde(default)]
    pub save_steps: Option<usize>,
    /// Keep at most this many checkpoints (the oldest are deleted).
    #[serde(default)]
    pub save_total_limit: Option<usize>,
    /// Resume from this checkpoint folder, or `last` for the newest one in the output folder.
    #[serde(default)]
    pub resume_from_checkpoint: Option<String>,
    /// Stop (with [`crate::TrainError::Interrupted`]) after this many updates, as if the
    /// process had been killed there; for tests of resuming.
    #[doc(hidden)]
    #[serde(skip)]
    pub interrupt_after_steps: Option<usize>,
}

fn one() -> usize {
    1
}

/// Learning-rate schedules, named as `transformers`' `SchedulerType`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerType {
    /// Linear decay to 0 after the warm-up.
    #[default]
    Linear,
    /// Half a cosine from the peak down to 0 after the warm-up.
    Cosine,
    /// The peak rate after the warm-up (`constant_with_warmup`).
    #[serde(alias = "constant_with_warmup")]
    Constant,
}

impl SchedulerType {
    /// Parses `linear`, `cosine` or `constant` / `constant_with_warmup`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "linear" => Some(Self::Linear),
            "cosine" => Some(Self::Cosine),
            "constant" | "constant_with_warmup" => Some(Self::Constant),
            _ => None,
        }
    }
}

impl Default for TrainingArguments {
    fn default() -> Self {
        Self {
            num_train_epochs: 3,
            per_device_train_batch_size: 32,
            learning_rate: 1e-3,
            weight_decay: 0.01,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            warmup_ratio: 0.06,
            max_grad_norm: 1.0,
            seed: 42,
            max_length: 128,
            logging_steps: 50,
            dropout: None,
            balanced_class_weights: false,
            lr_scheduler_type: SchedulerType::Linear,
            early_stopping_patience: None,
            gradient_accumulation_steps: 1,
            save_steps: None,
            save_total_limit: None,
            resume_from_checkpoint: None,
            interrupt_after_steps: None,
        }
    }
}

impl TrainingArguments {
    /// The learning rate at `step` of `total`: linear warm-up, then the schedule.
    pub fn learning_rate_at(&self, step: usize, total: usize) -> f64 {
        let warmup = (self.warmup_ratio * total as f64).ceil() as usize;
        if step < warmup {
            return self.learning_rate * (step + 1) as f64 / warmup as f64;
        }
        let span = total.saturating_sub(warmup).max(1) as f64;
        let progress = (step.saturating_sub(warmup) as f64 / span).min(1.0);
        match self.lr_scheduler_type {
            SchedulerType::Linear => {
                let remaining = total.saturating_sub(step) as f64;
                self.learning_rate * (remaining / span).max(0.0)
            }
            SchedulerType::Cosine => {
                self.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            SchedulerType::Constant => self.learning_rate,
        }
    }

    /// Whether training stops after an epoch, given the epochs since the best validation score.
    pub fn should_stop(&self, epochs_without_improvement: usize) -> bool {
        self.early_stopping_patience
            .is_some_and(|patience| epochs_without_improvement >= patience.max(1))
    }

    /// [`Self::should_stop`], logging the decision (to `tracing` and the log history).
    pub(crate) fn stop_early(
        &self,
        epochs_without_improvement: usize,
        epoch: usize,
        log_history: &mut Vec<serde_json::Value>,
    ) -> bool {
        let stop = self.should_stop(epochs_without_improvement);
        if stop {
            tracing::info!(epoch, "early stopping: no validation improvement");
            log_history.push(serde_json::json!({"early_stopping": {"epoch": epoch, "patience": self.early_stopping_patience}}));
        }
        stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_transformers() {
        let mut args = TrainingArguments {
            learning_rate: 1.0,
            warmup_ratio: 0.1,
            ..Default::default()
        };
        // 100 steps, 10 of warm-up.
        assert!((args.learning_rate_at(0, 100) - 0.1).abs() < 1e-12);
        assert!((args.learning_rate_at(9, 100) - 1.0).abs() < 1e-12);
        assert!((args.learning_rate_at(55, 100) - 0.5).abs() < 1e-12);
        args.lr_scheduler_type = SchedulerType::Cosine;
        assert!((args.learning_rate_at(10, 100) - 1.0).abs() < 1e-12);
        assert!((args.learning_rate_at(55, 100) - 0.5).abs() < 1e-12);
        assert!(args.learning_rate_at(99, 100) < 0.001);
        args.lr_scheduler_type = SchedulerType::Constant;
        assert!((args.learning_rate_at(80, 100) - 1.0).abs() < 1e-12);
        assert_eq!(
            SchedulerType::parse("constant_with_warmup"),
            Some(SchedulerType::Constant)
        );
    }

    #[test]
    fn early_stopping_counts_epochs() {
        let mut args = TrainingArguments::default();
        assert!(!args.should_stop(10));
        args.early_stopping_patience = Some(2);
        assert!(!args.should_stop(1));
        assert!(args.should_stop(2));
    }
}
