#!/usr/bin/env python3
"""Pipelines-layer golden files for Embrace, produced with transformers pipelines (CPU, float32).

Writes, under tests/golden/pipelines/ (or --out):

  meta.json      versions of torch / transformers / sentence-transformers / tokenizers / safetensors / numpy,
                 the tiny models (class, seed, labels), case counts per task, and notes (below)
  cases.jsonl    one JSON object per line, one line per case, in generation order:
                   {"id":           unique short string, e.g. "tc-single", "ner-bert-1-first",
                    "task":         the pipeline task name ("text-classification", "token-classification",
                                    "fill-mask", "question-answering", "zero-shot-classification",
                                    "feature-extraction", "sentence-similarity"),
                    "model":        "<tiny name>" (a folder of models/) or "asset:all-minilm-l6-v2" /
                                    "asset:splade-tiny" (EMBRACE_ASSETS/<name>, not copied here),
                    "init_options": keyword arguments of pipeline(task, model=..., device=-1, **init_options)
                                    beyond task/model/device ({} for every case here),
                    "inputs":       exactly what was passed as the first argument of the call (string, list of
                                    strings, or dict / list of dicts),
                    "options":      the keyword arguments of the call,
                    "output":       the return value, converted to JSON with the nesting kept exactly as
                                    returned (numpy / torch floats -> float, i.e. the float32 value widened to
                                    a double; numpy / torch ints -> int; tuples -> lists),
                    "impl":         only on question-answering cases, see below}
  models/<name>/ tiny random checkpoints that transformers.pipeline(task, model=<folder>) loads:
                 config.json + model.safetensors (model.save_pretrained) + tokenizer.json + tokenizer_config.json
                 (tokenizer.save_pretrained; transformers 5 writes no special_tokens_map.json, the special
                 tokens are in tokenizer_config.json)

TINY MODELS (all: hidden 32, 2 layers, 4 heads, intermediate 37, dropouts 0, initializer_range 0.2 so that
random predictions are decisive; torch.manual_seed(crc32(name)), the architecture's own init, then every 1-D
parameter gets N(0, 0.1) noise from a generator seeded with crc32(name) + 1; eval mode; then the heads of the
classification / token-classification / QA models are calibrated (calibrate_head: the last Linear (W, b) becomes
k W, b - k W m, with m the mean of its inputs over fixed calibration texts and k chosen so that the calibrated
logits have std HEAD_LOGIT_STD = 2 there; without it a random encoder predicts the same label for every token,
because its outputs share one dominant direction). meta.json "models" lists class, seed, labels, calibration.)
  bert-cls          BertForSequenceClassification  id2label {0: negative, 1: neutral, 2: positive}
  bert-multilabel   BertForSequenceClassification  problem_type multi_label_classification,
                                                   id2label {0: joy, 1: anger, 2: fear, 3: surprise}
  bert-ner          BertForTokenClassification     id2label O, B-PER, I-PER, B-LOC, I-LOC, B-ORG, I-ORG (ids 0..6)
  bert-qa           BertForQuestionAnswering
  bert-mlm          BertForMaskedLM                (decoder tied to the word embeddings)
  bert-nli          BertForSequenceClassification  id2label {0: contradiction, 1: neutral, 2: entailment}
  bert-base         BertModel                      (feature-extraction; has the pooler, unused by the pipeline)
  roberta-ner       RobertaForTokenClassification  same labels as bert-ner; max_position_embeddings 66,
                                                   pad 1, bos 0, eos 2, type_vocab_size 1
  BERT models: max_position_embeddings 64, type_vocab_size 2, pad_token_id 0; tokenizer = BertTokenizer
  (transformers 5's tokenizers-backed class) built from BERT_VOCAB below (vocab dict, do_lower_case=True,
  model_max_length=64): [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, BertNormalizer(lowercase, strip accents),
  BertPreTokenizer, WordPiece(##, max 100 chars/word), TemplateProcessing [CLS] $A [SEP] ($B [SEP]),
  WordPiece decoder. Several words of the test texts are missing on purpose so that they split into pieces
  (play ##ing, quick ##ly, live ##s, ...) or become [UNK] (zoe, cafe).
  roberta-ner: byte-level BPE trained here with tokenizers' BpeTrainer (vocab_size ROBERTA_VOCAB_SIZE,
  min_frequency 2, special tokens <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=4, ByteLevel(add_prefix_space=False)
  with the full 256-byte initial alphabet) on every test text plus ROBERTA_EXTRA_TEXTS, then wrapped as
  transformers' RobertaTokenizer(vocab=, merges=, add_prefix_space=False, trim_offsets=True, model_max_length=64)
  (BPE with continuing_subword_prefix "" and RobertaProcessing <s> $A </s> (</s> </s> $B </s>)).
  Every tokenizer is reloaded with AutoTokenizer.from_pretrained(folder) and must give the same ids, offsets
  and special-tokens masks as the object that was saved.

CASES (all on CPU, pipelines built with device=-1, torch.set_num_threads(1)):
  text-classification        bert-cls, bert-multilabel
  token-classification       bert-ner, roberta-ner (4 sentences x aggregation none/simple/first/average/max,
                             plus ignore_labels=[] with "none")
  fill-mask                  bert-mlm, asset:splade-tiny
  question-answering         bert-qa  (see below)
  zero-shot-classification   bert-nli
  feature-extraction         bert-base, asset:all-minilm-l6-v2
  sentence-similarity        asset:all-minilm-l6-v2 (not a transformers pipeline: the Hub inference API's
                             shape; inputs {"source_sentence", "sentences"}, output =
                             SentenceTransformer(dir).similarity(e[:1], e[1:])[0].tolist() with
                             e = encode([source] + sentences), i.e. cosine similarities, one float per sentence)

QUESTION ANSWERING: transformers 5 removed the "question-answering" pipeline (pipeline("question-answering")
raises KeyError, REMOVED_TASKS in transformers/pipelines/__init__.py). The QA cases are produced by
qa_pipeline_v4() below, a line-by-line port of the last transformers 4.x QuestionAnsweringPipeline
(fast-tokenizer path: preprocess, _forward, postprocess, get_indices, get_answer), using the decode_spans /
select_starts_ends that transformers 5.24 still ships in pipelines/document_question_answering.py (the same
functions 4.x had in pipelines/question_answering.py) and the 5.24 tokenizer for chunking. These cases
carry "impl": "transformers-4.x QuestionAnsweringPipeline port (task removed in transformers 5)"; their
"options" are the keyword arguments of that 4.x call (max_seq_len, doc_stride, top_k, max_answer_len,
handle_impossible_answer were all call-time options in 4.x).

Deterministic: fixed seeds, one torch thread, no timestamps, no absolute paths; a rerun writes
byte-identical files.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import shutil
import sys
import warnings
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import sentence_transformers  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
logging.getLogger("sentence_transformers").setLevel(logging.ERROR)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "golden" / "pipelines"

NOISE_STD = 0.1
INIT_RANGE = 0.2
HEAD_LOGIT_STD = 2.0
MAX_LEN = 64
ROBERTA_VOCAB_SIZE = 400
QA_IMPL = "transformers-4.x QuestionAnsweringPipeline port (task removed in transformers 5)"

# ---------------------------------------------------------------------------------------------------
# texts (fixed)

TC_TEXTS = [
    "I love this movie, it is really great!",
    "The food was bad and the service was slow.",
    "John went to Paris with Mary last summer.",
    "What a wonderful day in London!",
]
TC_PAIR = {"text": "The cat sat on the mat.", "text_pair": "A cat is playing on a mat."}
TC_LONG = " ".join(["The weather in London was good and we walked in the park."] * 6)

NER_TEXTS = [
    "John Smith lives in London and works for Google.",
    "Mary visited Paris, then flew to New York with Apple's team.",
    "The children were playing quickly near the old Berlin station.",
    "José met Zoë at the café in Zürich!",
]
NER_STRATEGIES = ["none", "simple", "first", "average", "max"]

FM_TEXTS = [
    "Paris is the capital of [MASK].",
    "John went to [MASK] with Mary.",
    "The [MASK] sat on the [MASK].",
    "The cat sat on the [MASK].",
]
SPLADE_TEXTS = ["The capital of France is [MASK].", "I went to the [MASK] to buy some milk."]

QA_CONTEXT = "John lives in London. Mary lives in Paris and works for Google."
QA_QUESTIONS = ["Where does John live?", "Who works for Google?"]
QA_SHORT_CONTEXT = "Paris is the capital of France."
QA_LONG_CONTEXT = (
    "The old city has many small streets. People walk to the park every day. "
    "In the morning the children play near the river. John Smith works at the new library, "
    "which opened last summer. Mary likes the green garden behind the station. "
    "The library is next to the river and the park. Many people read books there."
)
QA_LONG_QUESTION = "Where does John Smith work?"

ZS_TEXTS = ["John went to London to watch the football game.", "The food was bad and the service was slow."]
ZS_LABELS = ["sports", "travel", "food"]

FE_TEXTS = ["The cat sat on the mat.", "Mary likes the green garden."]
FE_LONG = "The children were playing in the park near the river while the old man read a book."
MINILM_TEXT = "This is a test sentence."

SIM_SOURCE = "A man is playing a guitar."
SIM_SENTENCES = [
    "A person plays a musical instrument.",
    "The weather is cold today.",
    "Someone is playing the guitar on stage.",
]

ROBERTA_EXTRA_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "People in London, Paris and Berlin work for Google, Apple and Microsoft.",
    "Smith and Mary live in New York; John lives in Zurich.",
    "Children like playing in the park and walking near the river.",
    "The team visited the old station and the new library.",
    "It was a really great game, and the food was good too!",
]

# ---------------------------------------------------------------------------------------------------
# the WordPiece vocabulary shared by every tiny BERT model (ids = positions)

BERT_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list(".,?!'-:;()\"")
    + list("0123456789")
    + """the a an and or but is are was were be been has have had do does did not no yes this that these those it
    its i you he she we they me him her us them my your his our their what who where when why how which there
    then here to of in on at for with from by about near behind next over under after before into
    john mary smith anna peter paul sarah tom jose
    paris london berlin rome madrid tokyo france germany england italy spain york zurich
    google apple microsoft amazon facebook
    cat dog mat sat man woman child children people city street park river garden station library book
    team game food service movie day summer morning weather world house car tree music guitar
    love like live work play walk quick read visit open watch go went flew met said make
    good bad great slow small old new green red big little many every last some all very
    real wonder foot sport travel capital example text question answer happy sad
    one two three s while""".split()
    + ["##s", "##ing", "##ed", "##ly", "##er", "##ful", "##ball", "##est", "##y", "##es"]
)

NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]

TINY_MODELS = {
    # name: (transformers class, architecture, config extras)
    "bert-cls": ("BertForSequenceClassification", "bert",
                 {"id2label": {0: "negative", 1: "neutral", 2: "positive"}}),
    "bert-multilabel": ("BertForSequenceClassification", "bert",
                        {"problem_type": "multi_label_classification",
                         "id2label": {0: "joy", 1: "anger", 2: "fear", 3: "surprise"}}),
    "bert-ner": ("BertForTokenClassification", "bert", {"id2label": dict(enumerate(NER_LABELS))}),
    "bert-qa": ("BertForQuestionAnswering", "bert", {}),
    "bert-mlm": ("BertForMaskedLM", "bert", {}),
    "bert-nli": ("BertForSequenceClassification", "bert",
                 {"id2label": {0: "contradiction", 1: "neutral", 2: "entailment"}}),
    "bert-base": ("BertModel", "bert", {}),
    "roberta-ner": ("RobertaForTokenClassification", "roberta", {"id2label": dict(enumerate(NER_LABELS))}),
}


# ---------------------------------------------------------------------------------------------------
# helpers


def crc(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def to_jsonable(x):
    """Pipeline return value -> plain JSON types, nesting kept exactly."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return to_jsonable(x.tolist())
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x)
    if x is None or isinstance(x, str):
        return x
    raise TypeError(f"cannot convert {type(x)}: {x!r}")


