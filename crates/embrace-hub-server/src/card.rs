//! Model and dataset cards: the YAML front matter of `README.md`, and the repository metadata the
//! Hub derives from it and from the files (tags, `pipeline_tag`, `library_name`, `config`).

use serde_json::{Map, Value, json};

use crate::db::FileEntry;
use crate::ids::RepoType;

/// Splits a README into its YAML front matter (parsed) and the Markdown body.
///
/// No front matter gives `Ok((None, whole text))`; front matter that is not valid YAML, or not a
/// mapping, gives `Err(message)`.
pub fn split_front_matter(readme: &str) -> Result<(Option<Value>, &str), String> {
    let trimmed = readme.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let Some(rest) = trimmed.strip_prefix("---") else {
        return Ok((None, readme));
    };
    let Some(rest) = rest
        .strip_prefix('\n')
        .or_else(|| rest.strip_prefix("\r\n"))
    else {
        return Ok((None, readme));
    };
    // The closing `---` line.
    let mut offset = 0;
    let mut yaml_end = None;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            yaml_end = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
    }
    let Some((yaml_end, body_start)) = yaml_end else {
        return Ok((None, readme));
    };
    let yaml = &rest[..yaml_end];
    let body = &rest[body_start..];
    if yaml.trim().is_empty() {
        return Ok((Some(Value::Object(Map::new())), body));
    }
    let value: Value =
        serde_yaml::from_str(yaml).map_err(|e| format!("Invalid YAML in README.md: {e}"))?;
    match value {
        Value::Object(_) => Ok((Some(value), body)),
        Value::Null => Ok((Some(Value::Object(Map::new())), body)),
        _ => Err("The YAML front matter of README.md must be a mapping".to_string()),
    }
}

/// Checks card metadata the way a permissive validator should: syntax, and the types clients
/// rely on. Returns (errors, warnings).
pub fn validate(readme: &str) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    match split_front_matter(readme) {
        Err(e) => errors.push(e),
        Ok((None, _)) => {}
        Ok((Some(card), _)) => {
            for key in ["tags", "metrics", "datasets", "language"] {
                match card.get(key) {
                    None | Some(Value::Null | Value::Array(_)) => {}
                    Some(Value::String(_)) if key != "tags" => {}
                    Some(_) => errors.push(format!("\"{key}\" must be a list of strings")),
                }
            }
            if let Some(license) = card.get("license")
                && !license.is_string()
            {
                errors.push("\"license\" must be a string".to_string());
            }
            if card.get("configs").is_some_and(|c| !c.is_array()) {
                errors.push("\"configs\" must be a list".to_string());
            }
            if card.get("license").is_none() {
                warnings
                    .push("empty or missing yaml metadata in repo card: no license".to_string());
            }
        }
    }
    (errors, warnings)
}

/// Metadata the Hub derives for a repository at one commit.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RepoMeta {
    /// The card's front matter, `tags`/`metrics` normalised to lists.
    pub card_data: Option<Value>,
    /// Derived tags (library, formats, model type, card tags, task, languages, datasets, license…).
    pub tags: Vec<String>,
    /// The task, from the card or the architectures in `config.json`.
    pub pipeline_tag: Option<String>,
    /// The library, from the card or the files.
    pub library_name: Option<String>,
    /// `{"architectures", "model_type"}` from `config.json`.
    pub config: Option<Value>,
    /// The card's `model-index`.
    pub model_index: Option<Value>,
    /// `{"auto_model", "pipeline_tag", "processor"}` for transformers models.
    pub transformers_info: Option<Value>,
}

fn as_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The task implied by a transformers architecture name.
fn pipeline_from_architecture(arch: &str) -> Option<(&'static str, &'static str)> {
    const TABLE: &[(&str, &str, &str)] = &[
        ("ForMaskedLM", "fill-mask", "AutoModelForMaskedLM"),
        ("ForCausalLM", "text-generation", "AutoModelForCausalLM"),
        ("LMHeadModel", "text-generation", "AutoModelForCausalLM"),
        (
            "ForSequenceClassification",
            "text-classification",
            "AutoModelForSequenceClassification",
        ),
        (
            "ForTokenClassification",
            "token-classification",
            "AutoModelForTokenClassification",
        ),
        (
            "ForQuestionAnswering",
            "question-answering",
            "AutoModelForQuestionAnswering",
        ),
        (
            "ForConditionalGeneration",
            "text2text-generation",
            "AutoModelForSeq2SeqLM",
        ),
        (
            "ForMultipleChoice",
            "multiple-choice",
            "AutoModelForMultipleChoice",
        ),
        (
            "ForImageClassification",
            "image-classification",
            "AutoModelForImageClassification",
        ),
        ("Model", "feature-extraction", "AutoModel"),
    ];
    TABLE
        .iter()
        .find(|(suffix, _, _)| arch.ends_with(suffix))
        .map(|(_, task, auto)| (*task, *auto))
}

