//! [`Tokenizer`]: the whole pipeline (added tokens, normalizer, pre-tokenizer, model,
//! post-processor, truncation, padding, decoder) as one `tokenizer.json` describes it.

use crate::added_vocabulary::{AddedToken, AddedVocabulary};
use crate::decoders::Decoder;
use crate::encoding::{Direction, Encoding, char_offset_converter};
use crate::error::{Error, Result};
use crate::fast::{FastPath, GeneralPath, IdSink, RawToken, TokenSink};
use crate::models::{Model, Token, WordPiece};
use crate::normalized::NormalizedString;
use crate::normalizers::{BertNormalizer, Normalizer};
use crate::pre_tokenizers::{PreTokenizedString, PreTokenizer};
use crate::processors::{PostProcessor, TemplateProcessing, default_process};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How a pair is shortened when it is too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TruncationStrategy {
    /// Remove tokens from the longest sequence first.
    #[default]
    LongestFirst,
    /// Only shorten the first sequence.
    OnlyFirst,
    /// Only shorten the second sequence.
    OnlySecond,
}

/// Truncation settings (the `truncation` field of `tokenizer.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruncationParams {
    /// Which end is cut.
    #[serde(default)]
    pub direction: Direction,
    /// Maximum number of tokens, special tokens included.
    pub max_length: usize,
    /// How a pair is shortened.
    #[serde(default)]
    pub strategy: TruncationStrategy,
    /// Number of tokens repeated between overflowing windows.
    #[serde(default)]
    pub stride: usize,
}

/// Target length of padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaddingStrategy {
    /// The longest encoding of the batch.
    BatchLongest,
    /// A fixed length.
    Fixed(usize),
}

/// Padding settings (the `padding` field of `tokenizer.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaddingParams {
    /// Target length.
    pub strategy: PaddingStrategy,
    /// Which side gets the padding.
    #[serde(default)]
    pub direction: Direction,
    /// Round the target length up to a multiple of this.
    #[serde(default)]
    pub pad_to_multiple_of: Option<usize>,
    /// Id of the padding token.
    #[serde(default)]
    pub pad_id: u32,
    /// Type id of padding tokens.
    #[serde(default)]
    pub pad_type_id: u32,
    /// The padding token string.
    #[serde(default = "default_pad_token")]
    pub pad_token: String,
}

fn default_pad_token() -> String {
    "[PAD]".into()
}

/// Which offsets an encoding carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetType {
    /// Byte offsets into the input string (the Rust `tokenizers` convention).
    Byte,
    /// Char (Unicode scalar value) offsets, as the Python binding returns them.
    Char,
}

/// The `tokenizer.json` document, as written (reading goes through [`TokenizerFileIn`]).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TokenizerFile {
    #[serde(default = "default_version")]
    pub(crate) version: String,
    #[serde(default)]
    pub(crate) truncation: Option<TruncationParams>,
    #[serde(default)]
    pub(crate) padding: Option<PaddingParams>,
    #[serde(default)]
    pub(crate) added_tokens: Vec<AddedToken>,
    #[serde(default)]
    pub(crate) normalizer: Option<Normalizer>,
    #[serde(default)]
    pub(crate) pre_tokenizer: Option<PreTokenizer>,
    pub(crate) model: Model,
    #[serde(default)]
    pub(crate) post_processor: Option<PostProcessor>,
    #[serde(default)]
    pub(crate) decoder: Option<Decoder>,
}

fn default_version() -> String {
    "1.0".into()
}

/// A tokenizer: text in, [`Encoding`] out, and back.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    normalizer: Option<Normalizer>,
    pre_tokenizer: Option<PreTokenizer>,
    model: Model,
    post_processor: Option<PostProcessor>,
    decoder: Option<Decoder>,
    added: AddedVocabulary,
    truncation: Option<TruncationParams>,
    padding: Option<PaddingParams>,
    /// A faster equivalent of the pipeline for this configuration, if there is one.
    fast: Option<FastPath>,
}

impl std::str::FromStr for Tokenizer {
    type Err = Error;

