#!/usr/bin/env python3
"""Hub compatibility suite: stock HuggingFace Python clients against an Embrace hub server.

Run by the python of one of the venvs that `setup` builds (huggingface_hub 0.36 or 1.x, with the
matching transformers and datasets); normally started by `run`, which also starts the server.

Environment (all required unless noted):
  HF_ENDPOINT            server URL, e.g. http://127.0.0.1:8080 (read by huggingface_hub at import)
  HUBCOMPAT_USER         user name = namespace of every repo created here
  HUBCOMPAT_TOKEN        write token of that user
  HUBCOMPAT_READ_TOKEN   read-only token of the same user
  HUBCOMPAT_TAG          suffix that makes repo names unique per venv (e.g. "1x", "036")
  HF_HOME                fresh temporary directory (the runner sets it; the suite refuses ~/.cache)
  HF_HUB_DISABLE_XET     forced to 1 here: uploads must take the plain LFS path (spec §2.6)
  HUBCOMPAT_SCENARIO_TIMEOUT  optional, seconds per scenario (default 300)
  HUBCOMPAT_KEEP         optional, 1 = keep the local work directory

Usage: compat.py [--list] [SCENARIO ...]   (no names = all, in order)

Each scenario prints `PASS name`, `FAIL name: reason` (traceback indented below) or
`SKIP name: ...` when a scenario it depends on failed. The last line is a JSON summary. The exit
status is 1 if anything failed or was skipped, 2 on a usage/environment error.

Repo names are `hc-<tag>-<random>-<what>`, so runs never collide on a long-lived server.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import uuid

# ---------------------------------------------------------------------------------------------
# Environment. Everything that huggingface_hub / transformers / datasets read at import time has
# to be settled before they are imported.
# ---------------------------------------------------------------------------------------------

os.environ["HF_HUB_DISABLE_XET"] = "1"  # no Xet: the server speaks plain LFS only
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("DISABLE_SAFETENSORS_CONVERSION", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Tokens are always passed explicitly; an inherited implicit token would hide auth bugs.
for _var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.pop(_var, None)


def _need(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        print(f"compat.py: environment variable {name} is required", file=sys.stderr)
        sys.exit(2)
    return value


ENDPOINT = _need("HF_ENDPOINT").rstrip("/")
USER = _need("HUBCOMPAT_USER")
TOKEN = _need("HUBCOMPAT_TOKEN")
READ_TOKEN = _need("HUBCOMPAT_READ_TOKEN")
TAG = re.sub(r"[^A-Za-z0-9]", "", _need("HUBCOMPAT_TAG")) or "x"
HF_HOME = _need("HF_HOME")
SCENARIO_TIMEOUT = int(os.environ.get("HUBCOMPAT_SCENARIO_TIMEOUT", "300"))

if os.path.realpath(HF_HOME) == os.path.realpath(os.path.expanduser("~/.cache/huggingface")):
    print("compat.py: HF_HOME must be a fresh temporary directory, not the user cache", file=sys.stderr)
    sys.exit(2)

import huggingface_hub  # noqa: E402
from huggingface_hub import (  # noqa: E402
    CommitOperationAdd,
    HfApi,
    hf_hub_download,
    snapshot_download,
    try_to_load_from_cache,
)
from huggingface_hub import errors as hf_errors  # noqa: E402

HUB_VERSION = huggingface_hub.__version__
HUB_MAJOR = int(HUB_VERSION.split(".")[0])

HfHubHTTPError = hf_errors.HfHubHTTPError
RepositoryNotFoundError = hf_errors.RepositoryNotFoundError
RevisionNotFoundError = hf_errors.RevisionNotFoundError
LocalEntryNotFoundError = hf_errors.LocalEntryNotFoundError
# 0.x raises EntryNotFoundError (and LocalEntryNotFoundError is a *subclass* of it, so a network
# failure would look like a pass); 1.x raises RemoteEntryNotFoundError.
RemoteEntryNotFoundError = getattr(hf_errors, "RemoteEntryNotFoundError", None) or hf_errors.EntryNotFoundError

api = HfApi(endpoint=ENDPOINT, token=TOKEN)

RUN_ID = uuid.uuid4().hex[:6]
PREFIX = f"hc-{TAG}-{RUN_ID}"


def repo_name(what: str) -> str:
    return f"{USER}/{PREFIX}-{what}"


# Repo ids used by the scenarios (created by them; nothing exists before the run).
MODEL_REPO = repo_name("model")
BERT_REPO = repo_name("tiny-bert")
PARENT_REPO = repo_name("parent")
DELETE_REPO = repo_name("delete")
PRIVATE_REPO = repo_name("private")
DS_PARQUET_REPO = repo_name("ds-parquet")
DS_CSV_REPO = repo_name("ds-csv")
DS_CONFIGS_REPO = repo_name("ds-configs")
DS_PUSH_REPO = repo_name("ds-push")

WORK = ""  # local scratch directory, created by main()
STATE: dict = {}  # values produced by one scenario and read by later ones


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


class Check(AssertionError):
    """A failed expectation (as opposed to an unexpected exception)."""


def check(cond, msg: str) -> None:
    if not cond:
        raise Check(msg)


def eq(actual, expected, what: str) -> None:
    if actual != expected:
        raise Check(f"{what}: expected {expected!r}, got {actual!r}")


def expect_raises(exc_types, fn, what: str, *, status: int | None = None, not_types=()):
    """Call fn() and require one of exc_types (and, if given, that HTTP status). Returns the error."""
    try:
        fn()
    except exc_types as err:  # noqa: PERF203
        if not_types and isinstance(err, not_types):
            raise Check(f"{what}: got {type(err).__name__} (a local/network failure), not a server answer: {err}")
        if status is not None:
            got = http_status(err)
            check(got == status, f"{what}: expected HTTP {status}, got {got} ({type(err).__name__}: {err})")
        return err
    except Exception as err:
        raise Check(f"{what}: expected {_names(exc_types)}, got {type(err).__name__}: {err}") from err
    raise Check(f"{what}: expected {_names(exc_types)}, but the call succeeded")


def _names(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in types)


def http_status(err) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_commit(value) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{40}", value) is not None


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write(path: str, data) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def cache_folder(repo_id: str, repo_type: str = "model", cache_dir: str | None = None) -> str:
    root = cache_dir or os.path.join(HF_HOME, "hub")
    return os.path.join(root, f"{repo_type}s--" + repo_id.replace("/", "--"))


def run_offline(code: str) -> dict:
    """Run `code` in a fresh interpreter with HF_HUB_OFFLINE=1 (read at import time); it prints JSON."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise Check(f"offline subprocess failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    check(lines, f"offline subprocess printed no JSON: {proc.stdout[-2000:]}")
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------------------------
# Scenario registry
# ---------------------------------------------------------------------------------------------

