//! Task options, named as `transformers.pipeline` names its call arguments.

/// How many labels / predictions to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopK {
    /// The task's default (and, for text classification, transformers' legacy output shape).
    #[default]
    Default,
    /// Every label (`top_k=None`).
    All,
    /// The `k` best.
    K(usize),
}

/// What text classification applies to the logits (`function_to_apply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreFunction {
    /// Softmax over the labels.
    Softmax,
    /// A sigmoid per label.
    Sigmoid,
    /// The raw logits.
    None,
}

/// How token classification groups tokens into entities (`aggregation_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregation {
    /// One entry per token.
    #[default]
    None,
    /// Consecutive tokens with the same entity type (B-/I- tags) are merged.
    Simple,
    /// Words take the label of their first token.
    First,
    /// Words take the label with the best average score over their tokens.
    Average,
    /// Words take the label of their highest-scoring token.
    Max,
}

impl Aggregation {
    /// Parses `none`, `simple`, `first`, `average` or `max`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Self::None,
            "simple" => Self::Simple,
            "first" => Self::First,
            "average" => Self::Average,
            "max" => Self::Max,
            _ => return None,
        })
    }
}

/// Every option of every task; each task reads the ones it knows.
#[derive(Debug, Clone)]
pub struct Options {
    /// Labels / predictions to return (text classification, fill-mask, QA).
    pub top_k: TopK,
    /// Text classification's score function (`None` = the model's default).
    pub function_to_apply: Option<ScoreFunction>,
    /// Token classification's grouping.
    pub aggregation_strategy: Aggregation,
    /// Token classification: labels left out of the output (default `["O"]`).
    pub ignore_labels: Option<Vec<String>>,
    /// Fill-mask: restrict predictions to these tokens.
    pub targets: Option<Vec<String>>,
    /// Zero-shot: the labels to choose from.
    pub candidate_labels: Vec<String>,
    /// Zero-shot: the hypothesis, with `{}` where the label goes.
    pub hypothesis_template: String,
    /// Zero-shot: labels are independent (a sigmoid-like score each) instead of exclusive.
    pub multi_label: bool,
    /// QA: tokens shared by consecutive windows of a long context (default: half the window,
    /// at most 128).
    pub doc_stride: Option<usize>,
    /// QA: the longest answer, in tokens.
    pub max_answer_len: usize,
    /// QA: the most tokens of a question-context window (default: the model's limit, at most 384).
    pub max_seq_len: Option<usize>,
    /// QA: the most tokens of the question.
    pub max_question_len: usize,
    /// QA: allow the empty answer.
    pub handle_impossible_answer: bool,
    /// QA: the context for a plain question input.
    pub context: Option<String>,
    /// Truncate inputs to at most this many tokens (within the model's limit).
    pub max_length: Option<usize>,
    /// feature-extraction on a sentence-transformers model: `Some(false)` returns token vectors
    /// as transformers' pipeline does; by default (`None`) the pooled sentence embedding, as
    /// the Hub serves sentence-transformers models.
    pub sentence_embeddings: Option<bool>,
    /// QA: widen answers to whole words (transformers' `align_to_words`, default true).
    pub align_to_words: bool,
    /// text-generation: `generate()` settings (`max_new_tokens`, `do_sample`, `temperature`,
    /// `top_k`, `top_p`, `min_p`, `repetition_penalty`, `num_beams`, `seed`, `stop_strings` …)
    /// over the model's `generation_config.json`.
    pub generate: serde_json::Map<String, serde_json::Value>,
    /// text-generation: return the prompt followed by the continuation (default), or the
    /// continuation alone.
    pub return_full_text: Option<bool>,
}

impl Options {
    /// The options that matter for `task`, as JSON (for the evidence card).
    pub fn to_json(&self, task: crate::PipelineTask) -> serde_json::Value {
        use crate::PipelineTask as T;
        use serde_json::json;
        let top_k = match self.top_k {
            TopK::Default => json!("default"),
            TopK::All => json!(null),
            TopK::K(k) => json!(k),
        };
        match task {
            T::TextClassification => json!({
                "top_k": top_k,
                "function_to_apply": self.function_to_apply.map(|f| format!("{f:?}")),
                "max_length": self.max_length,
            }),
            T::TokenClassification => json!({
                "aggregation_strategy": format!("{:?}", self.aggregation_strategy).to_lowercase(),
                "ignore_labels": self.ignore_labels.clone().unwrap_or_else(|| vec!["O".into()]),
                "max_length": self.max_length,
            }),
            T::FillMask => json!({"top_k": top_k, "targets": self.targets}),
            T::QuestionAnswering => json!({
                "top_k": top_k,
                "doc_stride": self.doc_stride,
                "max_answer_len": self.max_answer_len,
                "max_seq_len": self.max_seq_len,
                "handle_impossible_answer": self.handle_impossible_answer,
                "align_to_words": self.align_to_words,
            }),
            T::ZeroShotClassification => json!({
                "candidate_labels": self.candidate_labels,
                "hypothesis_template": self.hypothesis_template,
                "multi_label": self.multi_label,
            }),
            T::Summarization | T::Translation | T::Text2TextGeneration => json!({
                "generate": self.generate,
            }),
            T::TextGeneration => json!({
                "generate": self.generate,
                "return_full_text": self.return_full_text.unwrap_or(true),
            }),
            T::FeatureExtraction | T::SentenceSimilarity => json!({
                "max_length": self.max_length,
                "sentence_embeddings": self.sentence_embeddings,
            }),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            top_k: TopK::Default,
            function_to_apply: None,
            aggregation_strategy: Aggregation::None,
            ignore_labels: None,
            targets: None,
            candidate_labels: Vec::new(),
            hypothesis_template: "This example is {}.".into(),
            multi_label: false,
            doc_stride: None,
            max_answer_len: 15,
            max_seq_len: None,
            max_question_len: 64,
            handle_impossible_answer: false,
            context: None,
            align_to_words: true,
            max_length: None,
            sentence_embeddings: None,
            generate: serde_json::Map::new(),
            return_full_text: None,
        }
    }
}
