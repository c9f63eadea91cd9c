//! `embrace hub serve` as a process: crash safety (kill -9 in the middle of an upload), many
//! concurrent large downloads in bounded memory, user and token commands.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::Digest;

const BIN: &str = env!("CARGO_BIN_EXE_embrace");

fn embrace(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "embrace {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data: &Path, port: u16) -> Self {
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(BIN)
            .args([
                "hub",
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--data",
            ])
            .arg(data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(&format!("{url}/api/models"), None).is_err() {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, url }
    }

    /// Peak resident memory of the server process, in kB (Linux).
    fn peak_rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(url: &str, token: Option<&str>) -> Result<(u16, Vec<u8>), ureq::Error> {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call()?;
    let mut body = Vec::new();
    resp.body_mut().as_reader().read_to_end(&mut body)?;
    Ok((resp.status().as_u16(), body))
}

fn post(url: &str, token: &str, body: &str) -> (u16, serde_json::Value) {
    let mut resp = agent()
        .post(url)
        .header("authorization", format!("Bearer {token}"))
        .send(body)
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// A deterministic stream of `len` bytes: a 1,000,003-byte pseudo-random block repeated, so a
/// received chunk is checked with one slice comparison against the block.
struct Pattern {
    block: Vec<u8>,
}

impl Pattern {
    fn new(seed: u64) -> Self {
        let mut x = seed | 1;
        let block = (0..1_000_003)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        Self { block }
    }

    fn reader(&self, len: u64) -> PatternReader<'_> {
        PatternReader {
            pattern: self,
            pos: 0,
            len,
            on_progress: None,
        }
    }

    /// Checks that `data` is what the stream holds at `offset`.
    fn matches(&self, offset: u64, mut data: &[u8]) -> bool {
        let n = self.block.len() as u64;
        let mut at = (offset % n) as usize;
        while !data.is_empty() {
            let take = data.len().min(self.block.len() - at);
            if data[..take] != self.block[at..at + take] {
                return false;
            }
            data = &data[take..];
            at = 0;
        }
        true
    }

    fn sha256(&self, len: u64) -> String {
        let mut hasher = sha2::Sha256::new();
        let mut reader = self.reader(len);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        embrace_hex(&hasher.finalize())
    }
}

fn embrace_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct PatternReader<'a> {
    pattern: &'a Pattern,
    pos: u64,
    len: u64,
    on_progress: Option<Box<dyn FnMut(u64) + Send + 'a>>,
}

impl Read for PatternReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.pattern.block.len() as u64;
        let at = (self.pos % n) as usize;
        let take = (buf.len() as u64)
            .min(self.len - self.pos)
            .min(n - at as u64) as usize;
        buf[..take].copy_from_slice(&self.pattern.block[at..at + take]);
        self.pos += take as u64;
        if let Some(f) = self.on_progress.as_mut() {
            f(self.pos);
        }
        Ok(take)
    }
}

fn setup_data() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    assert!(embrace(&["hub", "user", "add", "alice", "--data", data]).contains("alice"));
    let out = embrace(&[
        "hub", "token", "create", "--user", "alice", "--role", "write", "--data", data,
    ]);
    let token = out.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("hf_"), "{out}");
    (dir, token)
}