SCENARIOS: list = []  # (name, function, prerequisites)


def scenario(name: str, needs: tuple = ()):
    def register(fn):
        SCENARIOS.append((name, fn, tuple(needs)))
        return fn

    return register


class ScenarioTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise ScenarioTimeout(f"scenario took longer than {SCENARIO_TIMEOUT} s (HUBCOMPAT_SCENARIO_TIMEOUT)")


# ---------------------------------------------------------------------------------------------
# The uploaded model repo: contents built once, shared by the download/metadata scenarios
# ---------------------------------------------------------------------------------------------

MODEL_CARD = """\
---
license: apache-2.0
tags:
- test
pipeline_tag: fill-mask
library_name: transformers
base_model: some/base
datasets:
- some/ds
---

# Hub compatibility test model

Uploaded by tools/hubcompat/compat.py.
"""

LFS_SIZE = 50 * 1024 * 1024  # ≥ 10 MiB: the server must answer uploadMode "lfs"


def model_files() -> dict:
    """path in repo -> bytes of the folder uploaded to MODEL_REPO (built on first use)."""
    if "model_files" not in STATE:
        rng = random.Random(f"hubcompat-{RUN_ID}")
        files = {
            "weights.bin": rng.randbytes(LFS_SIZE),
            "config.json": json.dumps(
                {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 32, "run": RUN_ID},
                indent=2,
            ).encode(),
            "README.md": MODEL_CARD.encode(),
            "sub/dir/notes.txt": f"nested file of run {RUN_ID}\n".encode(),
        }
        folder = os.path.join(WORK, "model")
        for path, data in files.items():
            write(os.path.join(folder, path), data)
        STATE["model_files"] = files
        STATE["model_folder"] = folder
    return STATE["model_files"]


# ---------------------------------------------------------------------------------------------
# Scenarios: account and repo creation
# ---------------------------------------------------------------------------------------------


@scenario("whoami")
def s_whoami():
    info = api.whoami(token=TOKEN)
    eq(info.get("name"), USER, "whoami(write token).name")
    check(isinstance(info.get("orgs", []), list), "whoami.orgs must be a list")
    info = api.whoami(token=READ_TOKEN)
    eq(info.get("name"), USER, "whoami(read token).name")
    # An invalid token is a 401 (spec §5), surfaced as HfHubHTTPError.
    # 0.x re-raises a plain requests.HTTPError here, 1.x an HfHubHTTPError: only the status matters.
    expect_raises(Exception, lambda: api.whoami(token="hf_invalid_" + RUN_ID), "whoami(bad token)", status=401)


@scenario("create_repo")
def s_create_repo():
    url = api.create_repo(MODEL_REPO, exist_ok=True)
    eq(getattr(url, "repo_id", None), MODEL_REPO, "create_repo RepoUrl.repo_id")
    url = api.create_repo(MODEL_REPO, exist_ok=True)  # second call: 409 swallowed by exist_ok
    eq(getattr(url, "repo_id", None), MODEL_REPO, "create_repo (exist_ok, again) RepoUrl.repo_id")
    # Without exist_ok the second create is a 409.
    expect_raises(HfHubHTTPError, lambda: api.create_repo(MODEL_REPO), "create_repo twice", status=409)
    # A new repo already has a commit (spec §0 rule 10).
    info = api.model_info(MODEL_REPO)
    check(is_commit(info.sha), f"new repo sha must be 40-hex, got {info.sha!r}")


@scenario("upload_folder", needs=("create_repo",))
def s_upload_folder():
    model_files()
    commit = api.upload_folder(
        folder_path=STATE["model_folder"], repo_id=MODEL_REPO, commit_message=f"upload folder {RUN_ID}"
    )
    check(is_commit(commit.oid), f"CommitInfo.oid must be 40-hex, got {commit.oid!r}")
    check("/commit/" in commit.commit_url, f"commit_url {commit.commit_url!r}")
    STATE["model_commit"] = commit.oid
    info = api.model_info(MODEL_REPO)
    eq(info.sha, commit.oid, "model_info.sha after upload_folder (= commit oid)")


# ---------------------------------------------------------------------------------------------
# Scenarios: downloads and the cache
# ---------------------------------------------------------------------------------------------


