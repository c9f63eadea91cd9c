#!/usr/bin/env python3
"""Causal-LM generation golden files for Embrace, produced with transformers (CPU, float32, eager attention).

Writes, under tests/golden/generation/ (or --out):

  meta.json                      versions of torch / transformers / safetensors, the config of every arch,
                                 the exact generate() arguments of every golden tensor, the resulting
                                 lengths, self-checks and caveats (e.g. a generation that stopped on EOS)

TINY RANDOM CAUSAL LMs   tiny/<arch>/   for arch in
   gpt2    GPT2LMHeadModel       n_embd 32, n_layer 2, n_head 4, n_inner 48 (explicit, not None -> 4 * 32),
                                 n_positions 64, activation gelu_new, layer_norm_epsilon 1e-5, tied
   llama   LlamaForCausalLM      untied
   mistral MistralForCausalLM    sliding_window None, untied
   qwen2   Qwen2ForCausalLM      (q/k/v biases, as always for Qwen2), use_sliding_window False, tied
   qwen3   Qwen3ForCausalLM      (q_norm / k_norm), use_sliding_window False, tied
   gemma3  Gemma3ForCausalLM     Gemma3TextConfig (model_type gemma3_text), 3 layers, layer_types
                                 [sliding_attention, full_attention, sliding_attention], sliding_window 4,
                                 query_pre_attn_scalar 16, rope_theta 10000 on sliding layers and 1000000
                                 (Gemma3's default global base) on the full layer, hidden_activation
                                 gelu_pytorch_tanh (default), no softcapping (defaults), tied
   Llama-family config: vocab_size 96, hidden 32, 2 layers, 4 attention heads, 2 key-value heads, head_dim 8,
   intermediate 48, max_position_embeddings 64, rope_parameters {rope_type default, rope_theta 10000},
   rms_norm_eps 1e-6, hidden_act silu, attention/MLP biases the architecture's default, dropouts 0.
   Special ids everywhere: pad 0, bos 1, eos 2 (config and generation_config.json).
   initializer_range 0.2 for every arch (transformers' default is 0.02: with it, at hidden 32, the attention
   and MLP outputs are ~10x smaller than the residual stream, the tied models (gpt2, qwen2, qwen3) greedily
   repeat the last prompt token forever, and the smallest top-1 / top-2 gap of a greedy step was 9e-6; with
   0.2 the generations vary and every gap is >= 1e-3 at logits of std ~1).
   Each folder: model.save_pretrained(dir) (config.json, model.safetensors, generation_config.json) and
   golden.safetensors. Weights: torch.manual_seed(crc32(arch)), the architecture's own init (so the pad
   row 0 of the embedding is zero where the embedding has padding_idx = pad_token_id: all but gpt2), then
   every 1-D parameter (biases, norm weights) gets N(0, 0.1) noise added (generator seeded with
   crc32(arch) + 1). The model is then reloaded from the saved folder (state dicts compared) and the
   goldens are computed with the reloaded model: model.eval(), torch.no_grad(), attn_implementation "eager".

   golden.safetensors (int64 ids, float32 logits/scores; V = 96):
     prompt_0 [7]           bos (1) + 6 random ids; prompt_1 [4]: 4 random ids. Random ids are drawn
                            from [3, 96) with torch.Generator seeded with crc32("prompt:" + arch)
                            (prompt_0's 6 first, then prompt_1's 4), so pad/bos/eos never occur in them.
     logits_0 [7, V], logits_1 [4, V]   model(input_ids=prompt[None]).logits[0], each prompt alone, no mask
     greedy_0, greedy_1     generate(prompt[None], attention_mask=ones, do_sample=False, num_beams=1,
                            max_new_tokens=16, eos_token_id=2, pad_token_id=0)[0], prompt included;
                            shorter than prompt + 16 if EOS was produced (meta.json says so)
     greedy_noeos_0         same on prompt_0 with eos_token_id=None and max_new_tokens=24 (no early stop;
                            no min_new_tokens): always [7 + 24]
     rep_0                  greedy on prompt_0, repetition_penalty=1.3, max_new_tokens=16
     ngram_0                greedy on prompt_0, no_repeat_ngram_size=2, max_new_tokens=16
     beam_0 [1, L]          prompt_0, num_beams=3, do_sample=False, max_new_tokens=12, length_penalty=1.0,
                            early_stopping=False, num_return_sequences=1
     beam_1 [2, L]          prompt_0, num_beams=4, do_sample=False, max_new_tokens=10, length_penalty=0.5,
                            early_stopping=True, num_return_sequences=2 (rows padded with 0 by generate)
     beam_0_scores [1], beam_1_scores [2]   sequences_scores of the same calls with
                            return_dict_in_generate=True, output_scores=True (sum of the log-probs of the
                            generated tokens / generated_length ** length_penalty)
     batch_input_ids [2, 7], batch_attention_mask [2, 7]   prompt_0 and prompt_1 left-padded with 0
     batch_greedy [2, 7 + 16]   generate(batch_input_ids, attention_mask=batch_attention_mask,
                            do_sample=False, num_beams=1, max_new_tokens=16, eos_token_id=2, pad_token_id=0);
                            rows that stop early are padded with 0 by generate
     batch_logits [2, 7, V] model(input_ids=batch_input_ids, attention_mask=batch_attention_mask,
                            position_ids=(batch_attention_mask.cumsum(-1) - 1).clamp(min=0)).logits
                            (values at padded positions are not meaningful)
     greedy_stop_0          greedy on prompt_0, max_new_tokens=16, eos_token_id=X (an int): X is picked from
                            greedy_0's new tokens (the first one, at new index >= 3, else 1 or 2, else 0,
                            that occurs there for the first time and is not the last), so generation stops
                            on X early
     batch_greedy_stop [2, 7 + 16]  like batch_greedy with eos_token_id=[2, Y] (a list: several stop ids):
                            Y is picked the same way from row 1's new tokens among those that row 0 never
                            produces, so row 1 stops early (then 0-padded) while row 0 runs all 16 steps.
                            X and Y per arch: meta.json archs.<arch>.eos_stop_case_args. These two are the
                            EOS-stop goldens: the random models seldom produce EOS 2 by themselves
                            (archs.<arch>.stopped_on_eos lists every stop)
   Every generate() call above also passes use_cache=True (the default) and nothing else.

   Self-checks, recorded in meta.json (the generator fails if the first three do not hold):
     * every generate() call gives the same sequences with use_cache=False;
     * greedy_noeos_0 equals a hand-written greedy loop (full forward, argmax of the last logits, 24 times);
     * batch_greedy[:, 7] == argmax(batch_logits[:, -1]): generate builds position_ids from the attention
       mask exactly like that (GenerationMixin._prepare_position_ids_for_generation: cumsum - 1, then 0
       where the mask is 0), for every arch, GPT-2 included (GPT2LMHeadModel.forward takes position_ids);
     * gemma3: how much logits_0 moves when, with the same weights, sliding_window is 64, the full layer's
       rope_theta is 10000, or query_pre_attn_scalar is 32 (so each of these settings matters);
     * whether batch_greedy row 0 / 1's new tokens equal greedy_0 / greedy_1's (left padding invisible),
       logits_<i> against batch_logits at the real positions, and the smallest
       top-1 / top-2 gap of the processed scores over the greedy-type generations (a flip needs an error
       of that size).

Deterministic: fixed seeds, one torch thread, no timestamps; a rerun writes byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import warnings
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import safetensors  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "golden" / "generation"

ARCHS = ["gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma3"]
CLASSES = {
    "gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "gemma3": "Gemma3ForCausalLM",
}
TIED = {"gpt2": True, "llama": False, "mistral": False, "qwen2": True, "qwen3": True, "gemma3": True}
VOCAB = 96
PAD, BOS, EOS = 0, 1, 2
FIRST_RANDOM_ID = 3
PROMPT_LENS = [7, 4]  # prompt_0 = bos + 6 random ids, prompt_1 = 4 random ids
NOISE_STD = 0.1
# 10x the transformers default of 0.02: with 0.02 and hidden 32 every layer is nearly the identity, the tied
# models just echo the last prompt token and the top-1 / top-2 gaps go down to 1e-5 (see the docstring)
INIT_RANGE = 0.2
ROPE_THETA = 10000.0
GEMMA3_GLOBAL_ROPE_THETA = 1000000.0
GEMMA3_LAYER_TYPES = ["sliding_attention", "full_attention", "sliding_attention"]

# golden tensor -> (input: "prompt_0" / "prompt_1" / "batch", generate() keyword arguments)
GREEDY = dict(do_sample=False, num_beams=1)
CASES = {
    "greedy_0": ("prompt_0", dict(GREEDY, max_new_tokens=16, eos_token_id=EOS, pad_token_id=PAD)),
    "greedy_1": ("prompt_1", dict(GREEDY, max_new_tokens=16, eos_token_id=EOS, pad_token_id=PAD)),
    "greedy_noeos_0": ("prompt_0", dict(GREEDY, max_new_tokens=24, eos_token_id=None, pad_token_id=PAD)),
    "rep_0": ("prompt_0", dict(GREEDY, max_new_tokens=16, repetition_penalty=1.3, eos_token_id=EOS,
                               pad_token_id=PAD)),
    "ngram_0": ("prompt_0", dict(GREEDY, max_new_tokens=16, no_repeat_ngram_size=2, eos_token_id=EOS,
                                 pad_token_id=PAD)),
    "beam_0": ("prompt_0", dict(do_sample=False, num_beams=3, max_new_tokens=12, length_penalty=1.0,
                                early_stopping=False, num_return_sequences=1, eos_token_id=EOS,
                                pad_token_id=PAD)),
    "beam_1": ("prompt_0", dict(do_sample=False, num_beams=4, max_new_tokens=10, length_penalty=0.5,
                                early_stopping=True, num_return_sequences=2, eos_token_id=EOS,
                                pad_token_id=PAD)),
    "batch_greedy": ("batch", dict(GREEDY, max_new_tokens=16, eos_token_id=EOS, pad_token_id=PAD)),
}
# outputs that keep the batch dimension (the others are row 0 of a batch of one)
KEEP_BATCH = {"beam_0", "beam_1", "batch_greedy"}

META_NOTES = {
    "attention_mask": "single-prompt generate() calls pass attention_mask=torch.ones_like(input_ids) "
                      "explicitly (what generate would infer, since pad id 0 never occurs in a prompt)",
    "eos_none": "greedy_noeos_0 passes eos_token_id=None to generate(); transformers applies it over the "
                "generation_config.json value (2), so EOS does not stop generation (min_new_tokens is not "
                "used, so EOS is not suppressed either: an id 2 may appear among the new tokens)",
    "processors": "with do_sample=False no temperature / top-k / top-p warper is applied; the only logits "
                  "processors are the ones the arguments ask for (repetition_penalty: logits of ids present "
                  "in the sequence so far, prompt included, are divided by 1.3 if > 0, multiplied if < 0; "
                  "no_repeat_ngram_size=2: ids that would repeat a bigram already in the sequence, prompt "
                  "included, get -inf)",
    "padding": "generate() pads finished rows (EOS reached) and shorter returned beams with pad_token_id 0; "
               "batch_logits at padded positions are not meaningful",
    "pad_embedding": "every arch but gpt2 builds its embedding with padding_idx = pad_token_id = 0, so the "
                     "initialised row 0 is zero (and with tied weights the logit of id 0 is exactly 0)",
    "beam_scores": "beam_<i>_scores = sequences_scores of return_dict_in_generate=True, output_scores=True: "
                   "sum of the log-softmax scores of the generated tokens of that hypothesis divided by "
                   "generated_length ** length_penalty (generated length without the prompt)",
    "gemma3": "embeddings are multiplied by sqrt(hidden_size) (non-persistent buffer, not in "
              "model.safetensors); RMSNorm is x / sqrt(mean(x^2) + eps) * (1 + w) (w is the stored weight); "
              "attention scores are scaled by query_pre_attn_scalar ** -0.5 (= 16 ** -0.5, deliberately not "
              "head_dim ** -0.5); q_norm / k_norm per head; pre- and post-feedforward norms; "
              "sliding_attention layers see keys with q - 4 < k <= q (4 positions, itself included, by index "
              "in the padded row) and use rope_parameters.sliding_attention.rope_theta 10000, the "
              "full_attention layer uses rope_parameters.full_attention.rope_theta 1000000",
    "gpt2": "learned absolute positions (wpe); under left padding generate() passes position_ids = "
            "cumsum(mask) - 1 with 0 at padded positions, so the first real token has position 0",
}


# ---------------------------------------------------------------------------------------------------
# helpers


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def crc(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def save_golden(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu().contiguous()
        v = v.to(torch.float32) if v.is_floating_point() else v.to(torch.int64)
        out[k] = v.clone()
    save_file(out, str(path))


def perturb_1d(model: torch.nn.Module, seed: int) -> None:
    """Add N(0, NOISE_STD) to every 1-D parameter (biases, norm weights) so they are not 0 / 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if p.dim() == 1:
                p.add_(torch.randn(p.shape, generator=g) * NOISE_STD)


