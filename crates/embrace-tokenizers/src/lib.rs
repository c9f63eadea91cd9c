//! A `tokenizer.json` engine, byte-exact with HuggingFace `tokenizers`.
//!
//! The folders mirror the pipeline a text goes through:
//!
//! 1. [`added_vocabulary`]: added tokens (`[CLS]`, `<|endoftext|>`, ...) are found in the raw text;
//! 2. [`normalizers`]: the rest is normalized, keeping the alignment to the original
//!    ([`normalized::NormalizedString`]);
//! 3. [`pre_tokenizers`]: it is split into words;
//! 4. [`models`]: each word becomes tokens;
//! 5. [`processors`]: special tokens are added around the sequence(s) after truncation, then
//!    padding ([`encoding`]);
//! 6. [`decoders`]: ids go back to text.
//!
//! [`Tokenizer`] ties them together and reads and writes `tokenizer.json`.
//!
//! ```no_run
//! let tokenizer = embrace_tokenizers::Tokenizer::from_file("tokenizer.json")?;
//! let encoding = tokenizer.encode("Hello world!", None, true)?;
//! println!("{:?}", encoding.ids());
//! # Ok::<(), embrace_tokenizers::Error>(())
//! ```
#![deny(missing_docs)]

pub mod added_vocabulary;
pub mod decoders;
pub mod encoding;
mod error;
mod fast;
mod legacy;
pub mod models;
pub mod normalized;
pub mod normalizers;
pub mod pre_tokenizers;
pub mod processors;
mod tokenizer;
mod word_cache;

pub use encoding::{Direction, Encoding};
pub use error::{Error, Result};
pub use legacy::TiktokenEncoding;
pub use tokenizer::{
    OffsetType, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams, TruncationStrategy,
    pad_encodings,
};