@scenario("hf_hub_download", needs=("upload_folder",))
def s_hf_hub_download():
    files = model_files()
    commit = STATE["model_commit"]
    folder = cache_folder(MODEL_REPO)
    paths = {}
    for path, data in files.items():
        local = hf_hub_download(MODEL_REPO, path)
        check(read(local) == data, f"{path}: downloaded bytes differ from the upload")
        eq(os.path.relpath(local, os.path.join(folder, "snapshots")), os.path.join(commit, path), f"{path}: cache path")
        paths[path] = local
    # The blob name is the ETag: sha256 for LFS files, git blob sha1 for regular ones (spec §2.2).
    eq(os.path.basename(os.path.realpath(paths["weights.bin"])), sha256_bytes(files["weights.bin"]),
       "blob name (ETag) of the LFS file weights.bin")
    eq(os.path.basename(os.path.realpath(paths["config.json"])), git_blob_sha1(files["config.json"]),
       "blob name (ETag) of the regular file config.json")
    eq(read(os.path.join(folder, "refs", "main")).decode(), commit, "refs/main in the cache")
    # By commit id (no network needed once cached) and by explicit branch name.
    check(read(hf_hub_download(MODEL_REPO, "config.json", revision=commit)) == files["config.json"],
          "config.json at revision=<commit>")
    check(read(hf_hub_download(MODEL_REPO, "sub/dir/notes.txt", revision="main")) == files["sub/dir/notes.txt"],
          "sub/dir/notes.txt at revision=main")
    # Download into a second, empty cache with force_download: the bytes come over the wire again.
    other = os.path.join(WORK, "cache-force")
    local = hf_hub_download(MODEL_REPO, "weights.bin", cache_dir=other, force_download=True)
    check(read(local) == files["weights.bin"], "weights.bin (second cache) differs")
    STATE["download_paths"] = paths


@scenario("snapshot_download", needs=("upload_folder",))
def s_snapshot_download():
    files = model_files()
    snap = snapshot_download(MODEL_REPO)
    eq(os.path.basename(snap), STATE["model_commit"], "snapshot folder name")
    got = {}
    for root, _dirs, names in os.walk(snap):
        for name in names:
            full = os.path.join(root, name)
            got[os.path.relpath(full, snap).replace(os.sep, "/")] = read(full)
    eq(sorted(got), sorted(list(files) + [".gitattributes"]), "files in the snapshot")
    for path, data in files.items():
        check(got[path] == data, f"snapshot {path}: bytes differ from the upload")
    STATE["snapshot_path"] = snap


def _raw(method: str, url: str, headers: dict | None = None):
    """Plain urllib request (no client logic in between): (status, headers, body). Errors are returned too."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@scenario("resolve_protocol", needs=("upload_folder",))
def s_resolve_protocol():
    """The /resolve/ rules of spec §0 checked on the wire: metadata headers, Range, no compression."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    files = model_files()
    commit = STATE["model_commit"]
    for path, etag in (("weights.bin", sha256_bytes(files["weights.bin"])),
                       ("config.json", git_blob_sha1(files["config.json"]))):
        meta = get_hf_file_metadata(hf_hub_url(MODEL_REPO, path))
        eq(meta.commit_hash, commit, f"{path}: X-Repo-Commit")
        eq(meta.etag, etag, f"{path}: ETag (X-Linked-Etag or ETag)")
        eq(meta.size, len(files[path]), f"{path}: size (X-Linked-Size or Content-Length)")

    url = hf_hub_url(MODEL_REPO, "weights.bin")
    size = LFS_SIZE
    status, headers, body = _raw("GET", url, {"Range": "bytes=0-0"})
    eq(status, 206, "GET Range: bytes=0-0 status")
    eq(headers.get("Content-Range"), f"bytes 0-0/{size}", "Content-Range for bytes=0-0")
    eq(body, files["weights.bin"][:1], "body for bytes=0-0")
    start = size - 1000
    status, headers, body = _raw("GET", url, {"Range": f"bytes={start}-"})
    eq(status, 206, "GET Range: bytes=N- status")
    check(body == files["weights.bin"][start:], "body for bytes=N- differs")
    status, headers, body = _raw("GET", url, {"Range": f"bytes={start}-{size + 5000}"})
    eq(status, 206, "GET Range with an end past EOF (must be clamped) status")
    eq(headers.get("Content-Range"), f"bytes {start}-{size - 1}/{size}", "Content-Range of a clamped range")
    check(body == files["weights.bin"][start:], "body of a clamped range differs")

    # Never compressed, even when the client offers gzip (size headers describe the raw bytes).
    status, headers, body = _raw("GET", hf_hub_url(MODEL_REPO, "config.json"), {"Accept-Encoding": "gzip"})
    eq(status, 200, "GET config.json status")
    eq(headers.get("Content-Encoding"), None, "Content-Encoding on /resolve/ (must not be compressed)")
    eq(body, files["config.json"], "GET config.json body")
    status, headers, _ = _raw("HEAD", hf_hub_url(MODEL_REPO, "config.json"), {"Accept-Encoding": "identity"})
    eq(status, 200, "HEAD config.json status")
    eq(headers.get("Content-Length"), str(len(files["config.json"])), "HEAD Content-Length (full size)")

    # Error codes the clients map to exception types (spec §1.7).
    status, headers, _ = _raw("HEAD", hf_hub_url(MODEL_REPO, "nope.txt"))
    eq((status, headers.get("X-Error-Code")), (404, "EntryNotFound"), "missing file: status, X-Error-Code")
    eq(headers.get("X-Repo-Commit"), commit, "missing file: X-Repo-Commit")
    status, headers, _ = _raw("HEAD", hf_hub_url(MODEL_REPO, "config.json", revision="nope"))
    eq((status, headers.get("X-Error-Code")), (404, "RevisionNotFound"), "missing revision: status, X-Error-Code")
    status, headers, _ = _raw("HEAD", hf_hub_url(repo_name("missing"), "config.json"))
    eq((status, headers.get("X-Error-Code")), (401, "RepoNotFound"), "missing repo (anonymous): status, X-Error-Code")


