"""Embrace's hub client and Python's huggingface_hub on one cache directory.

Run by `run` with a venv's python, after compat.py. Environment: HF_ENDPOINT, HUBCOMPAT_USER,
HUBCOMPAT_TOKEN (write), HUBCOMPAT_TAG, EMBRACE_BIN, HUBCOMPAT_WORK (a scratch folder).

Scenarios (each prints PASS/FAIL, then one summary line `hubcompat-interop<tag>: N passed, ...`):
- python_to_embrace: Python uploads and downloads; `embrace download` with HF_HUB_OFFLINE=1 finds the
  same snapshot and files in Python's cache, without a network call.
- embrace_to_python: `embrace download` fills a fresh cache; Python's snapshot_download and
  hf_hub_download with local_files_only=True find every file, and scan_cache_dir reports no warnings.
- embrace_upload: `embrace upload` pushes a folder; Python downloads it back byte-identical.
- datasets_both_ways: `embrace datasets push` → `datasets.load_dataset`, and `push_to_hub` →
  `embrace datasets info|head hf://datasets/...`, with splits, rows and ClassLabel names kept.
"""

import hashlib
import json
import os
import random
import subprocess
import sys
import traceback

ENDPOINT = os.environ["HF_ENDPOINT"]
USER = os.environ["HUBCOMPAT_USER"]
TOKEN = os.environ["HUBCOMPAT_TOKEN"]
TAG = os.environ.get("HUBCOMPAT_TAG", "x")
EMBRACE = os.environ["EMBRACE_BIN"]
WORK = os.environ["HUBCOMPAT_WORK"]
RUN = "%06x" % random.randrange(1 << 24)

FILES = {
    "config.json": b'{"model_type": "bert", "hidden_size": 32}',
    "README.md": b"---\nlicense: mit\n---\n# Interop\n",
    "sub/dir/notes.txt": b"nested file\n",
    "weights.bin": random.Random(7).randbytes(12 * 1024 * 1024),  # above the LFS threshold
}