/// Asks the LFS batch API where to upload an object; `None` if it is already stored.
fn lfs_href(url: &str, repo: &str, token: &str, oid: &str, size: u64) -> Option<String> {
    let body = serde_json::json!({ "operation": "upload", "transfers": ["basic"], "objects": [{ "oid": oid, "size": size }] });
    let (status, answer) = post(
        &format!("{url}/{repo}.git/info/lfs/objects/batch"),
        token,
        &body.to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    answer["objects"][0]["actions"]["upload"]["href"]
        .as_str()
        .map(str::to_string)
}

fn commit(
    url: &str,
    repo: &str,
    token: &str,
    ops: &[serde_json::Value],
) -> (u16, serde_json::Value) {
    let mut lines =
        vec![serde_json::json!({ "key": "header", "value": { "summary": "test" } }).to_string()];
    lines.extend(ops.iter().map(|o| o.to_string()));
    post(
        &format!("{url}/api/models/{repo}/commit/main"),
        token,
        &lines.join("\n"),
    )
}

fn head_sha(url: &str, repo: &str) -> String {
    let (_, body) = get(&format!("{url}/api/models/{repo}"), None).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["sha"].as_str().unwrap().to_string()
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn kill_9_during_a_200_mb_upload_loses_nothing() {
    let (dir, token) = setup_data();
    let data = dir.path().join("data");
    let port = free_port();
    let server = Server::start(&data, port);
    let url = server.url.clone();
    assert_eq!(
        post(
            &format!("{url}/api/repos/create"),
            &token,
            r#"{"name": "crash"}"#
        )
        .0,
        200
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(b"before the crash");
    let file = serde_json::json!({ "key": "file", "value": { "path": "note.txt", "content": b64, "encoding": "base64" } });
    assert_eq!(commit(&url, "alice/crash", &token, &[file]).0, 200);
    let before = head_sha(&url, "alice/crash");

    const SIZE: u64 = 200 * 1024 * 1024;
    let pattern = Pattern::new(7);
    let oid = pattern.sha256(SIZE);
    let href = lfs_href(&url, "alice/crash", &token, &oid, SIZE).unwrap();

    // Stream the upload; kill the server with SIGKILL once 80 MB are on the wire.
    let mut server = server;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let uploader = s.spawn(|| {
            let mut reader = pattern.reader(SIZE);
            let mut signalled = false;
            reader.on_progress = Some(Box::new(move |pos| {
                if pos > 80 * 1024 * 1024 && !signalled {
                    signalled = true;
                    let _ = tx.send(());
                }
            }));
            agent()
                .put(&href)
                .header("content-length", SIZE.to_string())
                .send(ureq::SendBody::from_reader(&mut reader))
                .map(|r| r.status().as_u16())
        });
        rx.recv_timeout(Duration::from_secs(120)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        assert!(
            uploader.join().unwrap().is_err(),
            "the upload cannot have completed"
        );
    });
    assert!(
        count_files(&data.join("tmp")) >= 1,
        "the killed upload left a partial file in tmp/"
    );
    drop(server);

    // Restart: the partial file is removed, the repository serves its previous commit, the
    // interrupted object is not stored anywhere.
    let server = Server::start(&data, port);
    assert_eq!(count_files(&data.join("tmp")), 0);
    assert_eq!(head_sha(&url, "alice/crash"), before);
    let (status, body) = get(&format!("{url}/alice/crash/resolve/main/note.txt"), None).unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"before the crash"[..]));
    assert!(
        !data
            .join("blobs/sha256")
            .join(&oid[..2])
            .join(&oid)
            .exists()
    );

    // The upload can be redone and committed.
    let href = lfs_href(&url, "alice/crash", &token, &oid, SIZE)
        .expect("the object must be uploaded again");
    let status = agent()
        .put(&href)
        .send(ureq::SendBody::from_reader(&mut pattern.reader(SIZE)))
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 200);
    let lfs = serde_json::json!({ "key": "lfsFile", "value": { "path": "big.bin", "algo": "sha256", "oid": oid, "size": SIZE } });
    assert_eq!(commit(&url, "alice/crash", &token, &[lfs]).0, 200);
    let mut resp = agent()
        .get(&format!("{url}/alice/crash/resolve/main/big.bin"))
        .call()
        .unwrap();
    let reader = resp.body_mut().with_config().limit(u64::MAX).reader();
    assert_eq!(pattern_bytes(reader, &pattern), SIZE);
    drop(server);
}

