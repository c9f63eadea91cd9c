//! Small HTTP helpers: query strings as clients send them, byte ranges, pagination links, JSON
//! bodies with a size cap.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use percent_encoding::percent_decode_str;

use crate::error::ApiError;

/// A parsed query string: repeated keys kept in order, `expand[]` folded into `expand`.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
    raw: String,
}

impl Query {
    /// Parses a raw (still encoded) query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let raw = raw.unwrap_or("").to_string();
        let pairs = parse_form(&raw);
        Self { pairs, raw }
    }

    /// First value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a key (`key` and `key[]`).
    pub fn all(&self, key: &str) -> Vec<&str> {
        let bracket = format!("{key}[]");
        self.pairs
            .iter()
            .filter(|(k, _)| k == key || *k == bracket)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean flag: `1`, `true`, `yes` (any case) are true; absent is `default`.
    pub fn flag(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            Some(v) => matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | ""),
            None => default,
        }
    }

    /// The pagination offset carried by `cursor`.
    pub fn cursor(&self) -> usize {
        self.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0)
    }

    /// The raw query with `cursor` replaced by the given offset.
    pub fn with_cursor(&self, offset: usize) -> String {
        let mut kept: Vec<&str> = self
            .raw
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("cursor="))
            .collect();
        let cursor = format!("cursor={offset}");
        kept.push(&cursor);
        kept.join("&")
    }
}

/// Parses `application/x-www-form-urlencoded` text.
pub fn parse_form(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// A single byte range of a `Range` header, resolved against the size: `Ok(None)` when there is
/// no (usable) range, `Err(())` when it cannot be satisfied.
#[allow(clippy::result_unit_err)]
pub fn parse_range(header: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = header.and_then(|h| h.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    // Only the first range of a multi-range request is served.
    let spec = spec.split(',').next().unwrap_or("").trim();
    let Some((start, end)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    if start.is_empty() {
        // Suffix range: the last N bytes.
        let n: u64 = end.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        return Ok(Some((size.saturating_sub(n), size)));
    }
    let start: u64 = start.parse().map_err(|_| ())?;
    let end_inclusive: Option<u64> = if end.is_empty() {
        None
    } else {
        Some(end.parse().map_err(|_| ())?)
    };
    if let Some(e) = end_inclusive
        && e < start
    {
        return Err(());
    }
    if start >= size {
        return Err(());
    }
    let end = end_inclusive.map_or(size, |e| (e + 1).min(size));
    Ok(Some((start, end)))
}

/// A JSON response.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

/// Adds `Link: <next>; rel="next"` with an absolute URL.
pub fn add_next_link(
    headers: &mut HeaderMap,
    public_url: &str,
    raw_path: &str,
    query: &Query,
    next: usize,
) {
    let link = format!(
        "<{public_url}{raw_path}?{}>; rel=\"next\"",
        query.with_cursor(next)
    );
    if let Ok(value) = HeaderValue::from_str(&link) {
        headers.insert("link", value);
    }
}

/// Reads a whole request body, refusing more than `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::too_large(format!(
                "request body larger than {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Reads and parses a JSON body (empty body = `{}`).
pub async fn read_json(body: Body, limit: usize) -> Result<serde_json::Value, ApiError> {
    let bytes = read_body(body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes one path segment for a URL.
pub fn encode_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// Percent-encodes a repository path, keeping `/`.
pub fn encode_path(s: &str) -> String {
    s.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn range(s: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
        parse_range(Some(&HeaderValue::from_str(s).unwrap()), size)
    }

    #[test]
    fn ranges_clamp_and_reject() {
        assert_eq!(range("bytes=0-0", 10), Ok(Some((0, 1))));
        assert_eq!(range("bytes=5-", 10), Ok(Some((5, 10))));
        assert_eq!(range("bytes=5-100", 10), Ok(Some((5, 10))));
        assert_eq!(range("bytes=-3", 10), Ok(Some((7, 10))));
        assert_eq!(range("bytes=10-", 10), Err(()));
        assert_eq!(range("bytes=7-3", 10), Err(()));
        assert_eq!(range("items=0-1", 10), Ok(None));
    }

    #[test]
    fn queries_accept_client_spellings() {
        let q = Query::parse(Some(
            "recursive=True&expand[]=formatted&filter=a&filter=b%3Ac&cursor=5",
        ));
        assert!(q.flag("recursive", false));
        assert_eq!(q.all("expand"), vec!["formatted"]);
        assert_eq!(q.all("filter"), vec!["a", "b:c"]);
        assert_eq!(q.cursor(), 5);
        assert_eq!(
            q.with_cursor(10),
            "recursive=True&expand[]=formatted&filter=a&filter=b%3Ac&cursor=10"
        );
    }
}
