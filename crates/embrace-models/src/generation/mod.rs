//! Text generation with causal LMs: transformers' `generate()` semantics.
//!
//! - [`GenerationConfig`] reads `generation_config.json` and takes overrides;
//! - [`generate`] runs greedy search, sampling (temperature, top-k, top-p, min-p, seeded) or beam
//!   search (`num_beams`, `length_penalty`, `early_stopping`), with repetition penalty, n-gram
//!   blocking, `min_new_tokens`, end-of-sequence ids and a per-token hook for streaming and stop
//!   strings;
//! - [`generate_batch`] runs several prompts; each keeps its own KV cache, so the result equals
//!   transformers' left-padded batch without computing any padding.
//!
//! ```no_run
//! use embrace_models::causal::load_causal_lm;
//! use embrace_models::generation::{Control, GenerationConfig, generate};
//! let lm = load_causal_lm("path/to/model")?;
//! let config = GenerationConfig { max_new_tokens: Some(16), ..Default::default() };
//! let out = generate(&lm.model, &[1, 15, 27], &config, &mut |_| Control::Continue)?;
//! println!("{:?}", out[0].new_tokens());
//! # Ok::<(), embrace_models::ModelError>(())
//! ```

mod config;
mod logits;
mod search;

pub use config::{EarlyStopping, GenerationConfig};
pub use search::{Control, Decoding, FinishReason, Generated};

use crate::error::Result;

/// Generates continuations of `prompt`.
///
/// Returns one sequence for greedy search, `num_return_sequences` for sampling (independent
/// draws) and beam search (the best hypotheses, best first). `hook` is called with the new tokens
/// after every step of greedy search and sampling (for streaming), and with every candidate in
/// beam search; returning [`Control::Stop`] ends that sequence.
pub fn generate<M: Decoding>(
    model: &M,
    prompt: &[u32],
    config: &GenerationConfig,
    hook: &mut dyn FnMut(&[u32]) -> Control,
) -> Result<Vec<Generated>> {
    config.validate()?;
    let mut sampler = search::sampler_for(config);
    if config.num_beams > 1 {
        return search::beam_search(model, prompt, config, &mut sampler, hook);
    }
    let runs = if config.do_sample {
        config.num_return_sequences
    } else {
        1
    };
    (0..runs)
        .map(|_| search::sample_or_greedy(model, prompt, config, &mut sampler, hook))
        .collect()
}

/// Generates for several prompts, in order (one result list per prompt).
pub fn generate_batch<M: Decoding>(
    model: &M,
    prompts: &[Vec<u32>],
    config: &GenerationConfig,
) -> Result<Vec<Vec<Generated>>> {
    prompts
        .iter()
        .map(|p| generate(model, p, config, &mut |_| Control::Continue))
        .collect()
}