def perturb_1d(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if p.dim() == 1:
                p.add_(torch.randn(p.shape, generator=g) * NOISE_STD)


def all_texts() -> list[str]:
    texts = list(TC_TEXTS) + [TC_PAIR["text"], TC_PAIR["text_pair"], TC_LONG] + NER_TEXTS
    texts += [t.replace("[MASK]", "") for t in FM_TEXTS]
    texts += [QA_CONTEXT, QA_LONG_CONTEXT, QA_LONG_QUESTION] + QA_QUESTIONS
    texts += ZS_TEXTS + ZS_LABELS + FE_TEXTS + [FE_LONG]
    texts += [f"This example is {x}." for x in ZS_LABELS] + [f"This text is about {x}." for x in ZS_LABELS]
    return texts


# ---------------------------------------------------------------------------------------------------
# tokenizers


def build_bert_tokenizer():
    assert len(BERT_VOCAB) == len(set(BERT_VOCAB)), [w for w in BERT_VOCAB if BERT_VOCAB.count(w) > 1]
    # transformers 5 ignores vocab_file=; pass the vocabulary itself
    tok = transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(BERT_VOCAB)}, do_lower_case=True,
                                         model_max_length=MAX_LEN)
    assert len(tok.get_vocab()) == len(BERT_VOCAB)
    ids = (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id)
    assert ids == (0, 1, 2, 3, 4), ids
    return tok


