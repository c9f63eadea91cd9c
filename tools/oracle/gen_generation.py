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

TINY RANDOM ENCODER-DECODER MODELS   tiny/<arch>/   (meta.json "encoder_decoder")
   t5        T5ForConditionalGeneration  T5Config vocab 96, d_model 32, d_kv 8, d_ff 48, 2 + 2 layers, 4 heads,
                                 relative_attention_num_buckets 8, relative_attention_max_distance 20,
                                 feed_forward_proj relu, tie_word_embeddings True, dropout 0; pad 0, eos 1,
                                 decoder_start 0
   t5-gated  T5ForConditionalGeneration  the same with feed_forward_proj gated-gelu and tie_word_embeddings False
                                 (T5 v1.1 / flan-t5 style). transformers 5.24's T5Config turns that into
                                 tie_word_embeddings true + scale_decoder_outputs false (config.json says so) and
                                 would share lm_head with the embedding; the generator gives lm_head its own
                                 N(0, 1) weight (T5's init for an untied head; torch.Generator seeded with
                                 crc32(arch) + 2), saved as lm_head.weight and kept apart on reload
   bart      BartForConditionalGeneration  d_model 32, 2 + 2 layers, 4 + 4 heads, ffn 48, max_position_embeddings
                                 64, dropouts 0, scale_embedding False, BART's defaults otherwise (gelu, tied,
                                 post-LN); pad 1, bos 0, eos 2, decoder_start 2, forced_eos 2
   marian    MarianMTModel       the same sizes, scale_embedding True, sinusoidal positions (not saved); pad 95,
                                 eos 0, decoder_start 95, forced_eos 0, no bos
   Weights: torch.manual_seed(crc32(arch)), the architecture's init (T5: its own scheme, initializer_factor 1.0,
   already at logits of std ~1; BART / Marian: init_std 0.2, their name for initializer_range, 10x the default
   for the reason above), N(0, 0.1) on every 1-D parameter (seed crc32(arch) + 1), and for BART / Marian
   N(0, 0.1) added to final_logits_bias ([1, V] buffer, zero at init; seed crc32(arch) + 2).
   generation_config.json: decoder_start / eos / pad (+ bos, forced_eos where set above). Saved, reloaded and
   computed as above (eval, no_grad, eager attention, float32).

   golden.safetensors (int64 ids, float32; V = 96, random ids drawn from [3, 96), marian: [3, 95) so its pad
   95 never occurs; generate() returns decoder sequences starting with decoder_start_token_id):
     input_0 [7], input_1 [4]   6 / 3 random ids + [eos] (torch.Generator seeded with crc32("prompt:" + arch))
     encoder_hidden_0 [7, 32]   model.get_encoder()(input_ids=input_0[None]).last_hidden_state[0]
     decoder_input_0 [5]        decoder_start + 4 random ids (generator seeded with crc32("decoder:" + arch))
     logits_0 [5, V]            model(input_ids=input_0[None], decoder_input_ids=decoder_input_0[None]).logits[0]
     greedy_0, greedy_1 [1 + <=12]  generate(input[None], attention_mask=ones, do_sample=False, num_beams=1,
                                max_new_tokens=12)[0]; bart / marian: forced_eos makes the 12th new token eos
     rep_0                      greedy on input_0 with repetition_penalty=1.3 (applied over the decoder ids,
                                start id included, not the encoder ids)
     ngram_0                    greedy on input_0 with no_repeat_ngram_size=2 (the varied one: plain greedy
                                mostly repeats one id in these tiny models)
     beam_0 [1, 1 + <=10], beam_0_scores [1]   num_beams=3, max_new_tokens=10, length_penalty=1.0,
                                early_stopping=False, num_return_sequences=1; scores = sequences_scores
     batch_input_ids [2, 7], batch_attention_mask [2, 7]   input_0, input_1 RIGHT-padded with the pad id
     batch_encoder_hidden [2, 7, 32]   encoder(batch_input_ids, attention_mask=batch_attention_mask)
     batch_greedy [2, 13]       greedy on the batch, max_new_tokens=12 (finished rows padded with the pad id)
     greedy_stop_0, batch_greedy_stop   EOS-stop cases like the decoder-only ones (eos_token_id X / [eos, Y]
                                picked from greedy_0 / batch_greedy; meta.json archs.<arch>.eos_stop_case_args)
   Every generate() call passes use_cache=True and only the arguments listed; decoder_start / eos / pad /
   forced_eos come from generation_config.json.
   Self-checks (the generator fails unless they hold): use_cache=False gives the same sequences; greedy_0 / 1
   equal a hand-written loop (full forward, argmax, forced eos at the last step); rep_0 equals the loop with
   the penalty over the decoder ids; ngram_0 equals the loop banning repeated decoder bigrams; logits_0 equals
   lm_head(decoder output) scaled by d_model ** -0.5 (t5) / plus final_logits_bias (bart, marian). meta.json
   also records the T5 relative-position buckets the goldens reach and notes on each architecture, with the
   transformers source lines they were checked against.

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


# ---------------------------------------------------------------------------------------------------
# encoder-decoder models (tiny/<arch>/ for arch in S2S_ARCHS; meta.json "encoder_decoder")