    /// Parses a `tokenizer.json` document.
    fn from_str(json: &str) -> Result<Self> {
        // Parse without path tracking first; on failure, parse again to report where.
        let file: TokenizerFileIn = match serde_json::from_str(json) {
            Ok(file) => file,
            Err(_) => {
                let de = &mut serde_json::Deserializer::from_str(json);
                serde_path_to_error::deserialize(de).map_err(Error::from_json)?
            }
        };
        Tokenizer::from_file_parts(TokenizerFile {
            version: file.version,
            truncation: file.truncation,
            padding: file.padding,
            added_tokens: file.added_tokens,
            normalizer: file.normalizer,
            pre_tokenizer: file.pre_tokenizer,
            model: file.model.0,
            post_processor: file.post_processor,
            decoder: file.decoder,
        })
    }
}

/// The `tokenizer.json` document as read (the model through [`ModelIn`]).
#[derive(Deserialize)]
struct TokenizerFileIn {
    #[serde(default = "default_version")]
    version: String,
    #[serde(default)]
    truncation: Option<TruncationParams>,
    #[serde(default)]
    padding: Option<PaddingParams>,
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
    #[serde(default)]
    normalizer: Option<Normalizer>,
    #[serde(default)]
    pre_tokenizer: Option<PreTokenizer>,
    model: ModelIn,
    #[serde(default)]
    post_processor: Option<PostProcessor>,
    #[serde(default)]
    decoder: Option<Decoder>,
}

/// The `model` object. Files written by HuggingFace start it with `"type"`: the rest of the
/// object then streams straight into that model's final form, in the same pass as the rest of
/// the file (its vocabulary and merges are most of the file), and errors inside it get their
/// exact path. An object without a leading type is collected and typed by its fields
/// ([`parse_model`]).
struct ModelIn(Model);

impl<'de> Deserialize<'de> for ModelIn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::{Error as _, MapAccess, Visitor, value::MapAccessDeserializer};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ModelIn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a model object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<ModelIn, A::Error> {
                let first: Option<String> = map.next_key()?;
                if first.as_deref() == Some("type") {
                    let kind: String = map.next_value()?;
                    let rest = MapAccessDeserializer::new(map);
                    return Ok(ModelIn(match kind.as_str() {
                        "BPE" => Model::BPE(Deserialize::deserialize(rest)?),
                        "WordPiece" => Model::WordPiece(Deserialize::deserialize(rest)?),
                        "WordLevel" => Model::WordLevel(Deserialize::deserialize(rest)?),
                        "Unigram" => Model::Unigram(Deserialize::deserialize(rest)?),
                        other => return Err(A::Error::custom(unknown_model(other))),
                    }));
                }
                let mut object = serde_json::Map::new();
                if let Some(key) = first {
                    object.insert(key, map.next_value()?);
                }
                while let Some((key, value)) = map.next_entry()? {
                    object.insert(key, value);
                }
                let json = serde_json::Value::Object(object).to_string();
                parse_model(&json).map(ModelIn).map_err(|e| match e {
                    Error::Json { path, message } => A::Error::custom(format!("{path}: {message}")),
                    other => A::Error::custom(other),
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// The message for a model `type` that is none of the four.
fn unknown_model(kind: &str) -> String {
    format!(
        "unknown model type `{kind}`, expected one of `BPE`, `WordPiece`, `WordLevel`, `Unigram`"
    )
}

/// Parses the `model` object: by its `type`, or, for old files without one, by its fields (as
/// HuggingFace does: merges mean BPE, a list vocabulary Unigram, a subword prefix WordPiece).
fn parse_model(json: &str) -> Result<Model> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        merges: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        continuing_subword_prefix: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        vocab: Option<IsList>,
    }
    /// Whether a JSON value is a list, found without building it.
    struct IsList(bool);
    impl<'de> Deserialize<'de> for IsList {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = IsList;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a vocabulary")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut a: A,
                ) -> std::result::Result<IsList, A::Error> {
                    while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                    Ok(IsList(true))
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut a: A,
                ) -> std::result::Result<IsList, A::Error> {
                    while a
                        .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                        .is_some()
                    {}
                    Ok(IsList(false))
                }
            }
            d.deserialize_any(V)
        }
    }
    fn typed<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
        // The happy path parses without path tracking; only a failure parses again to find where.
        if let Ok(value) = serde_json::from_str(json) {
            return Ok(value);
        }
        let de = &mut serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            // Positions would point into the model object, not the file: drop them.
            let message = e.into_inner().to_string();
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_owned(),
                None => message,
            };
            Error::Json {
                path: if path == "." {
                    "model".into()
                } else {
                    format!("model.{path}")
                },
                message,
            }
        })
    }
    let kind = peek_kind(json)?;
    fn peek_kind(json: &str) -> Result<String> {
        Ok(match serde_json::from_str::<Peek>(json) {
            Ok(Peek {
                kind: Some(kind), ..
            }) => kind,
            Ok(peek) if peek.merges.is_some() => "BPE".into(),
            Ok(Peek {
                vocab: Some(IsList(true)),
                ..
            }) => "Unigram".into(),
            Ok(peek) if peek.continuing_subword_prefix.is_some() => "WordPiece".into(),
            Ok(_) => "WordLevel".into(),
            Err(e) => {
                return Err(Error::Json {
                    path: "model".into(),
                    message: e.to_string(),
                });
            }
        })
    }
    Ok(match kind.as_str() {
        "BPE" => Model::BPE(typed(json)?),
        "WordPiece" => Model::WordPiece(typed(json)?),
        "WordLevel" => Model::WordLevel(typed(json)?),
        "Unigram" => Model::Unigram(typed(json)?),
        other => {
            return Err(Error::Json {
                path: "model.type".into(),
                message: unknown_model(other),
            });
        }
    })
}

