//! Encoder-decoder models (T5, T5 v1.1, BART) and their generation against transformers:
//! goldens from `tools/oracle/gen_generation.py`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{dir, golden, ids, max_diff, rows};
use embrace_models::generation::{Control, EarlyStopping, GenerationConfig, generate};
use embrace_models::seq2seq::Seq2SeqLm;

const ARCHES: [&str; 4] = ["t5", "t5-gated", "bart", "marian"];

fn model(arch: &str) -> Seq2SeqLm {
    Seq2SeqLm::from_pretrained(dir(arch).to_str().unwrap()).unwrap()
}

fn config(m: &Seq2SeqLm, arch: &str, max_new: usize) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: Some(max_new),
        ..m.generation_defaults(Some(&dir(arch))).unwrap()
    }
}

/// transformers pads finished rows (with pad, or eos when pad is 0); keep up to the first EOS.
fn until_eos(row: &[u32], eos: u32) -> Vec<u32> {
    let mut out = vec![row[0]];
    for &t in &row[1..] {
        out.push(t);
        if t == eos {
            break;
        }
    }
    out
}

fn run(m: &Seq2SeqLm, input: &[u32], config: &GenerationConfig) -> Vec<(Vec<u32>, Option<f32>)> {
    let session = m.session(input).unwrap();
    generate(&session, &m.decoder_prompt(), config, &mut |_| {
        Control::Continue
    })
    .unwrap()
    .into_iter()
    .map(|g| (g.ids, g.score))
    .collect()
}

#[test]
fn encoder_and_decoder_match_transformers() {
    for arch in ARCHES {
        let g = golden(arch);
        let m = model(arch);
        let input = ids(&g["input_0"]);
        let encoded = m.encode(&input).unwrap();
        let diff = max_diff(&encoded, &g["encoder_hidden_0"]);
        assert!(diff < 1e-4, "{arch} encoder: {diff}");
        let mut state = m.start(&encoded).unwrap();
        let logits = m.decode(&ids(&g["decoder_input_0"]), &mut state).unwrap();
        let diff = max_diff(&logits, &g["logits_0"]);
        assert!(diff < 1e-4, "{arch} decoder logits: {diff}");
    }
}

#[test]
fn generation_matches_transformers() {
    for arch in ARCHES {
        let g = golden(arch);
        let m = model(arch);
        let eos = m.config().eos_token_id;
        for i in 0..2 {
            let input = ids(&g[&format!("input_{i}")]);
            let got = run(&m, &input, &config(&m, arch, 12));
            let want = until_eos(&ids(&g[&format!("greedy_{i}")]), eos);
            assert_eq!(got[0].0, want, "{arch} greedy_{i}");
        }
        let input = ids(&g["input_0"]);
        let rep = GenerationConfig {
            repetition_penalty: 1.3,
            ..config(&m, arch, 12)
        };
        assert_eq!(
            run(&m, &input, &rep)[0].0,
            until_eos(&ids(&g["rep_0"]), eos),
            "{arch} rep_0"
        );
        let ngram = GenerationConfig {
            no_repeat_ngram_size: 2,
            ..config(&m, arch, 12)
        };
        assert_eq!(
            run(&m, &input, &ngram)[0].0,
            until_eos(&ids(&g["ngram_0"]), eos),
            "{arch} ngram_0"
        );
        // A stop id met early ends the sequence with it.
        let want = ids(&g["greedy_stop_0"]);
        let stop = GenerationConfig {
            eos_token_ids: vec![*want.last().unwrap()],
            ..config(&m, arch, 12)
        };
        assert_eq!(run(&m, &input, &stop)[0].0, want, "{arch} greedy_stop_0");
        let beam = GenerationConfig {
            num_beams: 3,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            ..config(&m, arch, 10)
        };
        let got = run(&m, &input, &beam);
        let want = rows(&g["beam_0"]);
        assert_eq!(got[0].0, until_eos(&want[0], eos), "{arch} beam_0");
        let score = g["beam_0_scores"].to_vec1::<f32>().unwrap()[0];
        assert!(
            (got[0].1.unwrap() - score).abs() < 1e-4,
            "{arch} beam_0 score"
        );
    }
}

#[test]
fn padded_batches_equal_single_inputs() {
    for arch in ARCHES {
        let g = golden(arch);
        let m = model(arch);
        let eos = m.config().eos_token_id;
        let inputs = rows(&g["batch_input_ids"]);
        let masks = rows(&g["batch_attention_mask"]);
        for (i, (row, mask)) in inputs.iter().zip(&masks).enumerate() {
            let input: Vec<u32> = row
                .iter()
                .zip(mask)
                .filter(|(_, m)| **m == 1)
                .map(|(t, _)| *t)
                .collect();
            let got = run(&m, &input, &config(&m, arch, 12));
            let want = until_eos(&rows(&g["batch_greedy"])[i], eos);
            assert_eq!(got[0].0, want, "{arch} batch_greedy[{i}]");
        }
    }
}
