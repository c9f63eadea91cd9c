//! Encode and decode arbitrary input with real tokenizers (BERT, GPT-2, Llama-3, Llama-2,
//! XLM-R): nothing may panic, and `encode_ids` must agree with `encode`.
#![no_main]

use embrace_tokenizers::Tokenizer;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static TOKENIZERS: LazyLock<Vec<Tokenizer>> = LazyLock::new(|| {
    let golden = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../tests/golden/tokenizers/gpt2/tokenizer.json"
    );
    [
        embrace_assets::require("all-minilm-l6-v2", "tokenizer.json"),
        golden.into(),
        embrace_assets::require("tokenizer-llama3", "tokenizer.json"),
        embrace_assets::require("tokenizer-llama2", "l2_supercat_tokenizer_config.json"),
        embrace_assets::require("tokenizer-xlm-roberta", "tokenizer.json"),
    ]
    .iter()
    .map(|p| Tokenizer::from_file(p).expect("tokenizer loads"))
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let tokenizer = &TOKENIZERS[pick as usize % TOKENIZERS.len()];
    // Arbitrary ids (including unknown ones) decode without panicking.
    let ids: Vec<u32> = rest
        .chunks(4)
        .map(|c| c.iter().fold(0u32, |a, &b| (a << 8) | b as u32) % 300_000)
        .collect();
    let _ = tokenizer.decode(&ids, pick & 1 == 0);
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (a, b) = text.split_at(
        text.char_indices()
            .nth(text.chars().count() / 2)
            .map_or(0, |(i, _)| i),
    );
    let single = tokenizer.encode_char_offsets(text, None, true);
    let _ = tokenizer.encode(a, Some(b), true);
    if let Ok(encoding) = single {
        let ids = tokenizer
            .encode_ids(text, true)
            .expect("encode_ids succeeds when encode does");
        assert_eq!(ids, encoding.ids(), "encode_ids differs from encode");
        let _ = tokenizer.decode(encoding.ids(), true);
    }
});
