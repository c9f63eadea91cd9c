#!/usr/bin/env python3
"""The transformers side of `cargo bench -p embrace-pipelines --bench pipeline_throughput`.

    bench_pipelines.py TASK MODEL_DIR INPUTS.txt THREADS BATCH_SIZE [TOP_K]

Runs `transformers.pipeline(TASK, model=MODEL_DIR, device=-1)` over every line of INPUTS.txt
(streamed through a generator, as the docs recommend for large inputs) with the given batch size
and torch thread count, and prints one JSON object: {"seconds", "inputs", "peak_rss_kb"}.
"""

import json
import resource
import sys
import time


def main() -> None:
    task, model_dir, path, threads, batch_size = sys.argv[1:6]
    top_k = int(sys.argv[6]) if len(sys.argv) > 6 else None
    import torch

    torch.set_num_threads(int(threads))
    torch.set_num_interop_threads(1)
    from transformers import pipeline

    pipe = pipeline(task, model=model_dir, device=-1)
    lines = open(path, encoding="utf-8").read().split("\n")
    kwargs = {"top_k": top_k} if top_k is not None else {}
    pipe(lines[:8], batch_size=int(batch_size), **kwargs)  # warm-up
    start = time.perf_counter()
    count = 0
    for _ in pipe((line for line in lines), batch_size=int(batch_size), **kwargs):
        count += 1
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "inputs": count, "peak_rss_kb": peak}))


if __name__ == "__main__":
    main()