@scenario("offline_mode", needs=("hf_hub_download", "snapshot_download"))
def s_offline_mode():
    result = run_offline(
        f"""
        import json
        from huggingface_hub import hf_hub_download, snapshot_download
        print(json.dumps({{
            "snapshot": snapshot_download({MODEL_REPO!r}),
            "config": hf_hub_download({MODEL_REPO!r}, "config.json"),
            "weights": hf_hub_download({MODEL_REPO!r}, "weights.bin"),
            "nested": hf_hub_download({MODEL_REPO!r}, "sub/dir/notes.txt"),
        }}))
        """
    )
    paths = STATE["download_paths"]
    eq(result["snapshot"], STATE["snapshot_path"], "offline snapshot_download path")
    eq(result["config"], paths["config.json"], "offline hf_hub_download(config.json) path")
    eq(result["weights"], paths["weights.bin"], "offline hf_hub_download(weights.bin) path")
    eq(result["nested"], paths["sub/dir/notes.txt"], "offline hf_hub_download(sub/dir/notes.txt) path")


# ---------------------------------------------------------------------------------------------
# Scenarios: metadata
# ---------------------------------------------------------------------------------------------


@scenario("model_info", needs=("upload_folder",))
def s_model_info():
    info = api.model_info(MODEL_REPO)
    eq(info.id, MODEL_REPO, "model_info.id")
    check(is_commit(info.sha), f"model_info.sha must be 40-hex, got {info.sha!r}")
    siblings = {s.rfilename for s in info.siblings or []}
    eq(sorted(siblings), sorted(list(model_files()) + [".gitattributes"]), "model_info.siblings")
    check(info.card_data is not None, "model_info.card_data (cardData) missing")
    eq(info.card_data.get("license"), "apache-2.0", "card_data license")
    eq(info.pipeline_tag, "fill-mask", "model_info.pipeline_tag")
    eq(info.library_name, "transformers", "model_info.library_name")
    tags = set(info.tags or [])
    for tag in ("license:apache-2.0", "dataset:some/ds", "test"):
        check(tag in tags, f"tag {tag!r} missing from model_info.tags {sorted(tags)}")
    eq(info.private, False, "model_info.private")
    check(info.last_modified is not None, "model_info.last_modified missing (lastModified)")
    # repo_info / revision form give the same commit.
    eq(api.repo_info(MODEL_REPO, revision="main").sha, info.sha, "repo_info(revision=main).sha")
    check(api.repo_exists(MODEL_REPO), "repo_exists")


@scenario("model_info_files_metadata", needs=("upload_folder",))
def s_model_info_files_metadata():
    files = model_files()
    info = api.model_info(MODEL_REPO, files_metadata=True)
    by_name = {s.rfilename: s for s in info.siblings or []}
    for path, data in files.items():
        check(path in by_name, f"{path} missing from siblings")
        eq(by_name[path].size, len(data), f"siblings[{path}].size")
    weights = by_name["weights.bin"]
    check(weights.lfs is not None, "siblings[weights.bin].lfs missing (LFS file)")
    eq(weights.lfs.sha256, sha256_bytes(files["weights.bin"]), "siblings[weights.bin].lfs.sha256")
    eq(weights.lfs.size, LFS_SIZE, "siblings[weights.bin].lfs.size")
    config = by_name["config.json"]
    check(config.lfs is None, "config.json must not be LFS")
    eq(config.blob_id, git_blob_sha1(files["config.json"]), "siblings[config.json].blob_id (git blob sha1)")


@scenario("list_models", needs=("upload_folder",))
def s_list_models():
    found = [m.id for m in api.list_models(search=f"{PREFIX}-model")]
    check(MODEL_REPO in found, f"list_models(search={PREFIX}-model) does not list {MODEL_REPO}: {found}")
    found = [m.id for m in api.list_models(author=USER)]
    check(MODEL_REPO in found, f"list_models(author={USER}) does not list {MODEL_REPO}")
    check(all(m.startswith(USER + "/") for m in found), f"list_models(author={USER}) lists other authors: {found}")
    found = [m.id for m in api.list_models(search=PREFIX, filter="license:apache-2.0")]
    check(MODEL_REPO in found, f"list_models(filter=license:apache-2.0) does not list {MODEL_REPO}: {found}")
    found = [m.id for m in api.list_models(search=PREFIX, filter="license:mit")]
    check(MODEL_REPO not in found, "list_models(filter=license:mit) lists an apache-2.0 repo")


@scenario("list_repo_files", needs=("upload_folder",))
def s_list_repo_files():
    files = api.list_repo_files(MODEL_REPO)
    eq(sorted(files), sorted(list(model_files()) + [".gitattributes"]), "list_repo_files")


