//! `embrace train`: fine-tune a model on a dataset.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use embrace_datasets::{Dataset, Feature, Loaded, load_path};
use embrace_train::autograd::LoraSettings;
use embrace_train::{
    Adaptation, SchedulerType, TextClassificationJob, TrainingArguments,
    fine_tune_text_classification, fine_tune_token_classification, train_text_classification,
};
use serde_json::json;

/// Arguments of `embrace train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    task: TrainTask,
}

#[derive(Debug, clap::Subcommand)]
enum TrainTask {
    /// Train a text classifier (sentiment, topics, …): the encoder stays frozen, its pooler and
    /// a classifier are trained; writes a folder transformers and `embrace pipeline` load.
    ///
    /// Example: embrace train text-classification --model sentence-transformers/all-MiniLM-L6-v2
    ///   --train-file tweets.csv --text-column text --label-column sentiment --output out/sentiment
    TextClassification(Box<ClassificationArgs>),
    /// Train a token classifier (NER) from CoNLL-style data (`word<TAB>tag` lines, blank
    /// lines between sentences), labels on the first sub-token of every word; reports seqeval
    /// entity F1. `--adapter head` (default) trains a classifier on the frozen encoder; `lora`
    /// and `full` fine-tune the encoder too.
    ///
    /// Example: embrace train token-classification --model sentence-transformers/all-MiniLM-L6-v2
    ///   --train-file ner.txt --adapter lora --output out/ner
    TokenClassification(Box<TokenArgs>),
}

/// What trains and how: options shared by every task.
#[derive(Debug, clap::Args)]
struct TuningArgs {
    /// What trains: `head` (a classifier on the frozen encoder, fast), `lora` (LoRA adapters
    /// on the encoder plus the classifier; writes a PEFT adapter folder), or `full` (every
    /// weight; writes a complete transformers folder).
    #[arg(long, default_value = "head", value_parser = ["head", "lora", "full"])]
    adapter: String,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    lora_r: usize,
    /// LoRA alpha (the update is scaled by alpha / r).
    #[arg(long, default_value_t = 16.0)]
    lora_alpha: f64,
    /// LoRA target modules, comma-separated (query, key, value, attention.output.dense,
    /// intermediate.dense, output.dense).
    #[arg(long, default_value = "query,value")]
    lora_targets: String,
    /// Learning-rate schedule after the warm-up.
    #[arg(long, default_value = "linear", value_parser = ["linear", "cosine", "constant"])]
    lr_scheduler: String,
    /// Stop after this many epochs without a better validation score (macro-F1, or entity F1
    /// for token classification); the best epoch is kept.
    #[arg(long)]
    early_stopping_patience: Option<usize>,
    /// --adapter lora|full: sum the gradients of this many batches per optimizer update.
    #[arg(long, default_value_t = 1)]
    gradient_accumulation_steps: usize,
    /// --adapter lora|full: save a checkpoint (OUTPUT/checkpoint-STEP) every this many updates.
    #[arg(long)]
    save_steps: Option<usize>,
    /// Keep only this many checkpoints (the oldest are deleted).
    #[arg(long)]
    save_total_limit: Option<usize>,
    /// --adapter lora|full: continue from a checkpoint folder, or `last` for the newest one in
    /// --output (same data and options as the interrupted run).
    #[arg(long, value_name = "DIR|last")]
    resume_from_checkpoint: Option<String>,
}

impl TuningArgs {
    /// `None` for head training, else how the encoder is adapted.
    fn adaptation(&self) -> Option<Adaptation> {
        match self.adapter.as_str() {
            "lora" => Some(Adaptation::Lora(LoraSettings {
                rank: self.lora_r,
                alpha: self.lora_alpha,
                target_modules: self
                    .lora_targets
                    .split(',')
                    .map(|t| t.trim().to_string())
                    .collect(),
            })),
            "full" => Some(Adaptation::Full),
            _ => None,
        }
    }

