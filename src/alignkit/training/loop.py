"""The shared training loop, as plain functions every recipe reuses.

A recipe supplies an ``Objective``: how much each example weighs in the global normaliser (trained
tokens for SFT, pairs for DPO and reward models) and the *summed* loss of a micro-batch. The loop
divides by the normaliser of the whole global batch (all micro-batches of the step, all processes),
so micro-batch size, gradient accumulation and process count leave the loss and gradient unchanged.

Contracts kept here: a non-finite loss or grad norm skips the step (no optimizer or scheduler update)
and is counted and logged with the batch's records; checkpoints are atomic and resume is bit-exact on
CPU; metrics and checkpoints are written by rank 0 only.

Several processes either each hold a full replica (``train.parallel=ddp``: DDP) or shard weights,
gradients and optimizer state (``fsdp``: FSDP2, see ``training/parallel.py``); both average gradients
over processes, so the loss scaling below serves both.
"""

from __future__ import annotations

import json
import logging
import math
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from alignkit.config.training import TrainSection
from alignkit.errors import AlignkitError
from alignkit.training import parallel
from alignkit.training.checkpoint import (
    LoopState,
    checkpoint_dirs,
)
from alignkit.training.distributed import Distributed
from alignkit.training.run_state import RunState
from alignkit.training.sampler import ResumableSampler
from alignkit.training.step import NonFiniteGuard, accumulate, autocast, autocast_dtype, clip_and_step

log = logging.getLogger(__name__)


class Objective(Protocol):
    def normalizer(self, examples: Sequence[Any]) -> float:
        """This micro-batch's share of the denominator (e.g. its trained tokens)."""
        ...

    def loss(self, model: torch.nn.Module, examples: Sequence[Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Summed loss over the micro-batch, and metric *sums* (divided by the normaliser when logged)."""
        ...


class _ObjectiveModule(torch.nn.Module):
    """Lets DDP (or FSDP's root unit) see the whole loss computation as one forward."""

    def __init__(self, model: torch.nn.Module, objective: Objective) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, examples: Sequence[Any]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.objective.loss(self.model, examples)


def build_optimizer(model: torch.nn.Module, cfg: TrainSection) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norms; fused on CUDA."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "norm" in name else decay).append(param)
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise AlignkitError("the model has no trainable parameters", field="finetune")
    # Fused AdamW: one kernel over all parameters, on CUDA and CPU alike (about 7x faster per step
    # than the foreach path on CPU for a 135M model).
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps, fused=True)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainSection, total_steps: int) -> Any:
    from transformers import get_scheduler

    warmup = cfg.warmup_steps or int(cfg.warmup_ratio * total_steps)
    name = {"constant": "constant_with_warmup"}.get(cfg.schedule, cfg.schedule)
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)


def total_steps(num_examples: int, cfg: TrainSection, world_size: int) -> int:
    per_step = cfg.batch_size * cfg.grad_accum
    per_rank = num_examples // world_size
    if cfg.max_steps:
        return cfg.max_steps
    return max(1, math.ceil(cfg.epochs * per_rank / per_step))


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / 1024 if sys.platform != "darwin" else usage / 2**20


class MetricsWriter:
    """metrics.jsonl (one line per step / eval) + TensorBoard when installed; rank 0 only."""

    def __init__(self, path: Path, *, enabled: bool, resume_step: int | None) -> None:
        self.path = path
        self.enabled = enabled
        self.tb: Any = None
        if not enabled:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and path.exists():
            # Drop lines from after the checkpoint: they will be produced again.
            kept = [
                line
                for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= resume_step
            ]
            path.write_text("".join(line + "\n" for line in kept))
        elif path.exists():
            path.unlink()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(path.parent / "tensorboard"))
        except Exception:  # tensorboard not installed
            self.tb = None

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tb is not None:
            prefix = record.get("kind", "train")
            for key, value in record.items():
                if isinstance(value, int | float) and key != "step":
                    self.tb.add_scalar(f"{prefix}/{key}", value, record.get("step", 0))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