impl Tokenizer {
    pub(crate) fn from_file_parts(file: TokenizerFile) -> Result<Self> {
        if let Some(PostProcessor::TemplateProcessing(t)) = &file.post_processor {
            t.validate().map_err(|m| Error::Json {
                path: "post_processor".into(),
                message: m,
            })?;
        }
        if let Some(e) = file.normalizer.as_ref().and_then(Normalizer::error) {
            return Err(Error::Json {
                path: "normalizer".into(),
                message: e.to_owned(),
            });
        }
        if let Some(e) = file.pre_tokenizer.as_ref().and_then(PreTokenizer::error) {
            return Err(Error::Json {
                path: "pre_tokenizer".into(),
                message: e.to_owned(),
            });
        }
        if let Some(t) = &file.truncation
            && t.max_length > 0
            && t.stride >= t.max_length
        {
            return Err(Error::Json {
                path: "truncation.stride".into(),
                message: format!(
                    "stride {} must be smaller than max_length {}",
                    t.stride, t.max_length
                ),
            });
        }
        let added = AddedVocabulary::new(file.added_tokens, file.normalizer.as_ref())
            .map_err(Error::Invalid)?;
        let fast = FastPath::detect(
            file.normalizer.as_ref(),
            file.pre_tokenizer.as_ref(),
            &file.model,
            &added,
        );
        Ok(Tokenizer {
            fast,
            normalizer: file.normalizer,
            pre_tokenizer: file.pre_tokenizer,
            model: file.model,
            post_processor: file.post_processor,
            decoder: file.decoder,
            added,
            truncation: file.truncation,
            padding: file.padding,
        })
    }