#[test]
fn fifty_concurrent_downloads_of_100_mb_in_bounded_memory() {
    let (dir, token) = setup_data();
    let data = dir.path().join("data");
    let server = Server::start(&data, free_port());
    let url = server.url.clone();
    assert_eq!(
        post(
            &format!("{url}/api/repos/create"),
            &token,
            r#"{"name": "big"}"#
        )
        .0,
        200
    );
    const SIZE: u64 = 100 * 1024 * 1024;
    let pattern = Pattern::new(11);
    let oid = pattern.sha256(SIZE);
    let href = lfs_href(&url, "alice/big", &token, &oid, SIZE).unwrap();
    let status = agent()
        .put(&href)
        .send(ureq::SendBody::from_reader(&mut pattern.reader(SIZE)))
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    let lfs = serde_json::json!({ "key": "lfsFile", "value": { "path": "model.bin", "algo": "sha256", "oid": oid, "size": SIZE } });
    assert_eq!(commit(&url, "alice/big", &token, &[lfs]).0, 200);

    let started = Instant::now();
    let file_url = format!("{url}/alice/big/resolve/main/model.bin");
    let results: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                s.spawn(|| {
                    let mut resp = agent().get(&file_url).call().unwrap();
                    assert_eq!(resp.status().as_u16(), 200);
                    let reader = resp.body_mut().with_config().limit(u64::MAX).reader();
                    pattern_bytes(reader, &pattern)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.iter().all(|&n| n == SIZE), "{results:?}");
    let rss = server.peak_rss_kb().unwrap();
    eprintln!(
        "50 x 100 MiB downloaded in {:.1}s ({:.0} MB/s), server peak RSS {} MB",
        started.elapsed().as_secs_f64(),
        50.0 * SIZE as f64 / 1e6 / started.elapsed().as_secs_f64(),
        rss / 1024
    );
    assert!(rss < 100 * 1024, "server peak RSS {rss} kB");
}

#[test]
fn token_roles_are_enforced_from_the_cli() {
    let (dir, write) = setup_data();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let read = embrace(&[
        "hub", "token", "create", "--user", "alice", "--role", "read", "--data", data,
    ]);
    let read = read.lines().last().unwrap().trim().to_string();
    let bad = Command::new(BIN)
        .args(["hub", "token", "create", "--user", "nobody", "--data", data])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no user named 'nobody'"));
    let server = Server::start(Path::new(data), free_port());
    assert_eq!(
        post(
            &format!("{}/api/repos/create", server.url),
            &read,
            r#"{"name": "x"}"#
        )
        .0,
        403
    );
    assert_eq!(
        post(
            &format!("{}/api/repos/create", server.url),
            &write,
            r#"{"name": "x"}"#
        )
        .0,
        200
    );
}

/// Uploads `size` bytes of `pattern` as `path` to a new repository `alice/{name}`.
fn upload_pattern(url: &str, token: &str, name: &str, path: &str, pattern: &Pattern, size: u64) {
    assert_eq!(
        post(
            &format!("{url}/api/repos/create"),
            token,
            &format!(r#"{{"name": "{name}"}}"#)
        )
        .0,
        200
    );
    let oid = pattern.sha256(size);
    let href = lfs_href(url, &format!("alice/{name}"), token, &oid, size).unwrap();
    let status = agent()
        .put(&href)
        .send(ureq::SendBody::from_reader(&mut pattern.reader(size)))
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    let lfs = serde_json::json!({ "key": "lfsFile", "value": { "path": path, "algo": "sha256", "oid": oid, "size": size } });
    assert_eq!(commit(url, &format!("alice/{name}"), token, &[lfs]).0, 200);
}

fn download_command(url: &str, cache: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["-v", "download"])
        .args(args)
        .env("HF_HOME", cache)
        .env("HF_ENDPOINT", url)
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_HUB_CACHE");
    cmd
}

fn assert_pattern_file(path: &Path, pattern: &Pattern, size: u64) {
    assert_eq!(
        pattern_bytes(std::fs::File::open(path).unwrap(), pattern),
        size
    );
}

/// Reads a stream to its end, checking every byte against the pattern; returns the length.
fn pattern_bytes(mut reader: impl Read, pattern: &Pattern) -> u64 {
    let (mut offset, mut buf) = (0u64, vec![0u8; 1 << 20]);
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(
            pattern.matches(offset, &buf[..n]),
            "corrupt bytes at {offset}"
        );
        offset += n as u64;
    }
    offset
}

