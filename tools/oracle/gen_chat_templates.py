#!/usr/bin/env python3
"""Chat-template golden files for Embrace, rendered with transformers' own chat-template machinery.

Inputs: every `llama-cpp-vocab/templates/*.jinja` under EMBRACE_ASSETS (real chat templates vendored by
llama.cpp, asset llama-cpp-vocab = sdist llama-cpp-python, vendor/llama.cpp/models). The template sources
are NOT copied into the goldens: the Rust test reads the .jinja files from the asset folder and compares
their sha256 with the one recorded in the meta file (a mismatch means another asset version).

Writes, under tests/golden/generation/ (or --out), beside gen_generation.py's files:

  chat_templates.jsonl       one compact JSON object per line, sorted by template file name (code point
                             order), then by case name:
                               {"template": "<file>.jinja", "case": name, "messages": [...],
                                "add_generation_prompt": bool, "bos_token": "<s>", "eos_token": "</s>",
                                "rendered": str}
                             or, where transformers raises, "error": "<ExceptionClass>: <first line of str(e)>"
                             instead of "rendered" (raise_exception(...) gives "TemplateError: <its message>",
                             unsupported syntax "TemplateSyntaxError: ...", a failing operation e.g.
                             "UndefinedError: ..." or "TypeError: ...").
  chat_templates.meta.json   versions, the exact rendering call, the fixed date, the cases, and per template
                             its sha256, size and ok / error counts.

Rendering = `tokenizer.apply_chat_template(messages, chat_template=<file text>,
add_generation_prompt=<case>, tokenize=False)` on a minimal tokenizer whose special_tokens_map is exactly
{"bos_token": "<s>", "eos_token": "</s>"} (a `PreTrainedTokenizerFast` around an empty-ish WordLevel model),
so the template sees messages, tools=None, documents=None, add_generation_prompt, bos_token, eos_token and
nothing else. Every result is cross-checked against a direct call of
`transformers.utils.chat_template_utils.render_jinja_template` (same variables); the generator fails if the
two ever differ (text or error).

Cases (no tools, no documents):
  user                  [user "Hello, who are you?"], add_generation_prompt=True
  system_user           [system "You are a helpful assistant.", user "What is 2+2?"], add_generation_prompt=True
  multi_turn            [user "Hi", assistant "Hello! How can I help?", user "Tell me a joke."],
                        add_generation_prompt=True
  no_generation_prompt  multi_turn's messages, add_generation_prompt=False

strftime_now: transformers defines it as `datetime.now().strftime(format)`, looking `datetime` up in the
module globals of transformers.utils.chat_template_utils at call time. The generator replaces that global by
a datetime subclass whose now() returns datetime(2026, 11, 26, 0, 0, 0) (naive), so e.g. "%d %b %Y" gives
"26 Nov 2026" and "%Y-%m-%d" gives "2026-11-26" (C locale for LC_TIME: English month names).

Deterministic: no timestamps, no absolute paths, fixed date; a rerun writes byte-identical files.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import jinja2  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
import transformers.utils.chat_template_utils as ctu  # noqa: E402
from tokenizers import Tokenizer, models  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "golden" / "generation"
TEMPLATES_REL = "llama-cpp-vocab/templates"
JSONL_NAME = "chat_templates.jsonl"
META_NAME = "chat_templates.meta.json"

BOS, EOS = "<s>", "</s>"
FIXED_NOW = _dt.datetime(2026, 11, 26, 0, 0, 0)

_MULTI_TURN = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "Tell me a joke."},
]
# name -> (messages, add_generation_prompt); records are written in sorted name order
CASES = {
    "user": ([{"role": "user", "content": "Hello, who are you?"}], True),
    "system_user": ([
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2+2?"},
    ], True),
    "multi_turn": (_MULTI_TURN, True),
    "no_generation_prompt": (_MULTI_TURN, False),
}


class FixedDatetime(_dt.datetime):
    """datetime whose now() is FIXED_NOW (the only datetime use in chat_template_utils is strftime_now)."""

    @classmethod
    def now(cls, tz=None):  # noqa: D102
        return FIXED_NOW if tz is None else FIXED_NOW.replace(tzinfo=tz)


# ---------------------------------------------------------------------------------------------------
# helpers (same conventions as gen_tokenizers.py)


def dumps_line(obj) -> str:
    """Compact one-line JSON; NEL, LS and PS escaped so every record is one '\\n'-terminated line."""
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


def error_string(e: BaseException) -> str:
    lines = str(e).splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def minimal_tokenizer() -> PreTrainedTokenizerFast:
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({BOS: 0, EOS: 1}, unk_token=None)),
        bos_token=BOS, eos_token=EOS,
    )
    smap = dict(tok.special_tokens_map)
    if smap != {"bos_token": BOS, "eos_token": EOS}:
        raise SystemExit(f"gen_chat_templates: unexpected special_tokens_map {smap}")
    if tok.chat_template is not None:
        raise SystemExit("gen_chat_templates: the minimal tokenizer has a chat template of its own")
    return tok


def render_apply(tok, source: str, messages, agp: bool) -> tuple[str, str | None]:
    """('rendered', text) or ('error', message) from tokenizer.apply_chat_template(tokenize=False)."""
    try:
        out = tok.apply_chat_template(copy.deepcopy(messages), chat_template=source,
                                      add_generation_prompt=agp, tokenize=False)
    except Exception as e:  # noqa: BLE001 - every failure is a golden
        return "error", error_string(e)
    if not isinstance(out, str):
        raise SystemExit(f"gen_chat_templates: apply_chat_template returned {type(out).__name__}")
    return "rendered", out


def render_direct(source: str, messages, agp: bool) -> tuple[str, str]:
    """The same through render_jinja_template (what apply_chat_template calls), for the cross-check."""
    try:
        rendered, _ = ctu.render_jinja_template(
            conversations=[ctu._normalize_chat_messages(copy.deepcopy(messages))], tools=None, documents=None,
            chat_template=source, add_generation_prompt=agp, bos_token=BOS, eos_token=EOS,
        )
    except Exception as e:  # noqa: BLE001
        return "error", error_string(e)
    return "rendered", rendered[0]


# ---------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=Path,
                    default=Path(os.environ.get("EMBRACE_ASSETS", Path.home() / ".cache" / "embrace" / "assets")))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", metavar="FILE",
                    help="only these template files (e.g. Qwen-Qwen3-0.6B.jinja; meta then lists only them)")
    args = ap.parse_args()

    tdir = args.assets / TEMPLATES_REL
    if not tdir.is_dir():
        print(f"gen_chat_templates: {tdir} not found; run scripts/fetch-assets", file=sys.stderr)
        return 1
    paths = sorted(tdir.glob("*.jinja"), key=lambda p: p.name)
    if args.only:
        missing = set(args.only) - {p.name for p in paths}
        if missing:
            print(f"gen_chat_templates: no such templates: {sorted(missing)}", file=sys.stderr)
            return 1
        paths = [p for p in paths if p.name in set(args.only)]

    # Fix the date strftime_now sees (see the docstring), and check that it took.
    if not hasattr(ctu, "datetime") or ctu.datetime is not _dt.datetime:
        raise SystemExit("gen_chat_templates: transformers.utils.chat_template_utils.datetime is not "
                         "datetime.datetime; the strftime_now patch must be revisited")
    ctu.datetime = FixedDatetime
    probe = ctu.render_jinja_template(conversations=[[]], chat_template="{{ strftime_now('%d %b %Y') }}")[0][0]
    if probe != "26 Nov 2026":
        raise SystemExit(f"gen_chat_templates: strftime_now patch failed, got {probe!r}")

    tok = minimal_tokenizer()
    records, per_template = [], {}
    for path in paths:
        raw = path.read_bytes()
        source = raw.decode("utf-8")  # as bytes -> str: no newline translation
        ok = err = 0
        errors = {}
        for case in sorted(CASES):
            messages, agp = CASES[case]
            key, value = render_apply(tok, source, messages, agp)
            check = render_direct(source, messages, agp)
            if (key, value) != check:
                raise SystemExit(f"gen_chat_templates: {path.name}/{case}: apply_chat_template gave "
                                 f"{(key, value)!r}, render_jinja_template gave {check!r}")
            rec = {"template": path.name, "case": case, "messages": messages, "add_generation_prompt": agp,
                   "bos_token": BOS, "eos_token": EOS, key: value}
            records.append(rec)
            if key == "rendered":
                ok += 1
            else:
                err += 1
                errors[case] = value
        per_template[path.name] = {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw),
                                   "ok": ok, "error": err, **({"errors": errors} if errors else {})}

    n_bytes = write_jsonl(args.out / JSONL_NAME, records)
    n_ok = sum(t["ok"] for t in per_template.values())
    n_err = sum(t["error"] for t in per_template.values())
    write_json(args.out / META_NAME, {
        "generator": "tools/oracle/gen_chat_templates.py",
        "versions": {
            "python": platform.python_version(),
            "transformers": transformers.__version__,
            "jinja2": jinja2.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "templates_dir": TEMPLATES_REL,
        "templates_source": "asset llama-cpp-vocab: PyPI sdist llama-cpp-python==0.3.36, "
                            "llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates (see scripts/assets.tsv); "
                            "sources are not copied into the goldens, compare sha256 before using a file",
        "rendering": {
            "call": "tok.apply_chat_template(messages, chat_template=<template file text>, "
                    "add_generation_prompt=<case>, tokenize=False)",
            "tokenizer": "PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({'<s>': 0, '</s>': 1})), "
                         "bos_token='<s>', eos_token='</s>'); special_tokens_map = {bos_token, eos_token}, "
                         "no chat_template of its own",
            "cross_check": "transformers.utils.chat_template_utils.render_jinja_template(conversations=[messages], "
                           "tools=None, documents=None, chat_template=..., add_generation_prompt=..., "
                           "bos_token='<s>', eos_token='</s>') gives the same text or error for every record",
            "template_variables": {"messages": "the case's messages (list of {role, content})",
                                   "add_generation_prompt": "the case's flag", "bos_token": BOS, "eos_token": EOS,
                                   "tools": None, "documents": None},
            "template_file": "read as bytes and decoded as UTF-8 (no newline translation); the whole text is "
                             "the template",
            "environment": "jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, "
                           "extensions=[AssistantTracker ({% generation %} blocks), jinja2.ext.loopcontrols]); "
                           "default Undefined (not strict), autoescape off, keep_trailing_newline False (one "
                           "trailing newline of the template is dropped), newline_sequence '\\n'",
            "globals_and_filters": {
                "raise_exception(message)": "raises jinja2.exceptions.TemplateError(message)",
                "strftime_now(format)": "datetime.now().strftime(format), with now() fixed (see fixed_date)",
                "tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)":
                    "filter: json.dumps with those arguments (replaces Jinja's HTML-escaping tojson)",
                "dict": "dict(*args, **kwargs) and dict.fromkeys",
                "namespace": "jinja2 Namespace refusing attribute names that start with '_'",
            },
            "messages_preprocessing": "keys whose value is None are dropped; reasoning_content / thinking / "
                                      "reasoning aliasing does not apply (no case has them)",
            "errors": "'error' = '<type(e).__name__>: <first line of str(e)>' of the exception "
                      "apply_chat_template raises; raise_exception(...) -> 'TemplateError: <message>'",
        },
        "fixed_date": {
            "now": FIXED_NOW.isoformat(),
            "how": "transformers.utils.chat_template_utils.datetime (the global strftime_now reads at call "
                   "time) replaced by a datetime subclass whose now() returns datetime(2026, 11, 26, 0, 0, 0); "
                   "checked: strftime_now('%d %b %Y') == '26 Nov 2026'",
            "locale": "LC_TIME is the C locale (Python does not set it): %b = 'Nov', %B = 'November'",
        },
        "cases": {name: {"messages": m, "add_generation_prompt": agp} for name, (m, agp) in sorted(CASES.items())},
        "record_order": "template file name (code point order), then case name",
        "counts": {"templates": len(per_template), "records": len(records), "ok": n_ok, "error": n_err,
                   "templates_with_errors": sorted(n for n, t in per_template.items() if t["error"])},
        "templates": per_template,
    })

    for name, t in per_template.items():
        if t["error"]:
            first = next(iter(t["errors"].values()))
            print(f"{name}: ok {t['ok']}, error {t['error']} ({first[:100]})")
    print(f"{len(per_template)} templates, {len(records)} records: ok {n_ok}, error {n_err}; "
          f"{JSONL_NAME} {n_bytes} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
