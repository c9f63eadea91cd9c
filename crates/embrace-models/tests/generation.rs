//! Causal LMs and generate() against transformers: goldens from `tools/oracle/gen_generation.py`
//! (tiny random GPT-2, Llama, Mistral, Qwen2, Qwen3 and Gemma 3 checkpoints).
//!
//! Logits must match within 1e-4; greedy, repetition-penalty, n-gram, beam-search and batched
//! outputs must be token-identical.
#![allow(clippy::unwrap_used)]

mod common;

use common::{dir, golden, ids, max_diff, rows};
use embrace_models::causal::{CausalLm, load_causal_lm};
use embrace_models::generation::{
    Control, EarlyStopping, GenerationConfig, generate, generate_batch,
};

const ARCHES: [&str; 6] = ["gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma3"];

fn model(arch: &str) -> CausalLm {
    load_causal_lm(dir(arch).to_str().unwrap()).unwrap().model
}

fn greedy(max_new: usize, eos: &[u32]) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: Some(max_new),
        eos_token_ids: eos.to_vec(),
        pad_token_id: Some(0),
        ..Default::default()
    }
}

fn run(model: &CausalLm, prompt: &[u32], config: &GenerationConfig) -> Vec<Vec<u32>> {
    generate(model, prompt, config, &mut |_| Control::Continue)
        .unwrap()
        .into_iter()
        .map(|g| g.ids)
        .collect()
}

/// Strips transformers' right padding (pad or eos fill after the sequence ended).
fn unpad(row: &[u32], prompt_len: usize, eos: &[u32], fill: &[u32]) -> Vec<u32> {
    let mut out = row[..prompt_len].to_vec();
    for &t in &row[prompt_len..] {
        out.push(t);
        if eos.contains(&t) {
            break;
        }
    }
    // A row that ended by length keeps everything; fill values after EOS are dropped above.
    let _ = fill;
    out
}

#[test]
fn logits_match_transformers() {
    for arch in ARCHES {
        let g = golden(arch);
        let m = model(arch);
        for i in 0..2 {
            let prompt = ids(&g[&format!("prompt_{i}")]);
            let mut cache = m.new_cache();
            let got = m.forward(&prompt, &mut cache, true).unwrap();
            let want = &g[&format!("logits_{i}")];
            let diff = max_diff(&got, want);
            assert!(diff < 1e-4, "{arch} logits_{i}: max abs diff {diff}");
        }
        // Token by token through the cache gives the same last logits as one pass.
        let prompt = ids(&g["prompt_0"]);
        let mut cache = m.new_cache();
        let mut last = None;
        for &t in &prompt {
            last = Some(m.forward(&[t], &mut cache, false).unwrap());
        }
        let want = g["logits_0"].get(prompt.len() - 1).unwrap();
        let diff = max_diff(&last.unwrap(), &want);
        assert!(
            diff < 1e-4,
            "{arch} incremental logits: max abs diff {diff}"
        );
    }
}

#[test]
fn greedy_matches_generate() {
    for arch in ARCHES {
        let g = golden(arch);
        let m = model(arch);
        for i in 0..2 {
            let prompt = ids(&g[&format!("prompt_{i}")]);
            let want = ids(&g[&format!("greedy_{i}")]);
            assert_eq!(
                run(&m, &prompt, &greedy(16, &[2]))[0],
                want,
                "{arch} greedy_{i}"
            );
        }
        let prompt = ids(&g["prompt_0"]);
        assert_eq!(
            run(&m, &prompt, &greedy(24, &[]))[0],
            ids(&g["greedy_noeos_0"]),
            "{arch} greedy_noeos_0"
        );
        let config = GenerationConfig {
            repetition_penalty: 1.3,
            ..greedy(16, &[2])
        };
        assert_eq!(
            run(&m, &prompt, &config)[0],
            ids(&g["rep_0"]),
            "{arch} rep_0"
        );
        let config = GenerationConfig {
            no_repeat_ngram_size: 2,
            ..greedy(16, &[2])
        };
        assert_eq!(
            run(&m, &prompt, &config)[0],
            ids(&g["ngram_0"]),
            "{arch} ngram_0"
        );
        // A stop id met early: the sequence ends with it.
        let want = ids(&g["greedy_stop_0"]);
        let stop = *want.last().unwrap();
        assert_eq!(
            run(&m, &prompt, &greedy(16, &[stop]))[0],
            want,
            "{arch} greedy_stop_0"
        );
    }
}

