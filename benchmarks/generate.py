"""Generation speed: alignkit's generation path against plain ``model.generate``, in one process.

Two workloads on the embedded model (CPU) or a random-init shape (``--cuda``):

- ``hello`` (default): the hello probe as ``alignkit probe --probes hello`` runs it (18 greetings,
  greedy + 8 samples at temperature 0.8, at most 96 tokens: 162 replies), through ``run_hello_probe``
  with different generators, so the probe's own figures (stop rates, mean length) are printed beside
  the time. Variants: ``plain generate`` (``model.generate`` per batch of 16 in prompt order, nothing
  else), alignkit as it was (batch 16, one ``generate`` call per batch), batch 64 only, and as shipped
  (batch 64, rows that stopped leave the batch every 32 tokens).
- ``grounded`` (``--workload grounded``): the quickstart's grounded probe, plain ``generate`` against
  alignkit with and without the shared-prompt-prefix cache (``grounded_workload``).
- ``throughput`` (``--workload throughput``): fixed-length sampling (``--new-tokens``) at batch 1, 8
  and 64, alignkit (as shipped) vs plain ``generate``; tokens/s.

Generated tokens are counted up to and including the stop token. Wall time per variant, each run
once after one untimed warm-up; CPU numbers move with the machine's load, printed at the end.

    .venv/bin/python benchmarks/generate.py                          # hello probe workload, embedded, CPU
    .venv/bin/python benchmarks/generate.py --workload grounded
    .venv/bin/python benchmarks/generate.py --workload throughput --new-tokens 32
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class PlainGenerator:
    """The ``Generator`` protocol over bare ``model.generate``: batches in the given order, left-padded,
    stopping on the same ids, nothing else (what a hand-written evaluation loop does)."""

    def __init__(self, model: Any, tokenizer: Any, stop_ids: list[int], batch_size: int) -> None:
        self.model, self.tokenizer, self.stop_ids, self.batch_size = model, tokenizer, stop_ids, batch_size
        self.generated = 0

    def chat(self, chats: list[Any], params: Any) -> list[list[Any]]:
        import torch

        from alignkit.data.formatting import generation_prompt_ids
        from alignkit.generation.types import Generation

        prompts = [generation_prompt_ids(self.tokenizer, chat) for chat in chats]
        rows = [(i, p) for i, p in enumerate(prompts) for _ in range(params.num_samples)]
        out: list[list[Any]] = [[] for _ in prompts]
        torch.manual_seed(params.seed)
        pad, stop = self.tokenizer.pad_token_id, set(self.stop_ids)
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            width = max(len(p) for _, p in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (_, prompt) in enumerate(batch):
                ids[row, width - len(prompt):] = torch.tensor(prompt)
                mask[row, width - len(prompt):] = 1
            sampling = params.temperature > 0
            with torch.no_grad():
                result = self.model.generate(
                    input_ids=ids.to(self.model.device), attention_mask=mask.to(self.model.device),
                    max_new_tokens=params.max_new_tokens, do_sample=sampling, pad_token_id=pad,
                    eos_token_id=self.stop_ids, temperature=params.temperature if sampling else None,
                    top_p=params.top_p if sampling else None, top_k=None)
            for (owner, _), row in zip(batch, result[:, width:].tolist(), strict=True):
                cut = next((k + 1 for k, t in enumerate(row) if t in stop), len(row))
                self.generated += cut
                stopped = cut < len(row) or row[cut - 1] in stop
                text = self.tokenizer.decode(row[: cut - 1] if stopped else row[:cut])
                out[owner].append(Generation(text=text, token_ids=row[:cut], stopped=stopped,
                                             finish_reason="stop" if stopped else "length"))
        return out


def _load(cuda: bool) -> tuple[Any, Any]:
    if not cuda:
        from alignkit.models.loader import load_model

        loaded = load_model("embedded", device="cpu")
        return loaded.model.eval(), loaded.tokenizer
    import torch
    from benchmarks.rollout import _model

    return _model("135m", torch.device("cuda"))


def hello_workload(args: argparse.Namespace) -> list[dict[str, Any]]:
    from alignkit.evaluation.probes import run_hello_probe
    from alignkit.generation.local import LocalGenerator

    model, tokenizer = _load(args.cuda)
    shipped = LocalGenerator(model, tokenizer, batch_size=64)
    variants = [
        ("plain generate, batch 16", lambda: PlainGenerator(model, tokenizer, shipped.stop_ids, 16)),
        ("alignkit before: batch 16, one call", lambda: LocalGenerator(model, tokenizer, batch_size=16, segment_tokens=0)),
        ("alignkit batch 64, one call", lambda: LocalGenerator(model, tokenizer, batch_size=64, segment_tokens=0)),
        ("alignkit as shipped: 64, segments", lambda: LocalGenerator(model, tokenizer, batch_size=64)),
    ]
    keep = set(args.only.split(",")) if args.only else None
    run_hello_probe(shipped, prompts=["hi"], n_samples=1, max_new_tokens=4)  # warm-up
    results = []
    for name, build in variants:
        if keep and not any(k in name for k in keep):
            continue
        generator = build()
        counted: list[int] = []
        if isinstance(generator, LocalGenerator):
            original = generator._finish

            def finish(row: list[int], params: Any, *, original: Any = original, counted: list[int] = counted,
                       **kwargs: Any) -> Any:
                generation = original(row, params, **kwargs)
                counted.append(len(generation.token_ids))
                return generation

            generator._finish = finish  # type: ignore[method-assign]
        started = time.perf_counter()
        result = run_hello_probe(generator)
        seconds = time.perf_counter() - started
        tokens = generator.generated if isinstance(generator, PlainGenerator) else sum(counted)
        summary = result.summary
        row = {"name": name, "seconds": seconds, "tokens": tokens, "tok_s": tokens / seconds,
               "greedy_stop_rate": summary["greedy_stop_rate"], "sampled_stop_rate": summary["sampled_stop_rate"],
               "length_mean": summary["length_mean"]}
        results.append(row)
        print(f"{name:<38} {seconds:7.1f} s  {tokens:6,} tokens  {row['tok_s']:6.1f} tok/s  greedy stop "
              f"{row['greedy_stop_rate']}  sampled stop {row['sampled_stop_rate']}  mean length {row['length_mean']}",
              flush=True)
    return results


def grounded_workload(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The quickstart's grounded probe (``eval_entities.jsonl``: 120 questions, greedy, 32 tokens).

    Every prompt starts with the same system prompt and instruction (42 tokens, 36% of a prompt):
    alignkit runs that prefix once per batch and repeats its key/value cache; the variant without
    it is built with ``min_shared_prefix=0``. The probe's figures are printed beside the time:
    they should not move.
    """
    from alignkit.evaluation.probe_sets import load_grounded_items
    from alignkit.evaluation.probes import run_grounded_probe
    from alignkit.generation.local import LocalGenerator

    model, tokenizer = _load(args.cuda)
    items = load_grounded_items(ROOT / "examples/quickstart/data/eval_entities.jsonl")
    shipped = LocalGenerator(model, tokenizer, batch_size=64)
    variants: list[tuple[str, Any]] = [
        ("plain generate, batch 64", PlainGenerator(model, tokenizer, shipped.stop_ids, 64)),
        ("alignkit, prefix run per row", LocalGenerator(model, tokenizer, batch_size=64, min_shared_prefix=0)),
        ("alignkit as shipped: shared prefix", shipped),
    ]
    run_grounded_probe(shipped, items[:2], max_new_tokens=4)  # warm-up
    results = []
    for name, generator in variants:
        started = time.perf_counter()
        summary = run_grounded_probe(generator, items, max_new_tokens=32).summary
        seconds = time.perf_counter() - started
        row = {"name": name, "seconds": seconds, **{k: summary[k] for k in (
            "idk_rate_unanswerable", "accuracy_answerable", "false_idk_rate_answerable")}}
        results.append(row)
        print(f"{name:<36} {seconds:7.1f} s  ({results[0]['seconds'] / seconds:4.2f}x plain)  idk "
              f"{row['idk_rate_unanswerable']}  accuracy {row['accuracy_answerable']}  false idk "
              f"{row['false_idk_rate_answerable']}", flush=True)
    return results


