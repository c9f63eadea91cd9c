#!/usr/bin/env python3
"""Model-layer golden files for Embrace, produced with transformers and sentence-transformers (CPU, float32).

Writes, under tests/golden/models/ (or --out):

  meta.json                          versions of torch / transformers / sentence-transformers / safetensors,
                                     the special-token conventions and the input rules below

A) TINY RANDOM CHECKPOINTS   tiny/<arch>-<head>/
   arch in bert, distilbert, roberta, xlm-roberta, electra, modernbert;
   head in base, seq-cls, token-cls, qa, masked-lm, multiple-choice
   (<Arch>Model, <Arch>ForSequenceClassification, ...ForTokenClassification, ...ForQuestionAnswering,
   ...ForMaskedLM, ...ForMultipleChoice), plus
     tiny/bert-seq-cls-bin/          BertForSequenceClassification as pytorch_model.bin (torch.save of the
                                     model.safetensors state dict, which is then removed: transformers 5
                                     ignores save_pretrained(safe_serialization=False))
     tiny/bert-seq-cls-multilabel/   problem_type "multi_label_classification", num_labels 4
     tiny/bert-seq-cls-regression/   problem_type "regression", num_labels 1
   Each folder: config.json + model.safetensors (model.save_pretrained(dir)), and golden.safetensors.

   Config: vocab_size 99, hidden 32, 2 layers, 4 heads, intermediate 37, max_position_embeddings 64
   (roberta / xlm-roberta: 66, positions are offset by padding_idx + 1), type_vocab_size 2 (bert,
   electra) or 1 (roberta family), dropouts 0, hidden_act the architecture's default (gelu).
   ELECTRA: embedding_size 16 (embeddings_project 16 -> 32). DistilBERT: dim 32, n_layers 2, n_heads 4,
   hidden_dim 37. ModernBERT: hidden 32, 3 layers, 4 heads, intermediate 37, local_attention 4,
   global_attn_every_n_layers 2 (layer_types full, sliding, full), attn_implementation "eager".
   seq-cls: num_labels 3, id2label {0: NEG, 1: NEU, 2: POS}; token-cls: num_labels 3,
   id2label {0: O, 1: B-PER, 2: I-PER}. All models are built with attn_implementation "eager".
   Weights: torch.manual_seed(crc32(folder name)), the architecture's own init, then every 1-D
   parameter (biases, LayerNorm weights/biases) gets N(0, 0.1) noise added (generator seeded with
   crc32(folder name) + 1), so that a loader that ignores biases or norm weights fails the goldens.
   model.eval(); everything under torch.no_grad().

   Special tokens (ids < 5; random ids are drawn from [5, 99), so they never occur inside a sequence):
     bert, distilbert, electra: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 (the configs define only
                                pad_token_id=0; CLS/SEP are a convention of these goldens)
     roberta, xlm-roberta:      <s>=0 (bos) <pad>=1 </s>=2 (eos), the config defaults
     modernbert:                pad_token_id=0, bos_token_id=cls_token_id=2, eos_token_id=sep_token_id=3
   Inputs: 3 sequences of real lengths 7, 12, 4: [CLS/<s>] + random ids + [SEP/</s>], right-padded with
   the pad id to 12. Random ids: torch.Generator seeded with crc32("inputs:" + arch) (so all heads of
   one arch see the same batch). token_type_ids are zeros, except for bert/electra where positions
   6..11 of sequence 1 (the length-12 one) are type 1.
   multiple-choice: input shape [2, 3, 12] (2 examples x 3 choices), real lengths [[9, 12, 5],
   [6, 3, 10]], built the same way (generator crc32("mc-inputs:" + arch)); for bert/electra the
   positions [len // 2, len) of every choice are type 1.

   golden.safetensors (float32 outputs, int64 inputs; b = 3, s = 12, H = 32, V = 99, L = num_labels):
     input_ids        int64 [b, s]   ([2, 3, 12] for multiple-choice)
     attention_mask   int64 [b, s]
     token_type_ids   int64 [b, s]   only for archs that take them (bert, roberta, xlm-roberta, electra)
     outputs of the padded batch:
       base:            last_hidden_state [b, s, H]; pooler_output [b, H] (bert, roberta, xlm-roberta
                        only: electra, distilbert, modernbert have no pooler)
       seq-cls:         logits [b, L]
       token-cls:       logits [b, s, 3]
       qa:              start_logits [b, s], end_logits [b, s]
       masked-lm:       logits [b, s, V]
       multiple-choice: logits [2, 3]
       every head:      hidden_states.last = output_hidden_states=True's hidden_states[-1]
                        ([b, s, H]; [6, 12, H] for multiple-choice): the encoder output the head reads
                        (for every arch, ModernBERT included, it equals the base model's
                        last_hidden_state, i.e. after ModernBERT's final_norm).
     single.<i>.<name> the same outputs (including hidden_states.last) for sequence i run alone,
                       unpadded: batch of 1, length = its real length, its own token_type_ids slice;
                       e.g. single.0.logits [1, 7, V], single.2.last_hidden_state [1, 4, H].
                       multiple-choice: example i alone, [1, 3, m_i] with m_i = the longest of its
                       3 choices (12 and 10), choices still padded among themselves:
                       single.<i>.logits [1, 3], single.<i>.hidden_states.last [3, m_i, H].
   Values at padded positions are whatever the model computes there (not meaningful; compare only
   positions where attention_mask is 1).

B) REAL MODELS   real/all-minilm-l6-v2/, real/splade-tiny/   (weights come from EMBRACE_ASSETS at test
   time; nothing of them is copied here)
     inputs.json       {"texts": [6 texts], "tokenizer": ..., "note": ...}
     golden.safetensors:
       input_ids, attention_mask, token_type_ids   int64 [6, S]: the asset's tokenizer.json with
                          truncation and padding disabled, add_special_tokens=True, right-padded by
                          this script with pad id 0 to the longest (S)
       last_hidden_state  [6, S, H] of the padded batch (MiniLM: AutoModel = BertModel, H 384;
                          SPLADE: BertForMaskedLM output_hidden_states=True, hidden_states[-1], H 128)
       single.<i>.last_hidden_state [1, len_i, H], text i alone, unpadded
       MiniLM only:  sentence_embedding [6, 384] = SentenceTransformer(asset dir, device="cpu")
                     .encode(texts, convert_to_numpy=True) (Transformer -> mean Pooling -> Normalize)
       SPLADE only:  logits_stride<K> [6, S, ceil(30522 / K)] = logits[:, :, ::K] of the padded batch,
                     single.<i>.logits_stride<K> [1, len_i, ceil(30522 / K)] (K = SPLADE_LOGITS_STRIDE;
                     full logits, or stride 7, would be several MB)
   All real-model forwards use attn_implementation "eager" (the SentenceTransformer one uses its own
   default loading).

C) TINY SENTENCE-TRANSFORMERS MODELS   sentence-transformers/<name>/ for name in
   mean, cls, max, lasttoken (Transformer -> Pooling(mode)), mean-dense-normalize (Transformer ->
   Pooling mean -> Dense 32 -> 16, tanh -> Normalize). All share one tiny BertModel (hidden 32, 2 layers,
   4 heads, intermediate 37, max_position_embeddings 64, seed crc32("st-bert"), same 1-D noise as A)
   and a WordPiece vocabulary built here (ST_VOCAB: [PAD] [UNK] [CLS] [SEP] [MASK], punctuation,
   lowercase words, ## suffixes; saved by BertTokenizerFast, so tokenizer.json exists), max_seq_length 64.
   Saved with SentenceTransformer.save(dir, create_model_card=False).
     inputs.json        {"texts": [4 texts]} (one contains a word outside the vocabulary -> [UNK])
     golden.safetensors input_ids, attention_mask, token_type_ids  int64 [4, S] (model.tokenize(texts),
                        padded to the longest), sentence_embedding [4, D] (D = 32, or 16 for
                        mean-dense-normalize) from model.encode(texts, batch_size=4, convert_to_numpy=True)

Deterministic: fixed seeds, one torch thread, no timestamps; a rerun writes byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import safetensors  # noqa: E402
import sentence_transformers  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
logging.getLogger("sentence_transformers").setLevel(logging.ERROR)  # e.g. "tokenize is deprecated"

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "golden" / "models"

ARCHS = ["bert", "distilbert", "roberta", "xlm-roberta", "electra", "modernbert"]
HEADS = ["base", "seq-cls", "token-cls", "qa", "masked-lm", "multiple-choice"]
CLASS_PREFIX = {
    "bert": "Bert", "distilbert": "DistilBert", "roberta": "Roberta", "xlm-roberta": "XLMRoberta",
    "electra": "Electra", "modernbert": "ModernBert",
}
HEAD_SUFFIX = {
    "base": "Model", "seq-cls": "ForSequenceClassification", "token-cls": "ForTokenClassification",
    "qa": "ForQuestionAnswering", "masked-lm": "ForMaskedLM", "multiple-choice": "ForMultipleChoice",
}
# (cls/bos, sep/eos, pad) per architecture
SPECIALS = {
    "bert": (2, 3, 0), "distilbert": (2, 3, 0), "electra": (2, 3, 0),
    "roberta": (0, 2, 1), "xlm-roberta": (0, 2, 1), "modernbert": (2, 3, 0),
}
HAS_TOKEN_TYPES = {"bert", "roberta", "xlm-roberta", "electra"}
TYPE1_ARCHS = {"bert", "electra"}
SEQ_LENS = [7, 12, 4]
MC_LENS = [[9, 12, 5], [6, 3, 10]]
VOCAB = 99
FIRST_RANDOM_ID = 5
SEQ_CLS_LABELS = {0: "NEG", 1: "NEU", 2: "POS"}
TOKEN_CLS_LABELS = {0: "O", 1: "B-PER", 2: "I-PER"}
NOISE_STD = 0.1

REAL_TEXTS = [
    "Hello world!",
    "Is this the right way?",
    "The café on 5th Avenue opens at 7:30 a.m. every day.",
    "Rust's ownership model guarantees memory safety without a garbage collector.",
    "Embeddings map sentences to vectors, so that similar meanings end up close together.",
    "In 2023, researchers trained 17 models on 1.5 billion tokens; surprisingly, the smallest one "
    "performed best on 3 of the 8 benchmarks, while the largest struggled with long documents.",
]
SPLADE_LOGITS_STRIDE = 97

ST_TEXTS = [
    "the cat sat on the mat.",
    "a quick brown fox jumps over the lazy dogs!",
    "hello world, this is a xylophone test.",
    "the dogs and cats are playing happily in the small garden, while the old man is reading a book "
    "and the children are laughing.",
]
ST_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list(".,!?'-:;()\"")
    + """a an the and or but is are was were be been this that these those it its i you he she we they
    cat dog fox mat sat on in at of to for with from over under by while what when where who how why
    quick brown lazy jump hello world test small big old new man woman child children book read
    garden house car tree sun moon day night good bad happy happ laugh play run walk talk sing word
    one two three red blue green little very not no yes all some many more most""".split()
    + ["##s", "##es", "##ing", "##ed", "##ly", "##er", "##est", "##ily", "##y", "##n"]
)
ST_VARIANTS = {
    "mean": ("mean", False),
    "cls": ("cls", False),
    "max": ("max", False),
    "lasttoken": ("lasttoken", False),
    "mean-dense-normalize": ("mean", True),
}

META_NOTES = {
    "padding": "outputs at padded positions are not meaningful; compare only where attention_mask is 1",
    "modernbert.hidden_states": "output_hidden_states gives num_hidden_layers + 1 tensors (embeddings output "
                                "first); hidden_states[-1] is the final_norm output, equal to last_hidden_state",
    "modernbert.sliding_window": "sliding layers mask keys with |q - k| > local_attention // 2 "
                                 "(bidirectional window of local_attention + 1 tokens), on top of the padding mask",
    "modernbert.rope_theta": "full_attention layers 160000, sliding_attention layers 10000 (config.rope_parameters)",
}


# ---------------------------------------------------------------------------------------------------
# output helpers


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def crc(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def save_golden(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu().contiguous()
        if v.is_floating_point():
            v = v.to(torch.float32)
        else:
            v = v.to(torch.int64)
        out[k] = v.clone()
    save_file(out, str(path))


def perturb_1d(model: torch.nn.Module, seed: int) -> None:
    """Add N(0, NOISE_STD) to every 1-D parameter (biases, norm weights) so they are not 0 / 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if p.dim() == 1:
                p.add_(torch.randn(p.shape, generator=g) * NOISE_STD)


