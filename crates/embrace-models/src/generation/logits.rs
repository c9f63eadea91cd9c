//! Logits processors and warpers, in transformers' order: repetition penalty, n-gram blocking,
//! minimum new tokens, then (when sampling) temperature, top-k, top-p and min-p.

use std::collections::HashSet;

use super::config::GenerationConfig;

/// Applies the processors that shape scores before any decoding strategy.
///
/// `ids` is the whole sequence so far (prompt included); `new_tokens` how many were generated;
/// `max_length` the length at which the sequence will be cut.
pub(crate) fn process(
    config: &GenerationConfig,
    ids: &[u32],
    new_tokens: usize,
    max_length: usize,
    scores: &mut [f32],
) {
    if config.repetition_penalty != 1.0 {
        let penalty = config.repetition_penalty;
        let seen: HashSet<u32> = ids.iter().copied().collect();
        for id in seen {
            if let Some(s) = scores.get_mut(id as usize) {
                *s = if *s < 0.0 { *s * penalty } else { *s / penalty };
            }
        }
    }
    if config.no_repeat_ngram_size > 0 {
        for banned in banned_ngram_tokens(ids, config.no_repeat_ngram_size) {
            if let Some(s) = scores.get_mut(banned as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
    }
    if new_tokens < config.min_new_tokens {
        for &eos in &config.eos_token_ids {
            if let Some(s) = scores.get_mut(eos as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
    }
    // Forced first / last tokens (BART's forced_bos_token_id / forced_eos_token_id).
    let forced = match (config.forced_bos_token_id, config.forced_eos_token_id) {
        (Some(bos), _) if ids.len() == 1 => Some(bos),
        (_, Some(eos)) if ids.len() + 1 == max_length => Some(eos),
        _ => None,
    };
    if let Some(token) = forced.filter(|&t| (t as usize) < scores.len()) {
        scores.iter_mut().for_each(|s| *s = f32::NEG_INFINITY);
        scores[token as usize] = 0.0;
    }
}

/// Tokens that would complete an n-gram already present in `ids`.
fn banned_ngram_tokens(ids: &[u32], n: usize) -> Vec<u32> {
    if ids.len() + 1 < n {
        return Vec::new();
    }
    let prefix = &ids[ids.len() + 1 - n..];
    ids.windows(n)
        .filter(|w| &w[..n - 1] == prefix)
        .map(|w| w[n - 1])
        .collect()
}

/// Applies the sampling warpers; tokens that are filtered out get `-inf`.
pub(crate) fn warp(config: &GenerationConfig, scores: &mut [f32], min_tokens_to_keep: usize) {
    if config.temperature != 1.0 {
        let t = config.temperature;
        scores.iter_mut().for_each(|s| *s /= t);
    }
    if let Some(k) = config.top_k {
        let k = k.max(min_tokens_to_keep);
        if k < scores.len() {
            let mut sorted: Vec<f32> = scores.to_vec();
            sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            let threshold = sorted[k - 1];
            scores
                .iter_mut()
                .filter(|s| **s < threshold)
                .for_each(|s| *s = f32::NEG_INFINITY);
        }
    }
    if config.top_p < 1.0 {
        // Sorted ascending, the tokens whose cumulative probability stays within 1 - top_p go.
        let probs = softmax(scores);
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
        let mut cumulative = 0.0f32;
        let keep_from = order.len().saturating_sub(min_tokens_to_keep);
        for (rank, &i) in order.iter().enumerate() {
            cumulative += probs[i];
            if cumulative <= 1.0 - config.top_p && rank < keep_from {
                scores[i] = f32::NEG_INFINITY;
            }
        }
    }
    if let Some(min_p) = config.min_p {
        let probs = softmax(scores);
        let top = probs.iter().copied().fold(0.0f32, f32::max);
        let threshold = min_p * top;
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        for &i in order.iter().skip(min_tokens_to_keep) {
            if probs[i] < threshold {
                scores[i] = f32::NEG_INFINITY;
            }
        }
    }
}

/// Softmax of scores (`-inf` entries get 0).
pub(crate) fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scores.iter().map(|&s| (s - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// `log_softmax` of scores.
pub(crate) fn log_softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = scores.iter().map(|&s| (s - max).exp()).sum();
    let log_sum = sum.ln() + max;
    scores.iter().map(|&s| s - log_sum).collect()
}

/// The index of the largest score (the first one on ties, as `torch.argmax`).
pub(crate) fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best as u32
}

/// A small seeded generator (xoshiro256**): sampling with a seed gives the same tokens on
/// every run and platform. (Its stream differs from PyTorch's, so sampled tokens are not
/// comparable with transformers'.)
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    state: [u64; 4],
}

impl Sampler {
    pub(crate) fn new(seed: u64) -> Self {
        // SplitMix64 expands the seed into the state.
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self {
            state: [next(), next(), next(), next()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform number in `[0, 1)`.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Draws a token from the softmax of `scores`.
    pub(crate) fn sample(&mut self, scores: &[f32]) -> u32 {
        let probs = softmax(scores);
        let mut target = self.uniform() * probs.iter().map(|&p| p as f64).sum::<f64>();
        let mut last = 0;
        for (i, &p) in probs.iter().enumerate() {
            if p > 0.0 {
                last = i;
                target -= p as f64;
                if target < 0.0 {
                    return i as u32;
                }
            }
        }
        last as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition_penalty_follows_sign() {
        let config = GenerationConfig {
            repetition_penalty: 2.0,
            ..Default::default()
        };
        let mut scores = vec![1.0, -1.0, 4.0];
        process(&config, &[0, 1], 2, 10, &mut scores);
        assert_eq!(scores, vec![0.5, -2.0, 4.0]);
    }

    #[test]
    fn ngram_blocking_bans_completions() {
        assert_eq!(banned_ngram_tokens(&[5, 6, 7, 5], 2), vec![6]);
        assert_eq!(banned_ngram_tokens(&[5, 6, 5, 6], 3), vec![5]);
        assert!(banned_ngram_tokens(&[5], 3).is_empty());
    }

    #[test]
    fn warpers_keep_the_head() {
        let base = vec![3.0, 2.0, 1.0, 0.0];
        let mut s = base.clone();
        warp(
            &GenerationConfig {
                top_k: Some(2),
                ..Default::default()
            },
            &mut s,
            1,
        );
        assert_eq!(&s[..2], &[3.0, 2.0]);
        assert!(s[2].is_infinite() && s[3].is_infinite());
        let mut s = base.clone();
        warp(
            &GenerationConfig {
                top_k: None,
                top_p: 0.5,
                ..Default::default()
            },
            &mut s,
            1,
        );
        // p(3.0) = 0.64 alone reaches 0.5.
        assert_eq!(s.iter().filter(|x| x.is_finite()).count(), 1);
        let mut s = base;
        warp(
            &GenerationConfig {
                top_k: None,
                min_p: Some(0.3),
                ..Default::default()
            },
            &mut s,
            1,
        );
        // p ∝ e^3, e^2, e^1, e^0: e^2/e^3 = 0.37 stays, e^1/e^3 = 0.14 goes.
        assert_eq!(s.iter().filter(|x| x.is_finite()).count(), 2);
    }

    #[test]
    fn sampler_is_seeded_and_follows_probabilities() {
        let scores = vec![0.0, (3.0f32).ln(), f32::NEG_INFINITY];
        let mut a = Sampler::new(7);
        let mut b = Sampler::new(7);
        let draws: Vec<u32> = (0..2000).map(|_| a.sample(&scores)).collect();
        assert!(
            draws
                .iter()
                .zip((0..2000).map(|_| b.sample(&scores)))
                .all(|(x, y)| *x == y)
        );
        assert!(!draws.contains(&2));
        let ones = draws.iter().filter(|&&d| d == 1).count() as f64 / 2000.0;
        assert!((ones - 0.75).abs() < 0.04, "{ones}");
    }
}
