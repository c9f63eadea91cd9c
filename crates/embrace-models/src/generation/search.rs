//! Decoding strategies: greedy search and sampling (one sequence at a time, streamed), and beam
//! search as transformers 5 runs it (top-k continuations over all beams, finished hypotheses
//! normalised by `length ** length_penalty`, its early-stopping rules).

use std::time::{SystemTime, UNIX_EPOCH};

use super::config::{EarlyStopping, GenerationConfig};
use super::logits::{Sampler, argmax, log_softmax, process, warp};
use crate::causal::{CausalLm, KvCache};
use crate::error::{ModelError, Result};

/// A model that decodes token by token: what the search strategies need.
///
/// `prefill` runs the prompt (the decoder's start ids for a seq2seq model) and returns the
/// state after it with the next-token logits; `step` advances a state by one token.
pub trait Decoding {
    /// Everything a sequence carries between steps (its KV caches).
    type State: Clone;
    /// Runs the prompt; returns the state and the logits of the next token.
    fn prefill(&self, prompt: &[u32]) -> Result<(Self::State, Vec<f32>)>;
    /// Feeds one token; returns the logits of the next one.
    fn step(&self, state: &mut Self::State, token: u32) -> Result<Vec<f32>>;
    /// The most positions a sequence may have.
    fn context_length(&self) -> usize;
}

impl Decoding for CausalLm {
    type State = KvCache;

    fn prefill(&self, prompt: &[u32]) -> Result<(KvCache, Vec<f32>)> {
        let mut cache = self.new_cache();
        let logits = self.forward(prompt, &mut cache, false)?.to_vec1()?;
        Ok((cache, logits))
    }

    fn step(&self, cache: &mut KvCache, token: u32) -> Result<Vec<f32>> {
        Ok(self.forward(&[token], cache, false)?.to_vec1()?)
    }

    fn context_length(&self) -> usize {
        self.config().max_position_embeddings
    }
}

/// What the caller's hook says after each new token (or, in beam search, each candidate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Continue,
    /// Stop this sequence here (a stop string matched, the reader hung up …).
    Stop,
}

/// One generated sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The prompt followed by the new tokens (end-of-sequence included when produced).
    pub ids: Vec<u32>,
    /// How many tokens the prompt had.
    pub prompt_len: usize,
    /// The length-normalised log-probability (beam search), if computed.
    pub score: Option<f32>,
    /// Why generation ended.
    pub finish: FinishReason,
}

impl Generated {
    /// The new tokens only.
    pub fn new_tokens(&self) -> &[u32] {
        &self.ids[self.prompt_len..]
    }
}

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-sequence token was produced.
    Eos,
    /// The token budget (`max_new_tokens` / `max_length`) was reached.
    Length,
    /// The caller's hook asked to stop.
    Stopped,
}

fn check_prompt<M: Decoding>(model: &M, prompt: &[u32], budget: usize) -> Result<()> {
    if prompt.is_empty() {
        return Err(ModelError::Input(
            "the prompt is empty: generation needs at least one token (e.g. BOS)".into(),
        ));
    }
    let context = model.context_length();
    if prompt.len() >= context {
        return Err(ModelError::Input(format!(
            "the prompt has {} tokens, but the model's context is {context}; shorten it",
            prompt.len()
        )));
    }
    if prompt.len() + budget > context {
        tracing::warn!(
            prompt = prompt.len(),
            budget,
            context,
            "generation will stop at the end of the model's context"
        );
    }
    Ok(())
}

