#!/usr/bin/env python3
"""Dataset golden files for Embrace, produced with HuggingFace `datasets`.

Writes, under tests/golden/datasets/ (or --out):

  saved/            Dataset.save_to_disk of a small table with every feature kind Embrace reads:
                    string, ClassLabel, float32, List(int32), int64, bool, a nested dict, nulls
  saved.rows.json   the rows of that dataset as JSON (dataset.to_list()), and its features
  dict/             DatasetDict.save_to_disk of train_test_split(test_size=2, seed=0) of it
  table.parquet     Dataset.to_parquet of the same table (with the huggingface features metadata)

Also usable as a checker for Embrace's output (`--check DIR EXPECTED.json`): loads DIR with
`datasets.load_from_disk` and compares rows and features with EXPECTED.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def table():
    from datasets import ClassLabel, Dataset, Features, List, Value

    features = Features(
        {
            "text": Value("string"),
            "label": ClassLabel(names=["negative", "neutral", "positive"]),
            "score": Value("float32"),
            "ids": List(Value("int32")),
            "n": Value("int64"),
            "flag": Value("bool"),
            "meta": {"source": Value("string"), "year": Value("int32")},
        }
    )
    data = {
        "text": ["I love it", "meh", None, "terrible service", "café ☕ ok"],
        "label": [2, 1, 1, 0, 1],
        "score": [0.5, 1.25, -2.0, 3.75, 0.0],
        "ids": [[1, 2, 3], [], [7], [4, 5], [6]],
        "n": [10, 20, 30, 40, 50],
        "flag": [True, False, True, False, None],
        "meta": [
            {"source": "web", "year": 2020},
            {"source": "app", "year": 2021},
            {"source": None, "year": 2022},
            {"source": "web", "year": None},
            {"source": "app", "year": 2024},
        ],
    }
    return Dataset.from_dict(data, features=features)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "tests/golden/datasets"))
    parser.add_argument("--check", nargs=2, metavar=("DIR", "EXPECTED"))
    args = parser.parse_args()
    import datasets

    if args.check:
        loaded = datasets.load_from_disk(args.check[0])
        expected = json.load(open(args.check[1]))
        rows = loaded.to_list()
        features = loaded.features.to_dict()
        ok = rows == expected["rows"] and features == expected["features"]
        print(json.dumps({"ok": ok, "rows": len(rows), "features": features}, ensure_ascii=False))
        sys.exit(0 if ok else 1)

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    ds = table()
    ds.save_to_disk(str(out / "saved"))
    ds.train_test_split(test_size=2, seed=0).save_to_disk(str(out / "dict"))
    ds.to_parquet(str(out / "table.parquet"))
    expected = {"rows": ds.to_list(), "features": ds.features.to_dict(), "datasets": datasets.__version__}
    (out / "saved.rows.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