S2S_ARCHS = ["t5", "t5-gated", "bart", "marian"]
S2S_CLASSES = {
    "t5": "T5ForConditionalGeneration", "t5-gated": "T5ForConditionalGeneration",
    "bart": "BartForConditionalGeneration", "marian": "MarianMTModel",
}
# special ids per arch: pad, eos, decoder_start, bos (None: unset), forced_eos (None: unset)
S2S_SPECIALS = {
    "t5": dict(pad=0, eos=1, decoder_start=0, bos=None, forced_eos=None),
    "t5-gated": dict(pad=0, eos=1, decoder_start=0, bos=None, forced_eos=None),
    "bart": dict(pad=1, eos=2, decoder_start=2, bos=0, forced_eos=2),
    "marian": dict(pad=95, eos=0, decoder_start=95, bos=None, forced_eos=0),
}
S2S_D_MODEL = 32
S2S_INPUT_LENS = [7, 4]  # random ids, then eos (as tokenizers append it)
S2S_DECODER_RANDOM = 4  # decoder_input_0 = [decoder_start] + 4 random ids
# BART / Marian: init_std 0.2 (their name for initializer_range; default 0.02), for the reason given for the
# decoder-only models (logits of std ~1 at d_model 32). T5 keeps its own init (initializer_factor 1.0: shared
# N(0, 1), projections N(0, fan_in ** -0.5)), which is already at that scale.
S2S_INIT_STD = 0.2
S2S_NEW = 12
S2S_CASES = {
    "greedy_0": ("input_0", dict(GREEDY, max_new_tokens=S2S_NEW)),
    "greedy_1": ("input_1", dict(GREEDY, max_new_tokens=S2S_NEW)),
    "rep_0": ("input_0", dict(GREEDY, max_new_tokens=S2S_NEW, repetition_penalty=1.3)),
    "ngram_0": ("input_0", dict(GREEDY, max_new_tokens=S2S_NEW, no_repeat_ngram_size=2)),
    "beam_0": ("input_0", dict(do_sample=False, num_beams=3, max_new_tokens=10, length_penalty=1.0,
                               early_stopping=False, num_return_sequences=1)),
    "batch_greedy": ("batch", dict(GREEDY, max_new_tokens=S2S_NEW)),
}
S2S_KEEP_BATCH = {"beam_0", "batch_greedy", "batch_greedy_stop"}


def random_id_limit(arch: str) -> int:
    """Random ids are drawn from [3, limit): limit = vocab size, or the pad id where pad is the last id (marian)."""
    pad = S2S_SPECIALS[arch]["pad"]
    return pad if pad == VOCAB - 1 else VOCAB


def s2s_config(arch: str):
    sp = S2S_SPECIALS[arch]
    if arch in ("t5", "t5-gated"):
        gated = arch == "t5-gated"
        return transformers.T5Config(
            vocab_size=VOCAB, d_model=S2S_D_MODEL, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=2, num_heads=4,
            relative_attention_num_buckets=8, relative_attention_max_distance=20,
            feed_forward_proj="gated-gelu" if gated else "relu", tie_word_embeddings=not gated, dropout_rate=0.0,
            pad_token_id=sp["pad"], eos_token_id=sp["eos"], decoder_start_token_id=sp["decoder_start"])
    common = dict(vocab_size=VOCAB, d_model=S2S_D_MODEL, encoder_layers=2, decoder_layers=2,
                  encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48,
                  max_position_embeddings=64, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                  init_std=S2S_INIT_STD, pad_token_id=sp["pad"], eos_token_id=sp["eos"],
                  decoder_start_token_id=sp["decoder_start"], forced_eos_token_id=sp["forced_eos"])
    if arch == "bart":
        return transformers.BartConfig(bos_token_id=sp["bos"], scale_embedding=False, **common)
    if arch == "marian":
        return transformers.MarianConfig(scale_embedding=True, **common)
    raise ValueError(arch)


def s2s_generation_config(arch: str) -> transformers.GenerationConfig:
    sp = S2S_SPECIALS[arch]
    kw = dict(bos_token_id=sp["bos"], decoder_start_token_id=sp["decoder_start"], eos_token_id=sp["eos"],
              forced_eos_token_id=sp["forced_eos"], pad_token_id=sp["pad"])
    return transformers.GenerationConfig(**{k: v for k, v in kw.items() if v is not None})


