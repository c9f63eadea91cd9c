#!/usr/bin/env python3
"""The PyTorch side of `cargo bench -p embrace-models --bench sentence_embeddings`.

Runs sentence-transformers (PyTorch, CPU) on the scenarios the Rust benchmark gives it and prints
one JSON object: {"scenarios": {name: {"seconds": ..., "sentences": ...}}, "peak_rss_kb": ...}.

    bench_sentence_transformers.py MODEL_DIR SCENARIOS.json THREADS

SCENARIOS.json: {"warmup": [texts], "scenarios": [{"name", "batch_size", "texts", "repeat"}]}.
Every scenario encodes its texts in batches of batch_size (sentence-transformers' own batching,
which sorts by length), `repeat` times; the time of the fastest repeat is reported.
"""

import json
import resource
import sys
import time


def main() -> None:
    model_dir, scenarios_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    model.eval()
    spec = json.load(open(scenarios_path))
    results = {}
    with torch.inference_mode():
        model.encode(spec["warmup"], batch_size=8, convert_to_numpy=True)
        for sc in spec["scenarios"]:
            best = float("inf")
            for _ in range(sc["repeat"]):
                start = time.perf_counter()
                if sc["batch_size"] == 1:
                    for text in sc["texts"]:
                        model.encode([text], batch_size=1, convert_to_numpy=True)
                else:
                    model.encode(sc["texts"], batch_size=sc["batch_size"], convert_to_numpy=True)
                best = min(best, time.perf_counter() - start)
            results[sc["name"]] = {"seconds": best, "sentences": len(sc["texts"])}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"scenarios": results, "peak_rss_kb": peak, "max_seq_length": model.max_seq_length}))


if __name__ == "__main__":
    main()