#[test]
fn cli_download_killed_halfway_resumes_and_two_processes_share_a_blob() {
    let (dir, token) = setup_data();
    let server = Server::start(&dir.path().join("data"), free_port());
    const SIZE: u64 = 200 * 1024 * 1024;
    let pattern = Pattern::new(23);
    upload_pattern(&server.url, &token, "big", "model.bin", &pattern, SIZE);

    // kill -9 of `embrace download` once 20 MB are on disk.
    let cache = tempfile::tempdir().unwrap();
    let blobs = cache.path().join("hub/models--alice--big/blobs");
    let mut child = download_command(&server.url, cache.path(), &["alice/big", "model.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let partial = loop {
        let part = std::fs::read_dir(&blobs).ok().and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .find(|e| e.file_name().to_string_lossy().ends_with(".incomplete"))
                .map(|e| e.path())
        });
        if let Some(p) = part
            && std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) > 20 * 1024 * 1024
        {
            break p;
        }
        assert!(Instant::now() < deadline, "the download never got going");
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept > 0 && kept < SIZE, "{kept}");
    assert_eq!(
        std::fs::read_dir(&blobs).unwrap().count(),
        1,
        "only the partial file, no blob"
    );

    // Again: it resumes from the kept bytes and finishes with a verified file.
    let out = download_command(&server.url, cache.path(), &["alice/big", "model.bin"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("resuming model.bin from byte {kept} of {SIZE}")),
        "{stderr}"
    );
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_pattern_file(Path::new(&path), &pattern, SIZE);

    // Two processes at once on a fresh cache: both succeed, one blob, no leftovers.
    let shared = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            download_command(&server.url, shared.path(), &["alice/big"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for out in &outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let snapshot = String::from_utf8(outputs[0].stdout.clone())
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(
        snapshot,
        String::from_utf8(outputs[1].stdout.clone()).unwrap().trim()
    );
    assert_pattern_file(&Path::new(&snapshot).join("model.bin"), &pattern, SIZE);
    let names: Vec<String> = std::fs::read_dir(shared.path().join("hub/models--alice--big/blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "the LFS blob and .gitattributes: {names:?}");
    assert!(names.iter().all(|n| !n.contains("incomplete")));
}

#[test]
fn models_and_tokenizers_load_by_repo_id_from_the_hub() {
    let (dir, token) = setup_data();
    let server = Server::start(&dir.path().join("data"), free_port());
    let minilm = embrace_assets::require("all-minilm-l6-v2", "config.json");
    let folder = minilm.parent().unwrap();
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], token: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("HF_HOME", home.path())
            .env("HF_ENDPOINT", &server.url)
            .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_HUB_CACHE");
        match token {
            Some(t) => cmd.env("HF_TOKEN", t),
            None => cmd.env_remove("HF_TOKEN"),
        };
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "embrace {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let up = run(
        &["upload", "alice/minilm", folder.to_str().unwrap()],
        Some(&token),
    );
    let commit: serde_json::Value = serde_json::from_str(up.lines().last().unwrap()).unwrap();
    assert_eq!(commit["commit"].as_str().unwrap().len(), 40);
    assert_eq!(
        run(&["whoami"], Some(&token)).trim(),
        r#"{"name":"alice","orgs":[],"role":"write"}"#
    );
    // Nothing cached yet: the pipeline downloads the repo, then runs.
    let out = run(
        &[
            "pipeline",
            "feature-extraction",
            "--model",
            "alice/minilm",
            "Embed me",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 384, "{out}");
    let out = run(
        &[
            "tokenize",
            "--tokenizer",
            "alice/minilm",
            "--padding",
            "none",
            "Hello world!",
        ],
        None,
    );
    assert!(
        out.contains(r#""input_ids":[101,7592,2088,999,102]"#),
        "{out}"
    );
    // The server can go: the cached snapshot answers offline.
    drop(server);
    let mut cmd = Command::new(BIN);
    let out = cmd
        .args(["tokenize", "--tokenizer", "alice/minilm", "Hello world!"])
        .env("HF_HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let (dir, _) = setup_data();
    let mut server = Server::start(&dir.path().join("data"), free_port());
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the server ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
}
