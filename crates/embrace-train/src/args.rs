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
        }
    }
}

impl TrainingArguments {
    /// The learning rate at `step` of `total` (linear warm-up, then linear decay to 0).
    pub fn learning_rate_at(&self, step: usize, total: usize) -> f64 {
        let warmup = (self.warmup_ratio * total as f64).ceil() as usize;
        if step < warmup {
            return self.learning_rate * (step + 1) as f64 / warmup as f64;
        }
        let remaining = total.saturating_sub(step) as f64;
        let span = total.saturating_sub(warmup).max(1) as f64;
        self.learning_rate * (remaining / span).max(0.0)
    }
}