def tiny_config(arch: str):
    specials = dict(pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, tie_word_embeddings=TIED[arch],
                    initializer_range=INIT_RANGE)
    if arch == "gpt2":
        return transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4, n_inner=48,
                                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, summary_first_dropout=0.0,
                                       **specials)
    common = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64, rms_norm_eps=1e-6,
                  attention_dropout=0.0, **specials)
    rope = {"rope_type": "default", "rope_theta": ROPE_THETA}
    if arch == "llama":
        return transformers.LlamaConfig(head_dim=8, rope_parameters=rope, **common)
    if arch == "mistral":
        return transformers.MistralConfig(head_dim=8, sliding_window=None, rope_parameters=rope, **common)
    if arch == "qwen2":  # no head_dim field: hidden_size // num_attention_heads = 8
        return transformers.Qwen2Config(use_sliding_window=False, rope_parameters=rope, **common)
    if arch == "qwen3":
        return transformers.Qwen3Config(head_dim=8, use_sliding_window=False, rope_parameters=rope, **common)
    if arch == "gemma3":
        common["num_hidden_layers"] = 3
        return transformers.Gemma3TextConfig(
            head_dim=8, query_pre_attn_scalar=16, sliding_window=4, layer_types=list(GEMMA3_LAYER_TYPES),
            rope_parameters={
                "sliding_attention": {"rope_type": "default", "rope_theta": ROPE_THETA},
                "full_attention": {"rope_type": "default", "rope_theta": GEMMA3_GLOBAL_ROPE_THETA},
            },
            **common)
    raise ValueError(arch)


