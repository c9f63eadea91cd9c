#!/usr/bin/env python3
"""Interop check: a token-classification LoRA adapter written by `embrace train
token-classification --adapter lora` loads in Python `peft` (PeftModel over
BertForTokenClassification, merged) and transformers' `pipeline("token-classification",
aggregation_strategy="simple")` finds the same entities, spans and scores as
`embrace pipeline ner` on the same folder.

Usage: tools/oracle/.venv/bin/python tools/oracle/check_peft_ner.py ADAPTER_DIR
       [--embrace target/release/embrace] [--base EMBRACE_ASSETS/all-minilm-l6-v2]
Exits non-zero when the entities differ or a score differs by more than 1e-4.
"""

import argparse
import json
import os
import subprocess

ASSETS = os.environ.get("EMBRACE_ASSETS", os.path.expanduser("~/.cache/embrace/assets"))
TEXTS = [
    "Barack Obama visited the Empire State Building in New York",
    "Watching the Lakers game with @john at Staples Center tonight",
    "I love my new iPhone from Apple",
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("adapter")
    p.add_argument("--embrace", default="target/release/embrace")
    p.add_argument("--base", default=os.path.join(ASSETS, "all-minilm-l6-v2"))
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from peft import PeftModel
    from transformers import AutoTokenizer, BertForTokenClassification, pipeline

    cfg = json.load(open(os.path.join(a.adapter, "config.json"), encoding="utf-8"))
    id2label = {int(k): v for k, v in cfg["id2label"].items()}
    model = BertForTokenClassification.from_pretrained(
        a.base, num_labels=len(id2label), id2label=id2label, label2id=cfg["label2id"])
    model = PeftModel.from_pretrained(model, a.adapter).merge_and_unload().eval()
    ner = pipeline("token-classification", model=model,
                   tokenizer=AutoTokenizer.from_pretrained(a.base), aggregation_strategy="simple")
    worst = 0.0
    for text in TEXTS:
        py = ner(text)
        out = subprocess.run([a.embrace, "pipeline", "ner", "-m", a.adapter,
                              "--aggregation-strategy", "simple", text],
                             capture_output=True, text=True, check=True)
        rs = json.loads(out.stdout)
        key = lambda e: (e["entity_group"], e["word"], e["start"], e["end"])  # noqa: E731
        print(text)
        print("  peft:   ", [(e["entity_group"], e["word"], round(float(e["score"]), 4)) for e in py])
        print("  embrace:", [(e["entity_group"], e["word"], round(e["score"], 4)) for e in rs])
        if [key(e) for e in py] != [key(e) for e in rs]:
            raise SystemExit("entities differ")
        for x, y in zip(py, rs):
            worst = max(worst, abs(float(x["score"]) - y["score"]))
    print(f"same entities; max score difference {worst:.2e}")
    if worst > 1e-4:
        raise SystemExit("scores differ")


if __name__ == "__main__":
    main()
