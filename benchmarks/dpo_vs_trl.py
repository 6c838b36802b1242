"""alignkit DPO vs TRL ``DPOTrainer``: the same model, pairs, batch and LoRA/full setting, in one run.

Prints pairs/s and peak memory of each side and their ratios (alignkit / TRL). Each measurement runs
in a fresh subprocess, so one side's allocations never count against the other.

    python benchmarks/dpo_vs_trl.py                  # CPU, embedded SmolLM2-135M, LoRA and full
    python benchmarks/dpo_vs_trl.py --steps 6 --modes lora
    python benchmarks/dpo_vs_trl.py --cuda           # GPU: random-init 135M and Llama-3.2-1B shapes

What is compared:
- alignkit: the ``DPOObjective`` of ``recipes/dpo.py`` in the shared ``run_loop`` (one packed row per
  micro-batch holding chosen and rejected, log-probs of completion tokens only, chunked projection);
  reference = adapter disabled (LoRA) or a frozen copy (full).
- TRL 1.16: ``DPOTrainer`` with ``precompute_ref_log_probs=False``, ``loss_type="sigmoid"``; reference =
  adapter disabled (LoRA, TRL's default with ``peft_config``) or a frozen copy passed as ``ref_model``.
- Both: AdamW, constant lr, same β, LoRA r=16 alpha=32 on all linear layers, sdpa attention, fp32 on
  CPU, bf16 weights on CUDA, no gradient checkpointing.

Timing: wall time between the ends of optimizer steps (CUDA synchronised), after ``--warmup`` steps.
Memory: CUDA = ``max_memory_allocated`` over the whole run (weights included) and the part above
the memory held once model, reference and data are ready; CPU = peak RSS of the process and the part
above the RSS once everything is ready (CPU numbers also include Python, torch and imports).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "assets" / "prefs_toy.jsonl"
sys.path.insert(0, str(ROOT))
from benchmarks.sft_vs_trl import SHAPES  # noqa: E402  (one table of model shapes; "tiny" checks the script)

BETA = 0.1
LR = 1e-5


def make_pairs(path: Path, *, count: int, sentences: int) -> None:
    """``count`` preference records; each reply joins ``sentences`` toy replies (polite vs rude)."""
    toy = [json.loads(line) for line in TOY.read_text().splitlines()]
    with open(path, "w") as handle:
        for index in range(count):
            picks = [toy[(index + k) % len(toy)] for k in range(sentences)]
            handle.write(
                json.dumps(
                    {
                        "prompt": toy[index % len(toy)]["prompt"],
                        "chosen": " ".join(p["chosen"] for p in picks),
                        "rejected": " ".join(p["rejected"] for p in picks),
                    }
                )
                + "\n"
            )


def load_policy(shape: str, cuda: bool) -> tuple[Any, Any]:
    """(model, tokenizer): the embedded model on CPU, or a random-init model of ``shape`` on CUDA."""
    import torch

    from alignkit.models.loader import load_model, load_tokenizer

    if shape == "embedded":
        loaded = load_model("embedded", device="cuda" if cuda else "cpu", dtype="auto")
        return _forget_gguf_origin(loaded.model), loaded.tokenizer
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(
        **SHAPES[shape],
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        max_position_embeddings=8192,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    return model.to("cuda" if cuda else "cpu"), load_tokenizer("tiny-random")  # the embedded tokenizer


def _forget_gguf_origin(model: Any) -> Any:
    """The embedded cache's config still names the GGUF quantization it was dequantised from (the weights
    are plain fp32); transformers' Trainer then refuses to train it. Drop the stale marker."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if getattr(model, "is_quantized", False):
        model.is_quantized = False
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    return model