    /// `base` with the schedule, early stopping, accumulation and checkpoint settings.
    fn arguments(&self, base: TrainingArguments) -> TrainingArguments {
        TrainingArguments {
            lr_scheduler_type: SchedulerType::parse(&self.lr_scheduler).unwrap_or_default(),
            early_stopping_patience: self.early_stopping_patience,
            gradient_accumulation_steps: self.gradient_accumulation_steps.max(1),
            save_steps: self.save_steps,
            save_total_limit: self.save_total_limit,
            resume_from_checkpoint: self.resume_from_checkpoint.clone(),
            ..base
        }
    }
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The base model (a folder or a repo id in the Hugging Face cache).
    #[arg(long, short = 'm')]
    model: String,
    /// CoNLL-style training data; fixed-seed validation and test hold-outs are taken from it
    /// unless --validation-file and --test-file are given.
    #[arg(long)]
    train_file: PathBuf,
    /// CoNLL-style validation data (with --test-file: no hold-outs are taken).
    #[arg(long, requires = "test_file")]
    validation_file: Option<PathBuf>,
    /// CoNLL-style test data (with --validation-file).
    #[arg(long, requires = "validation_file")]
    test_file: Option<PathBuf>,
    /// Fraction held out for validation and for test each.
    #[arg(long, default_value_t = 0.1)]
    holdout: f64,
    /// The output folder.
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// --adapter head: write only the classifier plus a pointer to --model.
    #[arg(long)]
    head_only: bool,
    /// Write the train / validation / test sentences of the split to DIR as CoNLL files
    /// (train.txt, validation.txt, test.txt), e.g. for a baseline in another library.
    #[arg(long, value_name = "DIR")]
    write_split: Option<PathBuf>,
    #[command(flatten)]
    tuning: TuningArgs,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Sentences per optimisation step (--adapter head: words; default 32, head 256).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate (default 1e-3; --adapter head 3e-3).
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Tokens per sentence.
    #[arg(long, default_value_t = 128)]
    max_length: usize,
    /// The dataset's name for the model card.
    #[arg(long)]
    dataset_name: Option<String>,
}

