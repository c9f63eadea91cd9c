#!/usr/bin/env python3
"""Synthetic tokenizers that cover the tokenizer.json component variants no real tokenizer file uses.

Writes, under tests/golden/tokenizers/ (or --out), one directory per synthetic tokenizer:

  synth-<name>/tokenizer.json   the tokenizer, built here with Python `tokenizers` (committed: the Rust
                                test loads it instead of an asset)
  synth-<name>/meta.json        what it is built from, the component variants it covers ("components"),
                                the type tree ("component_tree"), record counts
  synth-<name>/<corpus>.jsonl   golden records, same keys as gen_tokenizers.py writes (see there)

Every tokenizer is built from real vocabularies in the offline assets (EMBRACE_ASSETS) so that the
outputs are meaningful: subsets of BERT uncased (all-MiniLM), GPT-2 (encoder.json/vocab.bpe), Mistral
(sentencepiece BPE with byte fallback) and XLM-R (Unigram), or models trained here with `tokenizers`'
own trainers on botchan.txt (fixed settings; each training runs twice and must give the same file).

Inputs: a fixed-seed subset of the corpora in tests/golden/tokenizers/inputs/ (written by
gen_tokenizers.py; run that first): per tokenizer 8 texts of at most 500 characters from each of
prose, multilingual, llamacpp, unicode, adversarial, seeded by the tokenizer name; `probes.jsonl` holds
short hand-written texts shared by all synthetic tokenizers plus texts aimed at that tokenizer's
components (added tokens in various positions, punctuation runs, digits, ...); `pairs.jsonl` takes 4
of the pairs of at most 250 characters (text + pair; 130-200 for the character-level ones), each with the 4 configurations of
gen_tokenizers.PAIR_CONFIGS (16 records; longer pairs make the recursive overflowing lists huge).

Where Python tokenizers raises (or panics) on an input, the record holds `error`/`error_kind` instead
of the encoding keys, as in gen_tokenizers.py.
"""

from __future__ import annotations

import os

# Training uses rayon; a single thread keeps every run identical.
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("RUST_BACKTRACE", "0")

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_tokenizers as G  # noqa: E402  (shared record format, configs and output helpers)

import tokenizers  # noqa: E402
from tokenizers import (  # noqa: E402
    AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers)

SEED = G.SEED
PER_CORPUS = 8
MAX_INPUT_CHARS = 500
N_PAIRS = 4
MAX_PAIR_CHARS = 250  # text + pair: overflowing encodings (recursive) grow fast with the length
# character-level tokenizers: shorter pairs
PAIR_CHARS = {"synth-ctc-cleanup": 130, "synth-ctc-nocleanup": 130, "synth-unigram-bytefallback": 200}
CORPORA = ["prose", "multilingual", "llamacpp", "unicode", "adversarial"]

REPO = G.REPO
DEFAULT_OUT = G.DEFAULT_OUT

# Short texts given to every synthetic tokenizer (probes.jsonl), before the tokenizer's own ones.
COMMON_PROBES = [
    "",
    "Hello, World! It's 2024-06-11: 3.14 & 1,000,000 items.",
    "  leading and trailing spaces  ",
    "double  space and   triple",
    "café naïve Ångström façade résumé ÉCOLE",
    "e\u0301 vs \u00e9, \ufb01 ligature, \u2460 \u00b2 \uff48\uff45\uff4c\uff4c\uff4f",
    "don't stop—it's well-known (really) \"quoted\" [brackets] {braces}...",
    "日本語のテキストと中文字符和한국어",
    "tab\there\nnew line\r\nCRLF",
    "emoji \U0001f44d\U0001f3fd and \U0001f1ef\U0001f1f5 flag",
    "UPPER lower MiXeD CamelCase",
    "a-b_c.d,e;f:g!h?i",
    "1234567890 12 345 6789 ٣٤٥",
    "The quick brown fox jumps over the lazy dog.",
    "<s> </s> <unk> <pad> <mask> [CLS] [SEP] [PAD] [MASK] [UNK] <|endoftext|>",
]