def make_s2s_inputs(arch: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    sp, hi = S2S_SPECIALS[arch], random_id_limit(arch)
    g = torch.Generator().manual_seed(crc("prompt:" + arch))
    body0 = torch.randint(FIRST_RANDOM_ID, hi, (S2S_INPUT_LENS[0] - 1,), generator=g)
    body1 = torch.randint(FIRST_RANDOM_ID, hi, (S2S_INPUT_LENS[1] - 1,), generator=g)
    eos = torch.tensor([sp["eos"]])
    gd = torch.Generator().manual_seed(crc("decoder:" + arch))
    dec = torch.randint(FIRST_RANDOM_ID, hi, (S2S_DECODER_RANDOM,), generator=gd)
    dec = torch.cat([torch.tensor([sp["decoder_start"]]), dec])
    return (torch.cat([body0, eos]).to(torch.int64), torch.cat([body1, eos]).to(torch.int64), dec.to(torch.int64))


def right_pad(rows: list[torch.Tensor], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.int64)
    mask = torch.zeros((len(rows), width), dtype=torch.int64)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
        mask[i, :len(r)] = 1
    return ids, mask


def manual_s2s_greedy(model, arch: str, enc_ids: torch.Tensor, steps: int, penalty: float | None = None,
                      penalty_ids: str = "decoder", ban_bigrams: bool = False) -> torch.Tensor:
    """Full forward each step (no cache), argmax of the last logits; repetition penalty over the ids chosen by
    penalty_ids ("decoder": the decoder sequence so far, start id included; "decoder_without_start";
    "decoder_and_encoder"); ban_bigrams: -inf for ids that would repeat a bigram of the decoder sequence so far
    (start id included); forced_eos_token_id at the last step; stops after eos."""
    sp = S2S_SPECIALS[arch]
    dec = [sp["decoder_start"]]
    for step in range(steps):
        logits = model(input_ids=enc_ids[None], decoder_input_ids=torch.tensor([dec])).logits[0, -1].clone()
        if penalty is not None:
            ids = {"decoder": dec, "decoder_without_start": dec[1:],
                   "decoder_and_encoder": dec + enc_ids.tolist()}[penalty_ids]
            for i in sorted(set(ids)):
                logits[i] = logits[i] / penalty if logits[i] > 0 else logits[i] * penalty
        if ban_bigrams:
            for a, b in zip(dec[:-1], dec[1:]):
                if a == dec[-1]:
                    logits[b] = float("-inf")
        if sp["forced_eos"] is not None and step == steps - 1:
            nxt = sp["forced_eos"]
        else:
            nxt = int(logits.argmax())
        dec.append(nxt)
        if nxt == sp["eos"]:
            break
    return torch.tensor(dec, dtype=torch.int64)


def t5_buckets(bidirectional: bool, q_len: int, k_len: int, causal: bool) -> list[int]:
    """Relative-position buckets a (q_len x k_len) attention uses (causal: only keys k <= q)."""
    from transformers.models.t5.modeling_t5 import T5Attention
    rel = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None]
    b = T5Attention._relative_position_bucket(rel, bidirectional=bidirectional, num_buckets=8, max_distance=20)
    if causal:
        b = b[rel <= 0]
    return sorted(set(b.flatten().tolist()))