#[test]
fn beam_search_matches_generate() {
    for arch in ARCHES {
        let g = golden(arch);
        let m = model(arch);
        let prompt = ids(&g["prompt_0"]);
        let config = GenerationConfig {
            num_beams: 3,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            ..greedy(12, &[2])
        };
        let got = generate(&m, &prompt, &config, &mut |_| Control::Continue).unwrap();
        let want = rows(&g["beam_0"]);
        assert_eq!(
            got[0].ids,
            unpad(&want[0], prompt.len(), &[2], &[0, 2]),
            "{arch} beam_0"
        );
        let want_score = g["beam_0_scores"].to_vec1::<f32>().unwrap()[0];
        assert!(
            (got[0].score.unwrap() - want_score).abs() < 1e-4,
            "{arch} beam_0 score"
        );

        let config = GenerationConfig {
            num_beams: 4,
            length_penalty: 0.5,
            early_stopping: EarlyStopping::Yes,
            num_return_sequences: 2,
            ..greedy(10, &[2])
        };
        let got = generate(&m, &prompt, &config, &mut |_| Control::Continue).unwrap();
        let want = rows(&g["beam_1"]);
        let scores = g["beam_1_scores"].to_vec1::<f32>().unwrap();
        assert_eq!(got.len(), 2);
        for (k, (got, want)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                got.ids,
                unpad(want, prompt.len(), &[2], &[0, 2]),
                "{arch} beam_1[{k}]"
            );
            assert!(
                (got.score.unwrap() - scores[k]).abs() < 1e-4,
                "{arch} beam_1[{k}] score"
            );
        }
    }
}

#[test]
fn batches_equal_left_padded_generate() {
    for arch in ARCHES {
        let g = golden(arch);
        let m = model(arch);
        let input = rows(&g["batch_input_ids"]);
        let mask = rows(&g["batch_attention_mask"]);
        let prompts: Vec<Vec<u32>> = input
            .iter()
            .zip(&mask)
            .map(|(row, mask)| {
                row.iter()
                    .zip(mask)
                    .filter(|(_, m)| **m == 1)
                    .map(|(t, _)| *t)
                    .collect()
            })
            .collect();
        let width = input[0].len();
        let strip = |row: &[u32], prompt_len: usize, eos: &[u32]| -> Vec<u32> {
            // transformers' row: left padding, prompt, new tokens, right padding after EOS.
            let pad = width - prompt_len;
            unpad(&row[pad..], prompt_len, eos, &[0])
        };
        let got = generate_batch(&m, &prompts, &greedy(16, &[2])).unwrap();
        for (i, (got, want)) in got.iter().zip(rows(&g["batch_greedy"])).enumerate() {
            assert_eq!(
                got[0].ids,
                strip(&want, prompts[i].len(), &[2]),
                "{arch} batch_greedy[{i}]"
            );
        }
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir(arch).join("../../meta.json")).unwrap(),
        )
        .unwrap();
        let eos: Vec<u32> =
            meta["archs"][arch]["eos_stop_case_args"]["batch_greedy_stop"]["eos_token_id"]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_u64().unwrap() as u32).collect())
                .unwrap_or_else(|| panic!("meta.json lacks {arch} batch_greedy_stop eos ids"));
        let got = generate_batch(&m, &prompts, &greedy(16, &eos)).unwrap();
        for (i, (got, want)) in got.iter().zip(rows(&g["batch_greedy_stop"])).enumerate() {
            assert_eq!(
                got[0].ids,
                strip(&want, prompts[i].len(), &eos),
                "{arch} batch_greedy_stop[{i}]"
            );
        }
    }
}