# ---------------------------------------------------------------------------------------------------
# JSON layout of the committed tokenizer.json: indented, but lists of scalars (merges, Unigram
# entries, template ids) on one line, so that the big tables take one line per entry.


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def format_json(obj, indent: int = 0) -> str:
    pad = "  " * (indent + 1)
    end = "  " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {format_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(obj, list):
        if not obj:
            return "[]"
        if all(_is_scalar(v) for v in obj):
            return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))
        return "[\n" + ",\n".join(pad + format_json(v, indent + 1) for v in obj) + "\n" + end + "]"
    return json.dumps(obj, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------------
# vocabularies from the assets


class Ctx:
    def __init__(self, assets: Path):
        self.assets = assets
        self.used: dict[str, str] = {}  # asset-relative path -> sha256
        self._cache: dict[str, object] = {}

    def read_json(self, rel: str, repo_file: bool = False):
        if rel not in self._cache:
            path = (REPO / rel) if repo_file else (self.assets / rel)
            self._cache[rel] = json.loads(path.read_text(encoding="utf-8"))
            self._cache[rel + "#sha"] = G.sha256_file(path)
        self.used[rel] = self._cache[rel + "#sha"]
        return self._cache[rel]

    def botchan(self) -> list[str]:
        rel = "sentencepiece-test/botchan.txt"
        path = self.assets / rel
        self.used[rel] = G.sha256_file(path)
        lines = path.read_text(encoding="utf-8").split("\n")
        return [l.lstrip("\ufeff").rstrip("\r") for l in lines if l.strip()]


BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def bert_vocab(ctx: Ctx, n_words: int) -> dict[str, int]:
    """all-MiniLM's BERT uncased WordPiece vocab without the [unusedN] slots: the specials, every
    single character and '##' + single character, and the first n_words other entries (BERT orders them
    by frequency); renumbered 0.. in the original order."""
    src = ctx.read_json("all-minilm-l6-v2/tokenizer.json")["model"]["vocab"]
    ordered = sorted(src.items(), key=lambda kv: kv[1])
    keep = []
    words = 0
    for tok, _ in ordered:
        if tok.startswith("[unused"):
            continue
        if tok in BERT_SPECIALS or len(tok) == 1 or (tok.startswith("##") and len(tok) == 3):
            keep.append(tok)
        elif words < n_words:
            keep.append(tok)
            words += 1
    return {t: i for i, t in enumerate(keep)}


def gpt2_vocab(ctx: Ctx, n_merges: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """GPT-2's byte-level BPE cut to its first n_merges merges: the 256 byte symbols and the token of
    every kept merge (GPT-2 ids are 256 + merge rank, so the ids stay GPT-2's)."""
    src = ctx.read_json("tests/golden/tokenizers/gpt2/tokenizer.json", repo_file=True)["model"]
    vocab = src["vocab"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in src["merges"][:n_merges]]
    out = {t: i for t, i in vocab.items() if i < 256 + n_merges}
    assert len(out) == 256 + n_merges
    assert all(out[a + b] == 256 + r for r, (a, b) in enumerate(merges))
    return out, merges


def mistral_vocab(ctx: Ctx, n_vocab: int, drop_bytes: range, max_char: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Mistral's sentencepiece BPE (byte fallback, <0xXX> tokens) cut to its first n_vocab entries
    plus its single-character pieces below U+max_char (sentencepiece puts them last), without the
    byte tokens in drop_bytes (so that byte fallback can fail and unk shows up); renumbered 0.. in
    the original order; the merges whose parts and result are kept, in order."""
    src = ctx.read_json("tokenizer-mistral/tokenizer.json")["model"]
    dropped = {"<0x%02X>" % b for b in drop_bytes}
    ordered = [t for t, i in sorted(src["vocab"].items(), key=lambda kv: kv[1])
               if (i < n_vocab or (len(t) == 1 and ord(t) < max_char)) and t not in dropped]
    vocab = {t: i for i, t in enumerate(ordered)}
    merges = []
    for m in src["merges"]:
        a, b = tuple(m) if isinstance(m, list) else tuple(m.split(" "))
        if a in vocab and b in vocab and a + b in vocab:
            merges.append((a, b))
    return vocab, merges


def xlmr_vocab(ctx: Ctx, n_top: int, char_pool: int) -> list[tuple[str, float]]:
    """XLM-R's Unigram pieces: the 4 specials, the n_top best-scored pieces, and every single-character
    piece among the char_pool best-scored, in the original order (unk id stays 3)."""
    src = ctx.read_json("tokenizer-xlm-roberta/tokenizer.json")["model"]["vocab"]
    assert [p for p, _ in src[:4]] == ["<s>", "<pad>", "</s>", "<unk>"]
    ranked = sorted(range(4, len(src)), key=lambda i: (-src[i][1], i))
    top = set(ranked[:n_top])
    chars = {i for i in ranked[:char_pool] if len(src[i][0]) == 1 or (len(src[i][0]) == 2 and src[i][0][0] == "\u2581")}
    keep = list(range(4)) + sorted(top | chars)
    return [(src[i][0], src[i][1]) for i in keep]


def train(make, trainer_factory, lines: list[str]) -> Tokenizer:
    """Trains twice from scratch; the two results must be identical."""
    out = []
    for _ in range(2):
        tok = make()
        tok.train_from_iterator(lines, trainer=trainer_factory())
        out.append(tok)
    assert out[0].to_str() == out[1].to_str(), "training is not deterministic"
    return out[0]


def train_affixed_bpe(tok: Tokenizer, lines: list[str], *, vocab_size: int, min_frequency: int,
                      specials: list[str], prefix: str | None, suffix: str | None):
    """BPE vocabulary and merges with continuing_subword_prefix / end_of_word_suffix, trained by
    BpeTrainer, deterministically.

    BpeTrainer(continuing_subword_prefix=..., end_of_word_suffix=...) of tokenizers 0.23.3 is not
    deterministic: the ids of its affixed initial symbols ('##a', 'a</w>') follow hash-map iteration
    order, and merge ties are then broken differently from run to run (different merges, different
    vocabularies). The plain trainer (no affixes) is deterministic. So every character of every word
    (from tok's own normalizer and pre-tokenizer) is mapped to a private-use symbol that encodes the
    character and its position class (not at the word start when `prefix`, at the word end when
    `suffix`), the plain BpeTrainer runs on those words, and its tokens are mapped back: '##' when the
    first symbol is not at a word start, '</w>' when the last one ends a word. Same algorithm and
    counts as the affixed trainer, fixed tie-breaking."""
    words: list[list[str]] = []
    for line in lines:
        text = tok.normalizer.normalize_str(line) if tok.normalizer is not None else line
        words.append([w for w, _ in tok.pre_tokenizer.pre_tokenize_str(text)])
    keys = set()
    for ws in words:
        for w in ws:
            for i, ch in enumerate(w):
                keys.add((ch, bool(prefix) and i > 0, bool(suffix) and i == len(w) - 1))
    keys = sorted(keys)
    assert len(keys) < 0xFFFE
    code = {k: chr(0xF0000 + i) for i, k in enumerate(keys)}
    back = {c: k for k, c in code.items()}

    def encode(w):
        return "".join(code[(ch, bool(prefix) and i > 0, bool(suffix) and i == len(w) - 1)] for i, ch in enumerate(w))

    mapped = [" ".join(encode(w) for w in ws) for ws in words]

    def decode(t):
        ks = [back[c] for c in t]
        return (prefix if ks[0][1] else "") + "".join(k[0] for k in ks) + (suffix if ks[-1][2] else "")

    def make():
        plain = Tokenizer(models.BPE())
        plain.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        return plain

    plain = train(make, lambda: trainers.BpeTrainer(vocab_size=vocab_size - len(specials), min_frequency=min_frequency,
                                                    show_progress=False, special_tokens=[]), mapped)
    m = model_json(plain)
    ordered = [t for t, _ in sorted(m["vocab"].items(), key=lambda kv: kv[1])]
    names = specials + [decode(t) for t in ordered]
    assert len(set(names)) == len(names), "affixed tokens collide"
    vocab = {t: i for i, t in enumerate(names)}
    merges = []
    for x in m["merges"]:
        a, b = tuple(x) if isinstance(x, list) else tuple(x.split(" "))
        merges.append((decode(a), decode(b)))
    return vocab, merges


def model_json(tok: Tokenizer) -> dict:
    return json.loads(tok.to_str())["model"]


def added(content, special=False, **kw) -> AddedToken:
    """AddedToken with every flag explicit (tokenizers' defaults differ between special and not)."""
    flags = {"single_word": False, "lstrip": False, "rstrip": False, "normalized": not special}
    flags.update(kw)
    return AddedToken(content, special=special, **flags)


def bert_template(cls="[CLS]", sep="[SEP]"):
    return lambda tok: processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))])


# ---------------------------------------------------------------------------------------------------
# the synthetic tokenizers: each builder returns the Tokenizer; SPECS holds pad token, covered
# component variants and extra probe texts.


def b_wordpiece_cased(ctx):
    lines = ctx.botchan()

    # WordPieceTrainer trains a BPE with continuing_subword_prefix='##' and keeps its vocabulary; its
    # result differs from run to run (see train_affixed_bpe), so train that BPE deterministically.
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=True, lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    vocab, _ = train_affixed_bpe(tok, lines, vocab_size=2500, min_frequency=2, specials=BERT_SPECIALS,
                                 prefix="##", suffix=None)
    tok.model = models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=8, continuing_subword_prefix="##")
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]")))
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.add_special_tokens([added(t, special=True, normalized=False) for t in BERT_SPECIALS[:4]])
    tok.add_special_tokens([added("[MASK]", special=True, normalized=False, lstrip=True)])
    return tok