def build_roberta_tokenizer():
    bpe = Tokenizer(models.BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=ROBERTA_VOCAB_SIZE, min_frequency=2, show_progress=False,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = all_texts() + ROBERTA_EXTRA_TEXTS
    bpe.train_from_iterator(corpus, trainer=trainer)
    vocab = bpe.get_vocab()
    merges = json.loads(bpe.to_str())["model"]["merges"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in merges]
    tok = transformers.RobertaTokenizer(vocab=vocab, merges=merges, add_prefix_space=False, trim_offsets=True,
                                        model_max_length=MAX_LEN)
    assert [tok.convert_tokens_to_ids(t) for t in ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]] == [0, 1, 2, 3, 4]
    # the wrapped tokenizer must segment like the trained one
    bpe.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                      add_prefix_space=False)
    for text in corpus:
        a = bpe.encode(text)
        b = tok(text, return_offsets_mapping=True)
        assert a.ids == b["input_ids"], (text, a.tokens, tok.convert_ids_to_tokens(b["input_ids"]))
        assert [tuple(o) for o in a.offsets] == [tuple(o) for o in b["offset_mapping"]], text
    return tok


def check_tokenizer_roundtrip(tok, folder: Path) -> None:
    re = transformers.AutoTokenizer.from_pretrained(str(folder))
    assert type(re) is type(tok), (type(re), type(tok))
    texts = all_texts() + FM_TEXTS
    for text in texts:
        a = tok(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        b = re(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        assert dict(a) == dict(b), (folder.name, text)
    a = tok(TC_PAIR["text"], TC_PAIR["text_pair"])
    b = re(TC_PAIR["text"], TC_PAIR["text_pair"])
    assert dict(a) == dict(b)
    assert re.model_max_length == MAX_LEN and re.mask_token == tok.mask_token
    cfg = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    for key in ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token"):
        assert key in cfg, (folder.name, key, sorted(cfg))


# ---------------------------------------------------------------------------------------------------
# tiny models


def tiny_config(arch: str, vocab_size: int, extras: dict):
    extras = dict(extras)
    if "id2label" in extras:
        extras["label2id"] = {v: k for k, v in extras["id2label"].items()}
        extras["num_labels"] = len(extras["id2label"])
    common = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=37, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                  initializer_range=INIT_RANGE)
    if arch == "bert":
        return transformers.BertConfig(max_position_embeddings=MAX_LEN, type_vocab_size=2, pad_token_id=0,
                                       **common, **extras)
    if arch == "roberta":
        return transformers.RobertaConfig(max_position_embeddings=MAX_LEN + 2, type_vocab_size=1, pad_token_id=1,
                                          bos_token_id=0, eos_token_id=2, **common, **extras)
    raise ValueError(arch)


HEAD_LINEAR = {  # the head's last Linear, whose input is calibrated
    "bert-cls": "classifier", "bert-multilabel": "classifier", "bert-nli": "classifier",
    "bert-ner": "classifier", "roberta-ner": "classifier", "bert-qa": "qa_outputs",
}


def calibration_inputs(name: str) -> list:
    if name == "bert-nli":
        return [(s, t.format(x)) for s in ZS_TEXTS + TC_TEXTS for t in ("This example is {}.", "This text is about {}.")
                for x in ZS_LABELS]
    if name == "bert-qa":
        return [(q, QA_CONTEXT) for q in QA_QUESTIONS] + [(QA_LONG_QUESTION, QA_LONG_CONTEXT)]  # not QA_SHORT_CONTEXT
    return all_texts()


def calibrate_head(model, name: str, tok) -> dict | None:
    """Make a random head decisive and input-dependent.

    A random post-LayerNorm encoder puts most of its output in one shared direction (per-token spread is ~5 %
    of the mean's norm), so a random head predicts the same label everywhere. For the head's last Linear
    (W, b) this computes, over the fixed calibration inputs (every token for token-level heads, every
    sequence for pooled heads), the mean m of the Linear's inputs and the std s of W (x - m), then sets
    W' = k W and b' = b - k W m with k = HEAD_LOGIT_STD / s, i.e. logits' = k W (x - m) + b.
    """
    attr = HEAD_LINEAR.get(name)
    if attr is None:
        return None
    linear = getattr(model, attr)
    feats = []
    handle = linear.register_forward_hook(
        lambda mod, inp, out: feats.append(inp[0].detach().reshape(-1, inp[0].shape[-1])))
    with torch.no_grad():
        for item in calibration_inputs(name):
            enc = tok(*item, truncation=True) if isinstance(item, tuple) else tok(item, truncation=True)
            model(**{k: torch.tensor([v]) for k, v in enc.items()})
    handle.remove()
    x = torch.cat(feats).to(torch.float64)
    w = linear.weight.detach().to(torch.float64)
    m = x.mean(0)
    s = ((x - m) @ w.T).std().item()
    k = HEAD_LOGIT_STD / s
    with torch.no_grad():
        new_w = (w * k)
        new_b = linear.bias.detach().to(torch.float64) - new_w @ m
        linear.weight.copy_(new_w.to(torch.float32))
        linear.bias.copy_(new_b.to(torch.float32))
    return {"linear": attr, "scale": round(k, 6), "calibration_inputs": len(calibration_inputs(name))}


def gen_models(out: Path) -> dict:
    bert_tok = build_bert_tokenizer()
    roberta_tok = build_roberta_tokenizer()
    info = {}
    for name, (cls_name, arch, extras) in TINY_MODELS.items():
        folder = out / "models" / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        tok = bert_tok if arch == "bert" else roberta_tok
        cfg = tiny_config(arch, len(tok.get_vocab()), extras)
        seed = crc(name)
        torch.manual_seed(seed)
        model = getattr(transformers, cls_name)(cfg)
        perturb_1d(model, seed + 1)
        model.eval()
        calib = calibrate_head(model, name, tok)
        model.save_pretrained(str(folder))
        # calling the tokenizer with truncation=True leaves that setting on the backend, and
        # save_pretrained would write it into tokenizer.json: save a clean one
        tok.backend_tokenizer.no_truncation()
        tok.backend_tokenizer.no_padding()
        tok.save_pretrained(str(folder))
        saved = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        assert saved["truncation"] is None and saved["padding"] is None, folder.name
        check_tokenizer_roundtrip(tok, folder)
        info[name] = {"class": cls_name, "seed": seed, "vocab_size": cfg.vocab_size,
                      "id2label": {str(k): v for k, v in cfg.id2label.items()} if "id2label" in extras else None,
                      "problem_type": cfg.problem_type, "head_calibration": calib}
    return info


# ---------------------------------------------------------------------------------------------------
# question answering: port of transformers 4.x QuestionAnsweringPipeline (fast tokenizer path)


def qa_pipeline_v4(model, tokenizer, inputs, top_k=1, doc_stride=None, max_answer_len=15, max_seq_len=None,
                   max_question_len=64, handle_impossible_answer=False, align_to_words=True, padding="do_not_pad"):
    """transformers 4.x QuestionAnsweringPipeline.__call__ (dict or list of dicts), batch_size 1."""
    from transformers.pipelines.document_question_answering import select_starts_ends

    if top_k < 1:
        raise ValueError(top_k)
    if max_answer_len < 1:
        raise ValueError(max_answer_len)
    examples = [inputs] if isinstance(inputs, dict) else list(inputs)
    results = []
    for example in examples:
        question, context = example["question"], example["context"]
        # --- preprocess
        if max_seq_len is None:
            msl = min(tokenizer.model_max_length, 384)
        else:
            msl = max_seq_len
        ds = min(msl // 2, 128) if doc_stride is None else doc_stride
        if ds > msl:
            raise ValueError("doc_stride > max_seq_len")
        question_first = tokenizer.padding_side == "right"
        assert question_first
        encoded = tokenizer(
            text=question, text_pair=context, padding=padding, truncation="only_second", max_length=msl,
            stride=ds, return_token_type_ids=True, return_overflowing_tokens=True, return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        num_spans = len(encoded["input_ids"])
        p_mask = [[tok != 1 for tok in encoded.sequence_ids(span_id)] for span_id in range(num_spans)]
        features = []
        for span_idx in range(num_spans):
            ids = encoded["input_ids"][span_idx]
            if tokenizer.cls_token_id is not None:
                for cls_index in np.nonzero(np.array(ids) == tokenizer.cls_token_id)[0]:
                    p_mask[span_idx][cls_index] = 0
            features.append({
                "input_ids": ids,
                "attention_mask": encoded["attention_mask"][span_idx],
                "token_type_ids": encoded["token_type_ids"][span_idx],
                "p_mask": p_mask[span_idx],
                "encoding": encoded[span_idx],
            })
        # --- _forward (one chunk at a time, unpadded)
        outputs = []
        for feature in features:
            fw = {}
            for k in tokenizer.model_input_names + ["p_mask", "token_type_ids"]:
                t = torch.tensor(feature[k])
                if t.dtype == torch.int32:
                    t = t.long()
                fw[k] = t.unsqueeze(0)
            model_inputs = {k: fw[k] for k in tokenizer.model_input_names}
            if "use_cache" in inspect.signature(model.forward).parameters:
                model_inputs["use_cache"] = False
            with torch.no_grad():
                out = model(**model_inputs)
            outputs.append({"start": out["start_logits"], "end": out["end_logits"], "p_mask": fw["p_mask"],
                            "attention_mask": fw["attention_mask"], "encoding": feature["encoding"]})
        # --- postprocess
        min_null_score = 1000000
        answers = []
        for output in outputs:
            attention_mask = output["attention_mask"].numpy()
            pre_topk = top_k * 2 + 10 if align_to_words else top_k
            starts, ends, scores, min_null_score = select_starts_ends(
                output["start"], output["end"], output["p_mask"], attention_mask, min_null_score, pre_topk,
                handle_impossible_answer, max_answer_len,
            )
            enc = output["encoding"]
            sequence_index = 1
            for s, e, score in zip(starts, ends, scores):
                if align_to_words:
                    try:
                        start_word = enc.token_to_word(s)
                        end_word = enc.token_to_word(e)
                        start_index = enc.word_to_chars(start_word, sequence_index=sequence_index)[0]
                        end_index = enc.word_to_chars(end_word, sequence_index=sequence_index)[1]
                    except Exception:
                        start_index = enc.offsets[s][0]
                        end_index = enc.offsets[e][1]
                else:
                    start_index = enc.offsets[s][0]
                    end_index = enc.offsets[e][1]
                target = context[start_index:end_index]
                same = next((a for a in answers if a["answer"].lower() == target.lower()), None)
                if same:
                    same["score"] += score.item()
                else:
                    answers.append({"score": score.item(), "start": start_index, "end": end_index,
                                    "answer": context[start_index:end_index]})
        if handle_impossible_answer:
            answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]
        results.append(answers[0] if len(answers) == 1 else answers)
    return results[0] if len(results) == 1 else results


# ---------------------------------------------------------------------------------------------------
# cases


class Cases:
    def __init__(self, out: Path, assets: Path):
        self.out = out
        self.assets = assets
        self.rows: list[dict] = []
        self._pipes: dict = {}

    def model_path(self, model: str) -> str:
        if model.startswith("asset:"):
            return str(self.assets / model[len("asset:"):])
        return str(self.out / "models" / model)

    def pipe(self, task: str, model: str, init_options: dict):
        key = (task, model, json.dumps(init_options, sort_keys=True))
        if key not in self._pipes:
            self._pipes[key] = transformers.pipeline(task, model=self.model_path(model), device=-1, **init_options)
        return self._pipes[key]

    def add(self, cid: str, task: str, model: str, inputs, options: dict | None = None,
            init_options: dict | None = None, output=None, impl: str | None = None) -> None:
        options = options or {}
        init_options = init_options or {}
        assert all(r["id"] != cid for r in self.rows), cid
        if output is None:
            p = self.pipe(task, model, init_options)
            with torch.no_grad():
                output = p(json.loads(json.dumps(inputs)), **json.loads(json.dumps(options)))
        row = {"id": cid, "task": task, "model": model, "init_options": init_options, "inputs": inputs,
               "options": options, "output": to_jsonable(output)}
        if impl:
            row["impl"] = impl
        self.rows.append(row)


def gen_text_classification(c: Cases) -> None:
    t = "text-classification"
    c.add("tc-single", t, "bert-cls", TC_TEXTS[0])
    c.add("tc-list", t, "bert-cls", TC_TEXTS[:3])
    c.add("tc-topk-none", t, "bert-cls", TC_TEXTS[1], {"top_k": None})
    c.add("tc-topk-2", t, "bert-cls", TC_TEXTS[2], {"top_k": 2})
    c.add("tc-topk-1", t, "bert-cls", TC_TEXTS[0], {"top_k": 1})
    c.add("tc-list-topk-none", t, "bert-cls", TC_TEXTS[2:4], {"top_k": None})
    c.add("tc-fn-none", t, "bert-cls", TC_TEXTS[3], {"function_to_apply": "none"})
    c.add("tc-fn-sigmoid", t, "bert-cls", TC_TEXTS[3], {"function_to_apply": "sigmoid", "top_k": None})
    c.add("tc-fn-softmax", t, "bert-cls", TC_TEXTS[3], {"function_to_apply": "softmax", "top_k": None})
    c.add("tc-pair", t, "bert-cls", dict(TC_PAIR))
    c.add("tc-pair-topk-none", t, "bert-cls", dict(TC_PAIR), {"top_k": None})
    c.add("tc-multilabel", t, "bert-multilabel", TC_TEXTS[0])
    c.add("tc-multilabel-topk-none", t, "bert-multilabel", TC_TEXTS[0], {"top_k": None})
    c.add("tc-multilabel-softmax", t, "bert-multilabel", TC_TEXTS[1], {"function_to_apply": "softmax", "top_k": None})
    c.add("tc-long-truncation", t, "bert-cls", TC_LONG, {"truncation": True})


def gen_token_classification(c: Cases) -> None:
    t = "token-classification"
    for model, short in (("bert-ner", "bert"), ("roberta-ner", "roberta")):
        for i, text in enumerate(NER_TEXTS):
            for strategy in NER_STRATEGIES:
                c.add(f"ner-{short}-{i}-{strategy}", t, model, text, {"aggregation_strategy": strategy})
        c.add(f"ner-{short}-0-none-ignore-nothing", t, model, NER_TEXTS[0],
              {"aggregation_strategy": "none", "ignore_labels": []})
    c.add("ner-bert-list-simple", t, "bert-ner", NER_TEXTS[:2], {"aggregation_strategy": "simple"})
    c.add("ner-bert-3-simple-ignore-nothing", t, "bert-ner", NER_TEXTS[3],
          {"aggregation_strategy": "simple", "ignore_labels": []})
    c.add("ner-roberta-3-simple-ignore-nothing", t, "roberta-ner", NER_TEXTS[3],
          {"aggregation_strategy": "simple", "ignore_labels": []})


def gen_fill_mask(c: Cases) -> None:
    t = "fill-mask"
    c.add("fm-single", t, "bert-mlm", FM_TEXTS[0])
    c.add("fm-topk-3", t, "bert-mlm", FM_TEXTS[1], {"top_k": 3})
    c.add("fm-targets", t, "bert-mlm", FM_TEXTS[1], {"targets": ["paris", "london", "xyzunknown"]})
    c.add("fm-targets-topk-1", t, "bert-mlm", FM_TEXTS[0], {"targets": ["france", "london"], "top_k": 1})
    c.add("fm-two-masks", t, "bert-mlm", FM_TEXTS[2], {"top_k": 3})
    c.add("fm-list", t, "bert-mlm", [FM_TEXTS[0], FM_TEXTS[3]], {"top_k": 2})
    c.add("fm-list-of-one", t, "bert-mlm", [FM_TEXTS[3]], {"top_k": 2})
    c.add("fm-splade-list", t, "asset:splade-tiny", list(SPLADE_TEXTS), {"top_k": 5})
    c.add("fm-splade-single", t, "asset:splade-tiny", SPLADE_TEXTS[0])


def gen_question_answering(c: Cases) -> None:
    t = "question-answering"
    folder = c.model_path("bert-qa")
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(folder).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder)

    def add(cid, inputs, options=None):
        options = options or {}
        out = qa_pipeline_v4(model, tok, json.loads(json.dumps(inputs)), **options)
        # Spans of score exactly 0 (those starting at [CLS], masked tokens) would be picked by np.argpartition
        # among ties, in an order only numpy defines: no case may let one reach the output.
        flat = [out] if isinstance(out, dict) else [a for x in out for a in (x if isinstance(x, list) else [x])]
        assert all(a["score"] > 0 for a in flat), (cid, flat)
        c.add(cid, t, "bert-qa", inputs, options, output=out, impl=QA_IMPL)

    q0 = {"question": QA_QUESTIONS[0], "context": QA_CONTEXT}
    q1 = {"question": QA_QUESTIONS[1], "context": QA_CONTEXT}
    add("qa-single", q0)
    add("qa-single-2", q1)
    add("qa-topk-3", q0, {"top_k": 3})
    add("qa-max-answer-len-4", q1, {"max_answer_len": 4, "top_k": 3})
    add("qa-impossible", q0, {"handle_impossible_answer": True})
    add("qa-impossible-topk-3", q1, {"handle_impossible_answer": True, "top_k": 3})
    add("qa-impossible-topk-20", q0, {"handle_impossible_answer": True, "top_k": 20, "max_answer_len": 3})
    # a 7-token context has 28 spans; top_k 29 = all of them plus the null answer, which ranks last here
    add("qa-impossible-null-shown", {"question": QA_QUESTIONS[0], "context": QA_SHORT_CONTEXT},
        {"handle_impossible_answer": True, "top_k": 29})
    assert c.rows[-1]["output"][-1]["answer"] == "" and len(c.rows[-1]["output"]) == 29
    add("qa-no-align", q1, {"align_to_words": False, "top_k": 3})
    add("qa-list", [q0, q1])
    qlong = {"question": QA_LONG_QUESTION, "context": QA_LONG_CONTEXT}
    add("qa-long-chunks", qlong, {"max_seq_len": 32, "doc_stride": 8})
    add("qa-long-chunks-topk-3", qlong, {"max_seq_len": 32, "doc_stride": 8, "top_k": 3})
    add("qa-long-default", qlong, {"top_k": 2})


def gen_zero_shot(c: Cases) -> None:
    t = "zero-shot-classification"
    c.add("zs-single", t, "bert-nli", ZS_TEXTS[0], {"candidate_labels": list(ZS_LABELS)})
    c.add("zs-multi-label", t, "bert-nli", ZS_TEXTS[0], {"candidate_labels": list(ZS_LABELS), "multi_label": True})
    c.add("zs-template", t, "bert-nli", ZS_TEXTS[0],
          {"candidate_labels": list(ZS_LABELS), "hypothesis_template": "This text is about {}."})
    c.add("zs-list", t, "bert-nli", list(ZS_TEXTS), {"candidate_labels": list(ZS_LABELS)})
    c.add("zs-one-label", t, "bert-nli", ZS_TEXTS[1], {"candidate_labels": ["food"]})
    c.add("zs-labels-string", t, "bert-nli", ZS_TEXTS[1], {"candidate_labels": "sports, travel,food"})


def gen_feature_extraction(c: Cases) -> None:
    t = "feature-extraction"
    c.add("fe-bert", t, "bert-base", FE_TEXTS[0])
    c.add("fe-bert-list", t, "bert-base", list(FE_TEXTS))
    c.add("fe-bert-tokenize-kwargs", t, "bert-base", FE_LONG,
          {"tokenize_kwargs": {"truncation": True, "max_length": 8}})
    c.add("fe-bert-truncation", t, "bert-base", TC_LONG, {"truncation": True})
    c.add("fe-minilm", t, "asset:all-minilm-l6-v2", MINILM_TEXT)


def gen_sentence_similarity(c: Cases) -> None:
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(c.model_path("asset:all-minilm-l6-v2"), device="cpu")
    m.eval()
    for cid, source, sentences in (("sim-1", SIM_SOURCE, SIM_SENTENCES),
                                   ("sim-2", "The cat sat on the mat.",
                                    ["A cat is sitting on a mat.", "The dog is in the garden."])):
        e = m.encode([source] + sentences)
        out = m.similarity(e[:1], e[1:])[0].tolist()
        c.add(cid, "sentence-similarity", "asset:all-minilm-l6-v2",
              {"source_sentence": source, "sentences": list(sentences)}, output=out)


# ---------------------------------------------------------------------------------------------------


META_NOTES = {
    "device": "CPU, float32, torch.set_num_threads(1); pipelines built with device=-1",
    "floats": "outputs keep full precision (transformers does not round); np.float32 / torch float32 values "
              "are widened to double and written with Python's shortest repr",
    "question-answering": QA_IMPL + "; see gen_pipelines.py qa_pipeline_v4",
    "sentence-similarity": "sentence-transformers, not a transformers pipeline: "
                           "SentenceTransformer(dir).similarity(e[:1], e[1:])[0] with e = encode([source] + sentences)",
    "assets": "asset:<name> models are EMBRACE_ASSETS/<name>, not copied here",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=Path,
                    default=Path(os.environ.get("EMBRACE_ASSETS", Path.home() / ".cache" / "embrace" / "assets")))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    out: Path = args.out
    for name in ("all-minilm-l6-v2", "splade-tiny"):
        if not (args.assets / name).is_dir():
            print(f"gen_pipelines: asset {name} not found under {args.assets}; run scripts/fetch-assets",
                  file=sys.stderr)
            return 1
    out.mkdir(parents=True, exist_ok=True)

    model_info = gen_models(out)
    c = Cases(out, args.assets)
    gen_text_classification(c)
    gen_token_classification(c)
    gen_fill_mask(c)
    gen_question_answering(c)
    gen_zero_shot(c)
    gen_feature_extraction(c)
    gen_sentence_similarity(c)

    lines = [json.dumps(r, ensure_ascii=False) for r in c.rows]
    (out / "cases.jsonl").write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    counts: dict[str, int] = {}
    for r in c.rows:
        counts[r["task"]] = counts.get(r["task"], 0) + 1
    write_json(out / "meta.json", {
        "generator": "tools/oracle/gen_pipelines.py",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
        },
        "models": model_info,
        "bert_vocab_size": len(BERT_VOCAB),
        "roberta_vocab_size": ROBERTA_VOCAB_SIZE,
        "cases": len(c.rows),
        "cases_per_task": counts,
        "notes": META_NOTES,
    })
    for task, n in counts.items():
        print(f"{task}: {n}")
    print(f"total: {len(c.rows)} cases, models: {', '.join(model_info)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