@scenario("list_repo_tree", needs=("upload_folder",))
def s_list_repo_tree():
    files = model_files()
    top = {e.path: type(e).__name__ for e in api.list_repo_tree(MODEL_REPO)}
    eq(top, {".gitattributes": "RepoFile", "README.md": "RepoFile", "config.json": "RepoFile",
             "weights.bin": "RepoFile", "sub": "RepoFolder"}, "list_repo_tree (root, non-recursive)")
    # Sub-path listing: the client sends the path with "/" encoded as %2F; entry paths are root-relative.
    nested = [e.path for e in api.list_repo_tree(MODEL_REPO, path_in_repo="sub/dir")]
    eq(nested, ["sub/dir/notes.txt"], "list_repo_tree(sub/dir)")
    recursive = {e.path: e for e in api.list_repo_tree(MODEL_REPO, recursive=True)}
    for folder in ("sub", "sub/dir"):
        check(folder in recursive and type(recursive[folder]).__name__ == "RepoFolder",
              f"recursive tree lacks directory entry {folder!r}")
    weights = recursive["weights.bin"]
    eq(weights.size, LFS_SIZE, "tree weights.bin size")
    check(weights.lfs is not None and weights.lfs.sha256 == sha256_bytes(files["weights.bin"]),
          "tree weights.bin lfs.oid")
    eq(recursive["config.json"].blob_id, git_blob_sha1(files["config.json"]), "tree config.json oid")
    # Missing folder: EntryNotFound (transformers relies on that for additional_chat_templates/).
    expect_raises(RemoteEntryNotFoundError, lambda: list(api.list_repo_tree(MODEL_REPO, path_in_repo="nope")),
                  "list_repo_tree(missing folder)", status=404)
    # paths-info: existing paths only, missing ones silently omitted.
    infos = {e.path: e for e in api.get_paths_info(MODEL_REPO, ["config.json", "weights.bin", "sub", "missing.txt"])}
    eq(sorted(infos), ["config.json", "sub", "weights.bin"], "get_paths_info paths")
    check(infos["weights.bin"].lfs is not None, "get_paths_info weights.bin lfs")
    check(api.file_exists(MODEL_REPO, "sub/dir/notes.txt"), "file_exists(sub/dir/notes.txt)")
    check(not api.file_exists(MODEL_REPO, "sub/dir/missing.txt"), "file_exists(missing) must be False")


@scenario("list_repo_commits", needs=("upload_folder",))
def s_list_repo_commits():
    commits = list(api.list_repo_commits(MODEL_REPO))
    check(len(commits) >= 2, f"expected the initial commit and the upload, got {len(commits)} commit(s)")
    eq(commits[0].commit_id, STATE["model_commit"], "newest commit first")
    check(all(is_commit(c.commit_id) for c in commits), "commit ids must be 40-hex")
    eq(commits[0].title, f"upload folder {RUN_ID}", "commit title")


# ---------------------------------------------------------------------------------------------
# Scenarios: branches, tags, concurrency control
# ---------------------------------------------------------------------------------------------


@scenario("branches_and_tags", needs=("upload_folder",))
def s_branches_and_tags():
    original = model_files()["config.json"]
    api.create_branch(MODEL_REPO, branch="dev")
    api.create_branch(MODEL_REPO, branch="dev", exist_ok=True)  # 409 swallowed
    api.create_tag(MODEL_REPO, tag="v1.0", tag_message="first release")
    expect_raises(HfHubHTTPError, lambda: api.create_tag(MODEL_REPO, tag="v1.0"), "create_tag twice", status=409)
    refs = api.list_repo_refs(MODEL_REPO)
    branches = {b.name: b.target_commit for b in refs.branches}
    tags = {t.name: t.target_commit for t in refs.tags}
    commit = STATE["model_commit"]
    eq(branches.get("main"), commit, "refs: main")
    eq(branches.get("dev"), commit, "refs: dev")
    eq(tags.get("v1.0"), commit, "refs: tag v1.0")
    # Commit to dev only; main and the tag must not move.
    changed = original.replace(b'"hidden_size": 32', b'"hidden_size": 64')
    dev_commit = api.upload_file(path_or_fileobj=changed, path_in_repo="config.json", repo_id=MODEL_REPO,
                                 revision="dev", commit_message="change config on dev").oid
    check(is_commit(dev_commit) and dev_commit != commit, "commit on dev must be a new 40-hex commit")
    check(read(hf_hub_download(MODEL_REPO, "config.json", revision="v1.0")) == original, "config.json at v1.0")
    check(read(hf_hub_download(MODEL_REPO, "config.json", revision="dev")) == changed, "config.json at dev")
    check(read(hf_hub_download(MODEL_REPO, "config.json", revision="refs/heads/dev")) == changed,
          "config.json at refs/heads/dev")
    check(read(hf_hub_download(MODEL_REPO, "config.json", revision="main")) == original, "config.json at main")
    eq(api.model_info(MODEL_REPO, revision="dev").sha, dev_commit, "model_info(revision=dev).sha")
    eq(api.model_info(MODEL_REPO).sha, commit, "model_info.sha (main unchanged)")


@scenario("parent_commit_412")
def s_parent_commit_412():
    api.create_repo(PARENT_REPO)
    first = api.upload_file(path_or_fileobj=b"one\n", path_in_repo="a.txt", repo_id=PARENT_REPO).oid
    # parent_commit equal to the head is accepted.
    second = api.create_commit(PARENT_REPO, operations=[CommitOperationAdd("b.txt", b"two\n")],
                               commit_message="b", parent_commit=first).oid
    check(is_commit(second) and second != first, "commit with parent_commit=head must succeed")
    # `first` is stale now: the server must refuse with 412 Precondition Failed.
    expect_raises(
        HfHubHTTPError,
        lambda: api.create_commit(PARENT_REPO, operations=[CommitOperationAdd("c.txt", b"three\n")],
                                  commit_message="c", parent_commit=first),
        "create_commit(parent_commit=<stale>)",
        status=412,
    )
    eq(sorted(api.list_repo_files(PARENT_REPO)), [".gitattributes", "a.txt", "b.txt"], "files after the 412")


@scenario("create_pr")
def s_create_pr():
    repo = repo_name("pr")
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"base\n", path_in_repo="base.txt", repo_id=repo)
    info = api.create_commit(repo, operations=[CommitOperationAdd("proposal.txt", b"proposal\n")],
                             commit_message="Propose a file", create_pr=True)
    check(info.pr_url is not None and info.pr_url.endswith("/discussions/1"), f"pr_url {info.pr_url!r}")
    eq(info.pr_revision, "refs/pr/1", "pr_revision")
    eq(info.pr_num, 1, "pr_num")
    # The PR ref has the file, main does not.
    eq(read(hf_hub_download(repo, "proposal.txt", revision="refs/pr/1", token=TOKEN)), b"proposal\n",
       "proposal.txt at refs/pr/1")
    eq(sorted(api.list_repo_files(repo)), [".gitattributes", "base.txt"], "files on main")
    refs = api.list_repo_refs(repo, include_pull_requests=True)
    eq([r.ref for r in refs.pull_requests], ["refs/pr/1"], "pull request refs")