# ---------------------------------------------------------------------------------------------------
# A) tiny random checkpoints


def tiny_config(arch: str, head: str, extra: dict):
    common = dict(vocab_size=VOCAB)
    if head == "seq-cls":
        common.update(num_labels=3, id2label=dict(SEQ_CLS_LABELS), label2id={v: k for k, v in SEQ_CLS_LABELS.items()})
    elif head == "token-cls":
        common.update(num_labels=3, id2label=dict(TOKEN_CLS_LABELS),
                      label2id={v: k for k, v in TOKEN_CLS_LABELS.items()})
    common.update(extra)
    bert_like = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    if arch == "bert":
        cfg = transformers.BertConfig(max_position_embeddings=64, type_vocab_size=2, pad_token_id=0,
                                      **bert_like, **common)
    elif arch == "electra":
        cfg = transformers.ElectraConfig(max_position_embeddings=64, type_vocab_size=2, embedding_size=16,
                                         pad_token_id=0, **bert_like, **common)
    elif arch == "roberta":
        cfg = transformers.RobertaConfig(max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
                                         bos_token_id=0, eos_token_id=2, **bert_like, **common)
    elif arch == "xlm-roberta":
        cfg = transformers.XLMRobertaConfig(max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
                                            bos_token_id=0, eos_token_id=2, **bert_like, **common)
    elif arch == "distilbert":
        cfg = transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64,
                                            dropout=0.0, attention_dropout=0.0, qa_dropout=0.0,
                                            seq_classif_dropout=0.0, pad_token_id=0, **common)
    elif arch == "modernbert":
        cfg = transformers.ModernBertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                            intermediate_size=37, max_position_embeddings=64, local_attention=4,
                                            global_attn_every_n_layers=2, pad_token_id=0, bos_token_id=2,
                                            eos_token_id=3, cls_token_id=2, sep_token_id=3, **common)
    else:
        raise ValueError(arch)
    return cfg


