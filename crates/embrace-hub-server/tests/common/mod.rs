//! A hub server on a loopback port, run in-process for tests, and a small HTTP client.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Read;
use std::path::PathBuf;

use embrace_hub_server::{BackgroundHub, Hub, Role, ServerConfig};

/// A running server with three users' tokens: alice (write and read) and bob (write).
pub struct TestHub {
    pub url: String,
    pub alice: String,
    pub alice_read: String,
    pub bob: String,
    pub data_dir: PathBuf,
    _server: BackgroundHub,
    _dir: tempfile::TempDir,
}

impl TestHub {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    pub fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut config = ServerConfig::new(dir.path().join("data"), url.clone());
        configure(&mut config);
        let data_dir = config.data_dir.clone();
        let hub = Hub::open(config).unwrap();
        hub.db().add_user("alice", Some("Alice"), None).unwrap();
        hub.db().add_user("bob", None, None).unwrap();
        let alice = hub
            .db()
            .create_token("alice", Role::Write, "alice-write")
            .unwrap();
        let alice_read = hub
            .db()
            .create_token("alice", Role::Read, "alice-read")
            .unwrap();
        let bob = hub
            .db()
            .create_token("bob", Role::Write, "bob-write")
            .unwrap();
        Self {
            url,
            alice,
            alice_read,
            bob,
            data_dir,
            _server: hub.spawn(listener).unwrap(),
            _dir: dir,
        }
    }
}

/// A response with everything read.
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

fn finish(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    try_finish(response).unwrap()
}

fn try_finish(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Reply, ureq::Error> {
    let mut response = response?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .read_to_end(&mut body)
        .map_err(ureq::Error::Io)?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// `method url` with optional bearer token, extra headers and body.
pub fn request(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    try_request(method, url, token, headers, body).unwrap()
}

/// [`request`], with transport errors returned: a server that refuses a body before reading all
/// of it may close the connection while the client is still sending (a broken pipe).
pub fn try_request(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Reply, ureq::Error> {
    let agent = agent();
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(body.map(<[u8]>::to_vec).unwrap_or_default())
        .unwrap();
    try_finish(agent.run(request))
}

pub fn get(url: &str, token: Option<&str>) -> Reply {
    request("GET", url, token, &[], None)
}

pub fn post_json(url: &str, token: Option<&str>, value: &serde_json::Value) -> Reply {
    request(
        "POST",
        url,
        token,
        &[("content-type", "application/json")],
        Some(value.to_string().as_bytes()),
    )
}

/// Creates the model repository `alice/{name}` and commits inline files to `main` in one commit;
/// returns the commit id.
pub fn create_with_files(
    hub: &TestHub,
    name: &str,
    summary: &str,
    files: &[(&str, &[u8])],
) -> String {
    use base64::Engine;
    let created = post_json(
        &format!("{}/api/repos/create", hub.url),
        Some(&hub.alice),
        &serde_json::json!({ "name": name }),
    );
    assert_eq!(created.status, 200, "{}", created.text());
    let mut lines =
        vec![serde_json::json!({ "key": "header", "value": { "summary": summary } }).to_string()];
    for (path, content) in files {
        let content = base64::engine::general_purpose::STANDARD.encode(content);
        lines.push(
            serde_json::json!({ "key": "file", "value": { "path": path, "content": content, "encoding": "base64" } })
                .to_string(),
        );
    }
    let reply = request(
        "POST",
        &format!("{}/api/models/alice/{name}/commit/main", hub.url),
        Some(&hub.alice),
        &[("content-type", "application/x-ndjson")],
        Some(lines.join("\n").as_bytes()),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["commitOid"].as_str().unwrap().to_string()
}