def gen_s2s_arch(out_dir: Path, arch: str) -> dict:
    folder = out_dir / "tiny" / arch
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    sp = S2S_SPECIALS[arch]
    cls = getattr(transformers, S2S_CLASSES[arch])
    cfg = s2s_config(arch)
    seed = crc(arch)
    torch.manual_seed(seed)
    model = cls._from_config(cfg, attn_implementation="eager")
    model.generation_config = s2s_generation_config(arch)
    extra = None
    if arch == "t5-gated":
        # transformers 5.24's T5Config always sets tie_word_embeddings = True (tie_word_embeddings=False only turns
        # off the d_model ** -0.5 output scaling: scale_decoder_outputs False), so the fresh model's lm_head IS
        # shared. Untie it as in a T5 v1.1 / flan-t5 checkpoint: an own lm_head.weight, drawn like T5's _init_weights
        # draws an untied lm_head (N(0, initializer_factor * 1.0)); save_pretrained then writes it and
        # from_pretrained keeps it apart (both keys present with different values: not tied).
        g = torch.Generator().manual_seed(seed + 2)
        model.lm_head.weight = torch.nn.Parameter(torch.randn(model.lm_head.weight.shape, generator=g))
        model.all_tied_weights_keys.pop("lm_head.weight", None)
        extra = "lm_head.weight ~ N(0, 1), torch.Generator seeded with crc32(arch) + 2"
    perturb_1d(model, seed + 1)
    if hasattr(model, "final_logits_bias"):
        # a zero buffer at init (2-D [1, V], so perturb_1d skips it): make it matter
        g = torch.Generator().manual_seed(seed + 2)
        with torch.no_grad():
            model.final_logits_bias.add_(torch.randn(model.final_logits_bias.shape, generator=g) * NOISE_STD)
        extra = f"final_logits_bias [1, V] += N(0, {NOISE_STD}), torch.Generator seeded with crc32(arch) + 2"
    model.eval()
    model.save_pretrained(str(folder))

    reloaded = cls.from_pretrained(str(folder), attn_implementation="eager").eval()
    sd_a, sd_b = model.state_dict(), reloaded.state_dict()
    assert sd_a.keys() == sd_b.keys() and all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a), arch
    model = reloaded
    assert model.dtype == torch.float32
    lm_head_tied = model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert lm_head_tied == (arch != "t5-gated"), arch

    x0, x1, dec0 = make_s2s_inputs(arch)
    batch_ids, batch_mask = right_pad([x0, x1], sp["pad"])
    inputs = {
        "input_0": (x0[None], torch.ones_like(x0[None])),
        "input_1": (x1[None], torch.ones_like(x1[None])),
        "batch": (batch_ids, batch_mask),
    }
    t: dict[str, torch.Tensor] = {"input_0": x0, "input_1": x1}
    checks: dict = {}
    lengths: dict = {}
    stopped_on_eos: list[str] = []
    gaps: dict = {}
    encoder = model.get_encoder()
    with torch.no_grad():
        t["encoder_hidden_0"] = encoder(input_ids=x0[None]).last_hidden_state[0]
        t["decoder_input_0"] = dec0
        t["logits_0"] = model(input_ids=x0[None], decoder_input_ids=dec0[None]).logits[0]
        t["batch_input_ids"], t["batch_attention_mask"] = batch_ids, batch_mask
        t["batch_encoder_hidden"] = encoder(input_ids=batch_ids, attention_mask=batch_mask).last_hidden_state

        nocache_equal = {}

        def run_case(name: str, src: str, kw: dict) -> None:
            ids, mask = inputs[src]
            seqs = model.generate(ids, attention_mask=mask, use_cache=True, **kw)
            again = model.generate(ids, attention_mask=mask, use_cache=False, **kw)
            nocache_equal[name] = bool(torch.equal(seqs, again))
            diag = model.generate(ids, attention_mask=mask, use_cache=True, return_dict_in_generate=True,
                                  output_scores=True, output_logits=True, **kw)
            assert torch.equal(diag.sequences, seqs), name
            assert bool((seqs[:, 0] == sp["decoder_start"]).all()), name
            if name.startswith("beam"):
                t[name + "_scores"] = diag.sequences_scores
            else:
                gaps[name] = min_gap(diag.scores, seqs.shape[0])
            t[name] = seqs if name in S2S_KEEP_BATCH else seqs[0]
            lengths[name] = list(seqs.shape)
            steps = kw["max_new_tokens"]
            eos = kw.get("eos_token_id", sp["eos"])
            eos_ids = list(eos) if isinstance(eos, list) else [eos]
            for r in range(seqs.shape[0]):
                new = seqs[r, 1:].tolist()
                hits = [i for i, x in enumerate(new) if x in eos_ids]
                if not hits:
                    continue
                k = hits[0]
                msg = f"{name}[{r}]: eos id {new[k]} after {k + 1} new tokens (of max_new_tokens {steps})"
                if sp["forced_eos"] is not None and k == steps - 1 and new[k] == sp["forced_eos"]:
                    msg += ", the last step, where forced_eos_token_id forces it"
                    if not name.startswith("beam"):
                        raw = int(diag.logits[k][r].argmax())
                        msg += (" (the raw argmax was eos too)" if raw == sp["eos"]
                                else f" (the raw argmax was {raw})")
                stopped_on_eos.append(msg)

        for name, (src, kw) in S2S_CASES.items():
            run_case(name, src, kw)

        # EOS-stop cases, as for the decoder-only models: stop ids picked from the generations above
        pad = sp["pad"]
        x_stop = pick_stop_id(t["greedy_0"][1:].tolist(), set())
        stop_kw = dict(GREEDY, max_new_tokens=S2S_NEW, eos_token_id=x_stop)
        run_case("greedy_stop_0", "input_0", stop_kw)
        assert t["greedy_stop_0"].shape[0] < 1 + S2S_NEW and t["greedy_stop_0"][-1] == x_stop, arch
        rows = [[x for x in t["batch_greedy"][r, 1:].tolist() if x not in (sp["eos"], pad)] for r in range(2)]
        try:
            y_stop, stopper = pick_stop_id(rows[1], set(rows[0])), "row 1"
        except RuntimeError:
            try:
                y_stop, stopper = pick_stop_id(rows[0], set(rows[1])), "row 0"
            except RuntimeError:  # both rows generate the same ids: both stop at the same step
                y_stop, stopper = pick_stop_id(rows[1], set()), "both rows"
        batch_stop_kw = dict(GREEDY, max_new_tokens=S2S_NEW, eos_token_id=[sp["eos"], y_stop])
        run_case("batch_greedy_stop", "batch", batch_stop_kw)
        stop_args = {"greedy_stop_0": stop_kw, "batch_greedy_stop": batch_stop_kw,
                     "batch_greedy_stop_stops_early": stopper}
        bs = t["batch_greedy_stop"]
        if stopper == "both rows":
            assert bs.shape[1] < 1 + S2S_NEW, arch
        else:
            early, late = (1, 0) if stopper == "row 1" else (0, 1)
            assert bs.shape[1] == 1 + S2S_NEW and bs[early, -1] == pad and bs[late, -1] != pad, arch
        assert all(nocache_equal.values()), (arch, nocache_equal)
        checks["generate_use_cache_false_equal"] = nocache_equal

        for i, x in enumerate([x0, x1]):
            manual = manual_s2s_greedy(model, arch, x, S2S_NEW)
            checks[f"greedy_{i}_equals_manual_argmax_loop"] = bool(torch.equal(manual, t[f"greedy_{i}"]))
            assert checks[f"greedy_{i}_equals_manual_argmax_loop"], (arch, i, manual, t[f"greedy_{i}"])
        rep_variants = {}
        for which in ("decoder", "decoder_without_start", "decoder_and_encoder"):
            manual = manual_s2s_greedy(model, arch, x0, S2S_NEW, penalty=1.3, penalty_ids=which)
            rep_variants[which] = bool(torch.equal(manual, t["rep_0"]))
        checks["rep_0_equals_manual_loop_penalising"] = rep_variants
        assert rep_variants["decoder"], (arch, rep_variants)
        manual = manual_s2s_greedy(model, arch, x0, S2S_NEW, ban_bigrams=True)
        checks["ngram_0_equals_manual_loop_banning_decoder_bigrams"] = bool(torch.equal(manual, t["ngram_0"]))
        assert checks["ngram_0_equals_manual_loop_banning_decoder_bigrams"], arch
        checks["logits_0_first_row_argmax_equals_greedy_0_first_new"] = bool(
            int(t["logits_0"][0].argmax()) == int(t["greedy_0"][1]))
        for r, single in enumerate([t["greedy_0"], t["greedy_1"]]):
            b = t["batch_greedy"][r]
            checks[f"batch_greedy_row{r}_equals_greedy_{r}"] = bool(
                torch.equal(b[:len(single)], single) and bool((b[len(single):] == sp["pad"]).all()))
        checks["encoder_hidden_0_vs_batch_encoder_hidden_row0_max_abs_diff"] = float(
            (t["encoder_hidden_0"] - t["batch_encoder_hidden"][0]).abs().max())
        enc1 = encoder(input_ids=x1[None]).last_hidden_state[0]
        checks["encoder_hidden_of_input_1_vs_batch_encoder_hidden_row1_real_positions_max_abs_diff"] = float(
            (enc1 - t["batch_encoder_hidden"][1, :len(x1)]).abs().max())
        checks["min_top1_top2_gap_of_processed_scores"] = gaps

        # the architecture notes, checked on this model
        checks["embedding_row_of_pad_id_is_zero"] = bool((model.get_input_embeddings().weight[sp["pad"]] == 0).all())
        dec_last = model.get_decoder()(input_ids=dec0[None],
                                       encoder_hidden_states=t["encoder_hidden_0"][None]).last_hidden_state[0]
        head = model.lm_head.weight
        if arch.startswith("t5"):
            scale = S2S_D_MODEL ** -0.5 if model.config.scale_decoder_outputs else 1.0
            checks["logits_0_equals_lm_head_of_last_decoder_hidden_times"] = scale
            assert torch.allclose(t["logits_0"], (dec_last * scale) @ head.T, atol=1e-5), arch
            checks["relative_attention_bias_params"] = sorted(
                n for n, _ in model.named_parameters() if "relative_attention_bias" in n)
            checks["attention_scaling"] = [float(m.scaling) for m in model.modules()
                                           if type(m).__name__ == "T5Attention"][0]
            checks["buckets_used"] = {
                "encoder_input_0_len_7_bidirectional": t5_buckets(True, 7, 7, False),
                "encoder_input_1_len_4_bidirectional": t5_buckets(True, 4, 4, False),
                "decoder_up_to_len_13_unidirectional_causal": t5_buckets(False, 1 + S2S_NEW, 1 + S2S_NEW, True),
            }
        else:
            bias = model.final_logits_bias[0]
            checks["logits_0_minus_lm_head_of_last_decoder_hidden_equals_final_logits_bias"] = bool(
                torch.allclose(t["logits_0"] - dec_last @ head.T, bias.expand_as(t["logits_0"]), atol=1e-5))
            assert checks["logits_0_minus_lm_head_of_last_decoder_hidden_equals_final_logits_bias"], arch
            checks["embed_scale"] = float(model.get_encoder().embed_scale if arch == "marian"
                                          else model.get_encoder().embed_tokens.embed_scale)
            checks["attention_scaling"] = float(model.get_encoder().layers[0].self_attn.scaling)

    save_golden(folder / "golden.safetensors", t)
    saved_cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    saved_gen = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
    gen_from_file = {k: v for k, v in saved_gen.items() if k != "transformers_version"}
    generate_args = {}
    for name, (src, kw) in S2S_CASES.items():
        generate_args[name] = {
            "input_ids": "batch_input_ids" if src == "batch" else f"{src}[None]",
            "attention_mask": "batch_attention_mask" if src == "batch" else f"ones_like({src}[None])",
            **kw,
            "use_cache": True,
            "from_generation_config_json": gen_from_file,
            "returned": "all rows" if name in S2S_KEEP_BATCH else "row 0",
        }
    return {
        "class": S2S_CLASSES[arch],
        "seed": seed,
        "noise_seed": seed + 1,
        "extra_seed": seed + 2,
        "extra_init": extra,
        "input_seed": crc("prompt:" + arch),
        "decoder_seed": crc("decoder:" + arch),
        "random_id_range": [FIRST_RANDOM_ID, random_id_limit(arch)],
        "special_tokens": sp,
        "input_0": x0.tolist(),
        "input_1": x1.tolist(),
        "decoder_input_0": dec0.tolist(),
        "lm_head_tied_to_shared": lm_head_tied,
        "config_json": saved_cfg,
        "generation_config_json": saved_gen,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "safetensors_keys": sorted(safetensors.safe_open(str(folder / "model.safetensors"), "pt").keys()),
        "shapes": {k: list(v.shape) for k, v in sorted(t.items())},
        "generate_shapes": lengths,
        "generate_args": generate_args,
        "sequences": {k: t[k].tolist() for k in [*S2S_CASES, "greedy_stop_0", "batch_greedy_stop"]},
        "stopped_on_eos": stopped_on_eos,
        "eos_stop_case_args": stop_args,
        "checks": checks,
    }


