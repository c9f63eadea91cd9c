//! Download throughput of `/resolve/` against nginx serving the same file from disk, and
//! requests per second of the repo-info endpoint, in one run on the same machine.
//!
//! ```text
//! scripts/fetch-nginx                       # once: nginx from Debian, pinned and checksummed
//! cargo bench -p embrace-hub-server --bench download -- [--size-mb 1024] [--streams 1] [--seconds 5]
//! ```
//!
//! `NGINX=/path/to/nginx` overrides the nginx binary. Both servers get the machine's cores
//! (tokio's default worker count; nginx `worker_processes auto`, `sendfile on`); the client runs
//! in this process and discards the bytes.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use embrace_hub_server::{Hub, Role, ServerConfig};

struct Options {
    size_mb: u64,
    streams: usize,
    seconds: u64,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
    };
    Options {
        size_mb: value("--size-mb").unwrap_or(1024),
        streams: value("--streams").unwrap_or(1) as usize,
        seconds: value("--seconds").unwrap_or(5),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Downloads `url` `streams` times in parallel, discarding the bytes; returns MB/s overall.
fn download(url: &str, streams: usize, expected: u64) -> f64 {
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..streams {
            s.spawn(|| {
                let mut resp = agent().get(url).call().unwrap();
                assert_eq!(resp.status().as_u16(), 200);
                let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
                let (mut total, mut buf) = (0u64, vec![0u8; 1 << 20]);
                loop {
                    let n = reader.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                assert_eq!(total, expected);
            });
        }
    });
    (expected * streams as u64) as f64 / 1e6 / started.elapsed().as_secs_f64()
}

fn nginx_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("NGINX") {
        return Some(PathBuf::from(p));
    }
    let root = repo_root();
    let candidate = root.join("target/tools/nginx/usr/sbin/nginx");
    candidate.exists().then_some(candidate)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn start_nginx(binary: &Path, dir: &Path, root: &Path, port: u16) -> Child {
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes auto; pid {pid}; error_log {log} warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;\n\
               client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n\
               types {{ application/octet-stream bin; }} default_type application/octet-stream;\n\
               server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
            pid = dir.join("nginx.pid").display(),
            log = dir.join("nginx.log").display(),
            tmp = dir.display(),
            root = root.display(),
        ),
    )
    .unwrap();
    let child = Command::new(binary)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start; see {}",
            dir.join("nginx.log").display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn requests_per_second(url: &str, threads: usize, seconds: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let agent = agent();
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let mut resp = agent.get(url).call().unwrap();
                        assert_eq!(resp.status().as_u16(), 200);
                        let _ = resp.body_mut().read_to_vec().unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let opts = options();
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hub = Hub::open(ServerConfig::new(dir.path().join("data"), url.clone())).unwrap();
    hub.db().add_user("bench", None, None).unwrap();
    let token = hub
        .db()
        .create_token("bench", Role::Write, "bench")
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        hub.serve(listener, std::future::pending()).await.unwrap();
    });

    // A repository with one large LFS file, uploaded through the API.
    let size = opts.size_mb * 1024 * 1024;
    eprintln!("preparing a {} MiB file...", opts.size_mb);
    let file = dir.path().join("payload.bin");
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..opts.size_mb {
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            out.write_all(&block).unwrap();
        }
    }
    let oid = {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        let mut f = std::fs::File::open(&file).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        embrace_hub_server::hashing::hex(&hasher.finalize())
    };
    let auth = format!("Bearer {token}");
    let post = |path: &str, body: String| {
        let mut r = agent()
            .post(format!("{url}{path}"))
            .header("authorization", &auth)
            .send(body)
            .unwrap();
        let text = r.body_mut().read_to_string().unwrap();
        assert!(r.status().is_success(), "{path}: {text}");
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default()
    };
    post("/api/repos/create", r#"{"name": "bench"}"#.into());
    let batch = post(
        "/bench/bench.git/info/lfs/objects/batch",
        serde_json::json!({ "operation": "upload", "objects": [{ "oid": oid, "size": size }] })
            .to_string(),
    );
    let href = batch["objects"][0]["actions"]["upload"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let upload_started = Instant::now();
    let put = agent()
        .put(&href)
        .send(ureq::SendBody::from_reader(
            &mut std::fs::File::open(&file).unwrap(),
        ))
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let upload_secs = upload_started.elapsed().as_secs_f64();
    let commit = format!(
        "{}\n{}",
        serde_json::json!({ "key": "header", "value": { "summary": "bench" } }),
        serde_json::json!({ "key": "lfsFile", "value": { "path": "model.bin", "algo": "sha256", "oid": oid, "size": size } })
    );
    post("/api/models/bench/bench/commit/main", commit);
    println!(
        "upload (LFS PUT, hashed while streaming): {:.0} MB/s",
        size as f64 / 1e6 / upload_secs
    );

    // nginx serves the very blob file the hub stores.
    let blob_dir = dir.path().join("data/blobs/sha256").join(&oid[..2]);
    let nginx = nginx_binary();
    let nginx_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut nginx_child = nginx.as_ref().map(|bin| {
        let ndir = dir.path().join("nginx");
        std::fs::create_dir_all(ndir.join("logs")).unwrap();
        start_nginx(bin, &ndir, &blob_dir, nginx_port)
    });
    if nginx.is_none() {
        eprintln!("nginx not found: run scripts/fetch-nginx or set NGINX; measuring the hub alone");
    }

    let hub_url = format!("{url}/bench/bench/resolve/main/model.bin");
    let nginx_url = format!("http://127.0.0.1:{nginx_port}/{oid}");
    let (mut hub_runs, mut nginx_runs) = (Vec::new(), Vec::new());
    download(&hub_url, opts.streams, size); // warm the page cache
    for _ in 0..3 {
        hub_runs.push(download(&hub_url, opts.streams, size));
        if nginx_child.is_some() {
            nginx_runs.push(download(&nginx_url, opts.streams, size));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let hub_mbs = median(&mut hub_runs);
    println!(
        "download {} MiB x {} stream(s) over loopback: embrace hub {:.0} MB/s (runs {:?})",
        opts.size_mb,
        opts.streams,
        hub_mbs,
        hub_runs.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    if !nginx_runs.is_empty() {
        let nginx_mbs = median(&mut nginx_runs);
        println!(
            "                                       nginx       {:.0} MB/s (runs {:?})",
            nginx_mbs,
            nginx_runs.iter().map(|v| v.round()).collect::<Vec<_>>()
        );
        println!("ratio embrace / nginx: {:.2}x", hub_mbs / nginx_mbs);
    }
    let rps = requests_per_second(&format!("{url}/api/models/bench/bench"), 8, opts.seconds);
    println!("repo info (GET /api/models/bench/bench, 8 keep-alive clients): {rps:.0} requests/s");
    if let Some(child) = nginx_child.as_mut() {
        // SIGTERM lets the master stop its workers (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
    }
}