def throughput_workload(args: argparse.Namespace) -> list[dict[str, Any]]:
    from alignkit.generation.local import LocalGenerator
    from alignkit.generation.types import GenerationParams

    model, tokenizer = _load(args.cuda)
    chat = [{"role": "user", "content": "Tell me about the weather in spring."}]
    results = []
    for batch in (1, 8, 64):
        chats = [chat] * batch
        params = GenerationParams(max_new_tokens=args.new_tokens, temperature=1.0, seed=0)
        alignkit = LocalGenerator(model, tokenizer, batch_size=batch)
        plain = PlainGenerator(model, tokenizer, alignkit.stop_ids, batch)
        for name, generator in (("alignkit", alignkit), ("plain generate", plain)):
            started = time.perf_counter()
            out = generator.chat(chats, params)
            seconds = time.perf_counter() - started
            tokens = sum(len(g.token_ids) for o in out for g in o)
            results.append({"name": name, "batch": batch, "seconds": seconds, "tokens": tokens,
                            "tok_s": tokens / seconds})
            print(f"batch {batch:>3} {name:<16} {tokens / seconds:8.1f} tok/s ({tokens} tokens, {seconds:.1f} s)",
                  flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=["hello", "grounded", "throughput"], default="hello")
    parser.add_argument("--cuda", action="store_true", help="random-init 135M shape on CUDA instead")
    parser.add_argument("--new-tokens", type=int, default=32, help="throughput: tokens per row")
    parser.add_argument("--only", default=None, help="hello: comma-separated parts of variant names to run")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    workloads = {"hello": hello_workload, "grounded": grounded_workload, "throughput": throughput_workload}
    results = workloads[args.workload](args)
    where = torch.cuda.get_device_name() if args.cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {args.workload} on {where}, torch {torch.__version__}; load average {os.getloadavg()[0]:.1f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