fn seed_of(config: &GenerationConfig) -> u64 {
    config.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

/// Greedy search or sampling for one prompt; `hook` sees the new tokens after each step.
pub(crate) fn sample_or_greedy<M: Decoding>(
    model: &M,
    prompt: &[u32],
    config: &GenerationConfig,
    sampler: &mut Sampler,
    hook: &mut dyn FnMut(&[u32]) -> Control,
) -> Result<Generated> {
    let budget = config.new_token_budget(prompt.len());
    check_prompt(model, prompt, budget)?;
    let context = model.context_length();
    let budget = budget.min(context - prompt.len());
    let mut ids = prompt.to_vec();
    let mut finish = FinishReason::Length;
    if budget == 0 {
        return Ok(Generated {
            ids,
            prompt_len: prompt.len(),
            score: None,
            finish,
        });
    }
    let (mut state, mut scores_next) = model.prefill(prompt)?;
    for step in 0..budget {
        let mut scores = std::mem::take(&mut scores_next);
        process(config, &ids, step, prompt.len() + budget, &mut scores);
        let next = if config.do_sample {
            warp(config, &mut scores, 1);
            sampler.sample(&scores)
        } else {
            argmax(&scores)
        };
        ids.push(next);
        if config.eos_token_ids.contains(&next) {
            finish = FinishReason::Eos;
            hook(&ids[prompt.len()..]);
            break;
        }
        if hook(&ids[prompt.len()..]) == Control::Stop {
            finish = FinishReason::Stopped;
            break;
        }
        if step + 1 < budget {
            scores_next = model.step(&mut state, next)?;
        }
    }
    Ok(Generated {
        ids,
        prompt_len: prompt.len(),
        score: None,
        finish,
    })
}

/// A running beam.
#[derive(Clone)]
struct Beam<S> {
    ids: Vec<u32>,
    score: f32,
    state: S,
    logits: Vec<f32>,
}

/// A finished-hypothesis slot (transformers keeps `num_beams` of them, starting at `-1e9`).
#[derive(Clone)]
struct Slot {
    ids: Vec<u32>,
    score: f32,
    finished: bool,
    reason: FinishReason,
}

const MASKED: f32 = -1.0e9;

/// Indices of the `k` largest values, largest first, lower index first on ties.
fn top_k_indices(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// Beam search (optionally with sampling) for one prompt.
pub(crate) fn beam_search<M: Decoding>(
    model: &M,
    prompt: &[u32],
    config: &GenerationConfig,
    sampler: &mut Sampler,
    hook: &mut dyn FnMut(&[u32]) -> Control,
) -> Result<Vec<Generated>> {
    let num_beams = config.num_beams;
    let budget = config.new_token_budget(prompt.len());
    check_prompt(model, prompt, budget)?;
    let context = model.context_length();
    let budget = budget.min(context - prompt.len());
    let prompt_len = prompt.len();
    let max_length = prompt_len + budget;
    if budget == 0 {
        return Ok(vec![Generated {
            ids: prompt.to_vec(),
            prompt_len,
            score: None,
            finish: FinishReason::Length,
        }]);
    }
    let beams_to_keep = 2.max(1 + config.eos_token_ids.len()) * num_beams;
    let lp = config.length_penalty;

    let (state, logits) = model.prefill(prompt)?;
    let vocab = logits.len();
    // Beam 0 is live; the others start at -1e9 so that the first step expands beam 0 only.
    let mut running: Vec<Beam<M::State>> = (0..num_beams)
        .map(|b| Beam {
            ids: prompt.to_vec(),
            score: if b == 0 { 0.0 } else { MASKED },
            state: state.clone(),
            logits: logits.clone(),
        })
        .collect();
    let mut slots: Vec<Slot> = vec![
        Slot {
            ids: prompt.to_vec(),
            score: MASKED,
            finished: false,
            reason: FinishReason::Length,
        };
        num_beams
    ];
    let mut heuristic_unsatisfied = true;
    let mut cur_len = prompt_len;
    loop {
        // Accumulated log-probabilities of every (beam, token) continuation.
        let mut accumulated = Vec::with_capacity(num_beams * vocab);
        for beam in &running {
            let mut lp_beam = log_softmax(&beam.logits);
            process(
                config,
                &beam.ids,
                cur_len - prompt_len,
                max_length,
                &mut lp_beam,
            );
            if config.do_sample {
                warp(config, &mut lp_beam, 2);
            }
            accumulated.extend(lp_beam.iter().map(|&x| x + beam.score));
        }
        let chosen: Vec<usize> = if config.do_sample {
            // Sample without replacement, then order by score.
            let mut pool = accumulated.clone();
            let mut picked = Vec::with_capacity(beams_to_keep);
            for _ in 0..beams_to_keep {
                let i = sampler.sample(&pool) as usize;
                picked.push(i);
                pool[i] = f32::NEG_INFINITY;
            }
            picked.sort_by(|&a, &b| accumulated[b].total_cmp(&accumulated[a]).then(a.cmp(&b)));
            picked
        } else {
            top_k_indices(&accumulated, beams_to_keep)
        };
        // The candidates, and whether each hits a stopping criterion.
        let mut candidates = Vec::with_capacity(chosen.len());
        for &flat in &chosen {
            let (beam, token) = (flat / vocab, (flat % vocab) as u32);
            let mut ids = running[beam].ids.clone();
            ids.push(token);
            let (hits, reason) = if config.eos_token_ids.contains(&token) {
                (true, FinishReason::Eos)
            } else if ids.len() >= max_length {
                (true, FinishReason::Length)
            } else if hook(&ids[prompt_len..]) == Control::Stop {
                (true, FinishReason::Stopped)
            } else {
                (false, FinishReason::Length)
            };
            candidates.push((beam, ids, accumulated[flat], hits, reason));
        }
        // Finished hypotheses: the top `num_beams` candidates that hit a criterion, normalised.
        let beams_full =
            slots.iter().all(|s| s.finished) && config.early_stopping == EarlyStopping::Yes;
        let norm = ((cur_len + 1 - prompt_len) as f32).powf(lp);
        let mut merged: Vec<Slot> = slots.clone();
        for (rank, (_, ids, score, hits, reason)) in candidates.iter().enumerate() {
            let just_finished = *hits && rank < num_beams;
            let mut s = score / norm;
            if beams_full {
                s += MASKED;
            }
            if !heuristic_unsatisfied {
                s += MASKED;
            }
            if !just_finished {
                s += MASKED;
            }
            merged.push(Slot {
                ids: ids.clone(),
                score: s,
                finished: just_finished,
                reason: *reason,
            });
        }
        let merged_scores: Vec<f32> = merged.iter().map(|s| s.score).collect();
        slots = top_k_indices(&merged_scores, num_beams)
            .into_iter()
            .map(|i| merged[i].clone())
            .collect();

        // Running beams for the next step: the best candidates that did not stop.
        let running_scores: Vec<f32> = candidates
            .iter()
            .map(|(_, _, score, hits, _)| score + if *hits { MASKED } else { 0.0 })
            .collect();
        let next = top_k_indices(&running_scores, num_beams);
        let all_hit = candidates.iter().all(|c| c.3);
        cur_len += 1;

        // transformers' stopping rules.
        let best_len = if config.early_stopping == EarlyStopping::Never && lp > 0.0 {
            max_length - prompt_len
        } else {
            cur_len - prompt_len
        };
        let best_possible = running_scores[next[0]] / (best_len as f32).powf(lp);
        let all_finished = slots.iter().all(|s| s.finished);
        let worst_finished = if all_finished {
            slots.iter().map(|s| s.score).fold(f32::INFINITY, f32::min)
        } else {
            MASKED
        };
        heuristic_unsatisfied = heuristic_unsatisfied && best_possible > worst_finished;
        let open = !(all_finished && config.early_stopping == EarlyStopping::Yes);
        if !(heuristic_unsatisfied && open && !all_hit) {
            break;
        }
        // Advance the chosen beams by their new token.
        let mut next_running = Vec::with_capacity(num_beams);
        for i in next {
            let (parent, ids, _, _, _) = &candidates[i];
            let mut state = running[*parent].state.clone();
            let token = ids[ids.len() - 1];
            let logits = model.step(&mut state, token)?;
            next_running.push(Beam {
                ids: ids.clone(),
                score: running_scores[i],
                state,
                logits,
            });
        }
        running = next_running;
    }
    Ok(slots
        .into_iter()
        .take(config.num_return_sequences)
        .map(|slot| Generated {
            ids: slot.ids,
            prompt_len,
            score: Some(slot.score),
            finish: slot.reason,
        })
        .collect())
}

/// The sampler for a generation call.
pub(crate) fn sampler_for(config: &GenerationConfig) -> Sampler {
    Sampler::new(seed_of(config))
}