def make_sequence(g: torch.Generator, arch: str, length: int, total: int):
    cls_id, sep_id, pad_id = SPECIALS[arch]
    body = torch.randint(FIRST_RANDOM_ID, VOCAB, (length - 2,), generator=g)
    ids = torch.cat([torch.tensor([cls_id]), body, torch.tensor([sep_id])])
    ids = torch.cat([ids, torch.full((total - length,), pad_id)])
    mask = torch.cat([torch.ones(length, dtype=torch.int64), torch.zeros(total - length, dtype=torch.int64)])
    return ids.to(torch.int64), mask


def tiny_inputs(arch: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(crc("inputs:" + arch))
    total = max(SEQ_LENS)
    rows = [make_sequence(g, arch, n, total) for n in SEQ_LENS]
    inputs = {"input_ids": torch.stack([r[0] for r in rows]), "attention_mask": torch.stack([r[1] for r in rows])}
    if arch in HAS_TOKEN_TYPES:
        tt = torch.zeros_like(inputs["input_ids"])
        if arch in TYPE1_ARCHS:
            tt[1, 6:12] = 1
        inputs["token_type_ids"] = tt
    return inputs


def tiny_mc_inputs(arch: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(crc("mc-inputs:" + arch))
    total = max(max(r) for r in MC_LENS)
    ids, masks, types = [], [], []
    for example in MC_LENS:
        rows = [make_sequence(g, arch, n, total) for n in example]
        ids.append(torch.stack([r[0] for r in rows]))
        masks.append(torch.stack([r[1] for r in rows]))
        tt = torch.zeros(len(example), total, dtype=torch.int64)
        if arch in TYPE1_ARCHS:
            for c, n in enumerate(example):
                tt[c, n // 2:n] = 1
        types.append(tt)
    inputs = {"input_ids": torch.stack(ids), "attention_mask": torch.stack(masks)}
    if arch in HAS_TOKEN_TYPES:
        inputs["token_type_ids"] = torch.stack(types)
    return inputs


def head_outputs(model, head: str, arch: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    res = {}
    if head == "base":
        res["last_hidden_state"] = out.last_hidden_state
        if getattr(out, "pooler_output", None) is not None:
            res["pooler_output"] = out.pooler_output
    elif head == "qa":
        res["start_logits"] = out.start_logits
        res["end_logits"] = out.end_logits
    else:
        res["logits"] = out.logits
    res["hidden_states.last"] = out.hidden_states[-1]
    return res


def gen_tiny_one(out_dir: Path, name: str, arch: str, head: str, extra_cfg: dict | None = None,
                 safe: bool = True) -> None:
    folder = out_dir / "tiny" / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    cls = getattr(transformers, CLASS_PREFIX[arch] + HEAD_SUFFIX[head])
    cfg = tiny_config(arch, head, extra_cfg or {})
    seed = crc(name)
    torch.manual_seed(seed)
    model = cls._from_config(cfg, attn_implementation="eager")
    perturb_1d(model, seed + 1)
    model.eval()
    model.save_pretrained(str(folder))
    if not safe:
        # transformers 5 dropped save_pretrained(safe_serialization=False) (the keyword is silently
        # swallowed, it always writes model.safetensors): convert to pytorch_model.bin ourselves, same
        # keys and tensors, torch.save's zip format, as older transformers wrote it.
        st_path = folder / "model.safetensors"
        state = load_file(str(st_path))
        torch.save({k: state[k].clone() for k in sorted(state)}, str(folder / "pytorch_model.bin"))
        st_path.unlink()
        reloaded = cls.from_pretrained(str(folder), attn_implementation="eager").eval()
        sd_a, sd_b = model.state_dict(), reloaded.state_dict()
        assert sd_a.keys() == sd_b.keys() and all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)

    mc = head == "multiple-choice"
    inputs = tiny_mc_inputs(arch) if mc else tiny_inputs(arch)
    tensors = dict(inputs)
    if arch == "bert" and head == "base":
        assert model.pooler is not None
    tensors.update(head_outputs(model, head, arch, inputs))
    n = inputs["input_ids"].shape[0]
    for i in range(n):
        if mc:
            length = int(inputs["attention_mask"][i].sum(-1).max())
            single = {k: v[i:i + 1, :, :length] for k, v in inputs.items()}
        else:
            length = int(inputs["attention_mask"][i].sum())
            single = {k: v[i:i + 1, :length] for k, v in inputs.items()}
        for k, v in head_outputs(model, head, arch, single).items():
            tensors[f"single.{i}.{k}"] = v
    save_golden(folder / "golden.safetensors", tensors)


def gen_tiny(out_dir: Path, skipped: list[str]) -> list[str]:
    names = []
    for arch in ARCHS:
        for head in HEADS:
            cls_name = CLASS_PREFIX[arch] + HEAD_SUFFIX[head]
            if not hasattr(transformers, cls_name):
                skipped.append(f"{arch}-{head}: transformers {transformers.__version__} has no {cls_name}")
                continue
            gen_tiny_one(out_dir, f"{arch}-{head}", arch, head)
            names.append(f"tiny/{arch}-{head}")
    gen_tiny_one(out_dir, "bert-seq-cls-bin", "bert", "seq-cls", safe=False)
    gen_tiny_one(out_dir, "bert-seq-cls-multilabel", "bert", "seq-cls",
                 {"problem_type": "multi_label_classification", "num_labels": 4,
                  "id2label": {i: f"LABEL_{i}" for i in range(4)}, "label2id": {f"LABEL_{i}": i for i in range(4)}})
    gen_tiny_one(out_dir, "bert-seq-cls-regression", "bert", "seq-cls",
                 {"problem_type": "regression", "num_labels": 1,
                  "id2label": {0: "LABEL_0"}, "label2id": {"LABEL_0": 0}})
    names += ["tiny/bert-seq-cls-bin", "tiny/bert-seq-cls-multilabel", "tiny/bert-seq-cls-regression"]
    return names


# ---------------------------------------------------------------------------------------------------
# B) real models


def real_batch(tok_path: Path, texts: list[str]) -> tuple[dict[str, torch.Tensor], list[int]]:
    tok = Tokenizer.from_file(str(tok_path))
    tok.no_truncation()
    tok.no_padding()
    encs = tok.encode_batch(texts, add_special_tokens=True)
    lens = [len(e.ids) for e in encs]
    s = max(lens)
    ids = torch.zeros(len(texts), s, dtype=torch.int64)
    mask = torch.zeros(len(texts), s, dtype=torch.int64)
    types = torch.zeros(len(texts), s, dtype=torch.int64)
    for i, e in enumerate(encs):
        n = len(e.ids)
        ids[i, :n] = torch.tensor(e.ids)
        mask[i, :n] = torch.tensor(e.attention_mask)
        types[i, :n] = torch.tensor(e.type_ids)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}, lens


def gen_real(out_dir: Path, assets: Path) -> list[str]:
    from sentence_transformers import SentenceTransformer

    done = []
    # all-MiniLM-L6-v2
    src = assets / "all-minilm-l6-v2"
    folder = out_dir / "real" / "all-minilm-l6-v2"
    folder.mkdir(parents=True, exist_ok=True)
    batch, lens = real_batch(src / "tokenizer.json", REAL_TEXTS)
    model = transformers.AutoModel.from_pretrained(str(src), attn_implementation="eager").eval()
    tensors = dict(batch)
    with torch.no_grad():
        tensors["last_hidden_state"] = model(**batch).last_hidden_state
        for i, n in enumerate(lens):
            single = {k: v[i:i + 1, :n] for k, v in batch.items()}
            tensors[f"single.{i}.last_hidden_state"] = model(**single).last_hidden_state
    st = SentenceTransformer(str(src), device="cpu")
    emb = st.encode(REAL_TEXTS, convert_to_numpy=True)
    tensors["sentence_embedding"] = torch.from_numpy(emb)
    save_golden(folder / "golden.safetensors", tensors)
    write_json(folder / "inputs.json", {
        "texts": REAL_TEXTS,
        "model": "EMBRACE_ASSETS/all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
        "tokenizer": "all-minilm-l6-v2/tokenizer.json, no_truncation, no_padding, add_special_tokens; "
                     "right-padded with id 0 to the longest",
        "lengths": lens,
    })
    done.append("real/all-minilm-l6-v2")

    # splade-tiny (BertForMaskedLM)
    src = assets / "splade-tiny"
    folder = out_dir / "real" / "splade-tiny"
    folder.mkdir(parents=True, exist_ok=True)
    batch, lens = real_batch(src / "tokenizer.json", REAL_TEXTS)
    model = transformers.BertForMaskedLM.from_pretrained(str(src), attn_implementation="eager").eval()
    key = f"logits_stride{SPLADE_LOGITS_STRIDE}"
    tensors = dict(batch)
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        tensors["last_hidden_state"] = out.hidden_states[-1]
        tensors[key] = out.logits[:, :, ::SPLADE_LOGITS_STRIDE]
        for i, n in enumerate(lens):
            single = {k: v[i:i + 1, :n] for k, v in batch.items()}
            out = model(**single, output_hidden_states=True)
            tensors[f"single.{i}.last_hidden_state"] = out.hidden_states[-1]
            tensors[f"single.{i}.{key}"] = out.logits[:, :, ::SPLADE_LOGITS_STRIDE]
    save_golden(folder / "golden.safetensors", tensors)
    write_json(folder / "inputs.json", {
        "texts": REAL_TEXTS,
        "model": "EMBRACE_ASSETS/splade-tiny (BertForMaskedLM)",
        "tokenizer": "splade-tiny/tokenizer.json, no_truncation, no_padding, add_special_tokens; "
                     "right-padded with id 0 to the longest",
        "lengths": lens,
        "logits_stride": SPLADE_LOGITS_STRIDE,
    })
    done.append("real/splade-tiny")
    return done


# ---------------------------------------------------------------------------------------------------
# C) tiny sentence-transformers models


def gen_sentence_transformers(out_dir: Path) -> list[str]:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    assert len(ST_VOCAB) == len(set(ST_VOCAB)), "duplicate vocab entries"
    done = []
    with tempfile.TemporaryDirectory(prefix="embrace-st-") as tmp:
        base = Path(tmp) / "bert"
        base.mkdir()
        (base / "vocab.txt").write_text("".join(w + "\n" for w in ST_VOCAB), encoding="utf-8")
        # transformers 5 silently ignores vocab_file= (it then builds a 5-token vocabulary): pass vocab=.
        tok = transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(ST_VOCAB)}, do_lower_case=True)
        unknown = [t for text in ST_TEXTS for t in tok.tokenize(text) if t == "[UNK]"]
        assert len(unknown) == 1 and len(tok.get_vocab()) == len(ST_VOCAB), (unknown, len(tok.get_vocab()))
        cfg = transformers.BertConfig(vocab_size=len(ST_VOCAB), hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
                                      type_vocab_size=2, pad_token_id=0, hidden_dropout_prob=0.0,
                                      attention_probs_dropout_prob=0.0)
        seed = crc("st-bert")
        torch.manual_seed(seed)
        bert = transformers.BertModel(cfg)
        perturb_1d(bert, seed + 1)
        bert.eval()
        bert.save_pretrained(str(base))
        tok.save_pretrained(str(base))

        for name, (mode, dense) in ST_VARIANTS.items():
            folder = out_dir / "sentence-transformers" / name
            if folder.exists():
                shutil.rmtree(folder)
            torch.manual_seed(crc("st:" + name))
            transformer = Transformer(str(base), max_seq_length=64)
            modules = [transformer, Pooling(32, pooling_mode=mode)]
            if dense:
                modules += [Dense(32, 16), Normalize()]
            model = SentenceTransformer(modules=modules, device="cpu")
            model.eval()
            model.save(str(folder), create_model_card=False)
            # reload what was written, so the goldens describe the saved folder
            model = SentenceTransformer(str(folder), device="cpu")
            model.eval()
            features = model.tokenize(ST_TEXTS)
            emb = model.encode(ST_TEXTS, batch_size=len(ST_TEXTS), convert_to_numpy=True)
            tensors = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
            tensors["sentence_embedding"] = torch.from_numpy(emb)
            save_golden(folder / "golden.safetensors", tensors)
            write_json(folder / "inputs.json", {"texts": ST_TEXTS})
            done.append(f"sentence-transformers/{name}")
    return done