@scenario("delete_operations")
def s_delete_operations():
    api.create_repo(DELETE_REPO)
    api.create_commit(DELETE_REPO, commit_message="files", operations=[
        CommitOperationAdd("keep.txt", b"keep\n"), CommitOperationAdd("drop.txt", b"drop\n"),
        CommitOperationAdd("logs/a.txt", b"a\n"), CommitOperationAdd("logs/deep/b.txt", b"b\n")])
    api.delete_file("drop.txt", DELETE_REPO)  # "deletedFile"
    api.delete_folder("logs", DELETE_REPO)  # "deletedFolder"
    eq(sorted(api.list_repo_files(DELETE_REPO)), [".gitattributes", "keep.txt"], "files after the deletions")
    # Deleting a missing file: 404 EntryNotFound.
    expect_raises(RemoteEntryNotFoundError, lambda: api.delete_file("drop.txt", DELETE_REPO),
                  "delete_file(missing)", status=404)
    api.delete_repo(DELETE_REPO)
    expect_raises(RepositoryNotFoundError, lambda: api.model_info(DELETE_REPO), "model_info after delete_repo")
    api.delete_repo(DELETE_REPO, missing_ok=True)  # 404 RepoNotFound swallowed


# ---------------------------------------------------------------------------------------------
# Scenarios: auth and errors
# ---------------------------------------------------------------------------------------------


@scenario("private_repo")
def s_private_repo():
    api.create_repo(PRIVATE_REPO, private=True)
    data = f"secret {RUN_ID}\n".encode()
    api.upload_file(path_or_fileobj=data, path_in_repo="secret.txt", repo_id=PRIVATE_REPO)
    # Anonymous attempts use their own cache dir so a cached copy cannot answer for the server.
    anon_cache = os.path.join(WORK, "cache-anonymous")
    expect_raises(RepositoryNotFoundError,
                  lambda: hf_hub_download(PRIVATE_REPO, "secret.txt", token=False, cache_dir=anon_cache),
                  "anonymous hf_hub_download(private)")
    expect_raises(RepositoryNotFoundError, lambda: api.model_info(PRIVATE_REPO, token=False),
                  "anonymous model_info(private)")
    check(not api.repo_exists(PRIVATE_REPO, token=False), "anonymous repo_exists(private) must be False")
    found = [m.id for m in api.list_models(search=f"{PREFIX}-private", token=False)]
    check(PRIVATE_REPO not in found, "anonymous list_models lists the private repo")
    # With the owner's tokens it works.
    check(read(hf_hub_download(PRIVATE_REPO, "secret.txt", token=TOKEN)) == data, "hf_hub_download(private, token)")
    info = api.model_info(PRIVATE_REPO)
    eq(info.private, True, "model_info(private).private")
    eq(api.model_info(PRIVATE_REPO, token=READ_TOKEN).sha, info.sha, "model_info(private, read token).sha")
    found = [m.id for m in api.list_models(search=f"{PREFIX}-private")]
    check(PRIVATE_REPO in found, "list_models with the owner's token does not list the private repo")


@scenario("read_token_cannot_write", needs=("create_repo",))
def s_read_token_cannot_write():
    before = api.model_info(MODEL_REPO).sha
    expect_raises(
        HfHubHTTPError,
        lambda: api.upload_file(path_or_fileobj=b"nope\n", path_in_repo="nope.txt", repo_id=MODEL_REPO,
                                token=READ_TOKEN),
        "upload_file with the read token",
        status=403,
    )
    expect_raises(HfHubHTTPError, lambda: api.create_repo(repo_name("readonly"), token=READ_TOKEN),
                  "create_repo with the read token", status=403)
    eq(api.model_info(MODEL_REPO).sha, before, "repo head after the refused upload")


@scenario("missing_file", needs=("upload_folder",))
def s_missing_file():
    commit = STATE["model_commit"]
    expect_raises(RemoteEntryNotFoundError, lambda: hf_hub_download(MODEL_REPO, "does-not-exist.txt"),
                  "hf_hub_download(missing file)", status=404, not_types=(LocalEntryNotFoundError,))
    # The 404 carried X-Repo-Commit, so the client recorded a .no_exist marker (spec §2.5).
    marker = os.path.join(cache_folder(MODEL_REPO), ".no_exist", commit, "does-not-exist.txt")
    check(os.path.exists(marker), f".no_exist marker not created ({marker}); X-Repo-Commit missing on the 404?")
    cached = try_to_load_from_cache(MODEL_REPO, "does-not-exist.txt", revision=commit)
    check(cached is huggingface_hub._CACHED_NO_EXIST, f"try_to_load_from_cache(missing) = {cached!r}")


@scenario("bad_revision", needs=("upload_folder",))
def s_bad_revision():
    expect_raises(RevisionNotFoundError, lambda: hf_hub_download(MODEL_REPO, "config.json", revision="no-such-branch"),
                  "hf_hub_download(revision=no-such-branch)", status=404)
    expect_raises(RevisionNotFoundError, lambda: api.model_info(MODEL_REPO, revision="no-such-branch"),
                  "model_info(revision=no-such-branch)", status=404)
    expect_raises(RevisionNotFoundError, lambda: hf_hub_download(MODEL_REPO, "config.json", revision="0" * 40),
                  "hf_hub_download(revision=<unknown commit>)", status=404)
    # Missing repo, authenticated: 404 RepoNotFound.
    expect_raises(RepositoryNotFoundError, lambda: api.model_info(repo_name("missing")), "model_info(missing repo)")
    expect_raises(RepositoryNotFoundError,
                  lambda: hf_hub_download(repo_name("missing"), "config.json",
                                          cache_dir=os.path.join(WORK, "cache-missing")),
                  "hf_hub_download(missing repo)")


