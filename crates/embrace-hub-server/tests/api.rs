//! The Hub API against a live server on loopback, request by request, as clients send them.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::{Reply, TestHub, get, post_json, request, try_request};
use serde_json::json;
use sha2::Digest;

fn sha256(data: &[u8]) -> String {
    embrace_hub_server::hashing::hex(&sha2::Sha256::digest(data))
}

fn create(hub: &TestHub, name: &str, token: &str, private: bool) -> Reply {
    post_json(
        &format!("{}/api/repos/create", hub.url),
        Some(token),
        &json!({ "name": name, "private": private }),
    )
}

/// Sends a commit NDJSON body.
fn commit(
    hub: &TestHub,
    repo: &str,
    token: &str,
    parent: Option<&str>,
    ops: &[serde_json::Value],
) -> Reply {
    let mut header = json!({ "summary": "test commit", "description": "" });
    if let Some(p) = parent {
        header["parentCommit"] = json!(p);
    }
    let mut body = json!({ "key": "header", "value": header }).to_string();
    for op in ops {
        body.push('\n');
        body.push_str(&op.to_string());
    }
    request(
        "POST",
        &format!("{}/api/models/{repo}/commit/main", hub.url),
        Some(token),
        &[("content-type", "application/x-ndjson")],
        Some(body.as_bytes()),
    )
}

fn inline_file(path: &str, content: &[u8]) -> serde_json::Value {
    json!({ "key": "file", "value": {
        "path": path, "encoding": "base64",
        "content": base64::engine::general_purpose::STANDARD.encode(content) } })
}

/// Uploads an LFS object through the batch API and the signed URL; returns its oid.
fn upload_lfs(hub: &TestHub, repo: &str, token: &str, content: &[u8]) -> String {
    let oid = sha256(content);
    let batch = request(
        "POST",
        &format!("{}/{repo}.git/info/lfs/objects/batch", hub.url),
        Some(token),
        &[("content-type", "application/vnd.git-lfs+json"), ("accept", "application/vnd.git-lfs+json")],
        Some(json!({ "operation": "upload", "transfers": ["basic", "multipart"], "hash_algo": "sha256",
                     "objects": [{ "oid": oid, "size": content.len() }], "ref": { "name": "main" } })
            .to_string()
            .as_bytes()),
    );
    assert_eq!(batch.status, 200, "{}", batch.text());
    let answer = batch.json();
    assert_eq!(answer["transfer"], "basic");
    if let Some(href) = answer["objects"][0]["actions"]["upload"]["href"].as_str() {
        // Python sends the bytes without an Authorization header.
        let put = request("PUT", href, None, &[], Some(content));
        assert_eq!(put.status, 200, "{}", put.text());
        let verify = answer["objects"][0]["actions"]["verify"]["href"]
            .as_str()
            .unwrap();
        let v = post_json(
            verify,
            Some(token),
            &json!({ "oid": oid, "size": content.len() }),
        );
        assert_eq!(v.status, 200, "{}", v.text());
    }
    oid
}

