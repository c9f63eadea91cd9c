#!/usr/bin/env python3
"""llama.cpp reference for Embrace's GGUF text generation: tests/golden/generation/llamacpp/<name>.json.

Run with the venv that ./setup builds:  tools/llamacpp/.venv/bin/python tools/llamacpp/gen_reference.py

For each model (real GGUF files from the offline assets, EMBRACE_ASSETS, default
~/.cache/embrace/assets) and each fixed prompt this records

  - prompt_ids: llama.cpp's own tokenizer, llm.tokenize(text, add_bos=<vocab's add_bos>, special=False)
    (special=True for the "chat" case, whose text holds the chat-template markers)
  - generated_ids: up to 32 greedy tokens. Plain argmax over the last position's logits of each
    llama_decode (np.argmax: the lowest id wins a tie), with nothing of the sampler chain (no
    temperature, top-k, repetition penalty, ...). It stops early only when the argmax is an
    end-of-generation token (llama_vocab_is_eog); that token is included and "stopped_on_eog" is set.
  - top5_first: the 5 largest logits (id, logit as float32 -> float) at the first generated position
  - margins: per generated step, logit(top1) - logit(top2); a small margin flags a step where a
    slightly different implementation (other SIMD path, other matmul order) may legitimately diverge
  - text: llm.detokenize(...) of prompt and continuation, only for eyeballing

The loop is the low-level one: llm.reset(); llm.eval(prompt_ids) (one batch, n_batch 512), then
eval([tok]) per step; logits_all is off, so only the last position of each batch gets logits (read
with llama_get_logits_ith(ctx, -1)), exactly as in llama.cpp's own generation. Context settings are
in "settings" (n_ctx 512, 2 threads, flash attention off (the llama-cpp-python default), f16 KV cache).

Deterministic: the same build on the same machine writes byte-identical files (no timestamps, no
absolute paths). The build uses -march=native (GGML_NATIVE=ON), so logits can differ in the last
bits between CPUs; "system_info" records the CPU features the build used.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

import llama_cpp
from llama_cpp import llama_cpp as ll

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "tests" / "golden" / "generation" / "llamacpp"

MODELS = {
    "smollm2": "smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma3-270m-q4_k_m/gemma-3-270m-q4_k_m.gguf",
}

PROMPTS = [
    "The capital of France is",
    "Once upon a time",
    "def fibonacci(n):",
    "Water boils at",
    "The three primary colors are",
]

# Extra cases per model: (name, text); tokenized with special=True.
CHAT_CASES = {
    "smollm2": [
        ("chat", "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"),
    ],
}

MAX_NEW_TOKENS = 32
TOP_K_LOGITS = 5

SETTINGS = dict(
    n_ctx=512,
    n_batch=512,
    n_ubatch=512,
    n_threads=2,
    n_threads_batch=2,
    seed=0,
    n_gpu_layers=0,
    logits_all=False,
    flash_attn=False,
    use_mmap=True,
)

# GGUF metadata keys worth recording (those present are copied as llama.cpp reports them).
META_KEYS = [
    "general.architecture",
    "general.name",
    "general.file_type",
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_eos_token",
    "tokenizer.ggml.add_space_prefix",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.eot_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.unknown_token_id",
]
META_ARCH_SUFFIXES = [
    "context_length",
    "embedding_length",
    "block_count",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.sliding_window",
    "attention.sliding_window_pattern",
    "attention.layer_norm_rms_epsilon",
    "feed_forward_length",
    "rope.freq_base",
    "rope.freq_base_swa",
    "rope.dimension_count",
    "final_logit_softcapping",
    "attn_logit_softcapping",
]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ggml_info() -> dict:
    """ggml version/commit from libggml-base (llama-cpp-python has no binding for them)."""
    libdir = Path(llama_cpp.__file__).parent / "lib"
    out = {}
    for cand in sorted(libdir.glob("libggml-base.so*")):
        lib = ctypes.CDLL(str(cand))
        for fn in ("ggml_version", "ggml_commit"):
            f = getattr(lib, fn, None)
            if f is not None:
                f.restype = ctypes.c_char_p
                out[fn] = f().decode()
        break
    return out


def version_info() -> dict:
    info = {
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_version": ll.llama_version().decode(),
        "system_info": ll.llama_print_system_info().decode().strip(),
    }
    g = ggml_info()
    if "ggml_version" in g:
        info["ggml_version"] = g["ggml_version"]
    if "ggml_commit" in g:
        # the llama.cpp commit vendored in the sdist; "-dirty" because the sdist tree is not a clean checkout
        info["llama_cpp_commit"] = g["ggml_commit"]
    return info


def load(path: Path) -> llama_cpp.Llama:
    return llama_cpp.Llama(model_path=str(path), verbose=False, **SETTINGS)


def model_info(llm: llama_cpp.Llama) -> dict:
    model = llm._model.model
    vocab = ll.llama_model_get_vocab(model)
    meta = llm.metadata
    arch = meta.get("general.architecture", "")
    keys = META_KEYS + [f"{arch}.{s}" for s in META_ARCH_SUFFIXES]
    n_vocab = ll.llama_vocab_n_tokens(vocab)
    eog = [t for t in range(n_vocab) if ll.llama_vocab_is_eog(vocab, t)]

    def tok(t):
        return None if t < 0 else int(t)

    def piece(t):
        return llm.detokenize([t], special=True).decode("utf-8", errors="replace")

    n_layer = int(ll.llama_model_n_layer(model))
    n_swa = int(ll.llama_model_n_swa(model))
    info = {
        "metadata": {k: meta[k] for k in keys if k in meta},
        "n_vocab": int(n_vocab),
        "n_ctx_train": int(ll.llama_model_n_ctx_train(model)),
        "n_layer": n_layer,
        "n_swa": n_swa,
        "add_bos": bool(ll.llama_vocab_get_add_bos(vocab)),
        "add_eos": bool(ll.llama_vocab_get_add_eos(vocab)),
        "bos_id": tok(ll.llama_vocab_bos(vocab)),
        "eos_id": tok(ll.llama_vocab_eos(vocab)),
        "eot_id": tok(ll.llama_vocab_eot(vocab)),
        "eog_ids": eog,
        "special_pieces": {str(t): piece(t) for t in sorted({*eog, *(x for x in (
            ll.llama_vocab_bos(vocab), ll.llama_vocab_eos(vocab), ll.llama_vocab_eot(vocab)) if x >= 0)})},
    }
    if arch == "gemma3" and n_swa > 0 and f"{arch}.attention.sliding_window_pattern" not in meta:
        # Not exposed by the C API: llama.cpp's rule (src/models/gemma3.cpp, load_swa_pattern(ml, 6)) when
        # the GGUF has no sliding_window_pattern key (an array key would not show in llm.metadata either;
        # this GGUF has none): every 6th layer (il % 6 == 5) is global, the others use the window, with
        # rope.freq_base_swa defaulting to 10000 for the sliding layers.
        info["swa_layers_llama_cpp_rule"] = [il for il in range(n_layer) if il % 6 < 5]
    return info


def last_logits(llm: llama_cpp.Llama) -> np.ndarray:
    ptr = ll.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float32, copy=True)


def greedy(llm: llama_cpp.Llama, prompt_ids: list[int], eog: set[int]) -> dict:
    llm.reset()
    llm.eval(prompt_ids)
    generated: list[int] = []
    margins: list[float] = []
    top5 = None
    stopped = False
    for step in range(MAX_NEW_TOKENS):
        logits = last_logits(llm)
        order = np.argsort(-logits, kind="stable")
        tok = int(np.argmax(logits))
        assert tok == int(order[0])
        if step == 0:
            top5 = [{"id": int(i), "logit": float(logits[i])} for i in order[:TOP_K_LOGITS]]
        margins.append(round(float(logits[order[0]] - logits[order[1]]), 5))
        generated.append(tok)
        if tok in eog:
            stopped = True
            break
        llm.eval([tok])
    return {"generated_ids": generated, "stopped_on_eog": stopped, "top5_first": top5, "margins": margins}


def text(llm: llama_cpp.Llama, ids: list[int], special: bool) -> str:
    return llm.detokenize(ids, special=special).decode("utf-8", errors="replace")


def run_model(name: str, path: Path) -> dict:
    llm = load(path)
    info = model_info(llm)
    eog = set(info["eog_ids"])
    add_bos = info["add_bos"]
    cases = [(f"p{i}", p, False) for i, p in enumerate(PROMPTS)]
    cases += [(n, t, True) for n, t in CHAT_CASES.get(name, [])]
    out_cases = []
    for case_name, prompt, special in cases:
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=special)
        res = greedy(llm, ids, eog)
        out_cases.append({
            "name": case_name,
            "prompt": prompt,
            "special": special,
            "add_bos": add_bos,
            "prompt_ids": [int(t) for t in ids],
            **res,
            "prompt_text": text(llm, ids, special=True),
            "generated_text": text(llm, res["generated_ids"], special=True),
        })
        print(f"  {name}/{case_name}: {len(ids)} prompt ids, {len(res['generated_ids'])} generated"
              f"{' (EOG)' if res['stopped_on_eog'] else ''}, min margin {min(res['margins']):.4f}: "
              f"{out_cases[-1]['generated_text']!r}")
    swa_full = llm.context_params.swa_full
    llm.close()
    return {
        "model": {"file": MODELS[name], "sha256": sha256_file(path), "size": path.stat().st_size, **info},
        "settings": {**SETTINGS, "max_new_tokens": MAX_NEW_TOKENS, "kv_cache_type": "f16",
                     "swa_full": bool(swa_full),
                     "sampling": "argmax of the last position's logits (lowest id on ties), no penalties",
                     "stop": "after an end-of-generation token (llama_vocab_is_eog), included"},
        "cases": out_cases,
    }


def dumps(obj) -> str:
    """JSON with indent 1, but lists of numbers and {id, logit} pairs kept on one line."""
    s = json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=True)
    s = re.sub(r"\[\s*(-?[0-9][^\[\]{}\"]*?)\s*\]",
               lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", s)
    return re.sub(r'\{\s*"id": (\d+),\s*"logit": ([^\s{}]+)\s*\}', r'{"id": \1, "logit": \2}', s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--assets", type=Path,
                    default=Path(os.environ.get("EMBRACE_ASSETS", Path.home() / ".cache" / "embrace" / "assets")))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", choices=sorted(MODELS), help="models to regenerate (default: all)")
    args = ap.parse_args()

    versions = version_info()
    print(f"llama-cpp-python {versions['llama_cpp_python']}, llama.cpp {versions.get('llama_cpp_commit', '?')}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(MODELS):
        path = args.assets / MODELS[name]
        if not path.is_file():
            print(f"missing model file {path} (run scripts/fetch-assets)", file=sys.stderr)
            return 1
        doc = {"llama_cpp": versions, **run_model(name, path)}
        dest = args.out / f"{name}.json"
        dest.write_text(dumps(doc) + "\n", encoding="utf-8")
        print(f"wrote {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