# architecture and generation details an implementer needs; "file:lines" refer to transformers 5.24
# (tools/oracle/.venv/.../site-packages/transformers/), each checked against that source
S2S_NOTES = {
    "generate_output": "generate() returns the decoder sequence only: decoder_start_token_id (generation/utils.py "
                       "1102-1103: no decoder_input_ids given -> [decoder_start_token_id]), then the new tokens; rows "
                       "that finished early are padded with pad_token_id",
    "encoder_padding": "batch_input_ids is right-padded (the encoder-decoder convention); batch_attention_mask is "
                       "used by the encoder self-attention and by every decoder cross-attention (masked keys get "
                       "finfo(float32).min added before the softmax). BART / Marian positions are arange(len) "
                       "whatever the mask, T5 has relative positions only, so right padding leaves the real "
                       "positions of a row unchanged: checks.batch_greedy_row<r>_equals_greedy_<r> and the "
                       "encoder_hidden diffs (0.0) confirm it",
    "repetition_penalty": "the RepetitionPenaltyLogitsProcessor sees the decoder ids generated so far, "
                          "decoder_start_token_id included, never the encoder input ids (generation/utils.py "
                          "1472-1481; encoder ids are only penalised by the separate encoder_repetition_penalty, "
                          "1455-1470, not used here). checks.rep_0_equals_manual_loop_penalising says which "
                          "alternatives would have given the same rep_0 (where greedy_0 repeats one id, all do)",
    "no_repeat_ngram_size": "ngram_0 bans ids that would repeat a bigram of the decoder ids so far (start id "
                            "included); it is the case that makes the tiny models produce varied sequences",
    "forced_eos": "bart and marian have forced_eos_token_id in generation_config.json: ForcedEOSTokenLogitsProcessor "
                  "(generation/logits_process.py 1691-1698) sets every score to -inf and the eos score to 0 once the "
                  "decoder sequence has max_length - 1 ids (max_length = 1 + max_new_tokens, generation/utils.py "
                  "2041), so the 12th new token of greedy_* / rep_0 / ngram_0 / batch_greedy (the 10th of beam_0) "
                  "is always eos unless the row stopped before. Beam search applies the processors to the "
                  "log-softmax scores (generation/utils.py 3749-3750), so that forced step adds 0 to the summed "
                  "log-prob of beam_0_scores. t5 / t5-gated have no forced eos",
    "beam_scores": "beam_0_scores = sequences_scores: sum of the processed log-probs of the new tokens / "
                   "new_length ** length_penalty (generation/utils.py 3552: cur_len + 1 - decoder_prompt_len, the "
                   "decoder start id not counted)",
    "t5": [
        "no absolute positions and no embedding scaling: the stack embeds with a plain nn.Embedding (no padding_idx, "
        "so row 0 = pad = decoder start is an ordinary row) (models/t5/modeling_t5.py 648)",
        "pre-LN blocks: self-attention, (decoder) cross-attention, feed-forward, each x + sublayer(norm(x)) "
        "(modeling_t5.py 394-403, 426-435, 138-142), then final_layer_norm on each stack's output (654, 745)",
        "T5LayerNorm is RMSNorm without mean subtraction and without bias: x * rsqrt(mean(x^2) + 1e-6) * weight, "
        "variance in float32 (modeling_t5.py 51-73; layer_norm_epsilon 1e-6)",
        "q, k, v, o and the feed-forward have no biases (modeling_t5.py 79-80, 101-103, 207-210)",
        "no attention scaling: scores = q k^T (self.scaling = 1.0, modeling_t5.py 198) + position_bias + mask",
        "relative position bias: only block 0 of each stack owns relative_attention_bias (nn.Embedding(num_buckets "
        "8, num_heads 4), modeling_t5.py 652); the bias block 0 computes is passed on and added in every block of "
        "that stack (740-741). The bucket of relative_position = key_pos - query_pos (271): encoder "
        "bidirectional=True, decoder bidirectional=False (274: not is_decoder). Bidirectional: half the buckets (4) "
        "per direction, key after query adds 4, then |rel|; unidirectional: -min(rel, 0) over all 8 buckets. Then "
        "rel < max_exact (= buckets // 2) is its own bucket, else max_exact + trunc(log(rel / max_exact) / "
        "log(max_distance 20 / max_exact) * (buckets - max_exact)) capped at buckets - 1 (218-263, float32 log). "
        "With the KV cache the query position is offset by the cached length (269). checks.buckets_used lists the "
        "buckets these goldens reach",
        "cross-attention has no position bias (has_relative_attention_bias=False, modeling_t5.py 411; zeros at 340)",
        "feed_forward_proj relu: wo(relu(wi(x))); gated-gelu: wo(gelu_new(wi_0(x)) * wi_1(x)) with gelu_new the "
        "tanh approximation (configuration_t5.py 68-74: 'gated-gelu' -> dense_act_fn 'gelu_new'; modeling_t5.py "
        "84-95, 107-123; activations.py 65-66)",
        "output: logits = lm_head(decoder_output * d_model ** -0.5) when config.scale_decoder_outputs (t5), "
        "lm_head(decoder_output) otherwise (t5-gated) (modeling_t5.py 1047-1050); t5's lm_head is shared "
        "(_tied_weights_keys, 904-908), t5-gated's is its own lm_head.weight in model.safetensors",
    ],
    "t5_tie_word_embeddings": "transformers 5.24 T5Config always sets tie_word_embeddings = True and turns a "
                              "tie_word_embeddings=False argument into scale_decoder_outputs = False "
                              "(configuration_t5.py 76-82), so t5-gated's config.json says tie_word_embeddings true, "
                              "scale_decoder_outputs false, and a freshly built model would even share lm_head with "
                              "shared. The generator unties it (an own N(0, 1) lm_head.weight, archs.t5-gated."
                              "extra_init), which is what 5.24 does when it loads a real T5 v1.1 / flan-t5 checkpoint: "
                              "lm_head.weight and shared.weight both present with different values -> not tied "
                              "(modeling_utils.py 2566-2584). Hub v1.1 / flan-t5 config.json files instead say "
                              "tie_word_embeddings false and have no scale_decoder_outputs key: scale the decoder "
                              "output iff scale_decoder_outputs (when present) else tie_word_embeddings != false, and "
                              "use lm_head.weight when the checkpoint has it, else shared.weight",
    "bart": [
        "token embeddings (shared, padding_idx = pad 1: row 1 is zero at init) times embed_scale = sqrt(d_model) if "
        "scale_embedding else 1.0 (scale_embedding false here: 1.0) (models/bart/modeling_bart.py 100-110, 487, "
        "573, 687)",
        "learned positions: embed_positions has max_position_embeddings + 2 rows and position p reads row p + 2 "
        "(offset 2, modeling_bart.py 83-84, 97); positions are arange(len) (+ cache length in the decoder) whatever "
        "the attention mask (89-93, 622)",
        "layernorm_embedding: LayerNorm(tokens + positions) before the first layer, encoder and decoder "
        "(modeling_bart.py 523-524, 648-649)",
        "post-LN layers: x = LN(x + self_attn(x)), (decoder) x = LN(x + cross_attn(x, enc)), "
        "x = LN(x + fc2(gelu(fc1(x)))) "
        "(modeling_bart.py 286-302, 354-389); no final LayerNorm after the last layer (unlike mBART); LayerNorm "
        "eps 1e-5 (nn.LayerNorm default), with bias",
        "activation_function 'gelu' = exact erf GELU (torch.nn.functional.gelu, activations.py 70-91, 325)",
        "attention: q, k, v, out_proj with biases, scores scaled by head_dim ** -0.5 (modeling_bart.py 168, 179-182)",
        "logits = lm_head(decoder_output) + final_logits_bias (a persistent [1, V] buffer, in model.safetensors; "
        "modeling_bart.py 809, 934-935); lm_head is tied to model.shared (801-803): model.safetensors holds "
        "model.shared.weight only (no lm_head / encoder / decoder embed_tokens keys)",
        "BartConfig 5.24 has no forced_bos_token_id, normalize_before, add_final_layer_norm fields "
        "(configuration_bart.py 48-73): none is in config.json, generation_config.json has no forced_bos_token_id, "
        "so generate forces no BOS (the decoder sequence is [2, ...], not [2, 0, ...]) and the model is post-LN "
        "unconditionally",
    ],
    "marian": [
        "token embeddings (shared, padding_idx = pad 95: row 95, the decoder start id, is zero at init) times "
        "embed_scale = sqrt(d_model) (scale_embedding true) (models/marian/modeling_marian.py 444, 471, 524, 559)",
        "sinusoidal positions, not learned and not saved (_keys_to_ignore_on_save, modeling_marian.py 805): row p = "
        "[sin(p * w_0..w_15), cos(p * w_0..w_15)] with w_i = 10000 ** (-2i / d_model), sin half first, computed in "
        "float64 then cast to float32 (73-91); no offset; positions arange(len) (+ cache length) (99-103, 571)",
        "no layernorm_embedding; post-LN layers like BART (modeling_marian.py 280-297, 340-385), LayerNorm eps 1e-5, "
        "gelu (activation_function default), attention scaled by head_dim ** -0.5 (162)",
        "logits = lm_head(decoder_output) + final_logits_bias (modeling_marian.py 975); lm_head tied to "
        "model.shared (811-816)",
    ],
    "degenerate_generations": "at d_model 32 these random seq2seq models mostly repeat one id under plain greedy "
                              "(t5, bart, marian greedy_0 / greedy_1 / batch_greedy; bart's rows are identical), at "
                              "every init scale tried (t5 initializer_factor 0.5-3, bart / marian init_std 0.02-1.0); "
                              "ngram_0, t5-gated and logits_0 are the discriminating goldens",
}


