#!/usr/bin/env python3
"""llama.cpp speed and memory reference for Embrace's GGUF generation (prints JSON, writes nothing).

Run with the venv that ./setup builds:  tools/llamacpp/.venv/bin/python tools/llamacpp/bench.py

For each model (see gen_reference.py) and n_threads in (1, 2), a fresh subprocess
  - loads the model (n_ctx 512, n_batch 512, mmap, flash attention off, f16 KV cache),
  - prompt processing (pp): a fixed 128-token prompt (repeated English text, llama.cpp's tokenizer,
    the BOS counted in where the vocab adds one) evaluated in one batch (llm.reset(); llm.eval(ids));
    one warm-up, then the best of 3 runs -> tokens/s,
  - decode (tg): after the 128-token prompt, 64 greedy steps (argmax, eval([tok]) one token at a time);
    best of 3 runs -> tokens/s (includes llama-cpp-python's small per-call Python overhead),
  - peak RSS: resource.getrusage(RUSAGE_SELF).ru_maxrss after loading and all runs (the model is
    mmapped, so its touched pages count), plus the RSS right after loading.
Subprocesses run one after another so RSS is per model and timings do not overlap.

Options: --models smollm2 gemma3, --threads 1 2, --runs 3, --pp 128, --tg 64.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TEXT = ("The quick brown fox jumps over the lazy dog while the sun sets slowly behind the distant "
        "hills, and the villagers gather in the square to tell old stories about the river. ")


def rss_now_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def worker(model: str, threads: int, assets: Path, runs: int, n_pp: int, n_tg: int) -> dict:
    import numpy as np
    import llama_cpp
    from llama_cpp import llama_cpp as ll
    import gen_reference as G

    path = assets / G.MODELS[model]
    settings = {**G.SETTINGS, "n_threads": threads, "n_threads_batch": threads}
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(path), verbose=False, **settings)
    load_s = time.perf_counter() - t0
    rss_loaded = rss_now_kib()

    vocab = ll.llama_model_get_vocab(llm._model.model)
    add_bos = bool(ll.llama_vocab_get_add_bos(vocab))
    ids = llm.tokenize((TEXT * 20).encode(), add_bos=add_bos, special=False)[:n_pp]
    assert len(ids) == n_pp, len(ids)
    n_vocab = llm.n_vocab()

    def pp() -> float:
        llm.reset()
        t = time.perf_counter()
        llm.eval(ids)
        return time.perf_counter() - t

    def tg() -> float:
        pp()
        t = time.perf_counter()
        for _ in range(n_tg):
            logits = np.ctypeslib.as_array(ll.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(n_vocab,))
            llm.eval([int(np.argmax(logits))])
        return time.perf_counter() - t

    pp()  # warm-up
    pp_times = [pp() for _ in range(runs)]
    tg_times = [tg() for _ in range(runs)]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    llm.close()
    return {
        "model": model,
        "n_threads": threads,
        "load_s": round(load_s, 3),
        "pp_tokens": n_pp,
        "pp_tok_s": round(n_pp / min(pp_times), 1),
        "pp_runs_s": [round(x, 4) for x in pp_times],
        "tg_tokens": n_tg,
        "tg_tok_s": round(n_tg / min(tg_times), 1),
        "tg_runs_s": [round(x, 4) for x in tg_times],
        "rss_after_load_mib": round(rss_loaded / 1024, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "model_file_mib": round(path.stat().st_size / 2**20, 1),
    }


def main() -> int:
    import gen_reference as G

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--assets", type=Path,
                    default=Path(os.environ.get("EMBRACE_ASSETS", Path.home() / ".cache" / "embrace" / "assets")))
    ap.add_argument("--models", nargs="*", default=list(G.MODELS), choices=sorted(G.MODELS))
    ap.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pp", type=int, default=128)
    ap.add_argument("--tg", type=int, default=64)
    ap.add_argument("--worker", nargs=2, metavar=("MODEL", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        res = worker(args.worker[0], int(args.worker[1]), args.assets, args.runs, args.pp, args.tg)
        print(json.dumps(res))
        return 0

    import llama_cpp
    load0 = [round(x, 2) for x in os.getloadavg()]
    results = []
    for model in args.models:
        for threads in args.threads:
            cmd = [sys.executable, __file__, "--worker", model, str(threads), "--assets", str(args.assets),
                   "--runs", str(args.runs), "--pp", str(args.pp), "--tg", str(args.tg)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(f"{model} t={threads}: pp {results[-1]['pp_tok_s']} tok/s, tg {results[-1]['tg_tok_s']} tok/s, "
                  f"peak RSS {results[-1]['peak_rss_mib']} MiB", file=sys.stderr)
    print(json.dumps({
        "llama_cpp_python": llama_cpp.__version__,
        "system_info": llama_cpp.llama_cpp.llama_print_system_info().decode().strip(),
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": load0,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "results": results,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
