//! The hub client against the project's own hub server on loopback: upload, snapshot download,
//! offline mode, resume, concurrent downloads and every error a user can meet.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use embrace_hub::{
    DownloadOptions, HubClient, HubConfig, HubError, RepoId, RepoType, UploadOptions,
};
use embrace_hub_server::{BackgroundHub, Hub, Role, ServerConfig};

/// A hub server in this process, with a write token for `alice`.
struct Server {
    url: String,
    token: String,
    data: PathBuf,
    handle: BackgroundHub,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let data = dir.path().join("data");
        let hub = Hub::open(ServerConfig::new(&data, url.clone())).unwrap();
        hub.db().add_user("alice", None, None).unwrap();
        let token = hub.db().create_token("alice", Role::Write, "test").unwrap();
        let handle = hub.spawn(listener).unwrap();
        Self {
            url,
            token,
            data,
            handle,
            _dir: dir,
        }
    }

    fn stop(&mut self) {
        self.handle.stop();
    }
}

fn config(endpoint: &str, cache: &Path, token: Option<&str>, offline: bool) -> HubConfig {
    HubConfig {
        cache_dir: cache.to_path_buf(),
        endpoint: endpoint.to_string(),
        token: token.map(str::to_string),
        offline,
        token_path: cache.join("token"),
    }
}

fn client(endpoint: &str, cache: &Path, token: Option<&str>) -> HubClient {
    HubClient::new(config(endpoint, cache, token, false)).unwrap()
}