def make_prompts(arch: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(crc("prompt:" + arch))
    body0 = torch.randint(FIRST_RANDOM_ID, VOCAB, (PROMPT_LENS[0] - 1,), generator=g)
    p1 = torch.randint(FIRST_RANDOM_ID, VOCAB, (PROMPT_LENS[1],), generator=g)
    p0 = torch.cat([torch.tensor([BOS]), body0])
    return p0.to(torch.int64), p1.to(torch.int64)


def left_pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), PAD, dtype=torch.int64)
    mask = torch.zeros((len(rows), width), dtype=torch.int64)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = r
        mask[i, width - len(r):] = 1
    return ids, mask


def min_gap(scores: tuple[torch.Tensor, ...], rows: int) -> float:
    """Smallest top-1 minus top-2 processed score over the steps (rows still running: finite top-1)."""
    gaps = []
    for s in scores:
        top = torch.topk(s.float(), 2, dim=-1).values
        for r in range(min(rows, s.shape[0])):
            if torch.isfinite(top[r, 0]) and torch.isfinite(top[r, 1]):
                gaps.append(float(top[r, 0] - top[r, 1]))
    return min(gaps)


def pick_stop_id(new: list[int], avoid: set[int]) -> int:
    """An id of `new` at its first occurrence, not in `avoid` (so another row does not stop on it), not the
    last token (so the stop is early), preferably at index >= 3, else 1 or 2, else 0 (tokens before the stop)."""
    order = list(range(3, len(new) - 1)) + list(range(1, min(3, len(new) - 1))) + [0]
    for k in order:
        if new.index(new[k]) == k and new[k] not in avoid:
            return new[k]
    raise RuntimeError(f"no stop id in {new}")


