"""Rollout generation speed and the split of a PPO step: alignkit's rollout path vs plain ``generate``.

Two measurements, each in one process:

1. **Generation.** The same chat prompts (lengths spread over ``--min-prompt``..``--max-prompt`` tokens,
   seeded pseudo-words), the same sampling (temperature 1, ``--max-new-tokens``), the same batch size:
   - ``alignkit``: ``LocalGenerator.generate_ids``, the path ``alignkit ppo`` / ``grpo`` roll out with
     (prompts sorted by length so a batch holds similar lengths, left-padded, stop on end-of-turn);
   - ``plain generate``: ``model.generate`` on the prompts in their given order, left-padded to the
     longest of each batch, the same stop ids: what a hand-written rollout loop does.
   Tokens/s counts generated tokens (up to and including the stop token), over wall time with a CUDA
   synchronise at the end; one untimed warm-up batch first, then each path twice in the order
   A B B A, best of the two. A random-init model rarely samples its
   end-of-turn token, so nearly every reply runs to the limit: this measures decoding, not stopping.
2. **PPO step split** (``--ppo-steps``): ``run_ppo`` (LoRA, value head) on a random-init model saved to a
   temporary folder, reading each step's ``time_generate_s`` / ``time_reward_s`` / ``time_logprobs_s`` /
   ``time_train_s`` from ``metrics.jsonl``; the first step (warm-up) is left out of the means.

    .venv/bin/python benchmarks/rollout.py                       # CPU: tiny shape, small sizes
    .venv/bin/python benchmarks/rollout.py --cuda --shape 135m   # GPU: random-init SmolLM2-135M shape, bf16
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sft_vs_trl import SHAPES  # noqa: E402  (one table of model shapes for every benchmark)


def _model(shape: str, device: Any) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from alignkit.models.loader import _set_stop_tokens, load_tokenizer

    tokenizer = load_tokenizer("tiny-random")  # the embedded model's tokenizer
    fields = dict(SHAPES[shape])
    rope_theta = fields.pop("rope_theta")
    config = LlamaConfig(**fields, max_position_embeddings=8192, tie_word_embeddings=True, rms_norm_eps=1e-5,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2,
                         rope_parameters={"rope_type": "default", "rope_theta": rope_theta})
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    _set_stop_tokens(model.generation_config, tokenizer)
    return model.eval(), tokenizer


def _prompts(tokenizer: Any, count: int, lo: int, hi: int, seed: int) -> list[list[int]]:
    from alignkit.data.formatting import generation_prompt_ids

    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 8))) for _ in range(2000)]
    prompts = []
    for _ in range(count):
        target = rng.randint(lo, hi)
        text = " ".join(rng.choice(words) for _ in range(max(1, target // 2)))
        ids = generation_prompt_ids(tokenizer, [{"role": "user", "content": text}])
        prompts.append(ids[-target:] if len(ids) > target else ids)
    return prompts


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _plain_generate(model: Any, tokenizer: Any, prompts: list[list[int]], *, batch_size: int, max_new_tokens: int,
                    stop_ids: list[int], seed: int) -> int:
    """A hand-written rollout: batches in the given order, left-padded; returns generated tokens."""
    import torch

    pad = tokenizer.pad_token_id
    stop = set(stop_ids)
    generated = 0
    torch.manual_seed(seed)
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        width = max(len(p) for p in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, prompt in enumerate(batch):
            ids[row, width - len(prompt):] = torch.tensor(prompt)
            mask[row, width - len(prompt):] = 1
        with torch.no_grad():
            out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                                 max_new_tokens=max_new_tokens, do_sample=True, temperature=1.0, top_p=None,
                                 top_k=None, pad_token_id=pad, eos_token_id=stop_ids)
        for row in out[:, width:].tolist():
            cut = next((i + 1 for i, t in enumerate(row) if t in stop), len(row))
            generated += cut
    return generated


def bench_generation(args: argparse.Namespace, device: Any) -> dict[str, Any]:
    from alignkit.generation.local import LocalGenerator
    from alignkit.generation.types import GenerationParams

    model, tokenizer = _model(args.shape, device)
    prompts = _prompts(tokenizer, args.prompts, args.min_prompt, args.max_prompt, args.seed)
    generator = LocalGenerator(model, tokenizer, batch_size=args.batch_size)
    params = GenerationParams(max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0, top_k=0, seed=args.seed)
    # Warm-up: one batch each (CUDA context, kernels, allocator), untimed.
    generator.generate_ids(prompts[: args.batch_size], params)
    _plain_generate(model, tokenizer, prompts[: args.batch_size], batch_size=args.batch_size,
                    max_new_tokens=args.max_new_tokens, stop_ids=generator.stop_ids, seed=args.seed)
    # Each path twice, in alternating order (A B B A), best of two: the first H200 run showed alignkit
    # at 0.40x when it always ran first, which one order alone cannot tell from a warm-up effect.
    runs: dict[str, list[dict[str, float]]] = {"alignkit": [], "plain-generate": []}
    for name in ("alignkit", "plain-generate", "plain-generate", "alignkit"):
        _sync(device)
        started = time.perf_counter()
        if name == "alignkit":
            out = generator.generate_ids(prompts, params)
            tokens = sum(len(g.token_ids) for samples in out for g in samples)
        else:
            tokens = _plain_generate(model, tokenizer, prompts, batch_size=args.batch_size,
                                     max_new_tokens=args.max_new_tokens, stop_ids=generator.stop_ids, seed=args.seed)
        _sync(device)
        seconds = time.perf_counter() - started
        runs[name].append({"tokens": tokens, "seconds": seconds, "tok_s": tokens / seconds})
    results: dict[str, Any] = {name: dict(max(rows, key=lambda r: r["tok_s"]), runs=rows) for name, rows in runs.items()}
    prompt_tokens = [len(p) for p in prompts]
    results["prompt_tokens"] = {"min": min(prompt_tokens), "max": max(prompt_tokens),
                                "mean": sum(prompt_tokens) / len(prompt_tokens)}
    return results


def bench_ppo(args: argparse.Namespace, device: Any) -> dict[str, Any]:
    from alignkit.config.base import load_config
    from alignkit.config.rl import PPOConfig
    from alignkit.recipes.ppo import run_ppo

    model, tokenizer = _model(args.shape, device)
    with tempfile.TemporaryDirectory(prefix="bench-ppo-") as tmp:
        folder = Path(tmp) / "model"
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        del model
        rng = random.Random(args.seed + 1)
        lines = [json.dumps({"prompt": " ".join(f"word{rng.randint(0, 999)}" for _ in range(rng.randint(5, 60)))})
                 for _ in range(max(64, args.ppo_prompts * 2))]
        (Path(tmp) / "prompts.jsonl").write_text("\n".join(lines) + "\n")
        cfg = load_config(PPOConfig, None, [
            f"model={folder}", f"out={Path(tmp) / 'ppo'}", f"data.train={Path(tmp) / 'prompts.jsonl'}",
            f"device={device.type}", "finetune=lora", "reward.kind=function",
            "reward.function=alignkit.rewards.examples:short_and_stops",
            f"rollout.prompts_per_step={args.ppo_prompts}", f"rollout.max_new_tokens={args.max_new_tokens}",
            f"rollout.batch_size={args.batch_size}", f"train.batch_size={min(args.ppo_micro, args.ppo_prompts)}",
            f"train.max_steps={args.ppo_steps}", "train.save_every=0", "ppo.epochs=1",
        ])
        started = time.perf_counter()
        run_ppo(cfg)
        wall = time.perf_counter() - started
        records = [json.loads(x) for x in (Path(tmp) / "ppo" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r.get("kind") == "train" and "time_generate_s" in r]
    timed = steps[1:] or steps
    phases = ("generate", "reward", "logprobs", "train")
    mean = {p: sum(r[f"time_{p}_s"] for r in timed) / len(timed) for p in phases}
    total = sum(r["step_time_s"] for r in timed) / len(timed)
    return {"steps": len(steps), "timed_steps": len(timed), "mean_s": mean, "step_s": total, "wall_s": wall,
            "share": {p: mean[p] / total for p in phases}, "peak_mem_mb": max(r.get("peak_mem_mb", 0) for r in steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cuda", action="store_true")
    parser.add_argument("--shape", default=None, help="135m, 1b or tiny (default: 135m on CUDA, tiny on CPU)")
    parser.add_argument("--prompts", type=int, default=None, help="prompts to generate for (CUDA 256, CPU 16)")
    parser.add_argument("--batch-size", type=int, default=None, help="sequences generated together (CUDA 64, CPU 8)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="reply limit (CUDA 128, CPU 16)")
    parser.add_argument("--min-prompt", type=int, default=20)
    parser.add_argument("--max-prompt", type=int, default=300)
    parser.add_argument("--ppo-steps", type=int, default=None, help="PPO rollout steps (CUDA 4, CPU 2; 0 = skip)")
    parser.add_argument("--ppo-prompts", type=int, default=None, help="prompts per PPO step (CUDA 64, CPU 4)")
    parser.add_argument("--ppo-micro", type=int, default=16, help="replies per PPO micro-batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    cuda_defaults = {"shape": "135m", "prompts": 256, "batch_size": 64, "max_new_tokens": 128, "ppo_steps": 4,
                     "ppo_prompts": 64}
    cpu_defaults = {"shape": "tiny", "prompts": 16, "batch_size": 8, "max_new_tokens": 16, "ppo_steps": 2,
                    "ppo_prompts": 4}
    for key, value in (cuda_defaults if args.cuda else cpu_defaults).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    import torch

    if args.cuda and not torch.cuda.is_available():
        parser.error("--cuda: CUDA is not available")
    device = torch.device("cuda" if args.cuda else "cpu")
    where = torch.cuda.get_device_name() if args.cuda else "CPU"
    gen = bench_generation(args, device)
    result: dict[str, Any] = {"device": where, "torch": torch.__version__, "shape": args.shape, "generation": gen}
    ratio = gen["alignkit"]["tok_s"] / gen["plain-generate"]["tok_s"]
    print(f"# rollouts on {where}, torch {torch.__version__}, {args.shape} shape, {args.prompts} prompts of "
          f"{gen['prompt_tokens']['min']}-{gen['prompt_tokens']['max']} tokens, batch {args.batch_size}, "
          f"{args.max_new_tokens} new tokens")
    for name in ("alignkit", "plain-generate"):
        row = gen[name]
        each = ", ".join(f"{r['tok_s']:,.0f}" for r in row["runs"])
        print(f"{name:<16} {row['tok_s']:>10,.0f} tok/s  ({row['tokens']:,} tokens in {row['seconds']:.2f} s; runs {each})")
    print(f"alignkit / plain generate: {ratio:.2f}x")
    if args.ppo_steps:
        ppo = bench_ppo(args, device)
        result["ppo"] = ppo
        split = ", ".join(f"{p} {ppo['mean_s'][p]:.2f} s ({ppo['share'][p]:.0%})" for p in ppo["mean_s"])
        print(f"PPO step ({args.ppo_prompts} prompts, LoRA, value head; mean of {ppo['timed_steps']} steps after the "
              f"first): {ppo['step_s']:.2f} s = {split}; peak {ppo['peak_mem_mb']:,.0f} MiB")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