def s2s_meta(per_arch: dict) -> dict:
    out_caveats = []
    natural = [f"{arch}: {stop}" for arch, m in per_arch.items() for stop in m["stopped_on_eos"]
               if not stop.startswith(("greedy_stop_0", "batch_greedy_stop")) and "forces it" not in stop]
    out_caveats += natural or ["no generation of any arch stops on the eos id by itself: the only eos are bart / "
                               "marian's forced ones at the last step (stopped_on_eos) and the eos-stop cases"]
    for arch, m in per_arch.items():
        if m["eos_stop_case_args"]["batch_greedy_stop_stops_early"] == "both rows":
            out_caveats.append(f"{arch}: batch_greedy rows generate the same ids, so batch_greedy_stop stops both "
                               "rows at the same step (no padded row); other archs cover the padded row")
        seqs = m["sequences"]
        flat = [a for a in ("greedy_0", "greedy_1") if len(set(seqs[a][1:]) - {m["special_tokens"]["eos"]}) <= 1]
        if flat:
            out_caveats.append(f"{arch}: {', '.join(flat)} repeat a single id (see notes.degenerate_generations)")
        if "buckets_used" in m["checks"]:
            used = m["checks"]["buckets_used"]
            enc = sorted(set(range(8)) - set(used["encoder_input_0_len_7_bidirectional"]))
            dec = sorted(set(range(8)) - set(used["decoder_up_to_len_13_unidirectional_causal"]))
            out_caveats.append(f"{arch}: relative-position buckets never reached: encoder {enc}, decoder {dec} "
                               "(encoder bucket 4 cannot occur: a key after the query is >= 1 away; encoder buckets 3 "
                               "and 7 need a distance >= 7, decoder bucket 7 >= 14)")
    return {
        "archs_list": list(per_arch),
        "random_ids": f"torch.randint({FIRST_RANDOM_ID}, limit) with limit = {VOCAB} (marian: its pad id 95, so pad "
                      "never occurs); input_0 = 6 ids + [eos], input_1 = 3 ids + [eos] (generator seeded with "
                      "crc32('prompt:' + arch), input_0's ids first); decoder_input_0 = [decoder_start_token_id] + 4 "
                      "ids (generator seeded with crc32('decoder:' + arch))",
        "weights": f"torch.manual_seed(crc32(arch)), the architecture's init (T5: its own, initializer_factor 1.0; "
                   f"BART / Marian: init_std {S2S_INIT_STD}, 10x the default), then N(0, {NOISE_STD}) added to every "
                   "1-D parameter (torch.Generator seeded with crc32(arch) + 1, parameters in name order), then "
                   "archs.<arch>.extra_init (seeded with crc32(arch) + 2): t5-gated's own lm_head, BART / Marian's "
                   "final_logits_bias",
        "forward": {
            "encoder_hidden_0": "model.get_encoder()(input_ids=input_0[None]).last_hidden_state[0]",
            "logits_0": "model(input_ids=input_0[None], decoder_input_ids=decoder_input_0[None]).logits[0] "
                        "(no attention masks)",
            "batch_input_ids / batch_attention_mask": "input_0 and input_1 right-padded with the pad id",
            "batch_encoder_hidden": "model.get_encoder()(input_ids=batch_input_ids, "
                                    "attention_mask=batch_attention_mask).last_hidden_state (rows at padded positions "
                                    "are computed like any other query but are not meaningful)",
        },
        "generate_returns": "the decoder sequence: decoder_start_token_id, then the new tokens (the encoder input is "
                            "not part of it); rows that stop early (eos) are padded with the pad id",
        "generate_args": {name: {
            "input_ids": "batch_input_ids" if src == "batch" else f"{src}[None]",
            "attention_mask": "batch_attention_mask" if src == "batch" else f"ones_like({src}[None])",
            **kw, "use_cache": True,
            "from_generation_config_json": "decoder_start_token_id, eos_token_id, pad_token_id, and for bart / "
                                           "marian forced_eos_token_id (archs.<arch>.generate_args lists the values)",
            "returned": "all rows" if name in S2S_KEEP_BATCH else "row 0"} for name, (src, kw) in S2S_CASES.items()},
        "generate_args_eos_stop": {
            "greedy_stop_0": "input_0[None], attention_mask ones, do_sample=False, num_beams=1, max_new_tokens=12, "
                             "eos_token_id=X (an int, per arch: archs.<arch>.eos_stop_case_args; X is picked from "
                             "greedy_0's new tokens like the decoder-only X), use_cache=True; row 0",
            "batch_greedy_stop": "batch_input_ids / batch_attention_mask, do_sample=False, num_beams=1, "
                                 "max_new_tokens=12, eos_token_id=[eos, Y] (a list), use_cache=True; all rows. Y is "
                                 "picked from batch_greedy row 1's new tokens among those row 0 never produces (else "
                                 "row 0's among row 1's; else, rows alike, from row 1: both rows stop on it): "
                                 "archs.<arch>.eos_stop_case_args.batch_greedy_stop_stops_early says which row stops "
                                 "and is padded with the pad id",
        },
        "beam_scores_args": "the beam_0 arguments plus return_dict_in_generate=True, output_scores=True; "
                            "beam_0_scores = .sequences_scores (sum of the log-softmax scores of the new tokens, after "
                            "the logits processors, / new_length ** length_penalty; new_length excludes the decoder "
                            "start id)",
        "archs": per_arch,
        "caveats": out_caveats,
        "notes": S2S_NOTES,
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
    ap.add_argument("--only", nargs="*", choices=ARCHS + S2S_ARCHS,
                    help="only these archs (meta.json then lists only them)")
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    archs = [a for a in args.only if a in ARCHS] if args.only else ARCHS
    s2s_archs = [a for a in args.only if a in S2S_ARCHS] if args.only else S2S_ARCHS

    per_arch = {arch: gen_arch(out, arch) for arch in archs}
    s2s_per_arch = {arch: gen_s2s_arch(out, arch) for arch in s2s_archs}
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
        "encoder_decoder": s2s_meta(s2s_per_arch),
    })
    for arch, m in {**per_arch, **s2s_per_arch}.items():
        print(f"tiny/{arch}: " + ", ".join(f"{k} {v}" for k, v in m["generate_shapes"].items()))
        for s in m["stopped_on_eos"]:
            print(f"  stopped on EOS: {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
