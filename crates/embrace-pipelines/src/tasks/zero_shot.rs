//! zero-shot-classification: each candidate label becomes an NLI hypothesis; the entailment
//! logit ranks the labels.

use embrace_tokenizers::TruncationStrategy;
use serde_json::{Value, json};

use super::{batched, number};
use crate::bundle::Bundle;
use crate::error::{PipelineError, Result};
use crate::options::Options;

/// The id of the label whose name starts with "entail" (case-insensitive), as transformers
/// finds it; `None` when the model has none.
fn entailment_id(bundle: &Bundle) -> Option<usize> {
    bundle
        .config()
        .label2id
        .iter()
        .find(|(name, _)| name.to_lowercase().starts_with("entail"))
        .map(|(_, &id)| id)
}

/// Warns, as transformers does, when the model has no entailment label (the last label is
/// used then).
pub(super) fn check(bundle: Bundle) -> Result<Bundle> {
    if entailment_id(&bundle).is_none() {
        tracing::warn!(
            "the model's label2id has no label starting with \"entail\"; the last label stands \
             for entailment (use an NLI model)"
        );
    }
    Ok(bundle)
}

/// Candidate labels as transformers parses them (a comma-separated string is split).
fn labels(options: &Options) -> Result<Vec<String>> {
    let labels: Vec<String> = options
        .candidate_labels
        .iter()
        .flat_map(|l| l.split(','))
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    if labels.is_empty() {
        return Err(PipelineError::Input(
            "zero-shot classification needs at least one candidate label (--candidate-labels)"
                .into(),
        ));
    }
    Ok(labels)
}

pub(super) fn run(
    bundle: &Bundle,
    texts: &[&str],
    options: &Options,
    batch_size: usize,
) -> Result<Vec<Value>> {
    let labels = labels(options)?;
    let template = &options.hypothesis_template;
    if !template.contains("{}") {
        return Err(PipelineError::Input(format!(
            "the hypothesis template {template:?} has no {{}} where the label goes"
        )));
    }
    let num_labels = bundle.config().num_labels;
    let entail = entailment_id(bundle).unwrap_or(num_labels.saturating_sub(1));
    let contradiction = if entail == 0 {
        num_labels.saturating_sub(1)
    } else {
        0
    };
    texts
        .iter()
        .map(|text| {
            let encodings = labels
                .iter()
                .map(|label| {
                    let hypothesis = template.replacen("{}", label, 1);
                    bundle.encode(
                        text,
                        Some(&hypothesis),
                        Some((
                            TruncationStrategy::OnlyFirst,
                            bundle.limit(options.max_length),
                        )),
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let logits = batched(&encodings, batch_size, |group| {
                let out = bundle.logits(group)?;
                Ok(out.to_vec2::<f32>()?)
            })?;
            let scores: Vec<f32> = if options.multi_label || labels.len() == 1 {
                logits
                    .iter()
                    .map(|row| {
                        let (c, e) = (row[contradiction].exp(), row[entail].exp());
                        e / (c + e)
                    })
                    .collect()
            } else {
                let exps: Vec<f32> = logits.iter().map(|row| row[entail].exp()).collect();
                let sum: f32 = exps.iter().sum();
                exps.iter().map(|e| e / sum).collect()
            };
            let mut order: Vec<usize> = (0..labels.len()).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
            Ok(json!({
                "sequence": text,
                "labels": order.iter().map(|&i| labels[i].clone()).collect::<Vec<_>>(),
                "scores": order.iter().map(|&i| number(scores[i])).collect::<Vec<_>>(),
            }))
        })
        .collect()
}