/// A folder with regular files, a nested file and a 12 MB file that goes through LFS.
fn sample_folder(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let big: Vec<u8> = (0..12_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let files = vec![
        (
            "config.json".to_string(),
            br#"{"model_type": "bert"}"#.to_vec(),
        ),
        (
            "README.md".to_string(),
            b"---\nlicense: mit\n---\n# Sample\n".to_vec(),
        ),
        ("sub/dir/notes.txt".to_string(), b"nested".to_vec()),
        ("weights.bin".to_string(), big),
    ];
    for (path, content) in &files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    files
}

fn upload_sample(server: &Server, name: &str) -> (RepoId, Vec<(String, Vec<u8>)>, String) {
    let scratch = tempfile::tempdir().unwrap();
    let folder = scratch.path().join("folder");
    let files = sample_folder(&folder);
    let hub = client(
        &server.url,
        &scratch.path().join("cache"),
        Some(&server.token),
    );
    let repo = RepoId::model(&format!("alice/{name}")).unwrap();
    hub.create_repo(&repo, false, false).unwrap();
    hub.create_repo(&repo, false, true).unwrap();
    let info = hub
        .upload_folder(&repo, &folder, &UploadOptions::default())
        .unwrap();
    assert_eq!(info.uploaded.len(), 4);
    // Uploading again sends nothing.
    let again = hub
        .upload_folder(&repo, &folder, &UploadOptions::default())
        .unwrap();
    assert!(again.uploaded.is_empty(), "{:?}", again.uploaded);
    assert_eq!(again.unchanged.len(), 4);
    (repo, files, info.commit_oid)
}

#[test]
fn upload_then_snapshot_download_then_offline() {
    let mut server = Server::start();
    let (repo, files, commit) = upload_sample(&server, "roundtrip");
    let cache = tempfile::tempdir().unwrap();
    let hub = client(&server.url, cache.path(), None);
    let snapshot = hub
        .snapshot_download(&repo, &DownloadOptions::default())
        .unwrap();
    assert!(snapshot.ends_with(format!("snapshots/{commit}")));
    for (path, content) in &files {
        assert_eq!(
            &std::fs::read(snapshot.join(path)).unwrap(),
            content,
            "{path}"
        );
    }
    let main_ref =
        std::fs::read_to_string(cache.path().join("models--alice--roundtrip/refs/main")).unwrap();
    assert_eq!(main_ref, commit);
    // The LFS blob is named by its SHA-256, regular ones by their git blob id.
    let blobs: Vec<String> = std::fs::read_dir(cache.path().join("models--alice--roundtrip/blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(blobs.iter().any(|b| b.len() == 64));
    assert!(blobs.iter().all(|b| !b.ends_with(".incomplete")));

    // Offline, with the server gone: everything resolves from the cache.
    server.stop();
    let offline = HubClient::new(config(&server.url, cache.path(), None, true)).unwrap();
    assert_eq!(
        offline
            .snapshot_download(&repo, &DownloadOptions::default())
            .unwrap(),
        snapshot
    );
    let file = offline
        .download_file(&repo, "sub/dir/notes.txt", "main")
        .unwrap();
    assert_eq!(std::fs::read(file).unwrap(), b"nested");
    assert!(matches!(
        offline.download_file(&repo, "missing.txt", "main"),
        Err(HubError::NotCached { .. })
    ));
    let other = RepoId::model("alice/never-downloaded").unwrap();
    assert!(matches!(
        offline.snapshot_download(&other, &DownloadOptions::default()),
        Err(HubError::NotCached { .. })
    ));
}

#[test]
fn errors_are_distinct_and_leave_nothing_half_written() {
    let server = Server::start();
    let (repo, files, _) = upload_sample(&server, "errors");
    let cache = tempfile::tempdir().unwrap();
    let hub = client(&server.url, cache.path(), None);
    let missing_repo = RepoId::model("alice/nope").unwrap();
    assert!(matches!(
        hub.download_file(&missing_repo, "config.json", "main"),
        Err(HubError::RepoNotFound { .. })
    ));
    assert!(matches!(
        hub.download_file(&repo, "config.json", "v9"),
        Err(HubError::RevisionNotFound { .. })
    ));
    let entry = hub.download_file(&repo, "adapter_config.json", "main");
    assert!(
        matches!(entry, Err(HubError::EntryNotFound { .. })),
        "{entry:?}"
    );
    let no_exist = std::fs::read_dir(cache.path().join("models--alice--errors/.no_exist"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert!(no_exist.path().join("adapter_config.json").is_file());

    // A private repository: invisible without a token, readable with it.
    let owner = client(
        &server.url,
        &cache.path().join("owner"),
        Some(&server.token),
    );
    let private = RepoId::model("alice/private").unwrap();
    owner.create_repo(&private, true, false).unwrap();
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("secret.txt"), b"s").unwrap();
    owner
        .upload_folder(&private, folder.path(), &UploadOptions::default())
        .unwrap();
    assert!(matches!(
        hub.download_file(&private, "secret.txt", "main"),
        Err(HubError::RepoNotFound { .. })
    ));
    assert_eq!(
        std::fs::read(owner.download_file(&private, "secret.txt", "main").unwrap()).unwrap(),
        b"s"
    );
    let bad_token = client(&server.url, &cache.path().join("bad"), Some("hf_invalid"));
    assert!(matches!(
        bad_token.download_file(&repo, "config.json", "main"),
        Err(HubError::Unauthorized { .. })
    ));
    assert!(matches!(
        bad_token.whoami(),
        Err(HubError::Unauthorized { .. })
    ));
    assert_eq!(owner.whoami().unwrap().name, "alice");

    // A corrupted blob on the server: the checksum catches it and nothing is kept.
    let sha = files
        .iter()
        .find(|(p, _)| p == "weights.bin")
        .map(|(_, c)| {
            use sha2::Digest;
            sha2::Sha256::digest(c)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
    let sha = sha.unwrap();
    let blob = server.data.join("blobs/sha256").join(&sha[..2]).join(&sha);
    let mut corrupted = std::fs::read(&blob).unwrap();
    corrupted[1000] ^= 0xff;
    std::fs::write(&blob, &corrupted).unwrap();
    let err = hub.download_file(&repo, "weights.bin", "main").unwrap_err();
    assert!(matches!(err, HubError::ChecksumMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("checksum mismatch"));
    let repo_dir = cache.path().join("models--alice--errors");
    assert!(!repo_dir.join("blobs").join(&sha).exists());
    assert!(
        !repo_dir
            .join("blobs")
            .join(format!("{sha}.incomplete"))
            .exists()
    );

    // An unreachable server: a network error, not a panic.
    let nobody = client("http://127.0.0.1:9", &cache.path().join("down"), None);
    assert!(matches!(
        nobody.download_file(&repo, "config.json", "main"),
        Err(HubError::Network { .. })
    ));
}

/// A TCP proxy that counts the bytes the server sends and can cut the connection once after a
/// number of bytes.
struct Proxy {
    url: String,
    received: Arc<AtomicU64>,
}

impl Proxy {
    /// Cuts once, after `cut_after` bytes in total (`per_connection`: on every connection).
    fn start(upstream: &str, cut_after: i64, per_connection: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let received = Arc::new(AtomicU64::new(0));
        let budget = Arc::new(AtomicI64::new(cut_after));
        let counter = received.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { break };
                let Ok(mut server) = TcpStream::connect(&upstream) else {
                    break;
                };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut s2);
                    let _ = s2.shutdown(Shutdown::Write);
                });
                let budget = if per_connection {
                    Arc::new(AtomicI64::new(cut_after))
                } else {
                    budget.clone()
                };
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        counter.fetch_add(n as u64, Ordering::Relaxed);
                        let left = budget.fetch_sub(n as i64, Ordering::Relaxed);
                        if left > 0 && left - (n as i64) <= 0 {
                            // Cut once, in the middle of a body.
                            let _ = client.write_all(&buf[..left as usize]);
                            let _ = client.shutdown(Shutdown::Both);
                            let _ = server.shutdown(Shutdown::Both);
                            break;
                        }
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self { url, received }
    }
}

#[test]
fn a_dropped_download_resumes_where_it_stopped() {
    let server = Server::start();
    let (repo, files, _) = upload_sample(&server, "resume");
    let big = &files.iter().find(|(p, _)| p == "weights.bin").unwrap().1;
    // The connection drops after 6 MB of the 12 MB file.
    let proxy = Proxy::start(&server.url, 6_000_000, false);
    let cache = tempfile::tempdir().unwrap();
    let hub = client(&proxy.url, cache.path(), None);
    let path = hub.download_file(&repo, "weights.bin", "main").unwrap();
    assert_eq!(&std::fs::read(path).unwrap(), big);
    let wire = proxy.received.load(Ordering::Relaxed);
    // One full copy plus headers: the resumed request did not fetch the first half again.
    assert!(
        wire < big.len() as u64 + 100_000,
        "{wire} bytes on the wire for a {} byte file",
        big.len()
    );
    assert!(wire >= big.len() as u64);
}

#[test]
fn a_connection_that_keeps_dropping_is_a_clear_error_and_resumable() {
    let server = Server::start();
    let (repo, files, _) = upload_sample(&server, "drops");
    let big = &files.iter().find(|(p, _)| p == "weights.bin").unwrap().1;
    // Every connection is cut after 1 MB: the automatic resumes cannot finish 12 MB.
    let proxy = Proxy::start(&server.url, 1_000_000, true);
    let cache = tempfile::tempdir().unwrap();
    let err = client(&proxy.url, cache.path(), None)
        .download_file(&repo, "weights.bin", "main")
        .unwrap_err();
    assert!(matches!(err, HubError::Incomplete { .. }), "{err:?}");
    assert!(err.to_string().contains("run again to resume"), "{err}");
    // Nothing half-written is visible: no blob, no snapshot entry; only the resumable part.
    let repo_dir = cache.path().join("models--alice--drops");
    let names: Vec<String> = std::fs::read_dir(repo_dir.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(names[0].ends_with(".incomplete"));
    let part = std::fs::metadata(repo_dir.join("blobs").join(&names[0]))
        .unwrap()
        .len();
    assert!(part > 0 && part < big.len() as u64);
    let commit = std::fs::read_to_string(repo_dir.join("refs/main")).unwrap();
    assert!(
        !repo_dir
            .join("snapshots")
            .join(&commit)
            .join("weights.bin")
            .exists()
    );
    // A direct connection picks up where the part ends, fetching only the rest.
    let counting = Proxy::start(&server.url, i64::MAX, false);
    let path = client(&counting.url, cache.path(), None)
        .download_file(&repo, "weights.bin", "main")
        .unwrap();
    assert_eq!(&std::fs::read(path).unwrap(), big);
    let wire = counting.received.load(Ordering::Relaxed);
    assert!(
        wire < big.len() as u64 - part + 100_000,
        "{wire} bytes fetched after {part} were on disk"
    );
}

#[test]
fn two_clients_downloading_the_same_file_share_one_blob() {
    let server = Server::start();
    let (repo, files, _) = upload_sample(&server, "shared");
    let big = &files.iter().find(|(p, _)| p == "weights.bin").unwrap().1;
    let cache = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (url, dir, repo) = (&server.url, cache.path(), &repo);
                s.spawn(move || {
                    client(url, dir, None)
                        .download_file(repo, "weights.bin", "main")
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for p in &paths {
        assert_eq!(&std::fs::read(p).unwrap(), big);
    }
    let blobs: Vec<_> = std::fs::read_dir(cache.path().join("models--alice--shared/blobs"))
        .unwrap()
        .collect();
    assert_eq!(blobs.len(), 1, "one blob, no leftovers");
    let dataset = RepoId::new(RepoType::Dataset, "alice/shared").unwrap();
    assert!(matches!(
        client(&server.url, cache.path(), None).download_file(&dataset, "x", "main"),
        Err(HubError::RepoNotFound { .. })
    ));
}

#[test]
fn repo_management_single_files_and_local_dir() {
    let server = Server::start();
    let (repo, files, commit) = upload_sample(&server, "manage");
    let scratch = tempfile::tempdir().unwrap();
    let hub = client(
        &server.url,
        &scratch.path().join("cache"),
        Some(&server.token),
    );
    hub.create_branch(&repo, "dev", None).unwrap();
    hub.create_tag(&repo, "v1.0", &commit).unwrap();
    assert!(matches!(
        hub.create_tag(&repo, "v1.0", &commit),
        Err(HubError::Http { status: 409, .. })
    ));
    let local = scratch.path().join("one.txt");
    std::fs::write(&local, b"single").unwrap();
    let options = UploadOptions {
        revision: "dev".into(),
        commit_message: "one file".into(),
        ..UploadOptions::default()
    };
    let on_dev = hub
        .upload_file(&repo, &local, "docs/one.txt", &options)
        .unwrap();
    let refs = hub.list_refs(&repo).unwrap();
    let dev = refs.branches.iter().find(|b| b.name == "dev").unwrap();
    assert_eq!(dev.target_commit, on_dev.commit_oid);
    assert_eq!(refs.tags[0].target_commit, commit);
    let history = hub.list_commits(&repo, "dev").unwrap();
    assert_eq!(history[0].title, "one file");
    assert_eq!(history[0].authors, vec!["alice"]);
    assert_eq!(history.last().unwrap().title, "initial commit");
    // A stale parent is a distinct error.
    let stale = UploadOptions {
        parent_commit: Some(commit.clone()),
        ..options.clone()
    };
    assert!(matches!(
        hub.upload_file(&repo, &local, "again.txt", &stale),
        Err(HubError::Conflict { .. })
    ));

    // local_dir: files in place plus the metadata Python keeps.
    let target = scratch.path().join("local");
    let opts = DownloadOptions {
        revision: "v1.0".into(),
        local_dir: Some(target.clone()),
        ..DownloadOptions::default()
    };
    assert_eq!(hub.snapshot_download(&repo, &opts).unwrap(), target);
    for (path, content) in &files {
        assert_eq!(&std::fs::read(target.join(path)).unwrap(), content);
    }
    let meta =
        std::fs::read_to_string(target.join(".cache/huggingface/download/weights.bin.metadata"))
            .unwrap();
    let lines: Vec<&str> = meta.lines().collect();
    assert_eq!(lines[0], commit);
    assert_eq!(lines[1].len(), 64, "the LFS etag");
    assert!(!target.join("docs").exists(), "v1.0 predates docs/one.txt");

    hub.delete_repo(&repo, false).unwrap();
    assert!(matches!(
        hub.repo_info(&repo, None),
        Err(HubError::RepoNotFound { .. })
    ));
    hub.delete_repo(&repo, true).unwrap();
    assert!(matches!(
        hub.delete_repo(&repo, false),
        Err(HubError::RepoNotFound { .. })
    ));
}