def write_folder(path):
    for name, content in FILES.items():
        full = os.path.join(path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(content)


def python(code, hf_home, offline=False, token=None):
    """Runs Python code in a subprocess with its own HF_HOME (huggingface_hub reads it at import)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_OFFLINE", "HF_TOKEN"))}
    env.update(HF_HOME=hf_home, HF_ENDPOINT=ENDPOINT, HF_HUB_DISABLE_XET="1")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    if token:
        env["HF_TOKEN"] = token
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError("python failed:\n" + out.stderr[-3000:])
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def embrace(args, hf_home, offline=False, token=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_OFFLINE", "HF_TOKEN"))}
    env.update(HF_HOME=hf_home, HF_ENDPOINT=ENDPOINT, HF_HUB_DISABLE_PROGRESS_BARS="1")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    if token:
        env["HF_TOKEN"] = token
    out = subprocess.run([EMBRACE, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"embrace {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()


def check_folder(path):
    for name, content in FILES.items():
        with open(os.path.join(path, name), "rb") as f:
            got = f.read()
        assert got == content, f"{name} differs in {path}"


def python_upload(repo, folder):
    python(
        "from huggingface_hub import HfApi; api = HfApi();"
        f"api.create_repo({repo!r}, exist_ok=True);"
        f"api.upload_folder(repo_id={repo!r}, folder_path={folder!r})",
        os.path.join(WORK, "uploader"),
        token=TOKEN,
    )


def python_to_embrace():
    repo = f"{USER}/interop-{TAG}-{RUN}-a"
    folder = os.path.join(WORK, "folder-a")
    write_folder(folder)
    python_upload(repo, folder)
    home = os.path.join(WORK, "home-python-first")
    snapshot = python(f"from huggingface_hub import snapshot_download; print(snapshot_download({repo!r}))", home)
    # Embrace, offline, finds Python's files.
    [path] = embrace(["download", repo], home, offline=True)
    assert path == snapshot, f"embrace {path} != python {snapshot}"
    check_folder(path)
    [weights] = embrace(["download", repo, "weights.bin"], home, offline=True)
    assert weights == os.path.join(snapshot, "weights.bin")
    [commit_path] = embrace(["download", repo, "config.json", "--revision", os.path.basename(snapshot)], home, offline=True)
    assert commit_path == os.path.join(snapshot, "config.json")


def embrace_to_python():
    repo = f"{USER}/interop-{TAG}-{RUN}-b"
    folder = os.path.join(WORK, "folder-b")
    write_folder(folder)
    python_upload(repo, folder)
    home = os.path.join(WORK, "home-embrace-first")
    [path] = embrace(["download", repo], home)
    check_folder(path)
    # Python, offline, finds embrace's files and sees a clean cache.
    code = f"""
import json, huggingface_hub as h
snap = h.snapshot_download({repo!r}, local_files_only=True)
one = h.hf_hub_download({repo!r}, "weights.bin", local_files_only=True)
info = h.scan_cache_dir()
repos = [r for r in info.repos if r.repo_id == {repo!r}]
print(json.dumps({{"snapshot": snap, "weights": one, "warnings": [str(w) for w in info.warnings],
                  "size": repos[0].size_on_disk if repos else -1, "files": repos[0].nb_files if repos else -1}}))
"""
    result = json.loads(python(code, home, offline=True))
    assert result["snapshot"] == path, result
    assert result["weights"] == os.path.join(path, "weights.bin"), result
    assert result["warnings"] == [], result["warnings"]
    # README, config, notes, weights and .gitattributes.
    assert result["files"] == len(FILES) + 1, result
    assert result["size"] >= sum(len(c) for c in FILES.values()), result


def embrace_upload():
    repo = f"{USER}/interop-{TAG}-{RUN}-c"
    folder = os.path.join(WORK, "folder-c")
    write_folder(folder)
    lines = embrace(["upload", repo, folder], os.path.join(WORK, "embrace-uploader"), token=TOKEN)
    commit = json.loads(lines[-1])["commit"]
    assert len(commit) == 40, lines
    home = os.path.join(WORK, "home-after-embrace-upload")
    snapshot = python(f"from huggingface_hub import snapshot_download; print(snapshot_download({repo!r}))", home)
    assert snapshot.endswith(commit), (snapshot, commit)
    check_folder(snapshot)
    lfs = python(
        "from huggingface_hub import HfApi;"
        f"i = HfApi().model_info({repo!r}, files_metadata=True);"
        "print([s.lfs.sha256 for s in i.siblings if s.rfilename == 'weights.bin'][0])",
        home,
    )
    assert lfs == hashlib.sha256(FILES["weights.bin"]).hexdigest()


def datasets_both_ways():
    # embrace pushes a CSV (ClassLabel from a text column), Python's datasets loads it.
    repo = f"{USER}/interop-{TAG}-{RUN}-ds"
    csv = os.path.join(WORK, "tweets.csv")
    rows = [(f"tweet number {i}", "pos" if i % 3 == 0 else "neg") for i in range(40)]
    with open(csv, "w") as f:
        f.write("text,label\n" + "".join(f"{t},{l}\n" for t, l in rows))
    folder = os.path.join(WORK, "tweets-dict")
    embrace(["datasets", "split", csv, folder, "--class-column", "label", "--test-size", "0.25"], WORK)
    lines = embrace(["datasets", "push", folder, repo], os.path.join(WORK, "embrace-ds"), token=TOKEN)
    pushed = json.loads(lines[-1])
    assert pushed["splits"] == {"train": 30, "test": 10}, pushed
    code = f"""
import json, datasets
d = datasets.load_dataset({repo!r})
print(json.dumps({{"splits": {{k: v.num_rows for k, v in d.items()}},
                  "names": d["train"].features["label"].names,
                  "texts": sorted(list(d["train"]["text"]) + list(d["test"]["text"]))}}))
"""
    got = json.loads(python(code, os.path.join(WORK, "py-ds")))
    assert got["splits"] == {"train": 30, "test": 10}, got
    assert got["names"] == ["neg", "pos"], got
    assert got["texts"] == sorted(t for t, _ in rows), got["texts"][:3]

    # Python pushes (push_to_hub), embrace reads it by repo id.
    repo2 = f"{USER}/interop-{TAG}-{RUN}-pyds"
    python(
        "import datasets as d;"
        "f = d.Features({'text': d.Value('string'), 'label': d.ClassLabel(names=['neg', 'pos'])});"
        "ds = d.Dataset.from_dict({'text': ['a', 'b', 'c'], 'label': [0, 1, 1]}, features=f);"
        f"d.DatasetDict({{'train': ds, 'test': ds.select([0])}}).push_to_hub({repo2!r})",
        os.path.join(WORK, "py-push"),
        token=TOKEN,
    )
    home = os.path.join(WORK, "embrace-read")
    info = json.loads("".join(embrace(["datasets", "info", f"hf://datasets/{repo2}"], home)))
    assert info["splits"]["train"]["num_rows"] == 3, info
    assert info["splits"]["test"]["num_rows"] == 1, info
    label = info["splits"]["train"]["features"]["label"]
    assert label["_type"] == "ClassLabel" and label["names"] == ["neg", "pos"], label
    head = [json.loads(l) for l in embrace(["datasets", "head", f"hf://datasets/{repo2}", "-n", "10"], home)]
    assert head == [{"text": "a", "label": 0}, {"text": "b", "label": 1}, {"text": "c", "label": 1}], head


def main():
    os.makedirs(WORK, exist_ok=True)
    passed, failed = [], []
    for scenario in (python_to_embrace, embrace_to_python, embrace_upload, datasets_both_ways):
        try:
            scenario()
            print(f"PASS {scenario.__name__}")
            passed.append(scenario.__name__)
        except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
            print(f"FAIL {scenario.__name__}: {e}")
            print("    " + traceback.format_exc().replace("\n", "\n    "))
            failed.append(scenario.__name__)
    print(f"hubcompat-interop{TAG}: {len(passed)} passed, {len(failed)} failed, 0 skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