#[test]
fn upload_download_roundtrip_with_every_header() {
    let hub = TestHub::start();
    let created = create(&hub, "tiny", &hub.alice, false);
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(created.json()["url"], format!("{}/alice/tiny", hub.url));
    assert_eq!(create(&hub, "tiny", &hub.alice, false).status, 409);

    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let oid = upload_lfs(&hub, "alice/tiny", &hub.alice, &big);
    let readme = b"---\nlicense: apache-2.0\npipeline_tag: fill-mask\n---\n# Tiny\n";
    let info0 = get(&format!("{}/api/models/alice/tiny", hub.url), None).json();
    let c = commit(
        &hub,
        "alice/tiny",
        &hub.alice,
        Some(info0["sha"].as_str().unwrap()),
        &[
            inline_file("config.json", br#"{"model_type": "bert"}"#),
            inline_file("README.md", readme),
            inline_file("sub/dir/empty.txt", b""),
            json!({ "key": "lfsFile", "value": { "path": "model.safetensors", "algo": "sha256", "oid": oid, "size": big.len() } }),
        ],
    );
    assert_eq!(c.status, 200, "{}", c.text());
    let sha = c.json()["commitOid"].as_str().unwrap().to_string();
    assert_eq!(
        c.json()["commitUrl"],
        format!("{}/alice/tiny/commit/{sha}", hub.url)
    );

    // HEAD: metadata only, with the full size.
    let head = request(
        "HEAD",
        &format!("{}/alice/tiny/resolve/main/model.safetensors", hub.url),
        None,
        &[],
        None,
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-repo-commit"), Some(sha.as_str()));
    assert_eq!(
        head.header("x-linked-etag"),
        Some(format!("\"{oid}\"").as_str())
    );
    assert_eq!(
        head.header("x-linked-size"),
        Some(big.len().to_string().as_str())
    );
    assert_eq!(
        head.header("content-length"),
        Some(big.len().to_string().as_str())
    );
    assert!(head.body.is_empty());

    // GET, full and ranged (hf-hub's probe, resume, and an end past EOF).
    let full = get(
        &format!("{}/alice/tiny/resolve/{sha}/model.safetensors", hub.url),
        None,
    );
    assert_eq!(full.body, big);
    let probe = request(
        "GET",
        &format!("{}/alice/tiny/resolve/main/model.safetensors", hub.url),
        None,
        &[("range", "bytes=0-0")],
        None,
    );
    assert_eq!(probe.status, 206);
    assert_eq!(
        probe.header("content-range"),
        Some(format!("bytes 0-0/{}", big.len()).as_str())
    );
    assert_eq!(probe.body, &big[..1]);
    let tail = request(
        "GET",
        &format!("{}/alice/tiny/resolve/main/model.safetensors", hub.url),
        None,
        &[("range", "bytes=2999990-4000000")],
        None,
    );
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, &big[2_999_990..]);
    let past = request(
        "GET",
        &format!("{}/alice/tiny/resolve/main/model.safetensors", hub.url),
        None,
        &[("range", "bytes=3000000-")],
        None,
    );
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some("bytes */3000000"));
    // Empty file with the hf-hub probe: 206 with `bytes */0`.
    let empty = request(
        "GET",
        &format!("{}/alice/tiny/resolve/main/sub/dir/empty.txt", hub.url),
        None,
        &[("range", "bytes=0-0")],
        None,
    );
    assert_eq!(empty.status, 206);
    assert_eq!(empty.header("content-range"), Some("bytes */0"));

    // A regular file's ETag is its git blob id.
    let config = request(
        "HEAD",
        &format!("{}/alice/tiny/resolve/main/config.json", hub.url),
        None,
        &[],
        None,
    );
    assert_eq!(
        config.header("etag").unwrap().trim_matches('"'),
        embrace_hub_server::hashing::git_blob_id(br#"{"model_type": "bert"}"#)
    );

    // Missing file, revision and repo: the three error codes.
    let missing = request(
        "HEAD",
        &format!("{}/alice/tiny/resolve/main/adapter_config.json", hub.url),
        None,
        &[],
        None,
    );
    assert_eq!(
        (missing.status, missing.header("x-error-code")),
        (404, Some("EntryNotFound"))
    );
    assert_eq!(missing.header("x-repo-commit"), Some(sha.as_str()));
    let bad_rev = get(
        &format!("{}/alice/tiny/resolve/nope/config.json", hub.url),
        None,
    );
    assert_eq!(
        (bad_rev.status, bad_rev.header("x-error-code")),
        (404, Some("RevisionNotFound"))
    );
    assert!(bad_rev.header("x-repo-commit").is_none());
    let no_repo = get(
        &format!("{}/alice/none/resolve/main/config.json", hub.url),
        None,
    );
    assert_eq!(
        (no_repo.status, no_repo.header("x-error-code")),
        (401, Some("RepoNotFound"))
    );

    // Repo info with blobs, derived card metadata.
    let info = get(
        &format!("{}/api/models/alice/tiny/revision/main?blobs=true", hub.url),
        None,
    )
    .json();
    assert_eq!(info["sha"], sha.as_str());
    assert_eq!(info["pipeline_tag"], "fill-mask");
    assert_eq!(info["cardData"]["license"], "apache-2.0");
    let siblings = info["siblings"].as_array().unwrap();
    let model = siblings
        .iter()
        .find(|s| s["rfilename"] == "model.safetensors")
        .unwrap();
    assert_eq!(model["lfs"]["sha256"], oid.as_str());
    assert_eq!(model["size"], big.len());
    assert!(
        info["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("license:apache-2.0"))
    );
    assert!(info["lastModified"].as_str().unwrap().ends_with('Z'));

    // Tree: root, recursive with folders, a sub-path with %2F, a missing folder.
    let root = get(
        &format!("{}/api/models/alice/tiny/tree/main", hub.url),
        None,
    )
    .json();
    let paths: Vec<&str> = root
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            ".gitattributes",
            "README.md",
            "config.json",
            "model.safetensors",
            "sub"
        ]
    );
    let rec = get(
        &format!(
            "{}/api/models/alice/tiny/tree/main?recursive=True&expand=False",
            hub.url
        ),
        None,
    )
    .json();
    assert!(
        rec.as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == "sub/dir" && e["type"] == "directory")
    );
    let sub = get(
        &format!("{}/api/models/alice/tiny/tree/main/sub%2Fdir", hub.url),
        None,
    )
    .json();
    assert_eq!(sub[0]["path"], "sub/dir/empty.txt");
    let nope = get(
        &format!(
            "{}/api/models/alice/tiny/tree/main/additional_chat_templates?recursive=false",
            hub.url
        ),
        None,
    );
    assert_eq!(
        (nope.status, nope.header("x-error-code")),
        (404, Some("EntryNotFound"))
    );
    let expanded = get(
        &format!("{}/api/models/alice/tiny/tree/main?expand=true", hub.url),
        None,
    )
    .json();
    assert_eq!(expanded[1]["lastCommit"]["id"], sha.as_str());

    // paths-info: the form body of Python and the JSON body of hf-hub 1.x.
    let form = request(
        "POST",
        &format!("{}/api/models/alice/tiny/paths-info/main", hub.url),
        None,
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(b"paths=config.json&paths=sub&paths=missing&expand=false"),
    );
    assert_eq!(form.json().as_array().unwrap().len(), 2);
    let as_json = post_json(
        &format!("{}/api/models/alice/tiny/paths-info/main", hub.url),
        None,
        &json!({ "paths": ["model.safetensors"] }),
    );
    assert_eq!(as_json.json()[0]["lfs"]["oid"], oid.as_str());

    // Commit history, refs, branches and tags.
    let history = get(
        &format!(
            "{}/api/models/alice/tiny/commits/main?expand[]=formatted",
            hub.url
        ),
        None,
    )
    .json();
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[0]["authors"][0]["user"], "alice");
    assert!(history[0]["formatted"]["title"].is_string());
    assert_eq!(
        post_json(
            &format!("{}/api/models/alice/tiny/branch/dev", hub.url),
            Some(&hub.alice),
            &json!({})
        )
        .status,
        200
    );
    assert_eq!(
        post_json(
            &format!("{}/api/models/alice/tiny/branch/dev", hub.url),
            Some(&hub.alice),
            &json!({})
        )
        .status,
        409
    );
    assert_eq!(
        post_json(
            &format!("{}/api/models/alice/tiny/tag/main", hub.url),
            Some(&hub.alice),
            &json!({ "tag": "v1.0" })
        )
        .status,
        200
    );
    let refs = get(&format!("{}/api/models/alice/tiny/refs", hub.url), None).json();
    assert_eq!(refs["branches"].as_array().unwrap().len(), 2);
    assert_eq!(refs["tags"][0]["name"], "v1.0");
    assert!(refs["converts"].as_array().unwrap().is_empty());
    let tagged = get(
        &format!("{}/alice/tiny/resolve/v1.0/config.json", hub.url),
        None,
    );
    assert_eq!(tagged.header("x-repo-commit"), Some(sha.as_str()));

    // Listing and search.
    let found = get(&format!("{}/api/models?search=tin&limit=10", hub.url), None).json();
    assert_eq!(found[0]["id"], "alice/tiny");
    let filtered = get(
        &format!("{}/api/models?filter=fill-mask&author=alice", hub.url),
        None,
    )
    .json();
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert!(
        get(
            &format!("{}/api/models?filter=text-generation", hub.url),
            None
        )
        .json()
        .as_array()
        .unwrap()
        .is_empty()
    );

    // Deletions.
    let deleted = commit(
        &hub,
        "alice/tiny",
        &hub.alice,
        None,
        &[json!({ "key": "deletedFolder", "value": { "path": "sub/" } })],
    );
    assert_eq!(deleted.status, 200);
    let missing_delete = commit(
        &hub,
        "alice/tiny",
        &hub.alice,
        None,
        &[json!({ "key": "deletedFile", "value": { "path": "nope.txt" } })],
    );
    assert_eq!(missing_delete.status, 404);
    assert!(
        missing_delete
            .text()
            .contains("A file with this name doesn't exist")
    );
}