    /// Loads a `tokenizer.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        json.parse()
    }

    /// Loads a tokenizer from a file or a model folder: a `tokenizer.json`; else GPT-2's
    /// `vocab.json` + `merges.txt`; else a BERT `vocab.txt` (uncased unless
    /// `tokenizer_config.json` says `do_lower_case: false`); or a tiktoken `<encoding>.tiktoken`
    /// rank file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if path.is_dir() {
            let json = path.join("tokenizer.json");
            if json.is_file() {
                return Tokenizer::from_file(json);
            }
            let (vocab_json, merges) = (path.join("vocab.json"), path.join("merges.txt"));
            if vocab_json.is_file() && merges.is_file() {
                return Tokenizer::from_gpt2_files(vocab_json, merges);
            }
            let vocab = path.join("vocab.txt");
            if vocab.is_file() {
                let lowercase = std::fs::read_to_string(path.join("tokenizer_config.json"))
                    .ok()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                    .and_then(|v| v.get("do_lower_case").and_then(serde_json::Value::as_bool))
                    .unwrap_or(true);
                return Tokenizer::from_bert_vocab(vocab, lowercase);
            }
            return Err(Error::Invalid(format!(
                "{} holds neither tokenizer.json nor vocab.txt",
                path.display()
            )));
        }
        if path.extension().is_some_and(|e| e == "tiktoken") {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let encoding = crate::legacy::TiktokenEncoding::from_name(&stem).ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: unknown tiktoken encoding {stem:?} (known: r50k_base, p50k_base, cl100k_base, o200k_base)",
                    path.display()
                ))
            })?;
            return Tokenizer::from_tiktoken_file(path, encoding);
        }
        if path.file_name().is_some_and(|n| n == "vocab.txt") {
            return Tokenizer::from_bert_vocab(path, true);
        }
        Tokenizer::from_file(path)
    }

    /// Builds a BERT tokenizer from a `vocab.txt`, as `BertTokenizerFast` does.
    pub fn from_bert_vocab(path: impl AsRef<Path>, lowercase: bool) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let model = WordPiece::from_vocab_txt(&text);
        let id = |t: &str| {
            model
                .vocab
                .id(t)
                .ok_or_else(|| Error::Invalid(format!("{} has no {t} token", path.display())))
        };
        let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
        let added = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .filter_map(|t| model.vocab.id(t).map(|id| AddedToken::special(*t, id)))
            .collect();
        let normalizer = Normalizer::BertNormalizer(BertNormalizer {
            lowercase,
            ..BertNormalizer::default()
        });
        Tokenizer::from_file_parts(TokenizerFile {
            version: default_version(),
            truncation: None,
            padding: None,
            added_tokens: added,
            normalizer: Some(normalizer),
            pre_tokenizer: Some(PreTokenizer::BertPreTokenizer),
            model: Model::WordPiece(model),
            // As `BertTokenizerFast` converts it: a template, built once here.
            post_processor: Some(PostProcessor::TemplateProcessing(TemplateProcessing::bert(
                ("[SEP]".into(), sep),
                ("[CLS]".into(), cls),
            ))),
            decoder: Some(Decoder::WordPiece {
                prefix: "##".into(),
                cleanup: true,
            }),
        })
    }

    /// Serializes back to a `tokenizer.json` document.
    pub fn to_json(&self, pretty: bool) -> Result<String> {
        let file = TokenizerFile {
            version: default_version(),
            truncation: self.truncation.clone(),
            padding: self.padding.clone(),
            added_tokens: self.added.tokens().to_vec(),
            normalizer: self.normalizer.clone(),
            pre_tokenizer: self.pre_tokenizer.clone(),
            model: self.model.clone(),
            post_processor: self.post_processor.clone(),
            decoder: self.decoder.clone(),
        };
        let out = if pretty {
            serde_json::to_string_pretty(&file)
        } else {
            serde_json::to_string(&file)
        };
        out.map_err(|e| Error::Invalid(format!("cannot serialize the tokenizer: {e}")))
    }

    /// Writes `tokenizer.json` atomically (temporary file, fsync, rename).
    pub fn save(&self, path: impl AsRef<Path>, pretty: bool) -> Result<()> {
        let path = path.as_ref();
        let json = self.to_json(pretty)?;
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(json.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Whether a specialised fast path encodes for this tokenizer. Its output is identical to the
    /// general pipeline's; only speed differs.
    pub fn uses_fast_path(&self) -> bool {
        self.fast.is_some()
    }

    /// Turns the fast path off (or back on, when the configuration has one), e.g. to compare both.
    pub fn with_fast_path(&mut self, enabled: bool) -> &mut Self {
        self.fast = if enabled {
            FastPath::detect(
                self.normalizer.as_ref(),
                self.pre_tokenizer.as_ref(),
                &self.model,
                &self.added,
            )
        } else {
            None
        };
        self
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Truncation settings in effect.
    pub fn truncation(&self) -> Option<&TruncationParams> {
        self.truncation.as_ref()
    }

    /// Padding settings in effect.
    pub fn padding(&self) -> Option<&PaddingParams> {
        self.padding.as_ref()
    }

    /// Sets (or removes) truncation.
    pub fn with_truncation(&mut self, params: Option<TruncationParams>) -> Result<&mut Self> {
        if let Some(t) = &params
            && t.max_length > 0
            && t.stride >= t.max_length
        {
            return Err(Error::Truncation(format!(
                "stride {} must be smaller than max_length {}",
                t.stride, t.max_length
            )));
        }
        self.truncation = params;
        Ok(self)
    }

    /// Sets (or removes) padding.
    pub fn with_padding(&mut self, params: Option<PaddingParams>) -> &mut Self {
        self.padding = params;
        self
    }

    /// Id of a token string (added tokens first, then the model's vocabulary).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.added
            .token_to_id(token)
            .or_else(|| self.model.token_to_id(token))
    }

    /// Token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.added.id_to_string(id, &self.model)
    }

    /// Size of the vocabulary, added tokens included.
    pub fn vocab_size(&self) -> usize {
        let model = self.model.vocab().len();
        model
            + self
                .added
                .tokens()
                .iter()
                .filter(|t| self.model.token_to_id(&t.content).is_none())
                .count()
    }

    /// Runs the pipeline up to the model on one sequence, sending tokens to `out`.
    fn tokenize_sequence<S: TokenSink>(&self, text: &str, out: &mut S) -> Result<()> {
        let mut word = 0;
        match &self.fast {
            Some(fast) => fast.encode(self, &self.model, &self.added, text, out, &mut word),
            None => {
                let pre = self
                    .added
                    .extract_and_normalize(self.normalizer.as_ref(), text);
                self.tokenize_splits(pre, 0, out, &mut word)
            }
        }
    }

    fn encode_sequence(&self, text: &str, type_id: u32, offsets: OffsetType) -> Result<Encoding> {
        let mut out: Vec<RawToken> = Vec::with_capacity(text.len() / 4 + 4);
        self.tokenize_sequence(text, &mut out)?;
        let mut encoding = Encoding::from_tokens(out, type_id);
        if offsets == OffsetType::Char {
            encoding.map_offsets(&char_offset_converter(text));
        }
        Ok(encoding)
    }

    /// Token ids only, the cheapest way to feed a model: no token strings, offsets or masks are
    /// built. Special tokens are added when asked; when the tokenizer truncates or pads, this
    /// goes through [`Tokenizer::encode`] so the result is always `encode(..).ids()`.
    pub fn encode_ids(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        if self.truncation.is_some() || self.padding.is_some() {
            return Ok(self.encode(text, None, add_special_tokens)?.ids);
        }
        // English averages about four bytes per token, other scripts often one or two: room
        // for two bytes per token avoids most regrowth (ids are small) without sizing for one.
        let mut ids = Vec::with_capacity(text.len() / 2 + 4);
        match (&self.post_processor, add_special_tokens) {
            (Some(p), true) => p.single_ids_into(&mut ids, |ids| {
                self.tokenize_sequence(text, &mut IdSink(ids))
            })?,
            _ => self.tokenize_sequence(text, &mut IdSink(&mut ids))?,
        }
        Ok(ids)
    }

    /// Pre-tokenizes and tokenizes the pieces of `pre`, appending tokens with offsets shifted by
    /// `shift` and one word index per piece.
    fn tokenize_splits(
        &self,
        mut pre: PreTokenizedString,
        shift: usize,
        out: &mut dyn TokenSink,
        word: &mut u32,
    ) -> Result<()> {
        if let Some(p) = &self.pre_tokenizer {
            p.pre_tokenize(&mut pre);
        }
        let mut scratch: Vec<Token> = Vec::new();
        for split in &pre.splits {
            let (start, _) = split.normalized.offsets_original();
            let tokens: &[Token] = match &split.tokens {
                Some(t) => t,
                None => {
                    scratch.clear();
                    self.model.tokenize(split.normalized.get(), &mut scratch)?;
                    &scratch
                }
            };
            for t in tokens {
                let (s, e) = split
                    .normalized
                    .normalized_to_original(t.offsets.0..t.offsets.1)
                    .map_or(t.offsets, |r| (r.start, r.end));
                out.push(
                    t.id,
                    "",
                    &t.value,
                    (s + start + shift, e + start + shift),
                    *word,
                );
            }
            *word += 1;
        }
        Ok(())
    }

    /// Encodes one text (`pair = None`) or a pair, with byte offsets.
    pub fn encode(
        &self,
        text: &str,
        pair: Option<&str>,
        add_special_tokens: bool,
    ) -> Result<Encoding> {
        self.encode_with_offsets(text, pair, add_special_tokens, OffsetType::Byte)
    }

    /// Encodes one text or a pair, with char offsets as the Python binding returns them.
    pub fn encode_char_offsets(
        &self,
        text: &str,
        pair: Option<&str>,
        add_special_tokens: bool,
    ) -> Result<Encoding> {
        self.encode_with_offsets(text, pair, add_special_tokens, OffsetType::Char)
    }

    /// Encodes one text or a pair with the chosen offset type: truncation, special tokens and
    /// padding applied as configured.
    pub fn encode_with_offsets(
        &self,
        text: &str,
        pair: Option<&str>,
        add_special_tokens: bool,
        offsets: OffsetType,
    ) -> Result<Encoding> {
        let encoding = self.encode_sequence(text, 0, offsets)?;
        let pair = pair
            .map(|p| self.encode_sequence(p, 1, offsets))
            .transpose()?;
        self.post_process(encoding, pair, add_special_tokens)
    }

    fn post_process(
        &self,
        encoding: Encoding,
        pair: Option<Encoding>,
        add_special_tokens: bool,
    ) -> Result<Encoding> {
        let (encoding, pair) = match &self.truncation {
            Some(t) => {
                let added = if add_special_tokens {
                    self.post_processor
                        .as_ref()
                        .map_or(0, |p| p.added_tokens(pair.is_some()))
                } else {
                    0
                };
                let max_length = t.max_length.checked_sub(added).ok_or_else(|| {
                    Error::Truncation(format!(
                        "max_length {} is smaller than the {added} special tokens the post-processor adds",
                        t.max_length
                    ))
                })?;
                truncate_encodings(
                    encoding,
                    pair,
                    &TruncationParams {
                        max_length,
                        ..t.clone()
                    },
                )?
            }
            None => (encoding, pair),
        };
        let mut encoding = match &self.post_processor {
            Some(p) => p.process(encoding, pair, add_special_tokens)?,
            None => default_process(encoding, pair),
        };
        if let Some(p) = &self.padding {
            pad_encodings(std::slice::from_mut(&mut encoding), p);
        }
        Ok(encoding)
    }

    /// Encodes many inputs in parallel; padding (if set) applies across the batch.
    pub fn encode_batch(
        &self,
        inputs: &[(&str, Option<&str>)],
        add_special_tokens: bool,
        offsets: OffsetType,
    ) -> Result<Vec<Encoding>> {
        let mut encodings = inputs
            .par_iter()
            .map(|(text, pair)| self.encode_with_offsets(text, *pair, add_special_tokens, offsets))
            .collect::<Result<Vec<_>>>()?;
        if let Some(p) = &self.padding {
            pad_encodings(&mut encodings, p);
        }
        Ok(encodings)
    }

    /// [`Tokenizer::encode_ids`] over many texts, in parallel, in input order.
    pub fn encode_ids_batch(
        &self,
        texts: &[&str],
        add_special_tokens: bool,
    ) -> Result<Vec<Vec<u32>>> {
        texts
            .par_iter()
            .map(|t| self.encode_ids(t, add_special_tokens))
            .collect()
    }

    /// Decodes ids into text. Unknown ids are skipped, as in HuggingFace.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> String {
        let tokens: Vec<String> = ids
            .iter()
            .filter_map(|&id| self.added.decode_string(id, &self.model))
            .filter(|t| !skip_special_tokens || !self.added.is_special(t))
            .map(str::to_owned)
            .collect();
        match &self.decoder {
            Some(d) => d.decode(tokens),
            None => tokens.join(" "),
        }
    }

    /// Joins token strings with the decoder, as transformers' `convert_tokens_to_string` does
    /// (`["hug", "##ging"]` -> `"hugging"`); tokens joined with spaces when there is no decoder.
    pub fn decode_tokens(&self, tokens: &[String]) -> String {
        match &self.decoder {
            Some(d) => d.decode(tokens.to_vec()),
            None => tokens.join(" "),
        }
    }

    /// The model's continuing-subword prefix (`##` for WordPiece; BPE's when it sets a
    /// non-empty one), which word-aware post-processing uses to find word boundaries.
    pub fn continuing_subword_prefix(&self) -> Option<&str> {
        match &self.model {
            Model::WordPiece(w) => Some(w.continuing_subword_prefix.as_str()),
            Model::BPE(b) => b.continuing_subword_prefix.as_deref(),
            _ => None,
        }
        .filter(|p| !p.is_empty())
    }

    /// Decodes many id sequences in parallel.
    pub fn decode_batch(&self, batch: &[Vec<u32>], skip_special_tokens: bool) -> Vec<String> {
        batch
            .par_iter()
            .map(|ids| self.decode(ids, skip_special_tokens))
            .collect()
    }
}

