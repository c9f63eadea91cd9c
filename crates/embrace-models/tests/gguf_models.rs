//! Real GGUF models from the offline assets: SmolLM2-135M-Instruct (Llama architecture, Q4_1)
//! and Gemma-3-270m (Q4_K_M), with the tokenizers their files embed.
#![allow(clippy::unwrap_used)]

use embrace_models::causal::{gguf_tokenizer, load_causal_lm};
use embrace_models::generation::{Control, GenerationConfig, generate};

fn greedy_text(asset: &str, file: &str, prompt: &str, new_tokens: usize) -> (Vec<u32>, String) {
    let path = embrace_assets::require(asset, file);
    let lm = load_causal_lm(path.to_str().unwrap()).unwrap();
    let tokenizer = gguf_tokenizer(lm.gguf.as_ref().unwrap()).unwrap();
    let ids = tokenizer.encode_ids(prompt, true).unwrap();
    let config = GenerationConfig {
        max_new_tokens: Some(new_tokens),
        eos_token_ids: lm.model.config().eos_token_ids.clone(),
        ..Default::default()
    };
    let out = generate(&lm.model, &ids, &config, &mut |_| Control::Continue).unwrap();
    let new = out[0].new_tokens().to_vec();
    let text = tokenizer.decode(&new, true);
    (new, text)
}

#[test]
fn smollm2_answers_a_chat_prompt() {
    // The chat format of its embedded template (without the default system message).
    let prompt =
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
    let (ids, text) = greedy_text(
        "smollm2-135m-instruct-q4_1",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        prompt,
        7,
    );
    // The first token agrees with an independent f32 reference (numpy over the dequantized
    // weights): "The" (504).
    assert_eq!(ids[0], 504, "{ids:?}");
    assert!(text.contains("Paris"), "{text:?}");
}

#[test]
fn gemma3_continues_a_sentence() {
    let (_, text) = greedy_text(
        "gemma3-270m-q4_k_m",
        "gemma-3-270m-q4_k_m.gguf",
        "The capital of France is",
        6,
    );
    assert!(
        text.contains("capital") || text.contains("Paris"),
        "{text:?}"
    );
}
