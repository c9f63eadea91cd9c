//! Configuration from the environment variables Hugging Face users know.

use std::path::PathBuf;

/// Where the hub is and where its files are cached, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// The hub cache folder (`HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// The server (`HF_ENDPOINT`, default `https://huggingface.co`), without trailing `/`.
    pub endpoint: String,
    /// The token (`HF_TOKEN`, else the token file `$HF_HOME/token`).
    pub token: Option<String>,
    /// No network at all (`HF_HUB_OFFLINE` or `TRANSFORMERS_OFFLINE` set to 1/ON/YES/TRUE).
    pub offline: bool,
    /// Where `login` stores the token (`HF_TOKEN_PATH`, else `$HF_HOME/token`).
    pub token_path: PathBuf,
}

impl HubConfig {
    /// The configuration of this process's environment.
    pub fn from_env() -> Self {
        HubConfig::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// The configuration given a variable lookup (for tests and embedding).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let home_dir = var("HOME").map(PathBuf::from);
        let expand = |v: String| match (v.strip_prefix("~/"), &home_dir) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => PathBuf::from(v),
        };
        let xdg = var("XDG_CACHE_HOME")
            .map(expand)
            .or_else(|| home_dir.as_ref().map(|h| h.join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"));
        let hf_home = var("HF_HOME")
            .map(expand)
            .unwrap_or_else(|| xdg.join("huggingface"));
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(expand)
            .unwrap_or_else(|| hf_home.join("hub"));
        let endpoint = var("HF_ENDPOINT")
            .map(|e| e.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| "https://huggingface.co".to_owned());
        let token_path = var("HF_TOKEN_PATH")
            .map(expand)
            .unwrap_or_else(|| hf_home.join("token"));
        let token = var("HF_TOKEN").or_else(|| {
            std::fs::read_to_string(&token_path)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        });
        let truthy = |v: Option<String>| {
            v.is_some_and(|v| {
                matches!(v.to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE")
            })
        };
        let offline = truthy(var("HF_HUB_OFFLINE")) || truthy(var("TRANSFORMERS_OFFLINE"));
        HubConfig {
            cache_dir,
            endpoint,
            token,
            offline,
            token_path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> HubConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubConfig::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn cache_dir_precedence() {
        assert_eq!(
            config(&[("HOME", "/h")]).cache_dir,
            PathBuf::from("/h/.cache/huggingface/hub")
        );
        assert_eq!(
            config(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]).cache_dir,
            PathBuf::from("/x/huggingface/hub")
        );
        assert_eq!(
            config(&[("HOME", "/h"), ("HF_HOME", "~/hf")]).cache_dir,
            PathBuf::from("/h/hf/hub")
        );
        assert_eq!(
            config(&[("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/legacy")]).cache_dir,
            PathBuf::from("/legacy")
        );
        assert_eq!(
            config(&[
                ("HUGGINGFACE_HUB_CACHE", "/legacy"),
                ("HF_HUB_CACHE", "/new")
            ])
            .cache_dir,
            PathBuf::from("/new")
        );
    }

    #[test]
    fn endpoint_token_and_offline() {
        let c = config(&[
            ("HF_ENDPOINT", "http://127.0.0.1:8080/"),
            ("HF_TOKEN", "hf_x"),
            ("HF_HUB_OFFLINE", "yes"),
        ]);
        assert_eq!(c.endpoint, "http://127.0.0.1:8080");
        assert_eq!(c.token.as_deref(), Some("hf_x"));
        assert!(c.offline);
        let c = config(&[("TRANSFORMERS_OFFLINE", "0")]);
        assert!(!c.offline);
        assert_eq!(c.endpoint, "https://huggingface.co");
    }
}