# ---------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=Path,
                    default=Path(os.environ.get("EMBRACE_ASSETS", Path.home() / ".cache" / "embrace" / "assets")))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", choices=["tiny", "real", "sentence-transformers"],
                    help="only these parts")
    args = ap.parse_args()
    out: Path = args.out
    parts = args.only or ["tiny", "real", "sentence-transformers"]
    out.mkdir(parents=True, exist_ok=True)

    produced, skipped = [], []
    if "tiny" in parts:
        produced += gen_tiny(out, skipped)
    if "real" in parts:
        if not args.assets.is_dir():
            print(f"gen_models: assets not found at {args.assets}; run scripts/fetch-assets", file=sys.stderr)
            return 1
        produced += gen_real(out, args.assets)
    if "sentence-transformers" in parts:
        produced += gen_sentence_transformers(out)

    write_json(out / "meta.json", {
        "generator": "tools/oracle/gen_models.py",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "safetensors": safetensors.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "special_tokens": {a: {"cls": c, "sep": s, "pad": p} for a, (c, s, p) in SPECIALS.items()},
        "seq_lens": SEQ_LENS,
        "multiple_choice_lens": MC_LENS,
        "splade_logits_stride": SPLADE_LOGITS_STRIDE,
        "skipped": skipped,
        "notes": META_NOTES,
    })
    for p in produced:
        print(p)
    for s in skipped:
        print("skipped:", s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