def b_wordpiece_multi_id(ctx):
    tok = Tokenizer(models.WordPiece(bert_vocab(ctx, 3000), unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                                strip_accents=False, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation(behavior="contiguous"),
                                                 pre_tokenizers.Digits(individual_digits=False)])
    cls, sep, mask = (tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[MASK]"))
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS2] $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEPSEP]:1 $B:2 [SEP]:3",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep),
                        {"id": "[BOS2]", "ids": [cls, mask], "tokens": ["[CLS]", "[MASK]"]},
                        {"id": "[SEPSEP]", "ids": [sep, sep], "tokens": ["[SEP]", "[SEP]"]}])
    tok.decoder = decoders.Sequence([decoders.WordPiece(prefix="##", cleanup=True), decoders.Strip(content=" ", left=0, right=1)])
    tok.add_special_tokens([added(t, special=True, normalized=False) for t in BERT_SPECIALS])
    return tok


def b_wordpiece_fixedlength(ctx):
    tok = Tokenizer(models.WordPiece(bert_vocab(ctx, 3000), unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation(behavior="merged_with_next"),
                                                 pre_tokenizers.FixedLength(length=5)])
    tok.post_processor = bert_template()(tok)
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.add_special_tokens([added(t, special=True, normalized=False) for t in BERT_SPECIALS])
    tok.add_tokens([added("hello world", normalized=True), added("Straße", normalized=False)])
    return tok


ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def _gpt2_roberta(ctx, n_merges, *, normalizer, prefix_space, pre_trim, trim, post_prefix, extra_pre=None, mask_flags):
    vocab, merges = gpt2_vocab(ctx, n_merges)
    tok = Tokenizer(models.BPE(vocab, merges, unk_token=None, fuse_unk=False))
    tok.normalizer = normalizer
    bl = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space, trim_offsets=pre_trim, use_regex=True)
    tok.pre_tokenizer = bl if extra_pre is None else pre_tokenizers.Sequence(extra_pre + [bl])
    tok.add_special_tokens([added(t, special=True, normalized=False) for t in ROBERTA_SPECIALS])
    tok.add_special_tokens([added("<mask>", special=True, normalized=False, **mask_flags)])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")),
                                                      trim_offsets=trim, add_prefix_space=post_prefix)
    tok.decoder = decoders.ByteLevel()
    return tok


def b_roberta_trim(ctx):
    tok = _gpt2_roberta(ctx, 3000, normalizer=normalizers.Strip(left=True, right=False), prefix_space=True,
                        pre_trim=True, trim=True, post_prefix=True, mask_flags={"lstrip": True})
    return tok


def b_roberta_notrim(ctx):
    tok = _gpt2_roberta(ctx, 2500, normalizer=normalizers.Strip(left=False, right=True), prefix_space=False,
                        pre_trim=False, trim=False, post_prefix=False, mask_flags={"rstrip": True})
    tok.add_tokens([added("<|user|>", normalized=False, single_word=True)])
    return tok


def b_roberta_trim_noprefix(ctx):
    tok = _gpt2_roberta(ctx, 2500, normalizer=normalizers.NFC(), prefix_space=False, pre_trim=True, trim=True,
                        post_prefix=False, extra_pre=[pre_tokenizers.Digits(individual_digits=True)],
                        mask_flags={"lstrip": True, "rstrip": True})
    return tok


def b_bytelevel_normalizer(ctx):
    vocab, merges = gpt2_vocab(ctx, 2000)
    tok = Tokenizer(models.BPE(vocab, merges, unk_token=None, fuse_unk=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.ByteLevel()])
    tok.pre_tokenizer = pre_tokenizers.Split("\u0120", behavior="merged_with_next", invert=False)
    tok.add_special_tokens([added("<|endoftext|>", special=True, normalized=False)])
    eot = tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        processors.TemplateProcessing(single="$A <|endoftext|>", pair="$A <|endoftext|> $B:1 <|endoftext|>:1",
                                      special_tokens=[("<|endoftext|>", eot)]),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_tokens([added("hello world", normalized=True), added("Foo Bar", normalized=False)])
    return tok


def b_bytelevel_words(ctx):
    vocab, merges = gpt2_vocab(ctx, 2000)
    tok = Tokenizer(models.BPE(vocab, merges, unk_token=None, fuse_unk=False))
    tok.normalizer = normalizers.Nmt()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([added("<|endoftext|>", special=True, normalized=False)])
    return tok


def b_added_bytelevel(ctx):
    vocab, merges = gpt2_vocab(ctx, 2000)
    tok = Tokenizer(models.BPE(vocab, merges, unk_token=None, fuse_unk=False))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([
        added("<|endoftext|>", special=True, normalized=False),
        added("<|tool|>", special=True, normalized=False, lstrip=True, rstrip=True),
        added("<|Norm|>", special=True, normalized=True),
    ])
    tok.add_tokens([
        added("hello", normalized=True, single_word=True),
        added("World", normalized=False),
        added(" spaced", normalized=False),
        added("<x>", normalized=False, lstrip=True),
        added("<y>", normalized=True, rstrip=True),
    ])
    return tok


def b_metaspace_first(ctx):
    vocab, merges = mistral_vocab(ctx, 3000, range(0xF0, 0xF8), 0x10000)
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.add_special_tokens([added(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.add_special_tokens([added("<|im_start|>", special=True, normalized=False),
                            added("<|im_end|>", special=True, normalized=False)])
    tok.add_tokens([added("<tool>", normalized=False, rstrip=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A </s> <s>:1 $B:1 </s>:1",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    tok.decoder = decoders.Sequence([decoders.ByteFallback(),
                                     decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)])
    return tok


def b_bytefallback_nofuse(ctx):
    vocab, merges = mistral_vocab(ctx, 2500, range(0xE4, 0xEA), 0x3000)
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=False, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(" ", "\u2581"),
                                           normalizers.Prepend("\u2581")])
    tok.pre_tokenizer = None
    tok.add_special_tokens([added(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=1)])
    return tok


def b_bpe_suffix_prefix(ctx):
    lines = ctx.botchan()
    specials = ["<unk>", "<pad>", "<s>", "</s>"]

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    vocab, merges = train_affixed_bpe(tok, lines, vocab_size=2000, min_frequency=2, specials=specials,
                                      prefix="##", suffix="</w>")
    tok.model = models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True,
                           continuing_subword_prefix="##", end_of_word_suffix="</w>")
    tok.add_special_tokens([added(t, special=True, normalized=False) for t in specials])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s>:0 $A:0 </s>:0 $B:1 </s>:1",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    tok.decoder = decoders.Sequence([decoders.Replace("##", ""), decoders.BPEDecoder(suffix="</w>")])
    return tok