fn run_token(a: &TokenArgs) -> Result<()> {
    use embrace_train::{
        TaggedSentence, TokenClassificationJob, read_conll, train_token_classification,
    };
    let (train, validation, test) = match (&a.validation_file, &a.test_file) {
        (Some(v), Some(t)) => (
            read_conll(&a.train_file)?.0,
            read_conll(v)?.0,
            read_conll(t)?.0,
        ),
        _ => {
            let (sentences, _) = read_conll(&a.train_file)?;
            // Seeded hold-outs of whole sentences: test, validation, then train.
            let order = embrace_datasets::Dataset::from_json_rows(
                &(0..sentences.len())
                    .map(|i| json!({"i": i}))
                    .collect::<Vec<_>>(),
            )?
            .shuffle(a.seed)?
            .rows(0, sentences.len())?
            .iter()
            .map(|r| r["i"].as_u64().unwrap_or(0) as usize)
            .collect::<Vec<_>>();
            let hold = ((sentences.len() as f64) * a.holdout).ceil() as usize;
            if hold == 0 || 2 * hold >= sentences.len() {
                bail!(
                    "--holdout {} leaves no sentences to train on ({} sentences)",
                    a.holdout,
                    sentences.len()
                );
            }
            let pick = |r: &[usize]| r.iter().map(|&i| sentences[i].clone()).collect::<Vec<_>>();
            (
                pick(&order[2 * hold..]),
                pick(&order[hold..2 * hold]),
                pick(&order[..hold]),
            )
        }
    };
    if let Some(dir) = &a.write_split {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, part) in [
            ("train", &train),
            ("validation", &validation),
            ("test", &test),
        ] {
            let mut text = String::new();
            for sentence in part {
                for (word, tag) in sentence {
                    text.push_str(&format!("{word}\t{tag}\n"));
                }
                text.push('\n');
            }
            let path = dir.join(format!("{name}.txt"));
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    // The labels of all three parts: `O` first, then the other tags sorted (as read_conll
    // orders one file's), so a split and its source file give the same label ids.
    let mut labels: Vec<String> = train
        .iter()
        .chain(&validation)
        .chain(&test)
        .flatten()
        .map(|(_, t)| t.clone())
        .filter(|t| t != "O")
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    labels.insert(0, "O".to_owned());
    let index: std::collections::HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let tag = |part: &[Vec<(String, String)>]| -> Vec<TaggedSentence> {
        part.iter()
            .map(|s| TaggedSentence {
                words: s.iter().map(|(w, _)| w.clone()).collect(),
                tags: s.iter().map(|(_, t)| index[t.as_str()]).collect(),
            })
            .collect()
    };
    let (train, validation, test) = (tag(&train), tag(&validation), tag(&test));
    eprintln!(
        "training on {} sentences (validation {}, test {}), {} tags",
        train.len(),
        validation.len(),
        test.len(),
        labels.len()
    );
    let head = a.tuning.adapter == "head";
    let job = TokenClassificationJob {
        base_model: a.model.clone(),
        labels,
        train,
        validation,
        test,
        args: a.tuning.arguments(TrainingArguments {
            num_train_epochs: a.epochs,
            per_device_train_batch_size: a.batch_size.unwrap_or(if head { 256 } else { 32 }),
            learning_rate: a.learning_rate.unwrap_or(if head { 3e-3 } else { 1e-3 }),
            seed: a.seed,
            max_length: a.max_length,
            ..TrainingArguments::default()
        }),
        output_dir: a.output.clone(),
        head_only: a.head_only,
        dataset_name: a.dataset_name.clone(),
    };
    let report = match a.tuning.adaptation() {
        Some(adaptation) => fine_tune_token_classification(&job, &adaptation)?,
        None => train_token_classification(&job)?,
    };
    let s = |x: &embrace_train::token_classification::EntityScores| json!({"precision": x.precision, "recall": x.recall, "f1": x.f1});
    println!(
        "{}",
        json!({"output": a.output, "validation": s(&report.validation), "test": s(&report.test)})
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
struct ClassificationArgs {
    /// The base model (a folder or a repo id in the Hugging Face cache).
    #[arg(long, short = 'm')]
    model: String,
    /// Training data: .csv, .tsv, .json, .jsonl, .parquet, or a save_to_disk folder (a
    /// DatasetDict's train / validation / test splits are used as they are).
    #[arg(long, visible_alias = "dataset")]
    train_file: PathBuf,
    /// Validation data (default: split from the training data).
    #[arg(long)]
    validation_file: Option<PathBuf>,
    /// Test data (default: split from the training data).
    #[arg(long)]
    test_file: Option<PathBuf>,
    /// Fraction held out for validation and for test each, when no files are given.
    #[arg(long, default_value_t = 0.1)]
    holdout: f64,
    /// The text column.
    #[arg(long, default_value = "text")]
    text_column: String,
    /// The label column (text labels become a ClassLabel, names sorted).
    #[arg(long, default_value = "label")]
    label_column: String,
    /// The output folder.
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// Write only the trained tensors plus a pointer to --model (a few hundred KB).
    #[arg(long)]
    head_only: bool,
    #[command(flatten)]
    tuning: TuningArgs,
    /// Train on at most this many examples (a seeded sample), e.g. to fine-tune on a CPU quickly.
    #[arg(long)]
    max_train_samples: Option<usize>,
    /// Epochs.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Peak learning rate (linear warm-up and decay).
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Seed (same seed, same model).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Tokens per example.
    #[arg(long, default_value_t = 128)]
    max_length: usize,
    /// Replace invalid UTF-8 in CSV files with U+FFFD.
    #[arg(long)]
    lossy_utf8: bool,
    /// Weight each class's loss by n / (classes x count), for imbalanced labels.
    #[arg(long)]
    balanced: bool,
    /// The dataset's name for the model card.
    #[arg(long)]
    dataset_name: Option<String>,
}

fn single(path: &std::path::Path, lossy: bool) -> Result<Dataset> {
    match load_path(path, lossy)? {
        Loaded::Dataset(d) => Ok(d),
        Loaded::Dict(_) => bail!(
            "{} is a DatasetDict; pass it as --train-file",
            path.display()
        ),
    }
}

fn classify(d: Dataset, column: &str) -> Result<Dataset> {
    Ok(match d.features().get(column) {
        Some(Feature::ClassLabel(_)) => d,
        Some(_) => d.class_encode_column(column)?,
        None => bail!(
            "no column `{column}`; columns: {}",
            d.column_names().join(", ")
        ),
    })
}

/// Runs the `train` command.
pub fn run(args: Args) -> Result<()> {
    // Training frees and reallocates large tensors at every step: keep that memory in the
    // process instead of mapping it afresh each time (see embrace_train::memory).
    if !embrace_train::memory::reuse_freed_memory() {
        tracing::debug!("the allocator keeps its default settings");
    }
    let a = match args.task {
        TrainTask::TextClassification(a) => a,
        TrainTask::TokenClassification(t) => return run_token(&t),
    };
    let (train, validation, test) = match load_path(&a.train_file, a.lossy_utf8)? {
        Loaded::Dict(dict) => {
            let get = |n: &str| dict.get(n).cloned();
            let train = get("train").context("the DatasetDict has no train split")?;
            (train, get("validation"), get("test"))
        }
        Loaded::Dataset(d) => {
            let d = classify(d, &a.label_column)?;
            match (&a.validation_file, &a.test_file) {
                (None, None) => {
                    // Fixed-seed hold-outs: test first, then validation from the rest.
                    let (rest, test) = d.train_test_split(a.holdout, Some(a.seed))?;
                    let (train, validation) =
                        rest.train_test_split(a.holdout / (1.0 - a.holdout), Some(a.seed))?;
                    (train, Some(validation), Some(test))
                }
                (v, t) => (
                    d,
                    v.as_ref().map(|p| single(p, a.lossy_utf8)).transpose()?,
                    t.as_ref().map(|p| single(p, a.lossy_utf8)).transpose()?,
                ),
            }
        }
    };
    let mut train = classify(train, &a.label_column)?;
    if let Some(n) = a.max_train_samples
        && n < train.num_rows()
    {
        train = train.shuffle(a.seed)?.take(n)?;
    }
    // Validation and test take the training labels' names (same ClassLabel).
    let align = |d: Option<Dataset>| -> Result<Option<Dataset>> {
        d.map(|d| classify(d, &a.label_column)).transpose()
    };
    let (validation, test) = (align(validation)?, align(test)?);
    eprintln!(
        "training on {} examples (validation {}, test {})",
        train.num_rows(),
        validation.as_ref().map_or(0, Dataset::num_rows),
        test.as_ref().map_or(0, Dataset::num_rows)
    );
    let job = TextClassificationJob {
        base_model: a.model.clone(),
        train,
        validation,
        test,
        text_column: a.text_column.clone(),
        label_column: a.label_column.clone(),
        args: a.tuning.arguments(TrainingArguments {
            num_train_epochs: a.epochs,
            per_device_train_batch_size: a.batch_size,
            learning_rate: a.learning_rate,
            seed: a.seed,
            max_length: a.max_length,
            balanced_class_weights: a.balanced,
            ..TrainingArguments::default()
        }),
        output_dir: a.output.clone(),
        head_only: a.head_only,
        dataset_name: a.dataset_name.clone(),
    };
    let report = match a.tuning.adaptation() {
        Some(adaptation) => fine_tune_text_classification(&job, &adaptation)?,
        None => train_text_classification(&job)?,
    };
    let m = |x: &Option<embrace_train::ClassificationMetrics>| {
        x.as_ref()
            .map(|m| json!({"accuracy": m.accuracy, "f1_macro": m.macro_f1}))
    };
    println!(
        "{}",
        json!({
            "output": a.output,
            "labels": report.labels,
            "validation": m(&report.validation),
            "test": m(&report.test),
            "encode_seconds": report.encode_seconds,
            "train_seconds": report.train_seconds,
        })
    );
    Ok(())
}