class Progress:
    """A rich progress bar with ETA on a terminal, plain log lines otherwise."""

    def __init__(self, total: int, start: int, *, enabled: bool, description: str) -> None:
        self.enabled = enabled
        self.live: Any = None
        self.total = total
        self.start, self.started = start, time.perf_counter()
        if enabled and sys.stdout.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self.live = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
            )
            self.live.start()
            self.task = self.live.add_task(description, total=total, completed=start, info="")

    def update(self, step: int, info: str) -> None:
        if not self.enabled:
            return
        if self.live is not None:
            self.live.update(self.task, completed=step, info=info)
        else:
            done = step - self.start
            remaining = (time.perf_counter() - self.started) / max(done, 1) * (self.total - step)
            print(f"step {step}/{self.total} {info} eta {_duration(remaining)}", flush=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


@dataclass
class LoopResult:
    state: LoopState
    stopped_early: bool
    last_checkpoint: Path | None
    best_checkpoint: Path | None


def evaluate(
    module: torch.nn.Module,
    objective: Objective,
    examples: Sequence[Any],
    *,
    batch_size: int,
    dist: Distributed,
    lockstep: bool = False,
) -> dict[str, float]:
    """Mean loss (and metrics) over the eval set, normalised like training.

    ``module`` computes ``objective.loss`` (an ``_ObjectiveModule``). Under FSDP every forward gathers
    weights with all processes, so ``lockstep`` makes each process run as many forwards as the one with
    the most micro-batches (the extra ones count nothing).
    """
    was_training = module.training
    module.eval()
    loss_sum, norm = 0.0, 0.0
    metric_sums: dict[str, float] = {}
    shard = list(examples)[dist.rank :: dist.world_size]
    micro_batches = [shard[start : start + batch_size] for start in range(0, len(shard), batch_size)]
    rounds = int(dist.all_max(len(micro_batches))) if lockstep else len(micro_batches)
    with torch.no_grad(), autocast(dist.device, module):
        for index in range(rounds):
            if index >= len(micro_batches):
                module(list(examples[:1]))  # keeps this process in step with the others' gathers
                continue
            micro = micro_batches[index]
            loss, metrics = module(micro)
            loss_sum += float(loss)
            norm += objective.normalizer(micro)
            for key, value in metrics.items():
                metric_sums[key] = metric_sums.get(key, 0.0) + value
    if was_training:
        module.train()
    norm = dist.all_sum(norm)
    result = {"eval_loss": dist.all_sum(loss_sum) / max(norm, 1e-12)}
    for key, value in sorted(metric_sums.items()):
        result[f"eval_{key}"] = dist.all_sum(value) / max(norm, 1e-12)
    return result


def _example_tokens(example: Any) -> int:
    """Tokens an example feeds the model (both replies of a preference pair)."""
    if hasattr(example, "input_ids"):
        return len(example.input_ids)
    return len(getattr(example, "chosen_ids", ())) + len(getattr(example, "rejected_ids", ()))


def _records(examples: Sequence[Any]) -> list[str]:
    return [f"{getattr(e, 'source', '?')}:{getattr(e, 'line', '?')}" for e in examples]


def _same_weight(value: float) -> Callable[[Any], float]:
    """Every micro-batch of a step weighted alike: their summed losses share one normaliser."""
    return lambda _micro: value


def run_loop(
    *,
    model: torch.nn.Module,
    objective: Objective,
    train_examples: Sequence[Any],
    eval_examples: Sequence[Any] | None,
    cfg: TrainSection,
    output_dir: Path,
    config_hash: str,
    resume: str | None,
    dist: Distributed,
    description: str = "train",
    extra_state: Callable[[], dict[str, Any]] | None = None,
    load_extra_state: Callable[[dict[str, Any]], None] | None = None,
    on_step_end: Callable[[int, dict[str, Any]], None] | None = None,
    stop_after_step: int | None = None,
    probe: Callable[[], dict[str, float]] | None = None,
) -> LoopResult:
    """Trains ``model`` on ``objective``; returns the loop state and checkpoint folders.

    ``probe`` (the recipe's behavioural probes on ``model``, figures named ``probe.figure``) runs
    every ``cfg.probe_every`` steps; its figures go to metrics.jsonl as ``kind: probe`` lines with
    the seconds it took. With ``cfg.probe_select`` the best round is kept as
    ``checkpoints/probe-best`` and ``cfg.probe_patience`` rounds without a better one stop the run.
    """
    device = dist.device
    ckpt_root = output_dir / "checkpoints"
    objective_module = _ObjectiveModule(model, objective)
    sharded = cfg.parallel == "fsdp" and dist.world_size > 1
    if sharded:
        # Before the optimizer is built: sharding swaps every parameter for its DTensor shard.
        parallel.shard_model(objective_module, model, compute_dtype=autocast_dtype(device, model))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(model, cfg)
    steps_total = total_steps(len(train_examples), cfg, dist.world_size)
    scheduler = build_scheduler(optimizer, cfg, steps_total)
    sampler = ResumableSampler(len(train_examples), seed=cfg.seed, rank=dist.rank, world_size=dist.world_size)
    run_state = RunState(
        output_dir=output_dir,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        sampler=sampler,
        config_hash=config_hash,
        keep_last=cfg.keep_last,
        dist=dist,
        sharded=sharded,
        extra_state=extra_state,
        load_extra_state=load_extra_state,
    )
    resume_from = run_state.restore(resume)
    state = run_state.state
    per_step = cfg.batch_size * cfg.grad_accum
    module: torch.nn.Module = objective_module
    ddp: torch.nn.parallel.DistributedDataParallel | None = None
    if dist.world_size > 1 and not sharded:
        ddp = torch.nn.parallel.DistributedDataParallel(
            objective_module, device_ids=[device.index] if device.type == "cuda" else None
        )
        module = ddp
    metrics = MetricsWriter(
        output_dir / "metrics.jsonl",
        enabled=dist.is_main,
        resume_step=state.step if resume_from is not None else None,
    )
    progress = Progress(steps_total, state.step, enabled=dist.is_main, description=description)
    guard = NonFiniteGuard(state, metrics.write, limit=cfg.max_nonfinite_steps)
    last_ckpt: Path | None = resume_from
    best_ckpt: Path | None = ckpt_root / "best" if (ckpt_root / "best").is_dir() else None
    stopped_early = False
    model.train()

    def checkpoint(tag: str | None = None) -> Path:
        return run_state.save(tag)

    def run_eval(epoch: float) -> bool:
        """Evaluates; returns True when early stopping says stop."""
        nonlocal best_ckpt
        if not eval_examples:
            return False
        # The unwrapped module under DDP: eval needs no gradient sync, and processes may run unequal counts.
        result = evaluate(
            objective_module, objective, eval_examples, batch_size=cfg.batch_size, dist=dist, lockstep=sharded
        )
        metrics.write({"kind": "eval", "step": state.step, "epoch": epoch, **result})
        improved = state.best_eval is None or result["eval_loss"] < state.best_eval
        if dist.is_main:
            print(
                f"eval step {state.step}: loss {result['eval_loss']:.4f}{' (best so far)' if improved else ''}",
                flush=True,
            )
        if improved:
            state.best_eval = result["eval_loss"]
            state.evals_without_improvement = 0
            best_ckpt = checkpoint("best")
        else:
            state.evals_without_improvement += 1
        return bool(
            cfg.early_stopping_patience and state.evals_without_improvement >= cfg.early_stopping_patience
        )

    def run_probe(epoch: float) -> bool:
        """Probes the model; returns True when probe patience says stop."""
        if probe is None:
            return False
        t0 = time.perf_counter()
        # Generation samples: its RNG draws must not shift the training run's (resume stays exact).
        with torch.random.fork_rng(devices=[]):
            figures = probe()
        metrics.write(
            {
                "kind": "probe",
                "step": state.step,
                "epoch": epoch,
                **figures,
                "probe_time_s": time.perf_counter() - t0,
            }
        )
        if cfg.probe_select is None:
            return False
        if cfg.probe_select not in figures:
            raise AlignkitError(
                f"train.probe_select {cfg.probe_select!r} is not a probe figure (have: {', '.join(sorted(figures))})",
                field="train.probe_select",
            )
        value = figures[cfg.probe_select]
        sign = 1.0 if cfg.probe_select_mode == "max" else -1.0
        if state.best_probe is None or sign * value > sign * state.best_probe:
            state.best_probe = value
            state.probes_without_improvement = 0
            checkpoint("probe-best")
        else:
            state.probes_without_improvement += 1
        return bool(cfg.probe_patience and state.probes_without_improvement >= cfg.probe_patience)

    def forward(micro: list[Any]) -> tuple[torch.Tensor, dict[str, float]]:
        with autocast(device, model):
            return module(micro)  # type: ignore[no-any-return]

    try:
        while state.step < steps_total:
            t0 = time.perf_counter()
            indices, epoch_ended = sampler.take(per_step)
            micro_batches = [
                [train_examples[i] for i in indices[s : s + cfg.batch_size]]
                for s in range(0, per_step, cfg.batch_size)
            ]
            local_norm = sum(objective.normalizer(mb) for mb in micro_batches)
            global_norm = dist.all_sum(local_norm)
            # DDP and FSDP average gradients over processes; the weight makes the result the global mean.
            done = accumulate(micro_batches, forward, _same_weight(dist.world_size / max(global_norm, 1e-12)),
                              no_sync=ddp.no_sync if ddp is not None else None)
            loss_sum = sum(loss for loss, _ in done)
            metric_sums: dict[str, float] = {}
            for _, micro_metrics in done:
                for key, value in micro_metrics.items():
                    metric_sums[key] = metric_sums.get(key, 0.0) + value
            state.step += 1
            step_loss = dist.all_sum(loss_sum) / max(global_norm, 1e-12)
            if state.step in cfg.inject_nonfinite_at:
                step_loss = float("nan")
            grad_norm, finite = clip_and_step(
                params, optimizer, scheduler, loss=step_loss, max_grad_norm=cfg.max_grad_norm
            )
            records = _records([e for mb in micro_batches for e in mb])
            if finite:
                state.optimizer_steps += 1
            else:
                guard.skipped(state.step, loss=step_loss, grad_norm=grad_norm, records=records)
            elapsed = time.perf_counter() - t0
            tokens = dist.all_sum(sum(_example_tokens(e) for mb in micro_batches for e in mb))
            epoch = sampler.state.epoch + sampler.state.position / max(1, sampler.per_rank)
            record = {
                "kind": "train",
                "step": state.step,
                "epoch": round(epoch, 4),
                "loss": step_loss,
                "lr": scheduler.get_last_lr()[0],
                "grad_norm": grad_norm,
                "trained_tokens": global_norm,
                "tokens": tokens,
                "tokens_per_s": tokens / max(elapsed, 1e-9),
                "step_time_s": elapsed,
                "peak_mem_mb": peak_memory_mb(device),
                "skipped": not finite,
            }
            for key, value in metric_sums.items():
                record[key] = dist.all_sum(value) / max(global_norm, 1e-12)
            if state.step % cfg.log_every == 0 or not finite:
                metrics.write(record)
            progress.update(
                state.step, f"loss {step_loss:.4f} lr {record['lr']:.2e} {record['tokens_per_s']:.0f} tok/s"
            )
            if on_step_end is not None:
                on_step_end(state.step, record)
            guard.check(state.step, records)
            stop = False
            if cfg.eval_every and state.step % cfg.eval_every == 0:
                stop = run_eval(epoch)
            if epoch_ended and not cfg.eval_every:
                stop = run_eval(epoch) or stop
            if cfg.probe_every and state.step % cfg.probe_every == 0:
                stop = run_probe(epoch) or stop
            if stop:
                stopped_early = True
                last_ckpt = checkpoint()
                break
            if (cfg.save_every and state.step % cfg.save_every == 0) or state.step == steps_total:
                last_ckpt = checkpoint()
            if stop_after_step is not None and state.step >= stop_after_step:
                break
        if last_ckpt is None or (
            checkpoint_dirs(ckpt_root) and checkpoint_dirs(ckpt_root)[-1][0] != state.step
        ):
            last_ckpt = checkpoint()
    finally:
        progress.close()
        metrics.close()
    return LoopResult(
        state=state, stopped_early=stopped_early, last_checkpoint=last_ckpt, best_checkpoint=best_ckpt
    )