#[test]
fn stale_parent_and_concurrent_commits_get_412() {
    let hub = TestHub::start();
    create(&hub, "race", &hub.alice, false);
    let head = get(&format!("{}/api/models/alice/race", hub.url), None).json()["sha"]
        .as_str()
        .unwrap()
        .to_string();
    // Eight commits race on the same parent: exactly one wins.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (hub, head) = (&hub, &head);
                s.spawn(move || {
                    commit(
                        hub,
                        "alice/race",
                        &hub.alice,
                        Some(head),
                        &[inline_file(&format!("f{i}.txt"), b"x")],
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 412).count(),
        7,
        "{statuses:?}"
    );
    let files = get(
        &format!("{}/api/models/alice/race/tree/main", hub.url),
        None,
    )
    .json();
    assert_eq!(files.as_array().unwrap().len(), 2);
}

#[test]
fn auth_private_repos_and_roles() {
    let hub = TestHub::start();
    assert_eq!(create(&hub, "secret", &hub.alice, true).status, 200);
    commit(
        &hub,
        "alice/secret",
        &hub.alice,
        None,
        &[inline_file("a.txt", b"hidden")],
    );
    let url = format!("{}/alice/secret/resolve/main/a.txt", hub.url);
    // Invisible to anonymous (401) and other users (404), exactly like a missing repo.
    let anon = get(&url, None);
    assert_eq!(
        (anon.status, anon.header("x-error-code")),
        (401, Some("RepoNotFound"))
    );
    let other = get(&url, Some(&hub.bob));
    assert_eq!(
        (other.status, other.header("x-error-code")),
        (404, Some("RepoNotFound"))
    );
    assert_eq!(get(&url, Some(&hub.alice_read)).body, b"hidden");
    assert!(
        get(&format!("{}/api/models?search=secret", hub.url), None)
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        get(
            &format!("{}/api/models?search=secret", hub.url),
            Some(&hub.alice)
        )
        .json()
        .as_array()
        .unwrap()
        .len(),
        1
    );
    // Invalid token: 401 even on public content.
    let bad = get(&format!("{}/api/models", hub.url), Some("hf_notatoken"));
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.header("x-error-message"),
        Some("Invalid credentials in Authorization header")
    );
    // Writes: read token 403, other user 403, anonymous 401.
    create(&hub, "public", &hub.alice, false);
    assert_eq!(
        commit(
            &hub,
            "alice/public",
            &hub.alice_read,
            None,
            &[inline_file("x", b"1")]
        )
        .status,
        403
    );
    assert_eq!(
        commit(
            &hub,
            "alice/public",
            &hub.bob,
            None,
            &[inline_file("x", b"1")]
        )
        .status,
        403
    );
    assert_eq!(create(&hub, "x", &hub.alice_read, false).status, 403);
    assert_eq!(
        post_json(
            &format!("{}/api/repos/create", hub.url),
            Some(&hub.bob),
            &json!({"name": "y", "organization": "alice"})
        )
        .status,
        403
    );
    // whoami.
    let me = get(&format!("{}/api/whoami-v2", hub.url), Some(&hub.alice_read)).json();
    assert_eq!(me["name"], "alice");
    assert_eq!(me["auth"]["accessToken"]["role"], "read");
    assert_eq!(get(&format!("{}/api/whoami-v2", hub.url), None).status, 401);
    // Settings: make it public, then it is visible.
    let s = request(
        "PUT",
        &format!("{}/api/models/alice/secret/settings", hub.url),
        Some(&hub.alice),
        &[("content-type", "application/json")],
        Some(br#"{"visibility": "public"}"#),
    );
    assert_eq!(s.status, 200);
    assert_eq!(get(&url, None).body, b"hidden");
    // Delete.
    let d = request(
        "DELETE",
        &format!("{}/api/repos/delete", hub.url),
        Some(&hub.alice),
        &[("content-type", "application/json")],
        Some(br#"{"name": "secret", "organization": "alice"}"#),
    );
    assert_eq!(d.status, 200);
    assert_eq!(get(&url, None).status, 401);
}

#[test]
fn bad_input_is_refused_cleanly() {
    let hub = TestHub::start_with(|c| c.max_commit_bytes = 64 * 1024);
    create(&hub, "m", &hub.alice, false);
    // Path traversal in resolve, tree and commits.
    for path in [
        "/alice/m/resolve/main/..%2F..%2Fhub.sqlite",
        "/alice/m/resolve/main/a/../../x",
        "/api/models/alice/m/tree/main/..%2F..",
    ] {
        let r = get(&format!("{}{path}", hub.url), None);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
    }
    for bad_path in ["../escape.txt", "a/../../b", ".git/config", "a//b"] {
        let r = commit(
            &hub,
            "alice/m",
            &hub.alice,
            None,
            &[inline_file(bad_path, b"x")],
        );
        assert_eq!(r.status, 400, "{bad_path}");
    }
    // Invalid repo ids.
    for name in ["bad--name", "-x", "a b", "x.git", ""] {
        assert_eq!(
            create(&hub, name, &hub.alice, false).status,
            400,
            "{name:?}"
        );
    }
    assert_eq!(
        get(&format!("{}/api/models/alice/..", hub.url), None).status,
        400
    );
    // Oversized commit body: 413, and nothing was committed. The server answers before reading
    // the whole body, so the client may instead see the connection closed mid-upload; that is a
    // refusal too, and a transport error of any other kind is not.
    let huge = vec![b'a'; 100 * 1024];
    let body = format!(
        "{}\n{}",
        json!({ "key": "header", "value": { "summary": "big", "description": "" } }),
        inline_file("big.txt", &huge)
    );
    match try_request(
        "POST",
        &format!("{}/api/models/alice/m/commit/main", hub.url),
        Some(&hub.alice),
        &[("content-type", "application/x-ndjson")],
        Some(body.as_bytes()),
    ) {
        Ok(r) => assert_eq!(r.status, 413),
        Err(ureq::Error::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
        Err(e) => panic!("oversized commit: {e}"),
    }
    assert_eq!(
        get(&format!("{}/api/models/alice/m/tree/main", hub.url), None)
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Malformed bodies.
    let r = request(
        "POST",
        &format!("{}/api/models/alice/m/commit/main", hub.url),
        Some(&hub.alice),
        &[],
        Some(b"{not json"),
    );
    assert_eq!(r.status, 400);
    let r = request(
        "POST",
        &format!("{}/api/repos/create", hub.url),
        Some(&hub.alice),
        &[],
        Some(b"[1,2"),
    );
    assert_eq!(r.status, 400);
    // An LFS pointer to an object this repo never uploaded.
    let r = commit(
        &hub,
        "alice/m",
        &hub.alice,
        None,
        &[
            json!({ "key": "lfsFile", "value": { "path": "w.bin", "algo": "sha256", "oid": "a".repeat(64), "size": 3 } }),
        ],
    );
    assert_eq!(r.status, 400);
    // An upload whose content does not match the signed hash is refused and not stored.
    let batch = request(
        "POST",
        &format!("{}/alice/m.git/info/lfs/objects/batch", hub.url),
        Some(&hub.alice),
        &[],
        Some(
            json!({ "operation": "upload", "objects": [{ "oid": sha256(b"good"), "size": 4 }] })
                .to_string()
                .as_bytes(),
        ),
    )
    .json();
    let href = batch["objects"][0]["actions"]["upload"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(request("PUT", &href, None, &[], Some(b"evil")).status, 400);
    assert_eq!(
        request("PUT", &href, None, &[], Some(b"good and more")).status,
        400
    );
    assert_eq!(
        request("PUT", &format!("{href}0"), None, &[], Some(b"good")).status,
        403
    );
    assert_eq!(request("PUT", &href, None, &[], Some(b"good")).status, 200);
    // validate-yaml answers JSON in both cases.
    let ok = post_json(
        &format!("{}/api/validate-yaml", hub.url),
        None,
        &json!({ "content": "---\nlicense: mit\n---\n", "repoType": "model" }),
    );
    assert_eq!(ok.status, 200);
    let bad = post_json(
        &format!("{}/api/validate-yaml", hub.url),
        None,
        &json!({ "content": "---\ntags: [unclosed\n---\n" }),
    );
    assert_eq!(bad.status, 400);
    assert!(bad.json()["errors"][0]["message"].is_string());
}

#[test]
fn pagination_links_are_absolute_and_complete() {
    let hub = TestHub::start();
    create(&hub, "many", &hub.alice, false);
    let ops: Vec<_> = (0..1200)
        .map(|i| inline_file(&format!("d/f{i:04}.txt"), b"x"))
        .collect();
    assert_eq!(
        commit(&hub, "alice/many", &hub.alice, None, &ops).status,
        200
    );
    let first = get(
        &format!(
            "{}/api/models/alice/many/tree/main?recursive=true&expand=false",
            hub.url
        ),
        None,
    );
    assert_eq!(first.json().as_array().unwrap().len(), 1000);
    let link = first.header("link").unwrap().to_string();
    assert!(
        link.starts_with(&format!(
            "<{}/api/models/alice/many/tree/main?recursive=true&expand=false&cursor=",
            hub.url
        )),
        "{link}"
    );
    assert!(link.ends_with("; rel=\"next\""));
    let next = &link[1..link.find('>').unwrap()];
    let second = get(next, None);
    assert_eq!(second.json().as_array().unwrap().len(), 1200 + 2 - 1000);
    assert!(second.header("link").is_none());
}

#[test]
fn web_ui_renders_card_files_and_history() {
    let hub = TestHub::start();
    create(&hub, "shown", &hub.alice, false);
    commit(
        &hub,
        "alice/shown",
        &hub.alice,
        None,
        &[
            inline_file(
                "README.md",
                b"---\nlicense: mit\n---\n# Shown model\n\nA **card** <script>x()</script>\n",
            ),
            inline_file("weights/part1.bin", &[1u8; 2048]),
        ],
    );
    let page = get(&format!("{}/alice/shown", hub.url), None);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text();
    assert!(html.contains("<h1>Shown model</h1>"));
    assert!(html.contains("<strong>card</strong>"));
    assert!(!html.contains("<script>"));
    assert!(html.contains("README.md") && html.contains("weights"));
    assert!(html.contains("2.0 kB"));
    assert!(html.contains("test commit"));
    let folder = get(&format!("{}/alice/shown/tree/main/weights", hub.url), None).text();
    assert!(folder.contains("/alice/shown/resolve/main/weights/part1.bin"));
    let home = get(&format!("{}/models?search=sho", hub.url), None).text();
    assert!(home.contains("alice/shown"));
    assert_eq!(get(&format!("{}/alice/missing", hub.url), None).status, 401);
}

#[test]
fn pull_requests_open_refs_pr_n() {
    let hub = TestHub::start();
    create(&hub, "prs", &hub.alice, false);
    let head = get(&format!("{}/api/models/alice/prs", hub.url), None).json()["sha"]
        .as_str()
        .unwrap()
        .to_string();
    let open = |content: &[u8]| {
        let body = format!(
            "{}\n{}",
            json!({ "key": "header", "value": { "summary": "proposal", "parentCommit": head } }),
            inline_file("proposal.txt", content)
        );
        request(
            "POST",
            &format!("{}/api/models/alice/prs/commit/main?create_pr=1", hub.url),
            Some(&hub.alice),
            &[],
            Some(body.as_bytes()),
        )
    };
    let first = open(b"one");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        first.json()["pullRequestUrl"],
        format!("{}/alice/prs/discussions/1", hub.url)
    );
    let second = open(b"two");
    assert_eq!(
        second.json()["pullRequestUrl"],
        format!("{}/alice/prs/discussions/2", hub.url)
    );
    // main is untouched; each PR ref has its own commit on top of the parent.
    assert_eq!(
        get(&format!("{}/api/models/alice/prs", hub.url), None).json()["sha"],
        head.as_str()
    );
    assert_eq!(
        get(
            &format!("{}/alice/prs/resolve/refs%2Fpr%2F1/proposal.txt", hub.url),
            None
        )
        .body,
        b"one"
    );
    assert_eq!(
        get(
            &format!("{}/alice/prs/resolve/refs%2Fpr%2F2/proposal.txt", hub.url),
            None
        )
        .body,
        b"two"
    );
    let refs = get(
        &format!("{}/api/models/alice/prs/refs?include_prs=1", hub.url),
        None,
    )
    .json();
    assert_eq!(refs["pullRequests"].as_array().unwrap().len(), 2);
    // More commits on an open PR.
    let body = format!(
        "{}\n{}",
        json!({ "key": "header", "value": { "summary": "more" } }),
        inline_file("more.txt", b"3")
    );
    let more = request(
        "POST",
        &format!("{}/api/models/alice/prs/commit/refs%2Fpr%2F1", hub.url),
        Some(&hub.alice),
        &[],
        Some(body.as_bytes()),
    );
    assert_eq!(more.status, 200, "{}", more.text());
    assert_eq!(
        get(
            &format!("{}/alice/prs/resolve/refs%2Fpr%2F1/more.txt", hub.url),
            None
        )
        .body,
        b"3"
    );
}

#[test]
fn blobs_can_live_in_an_object_store() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let hub =
        TestHub::start_with(|c| c.storage = embrace_hub_server::StorageConfig::ObjectStore(url));
    create(&hub, "remote", &hub.alice, false);
    let big: Vec<u8> = (0..20_000_000u32).map(|i| (i % 253) as u8).collect();
    let oid = upload_lfs(&hub, "alice/remote", &hub.alice, &big);
    let c = commit(
        &hub,
        "alice/remote",
        &hub.alice,
        None,
        &[
            inline_file("config.json", b"{}"),
            json!({ "key": "lfsFile", "value": { "path": "w.bin", "algo": "sha256", "oid": oid, "size": big.len() } }),
        ],
    );
    assert_eq!(c.status, 200, "{}", c.text());
    // The bytes are in the object store (multipart put for the large one), not in <data>/blobs.
    assert!(
        store
            .path()
            .join("sha256")
            .join(&oid[..2])
            .join(&oid)
            .is_file()
    );
    assert!(!hub.data_dir.join("blobs").exists());
    assert_eq!(
        get(
            &format!("{}/alice/remote/resolve/main/w.bin", hub.url),
            None
        )
        .body,
        big
    );
    let part = request(
        "GET",
        &format!("{}/alice/remote/resolve/main/w.bin", hub.url),
        None,
        &[("range", "bytes=19999990-")],
        None,
    );
    assert_eq!(
        (part.status, part.body.as_slice()),
        (206, &big[19_999_990..])
    );
    assert_eq!(
        get(
            &format!("{}/alice/remote/resolve/main/config.json", hub.url),
            None
        )
        .body,
        b"{}"
    );
}