WORDLEVEL_SPECIALS = ["[UNK]", "[PAD]", "[CLS]", "[SEP]"]


def _wordlevel(ctx, normalizer, pre_tokenizer, vocab_size=4000):
    lines = ctx.botchan()

    def make():
        tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        tok.normalizer = normalizer
        tok.pre_tokenizer = pre_tokenizer
        return tok

    tok = train(make, lambda: trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                                        special_tokens=WORDLEVEL_SPECIALS), lines)
    tok.model = models.WordLevel(model_json(tok)["vocab"], unk_token="[UNK]")
    return tok


def b_split_string(ctx):
    tok = _wordlevel(ctx, normalizers.Sequence([normalizers.Lowercase(), normalizers.Strip(left=True, right=True)]),
                     pre_tokenizers.Sequence([
                         pre_tokenizers.Split(" ", behavior="removed"),
                         pre_tokenizers.Split(",", behavior="isolated"),
                         pre_tokenizers.Split(".", behavior="merged_with_previous"),
                         pre_tokenizers.Split("'", behavior="merged_with_next"),
                         pre_tokenizers.Split("-", behavior="contiguous"),
                     ]))
    tok.post_processor = bert_template()(tok)
    tok.decoder = None
    return tok


def b_split_regex(ctx):
    tok = _wordlevel(ctx, normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex("[0-9]"), "#")]),
                     pre_tokenizers.Sequence([
                         pre_tokenizers.Split(Regex(r"\s+"), behavior="removed"),
                         pre_tokenizers.Split(Regex(r"[.!?]"), behavior="contiguous"),
                         pre_tokenizers.Split(Regex(r"[,;:]"), behavior="merged_with_previous"),
                         pre_tokenizers.Split(Regex(r"[\"'(\[]"), behavior="merged_with_next"),
                         pre_tokenizers.Split(Regex(r"#+"), behavior="isolated"),
                     ]))
    tok.post_processor = None
    tok.decoder = None
    return tok


def b_split_invert(ctx):
    tok = _wordlevel(ctx, normalizers.Lowercase(),
                     pre_tokenizers.Sequence([
                         pre_tokenizers.Split(Regex(r"\w+"), behavior="merged_with_next", invert=True),
                         pre_tokenizers.Punctuation(behavior="merged_with_previous"),
                         pre_tokenizers.Split("'", behavior="isolated", invert=True),
                     ]))
    tok.post_processor = bert_template()(tok)
    tok.decoder = decoders.Fuse()
    return tok


def b_chardelimiter(ctx):
    tok = _wordlevel(ctx, normalizers.Sequence([normalizers.Replace(Regex(r"\s+"), " "),
                                                normalizers.Strip(left=True, right=True), normalizers.NFC()]),
                     pre_tokenizers.Sequence([pre_tokenizers.CharDelimiterSplit(" "),
                                              pre_tokenizers.Punctuation(behavior="removed")]))
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]")))
    tok.decoder = None
    return tok


XLMR_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def _xlmr(ctx, n_top, char_pool):
    tok = Tokenizer(models.Unigram(xlmr_vocab(ctx, n_top, char_pool), unk_id=3, byte_fallback=False))
    tok.add_special_tokens([added(t, special=True, normalized=False) for t in XLMR_SPECIALS])
    return tok


def b_unigram_scripts(ctx):
    tok = _xlmr(ctx, 3000, 20000)
    tok.normalizer = normalizers.Sequence([normalizers.Nmt(), normalizers.NFKC()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.UnicodeScripts(),
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)])
    tok.add_special_tokens([added("<mask>", special=True, normalized=False, lstrip=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    return tok


def b_unigram_never(ctx):
    tok = _xlmr(ctx, 2500, 10000)
    tok.normalizer = normalizers.Sequence([normalizers.Replace(Regex(r"\s+"), " "), normalizers.NFC()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation(behavior="isolated"),
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=False)])
    tok.post_processor = None
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="never", split=False)
    return tok


def b_unigram_bytefallback(ctx):
    lines = ctx.botchan()
    specials = ["<unk>", "<pad>", "<s>", "</s>"]

    def make():
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
        return tok

    # UnigramTrainer's result differs between runs in details: scores in the last bits (float sums
    # in hash-map order), which can swap pieces of nearly equal score, and the characters it must
    # keep but did not select, which it appends about 1 below the lowest score with small offsets in
    # hash-map order. Canonical form: those characters share one score, every score keeps 4
    # decimals, pieces are ordered by score, then text (specials first, as trained); both runs must
    # then agree.
    def canonical(tok):
        m = model_json(tok)
        n = len(specials)
        assert [p for p, _ in m["vocab"][:n]] == specials and m["unk_id"] == 0, m["vocab"][:n]
        body = m["vocab"][n:]
        low = min(sc for _, sc in body)
        tail = [p for p, sc in body if sc < low + 0.01]
        assert all(len(p) == 1 for p in tail), tail
        rest = [(p, round(sc, 4)) for p, sc in body if sc >= low + 0.01] + [(p, round(low, 4)) for p in tail]
        rest.sort(key=lambda ps: (-ps[1], ps[0]))
        return [(p, float(sc)) for p, sc in m["vocab"][:n]] + rest

    runs = []
    for _ in range(2):
        t = make()
        t.train_from_iterator(lines, trainer=trainers.UnigramTrainer(
            vocab_size=1200, show_progress=False, special_tokens=specials, unk_token="<unk>", max_piece_length=10,
            shrinking_factor=0.75, n_sub_iterations=2))
        runs.append((t, canonical(t)))
    assert runs[0][1] == runs[1][1], "Unigram training is not deterministic, even rounded"
    tok, pieces = runs[0]
    m = model_json(tok)
    present = {p for p, _ in pieces}
    # sentencepiece's byte pieces (score 0, as sentencepiece-converted files carry them); the
    # UnigramTrainer of this tokenizers version has no byte_fallback option.
    pieces += [("<0x%02X>" % b, 0.0) for b in range(256) if "<0x%02X>" % b not in present]
    tok.model = models.Unigram(pieces, unk_id=m["unk_id"], byte_fallback=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)])
    return tok