#[test]
fn sampling_is_seeded_and_respects_top_k() {
    let m = model("llama");
    let prompt = ids(&golden("llama")["prompt_0"]);
    let config = GenerationConfig {
        do_sample: true,
        top_k: Some(1),
        seed: Some(3),
        ..greedy(12, &[])
    };
    // top_k 1 leaves only the argmax: sampling equals greedy.
    assert_eq!(
        run(&m, &prompt, &config)[0],
        run(&m, &prompt, &greedy(12, &[]))[0]
    );
    let config = GenerationConfig {
        do_sample: true,
        temperature: 1.5,
        top_k: None,
        top_p: 0.9,
        seed: Some(11),
        num_return_sequences: 3,
        ..greedy(12, &[])
    };
    let a = run(&m, &prompt, &config);
    assert_eq!(a, run(&m, &prompt, &config), "same seed, same tokens");
    assert_eq!(a.len(), 3);
    assert!(a.iter().any(|s| s != &a[0]), "independent draws differ");
}

#[test]
fn streaming_hook_sees_every_token_and_can_stop() {
    let m = model("qwen2");
    let prompt = ids(&golden("qwen2")["prompt_0"]);
    let mut seen = Vec::new();
    let out = generate(&m, &prompt, &greedy(10, &[]), &mut |new| {
        seen.push(new.len());
        if new.len() == 4 {
            Control::Stop
        } else {
            Control::Continue
        }
    })
    .unwrap();
    assert_eq!(seen, vec![1, 2, 3, 4]);
    assert_eq!(out[0].new_tokens().len(), 4);
}

#[test]
fn bad_inputs_are_errors() {
    let m = model("gpt2");
    // The tiny models have 64 positions.
    let long = vec![5u32; 64];
    let e = generate(&m, &long, &greedy(4, &[]), &mut |_| Control::Continue).unwrap_err();
    assert!(e.to_string().contains("context"), "{e}");
    let e = generate(&m, &[], &greedy(4, &[]), &mut |_| Control::Continue).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let e = generate(&m, &[500], &greedy(4, &[]), &mut |_| Control::Continue).unwrap_err();
    assert!(e.to_string().contains("vocabulary"), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.json"),
        r#"{"model_type": "falcon"}"#,
    )
    .unwrap();
    let e = load_causal_lm(tmp.path().to_str().unwrap()).unwrap_err();
    assert!(e.to_string().contains("llama"), "{e}");
    let bad = tmp.path().join("broken.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00garbage").unwrap();
    let e = load_causal_lm(bad.to_str().unwrap()).unwrap_err();
    assert!(e.to_string().contains("broken.gguf"), "{e}");
}

/// A GGUF file with one tensor of ggml type `dtype`.
fn gguf_with_tensor_type(dtype: u32) -> Vec<u8> {
    let mut f = Vec::new();
    let string = |f: &mut Vec<u8>, s: &str| {
        f.extend((s.len() as u64).to_le_bytes());
        f.extend(s.as_bytes());
    };
    f.extend(b"GGUF");
    f.extend(3u32.to_le_bytes());
    f.extend(1u64.to_le_bytes()); // tensors
    f.extend(1u64.to_le_bytes()); // metadata entries
    string(&mut f, "general.architecture");
    f.extend(8u32.to_le_bytes()); // string
    string(&mut f, "llama");
    string(&mut f, "token_embd.weight");
    f.extend(2u32.to_le_bytes());
    f.extend(256u64.to_le_bytes());
    f.extend(4u64.to_le_bytes());
    f.extend(dtype.to_le_bytes());
    f.extend(0u64.to_le_bytes());
    f.resize(f.len().div_ceil(32) * 32 + 4096, 0);
    f
}

#[test]
fn unsupported_gguf_quantization_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("iq2.gguf");
    std::fs::write(&path, gguf_with_tensor_type(16)).unwrap();
    let e = load_causal_lm(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("IQ2_XXS") && e.contains("not supported") && e.contains("Q4_K"),
        "{e}"
    );
}
