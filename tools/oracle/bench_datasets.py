#!/usr/bin/env python3
"""The Python side of `cargo bench -p embrace-datasets --bench pipeline`.

Two modes, each printing one JSON object on its last line:

    bench_datasets.py pipeline CSV TOKENIZER_DIR WORK_DIR
        Runs HuggingFace `datasets` through the benchmark's pipeline, with a fresh cache in
        WORK_DIR/cache (so nothing is loaded from an earlier run):
        load_dataset("csv") -> map(tokenizer, batched) -> filter(batched) -> shuffle(seed 42)
        -> train_test_split(0.1, seed 42) -> train.to_parquet. Prints
        {"stages": {name: seconds}, "rows": {name: n}, "peak_rss_kb": n}.

    bench_datasets.py open PATH
        Opens an Arrow cache file (`datasets.Dataset.from_file`, memory-mapped) or a
        `save_to_disk` folder (`datasets.load_from_disk`), then reads the row count and the
        first and last rows.
        Prints {"seconds": s, "rows": n, "peak_rss_kb": n}.

Both sides use the defaults a user gets: `datasets` writes its Arrow cache files and
memory-maps them; the tokenizer is transformers' fast tokenizer (Rust `tokenizers`, parallel).
"""

import json
import resource
import sys
import time

# The pipeline's settings; the Rust side uses the same values.
MAX_LENGTH = 128
MIN_TOKENS = 24
SEED = 42
TEST_SIZE = 0.1


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def pipeline(csv_path: str, tokenizer_dir: str, work_dir: str) -> dict:
    import datasets
    from transformers import AutoTokenizer

    datasets.disable_progress_bars()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    stages, rows = {}, {}

    def timed(name, f):
        start = time.perf_counter()
        out = f()
        stages[name] = time.perf_counter() - start
        return out

    ds = timed(
        "load",
        lambda: datasets.load_dataset(
            "csv", data_files=csv_path, split="train", cache_dir=f"{work_dir}/cache"
        ),
    )
    rows["load"] = len(ds)
    ds = timed(
        "map (tokenize)",
        lambda: ds.map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=MAX_LENGTH),
            batched=True,
        ),
    )
    rows["map (tokenize)"] = len(ds)
    ds = timed(
        "filter",
        lambda: ds.filter(
            lambda b: [len(ids) >= MIN_TOKENS for ids in b["input_ids"]], batched=True
        ),
    )
    rows["filter"] = len(ds)
    ds = timed("shuffle", lambda: ds.shuffle(seed=SEED))
    rows["shuffle"] = len(ds)
    split = timed("train_test_split", lambda: ds.train_test_split(test_size=TEST_SIZE, seed=SEED))
    rows["train_test_split"] = len(split["train"])
    timed("to_parquet", lambda: split["train"].to_parquet(f"{work_dir}/train.parquet"))
    rows["to_parquet"] = len(split["train"])
    return {"stages": stages, "rows": rows, "peak_rss_kb": peak_rss_kb()}


def open_saved(path: str) -> dict:
    import datasets

    start = time.perf_counter()
    ds = datasets.Dataset.from_file(path) if path.endswith(".arrow") else datasets.load_from_disk(path)
    n = len(ds)
    first, last = ds[0], ds[n - 1]
    seconds = time.perf_counter() - start
    assert first and last
    return {"seconds": seconds, "rows": n, "peak_rss_kb": peak_rss_kb()}


def main() -> None:
    mode = sys.argv[1]
    if mode == "pipeline":
        result = pipeline(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "open":
        result = open_saved(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
