"""The run state of a training run, one implementation for the SFT/DPO/RM loop and the PPO/GRPO run:
checkpoint and restore of the trainable weights (model or adapter; a replica, or this process's FSDP
shards), optimizer, scheduler, sampler position, loop counters and recipe extras (RNG, KL controller).

Checkpoints are written by ``checkpoint.save_checkpoint`` (temporary folder, fsync, manifest, rename);
a resumed run continues bit for bit on CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from alignkit.errors import CheckpointError
from alignkit.training import parallel
from alignkit.training.checkpoint import (
    LoopState,
    find_resume_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    restore_loop,
    save_checkpoint,
    trainable_state,
)
from alignkit.training.distributed import Distributed
from alignkit.training.sampler import ResumableSampler

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """``restore`` once, before training; ``save`` at every checkpoint (every process calls it)."""

    output_dir: Path
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    sampler: ResumableSampler
    config_hash: str
    keep_last: int
    dist: Distributed
    sharded: bool = False
    extra_state: Callable[[], dict[str, Any]] | None = None
    load_extra_state: Callable[[dict[str, Any]], None] | None = None
    state: LoopState = field(default_factory=LoopState)

    @property
    def root(self) -> Path:
        return self.output_dir / "checkpoints"

    def restore(self, resume: str | None) -> Path | None:
        """Loads the checkpoint ``resume`` names (``auto``: the newest), if any; returns its folder."""
        folder = find_resume_checkpoint(self.output_dir, resume)
        if folder is None:
            return None
        if self.sharded:
            trainable = [name for name, p in self.model.named_parameters() if p.requires_grad]
            saved = read_checkpoint(folder, trainable_names=trainable)
            parallel.load_sharded(self.model, self.optimizer, trainable=saved.trainable,
                                  optimizer_state=saved.optimizer_state)
            self.state, sampler_state, saved_hash = restore_loop(saved, scheduler=self.scheduler)
        else:
            self.state, sampler_state, saved_hash = load_checkpoint(
                folder, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler)
        try:
            self.sampler.load_state_dict(sampler_state)
        except ValueError as exc:
            raise CheckpointError(str(exc), source=str(folder), field="resume") from None
        if saved_hash and saved_hash != self.config_hash:
            log.warning("resuming from %s, written with a different config (hash %s, now %s)", folder,
                        saved_hash, self.config_hash)
        if self.load_extra_state is not None:
            self.load_extra_state(self.state.extra)
        if self.dist.is_main:
            print(f"resumed from {folder} at step {self.state.step}", flush=True)
        return folder

    def _tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The trainable weights and optimizer state a checkpoint stores, on rank 0 ({} elsewhere).

        Under FSDP they are gathered from every process's shards, so every rank must call this.
        """
        if self.sharded:
            return parallel.gather_trainable(self.model), parallel.gather_optimizer_state(self.model, self.optimizer)
        if not self.dist.is_main:
            return {}, {}
        return trainable_state(self.model), self.optimizer.state_dict()

    def save(self, tag: str | None = None) -> Path:
        """``checkpoints/step-NNNNNN`` (older ones pruned to ``keep_last``), or ``checkpoints/<tag>``."""
        folder = self.root / (tag or f"step-{self.state.step:06d}")
        trainable, optimizer_state = self._tensors()
        if self.dist.is_main:
            if self.extra_state is not None:
                self.state.extra = self.extra_state()
            save_checkpoint(folder, trainable=trainable, optimizer_state=optimizer_state, scheduler=self.scheduler,
                            sampler_state=self.sampler.state_dict(), loop_state=self.state,
                            config_hash=self.config_hash)
            if tag is None:
                prune_checkpoints(self.root, self.keep_last)
        self.dist.barrier()
        return folder
