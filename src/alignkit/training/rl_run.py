"""``RLRun``: the bookkeeping of one PPO/GRPO run: optimizer, scheduler, prompt sampler, rollout RNG,
KL controller, checkpoints, metrics, and the update step with the non-finite guard (skip, count, abort
after ``train.max_nonfinite_steps``), summing gradients over processes.

With several processes each either holds a replica and gradients are all-reduced in buckets
(``train.parallel=ddp``), or the policy, value model and their optimizer state are sharded with FSDP2
(``fsdp``, see ``training/parallel.py``): the ``Trainable`` is the root unit and every forward that
trains runs through it; sampling and the no-grad passes run inside ``RLRun.gathered()``.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from alignkit.config.rl import RLFields
from alignkit.data.prompt_sets import Prompt
from alignkit.models.reference import Reference
from alignkit.training import parallel
from alignkit.training.checkpoint import (
    LoopState,
)
from alignkit.training.distributed import Distributed
from alignkit.training.loop import MetricsWriter, Progress, build_optimizer, build_scheduler, peak_memory_mb
from alignkit.training.rollout import Rollout
from alignkit.training.run_state import RunState
from alignkit.training.sampler import ResumableSampler
from alignkit.training.step import NonFiniteGuard, accumulate, autocast_dtype, clip_and_step

log = logging.getLogger(__name__)


def _encode_rng(rng: torch.Generator) -> str:
    return base64.b64encode(bytes(rng.get_state().tolist())).decode()


def _decode_rng(rng: torch.Generator, text: str) -> None:
    rng.set_state(torch.tensor(list(base64.b64decode(text)), dtype=torch.uint8))


class Trainable(torch.nn.Module):
    """Every trained parameter in one module: one optimizer, one checkpoint (names say whose).

    Its forward runs the computation it is given (a per-token forward of the policy, with values or
    the adapter-disabled reference): under FSDP this module is the root unit, whose hooks gather the
    embeddings, LM head and value head around the whole computation, which calls the trunk and the
    heads separately.
    """

    def __init__(self, policy: Any, value_model: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.policy = policy
        self.value_model = value_model

    def forward(self, computation: Callable[[], Any]) -> Any:
        return computation()


@dataclass
class RLRun:
    """The bookkeeping of one RL run; the recipes call ``update`` and ``end_step``."""

    cfg: RLFields
    dist: Distributed
    output_dir: Path
    config_hash: str
    trainable: Trainable
    reference: Reference | None
    tokenizer: Any
    prompts: list[Prompt]
    eval_prompts: list[Prompt]
    updates_per_step: int
    description: str
    kl_controller: Any = None
    state: LoopState = field(default_factory=LoopState)
    resumed_from: Path | None = None
    last_checkpoint: Path | None = None
    evals: list[dict[str, Any]] = field(default_factory=list)
    dropped_prompts: int = 0

    def __post_init__(self) -> None:
        train = self.cfg.train
        per_step = self.cfg.rollout.prompts_per_step
        self.total_steps = train.max_steps or max(1, math.ceil(train.epochs * len(self.prompts) / per_step))
        self.sharded = train.parallel == "fsdp" and self.dist.world_size > 1
        if self.sharded:
            # Before the optimizer is built: sharding swaps every parameter for its DTensor shard.
            parallel.shard_model(self.trainable, self.trainable,
                                 compute_dtype=autocast_dtype(self.dist.device, self.trainable))
        self.optimizer = build_optimizer(self.trainable, train)
        self.scheduler = build_scheduler(self.optimizer, train, self.total_steps * self.updates_per_step)
        self.sampler = ResumableSampler(
            len(self.prompts), seed=train.seed, rank=self.dist.rank, world_size=self.dist.world_size
        )
        self.rng = torch.Generator().manual_seed(train.seed)  # rollout seeds and mini-batch order
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.params = [p for p in self.trainable.parameters() if p.requires_grad]
        self.trainable.train()  # from_pretrained returns eval mode; gradient checkpointing needs train mode
        self.run_state = RunState(
            output_dir=self.output_dir, model=self.trainable, optimizer=self.optimizer, scheduler=self.scheduler,
            sampler=self.sampler, config_hash=self.config_hash, keep_last=train.keep_last, dist=self.dist,
            sharded=self.sharded, extra_state=self._extra_state, load_extra_state=self._load_extra_state,
        )
        self.resumed_from = self.last_checkpoint = self.run_state.restore(self.cfg.resume)
        self.state = self.run_state.state
        self.metrics = MetricsWriter(
            self.output_dir / "metrics.jsonl",
            enabled=self.dist.is_main,
            resume_step=self.state.step if self.resumed_from else None,
        )
        self.progress = Progress(
            self.total_steps, self.state.step, enabled=self.dist.is_main, description=self.description
        )
        self.guard = NonFiniteGuard(self.state, self.metrics.write, limit=self.cfg.train.max_nonfinite_steps)

    @property
    def policy(self) -> Any:
        return self.trainable.policy

    @property
    def value_model(self) -> Any:
        return self.trainable.value_model

    def gathered(self) -> contextlib.AbstractContextManager[None]:
        """Full weights on every process for sampling and no-grad passes (``parallel.gathered``);
        nothing to do for a replica."""
        return parallel.gathered(self.trainable, self.trainable) if self.sharded else contextlib.nullcontext()

    def forward(self, computation: Callable[[], Any]) -> Any:
        """``computation`` (which calls the policy or the value model) as one forward of the trainable
        module: under FSDP the root unit's hooks must wrap every forward that trains."""
        return self.trainable(computation)

    # -- checkpoints ---------------------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        extra = {"rollout_rng": _encode_rng(self.rng)}
        if self.kl_controller is not None:
            extra["kl_controller"] = self.kl_controller.state_dict()
        return extra

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        _decode_rng(self.rng, extra["rollout_rng"])
        if self.kl_controller is not None:
            self.kl_controller.load_state_dict(extra["kl_controller"])

    def checkpoint(self) -> Path:
        self.last_checkpoint = self.run_state.save()
        return self.last_checkpoint

    # -- one rollout step ------------------------------------------------------------------------

    def next_prompts(self) -> tuple[list[Prompt], int]:
        """This process's prompts for the step, and the step's sampling seed (distinct per process)."""
        indices, _ = self.sampler.take(self.cfg.rollout.prompts_per_step // self.dist.world_size)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.rng)) + self.dist.rank
        return [self.prompts[i] for i in indices], seed

    def mini_batches(self, count: int) -> list[list[int]]:
        """A fresh shuffle of ``count`` replies, cut into mini-batches of batch_size x grad_accum."""
        size = self.cfg.train.batch_size * self.cfg.train.grad_accum
        order = torch.randperm(count, generator=self.rng).tolist()
        return [order[s : s + size] for s in range(0, count, size)]

    def train_on(
        self,
        rollout: Rollout,
        micro_loss: Callable[[list[int]], tuple[torch.Tensor, dict[str, float]]],
        *,
        passes: int,
    ) -> tuple[dict[str, float], float]:
        """``passes`` shuffled passes of ``update`` over the rollout's mini-batches.

        Returns each update metric's mean over the updates, and how many updates were skipped
        (non-finite), counted in this process.
        """
        updates = [
            self.update(indices, rollout.lengths, micro_loss)
            for _ in range(passes)
            for indices in self.mini_batches(len(rollout))
        ]
        means = {key: sum(u[key] for u in updates) / len(updates) for key in updates[0] if key != "skipped"}
        return means, sum(u["skipped"] for u in updates)

    def update(
        self,
        indices: list[int],
        lengths: torch.Tensor,
        micro_loss: Callable[[list[int]], tuple[torch.Tensor, dict[str, float]]],
    ) -> dict[str, float]:
        """One optimizer step on the replies ``indices``; returns its metrics (token-weighted means).

        ``micro_loss`` returns a token-mean loss over its micro-batch; weighting each by its share of
        the mini-batch's reply tokens (over all processes) and summing gradients over processes gives
        the token mean of the whole mini-batch, whatever the micro-batch size or process count.
        """
        size = self.cfg.train.batch_size
        micro_batches = [indices[s : s + size] for s in range(0, len(indices), size)]
        total_tokens = self.dist.all_sum(float(lengths[indices].sum()))
        def weight(micro: list[int]) -> float:
            return float(lengths[micro].sum()) / max(total_tokens, 1.0)

        # FSDP averages gradients over processes where the replica path sums them: x world size, the same sum.
        scale = self.dist.world_size if self.sharded else 1
        def gradient_weight(micro: list[int]) -> float:
            return weight(micro) * scale

        loss_sum, sums = 0.0, dict[str, float]()
        # A replica's gradients are summed over processes below, in buckets (no DDP wrapper: the policy also
        # generates); FSDP sums them itself, reduce-scattering after each backward.
        for micro, (loss, metrics) in zip(micro_batches, accumulate(micro_batches, micro_loss, gradient_weight),
                                       strict=True):
            loss_sum += loss * weight(micro)
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + value * weight(micro)
        loss_sum = self.dist.all_sum(loss_sum)
        if self.dist.world_size > 1 and not self.sharded:
            parallel.all_reduce_gradients(self.params)
        if self.state.step + 1 in self.cfg.train.inject_nonfinite_at and self._updates_this_step == 0:
            loss_sum = float("nan")  # testing aid: the first update of these steps
        self._updates_this_step += 1
        grad_norm, finite = clip_and_step(self.params, self.optimizer, self.scheduler, loss=loss_sum,
                                          max_grad_norm=self.cfg.train.max_grad_norm)
        if finite:
            self.state.optimizer_steps += 1
        else:
            records = sorted({self._current[i // self._samples].name for i in indices})
            self.guard.skipped(self.state.step + 1, loss=loss_sum, grad_norm=grad_norm, records=records)
            self.guard.check(self.state.step + 1, records)
        # Weights are shares of the global token count: summed over processes, the sums are the means.
        result = {k: self.dist.all_sum(v) for k, v in sums.items()}
        return {**result, "loss": loss_sum, "grad_norm": grad_norm, "skipped": float(not finite)}

    def begin_step(self, rollout: Rollout) -> None:
        """Remembers the step's rollout (to name its prompts if an update goes non-finite)."""
        self._current = rollout.prompts
        self._samples = rollout.samples_per_prompt
        self._updates_this_step = 0

    def end_step(self, record: dict[str, Any], evaluate: Callable[[], dict[str, float]] | None) -> bool:
        """Logs, evaluates, checkpoints; returns True when the run is over."""
        self.state.step += 1
        record = {"kind": "train", "step": self.state.step, "lr": self.scheduler.get_last_lr()[0], **record}
        if self.state.step % self.cfg.train.log_every == 0:
            self.metrics.write(record)
        kl = record.get("kl", record.get("kl_k3_token"))
        info = f"reward {record['reward']:.3f}" + ("" if kl is None else f" kl {kl:.3f}")
        self.progress.update(self.state.step, info)
        done = self.state.step >= self.total_steps
        every = self.cfg.train.eval_every
        if evaluate is not None and self.eval_prompts and (done or (every and self.state.step % every == 0)):
            self.write_eval(evaluate())
        save_every = self.cfg.train.save_every
        if done or (save_every and self.state.step % save_every == 0):
            self.checkpoint()
        return done

    def write_eval(self, result: dict[str, float]) -> None:
        record = {"kind": "eval", "step": self.state.step, **result}
        self.evals.append(record)
        self.metrics.write(record)

    def process_mean(self, record: dict[str, float]) -> dict[str, float]:
        """Each value averaged over processes (the identity in one process)."""
        if self.dist.world_size == 1:
            return record
        return {key: self.dist.all_sum(value) / self.dist.world_size for key, value in record.items()}

    def close(self) -> None:
        self.progress.close()
        self.metrics.close()


class PhaseClock:
    """Seconds per phase of a rollout step: ``mark(phase)`` ends a phase (``time.perf_counter``).

    The phases, in order: generate, reward, logprobs, train.
    """

    PHASES = ("generate", "reward", "logprobs", "train")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ends: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        self.ends[phase] = time.perf_counter()

    def timings(self, device: torch.device) -> dict[str, float]:
        """``time_<phase>_s`` for each phase, the step's total and the peak memory so far."""
        marks = [self.started, *(self.ends[phase] for phase in self.PHASES)]
        spans = {f"time_{phase}_s": end - begin for phase, begin, end in zip(self.PHASES, marks[:-1], marks[1:], strict=True)}
        return {**spans, "step_time_s": marks[-1] - self.started, "peak_mem_mb": peak_memory_mb(device)}


@dataclass
class RLResult:
    state: LoopState
    last_checkpoint: Path | None
    evals: list[dict[str, Any]]
    output: Path | None
