//! Chat templates: messages in, prompt text out, as transformers' `apply_chat_template` renders
//! them (Jinja with `trim_blocks` and `lstrip_blocks`, Python string methods, `raise_exception`,
//! `strftime_now`, and `tojson` without HTML escaping).
//!
//! Templates come from `chat_template.jinja`, `tokenizer_config.json`'s `chat_template` (a string,
//! or a list of named templates of which `default` is used), or a GGUF file's
//! `tokenizer.chat_template`.

use std::path::Path;

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value as JinjaValue};
use serde_json::Value;

use crate::error::{PipelineError, Result};

/// A chat template with the special tokens it may refer to.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
    /// The date `strftime_now` reports (`None`: today, UTC).
    today: Option<(i64, u32, u32)>,
}

fn template_error(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Input(format!("chat template: {e}"))
}

/// The text of a special token entry of `tokenizer_config.json` (a string or an AddedToken
/// object).
fn token_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    }
}

impl ChatTemplate {
    /// A template from its source text.
    pub fn new(
        source: impl Into<String>,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Self {
        Self {
            source: source.into(),
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
            today: None,
        }
    }

    /// Fixes the date templates see through `strftime_now` (for reproducible prompts).
    pub fn with_date(mut self, year: i64, month: u32, day: u32) -> Self {
        self.today = Some((year, month, day));
        self
    }

    /// The template of a model folder, if it has one.
    pub fn from_model_dir(dir: &Path) -> Result<Option<Self>> {
        let config_path = dir.join("tokenizer_config.json");
        let config: Value = match std::fs::read_to_string(&config_path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| PipelineError::Input(format!("{}: {e}", config_path.display())))?,
            Err(_) => Value::Null,
        };
        let bos = token_text(config.get("bos_token"));
        let eos = token_text(config.get("eos_token"));
        if let Ok(source) = std::fs::read_to_string(dir.join("chat_template.jinja")) {
            return Ok(Some(Self::new(source, bos, eos)));
        }
        let source = match config.get("chat_template") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(named)) => named
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                .or_else(|| named.first())
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        };
        Ok(source.map(|s| Self::new(s, bos, eos)))
    }

    /// The template source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages` (objects with `role` and `content`), ending with the assistant
    /// header when `add_generation_prompt` is set.
    pub fn render(&self, messages: &[Value], add_generation_prompt: bool) -> Result<String> {
        for (i, m) in messages.iter().enumerate() {
            if m.get("role").and_then(Value::as_str).is_none() {
                return Err(PipelineError::Input(format!(
                    "message {i} has no `role`: {m}"
                )));
            }
        }
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<JinjaValue, JinjaError> {
                Err(JinjaError::new(ErrorKind::InvalidOperation, message))
            },
        );
        let today = self.today.unwrap_or_else(today_utc);
        env.add_function("strftime_now", move |format: String| {
            strftime(&format, today)
        });
        env.add_filter(
            "tojson",
            |value: JinjaValue| -> std::result::Result<String, JinjaError> {
                serde_json::to_string(&value)
                    .map_err(|e| JinjaError::new(ErrorKind::InvalidOperation, e.to_string()))
            },
        );
        // Python's `None is iterable` is false (minijinja would iterate none as empty).
        env.add_test("iterable", |v: JinjaValue| {
            matches!(
                v.kind(),
                minijinja::value::ValueKind::Seq
                    | minijinja::value::ValueKind::Map
                    | minijinja::value::ValueKind::Iterable
                    | minijinja::value::ValueKind::String
                    | minijinja::value::ValueKind::Bytes
            )
        });
        let source = generation_blocks_as_plain(&self.source);
        env.add_template_owned("chat", source)
            .map_err(template_error)?;
        let template = env.get_template("chat").map_err(template_error)?;
        template
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
                // transformers passes these as None when there are no tools / documents.
                tools => (),
                documents => (),
            })
            .map_err(template_error)
    }
}

/// transformers' `{% generation %}…{% endgeneration %}` (its AssistantTracker extension marks
/// the assistant's tokens) renders its body unchanged: rewrite the tags as an always-true `if`,
/// keeping their whitespace-control markers.
fn generation_blocks_as_plain(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        let Some(end) = tag.find("%}") else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let (open, body, close) = {
            let open = inner.strip_prefix(['-', '+']).map_or("", |_| &inner[..1]);
            let body = &inner[open.len()..];
            let close = body
                .strip_suffix(['-', '+'])
                .map_or("", |_| &body[body.len() - 1..]);
            (open, body[..body.len() - close.len()].trim(), close)
        };
        match body {
            "generation" => out.push_str(&format!("{{%{open} if true {close}%}}")),
            "endgeneration" => out.push_str(&format!("{{%{open} endif {close}%}}")),
            _ => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Today's date (UTC) as (year, month, day).
fn today_utc() -> (i64, u32, u32) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `strftime` for the date fields chat templates use (`%d`, `%m`, `%Y`, `%y`, `%b`, `%B`), with
/// English month names as Python's C locale gives.
fn strftime(format: &str, (year, month, day): (i64, u32, u32)) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let name = MONTHS[(month.clamp(1, 12) - 1) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('b') => out.push_str(&name[..3]),
            Some('B') => out.push_str(name),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are helpful<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] | trim + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn renders_chatml_with_generation_prompt() {
        let t = ChatTemplate::new(CHATML, "", "<|im_end|>");
        let out = t
            .render(&[json!({"role": "user", "content": " Hi! "})], true)
            .expect("render");
        assert_eq!(
            out,
            "<|im_start|>system\nYou are helpful<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn generation_tags_render_their_body() {
        let source = "a{%- generation -%} b {% endgeneration %}{{ 'c' }}{% if x %}{% endif %}";
        assert_eq!(
            generation_blocks_as_plain(source),
            "a{%- if true -%} b {% endif %}{{ 'c' }}{% if x %}{% endif %}"
        );
    }

    #[test]
    fn strftime_fields() {
        assert_eq!(strftime("%d %b %Y", (2026, 11, 6)), "06 Nov 2026");
        assert_eq!(strftime("%B %d, %y %%", (2024, 1, 31)), "January 31, 24 %");
        let (y, m, d) = today_utc();
        assert!(y >= 2024 && (1..=12).contains(&m) && (1..=31).contains(&d));
    }

    #[test]
    fn python_methods_and_errors() {
        let t = ChatTemplate::new(
            "{% if messages[0].role == 'bot' %}{{ raise_exception('roles must alternate') }}{% endif %}{{ messages[0].content.strip().upper() }}{{ messages | tojson }}",
            "<s>",
            "</s>",
        );
        let out = t
            .render(&[json!({"role": "user", "content": " a<b "})], false)
            .expect("render");
        assert_eq!(out, "A<B[{\"role\":\"user\",\"content\":\" a<b \"}]");
        let e = t
            .render(&[json!({"role": "bot", "content": "x"})], false)
            .expect_err("raise_exception");
        assert!(e.to_string().contains("roles must alternate"), "{e}");
        let e = ChatTemplate::new("{% for %}", "", "")
            .render(&[], false)
            .expect_err("syntax");
        assert!(e.to_string().contains("chat template"), "{e}");
        let e = t
            .render(&[json!({"content": "x"})], false)
            .expect_err("role");
        assert!(e.to_string().contains("role"), "{e}");
    }
}