/// Derives repository metadata from the file list, the README text and `config.json`.
pub fn derive(
    repo_type: RepoType,
    files: &[FileEntry],
    readme: Option<&str>,
    config_json: Option<&str>,
) -> RepoMeta {
    let mut meta = RepoMeta::default();
    let mut card = readme
        .and_then(|text| split_front_matter(text).ok())
        .and_then(|(card, _)| card)
        .unwrap_or(Value::Null);
    if let Value::Object(map) = &mut card {
        for key in ["tags", "metrics"] {
            if let Some(v) = map.get(key)
                && !v.is_array()
            {
                let list = as_list(Some(v));
                map.insert(key.to_string(), json!(list));
            }
        }
    }
    let config: Option<Value> = config_json.and_then(|text| serde_json::from_str(text).ok());
    let mut tags: Vec<String> = Vec::new();
    let push = |tag: String, tags: &mut Vec<String>| {
        if !tag.is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
    };
    let has = |pred: &dyn Fn(&str) -> bool| files.iter().any(|f| pred(&f.path));

    match repo_type {
        RepoType::Model | RepoType::Space => {
            let library = card
                .get("library_name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    if has(&|p| p == "config_sentence_transformers.json" || p == "modules.json") {
                        Some("sentence-transformers".into())
                    } else if has(&|p| p == "adapter_config.json") {
                        Some("peft".into())
                    } else if has(&|p| p == "model_index.json") {
                        Some("diffusers".into())
                    } else if config
                        .as_ref()
                        .is_some_and(|c| c.get("architectures").is_some())
                    {
                        Some("transformers".into())
                    } else if has(&|p| p.ends_with(".gguf")) {
                        Some("gguf".into())
                    } else {
                        None
                    }
                });
            if let Some(lib) = &library {
                push(lib.clone(), &mut tags);
            }
            for (pred, tag) in [
                (
                    &(|p: &str| p.ends_with(".bin") || p.ends_with(".pt")) as &dyn Fn(&str) -> bool,
                    "pytorch",
                ),
                (&|p: &str| p.ends_with(".safetensors"), "safetensors"),
                (&|p: &str| p.ends_with(".h5"), "tf"),
                (&|p: &str| p.ends_with(".msgpack"), "jax"),
                (&|p: &str| p.ends_with(".onnx"), "onnx"),
                (&|p: &str| p.ends_with(".gguf"), "gguf"),
            ] {
                if has(pred) {
                    push(tag.to_string(), &mut tags);
                }
            }
            let architectures = as_list(config.as_ref().and_then(|c| c.get("architectures")));
            let model_type = config
                .as_ref()
                .and_then(|c| c.get("model_type"))
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(mt) = &model_type {
                push(mt.clone(), &mut tags);
            }
            for tag in as_list(card.get("tags")) {
                push(tag, &mut tags);
            }
            let inferred = architectures
                .first()
                .and_then(|a| pipeline_from_architecture(a));
            meta.pipeline_tag = card
                .get("pipeline_tag")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| inferred.map(|(task, _)| task.to_string()));
            if let Some(task) = &meta.pipeline_tag {
                push(task.clone(), &mut tags);
            }
            for lang in as_list(card.get("language")) {
                push(lang, &mut tags);
            }
            for ds in as_list(card.get("datasets")) {
                push(format!("dataset:{ds}"), &mut tags);
            }
            if let Some(license) = card.get("license").and_then(Value::as_str) {
                push(format!("license:{license}"), &mut tags);
            }
            let relation = card
                .get("base_model_relation")
                .and_then(Value::as_str)
                .unwrap_or(if library.as_deref() == Some("peft") {
                    "adapter"
                } else {
                    "finetune"
                })
                .to_string();
            for base in as_list(card.get("base_model")) {
                push(format!("base_model:{base}"), &mut tags);
                push(format!("base_model:{relation}:{base}"), &mut tags);
            }
            if config.is_some() {
                let mut c = Map::new();
                if !architectures.is_empty() {
                    c.insert("architectures".into(), json!(architectures));
                }
                if let Some(mt) = &model_type {
                    c.insert("model_type".into(), json!(mt));
                }
                meta.config = Some(Value::Object(c));
            }
            if library.as_deref() == Some("transformers")
                && let Some((task, auto)) = inferred
            {
                meta.transformers_info = Some(json!({
                    "auto_model": auto,
                    "pipeline_tag": meta.pipeline_tag.clone().unwrap_or_else(|| task.to_string()),
                    "processor": "AutoTokenizer",
                }));
            }
            meta.library_name = library;
            meta.model_index = card.get("model-index").cloned();
        }
        RepoType::Dataset => {
            for tag in as_list(card.get("tags")) {
                push(tag, &mut tags);
            }
            for (key, prefix) in [
                ("task_categories", "task_categories"),
                ("task_ids", "task_ids"),
                ("language", "language"),
                ("size_categories", "size_categories"),
                ("multilinguality", "multilinguality"),
                ("source_datasets", "source_datasets"),
                ("annotations_creators", "annotations_creators"),
            ] {
                for value in as_list(card.get(key)) {
                    push(format!("{prefix}:{value}"), &mut tags);
                }
            }
            if let Some(license) = card.get("license").and_then(Value::as_str) {
                push(format!("license:{license}"), &mut tags);
            }
            for (ext, format) in [
                (".parquet", "parquet"),
                (".csv", "csv"),
                (".json", "json"),
                (".jsonl", "json"),
                (".txt", "text"),
                (".arrow", "arrow"),
            ] {
                if has(&|p| p.ends_with(ext) && !p.starts_with('.')) {
                    push(format!("format:{format}"), &mut tags);
                }
            }
            if has(&|p| p.ends_with(".parquet") || p.ends_with(".csv") || p.ends_with(".jsonl")) {
                push("library:datasets".into(), &mut tags);
            }
        }
    }
    push("region:us".to_string(), &mut tags);
    meta.tags = tags;
    meta.card_data = if card.is_null() { None } else { Some(card) };
    meta
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(path: &str) -> FileEntry {
        FileEntry {
            path: path.into(),
            size: 1,
            sha256: "0".repeat(64),
            git_oid: "0".repeat(40),
            lfs: false,
        }
    }

    #[test]
    fn front_matter_is_split_from_the_body() {
        let (card, body) =
            split_front_matter("---\nlicense: mit\ntags:\n- a\n---\n# Title\n").unwrap();
        assert_eq!(card.unwrap()["license"], "mit");
        assert_eq!(body, "# Title\n");
        let (card, body) = split_front_matter("# No card\n").unwrap();
        assert!(card.is_none());
        assert_eq!(body, "# No card\n");
        assert!(split_front_matter("---\nlicense: [unclosed\n---\n").is_err());
    }

    #[test]
    fn model_tags_follow_hub_conventions() {
        let readme = "---\nlicense: apache-2.0\nlanguage: en\ntags: exbert\ndatasets:\n- squad\nbase_model: org/base\n---\n";
        let config = r#"{"architectures": ["BertForMaskedLM"], "model_type": "bert"}"#;
        let files = [
            file("config.json"),
            file("model.safetensors"),
            file("README.md"),
        ];
        let meta = derive(RepoType::Model, &files, Some(readme), Some(config));
        assert_eq!(meta.pipeline_tag.as_deref(), Some("fill-mask"));
        assert_eq!(meta.library_name.as_deref(), Some("transformers"));
        for tag in [
            "transformers",
            "safetensors",
            "bert",
            "exbert",
            "fill-mask",
            "en",
            "dataset:squad",
            "license:apache-2.0",
            "base_model:org/base",
            "base_model:finetune:org/base",
            "region:us",
        ] {
            assert!(
                meta.tags.contains(&tag.to_string()),
                "missing {tag} in {:?}",
                meta.tags
            );
        }
        assert_eq!(meta.card_data.unwrap()["tags"], json!(["exbert"]));
    }

    #[test]
    fn validation_reports_wrong_types() {
        let (errors, _) = validate("---\ntags: 3\n---\n");
        assert_eq!(errors.len(), 1);
        let (errors, _) = validate("---\nlicense: mit\ntags: [a]\n---\n");
        assert!(errors.is_empty());
    }
}