CTC_VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]


def _ctc(normalizer, pre_tokenizer, cleanup):
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(CTC_VOCAB)}, unk_token="<unk>"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.add_special_tokens([added(t, special=True, normalized=False) for t in ("<pad>", "<s>", "</s>", "<unk>")])
    tok.decoder = decoders.CTC(pad_token="<pad>", word_delimiter_token="|", cleanup=cleanup)
    return tok


def b_ctc_cleanup(ctx):
    tok = _ctc(normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(" ", "|")]),
               pre_tokenizers.FixedLength(length=1), cleanup=True)
    tok.post_processor = None
    return tok


def b_ctc_nocleanup(ctx):
    tok = _ctc(normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase(),
                                     normalizers.Replace(Regex(r"\s+"), "|")]),
               pre_tokenizers.Split(Regex("."), behavior="isolated"), cleanup=False)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1", special_tokens=[("<s>", 1), ("</s>", 2)])
    return tok


def b_added_tokens(ctx):
    tok = Tokenizer(models.WordPiece(bert_vocab(ctx, 3000), unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens([added(t, special=True, normalized=False) for t in BERT_SPECIALS])
    tok.post_processor = bert_template()(tok)
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens([
        added("<special_a>", special=True, normalized=False),
        added("<lstrip>", special=True, normalized=False, lstrip=True),
        added("<both>", special=True, normalized=False, lstrip=True, rstrip=True),
        added("<NormSpecial>", special=True, normalized=True),
    ])
    tok.add_tokens([
        added("<rstrip>", normalized=False, rstrip=True),
        added("cat", normalized=False, single_word=True),
        added("dog", normalized=True, single_word=True),
        added("hello world", normalized=True),
        added("New York", normalized=False),
        added("ab", normalized=False),
        added("Été", normalized=False),
        added("été", normalized=True),
    ])
    return tok


# name -> (builder, pad token for the pair configs, covered component variants, extra probe texts)
SPECS = {
    "synth-wordpiece-cased": (b_wordpiece_cased, "[PAD]", [
        "normalizer BertNormalizer(clean_text=true, handle_chinese_chars=true, strip_accents=true, lowercase=false)",
        "pre_tokenizer BertPreTokenizer",
        "model WordPiece trained (BpeTrainer vocabulary with '##' continuing-subword prefix, as WordPieceTrainer does; botchan, cased), max_input_chars_per_word=8",
        "post_processor BertProcessing",
        "decoder WordPiece(cleanup=false)",
        "added token [MASK] special lstrip",
    ], ["Supercalifragilistic words longer than eight: extraordinary, Botchan's schoolmaster.",
        "Hello [MASK] world", "Hello[MASK]world", "[MASK] first", "last    [MASK]", "Ünïcödé ÀÉÎ Crème Brûlée",
        "你好世界 中文 mixed漢字text", "\x00control\x07chars\ufeffand\u200bzero width"]),
    "synth-wordpiece-multi-id": (b_wordpiece_multi_id, "[PAD]", [
        "normalizer BertNormalizer(clean_text=false, handle_chinese_chars=false, strip_accents=false, lowercase=true)",
        "pre_tokenizer Sequence[WhitespaceSplit, Punctuation(contiguous), Digits(individual_digits=false)]",
        "model WordPiece (BERT uncased subset)",
        "post_processor TemplateProcessing with multi-id special tokens ([BOS2] = [CLS] [MASK], [SEPSEP] = [SEP] [SEP]) and type ids 0-3",
        "decoder Sequence[WordPiece(cleanup=true), Strip(right=1)]",
    ], ["What?!?! No... really?? (yes)!", "abc123def 4567 89x", "Àccénted Ünïcödé stays", "中文字符没有空格",
        "\x00control\tand\u200bzero width"]),
    "synth-wordpiece-fixedlength": (b_wordpiece_fixedlength, "[PAD]", [
        "normalizer Sequence[NFKD, StripAccents, Lowercase]",
        "pre_tokenizer Sequence[WhitespaceSplit, Punctuation(merged_with_next), FixedLength(5)]",
        "model WordPiece (BERT uncased subset)",
        "post_processor TemplateProcessing",
        "decoder WordPiece(cleanup=false)",
        "added tokens non-special normalized=true with a space ('hello world'), normalized=false with ß ('Straße')",
    ], ["Hello World, hello world and HELLO WORLD!", "Straße STRASSE strasse Straße.", "internationalization",
        "(parenthesized) \"quoted\" -dash", "ﬁﬂ ① ²³ ｈｅｌｌｏ Ⅻ"]),
    "synth-roberta-trim": (b_roberta_trim, "<pad>", [
        "normalizer Strip(left=true, right=false)",
        "pre_tokenizer ByteLevel(add_prefix_space=true, trim_offsets=true, use_regex=true)",
        "model BPE (GPT-2 first 3000 merges)",
        "post_processor RobertaProcessing(trim_offsets=true, add_prefix_space=true)",
        "decoder ByteLevel",
        "added token <mask> special lstrip",
    ], ["   three leading spaces", "trailing spaces   ", "Hello <mask>!", "Hello<mask>", "  <mask> starts",
        "The capital of France is <mask>."]),
    "synth-roberta-notrim": (b_roberta_notrim, "<pad>", [
        "normalizer Strip(left=false, right=true)",
        "pre_tokenizer ByteLevel(add_prefix_space=false, trim_offsets=false, use_regex=true)",
        "model BPE (GPT-2 first 2500 merges)",
        "post_processor RobertaProcessing(trim_offsets=false, add_prefix_space=false)",
        "decoder ByteLevel",
        "added tokens <mask> special rstrip; <|user|> non-special single_word normalized=false",
    ], ["   leading spaces kept", "trailing spaces go   ", "Hello <mask>  world", "<mask>   x",
        "<|user|> hi", "x<|user|>y", "say <|user|>. ok", "<|user|><|user|>"]),
    "synth-roberta-trim-noprefix": (b_roberta_trim_noprefix, "<pad>", [
        "normalizer NFC",
        "pre_tokenizer Sequence[Digits(individual_digits=true), ByteLevel(add_prefix_space=false, trim_offsets=true)]",
        "model BPE (GPT-2 first 2500 merges)",
        "post_processor RobertaProcessing(trim_offsets=true, add_prefix_space=false)",
        "decoder ByteLevel",
        "added token <mask> special lstrip+rstrip",
    ], ["The year 1984 had 365 days.", "  spaced   <mask>   out  ", "x<mask>y", "e\u0301 \u0041\u030a composed"]),
    "synth-bytelevel-normalizer": (b_bytelevel_normalizer, "<|endoftext|>", [
        "normalizer Sequence[NFKC, ByteLevel]",
        "pre_tokenizer Split(String 'Ġ', merged_with_next)",
        "model BPE (GPT-2 first 2000 merges)",
        "post_processor Sequence[ByteLevel(trim_offsets=true), TemplateProcessing]",
        "decoder ByteLevel",
        "added tokens non-special 'hello world' normalized=true, 'Foo Bar' normalized=false; <|endoftext|> special",
    ], ["hello world and hello  world", "Foo Bar foo bar FooBar", "Ġ literal Ġ", "a<|endoftext|>b",
        "ﬁ ① ｈｅｌｌｏ"]),
    "synth-bytelevel-words": (b_bytelevel_words, "<|endoftext|>", [
        "normalizer Nmt",
        "pre_tokenizer Sequence[WhitespaceSplit, Digits(individual_digits=true), ByteLevel(add_prefix_space=true, use_regex=false)]",
        "model BPE (GPT-2 first 2000 merges)",
        "post_processor ByteLevel(add_prefix_space=true, trim_offsets=true)",
        "decoder ByteLevel",
    ], ["numbers 12345 and 3.14", "\x01\x02nmt\x7f removes\u200b controls\u00a0and\u3000spaces",
        "   padded   words   "]),
    "synth-added-bytelevel": (b_added_bytelevel, "<|endoftext|>", [
        "normalizer Lowercase",
        "pre_tokenizer ByteLevel(add_prefix_space=false, trim_offsets=true)",
        "model BPE (GPT-2 first 2000 merges)",
        "post_processor ByteLevel(add_prefix_space=false, trim_offsets=true)",
        "decoder ByteLevel",
        "added tokens: special normalized=false lstrip+rstrip (<|tool|>), special normalized=true (<|Norm|>), "
        "non-special single_word normalized=true (hello), normalized=false (World, ' spaced'), lstrip (<x>), "
        "rstrip normalized=true (<y>)",
    ], ["Hello hello HELLO helloworld hello.", "World world WORLD", "a spaced  spaced out", "call <|tool|>  now",
        "x  <x>  y  <y>  z", "<|norm|> <|Norm|> <|NORM|>", "<x><y><|tool|>", "<|endoftext|>hello<|endoftext|>"]),
    "synth-metaspace-first": (b_metaspace_first, "</s>", [
        "pre_tokenizer Metaspace(prepend_scheme=first, split=false)",
        "model BPE byte_fallback=true, unk_token, fuse_unk=true (Mistral subset: first 3000 tokens + all characters, no <0xF0>-<0xF7>: "
        "4-byte characters become <unk>, fused)",
        "post_processor TemplateProcessing",
        "decoder Sequence[ByteFallback, Metaspace(prepend_scheme=first)]",
        "added tokens special <|im_start|>/<|im_end|>, non-special rstrip <tool>",
    ], ["<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n", " leading space", "a <tool>   b",
        "emoji \U0001f600\U0001f601\U0001f602 run", "\U00010348 gothic and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]),
    "synth-bytefallback-nofuse": (b_bytefallback_nofuse, "</s>", [
        "normalizer Sequence[NFC, Replace(String ' ' -> '▁'), Prepend('▁')]",
        "model BPE byte_fallback=true, unk_token, fuse_unk=false (Mistral subset: first 2500 tokens + characters below "
        "U+3000, no <0xE4>-<0xE9>: CJK ideographs become one <unk> each, other characters bytes)",
        "post_processor TemplateProcessing",
        "decoder Sequence[Replace('▁' -> ' '), ByteFallback, Fuse, Strip(left=1, right=1)]",
    ], ["中文字符串测试", "日本語とかな", "Ελληνικά κείμενα", "trailing space ", "e\u0301 composed"]),
    "synth-bpe-suffix-prefix": (b_bpe_suffix_prefix, "<pad>", [
        "normalizer Sequence[NFD, StripAccents, Lowercase]",
        "pre_tokenizer Whitespace",
        "model BPE trained (BpeTrainer on position-tagged symbols, botchan) with continuing_subword_prefix='##' and end_of_word_suffix='</w>', "
        "unk_token, fuse_unk=true",
        "post_processor TemplateProcessing",
        "decoder Sequence[Replace('##' -> ''), BPEDecoder(suffix='</w>')]",
    ], ["Botchan's schoolmaster was unreasonable.", "Ωmega and 中文 unknowns ΔΔΔ", "##hash and </w> literal"]),
    "synth-split-string": (b_split_string, "[PAD]", [
        "normalizer Sequence[Lowercase, Strip(left=true, right=true)]",
        "pre_tokenizer Sequence of Split(String) in every behavior: ' ' removed, ',' isolated, '.' merged_with_previous, "
        "\"'\" merged_with_next, '-' contiguous",
        "model WordLevel trained (WordLevelTrainer, botchan)",
        "post_processor TemplateProcessing",
        "decoder none (tokens joined with spaces)",
    ], ["well-known---dashes--here", "it's a dog's life, isn't it.", "a,b,,c... d.e", "  spaced  "]),
    "synth-split-regex": (b_split_regex, "[PAD]", [
        "normalizer Sequence[NFKC, Replace(Regex '[0-9]' -> '#')]",
        "pre_tokenizer Sequence of Split(Regex) in every behavior: \\s+ removed, [.!?] contiguous, [,;:] merged_with_previous, "
        "[\"'(\\[] merged_with_next, #+ isolated",
        "model WordLevel trained (WordLevelTrainer, botchan)",
        "post_processor none",
        "decoder none",
    ], ["What?! Really... yes!!", "in 1984, 2001; and 42: the end", "(quoted) \"word\" [x] 'y'", "①②③ １２３"]),
    "synth-split-invert": (b_split_invert, "[PAD]", [
        "normalizer Lowercase",
        "pre_tokenizer Sequence[Split(Regex \\w+, merged_with_next, invert=true), Punctuation(merged_with_previous), "
        "Split(String \"'\", isolated, invert=true)]",
        "model WordLevel trained (WordLevelTrainer, botchan)",
        "post_processor TemplateProcessing",
        "decoder Fuse",
    ], ["Hello, world! How's it going?", "  two spaces.  ", "don't", "a--b"]),
    "synth-chardelimiter": (b_chardelimiter, "[PAD]", [
        "normalizer Sequence[Replace(Regex \\s+ -> ' '), Strip(left=true, right=true), NFC]",
        "pre_tokenizer Sequence[CharDelimiterSplit(' '), Punctuation(removed)]",
        "model WordLevel trained (WordLevelTrainer, botchan)",
        "post_processor BertProcessing",
        "decoder none",
    ], ["Hello,   world!!! How are you?", "\tTabs\nand\r\nnewlines\t", "...", "e\u0301t\u00e9"]),
    "synth-unigram-scripts": (b_unigram_scripts, "<pad>", [
        "normalizer Sequence[Nmt, NFKC]",
        "pre_tokenizer Sequence[UnicodeScripts, Metaspace(prepend_scheme=always, split=true)]",
        "model Unigram (XLM-R subset)",
        "post_processor TemplateProcessing (XLM-R layout)",
        "decoder Metaspace(prepend_scheme=always)",
        "added token <mask> special lstrip",
    ], ["Hello世界Привет مرحبا", "abcАБВαβγ123", "日本語とEnglishの混在", "Paris is the <mask> of France.",
        "ＡＢＣ１２３"]),
    "synth-unigram-never": (b_unigram_never, "<pad>", [
        "normalizer Sequence[Replace(Regex \\s+ -> ' '), NFC]",
        "pre_tokenizer Sequence[Punctuation(isolated), Metaspace(prepend_scheme=never, split=false)]",
        "model Unigram (XLM-R subset)",
        "post_processor none",
        "decoder Metaspace(prepend_scheme=never)",
    ], ["No prefix here. Really!", "  spaces   collapse  ", "<s>inside</s> text"]),
    "synth-unigram-bytefallback": (b_unigram_bytefallback, "<pad>", [
        "normalizer NFKC",
        "pre_tokenizer Metaspace(prepend_scheme=first, split=true)",
        "model Unigram trained (UnigramTrainer, botchan, 1200 pieces) with byte_fallback=true (+256 <0xXX> pieces)",
        "post_processor TemplateProcessing",
        "decoder Sequence[ByteFallback, Fuse, Metaspace(prepend_scheme=first)]",
    ], ["Botchan went to Shikoku.", "Ω≈ç√∫ bytes ünïcödé", "中文 fallback", "literal <0x41> piece",
        "\U0001f600"]),
    "synth-ctc-cleanup": (b_ctc_cleanup, "<pad>", [
        "normalizer Sequence[Lowercase, Replace(String ' ' -> '|')]",
        "pre_tokenizer FixedLength(1)",
        "model WordLevel (characters + <pad>, |)",
        "post_processor none",
        "decoder CTC(pad_token=<pad>, word_delimiter_token=|, cleanup=true)",
    ], ["hello world", "aaa bbb  ccc", "it's  ok", "digits 123 unknown"]),
    "synth-ctc-nocleanup": (b_ctc_nocleanup, "<pad>", [
        "normalizer Sequence[NFD, StripAccents, Lowercase, Replace(Regex \\s+ -> '|')]",
        "pre_tokenizer Split(Regex '.', isolated)",
        "model WordLevel (characters + <pad>, |)",
        "post_processor TemplateProcessing",
        "decoder CTC(pad_token=<pad>, word_delimiter_token=|, cleanup=false)",
    ], ["café crème", "it's  ok", "line\nbreak", "zzz  top"]),
    "synth-added-tokens": (b_added_tokens, "[PAD]", [
        "normalizer BertNormalizer (defaults)",
        "pre_tokenizer BertPreTokenizer",
        "model WordPiece (BERT uncased subset)",
        "post_processor TemplateProcessing",
        "decoder WordPiece",
        "added tokens: special normalized=false, special lstrip, special lstrip+rstrip, special normalized=true, "
        "non-special rstrip, single_word normalized=false/true, multi-word normalized=true/false, in-word match, accented",
    ], [
        "<special_a>hello", "hello<special_a>world", "hello <special_a> world", "x <lstrip> y", "x<lstrip>y",
        "x   <lstrip>   y", "a   <both>   b", "a<both>b", "x <rstrip>   y", "<rstrip>", "<lstrip><rstrip><both><special_a>",
        "cat concatenate cat. (cat) cats bobcat cat", "Cat CAT cat", "DOG dog Dog hotdog dog's dog-house",
        "Hello World hello world HELLO WORLD helloworld", "New York new york NewYork New  York",
        "abc cab ab  ab", "Été été ÉTÉ ete", "<NormSpecial> <normspecial> <NORMSPECIAL>", "[CLS] inside [SEP] text [MASK]",
    ]),
}


# ---------------------------------------------------------------------------------------------------


def read_inputs(out: Path):
    corpora = {}
    for c in CORPORA + ["pairs"]:
        path = out / "inputs" / f"{c}.jsonl"
        if not path.is_file():
            raise SystemExit(f"gen_tokenizer_components: {path} missing; run gen_tokenizers.py first")
        corpora[c] = [json.loads(l) for l in path.read_text(encoding="utf-8").split("\n") if l]
    return corpora


def select_inputs(name: str, corpora) -> dict[str, list]:
    sel = {}
    for c in CORPORA:
        rng = random.Random(f"{SEED}-{name}-{c}")
        idx = [i for i, r in enumerate(corpora[c]) if len(r["text"]) <= MAX_INPUT_CHARS]
        sel[c] = [corpora[c][i]["text"] for i in sorted(rng.sample(idx, PER_CORPUS))]
    rng = random.Random(f"{SEED}-{name}-pairs")
    limit = PAIR_CHARS.get(name, MAX_PAIR_CHARS)
    pairs = [(r["text"], r["pair"]) for r in corpora["pairs"] if len(r["text"]) + len(r["pair"]) <= limit]
    sel["pairs"] = [pairs[i] for i in sorted(rng.sample(range(len(pairs)), N_PAIRS))]
    return sel


def failure(e: BaseException) -> dict:
    if isinstance(e, (KeyboardInterrupt, SystemExit)):
        raise e
    return {"error": str(e).split("\n")[0], "error_kind": "panic" if type(e).__name__ == "PanicException" else "error"}


def record(tok: Tokenizer, text: str, pair=None, config="absent") -> dict:
    rec = {"text": text}
    if pair is not None:
        rec["pair"] = pair
    if config != "absent":
        rec["config"] = config
    try:
        enc = tok.encode(text, pair, add_special_tokens=True) if pair is not None else \
            tok.encode(text, add_special_tokens=True)
    except BaseException as e:  # noqa: BLE001  (pyo3 PanicException is a BaseException)
        rec.update(failure(e))
        return rec
    rec.update(encoding_fields(tok, enc, pair=pair is not None))
    return rec


def encoding_fields(tok: Tokenizer, enc, pair: bool) -> dict:
    """gen_tokenizers.encoding_fields, except that a decode that raises (or panics) is recorded as
    decoded_error / decoded_skip_special_error (first line of the message) instead of decoded /
    decoded_skip_special."""
    rec = {
        "input_ids": enc.ids,
        "tokens": enc.tokens,
        "offsets": [[s, e] for s, e in enc.offsets],
        "attention_mask": enc.attention_mask,
        "token_type_ids": enc.type_ids,
        "special_tokens_mask": enc.special_tokens_mask,
        "word_ids": enc.word_ids,
    }
    for key, skip in (("decoded", False), ("decoded_skip_special", True)):
        try:
            rec[key] = tok.decode(enc.ids, skip_special_tokens=skip)
        except BaseException as e:  # noqa: BLE001
            f = failure(e)
            rec[key + "_error"] = f"{f['error_kind']}: {f['error']}"
    if pair:
        rec["sequence_ids"] = enc.sequence_ids
        rec["overflowing"] = [encoding_fields(tok, o, True) for o in enc.overflowing]
    return rec


def count_decode_errors(recs) -> int:
    n = 0
    for r in recs:
        n += int("decoded_error" in r or "decoded_skip_special_error" in r)
        n += count_decode_errors(r.get("overflowing", []))
    return n


def build_one(name: str, ctx: Ctx, out: Path, sel) -> tuple[dict, int]:
    builder, pad_token, components, extra = SPECS[name]
    ctx.used = {}
    tok = builder(ctx)
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    # remove stale goldens of a previous layout
    for p in d.glob("*.jsonl"):
        p.unlink()
    tok_path = d / "tokenizer.json"
    data = (format_json(json.loads(tok.to_str())) + "\n").encode("utf-8")
    tok_path.write_bytes(data)
    loaded = Tokenizer.from_file(str(tok_path))  # encode with exactly what was written
    assert json.loads(loaded.to_str()) == json.loads(tok.to_str()), f"{name}: tokenizer.json does not round-trip"
    tok = loaded
    tok_json = json.loads(tok_path.read_text(encoding="utf-8"))

    sizes = {"tokenizer.json": len(data)}
    counts = {}
    errors = 0
    decode_errors = 0
    for c in CORPORA:
        recs = [record(tok, t) for t in sel[c]]
        errors += sum(1 for r in recs if "error" in r)
        decode_errors += count_decode_errors(recs)
        sizes[c] = G.write_jsonl(d / f"{c}.jsonl", recs)
        counts[c] = len(recs)
    probes = G.dedupe(COMMON_PROBES + extra)
    recs = [record(tok, t) for t in probes]
    errors += sum(1 for r in recs if "error" in r)
    decode_errors += count_decode_errors(recs)
    sizes["probes"] = G.write_jsonl(d / "probes.jsonl", recs)
    counts["probes"] = len(recs)

    configured = []
    for config in G.concrete_configs(tok, pad_token):
        t = tok
        if config is not None:
            t = Tokenizer.from_file(str(tok_path))
            G.apply_config(t, config)
        configured.append((config, t))
    recs = [record(t, a, b, config) for a, b in sel["pairs"] for config, t in configured]
    pair_errors = sum(1 for r in recs if "error" in r)
    decode_errors += count_decode_errors(recs)
    sizes["pairs"] = G.write_jsonl(d / "pairs.jsonl", recs)
    counts["pairs"] = len(recs)

    meta = {
        "name": name,
        "tokenizers_version": tokenizers.__version__,
        "source": f"{name}/tokenizer.json (relative to this directory; synthetic, built, committed)",
        "tokenizer_file": f"tests/golden/tokenizers/{name}/tokenizer.json",
        "sha256": G.sha256_file(tok_path),
        "built_by": "tools/oracle/gen_tokenizer_components.py (function %s)" % builder.__name__,
        "built_from": {k: {"path": k, "sha256": v} for k, v in sorted(ctx.used.items())},
        "components": components,
        "component_tree": G.tokenizer_summary(tok_json),
        "encode": ("encode(text, add_special_tokens=True) with the file's own settings (no truncation/padding); "
                   "offsets are character offsets; decoded = decode(ids, skip_special_tokens=False), "
                   "decoded_skip_special = decode(ids, skip_special_tokens=True)"),
        "inputs": (f"{PER_CORPUS} texts of at most {MAX_INPUT_CHARS} characters from each of "
                   f"tests/golden/tokenizers/inputs/{{{','.join(CORPORA)}}}.jsonl (random.Random(\"{SEED}-{name}-<corpus>\")), "
                   f"in corpus order; probes.jsonl: shared probes then this tokenizer's own; pairs.jsonl: "
                   f"{N_PAIRS} of the pairs of at most {PAIR_CHARS.get(name, MAX_PAIR_CHARS)} characters (text + pair) x "
                   f"{len(G.PAIR_CONFIGS)} configurations"),
        "pad_token_for_pair_configs": pad_token,
        "records": counts,
        "errors": errors,
        "pairs_errors": pair_errors,
        "decode_errors": decode_errors,
    }
    sizes["meta"] = G.write_json(d / "meta.json", meta)
    return {"name": name, "counts": counts, "errors": errors, "pair_errors": pair_errors,
            "decode_errors": decode_errors}, sum(sizes.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=Path,
                    default=Path(os.environ.get("EMBRACE_ASSETS", Path.home() / ".cache" / "embrace" / "assets")))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", choices=sorted(SPECS), help="only these tokenizers")
    args = ap.parse_args()
    if not args.assets.is_dir():
        print(f"gen_tokenizer_components: assets not found at {args.assets}; run scripts/fetch-assets", file=sys.stderr)
        return 1
    corpora = read_inputs(args.out)
    ctx = Ctx(args.assets)
    total = 0
    print(f"tokenizers {tokenizers.__version__}")
    print(f"{'tokenizer':<30}{'records':>8}{'errors':>8}{'bytes':>10}   (errors: encode single + encode pair + decode)")
    for name in args.only or list(SPECS):
        info, nbytes = build_one(name, ctx, args.out, select_inputs(name, corpora))
        total += nbytes
        errs = f"{info['errors']}+{info['pair_errors']}+{info['decode_errors']}"
        print(f"{name:<30}{sum(info['counts'].values()):>8}{errs:>8}{nbytes:>10}")
    print(f"{'total':<30}{'':>8}{'':>8}{total:>10}  bytes under {args.out}/synth-*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