# ---------------------------------------------------------------------------------------------
# Scenarios: transformers (config + tokenizer; no torch in the venvs)
# ---------------------------------------------------------------------------------------------

BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "brown", "fox", "##es", "jump", "##ed",
              "over", "lazy", "dog", "hello", "world", ".", ",", "!"]
BERT_TEXT = "The quick brown foxes jumped over the lazy dog, hello world!"


def _build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(BERT_VOCAB)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)


@scenario("transformers_auto")
def s_transformers_auto():
    import transformers
    from transformers import AutoConfig, AutoTokenizer, BertConfig

    folder = os.path.join(WORK, "tiny-bert")
    BertConfig(vocab_size=len(BERT_VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=37).save_pretrained(folder)
    local_tok = _build_tokenizer()
    local_tok.save_pretrained(folder)
    expected_ids = local_tok(BERT_TEXT)["input_ids"]
    check(1 not in expected_ids, f"test sentence should not need [UNK]: {expected_ids}")

    api.create_repo(BERT_REPO)
    api.upload_folder(folder_path=folder, repo_id=BERT_REPO, commit_message="tiny bert")

    config = AutoConfig.from_pretrained(BERT_REPO)
    eq(config.model_type, "bert", "config.model_type")
    eq((config.vocab_size, config.hidden_size, config.num_hidden_layers, config.num_attention_heads,
        config.intermediate_size), (len(BERT_VOCAB), 32, 1, 2, 37), "config values")
    tok = AutoTokenizer.from_pretrained(BERT_REPO)
    eq(tok(BERT_TEXT)["input_ids"], expected_ids, "input ids of the downloaded tokenizer")
    eq(tok.mask_token, "[MASK]", "mask_token")
    STATE["transformers_version"] = transformers.__version__
    STATE["bert_expected_ids"] = expected_ids


@scenario("transformers_offline", needs=("transformers_auto",))
def s_transformers_offline():
    result = run_offline(
        f"""
        import json
        from transformers import AutoConfig, AutoTokenizer
        config = AutoConfig.from_pretrained({BERT_REPO!r})
        tok = AutoTokenizer.from_pretrained({BERT_REPO!r})
        print(json.dumps({{"hidden_size": config.hidden_size, "ids": tok({BERT_TEXT!r})["input_ids"]}}))
        """
    )
    eq(result["hidden_size"], 32, "offline config.hidden_size")
    eq(result["ids"], STATE["bert_expected_ids"], "offline tokenizer ids")


# ---------------------------------------------------------------------------------------------
# Scenarios: datasets
# ---------------------------------------------------------------------------------------------

TRAIN_ROWS = [{"id": i, "text": f"train sentence {i}", "label": i % 2} for i in range(12)]
TEST_ROWS = [{"id": 100 + i, "text": f"test sentence {i}", "label": (i + 1) % 2} for i in range(5)]


def _rows_to_csv(rows) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _rows_to_parquet(rows, path: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _load_and_compare(repo_id: str, what: str, **kwargs) -> None:
    import datasets

    ds = datasets.load_dataset(repo_id, **kwargs)
    eq(sorted(ds.keys()), ["test", "train"], f"{what}: splits")
    eq(ds["train"].to_list(), TRAIN_ROWS, f"{what}: train rows")
    eq(ds["test"].to_list(), TEST_ROWS, f"{what}: test rows")


@scenario("datasets_parquet")
def s_datasets_parquet():
    folder = os.path.join(WORK, "ds-parquet")
    _rows_to_parquet(TRAIN_ROWS, os.path.join(folder, "data", "train-00000-of-00001.parquet"))
    _rows_to_parquet(TEST_ROWS, os.path.join(folder, "data", "test-00000-of-00001.parquet"))
    api.create_repo(DS_PARQUET_REPO, repo_type="dataset")
    api.upload_folder(folder_path=folder, repo_id=DS_PARQUET_REPO, repo_type="dataset")
    _load_and_compare(DS_PARQUET_REPO, "parquet repo")


@scenario("datasets_streaming", needs=("datasets_parquet",))
def s_datasets_streaming():
    import datasets

    # Streaming reads the files through HfFileSystem with HTTP Range requests.
    ds = datasets.load_dataset(DS_PARQUET_REPO, split="train", streaming=True)
    eq(list(ds), TRAIN_ROWS, "streamed train rows")


@scenario("datasets_csv")
def s_datasets_csv():
    folder = os.path.join(WORK, "ds-csv")
    write(os.path.join(folder, "train.csv"), _rows_to_csv(TRAIN_ROWS))
    write(os.path.join(folder, "test.csv"), _rows_to_csv(TEST_ROWS))
    api.create_repo(DS_CSV_REPO, repo_type="dataset")
    api.upload_folder(folder_path=folder, repo_id=DS_CSV_REPO, repo_type="dataset")
    _load_and_compare(DS_CSV_REPO, "csv repo")


DATASET_CARD_CONFIGS = """\
---
license: mit
configs:
- config_name: default
  data_files:
  - split: train
    path: "custom/a.csv"
  - split: test
    path: "custom/b.csv"
---

# Dataset with explicit data_files
"""


@scenario("datasets_configs")
def s_datasets_configs():
    folder = os.path.join(WORK, "ds-configs")
    write(os.path.join(folder, "README.md"), DATASET_CARD_CONFIGS)
    write(os.path.join(folder, "custom", "a.csv"), _rows_to_csv(TRAIN_ROWS))
    write(os.path.join(folder, "custom", "b.csv"), _rows_to_csv(TEST_ROWS))
    # A decoy that default split inference would pick up as "train" if the card were ignored.
    write(os.path.join(folder, "train.csv"), _rows_to_csv(TEST_ROWS))
    api.create_repo(DS_CONFIGS_REPO, repo_type="dataset")
    api.upload_folder(folder_path=folder, repo_id=DS_CONFIGS_REPO, repo_type="dataset")
    _load_and_compare(DS_CONFIGS_REPO, "configs repo")
    info = api.dataset_info(DS_CONFIGS_REPO)
    eq(info.card_data.get("license") if info.card_data else None, "mit", "dataset_info card_data license")


@scenario("datasets_push_to_hub")
def s_datasets_push_to_hub():
    import datasets

    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(TRAIN_ROWS),
                               "test": datasets.Dataset.from_list(TEST_ROWS)})
    dd.push_to_hub(DS_PUSH_REPO, token=TOKEN)
    _load_and_compare(DS_PUSH_REPO, "pushed repo", download_mode="force_redownload")


