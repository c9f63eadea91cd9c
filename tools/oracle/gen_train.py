#!/usr/bin/env python3
"""Training-layer golden files for Embrace, produced with PyTorch + transformers (CPU, float32).

Writes tests/golden/train/bert-seq-cls-step.safetensors from the tiny random checkpoint
tests/golden/models/tiny/bert-seq-cls (BertForSequenceClassification, dropouts 0) and its golden
inputs (3 right-padded sequences):

  labels                      int64 [3]   the class of each sequence: [0, 2, 1]
  loss                        f32 []      mean cross-entropy of the padded batch (model.train(), no dropout)
  grad.<parameter name>       f32         d loss / d parameter, for every parameter of the model
                                          (names as in model.safetensors)

and tests/golden/train/bert-seq-cls-lora-step.safetensors, the same step with a PEFT LoRA adapter
(r 4, alpha 8, target_modules query and value, dropout 0, task SEQ_CLS: the classifier is trained
too). lora_B starts at small deterministic values instead of PEFT's zeros, so that lora_A gets a
non-zero gradient:

  labels, loss
  init.<name>                 f32         the starting value of each trainable tensor (lora_A,
                                          lora_B, classifier), by transformers-style name
  grad.<name>                 f32         its gradient

and tests/golden/train/peft-adapter/ (adapter_config.json + adapter_model.safetensors as
`save_pretrained` writes them), the format Embrace's adapters follow;

and tests/golden/train/bert-token-cls-lora-step.safetensors, one step of the tiny random
tests/golden/models/tiny/bert-token-cls (BertForTokenClassification) with a PEFT LoRA adapter
(r 4, alpha 8, query and value, task TOKEN_CLS), token labels with -100 on [CLS], on padding and
on some word pieces (as run_ner aligns them), lora_B started at small deterministic values:

  labels                      int64 [3, seq]  class per token, -100 where ignored
  loss, init.<name>, grad.<name>  as above

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
    lora_step(args.out, src, golden, labels)
    token_lora_step(args.out)
    meta = {
        "torch": torch.__version__,
        "source": "tests/golden/models/tiny/bert-seq-cls",
        "loss": float(out.loss),
        "parameters": len(tensors) - 2,
    }
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta))


def plain(name):
    """A PEFT parameter name as Embrace names it:
    base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.default.weight
    -> bert.encoder.layer.0.attention.self.query.lora_A.weight; classifier.modules_to_save..."""
    name = name.replace("base_model.model.", "").replace(".default", "")
    return name.replace("classifier.modules_to_save.", "classifier.")


def trainable_with_lora_b(model, gen):
    """The trainable parameters of a PEFT model by name, lora_B set to small values drawn from
    `gen` (PEFT starts it at zero, which would give lora_A a zero gradient)."""
    trainable = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if "lora_B" in name:
            with torch.no_grad():
                param.copy_(torch.randn(param.shape, generator=gen) * 0.05)
        trainable[name] = param
    return trainable


def step_tensors(labels, loss, trainable):
    """The golden of one step: labels, loss, and each trainable tensor's start value and gradient."""
    tensors = {"labels": labels, "loss": loss.detach().reshape(())}
    for name, param in trainable.items():
        tensors[f"init.{plain(name)}"] = param.detach().clone().contiguous()
        tensors[f"grad.{plain(name)}"] = param.grad.detach().contiguous()
    return tensors


def lora_step(out_dir, src, golden, labels):
    from peft import LoraConfig, TaskType, get_peft_model

    torch.manual_seed(1)
    base = BertForSequenceClassification.from_pretrained(src, attn_implementation="eager")
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, lora_dropout=0.0,
                        target_modules=["query", "value"])
    model = get_peft_model(base, config)
    model.train()
    gen = torch.Generator().manual_seed(2)
    trainable = trainable_with_lora_b(model, gen)
    out = model(input_ids=golden["input_ids"], attention_mask=golden["attention_mask"],
                token_type_ids=golden["token_type_ids"], labels=labels)
    out.loss.backward()

    tensors = step_tensors(labels, out.loss, trainable)
    save_file(tensors, os.path.join(out_dir, "bert-seq-cls-lora-step.safetensors"))
    model.save_pretrained(os.path.join(out_dir, "peft-adapter"))
    print("lora loss", float(out.loss), "trainable", sorted(plain(n) for n in trainable))


def token_lora_step(out_dir):
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import BertForTokenClassification

    src = os.path.join(ROOT, "tests/golden/models/tiny/bert-token-cls")
    golden = load_file(os.path.join(src, "golden.safetensors"))
    torch.manual_seed(3)
    base = BertForTokenClassification.from_pretrained(src, attn_implementation="eager")
    model = get_peft_model(base, LoraConfig(task_type=TaskType.TOKEN_CLS, r=4, lora_alpha=8,
                                            lora_dropout=0.0, target_modules=["query", "value"]))
    model.train()
    gen = torch.Generator().manual_seed(4)
    trainable = trainable_with_lora_b(model, gen)
    mask = golden["attention_mask"]
    num_labels = base.config.num_labels
    labels = torch.randint(0, num_labels, mask.shape, generator=gen)
    labels[mask == 0] = -100
    labels[:, 0] = -100  # [CLS]
    labels[:, 2::3] = -100  # continuation word pieces
    out = model(input_ids=golden["input_ids"], attention_mask=mask,
                token_type_ids=golden["token_type_ids"], labels=labels)
    out.loss.backward()

    tensors = step_tensors(labels, out.loss, trainable)
    save_file(tensors, os.path.join(out_dir, "bert-token-cls-lora-step.safetensors"))
    print("token lora loss", float(out.loss), "labelled", int((labels != -100).sum()))


if __name__ == "__main__":
    main()
