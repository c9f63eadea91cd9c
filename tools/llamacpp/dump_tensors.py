#!/usr/bin/env python3
"""Dump llama.cpp's intermediate tensors for one prompt, to find where Embrace's arithmetic parts
from llama.cpp's (the tool behind the bit-for-bit parity of `--test gguf_models`).

Run with the venv that ./setup builds:

    tools/llamacpp/.venv/bin/python tools/llamacpp/dump_tensors.py MODEL.gguf OUT.npz \\
        --ids '[2, 818, 5279, 529, 7001, 563]' --layers 0,1 [--steps 1]

llama.cpp calls back after every node of its graph (`cb_eval`); this keeps the f32 / f16 nodes
whose names end in `-<layer>` for the layers asked for, plus `inp_embd`, `inp_scaled` and the
`result_*` nodes, and saves them to OUT.npz as float32 arrays in ggml's shape order reversed
(numpy order). A key is `s<step>:<name>#<k>`: step 0 is the prompt batch, step i the i-th greedy
decode step, and `k` counts nodes of the same name (ggml names a tensor again after a reshape or a
rotation: `Qcur-0#0` is the projection, `#2` the rotated queries). The settings are
gen_reference.py's (n_ctx 512, one batch, 2 threads, f16 KV cache, flash attention off); with the
callback the scheduler computes the same nodes with the same kernels.
"""

from __future__ import annotations

import argparse
import ctypes
import json

import numpy as np

import llama_cpp
from llama_cpp import llama_cpp as ll

import gen_reference as G


class GgmlTensor(ctypes.Structure):
    """`struct ggml_tensor` of the vendored ggml (GGML_MAX_DIMS 4, GGML_MAX_SRC 10,
    GGML_MAX_OP_PARAMS 64, GGML_MAX_NAME 64)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * 4),
        ("nb", ctypes.c_size_t * 4),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * 64),
        ("extra", ctypes.c_void_p),
        ("padding", ctypes.c_char * 8),
    ]


GGML_TYPE_F32, GGML_TYPE_F16 = 0, 1
GLOBAL_NODES = ("inp_embd", "inp_scaled")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="GGUF file")
    ap.add_argument("out", help="output .npz")
    ap.add_argument("--ids", required=True, help="prompt token ids as a JSON list")
    ap.add_argument("--layers", default="0", help="comma-separated layer numbers (default 0)")
    ap.add_argument("--steps", type=int, default=0, help="greedy decode steps to dump after the prompt")
    args = ap.parse_args()

    suffixes = tuple("-" + layer for layer in args.layers.split(","))
    store: dict[str, np.ndarray] = {}
    seen: dict[str, int] = {}
    step = [0]

    def on_node(tensor_ptr, ask, _user_data):
        if ask:
            return True  # ask for every node, so that it is computed before the callback
        t = ctypes.cast(tensor_ptr, ctypes.POINTER(GgmlTensor)).contents
        name = t.name.decode()
        keep = name.endswith(suffixes) or name.startswith("result") or name in GLOBAL_NODES
        if not keep or t.type not in (GGML_TYPE_F32, GGML_TYPE_F16):
            return True
        ne, nb = list(t.ne), list(t.nb)
        item = 4 if t.type == GGML_TYPE_F32 else 2
        span = sum((n - 1) * s for n, s in zip(ne, nb)) + item
        raw = bytes((ctypes.c_char * span).from_address(t.data))
        dtype = np.float32 if t.type == GGML_TYPE_F32 else np.float16
        array = np.ndarray(shape=ne[::-1], dtype=dtype, buffer=raw, strides=nb[::-1])
        key = f"s{step[0]}:{name}"
        k = seen.get(key, 0)
        seen[key] = k + 1
        store[f"{key}#{k}"] = np.ascontiguousarray(array).astype(np.float32)
        return True

    callback = ll.ggml_backend_sched_eval_callback(on_node)
    default_params = ll.llama_context_default_params

    def params_with_callback():
        params = default_params()
        params.cb_eval = callback
        params.cb_eval_user_data = None
        return params

    # llama_cpp.Llama reads its context parameters from this function.
    ll.llama_context_default_params = params_with_callback
    llm = llama_cpp.Llama(model_path=args.model, verbose=False, **G.SETTINGS)
    llm.reset()
    llm.eval(json.loads(args.ids))
    for s in range(args.steps):
        logits = G.last_logits(llm)
        step[0] = s + 1
        llm.eval([int(np.argmax(logits))])
    np.savez(args.out, **store)
    for key, value in store.items():
        print(key, value.shape)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