impl GeneralPath for Tokenizer {
    /// The general pipeline on a piece without raw added tokens: normalize, find the normalized
    /// added tokens, pre-tokenize, tokenize.
    fn encode_plain(
        &self,
        text: &str,
        shift: usize,
        out: &mut dyn TokenSink,
        word: &mut u32,
    ) -> Result<()> {
        let mut n = NormalizedString::with_shift(text, shift);
        if let Some(normalizer) = &self.normalizer {
            normalizer.normalize(&mut n);
        }
        let splits = self
            .added
            .split_normalized(n)
            .into_iter()
            .filter(|s| !s.normalized.is_empty())
            .collect();
        let pre = PreTokenizedString {
            original: text.to_owned(),
            splits,
        };
        // The pieces already carry `shift` in their original offsets.
        self.tokenize_splits(pre, 0, out, word)
    }
}

/// Truncates a sequence or pair to `params.max_length` tokens in all.
fn truncate_encodings(
    mut encoding: Encoding,
    mut pair: Option<Encoding>,
    params: &TruncationParams,
) -> Result<(Encoding, Option<Encoding>)> {
    let trunc = |e: &mut Encoding, n: usize| {
        e.truncate(n, params.stride, params.direction)
            .map_err(Error::Truncation)
    };
    if params.max_length == 0 {
        trunc(&mut encoding, 0)?;
        if let Some(p) = pair.as_mut() {
            trunc(p, 0)?;
        }
        return Ok((encoding, pair));
    }
    let total = encoding.len() + pair.as_ref().map_or(0, Encoding::len);
    if total <= params.max_length {
        return Ok((encoding, pair));
    }
    let to_remove = total - params.max_length;
    match params.strategy {
        TruncationStrategy::LongestFirst => match pair.as_mut() {
            Some(p) => {
                let (mut n1, mut n2) = (encoding.len(), p.len());
                let swap = n1 > n2;
                if swap {
                    std::mem::swap(&mut n1, &mut n2);
                }
                if n1 > params.max_length {
                    n2 = n1;
                } else {
                    n2 = n1.max(params.max_length - n1);
                }
                if n1 + n2 > params.max_length {
                    n1 = params.max_length / 2;
                    n2 = n1 + params.max_length % 2;
                }
                if swap {
                    std::mem::swap(&mut n1, &mut n2);
                }
                trunc(&mut encoding, n1)?;
                trunc(p, n2)?;
            }
            None => trunc(&mut encoding, total - to_remove)?,
        },
        TruncationStrategy::OnlyFirst | TruncationStrategy::OnlySecond => {
            let target = if params.strategy == TruncationStrategy::OnlyFirst {
                &mut encoding
            } else {
                pair.as_mut().ok_or_else(|| {
                    Error::Truncation("only_second truncation needs a pair of sequences".into())
                })?
            };
            let len = target.len();
            if len > to_remove {
                trunc(target, len - to_remove)?;
            } else {
                return Err(Error::Truncation(format!(
                    "the sequence to truncate has {len} tokens, too few to remove the {to_remove} needed"
                )));
            }
        }
    }
    Ok((encoding, pair))
}

/// Pads every encoding to the target length of `params`.
pub fn pad_encodings(encodings: &mut [Encoding], params: &PaddingParams) {
    let mut target = match params.strategy {
        PaddingStrategy::Fixed(n) => n,
        PaddingStrategy::BatchLongest => encodings.iter().map(Encoding::len).max().unwrap_or(0),
    };
    if let Some(m) = params.pad_to_multiple_of.filter(|&m| m > 0)
        && target % m > 0
    {
        target += m - target % m;
    }
    for e in encodings {
        e.pad(
            target,
            params.pad_id,
            params.pad_type_id,
            &params.pad_token,
            params.direction,
        );
    }
}