def memory_now(cuda: bool) -> float:
    import torch

    if cuda:
        return torch.cuda.memory_allocated() / 2**20
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_peak(cuda: bool) -> float:
    import torch

    if cuda:
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StepClock:
    """Timestamps at the end of each optimizer step (after a CUDA sync)."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.ends: list[float] = []

    def tick(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())

    def pairs_per_s(self, batch_size: int, warmup: int) -> float:
        timed = self.ends[warmup - 1 :] if warmup > 0 else self.ends
        return batch_size * (len(timed) - 1) / (timed[-1] - timed[0])


def run_alignkit(args: argparse.Namespace, data: Path, workdir: Path) -> dict[str, Any]:
    import torch

    from alignkit.config.common import DataConfig
    from alignkit.config.training import LoraSection, TrainSection
    from alignkit.data.dataset import load_preference_data
    from alignkit.models.adapters import apply_lora
    from alignkit.recipes.dpo import AdapterDisabledReference, DPOObjective, FrozenCopyReference
    from alignkit.training.distributed import Distributed
    from alignkit.training.loop import run_loop

    cuda = args.cuda
    model, tokenizer = load_policy(args.shape, cuda)
    pairs, _ = load_preference_data(str(data), tokenizer, DataConfig(max_length=args.max_length))
    if args.mode == "lora":
        torch.manual_seed(0)
        model = apply_lora(model, LoraSection(r=16, alpha=32))
        reference: Any = AdapterDisabledReference(1024)
    else:
        reference = FrozenCopyReference(model, 1024)
    device = torch.device("cuda" if cuda else "cpu")
    objective = DPOObjective(
        loss="sigmoid",
        beta=BETA,
        label_smoothing=0.0,
        simpo_gamma=0.0,
        reference=reference,
        packed=True,
        pad_id=tokenizer.pad_token_id,
        chunk_size=1024,
        device=device,
    )
    train = TrainSection(
        max_steps=args.steps,
        batch_size=args.batch_size,
        lr=LR,
        schedule="constant",
        max_grad_norm=1.0,
        log_every=10**6,
    )
    ready = memory_now(cuda)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    clock = StepClock(cuda)
    clock.tick()

    class Done(Exception):
        """Raised after the last timed step, to skip run_loop's final checkpoint: not part of a training
        step, and for a full 1B model it writes and fsyncs the weights and the Adam state."""

    def on_step_end(step: int, record: dict[str, Any]) -> None:
        clock.tick()
        if step >= args.steps:
            raise Done

    with contextlib.suppress(Done):
        run_loop(
            model=model,
            objective=objective,
            train_examples=pairs,
            eval_examples=None,
            cfg=train,
            output_dir=workdir / "alignkit",
            config_hash="bench",
            resume=None,
            dist=Distributed(device=device),
            on_step_end=on_step_end,
        )
    return {
        "pairs_per_s": clock.pairs_per_s(args.batch_size, args.warmup + 1),
        "peak_mb": memory_peak(cuda),
        "ready_mb": ready,
        "tokens_per_pair": sum(len(p.chosen_ids) + len(p.rejected_ids) for p in pairs) / len(pairs),
    }


def run_trl(args: argparse.Namespace, data: Path, workdir: Path) -> dict[str, Any]:
    import copy
    import warnings

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    warnings.filterwarnings("ignore")
    cuda = args.cuda
    model, tokenizer = load_policy(args.shape, cuda)
    records = [json.loads(line) for line in data.read_text().splitlines()]
    dataset = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["prompt"]}],
                "chosen": [{"role": "assistant", "content": r["chosen"]}],
                "rejected": [{"role": "assistant", "content": r["rejected"]}],
            }
            for r in records
        ]
    )
    clock = StepClock(cuda)

    class Clock(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            clock.tick()

    config = DPOConfig(
        output_dir=str(workdir / "trl"),
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        max_steps=args.steps,
        learning_rate=LR,
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_grad_norm=1.0,
        beta=BETA,
        loss_type=["sigmoid"],
        precompute_ref_log_probs=False,
        max_length=args.max_length,
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        bf16=cuda,
        use_cpu=not cuda,
        seed=0,
        dataloader_num_workers=0,
        gradient_checkpointing=False,
        disable_tqdm=True,
    )
    kwargs: dict[str, Any] = {}
    if args.mode == "lora":
        kwargs["peft_config"] = LoraConfig(
            r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"
        )
    else:
        kwargs["ref_model"] = copy.deepcopy(model).eval().requires_grad_(False)
    torch.manual_seed(0)
    trainer = DPOTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[Clock()],
        **kwargs,
    )
    ready = memory_now(cuda)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    clock.tick()
    trainer.train()
    return {
        "pairs_per_s": clock.pairs_per_s(args.batch_size, args.warmup + 1),
        "peak_mb": memory_peak(cuda),
        "ready_mb": ready,
    }


def worker(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        make_pairs(data, count=args.steps * args.batch_size, sentences=args.sentences)
        run = run_alignkit if args.side == "alignkit" else run_trl
        result = run(args, data, Path(tmp))
    print("RESULT " + json.dumps(result), flush=True)


def measure(args: argparse.Namespace, side: str, mode: str, shape: str) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        side,
        "--mode",
        mode,
        "--shape",
        shape,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--batch-size",
        str(args.batch_size),
        "--sentences",
        str(args.sentences),
        "--max-length",
        str(args.max_length),
        "--threads",
        str(args.threads),
    ] + ["--cuda"] * args.cuda
    # Keep the caller's PYTHONPATH after src/ (benchmarks/gpu/run.sh installs its wheels there).
    paths = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": os.pathsep.join(paths)}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"{side} {mode} {shape}: timed out after {args.timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        return {"error": f"{side} {mode} {shape} failed:\n{done.stderr[-3000:]}"}
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cuda", action="store_true", help="GPU mode: random-init 135M and 1B shapes")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per run (CPU 4, CUDA 20)")
    parser.add_argument("--warmup", type=int, default=None, help="steps not timed (CPU 1, CUDA 3)")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per step (CPU 4, CUDA 8)")
    parser.add_argument(
        "--sentences",
        type=int,
        default=None,
        help="toy replies joined per completion (CPU 1: ~70 tokens a sequence; CUDA 24: ~500)",
    )
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--modes", default="lora,full")
    parser.add_argument("--shapes", default=None, help="CUDA: 135m,1b (CPU: embedded)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per measurement")
    parser.add_argument("--json-out", default=None, help="write every measurement here")
    parser.add_argument("--worker", choices=["alignkit", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    args = parser.parse_args()
    defaults = {"steps": (4, 20), "warmup": (1, 3), "batch_size": (4, 8), "sentences": (1, 24)}
    for name, (cpu_value, cuda_value) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, cuda_value if args.cuda else cpu_value)
    if args.worker:
        args.side = args.worker
        worker(args)
        return
    if args.warmup >= args.steps - 1:
        raise SystemExit("--steps must exceed --warmup by at least 2")
    shapes = (args.shapes or ("135m,1b" if args.cuda else "embedded")).split(",")
    print(
        f"device={'cuda' if args.cuda else 'cpu'} steps={args.steps} (warmup {args.warmup}) "
        f"batch={args.batch_size} pairs, sentences/reply={args.sentences}, threads={args.threads or 'default'}"
    )
    header = (
        f"{'shape':9} {'mode':5} {'tok/pair':>8} {'alignkit pairs/s':>16} {'TRL pairs/s':>12} {'speed x':>8} "
        f"{'alignkit peak MB':>16} {'TRL peak MB':>12} {'mem x':>6} {'train-mem x':>11}"
    )
    print(header)
    results: list[dict[str, Any]] = []
    for shape in shapes:
        for mode in args.modes.split(","):
            ours = measure(args, "alignkit", mode, shape)
            theirs = measure(args, "trl", mode, shape)
            results.append({"shape": shape, "mode": mode, "alignkit": ours, "trl": theirs})
            if args.json_out:
                Path(args.json_out).write_text(json.dumps(results, indent=1))
            failed = [side["error"] for side in (ours, theirs) if "error" in side]
            if failed:
                print(f"{shape:9} {mode:5} ERROR " + " | ".join(e[-1500:] for e in failed), flush=True)
                continue
            ours_train = ours["peak_mb"] - ours["ready_mb"]
            theirs_train = theirs["peak_mb"] - theirs["ready_mb"]
            print(
                f"{shape:9} {mode:5} {ours['tokens_per_pair']:8.0f} {ours['pairs_per_s']:16.3f} "
                f"{theirs['pairs_per_s']:12.3f} {ours['pairs_per_s'] / theirs['pairs_per_s']:8.2f} "
                f"{ours['peak_mb']:16.0f} {theirs['peak_mb']:12.0f} {ours['peak_mb'] / theirs['peak_mb']:6.2f} "
                f"{ours_train / max(theirs_train, 1e-9):11.2f}",
                flush=True,
            )
    print(
        "speed x = alignkit / TRL pairs per second (higher is better); mem x = peak memory ratio, train-mem x = "
        "ratio of the memory above the ready state (lower is better)"
    )


if __name__ == "__main__":
    main()
