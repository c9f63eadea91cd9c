#!/usr/bin/env python3
"""llama.cpp's tokenizer test vectors, matched to Embrace's golden tokenizers, under
tests/golden/tokenizers/llamacpp/.

llama.cpp ships vocab-only GGUF files (models/ggml-vocab-<name>.gguf) with test inputs (.inp: texts,
each followed by the line __ggml_vocab_test__) and expected ids (.out: one line per input, ids separated
by spaces), which llama.cpp's convert_hf_to_gguf_update.py wrote from the HF tokenizer with
encode(text, add_special_tokens=False); its C++ test (tests/test-tokenizer-0.cpp) tokenizes with
add_special=false, parse_special=false. Asset llama-cpp-vocab (sdist llama-cpp-python).

For every golden tokenizer of tests/golden/tokenizers/<name>/ (real ones, not synth-*), this script
encodes every .inp text with Python tokenizers (the tokenizer file as gen_tokenizers.py loads it, with
truncation and padding turned off, add_special_tokens=False) and compares with every .out. Where a
golden tokenizer reproduces a .out on ALL its inputs, it writes

  <golden-name>.jsonl   {"text", "input_ids"} per input, ids from llama.cpp's .out, in .inp order

and index.json: which GGUF vocab(s) each file comes from, how to compare, the agreement matrix (every
GGUF vocab with test vectors against every golden tokenizer), and, for every GGUF, its tokenizer
metadata and the golden tokenizer whose id -> token table it shares most (read with a small GGUF
reader, no gguf package needed).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_tokenizers as G  # noqa: E402

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

OUT_SUB = "llamacpp"
SEP = "\n__ggml_vocab_test__\n"

# ---------------------------------------------------------------------------------------------------
# GGUF (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic, version, tensor count, kv
# count, then key/value pairs; only the key/value part is read.

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_gguf_kv(path: Path) -> dict:
    data = path.read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        (v,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return v

    def string():
        nonlocal pos
        n = take("<Q")
        s = data[pos:pos + n].decode("utf-8", errors="surrogateescape")
        pos += n
        return s

    def value(t):
        if t in _SCALAR:
            return take(_SCALAR[t])
        if t == 8:
            return string()
        if t == 9:
            item = take("<I")
            return [value(item) for _ in range(take("<Q"))]
        raise ValueError(f"{path}: unknown GGUF value type {t}")

    if data[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    pos = 4
    take("<I")  # version
    take("<Q")  # tensor count
    kv = {}
    for _ in range(take("<Q")):
        key = string()
        kv[key] = value(take("<I"))
    return kv


# ---------------------------------------------------------------------------------------------------


def wordpiece_as_gguf(token: str | None) -> str | None:
    """llama.cpp's convert script stores BERT WordPiece tokens without '##' for continuations and
    with a leading U+2581 for word starts; bracketed specials stay."""
    if token is None or (token.startswith("[") and token.endswith("]")):
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token


def golden_tokenizers(out: Path, assets: Path) -> dict[str, tuple[Tokenizer, str]]:
    toks = {}
    for meta_path in sorted(out.glob("*/meta.json")):
        name = meta_path.parent.name
        if name.startswith("synth-"):
            continue
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        committed = meta_path.parent / "tokenizer.json"
        path = committed if committed.is_file() else assets / meta["source"]
        tok = Tokenizer.from_file(str(path))
        tok.no_truncation()
        tok.no_padding()
        toks[name] = (tok, str(path.relative_to(G.REPO)) if committed.is_file() else meta["source"])
    return toks


def read_vectors(inp: Path) -> tuple[list[str], list[list[int]]]:
    texts = inp.read_text(encoding="utf-8").split(SEP)
    if texts and texts[-1] == "":
        texts.pop()
    outs = inp.with_suffix(".out").read_text(encoding="utf-8").split("\n")
    if outs and outs[-1] == "":
        outs.pop()
    if len(outs) != len(texts):
        raise SystemExit(f"gen_tokenizer_llamacpp: {inp}: {len(texts)} inputs but {len(outs)} output lines")
    return texts, [[int(x) for x in line.split()] for line in outs]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=Path,
                    default=Path(os.environ.get("EMBRACE_ASSETS", Path.home() / ".cache" / "embrace" / "assets")))
    ap.add_argument("--out", type=Path, default=G.DEFAULT_OUT)
    args = ap.parse_args()
    vdir = args.assets / "llama-cpp-vocab"
    if not vdir.is_dir():
        print(f"gen_tokenizer_llamacpp: {vdir} not found; run scripts/fetch-assets", file=sys.stderr)
        return 1
    goldens = golden_tokenizers(args.out, args.assets)

    # 1. agreement matrix: every GGUF vocab with test vectors x every golden tokenizer
    matrix = {}
    vectors = {}
    for inp in sorted(vdir.glob("ggml-vocab-*.gguf.inp")):
        vocab = inp.name[len("ggml-vocab-"):-len(".gguf.inp")]
        texts, ids = read_vectors(inp)
        vectors[vocab] = (inp, texts, ids)
        row = {}
        for name, (tok, _) in goldens.items():
            got = [tok.encode(t, add_special_tokens=False).ids for t in texts]
            row[name] = {"agree": sum(g == e for g, e in zip(got, ids)), "of": len(texts),
                         "differ": [t for t, g, e in zip(texts, got, ids) if g != e]}
        matrix[vocab] = row

    # 2. GGUF metadata and the golden whose id -> token table matches most
    ggufs = {}
    for path in sorted(vdir.glob("ggml-vocab-*.gguf")):
        vocab = path.name[len("ggml-vocab-"):-len(".gguf")]
        kv = read_gguf_kv(path)
        tokens = kv.get("tokenizer.ggml.tokens", [])
        bert = kv.get("tokenizer.ggml.model") == "bert"
        best = None
        for name, (tok, _) in goldens.items():
            form = wordpiece_as_gguf if bert else (lambda t: t)
            same = sum(1 for i, s in enumerate(tokens) if form(tok.id_to_token(i)) == s)
            if best is None or same > best[0]:
                best = (same, name, tok.get_vocab_size(with_added_tokens=True))
        ggufs[vocab] = {
            "file": f"llama-cpp-vocab/{path.name}", "sha256": G.sha256_file(path),
            "general.name": kv.get("general.name"), "tokenizer.ggml.model": kv.get("tokenizer.ggml.model"),
            "tokenizer.ggml.pre": kv.get("tokenizer.ggml.pre"), "n_tokens": len(tokens),
            "test_vectors": vocab in vectors,
            "most_same_token_strings": {"golden": best[1], "same_id_and_string": best[0],
                                        "golden_vocab_size": best[2]} if best and best[0] > 1000 else None,
            **({"token_form": "WordPiece tokens as llama.cpp stores them: '##x' -> 'x', other 'x' -> '\u2581x', "
                              "'[...]' unchanged (compared in that form)"} if bert else {}),
        }

    # 3. files for the (golden, vocab) pairs that agree on every input
    files = {}
    total = 0
    outdir = args.out / OUT_SUB
    outdir.mkdir(parents=True, exist_ok=True)
    for p in outdir.glob("*.jsonl"):
        p.unlink()
    for name, (tok, source) in goldens.items():
        agreeing = [v for v in sorted(matrix) if matrix[v][name]["agree"] == matrix[v][name]["of"]]
        if not agreeing:
            continue
        records = {v: [{"text": t, "input_ids": i} for t, i in zip(vectors[v][1], vectors[v][2])] for v in agreeing}
        first = records[agreeing[0]]
        if all(records[v] == first for v in agreeing):
            groups = {f"{name}.jsonl": agreeing}
        else:
            groups = {f"{name}.{v}.jsonl": [v] for v in agreeing}
        for fname, vocabs in groups.items():
            total += G.write_jsonl(outdir / fname, records[vocabs[0]])
            files[fname] = {
                "golden_tokenizer": name,
                "tokenizer_file": source,
                "ggml_vocabs": vocabs,
                "inp": [{"path": f"llama-cpp-vocab/{vectors[v][0].name}", "sha256": G.sha256_file(vectors[v][0])}
                        for v in vocabs],
                "out": [{"path": f"llama-cpp-vocab/{vectors[v][0].with_suffix('.out').name}",
                         "sha256": G.sha256_file(vectors[v][0].with_suffix(".out"))} for v in vocabs],
                "records": len(records[vocabs[0]]),
            }

    index = {
        "what": ("llama.cpp tokenizer test vectors (models/ggml-vocab-*.gguf.inp/.out of llama.cpp as vendored by "
                 "llama-cpp-python 0.3.36) for the golden tokenizers that reproduce them on every input"),
        "compare": ("load the golden tokenizer file (tokenizer_file; a path under tests/ is in the repository, "
                    "otherwise it is relative to EMBRACE_ASSETS), turn truncation and padding off (all-MiniLM's "
                    "tokenizer.json truncates and pads to 128), encode(text, add_special_tokens=False); the ids "
                    "must equal input_ids. llama.cpp wrote the .out files (convert_hf_to_gguf_update.py) with the HF "
                    "tokenizer's encode(text, add_special_tokens=False); its C++ test (tests/test-tokenizer-0.cpp) "
                    "tokenizes with add_special=false, parse_special=false."),
        "tokenizers_version": tokenizers.__version__,
        "files": files,
        "agreement": {v: {n: {"agree": r["agree"], "of": r["of"]} for n, r in row.items() if r["agree"] > 1}
                      for v, row in matrix.items()},
        "disagreements": {
            v: {n: {"agree": r["agree"], "of": r["of"], "differing_inputs": r["differ"]}
                for n, r in row.items() if r["agree"] != r["of"] and r["agree"] >= r["of"] // 2}
            for v, row in matrix.items()
            if any(r["agree"] != r["of"] and r["agree"] >= r["of"] // 2 for r in row.values())
        },
        "gguf": ggufs,
    }
    total += G.write_json(outdir / "index.json", index)

    print(f"tokenizers {tokenizers.__version__}; llama.cpp vocab x golden tokenizer (inputs agreeing):")
    for v, row in matrix.items():
        best = sorted(((r["agree"], n) for n, r in row.items()), reverse=True)[:2]
        print(f"  {v:<16} {matrix[v][best[0][1]]['of']:>3} inputs  " + ", ".join(f"{n} {a}" for a, n in best))
    for fname, info in sorted(files.items()):
        print(f"  wrote {fname:<22} from {', '.join(info['ggml_vocabs'])}")
    print(f"  total {total} bytes under {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
