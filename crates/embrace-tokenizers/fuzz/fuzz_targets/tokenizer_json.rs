//! Arbitrary bytes as a `tokenizer.json`: loading fails with an error or succeeds, and a loaded
//! tokenizer encodes a fixed text without panicking.
#![no_main]

use embrace_tokenizers::Tokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tokenizer) = json.parse::<Tokenizer>() {
        let _ = tokenizer.encode("Hello world! Ünïcödé 🤗 <s>", Some("pair"), true);
        let _ = tokenizer.to_json(false);
    }
});