def manual_greedy(model, prompt: torch.Tensor, steps: int) -> torch.Tensor:
    seq = prompt[None].clone()
    for _ in range(steps):
        nxt = model(input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], dim=-1)
    return seq[0]


# ---------------------------------------------------------------------------------------------------


def gen_arch(out_dir: Path, arch: str) -> dict:
    folder = out_dir / "tiny" / arch
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    cls = getattr(transformers, CLASSES[arch])
    cfg = tiny_config(arch)
    seed = crc(arch)
    torch.manual_seed(seed)
    model = cls._from_config(cfg, attn_implementation="eager")
    model.generation_config = transformers.GenerationConfig(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    perturb_1d(model, seed + 1)
    model.eval()
    model.save_pretrained(str(folder))

    # the goldens describe the saved folder
    reloaded = cls.from_pretrained(str(folder), attn_implementation="eager").eval()
    sd_a, sd_b = model.state_dict(), reloaded.state_dict()
    assert sd_a.keys() == sd_b.keys() and all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a), arch
    model = reloaded
    assert model.dtype == torch.float32

    p0, p1 = make_prompts(arch)
    batch_ids, batch_mask = left_pad([p0, p1])
    inputs = {
        "prompt_0": (p0[None], torch.ones_like(p0[None])),
        "prompt_1": (p1[None], torch.ones_like(p1[None])),
        "batch": (batch_ids, batch_mask),
    }
    t: dict[str, torch.Tensor] = {"prompt_0": p0, "prompt_1": p1}
    checks: dict = {}
    lengths: dict = {}
    stopped_on_eos: list[str] = []
    gaps: dict = {}
    with torch.no_grad():
        t["logits_0"] = model(input_ids=p0[None]).logits[0]
        t["logits_1"] = model(input_ids=p1[None]).logits[0]
        t["batch_input_ids"], t["batch_attention_mask"] = batch_ids, batch_mask
        pos = (batch_mask.cumsum(-1) - 1).clamp(min=0)
        t["batch_logits"] = model(input_ids=batch_ids, attention_mask=batch_mask, position_ids=pos).logits

        nocache_equal = {}

        def run_case(name: str, src: str, kw: dict) -> None:
            ids, mask = inputs[src]
            seqs = model.generate(ids, attention_mask=mask, use_cache=True, **kw)
            again = model.generate(ids, attention_mask=mask, use_cache=False, **kw)
            nocache_equal[name] = bool(torch.equal(seqs, again))
            diag = model.generate(ids, attention_mask=mask, use_cache=True, return_dict_in_generate=True,
                                  output_scores=True, **kw)
            assert torch.equal(diag.sequences, seqs), name
            if name.startswith("beam"):
                t[name + "_scores"] = diag.sequences_scores
            else:
                gaps[name] = min_gap(diag.scores, seqs.shape[0])
            t[name] = seqs if (name in KEEP_BATCH or src == "batch") else seqs[0]
            lengths[name] = list(seqs.shape)
            prompt_len = ids.shape[1]
            eos = kw.get("eos_token_id")
            eos_ids = [] if eos is None else (list(eos) if isinstance(eos, list) else [eos])
            for r in range(seqs.shape[0]):
                new = seqs[r, prompt_len:].tolist()
                hits = [i for i, x in enumerate(new) if x in eos_ids]
                if hits:
                    stopped_on_eos.append(f"{name}[{r}]: eos id {new[hits[0]]} after {hits[0] + 1} new tokens "
                                          f"(of max_new_tokens {kw['max_new_tokens']})")

        for name, (src, kw) in CASES.items():
            run_case(name, src, kw)

        # EOS-stop cases: the stop ids are picked from the generations above, so that the stop happens
        new0 = t["greedy_0"][PROMPT_LENS[0]:].tolist()
        x0 = pick_stop_id(new0, set())
        stop_kw = dict(GREEDY, max_new_tokens=16, eos_token_id=x0, pad_token_id=PAD)
        run_case("greedy_stop_0", "prompt_0", stop_kw)
        width = batch_ids.shape[1]
        row0, row1 = (t["batch_greedy"][r, width:].tolist() for r in range(2))
        y = pick_stop_id(row1, set(row0))
        batch_stop_kw = dict(GREEDY, max_new_tokens=16, eos_token_id=[EOS, y], pad_token_id=PAD)
        run_case("batch_greedy_stop", "batch", batch_stop_kw)
        stop_args = {"greedy_stop_0": stop_kw, "batch_greedy_stop": batch_stop_kw}
        assert t["greedy_stop_0"].shape[0] < PROMPT_LENS[0] + 16 and t["greedy_stop_0"][-1] == x0, arch
        bs = t["batch_greedy_stop"]
        assert bs.shape[1] == width + 16 and bs[1, -1] == PAD and bs[0, -1] != PAD, arch
        assert all(nocache_equal.values()), (arch, nocache_equal)
        checks["generate_use_cache_false_equal"] = nocache_equal

        manual = manual_greedy(model, p0, CASES["greedy_noeos_0"][1]["max_new_tokens"])
        checks["greedy_noeos_0_equals_manual_argmax_loop"] = bool(torch.equal(manual, t["greedy_noeos_0"]))
        assert checks["greedy_noeos_0_equals_manual_argmax_loop"], arch
        assert t["greedy_noeos_0"].shape[0] == PROMPT_LENS[0] + 24, arch

        first_new = t["batch_greedy"][:, batch_ids.shape[1]]
        checks["batch_greedy_first_new_equals_argmax_batch_logits_last"] = bool(
            torch.equal(first_new, t["batch_logits"][:, -1].argmax(-1)))
        assert checks["batch_greedy_first_new_equals_argmax_batch_logits_last"], arch
        for r, (single, plen) in enumerate([(t["greedy_0"], PROMPT_LENS[0]), (t["greedy_1"], PROMPT_LENS[1])]):
            b = t["batch_greedy"][r, batch_ids.shape[1]:]
            g = single[plen:]
            checks[f"batch_greedy_row{r}_new_tokens_equal_greedy_{r}"] = bool(
                torch.equal(b[:len(g)], g) and bool((b[len(g):] == PAD).all()))
        checks["logits_0_vs_batch_logits_row0_max_abs_diff"] = float(
            (t["logits_0"] - t["batch_logits"][0]).abs().max())
        checks["logits_1_vs_batch_logits_row1_real_positions_max_abs_diff"] = float(
            (t["logits_1"] - t["batch_logits"][1, PROMPT_LENS[0] - PROMPT_LENS[1]:]).abs().max())
        checks["min_top1_top2_gap_of_processed_scores"] = gaps
        if arch == "gemma3":
            # the Gemma3 specifics must change the outputs: same weights, one setting changed
            variants = {
                "sliding_window_64": dict(sliding_window=64),
                "full_attention_rope_theta_10000": dict(rope_parameters={
                    "sliding_attention": {"rope_type": "default", "rope_theta": ROPE_THETA},
                    "full_attention": {"rope_type": "default", "rope_theta": ROPE_THETA}}),
                "query_pre_attn_scalar_32": dict(query_pre_attn_scalar=32),
            }
            for key, change in variants.items():
                vcfg = tiny_config(arch)
                for k, v in change.items():
                    setattr(vcfg, k, v)
                other = cls._from_config(vcfg, attn_implementation="eager").eval()
                other.load_state_dict(model.state_dict())
                diff = float((other(input_ids=p0[None]).logits[0] - t["logits_0"]).abs().max())
                checks[f"logits_0_max_abs_diff_if_{key}"] = diff
        noeos_new = t["greedy_noeos_0"][PROMPT_LENS[0]:].tolist()
        checks["greedy_noeos_0_new_tokens_contain_eos"] = EOS in noeos_new

    save_golden(folder / "golden.safetensors", t)
    saved_cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    saved_gen = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
    return {
        "class": CLASSES[arch],
        "seed": seed,
        "noise_seed": seed + 1,
        "prompt_seed": crc("prompt:" + arch),
        "prompt_0": p0.tolist(),
        "prompt_1": p1.tolist(),
        "config_json": saved_cfg,
        "generation_config_json": saved_gen,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "shapes": {k: list(v.shape) for k, v in sorted(t.items())},
        "generate_shapes": lengths,
        "stopped_on_eos": stopped_on_eos,
        "eos_stop_case_args": stop_args,
        "checks": checks,
    }