# ---------------------------------------------------------------------------------------------
# Scenario: the cache left behind must be clean for `hf cache ls` / scan-cache (spec §6.3)
# ---------------------------------------------------------------------------------------------


@scenario("scan_cache", needs=("snapshot_download",))
def s_scan_cache():
    from huggingface_hub import scan_cache_dir

    report = scan_cache_dir()
    eq([str(w) for w in report.warnings], [], "scan_cache_dir warnings (corrupted cache entries)")
    repos = {r.repo_id: r for r in report.repos}
    check(MODEL_REPO in repos, f"{MODEL_REPO} not found by scan_cache_dir")
    revisions = {r.commit_hash for r in repos[MODEL_REPO].revisions}
    check(STATE["model_commit"] in revisions, "scan_cache_dir does not show the uploaded commit")


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def main(argv: list) -> int:
    if "--list" in argv:
        for name, _fn, needs in SCENARIOS:
            print(name + (f"  (needs {', '.join(needs)})" if needs else ""))
        return 0
    known = {name: needs for name, _fn, needs in SCENARIOS}
    unknown = [name for name in argv if name not in known]
    if unknown:
        print(f"compat.py: unknown scenario(s) {unknown}; see --list", file=sys.stderr)
        return 2
    # Selected scenarios plus, transitively, the ones they need.
    selected = set(argv or known)
    pending = list(selected)
    while pending:
        for need in known[pending.pop()]:
            if need not in selected:
                selected.add(need)
                pending.append(need)

    versions = {"python": sys.version.split()[0], "huggingface_hub": HUB_VERSION}
    for module in ("transformers", "datasets", "tokenizers", "pyarrow"):
        try:
            versions[module] = __import__(module).__version__
        except Exception as err:  # noqa: BLE001 - reported, scenarios that need it will fail
            versions[module] = f"unavailable: {err}"
    print(f"hubcompat: endpoint {ENDPOINT}, user {USER}, repo prefix {PREFIX}, HF_HOME {HF_HOME}")
    print("hubcompat: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    from huggingface_hub.utils import _runtime

    if getattr(_runtime, "is_xet_available", lambda: False)():
        print("hubcompat: Xet is enabled although HF_HUB_DISABLE_XET=1; aborting", file=sys.stderr)
        return 2
    sys.stdout.flush()

    global WORK
    WORK = tempfile.mkdtemp(prefix=f"hubcompat-{TAG}-")
    signal.signal(signal.SIGALRM, _on_alarm)
    results: dict = {}  # name -> "pass" | "fail" | "skip"
    reasons: dict = {}
    started = time.monotonic()
    for name, fn, needs in SCENARIOS:
        if name not in selected:
            continue
        blocked = [n for n in needs if results.get(n) != "pass"]
        if blocked:
            results[name] = "skip"
            reasons[name] = f"prerequisite {', '.join(blocked)} did not pass"
            print(f"SKIP {name}: {reasons[name]}", flush=True)
            continue
        t0 = time.monotonic()
        signal.alarm(SCENARIO_TIMEOUT)
        try:
            fn()
        except BaseException as err:  # noqa: BLE001 - every failure is reported, the suite goes on
            signal.alarm(0)
            if isinstance(err, KeyboardInterrupt):
                raise
            results[name] = "fail"
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            reasons[name] = f"{type(err).__name__}: {first}"[:600]
            print(f"FAIL {name}: {reasons[name]}  ({time.monotonic() - t0:.1f} s)", flush=True)
            print(textwrap.indent(traceback.format_exc().rstrip(), "    "), flush=True)
        else:
            signal.alarm(0)
            results[name] = "pass"
            print(f"PASS {name}  ({time.monotonic() - t0:.1f} s)", flush=True)

    if os.environ.get("HUBCOMPAT_KEEP") != "1":
        shutil.rmtree(WORK, ignore_errors=True)
    summary = {
        "suite": "hubcompat",
        "tag": TAG,
        "prefix": PREFIX,
        "versions": versions,
        "passed": [n for n, r in results.items() if r == "pass"],
        "failed": {n: reasons[n] for n, r in results.items() if r == "fail"},
        "skipped": {n: reasons[n] for n, r in results.items() if r == "skip"},
        "seconds": round(time.monotonic() - started, 1),
    }
    print(f"hubcompat-{TAG}: {len(summary['passed'])} passed, {len(summary['failed'])} failed, "
          f"{len(summary['skipped'])} skipped")
    print(json.dumps(summary, sort_keys=True))
    return 0 if not summary["failed"] and not summary["skipped"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
