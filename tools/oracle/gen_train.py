#!/usr/bin/env python3
"""Training-layer golden files for Embrace, produced with PyTorch + transformers (CPU, float32).

Writes tests/golden/train/bert-seq-cls-step.safetensors from the tiny random checkpoint
tests/golden/models/tiny/bert-seq-cls (BertForSequenceClassification, dropouts 0) and its golden
inputs (3 right-padded sequences):

  labels                      int64 [3]   the class of each sequence: [0, 2, 1]
  loss                        f32 []      mean cross-entropy of the padded batch (model.train(), no dropout)
  grad.<parameter name>       f32         d loss / d parameter, for every parameter of the model
                                          (names as in model.safetensors)

Usage: tools/oracle/.venv/bin/python tools/oracle/gen_train.py [--out tests/golden/train]
"""

import argparse
import json
import os

import torch
from safetensors.torch import load_file, save_file
from transformers import BertForSequenceClassification

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(ROOT, "tests/golden/train"))
    args = parser.parse_args()
    torch.manual_seed(0)
    src = os.path.join(ROOT, "tests/golden/models/tiny/bert-seq-cls")
    model = BertForSequenceClassification.from_pretrained(src, attn_implementation="eager")
    model.train()  # dropouts are 0 in this config: train mode changes nothing but is what training uses
    golden = load_file(os.path.join(src, "golden.safetensors"))
    labels = torch.tensor([0, 2, 1], dtype=torch.int64)
    out = model(
        input_ids=golden["input_ids"],
        attention_mask=golden["attention_mask"],
        token_type_ids=golden["token_type_ids"],
        labels=labels,
    )
    out.loss.backward()
    tensors = {"labels": labels, "loss": out.loss.detach().reshape(())}
    for name, param in model.named_parameters():
        if param.grad is None:
            continue
        tensors[f"grad.{name}"] = param.grad.detach().contiguous()
    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, "bert-seq-cls-step.safetensors"))
    meta = {
        "torch": torch.__version__,
        "source": "tests/golden/models/tiny/bert-seq-cls",
        "loss": float(out.loss),
        "parameters": len(tensors) - 2,
    }
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