def caveats(per_arch: dict) -> list[str]:
    out = []
    for arch, m in per_arch.items():
        for stop in m["stopped_on_eos"]:
            if not stop.startswith(("greedy_stop_0", "batch_greedy_stop")):
                out.append(f"{arch}: {stop}")
    beam_stops = [s for m in per_arch.values() for s in m["stopped_on_eos"] if s.startswith("beam")]
    if not beam_stops:
        out.append("no beam_0 / beam_1 hypothesis of any arch ends on EOS: every returned beam has max_new_tokens "
                   "new tokens, so early_stopping and finished-hypothesis bookkeeping are not exercised, and "
                   "length_penalty only rescales beam_<i>_scores (all lengths are equal)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", choices=ARCHS, help="only these archs (meta.json then lists only them)")
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    archs = args.only or ARCHS

    per_arch = {arch: gen_arch(out, arch) for arch in archs}
    generate_args = {}
    for name, (src, kw) in CASES.items():
        generate_args[name] = {
            "input_ids": "batch_input_ids" if src == "batch" else f"{src}[None]",
            "attention_mask": "batch_attention_mask" if src == "batch" else f"ones_like({src}[None])",
            **kw,
            "use_cache": True,
            "returned": "all rows" if name in KEEP_BATCH else "row 0",
        }
    generate_args["greedy_stop_0"] = {
        "input_ids": "prompt_0[None]", "attention_mask": "ones_like(prompt_0[None])",
        **dict(GREEDY, max_new_tokens=16), "eos_token_id": "X (int, per arch: archs.<arch>.eos_stop_case_args)",
        "pad_token_id": PAD, "use_cache": True, "returned": "row 0",
        "X": "the first new token of greedy_0, at new index >= 3 (else 1 or 2, else 0), that occurs there for "
             "the first time and is not greedy_0's last token",
    }
    generate_args["batch_greedy_stop"] = {
        "input_ids": "batch_input_ids", "attention_mask": "batch_attention_mask",
        **dict(GREEDY, max_new_tokens=16), "eos_token_id": "[2, Y] (a list, per arch: archs.<arch>.eos_stop_case_args)",
        "pad_token_id": PAD, "use_cache": True, "returned": "all rows",
        "Y": "the first new token of batch_greedy row 1 chosen like X that does not occur among row 0's new "
             "tokens: row 1 stops early and is padded with 0, row 0 runs all 16 steps",
    }
    write_json(out / "meta.json", {
        "generator": "tools/oracle/gen_generation.py",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": safetensors.__version__,
        },
        "special_tokens": {"pad": PAD, "bos": BOS, "eos": EOS},
        "vocab_size": VOCAB,
        "random_prompt_ids": f"torch.randint({FIRST_RANDOM_ID}, {VOCAB}) with torch.Generator seeded with "
                             "crc32('prompt:' + arch): prompt_0 = [bos] + 6 ids, then prompt_1 = 4 ids",
        "weights": f"torch.manual_seed(crc32(arch)), the architecture's init with initializer_range {INIT_RANGE} "
                   f"(10x the default), then N(0, {NOISE_STD}) added to every 1-D parameter (torch.Generator "
                   "seeded with crc32(arch) + 1, parameters in name order)",
        "forward": {
            "logits_<i>": "model(input_ids=prompt_<i>[None]).logits[0]",
            "batch_logits": "model(input_ids=batch_input_ids, attention_mask=batch_attention_mask, "
                            "position_ids=(batch_attention_mask.cumsum(-1) - 1).clamp(min=0)).logits",
        },
        "generate_args": generate_args,
        "beam_scores_args": "the beam_<i> arguments plus return_dict_in_generate=True, output_scores=True; "
                            "beam_<i>_scores = .sequences_scores (its .sequences equal beam_<i>)",
        "archs": per_arch,
        "caveats": caveats(per_arch),
        "notes": META_NOTES,
    })
    for arch, m in per_arch.items():
        print(f"tiny/{arch}: " + ", ".join(f"{k} {v}" for k, v in m["generate_shapes"].items()))
        for s in m["stopped_on_eos"]:
            print(f"  stopped on EOS: {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
